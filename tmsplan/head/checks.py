"""Runtime self-checks of a planned geometry against the head image.

Design notes: ``docs/projection.md``, section ``tmsplan.head.checks``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import nibabel as nib
import numpy as np
from nibabel.affines import apply_affine

from tmsplan.coil.placement import ScalpProximity
from tmsplan.head.scalp import ScalpSurface
from tmsplan.io.images import nearest_voxel

__all__ = [
    "COARSE_VOXEL_MM",
    "ANISOTROPY_RATIO",
    "MIN_SCALP_BRAIN_MM",
    "MAX_SCALP_BRAIN_MM",
    "EntryCheck",
    "SkinVoxels",
    "check_entry",
    "image_warnings",
]

COARSE_VOXEL_MM = 2.0
"""Voxels coarser than this (any axis) get a warning: the skin is placed less precisely."""
ANISOTROPY_RATIO = 2.0
"""Largest / smallest voxel size above this gets a warning."""
MIN_SCALP_BRAIN_MM = 6.0
"""Scalp to brain closer than this at an entry is implausible for an adult (skin + skull + CSF)."""
MAX_SCALP_BRAIN_MM = 40.0
"""Scalp to brain farther than this at an entry is implausible over the cranium."""
_RAY_START_MM = 3.0  # the outward ray is sampled from here (past the skin's partial volume)
_RAY_END_MM = 60.0
_RAY_STEP_MM = 0.5
_TISSUE_RUN_MM = 3.0  # this much tissue in a row beyond the entry: the entry is inside the head
_CONE_DEG = 35.0  # rays tilted this much from the normal (6 around it) must be blocked too


@dataclass(frozen=True)
class EntryCheck:
    """Result of :func:`check_entry` (all distances in mm).

    Attributes
    ----------
    on_outer_skin : bool
        False when head tissue (in the image) or the scalp surface lies beyond
        the entry along its outward normal AND along every ray of a cone around
        it: the entry is enclosed by the head (a cavity wall, not the skin).
    blocked_outward : bool
        Tissue or surface beyond the entry along the normal itself (a cavity
        wall, or a concavity such as under the ear where the coil cannot sit flat).
    tissue_beyond_mm : float
        Distance from the entry to the first tissue run found outward (inf if none).
    surface_beyond_mm : float
        Distance to the next crossing of the scalp mesh outward (inf if none).
    scalp_brain_mm : float or None
        Distance from the entry to the nearest brain voxel (None without a brain mask).
    warnings : tuple of str
        What looked wrong, one sentence each.
    """

    on_outer_skin: bool
    blocked_outward: bool
    tissue_beyond_mm: float
    surface_beyond_mm: float
    scalp_brain_mm: float | None
    warnings: tuple[str, ...]

    def describe(self) -> dict:
        """JSON-ready summary for the plan record."""

        def num(value: float | None) -> float | None:
            return None if value is None or not np.isfinite(value) else round(float(value), 2)

        return {
            "on_outer_skin": self.on_outer_skin,
            "blocked_outward": self.blocked_outward,
            "tissue_beyond_entry_mm": num(self.tissue_beyond_mm),
            "surface_beyond_entry_mm": num(self.surface_beyond_mm),
            "scalp_brain_mm": num(self.scalp_brain_mm),
            "plausible_scalp_brain_mm": [MIN_SCALP_BRAIN_MM, MAX_SCALP_BRAIN_MM],
        }


@dataclass(frozen=True, eq=False)
class SkinVoxels:
    """Which voxels of a head image are head tissue (T1 at or above the skin level).

    What the outward-ray check samples, packed eight voxels to a byte so that a
    cached head carries it (about 1 MB for a 1 mm head) and a plan on that head
    never reads the T1's voxels.

    Attributes
    ----------
    bits : (ceil(n / 8),) uint8
        ``np.packbits`` of the boolean volume in C order.
    shape : tuple of int
        Voxel grid of the T1.
    affine : (4, 4) float64
        Voxel -> world (RAS+ mm) of the T1.
    """

    bits: np.ndarray = field(repr=False)
    shape: tuple[int, int, int]
    affine: np.ndarray = field(repr=False)

    @classmethod
    def from_image(cls, img: nib.spatialimages.SpatialImage, level: float) -> SkinVoxels:
        """The tissue voxels of ``img`` (a checked T1) at the scalp's skin level."""
        data = np.asanyarray(img.dataobj)
        tissue = data.reshape(data.shape[:3]) >= level
        return cls(
            np.packbits(tissue, axis=None),
            tuple(int(n) for n in tissue.shape),
            np.asarray(img.affine, dtype=np.float64),
        )

    def is_tissue(self, points: np.ndarray) -> np.ndarray:
        """``(k,)`` bool for world points ``(k, 3)``: in a tissue voxel (False outside the grid)."""
        index = np.rint(apply_affine(np.linalg.inv(self.affine), points)).astype(np.int64)
        inside = np.all((index >= 0) & (index < np.array(self.shape)), axis=1)
        flat = np.ravel_multi_index(index[inside].T, self.shape)
        result = np.zeros(len(points), dtype=bool)
        result[inside] = (self.bits[flat >> 3] >> (7 - (flat & 7))) & 1 == 1
        return result


def _tissue_beyond(skin: SkinVoxels, entry: np.ndarray, outward: np.ndarray) -> float:
    """Distance (mm) to the first run of >= _TISSUE_RUN_MM of tissue outward (inf if none)."""
    offsets = np.arange(_RAY_START_MM, _RAY_END_MM + 1e-9, _RAY_STEP_MM)
    tissue = skin.is_tissue(entry[None, :] + offsets[:, None] * outward[None, :])
    run = int(round(_TISSUE_RUN_MM / _RAY_STEP_MM))
    runs = np.convolve(tissue.astype(int), np.ones(run, dtype=int), mode="valid")
    hits = np.nonzero(runs >= run)[0]
    return float(offsets[hits[0]]) if hits.size else float("inf")


def _surface_beyond(proximity: ScalpProximity, entry: np.ndarray, outward: np.ndarray) -> float:
    """Distance (mm) to the next crossing of the mesh along the outward ray (inf if none)."""
    crossings = proximity.ray_crossings(entry + 1.0 * outward, outward)
    return float(1.0 + crossings.min()) if crossings.size else float("inf")


def _cone(axis: np.ndarray, angle_deg: float, count: int = 6) -> list[np.ndarray]:
    """Unit rays tilted ``angle_deg`` from ``axis``, evenly around it."""
    helper = np.eye(3)[int(np.argmin(np.abs(axis)))]
    u = np.cross(axis, helper)
    u /= np.linalg.norm(u)
    v = np.cross(axis, u)
    tilt = np.radians(angle_deg)
    return [
        np.cos(tilt) * axis + np.sin(tilt) * (np.cos(a) * u + np.sin(a) * v)
        for a in np.linspace(0.0, 2.0 * np.pi, count, endpoint=False)
    ]


def _brain_distance(brain_img: nib.spatialimages.SpatialImage, point: np.ndarray) -> float:
    data = np.asarray(brain_img.dataobj)
    return nearest_voxel(data, brain_img.affine, point, above=0.5)[1]


def check_entry(
    entry: np.ndarray,
    outward_normal: np.ndarray,
    scalp: ScalpSurface,
    t1: SkinVoxels | nib.spatialimages.SpatialImage | None,
    *,
    brain_img: nib.spatialimages.SpatialImage | None = None,
    name: str = "target",
    proximity: ScalpProximity | None = None,
) -> EntryCheck:
    """Check that a scalp entry is on the outer skin at a plausible distance from the brain.

    Parameters
    ----------
    entry : (3,) float
        Scalp entry, world RAS+ mm of the T1 (frame ``scalp.frame``).
    outward_normal : (3,) float
        Outward scalp normal at the entry (unit vector, same frame).
    scalp : ScalpSurface
        The surface the entry was taken from (its mesh and skin level).
    t1 : SkinVoxels, nibabel image or None
        The head image the surface was made from (checked), or its tissue voxels
        (a head's :attr:`~tmsplan.head.cache.Head.skin_voxels`); None, like a
        surface without a skin level, skips the look for tissue beyond the entry.
    brain_img : nibabel image, optional
        Brain mask in the same world frame (the MNI brain mask, or the one
        carried into the T1); without it the scalp-brain distance is not checked.
    name : str
        Target name used in the warnings.
    proximity : ScalpProximity, optional
        The queries of ``scalp.mesh`` set up once (a cached head's); default:
        set up here.

    Returns
    -------
    EntryCheck
        ``on_outer_skin`` False means the entry is inside the head: the plan
        must not treat the target as reachable.
    """
    entry = np.asarray(entry, dtype=np.float64)
    outward = np.asarray(outward_normal, dtype=np.float64)
    outward = outward / max(float(np.linalg.norm(outward)), 1e-12)
    warnings: list[str] = []
    skin = t1
    if t1 is not None and not isinstance(t1, SkinVoxels) and scalp.skin_level is not None:
        skin = SkinVoxels.from_image(t1, scalp.skin_level)
    if proximity is None:
        proximity = ScalpProximity(scalp, scalp.fov_boundary)
    elif proximity.mesh is not scalp and not proximity.describes(scalp):
        raise ValueError("proximity was set up for another scalp surface.")

    def beyond(direction: np.ndarray) -> tuple[float, float]:
        tissue = (
            _tissue_beyond(skin, entry, direction)
            if skin is not None and scalp.skin_level is not None
            else float("inf")
        )
        return tissue, _surface_beyond(proximity, entry, direction)

    tissue, surface = beyond(outward)
    blocked = bool(np.isfinite(tissue) or np.isfinite(surface))
    on_skin = True
    if blocked:
        on_skin = not all(np.isfinite(min(beyond(ray))) for ray in _cone(outward, _CONE_DEG))
    distance = min(tissue, surface)
    if not on_skin:
        warnings.append(
            f"target {name!r}: the scalp entry is NOT on the outer skin: head tissue lies "
            f"{distance:.0f} mm further out along the scalp normal and all around it (a cavity "
            "wall such as a sinus, not the skin); the target is marked not reachable; check the "
            "T1 and the pictures"
        )
    elif blocked:
        warnings.append(
            f"target {name!r}: the scalp entry lies in a concavity: other head tissue (ear, "
            f"jaw, nose) is {distance:.0f} mm out along the scalp normal, so the coil cannot sit "
            "flat there as planned; check the pictures"
        )
    brain = _brain_distance(brain_img, entry) if brain_img is not None else None
    if brain is not None and on_skin:
        if brain < MIN_SCALP_BRAIN_MM:
            warnings.append(
                f"target {name!r}: the scalp entry is only {brain:.1f} mm from the brain "
                f"(adult scalp + skull + CSF are at least ~{MIN_SCALP_BRAIN_MM:g} mm): the "
                "surface there may not be the skin, or the transform is off; check the pictures"
            )
        elif brain > MAX_SCALP_BRAIN_MM:
            warnings.append(
                f"target {name!r}: the scalp entry is {brain:.1f} mm from the brain, more than "
                f"the ~{MAX_SCALP_BRAIN_MM:g} mm expected over the cranium; check the entry "
                "and the transform on the pictures"
            )
    return EntryCheck(
        on_outer_skin=on_skin,
        blocked_outward=blocked,
        tissue_beyond_mm=tissue,
        surface_beyond_mm=surface,
        scalp_brain_mm=brain,
        warnings=tuple(warnings),
    )


def image_warnings(scalp: ScalpSurface) -> list[str]:
    """Warnings about the head image that make a planned geometry less trustworthy.

    Voxels coarser than :data:`COARSE_VOXEL_MM`, anisotropic voxels, a defaced
    face, a surface with handles, and a head touching the image box anywhere
    but at the neck (the skin there is cut off).

    Parameters
    ----------
    scalp : ScalpSurface
        The head's surface (carries the voxel size, flags and notes).

    Returns
    -------
    list of str
        One sentence each; empty when nothing looks wrong.
    """
    out: list[str] = []
    zooms = np.asarray(scalp.voxel_mm, dtype=np.float64)
    sizes = " x ".join(f"{z:.2g}" for z in zooms)
    if zooms.max() > COARSE_VOXEL_MM + 1e-6:
        out.append(
            f"the T1's voxels are coarse ({sizes} mm, coarser than {COARSE_VOXEL_MM:g} mm): the "
            "skin and the depth are only accurate to about a voxel; use a 1 mm T1 if you have one"
        )
    if zooms.max() / zooms.min() > ANISOTROPY_RATIO:
        out.append(
            f"the T1's voxels are very anisotropic ({sizes} mm): the skin is placed less "
            "precisely along the thick axis; use an isotropic T1 if you have one"
        )
    if scalp.defaced:
        out.append(
            "the T1 looks defaced (face removed): the scalp over the face is missing, so "
            "targets over the forehead are unreliable and facial landmarks must come from "
            "the user or the MNI transform."
        )
    if scalp.genus:
        out.append(
            f"the skin surface has {scalp.genus} handle(s) that could not be closed; every "
            "entry was re-checked against the image, but check the pictures"
        )
    for note in scalp.notes:
        if "touches the" in note and "field of view" in note:
            out.append(note)
    return out
