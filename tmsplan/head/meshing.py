"""Closed, outward triangle meshes from signed voxel fields (marching cubes, smoothing, decimation).

Shared by the scalp (:mod:`tmsplan.head.scalp`) and the brain/ROI surfaces of the pictures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from nibabel.affines import apply_affine

from tmsplan.errors import HeadSurfaceError
from tmsplan.io.images import ImageLike, check_img

if TYPE_CHECKING:  # trimesh (with scipy and networkx) is imported where it is used
    import trimesh

__all__ = [
    "StageClock",
    "check_target_faces",
    "indicator_field",
    "mesh_from_field",
    "surface_from_mask",
]

EPS = 0.02  # clamp of signed fields: no voxel exactly on the level
_TAUBIN_LAMBDA = 0.5
_TAUBIN_NU = 0.52  # 0 < 1/lambda - 1/nu < 0.1: no shrinkage


class StageClock:
    """Stage timer for the benchmark: adds seconds per stage to a dict (or does nothing)."""

    def __init__(self, timings: dict[str, float] | None) -> None:
        import time

        self._time = time.perf_counter
        self._timings = timings
        self._last = self._time()

    def lap(self, stage: str) -> None:
        """Add the seconds since the last lap to ``stage``."""
        now = self._time()
        if self._timings is not None:
            self._timings[stage] = self._timings.get(stage, 0.0) + now - self._last
        self._last = now


def _pad_closed(field: np.ndarray) -> np.ndarray:
    """Pad by one voxel with the negated edge values (surface closes on the box face)."""
    padded = np.pad(field, 1, mode="edge")
    inner = np.zeros(padded.shape, dtype=bool)
    inner[1:-1, 1:-1, 1:-1] = True
    padded[~inner] = -np.maximum(np.abs(padded[~inner]), EPS)
    return padded


def _keep_largest(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(vertices)
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]]])
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
    count, labels = connected_components(graph, directed=False)
    if count == 1:
        return vertices, faces
    face_labels = labels[faces[:, 0]]
    keep_label = int(np.argmax(np.bincount(face_labels, minlength=count)))
    faces = faces[face_labels == keep_label]
    used = np.unique(faces)
    remap = np.full(n, -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    return vertices[used], remap[faces]


def mesh_from_field(
    field: np.ndarray,
    work_to_world: np.ndarray,
    work_to_index: np.ndarray,
    shape: tuple[int, int, int],
    *,
    target_faces: int,
    smooth_iterations: int,
    refine=None,
    timings: dict[str, float] | None = None,
) -> tuple[trimesh.Trimesh, np.ndarray]:
    """Zero level set of ``field`` -> closed outward world mesh and T1 voxel coordinates.

    Returns
    -------
    mesh : trimesh.Trimesh
        World RAS+ mm, outward winding, process=False.
    index : (n, 3) float64
        Vertex positions in T1 voxel indices.
    """
    import trimesh
    from fast_simplification import simplify
    from skimage.measure import marching_cubes
    from trimesh.smoothing import filter_taubin, laplacian_calculation

    clock = StageClock(timings)
    padded = _pad_closed(field)
    padded[padded == 0.0] = np.float32(1e-6)  # no vertex exactly on a voxel: no degenerate faces
    vertices, faces, _, _ = marching_cubes(padded, level=0.0, allow_degenerate=False)
    vertices = vertices.astype(np.float64) - 1.0
    faces = faces.astype(np.int64)
    vertices, faces = _keep_largest(vertices, faces)
    index = apply_affine(work_to_index, vertices)
    index = np.clip(index, -0.5, np.asarray(shape, dtype=np.float64) - 0.5)
    index_to_world = work_to_world @ np.linalg.inv(work_to_index)
    world = apply_affine(index_to_world, index)
    if refine is not None:
        world = refine(world, faces)

    mesh = trimesh.Trimesh(vertices=world, faces=faces, process=False)
    clock.lap("marching_cubes")
    if smooth_iterations > 0:
        operator = laplacian_calculation(mesh, equal_weight=True)
        filter_taubin(
            mesh,
            lamb=_TAUBIN_LAMBDA,
            nu=_TAUBIN_NU,
            iterations=2 * int(smooth_iterations),
            laplacian_operator=operator,
        )
    clock.lap("smoothing")
    vertices, faces = np.asarray(mesh.vertices), np.asarray(mesh.faces)
    # Quadric decimation can pinch thin parts into non-manifold edges; a gentler target
    # then keeps the surface closed (at worst the smoothed mesh is kept undecimated).
    count = int(target_faces) if target_faces else len(faces)
    while count < len(faces):
        small_v, small_f = simplify(vertices, faces, target_count=count)
        small_v, small_f = _keep_largest(
            np.asarray(small_v, dtype=np.float64), np.asarray(small_f, dtype=np.int64)
        )
        if trimesh.Trimesh(vertices=small_v, faces=small_f, process=False).is_watertight:
            vertices, faces = small_v, small_f
            break
        count *= 2
    clock.lap("decimation")
    # Smoothing can push the cut floor a fraction of a voxel out of the box: put it back.
    world_to_index = np.linalg.inv(index_to_world)
    index = apply_affine(world_to_index, vertices)
    index = np.clip(index, -0.5, np.asarray(shape, dtype=np.float64) - 0.5)
    vertices = apply_affine(index_to_world, index)
    mesh = trimesh.Trimesh(vertices=vertices, faces=faces, process=False)
    if mesh.volume < 0:  # closed mesh: outward normals <=> positive signed volume
        mesh = trimesh.Trimesh(vertices=vertices, faces=faces[:, ::-1].copy(), process=False)
    return mesh, index


def indicator_field(solid: np.ndarray) -> np.ndarray:
    """Signed field of a binary solid whose 0 level set lies on its voxel boundary."""
    from scipy import ndimage

    field = ndimage.gaussian_filter(solid.astype(np.float32), 0.75, mode="nearest") - 0.5
    return np.where(solid, np.maximum(field, EPS), np.minimum(field, -EPS)).astype(np.float32)


def check_target_faces(target_faces: int) -> int:
    """The face budget as an int >= 100, or ValueError."""
    if isinstance(target_faces, bool) or not isinstance(target_faces, (int, np.integer)):
        raise ValueError(f"target_faces must be an integer, got {target_faces!r}")
    if target_faces < 100:
        raise ValueError(f"target_faces must be at least 100, got {target_faces}")
    return int(target_faces)


def surface_from_mask(
    mask_img: ImageLike,
    *,
    frame: str,
    target_faces: int = 30000,
    smooth_iterations: int = 10,
    name: str = "mask",
) -> trimesh.Trimesh:
    """Closed outward surface of a binary mask (e.g. the brain, for renders).

    The largest 6-connected component of ``mask > 0.5`` is taken with its
    internal holes filled, lightly blurred (sigma 0.75 voxel) and meshed at the
    0.5 level, so the surface lies on the mask's voxel boundary.

    Parameters
    ----------
    mask_img : str, os.PathLike or nibabel image
        Binary mask (values > 0.5 are inside).
    frame : str
        Name of the mask's world frame (only checked to be given; the mesh is
        in that frame's RAS+ mm).
    target_faces : int
        Upper bound of the number of faces after decimation.
    smooth_iterations : int
        Taubin smoothing passes; 0 disables.
    name : str
        Argument name used in error messages.

    Returns
    -------
    trimesh.Trimesh
        Closed single-component mesh, vertices ``(n, 3)`` float64 world RAS+ mm,
        outward normals, ``process=False``.

    Raises
    ------
    HeadSurfaceError
        The mask is empty.
    """
    from scipy import ndimage

    if not isinstance(frame, str) or not frame:
        raise ValueError(f"frame must be a non-empty string, got {frame!r}")
    target_faces = check_target_faces(target_faces)
    img = check_img(mask_img, name=name, require_signal=False)
    inside = np.asarray(img.dataobj) > 0.5
    if not inside.any():
        raise HeadSurfaceError(
            f"{name}: the mask is empty (no voxel > 0.5); give a non-empty mask."
        )
    labels, count = ndimage.label(inside)
    if count > 1:
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        inside = labels == int(np.argmax(sizes))
    solid = ndimage.binary_fill_holes(inside)
    field = ndimage.gaussian_filter(solid.astype(np.float32), 0.75, mode="constant") - 0.5
    field = np.where(solid, np.maximum(field, EPS), np.minimum(field, -EPS)).astype(np.float32)
    identity = np.eye(4)
    mesh, _ = mesh_from_field(
        field,
        np.asarray(img.affine, dtype=np.float64),
        identity,
        tuple(int(n) for n in inside.shape),  # type: ignore[arg-type]
        target_faces=target_faces,
        smooth_iterations=smooth_iterations,
    )
    if not mesh.is_watertight:
        raise HeadSurfaceError(f"{name}: the mask surface could not be closed; check the mask.")
    return mesh
