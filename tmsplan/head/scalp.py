"""Scalp (outer skin) surface from a T1: one closed genus-0 mesh in the T1's world mm.

How it works, what it assumes and what it guarantees: ``docs/head.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import nibabel as nib
import numpy as np
from nibabel.affines import apply_affine

from tmsplan.errors import HeadSurfaceError
from tmsplan.head.meshing import EPS as _EPS
from tmsplan.head.meshing import (
    StageClock,
    check_target_faces,
    indicator_field,
    mesh_from_field,
    surface_from_mask,
)
from tmsplan.io.images import ImageLike, block_reduce, check_img
from tmsplan.xfm.headfit import MIN_HEAD_VOLUME_L

if TYPE_CHECKING:  # trimesh (with scipy and networkx) is imported where it is used
    import trimesh

__all__ = ["ScalpSurface", "head_mask_img", "scalp_surface", "surface_from_mask"]

# Tunables (millimetres unless said otherwise).
_WORKING_MM = 2.0  # default working voxel size for the mask
_BLUR_MM = 1.5  # Gaussian sigma before thresholding
_CAVITY_CLOSE_MM = 6.0  # closing radius that seals ear canals, nostrils
_LOW_FRACTION = 0.5  # topology threshold: background + this x (Otsu - background)
_SKIN_DEPTH_MM = 3.0  # depth below the head mask that may be outside the skin
_MIN_HEAD_L = 0.2  # below this: no head found
_ZERO_BACKGROUND = 0.8  # fraction of exactly-minimum voxels outside the head
_CUT_MIN_MM2 = 500.0  # padding cut: at least this contact area
_CUT_SPREAD_MM = 12.0  # ... at least this in-plane spread (SD) in both directions
_CUT_RMS_VOX = 0.25  # ... and at most this RMS distance to its plane (working voxels)
_FOV_TOL_VOX = 1.0  # fov_boundary: within this many T1 voxels of a cut face
_DEFACE_MIDLINE_MM = 20.0
_DEFACE_REF_BAND = (60.0, 90.0)  # below the top of the head: forehead
_DEFACE_FACE_BAND = (105.0, 145.0)  # below the top of the head: nose to lip
_DEFACE_RECESS_MM = 20.0

_DIRECTION_NAMES = {
    (0, 1): "right",
    (0, -1): "left",
    (1, 1): "front",
    (1, -1): "back",
    (2, 1): "top",
    (2, -1): "bottom",
}


@dataclass(frozen=True, init=False)
class ScalpSurface:
    """The outer skin surface of a head image.

    Attributes
    ----------
    mesh : trimesh.Trimesh
        Closed (watertight) single-component triangle mesh, vertices ``(n, 3)``
        float64 in world RAS+ millimetres of the image (frame ``frame``), faces
        wound so normals point outward; built with ``process=False``. A surface
        given as its arrays (a cached head) builds it on first use, so planning
        on a cached head need not import trimesh.
    vertices : (n, 3) float64
        The mesh's vertices (read-only), without building the mesh.
    faces : (m, 3) int64
        The mesh's faces (read-only), without building the mesh.
    frame : str
        Name of the world frame of the vertices (``"T1w"``, ``"MNI152NLin6Asym"``).
    fov_boundary : (n,) bool
        True for vertices lying where the image's field of view cuts the head
        (e.g. the neck floor): these are not skin and must not be used as coil
        positions.
    defaced : bool
        True when the face looks removed (best-effort rule in docs/head.md).
    notes : tuple of str
        Human-readable warnings (e.g. the head touches the top of the field of
        view).
    skin_level : float or None
        T1 intensity at which the skin was placed (half-way between air and
        skin); used by the entry self-checks to recognise head tissue.
    genus : int
        Handles of the surface (0 for a proper outer skin; see the notes when not).
    voxel_mm : tuple of float
        Voxel size of the image the surface was made from.
    """

    frame: str
    fov_boundary: np.ndarray
    defaced: bool
    notes: tuple[str, ...]
    skin_level: float | None = None
    genus: int = 0
    voxel_mm: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def __init__(
        self,
        mesh: trimesh.Trimesh | tuple[np.ndarray, np.ndarray],
        frame: str,
        fov_boundary: np.ndarray,
        defaced: bool,
        notes: tuple[str, ...],
        skin_level: float | None = None,
        genus: int = 0,
        voxel_mm: tuple[float, float, float] = (1.0, 1.0, 1.0),
    ) -> None:
        built = None if isinstance(mesh, tuple) else mesh
        vertices, faces = mesh if built is None else (built.vertices, built.faces)
        vertices = np.array(vertices, dtype=np.float64)
        faces = np.array(faces, dtype=np.int64)
        if vertices.ndim != 2 or vertices.shape[1:] != (3,) or faces.ndim != 2:
            raise ValueError("mesh: expected (n, 3) vertices and (m, 3) faces.")
        vertices.setflags(write=False)
        faces.setflags(write=False)
        for name, value in (
            ("_built", built),
            ("_vertices", vertices),
            ("_faces", faces),
            ("frame", frame),
            ("fov_boundary", fov_boundary),
            ("defaced", defaced),
            ("notes", notes),
            ("skin_level", skin_level),
            ("genus", genus),
            ("voxel_mm", voxel_mm),
        ):
            object.__setattr__(self, name, value)

    @property
    def mesh(self) -> trimesh.Trimesh:
        """The scalp mesh (built from :attr:`vertices` and :attr:`faces` on first use)."""
        if self._built is None:
            import trimesh

            # writable copies: some consumers (quadric decimation) refuse read-only arrays
            built = trimesh.Trimesh(self._vertices.copy(), self._faces.copy(), process=False)
            object.__setattr__(self, "_built", built)
        return self._built

    @property
    def vertices(self) -> np.ndarray:
        """``(n, 3)`` float64 vertices, world RAS+ mm of :attr:`frame` (read-only)."""
        return self._vertices

    @property
    def faces(self) -> np.ndarray:
        """``(m, 3)`` int64 faces, wound outward (read-only)."""
        return self._faces


@dataclass(frozen=True)
class _HeadModel:
    """Intermediate result shared by :func:`scalp_surface` and :func:`head_mask_img`."""

    filled: np.ndarray  # (wi, wj, wk) bool: the head with its cavities filled
    factors: tuple[int, int, int]  # block-average factor per voxel axis
    shape: tuple[int, int, int]  # shape of the T1
    affine: np.ndarray  # (4, 4) voxel -> world of the T1
    touched: tuple[tuple[int, int], ...]  # (axis, side) faces the head touches
    cut: np.ndarray  # (wi, wj, wk) bool: empty padding voxels that cut the head
    defaced: bool
    notes: tuple[str, ...]
    solid: np.ndarray  # (wi, wj, wk) bool: filled head, genus 0, whose boundary is meshed
    skin: np.ndarray  # (wi, wj, wk) float32 (blurred - skin level) / contrast: > 0 is tissue
    level: float  # T1 intensity of the skin level


# --------------------------------------------------------------------------- helpers


def _zooms(affine: np.ndarray) -> np.ndarray:
    return np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0))


def _working_factors(zooms: np.ndarray, working_mm: float | None) -> tuple[int, int, int]:
    if working_mm is None:
        return (1, 1, 1)
    return tuple(max(1, int(np.floor(working_mm / z + 0.25))) for z in zooms)  # type: ignore[return-value]


def _face_index(axis: int, side: int, ndim: int = 3) -> tuple:
    index = [slice(None)] * ndim
    index[axis] = 0 if side == 0 else -1
    return tuple(index)


def _largest_component(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    labels, count = ndimage.label(mask)
    if count <= 1:
        return labels > 0
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


def _close(mask: np.ndarray, radius_mm: float, spacing: np.ndarray) -> np.ndarray:
    """Morphological closing with a Euclidean ball (edge-replicated borders)."""
    from scipy import ndimage

    if radius_mm < float(np.min(spacing)) * 1.5:  # one voxel: the 6-connected cross
        cross = ndimage.generate_binary_structure(mask.ndim, 1)
        padded = np.pad(mask, 1, mode="edge")
        closed = ndimage.binary_erosion(ndimage.binary_dilation(padded, cross), cross)
        return closed[(slice(1, -1),) * mask.ndim] | mask
    if not mask.any():
        return mask.copy()
    pad = [int(np.ceil(radius_mm / s)) + 1 for s in spacing]
    # Work on the mask's bounding box plus the ball: beyond it everything stays False.
    box = []
    for axis, p in enumerate(pad):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        box.append(slice(max(0, hit[0] - p - 1), min(mask.shape[axis], hit[-1] + p + 2)))
    box = tuple(box)
    part = mask[box]
    padded = np.pad(part, [(p, p) for p in pad], mode="edge")
    dilated = ndimage.distance_transform_edt(~padded, sampling=spacing) <= radius_mm
    if dilated.all():
        closed = dilated
    else:
        closed = ndimage.distance_transform_edt(dilated, sampling=spacing) > radius_mm
    crop = tuple(slice(p, p + n) for p, n in zip(pad, part.shape, strict=True))
    out = mask.copy()
    out[box] |= closed[crop]
    return out


def _fill_sealed(
    mask: np.ndarray,
    touched: tuple[tuple[int, int], ...],
    spacing: np.ndarray,
    cut: np.ndarray,
) -> np.ndarray:
    """3-D hole fill where faces touched by the head are sealed by lids.

    The lid of a touched face is its cut cross-section, closed (2-D, cavity
    radius) and hole-filled, placed one voxel beyond the face. Voxels of ``cut``
    (empty padding that cuts the head inside the box) are lids too. Cavities
    open to the outside only through a cut become holes and are filled.
    """
    from scipy import ndimage

    padded = np.pad(mask | cut, 1)
    for axis, side in touched:
        others = [a for a in range(3) if a != axis]
        section = mask[_face_index(axis, side)]
        lid = ndimage.binary_fill_holes(_close(section, _CAVITY_CLOSE_MM, spacing[others]))
        index = [slice(1, -1)] * 3
        index[axis] = 0 if side == 0 else -1
        padded[tuple(index)] |= lid
    return ndimage.binary_fill_holes(padded)[1:-1, 1:-1, 1:-1] & ~cut


def _constant_values(data: np.ndarray) -> list[float]:
    """Candidate padding values: the image minimum and the commonest value on the box faces.

    Zero padding of an image whose minimum is negative (a rescaled neck, a
    float T1) holds exact zeros that are not the minimum.
    """
    faces = np.concatenate([data[_face_index(a, s)].ravel() for a in range(3) for s in (0, 1)])
    values, counts = np.unique(faces, return_counts=True)
    common = float(values[int(np.argmax(counts))])
    out = [float(data.min())]
    if common != out[0] and counts.max() >= 0.05 * faces.size:
        out.append(common)
    return out


def _plane_patches(
    points: np.ndarray, spacing: np.ndarray, seed: int = 0, max_planes: int = 4
) -> list[np.ndarray]:
    """Flat patches among ``points`` (world mm): indices of the inliers of each plane.

    RANSAC (fixed seed, deterministic): the plane with most points within one
    working voxel, refitted by least squares. A patch is kept when it is large
    (``_CUT_MIN_MM2``), wide (both in-plane spreads >= ``_CUT_SPREAD_MM``) and
    flat (RMS distance <= ``_CUT_RMS_VOX`` working voxels): a straight cut. A
    curved skin with a zero background around it has no such patch: the best
    plane through it catches a cap whose points spread over the whole tolerance.
    """
    rng = np.random.default_rng(seed)
    voxel = float(spacing.max())
    face_mm2 = float(np.prod(spacing)) / float(np.min(spacing))
    remaining = np.arange(len(points))
    patches: list[np.ndarray] = []
    for _ in range(max_planes):
        if len(remaining) * face_mm2 < _CUT_MIN_MM2:
            break
        pts = points[remaining]
        best, best_count = None, 0
        for _ in range(200):
            a, b, c = pts[rng.choice(len(pts), 3, replace=False)]
            normal = np.cross(b - a, c - a)
            length = np.linalg.norm(normal)
            if length < 1e-6:
                continue
            normal /= length
            count = int(np.count_nonzero(np.abs((pts - a) @ normal) <= voxel))
            if count > best_count:
                best, best_count = (a, normal), count
        if best is None:
            break
        a, normal = best
        inliers = np.abs((pts - a) @ normal) <= voxel
        centre = pts[inliers].mean(axis=0)
        _, sv, vt = np.linalg.svd(pts[inliers] - centre, full_matrices=False)
        normal = vt[2]
        inliers = np.abs((pts - centre) @ normal) <= voxel
        chosen = pts[inliers]
        centre = chosen.mean(axis=0)
        _, sv, vt = np.linalg.svd(chosen - centre, full_matrices=False)
        spread = sv / np.sqrt(max(len(chosen), 1))
        rms = float(spread[2])
        if (
            len(chosen) * face_mm2 >= _CUT_MIN_MM2
            and spread[1] >= _CUT_SPREAD_MM
            and rms <= _CUT_RMS_VOX * voxel
        ):
            patches.append(remaining[inliers])
        remaining = remaining[~inliers]
    return patches


def _padding_cut(
    head: np.ndarray,
    closed_head: np.ndarray,
    bright: np.ndarray,
    constant: np.ndarray,
    work_affine: np.ndarray,
) -> np.ndarray:
    """Constant padding that cuts the head inside the image box (see docs/head.md).

    ``constant`` marks working voxels whose whole block holds one padding value
    (:func:`_constant_values`). Where such voxels touch bright head tissue
    along a flat, wide patch (:func:`_plane_patches`), the head was cut there
    (zero padding of a conformed or resampled image, a defacing mask): the
    constant voxels against the head near that patch (closed by the cavity
    radius) are returned as a lid. A constant background that follows the
    curved skin all around the head (FreeSurfer, masked images) is not a cut,
    whatever its value.
    """
    from scipy import ndimage

    spacing = _zooms(work_affine)
    cross = ndimage.generate_binary_structure(3, 1)
    contact = constant & ndimage.binary_dilation(head & bright, cross)
    ijk = np.argwhere(contact)
    none = np.zeros(head.shape, dtype=bool)
    if len(ijk) < 3:
        return none
    patches = _plane_patches(apply_affine(work_affine, ijk), spacing)
    if not patches:
        return none
    seeds = np.zeros(head.shape, dtype=bool)
    for patch in patches:
        seeds[tuple(ijk[patch].T)] = True
    # The lid: constant voxels against the head (small openings closed, so dark skull and
    # narrow cavities exposed by the cut are covered), within a few voxels of a flat patch.
    near = ndimage.binary_dilation(seeds, cross, iterations=2)
    lid = constant & ndimage.binary_dilation(closed_head, cross)
    return lid & near


def _touched_faces(
    mask: np.ndarray, data: np.ndarray, level: float, min_voxels: int = 3
) -> tuple[tuple[int, int], ...]:
    """Faces of the box that the head touches: on the working grid and in the T1's own slice."""
    faces = []
    for axis in range(3):
        for side in (0, 1):
            if (
                int(mask[_face_index(axis, side)].sum()) >= min_voxels
                and int((data[_face_index(axis, side)] > level).sum()) >= min_voxels
            ):
                faces.append((axis, side))
    return tuple(faces)


def _face_direction(affine: np.ndarray, axis: int, side: int) -> str:
    vector = affine[:3, axis] * (1.0 if side == 1 else -1.0)
    world_axis = int(np.argmax(np.abs(vector)))
    return _DIRECTION_NAMES[(world_axis, 1 if vector[world_axis] > 0 else -1)]


def _work_to_index(factors: tuple[int, int, int]) -> np.ndarray:
    """(4, 4) map from working-grid indices to T1 voxel indices (block centres)."""
    f = np.asarray(factors, dtype=np.float64)
    out = np.eye(4)
    out[:3, :3] = np.diag(f)
    out[:3, 3] = (f - 1.0) / 2.0
    return out


# --------------------------------------------------------------------------- detection


def _check_not_stripped(volume_l: float, zero_outside: float, name: str, notes: list[str]) -> None:
    if volume_l >= MIN_HEAD_VOLUME_L:  # below: brain-sized (as the fit check)
        return
    if zero_outside >= _ZERO_BACKGROUND:
        raise HeadSurfaceError(
            f"{name}: this looks like a brain-extracted (skull-stripped) image: the head is "
            f"{volume_l:.2f} L, brain-sized, and {100 * zero_outside:.0f}% of the background "
            "is exactly zero, so there is no scalp to place a coil on; give the T1 before "
            "brain extraction (with skin and skull)."
        )
    notes.append(
        f"the head is only {volume_l:.2f} L (brain-sized); check that the image is a "
        "whole-head T1 and not skull-stripped or cut by a small field of view"
    )


def _detect_defacing(
    mask: np.ndarray, work_affine: np.ndarray, fov_min_z: float, notes: list[str]
) -> bool:
    """Best-effort defacing rule (see docs/head.md)."""
    ijk = np.argwhere(mask)
    xyz = apply_affine(work_affine, ijk)
    z_top = float(xyz[:, 2].max())
    midline = np.abs(xyz[:, 0] - float(np.median(xyz[:, 0]))) < _DEFACE_MIDLINE_MM
    z, y = xyz[midline, 2], xyz[midline, 1]
    ref_lo, ref_hi = z_top - _DEFACE_REF_BAND[1], z_top - _DEFACE_REF_BAND[0]
    face_lo, face_hi = z_top - _DEFACE_FACE_BAND[1], z_top - _DEFACE_FACE_BAND[0]
    if fov_min_z > face_lo:
        notes.append("the image does not reach the face, so defacing was not assessed")
        return False
    in_ref = (z >= ref_lo) & (z <= ref_hi)
    in_face = (z >= face_lo) & (z <= face_hi)
    if not in_ref.any():
        return False
    if not in_face.any():
        return bool((z < face_lo).any())
    return bool(y[in_face].max() < y[in_ref].max() - _DEFACE_RECESS_MM)


def _handles(solid: np.ndarray) -> int:
    """Handles (genus) of a solid of one component without cavities, from its Euler number.

    Counted with 6- and with 26-connectivity (marching cubes of a blurred mask
    joins some diagonal neighbours and not others); the larger count is returned.
    """
    from skimage.measure import euler_number

    if not solid.any():
        return 0
    box = tuple(
        slice(int(idx.min()), int(idx.max()) + 1)
        for idx in (np.flatnonzero(solid.any(axis=tuple(a for a in range(3) if a != ax)))
                    for ax in range(3))
    )  # fmt: skip
    padded = np.pad(solid[box], 1)
    return max(0, *(1 - int(euler_number(padded, connectivity=c)) for c in (1, 3)))


def _genus_zero_solid(
    filled: np.ndarray,
    touched: tuple[tuple[int, int], ...],
    spacing: np.ndarray,
    cut: np.ndarray,
) -> tuple[np.ndarray, int]:
    """The filled head without handles: the solid whose boundary is the outer skin.

    Narrow air passages that open to the outside at two places (between the
    sinuses and the nose, through mastoid air cells, under the ear's helix)
    make handles in the filled head. A closing by one working voxel, then by
    ever larger balls up to the cavity radius, seals them; the smallest closing
    that leaves no handle is used. Returns the solid and the handles left
    (0 unless even the largest closing could not remove them).
    """
    from scipy import ndimage

    solid = filled
    handles = _handles(solid)
    radius = float(spacing.max())
    while handles and radius <= 2.0 * _CAVITY_CLOSE_MM:
        # ``filled`` has its cavities (also those open through a cut) filled already; the
        # closing only adds voxels, so a plain hole fill catches what it newly encloses.
        closed = _close(filled, radius, spacing) & ~cut
        solid = ndimage.binary_fill_holes(_largest_component(closed))
        handles = _handles(solid)
        radius *= 1.5
    return solid, handles


def _skin_level(
    work: np.ndarray,
    filled: np.ndarray,
    outside: np.ndarray,
    spacing: np.ndarray,
    threshold: float,
    low_threshold: float,
) -> float:
    """Intensity at which the skin surface is placed: half-way between air and skin.

    Air is the median of the background (voxels more than one voxel outside the
    head); skin is the median of the voxel layer about 3 mm under the head
    mask's boundary (past the partial-volume rim), from the unblurred working
    image.
    For a blurred step edge the half-way level sits on the true edge, whereas
    Otsu's threshold (pulled down by dark skull and CSF) sits outside it. The
    level is kept within [low threshold, 2 x Otsu - low threshold].
    """
    from scipy import ndimage

    cross = ndimage.generate_binary_structure(3, 1)
    steps = max(1, int(round(2.5 / float(spacing.min()))))
    inner = ndimage.binary_erosion(filled, cross, iterations=steps, border_value=1)
    layer = inner & ~ndimage.binary_erosion(inner, cross, border_value=1)
    skin, air = work[layer], work[outside]
    if skin.size < 10 or air.size < 10:
        return threshold
    level = 0.5 * (float(np.median(air)) + float(np.median(skin)))
    return float(np.clip(level, low_threshold, threshold + (threshold - low_threshold)))


# --------------------------------------------------------------------------- head model


def _head_model(
    t1: ImageLike, name: str, working_mm: float | None, timings: dict[str, float] | None = None
) -> _HeadModel:
    from scipy import ndimage
    from skimage.filters import apply_hysteresis_threshold, threshold_otsu

    if working_mm is not None and not (np.isfinite(working_mm) and working_mm > 0):
        raise ValueError(f"working_mm must be a positive number or None, got {working_mm!r}")
    clock = StageClock(timings)
    img = check_img(t1, name=name)
    clock.lap("load")
    affine = np.asarray(img.affine, dtype=np.float64)
    data = np.asarray(img.dataobj)
    shape = tuple(int(n) for n in data.shape)
    factors = _working_factors(_zooms(affine), working_mm)
    work_affine = affine @ _work_to_index(factors)
    spacing = _zooms(work_affine)
    voxel_l = float(np.prod(spacing)) / 1e6

    work = block_reduce(data, factors, func=np.mean, dtype=np.float32)
    minimum = block_reduce(data == data.min(), factors, func=np.all)
    constant = minimum.copy()
    for value in _constant_values(data)[1:]:
        constant |= block_reduce(data == value, factors, func=np.all)
    blurred = ndimage.gaussian_filter(work, np.maximum(_BLUR_MM / spacing, 0.5), mode="nearest")
    low, high = np.percentile(blurred, [0.1, 99.9])
    if not high > low:
        raise HeadSurfaceError(
            f"{name}: no head found: the image is flat (one intensity everywhere); "
            "give a whole-head T1."
        )
    threshold = float(threshold_otsu(np.clip(blurred, low, high), nbins=256))
    background = float(np.percentile(blurred, 1.0))
    # Topology uses a lower, hysteresis threshold (dim skin at the neck and face still
    # closes the head); the skin position uses the Otsu level (half-way across the edge).
    low_threshold = background + _LOW_FRACTION * (threshold - background)
    above = apply_hysteresis_threshold(blurred, low_threshold, threshold)

    cross = ndimage.generate_binary_structure(3, 1)
    core = _largest_component(ndimage.binary_opening(above, cross))
    if not core.any():
        core = _largest_component(above)
    head = above & ndimage.binary_dilation(core, cross)
    if head.sum() * voxel_l < _MIN_HEAD_L:
        raise HeadSurfaceError(
            f"{name}: no head found: the largest bright region is "
            f"{head.sum() * voxel_l * 1000:.0f} mL, far smaller than a head; "
            "give a whole-head T1 (not a mask, a map or a cropped image)."
        )

    touched = _touched_faces(head, data, low_threshold)
    closed_head = _close(head, _CAVITY_CLOSE_MM, spacing)
    cut = _padding_cut(head, closed_head, work > threshold, constant, work_affine)
    closed = closed_head & ~cut
    cavities = _fill_sealed(closed, touched, spacing, cut) & ~closed
    filled = _fill_sealed(head | cavities, touched, spacing, cut)

    notes: list[str] = []
    outside = ~ndimage.binary_dilation(filled, cross)
    zero_outside = float(minimum[outside].mean()) if outside.any() else 0.0
    _check_not_stripped(float(filled.sum()) * voxel_l, zero_outside, name, notes)
    if cut.any():
        notes.append(
            "the head is cut by an empty (exactly zero) region inside the image box (zero "
            "padding or a defacing mask); that cut is not skin and is flagged in fov_boundary"
        )
    for axis, side in touched:
        where = _face_direction(affine, axis, side)
        if where == "bottom":
            notes.append(
                "the field of view cuts the head at the bottom (neck); that floor is not "
                "skin and is flagged in fov_boundary"
            )
        else:
            notes.append(
                f"the head touches the {where} of the field of view: the skin there is cut "
                "off and flagged in fov_boundary; do not plan coil positions there"
            )

    corners = np.array(
        [
            [i, j, k]
            for i in (-0.5, shape[0] - 0.5)
            for j in (-0.5, shape[1] - 0.5)
            for k in (-0.5, shape[2] - 0.5)
        ]
    )
    fov_min_z = float((apply_affine(affine, corners))[:, 2].min())
    defaced = _detect_defacing(filled, work_affine, fov_min_z, notes)
    if defaced:
        notes.append(
            "the face looks removed (defaced): the surface in front of and below the eyes "
            "is the defacing cut, not skin"
        )

    level = _skin_level(work, filled, outside, spacing, threshold, low_threshold)
    scale = max(level - background, 1e-12 * max(abs(level), 1.0))
    solid, _ = _genus_zero_solid(filled, touched, spacing, cut)
    clock.lap("mask")
    return _HeadModel(
        filled=filled,
        factors=factors,
        shape=shape,  # type: ignore[arg-type]
        affine=affine,
        touched=touched,
        cut=cut,
        defaced=defaced,
        notes=tuple(notes),
        solid=solid,
        skin=((blurred - np.float32(level)) / np.float32(scale)).astype(np.float32),
        level=float(level),
    )


def _mask_field(model: _HeadModel) -> np.ndarray:
    """Signed field of the filled head for :func:`head_mask_img` (> 0 inside).

    Below-level voxels reachable from the outside within ``_SKIN_DEPTH_MM`` keep
    the skin field's values (the partial-volume skin edge); every other voxel of
    the filled head is made positive, every voxel outside it negative.
    """
    from scipy import ndimage

    cross = ndimage.generate_binary_structure(3, 1)
    spacing = _zooms(model.affine @ _work_to_index(model.factors))
    field, filled = model.skin, model.filled
    steps = max(1, int(np.ceil(_SKIN_DEPTH_MM / float(spacing.min()))))
    edge = ndimage.binary_dilation(
        ~filled & ~model.cut, cross, iterations=steps, mask=filled & (field < 0)
    )
    field = np.where(filled & ~edge, np.maximum(field, _EPS), field)
    return np.where(filled, field, np.minimum(field, -_EPS)).astype(np.float32)


# --------------------------------------------------------------------------- outer skin


def _touched_face_axes(
    index: np.ndarray,
    touched: tuple[tuple[int, int], ...],
    affine: np.ndarray,
    shape: tuple[int, int, int],
    factors: tuple[int, int, int],
) -> np.ndarray:
    """(n, 3) world unit normal of the touched box face a vertex lies on (zeros elsewhere).

    A vertex lies on a face when its T1 voxel position ``index`` is within one
    working voxel of it.
    """
    axes = np.zeros((len(index), 3))
    for axis, side in touched:
        tolerance = float(factors[axis]) + 0.01
        if side == 0:
            near = index[:, axis] <= -0.5 + tolerance
        else:
            near = index[:, axis] >= shape[axis] - 0.5 - tolerance
        axes[near] = affine[:3, axis] / np.linalg.norm(affine[:3, axis])
    return axes


def _outermost_crossing(
    skin: np.ndarray,
    world_to_work: np.ndarray,
    vertices: np.ndarray,
    faces: np.ndarray,
    *,
    outside_mm: float,
    inside_mm: float,
    face_axes: np.ndarray | None = None,
    step_mm: float = 0.25,
) -> np.ndarray:
    """Move each vertex along its normal to the outermost skin-level crossing.

    ``vertices`` lie on the boundary of the filled head solid. Along each
    vertex normal, from ``outside_mm`` outside to ``inside_mm`` inside, the
    skin field is sampled and the vertex goes to the first crossing into tissue
    met from outside (linear interpolation between samples): the outer skin,
    never a sinus or cavity wall deeper in. Vertices without such a crossing
    stay put. ``face_axes`` (n, 3) holds, for vertices on a box face the head
    touches, that face's world normal (zeros elsewhere): such vertices move
    only within the face (the cut stays on the box face), and those whose
    normal is along it (inside the cut) stay put. The mesh connectivity,
    hence its topology, is unchanged.
    """
    import trimesh
    from scipy import ndimage

    mesh = trimesh.Trimesh(vertices=vertices, faces=faces, process=False)
    normals = np.asarray(mesh.vertex_normals, dtype=np.float64)
    if mesh.volume < 0:
        normals = -normals
    movable = np.ones(len(vertices), dtype=bool)
    if face_axes is not None:
        normals = normals - np.einsum("ij,ij->i", normals, face_axes)[:, None] * face_axes
        length = np.linalg.norm(normals, axis=1)
        movable = length > 0.3
        normals = normals / np.maximum(length, 1e-12)[:, None]
    offsets = np.arange(outside_mm, -inside_mm - 1e-9, -step_mm)
    moved = vertices.copy()
    for start in range(0, len(vertices), 20000):
        v, n = vertices[start : start + 20000], normals[start : start + 20000]
        samples = v[:, None, :] + offsets[None, :, None] * n[:, None, :]
        index = apply_affine(world_to_work, samples)
        values = ndimage.map_coordinates(
            skin, index.reshape(-1, 3).T, order=1, mode="nearest"
        ).reshape(len(v), len(offsets))
        tissue = values >= 0.0
        first = np.argmax(tissue, axis=1)
        ok = tissue.any(axis=1) & (first > 0) & movable[start : start + 20000]
        k = first[ok]
        rows = np.nonzero(ok)[0]
        before, after = values[rows, k - 1], values[rows, k]
        fraction = before / np.minimum(before - after, -1e-12) * -1.0
        offset = offsets[k - 1] + np.clip(fraction, 0.0, 1.0) * (offsets[k] - offsets[k - 1])
        moved[start + rows] = v[rows] + offset[:, None] * n[rows]
    return moved


# --------------------------------------------------------------------------- public API


def head_mask_img(
    t1: ImageLike, *, name: str = "t1", working_mm: float | None = _WORKING_MM
) -> nib.Nifti1Image:
    """Filled head mask (skin and everything inside it) on the T1 grid.

    Parameters
    ----------
    t1 : str, os.PathLike or nibabel image
        Whole-head T1 (not skull-stripped).
    name : str
        Argument name used in error messages.
    working_mm : float or None
        Working voxel size of the mask steps (see docs/head.md);
        ``None`` works on the native grid.

    Returns
    -------
    nibabel.Nifti1Image
        uint8, 1 inside the head, on the T1's grid and affine. Air cavities
        (sinuses, ear canals, airway) are inside; one connected component
        without holes.

    Raises
    ------
    HeadSurfaceError
        No head found, or the image is skull-stripped.
    """
    from scipy import ndimage

    model = _head_model(t1, name, working_mm)
    f = np.asarray(model.factors, dtype=np.float64)
    # T1 index i -> working index (i - (f - 1) / 2) / f: trilinear upsampling of the field.
    upsampled = ndimage.affine_transform(
        _mask_field(model),
        np.diag(1.0 / f),
        offset=-(f - 1.0) / (2.0 * f),
        output_shape=model.shape,
        order=1,
        mode="nearest",
    )
    mask = ndimage.binary_fill_holes(_largest_component(upsampled > 0))
    out = nib.Nifti1Image(mask.astype(np.uint8), model.affine)
    out.set_sform(model.affine, code=1)
    out.set_qform(model.affine, code=1)
    return out


def scalp_surface(
    t1: ImageLike,
    *,
    frame: str = "T1w",
    name: str = "t1",
    target_faces: int = 60000,
    working_mm: float | None = _WORKING_MM,
    smooth_iterations: int = 10,
) -> ScalpSurface:
    """Extract the scalp (outer skin) surface of a whole-head T1.

    Parameters
    ----------
    t1 : str, os.PathLike or nibabel image
        Whole-head T1 (with skin; not skull-stripped). Any voxel order
        (RAS, LAS, LPS, oblique) and anisotropic voxels are fine.
    frame : str
        Name of the image's world frame, stored on the result
        (``"T1w"`` for a patient, ``"MNI152NLin6Asym"`` for the bundled head).
    name : str
        Argument name used in error messages.
    target_faces : int
        Upper bound of the number of faces after decimation.
    working_mm : float or None
        Working voxel size of the mask steps (default 2 mm; smaller voxels are
        block-averaged by an integer factor). ``None`` works on the native grid.
    smooth_iterations : int
        Taubin smoothing passes (each a shrink and an inflate step); 0 disables.

    Returns
    -------
    ScalpSurface
        Closed single-component outward mesh in world RAS+ mm of ``t1``, the
        field-of-view cut flags, the defacing flag and notes.

    Raises
    ------
    HeadSurfaceError
        No head found, the image is skull-stripped, or no closed surface
        could be made.
    """
    return _scalp_surface(
        t1,
        frame=frame,
        name=name,
        target_faces=target_faces,
        working_mm=working_mm,
        smooth_iterations=smooth_iterations,
    )


def _scalp_surface(
    t1: ImageLike,
    *,
    frame: str,
    name: str,
    target_faces: int,
    working_mm: float | None,
    smooth_iterations: int,
    timings: dict[str, float] | None = None,
) -> ScalpSurface:
    """:func:`scalp_surface` with optional stage timings (seconds) for the benchmark."""
    if not isinstance(frame, str) or not frame:
        raise ValueError(f"frame must be a non-empty string, got {frame!r}")
    target_faces = check_target_faces(target_faces)
    model = _head_model(t1, name, working_mm, timings)
    work_to_index = _work_to_index(model.factors)
    work_to_world = model.affine @ work_to_index
    spacing = _zooms(work_to_world)

    def refine(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
        index = apply_affine(np.linalg.inv(model.affine), vertices)
        return _outermost_crossing(
            model.skin,
            np.linalg.inv(work_to_world),
            vertices,
            faces,
            outside_mm=float(spacing.max()),
            inside_mm=_SKIN_DEPTH_MM + float(spacing.max()),
            face_axes=_touched_face_axes(
                index, model.touched, model.affine, model.shape, model.factors
            ),
        )

    mesh, index = mesh_from_field(
        indicator_field(model.solid),
        work_to_world,
        work_to_index,
        model.shape,
        target_faces=target_faces,
        smooth_iterations=smooth_iterations,
        refine=refine,
        timings=timings,
    )
    if not mesh.is_watertight:
        raise HeadSurfaceError(
            f"{name}: the scalp surface is not closed after meshing; check the image "
            "(a whole-head T1 is expected) or retry with working_mm=None."
        )
    fov = np.zeros(len(index), dtype=bool)
    for axis, side in model.touched:
        if side == 0:
            fov |= index[:, axis] <= -0.5 + _FOV_TOL_VOX
        else:
            fov |= index[:, axis] >= model.shape[axis] - 0.5 - _FOV_TOL_VOX
    if model.cut.any():
        from scipy import ndimage

        spacing = _zooms(model.affine @ work_to_index)
        distance = ndimage.distance_transform_edt(~model.cut, sampling=spacing)
        work_index = apply_affine(np.linalg.inv(work_to_index), index).T
        near = ndimage.map_coordinates(distance, work_index, order=1, mode="nearest")
        fov |= near <= 0.5 * float(spacing.max()) + _FOV_TOL_VOX * float(_zooms(model.affine).max())
    notes = list(model.notes)
    genus = max(0, (2 - int(mesh.euler_number)) // 2)
    if genus:
        notes.append(
            f"the skin surface has {genus} handle(s) (tunnels through the head) that could not "
            "be closed; entries are checked against the image, but check the pictures"
        )
    return ScalpSurface(
        mesh=mesh,
        frame=frame,
        fov_boundary=fov,
        defaced=model.defaced,
        notes=tuple(notes),
        skin_level=model.level,
        genus=genus,
        voxel_mm=tuple(float(z) for z in _zooms(model.affine)),  # type: ignore[arg-type]
    )
