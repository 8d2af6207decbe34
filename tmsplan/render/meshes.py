"""Meshes of a plan scene: triangle-mesh conversion, decimation, isosurfaces, the coil.

All in world RAS+ millimetres; pyvista is imported only when a function runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import trimesh

from tmsplan.errors import ImageError
from tmsplan.io.images import ImageLike, check_img, voxel_to_world
from tmsplan.render._vtk import pyvista

if TYPE_CHECKING:  # pragma: no cover
    import pyvista as pv

__all__ = [
    "COLORS",
    "PlanSurfaces",
    "as_polydata",
    "coil_meshes",
    "isosurface_from_img",
    "plan_surfaces",
]

COLORS = {
    "scalp": (0.93, 0.78, 0.64),
    "brain": (0.72, 0.72, 0.76),
    "activation": (1.0, 0.45, 0.05),
    "roi": (0.0, 0.72, 0.85),
    "target": (0.0, 1.0, 0.0),
    "unreachable": (1.0, 0.0, 0.0),
    "entry": (1.0, 0.0, 1.0),
    "depth line": (0.0, 0.0, 0.0),
    "coil": (0.15, 0.3, 0.85),
    "handle": (0.05, 0.12, 0.45),
    "landmark": (0.08, 0.08, 0.08),  # not the legend background (0.35 grey): readable
}
"""RGB (0-1) colour of each layer; the target is pure green so tests can find it."""

COIL_WING_RADIUS_MM = 37.5
"""Outer radius of each wing of the drawn figure-8 coil (a 75 mm-wing coil)."""
COIL_INNER_RADIUS_MM = 14.0
COIL_THICKNESS_MM = 12.0
HANDLE_LENGTH_MM = 110.0
HANDLE_RADIUS_MM = 10.0


def as_polydata(mesh: Any, *, name: str = "mesh") -> pv.PolyData:
    """Convert a triangle mesh to a new :class:`pyvista.PolyData` (input unchanged).

    Parameters
    ----------
    mesh : trimesh.Trimesh or pyvista.PolyData
        Vertices in world RAS+ millimetres.
    name : str
        Argument name for error messages.

    Returns
    -------
    pyvista.PolyData
    """
    pv = pyvista()
    if isinstance(mesh, trimesh.Trimesh):
        faces = np.asarray(mesh.faces, dtype=np.int64)
        cells = np.hstack([np.full((len(faces), 1), 3, dtype=np.int64), faces]).ravel()
        return pv.PolyData(np.asarray(mesh.vertices, dtype=np.float64).copy(), cells)
    if isinstance(mesh, pv.PolyData):
        return mesh.copy()
    raise TypeError(
        f"{name}: expected a trimesh.Trimesh or a pyvista.PolyData, got {type(mesh).__name__}."
    )


def _as_trimesh(mesh: Any, *, name: str = "scalp_mesh") -> trimesh.Trimesh:
    if isinstance(mesh, trimesh.Trimesh):
        return mesh
    pv = pyvista()
    if isinstance(mesh, pv.PolyData):
        tri = mesh.triangulate()
        faces = np.asarray(tri.faces).reshape(-1, 4)[:, 1:]
        return trimesh.Trimesh(np.asarray(tri.points, dtype=np.float64), faces, process=False)
    raise TypeError(
        f"{name}: expected a trimesh.Trimesh or a pyvista.PolyData, got {type(mesh).__name__}."
    )


def _decimated(mesh: Any, max_faces: int | None, *, name: str) -> pv.PolyData:
    """PolyData of ``mesh`` with at most ``max_faces`` triangles (quadric decimation)."""
    tri = _as_trimesh(mesh, name=name)
    if max_faces is not None and len(tri.faces) > max_faces:
        tri = tri.simplify_quadric_decimation(face_count=int(max_faces))
    return as_polydata(tri, name=name)


@dataclass(frozen=True)
class PlanSurfaces:
    """The surfaces of a plan scene, made once and decimated once per triangle budget.

    Made by :func:`plan_surfaces`; one report draws its pictures and its 3D
    view from the same object. ``scalp``, ``brain`` and ``activation`` are
    full-resolution triangle meshes (world RAS+ mm) that :meth:`at` decimates;
    ``roi`` is drawn as it is (already small).
    """

    scalp: trimesh.Trimesh
    brain: trimesh.Trimesh | None = None
    activation: trimesh.Trimesh | None = None
    roi: Any = None
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def at(self, max_faces: int | None) -> dict[str, pv.PolyData | None]:
        """``scalp``, ``brain``, ``activation`` with at most ``max_faces`` triangles, and ``roi``.

        Meshes are shared by every caller asking for the same budget: do not change them.
        """
        out: dict[str, pv.PolyData | None] = {"roi": self.roi}
        for name in ("scalp", "brain", "activation"):
            mesh = getattr(self, name)
            if mesh is None:
                out[name] = None
                continue
            faces = len(mesh.faces) if max_faces is None else min(len(mesh.faces), max_faces)
            if (name, faces) not in self._cache:
                # from the coarsest finer mesh made so far: a fraction of the work
                finer = [n for (k, n) in self._cache if k == name and n > faces]
                source = self._cache[name, min(finer)] if finer else mesh
                self._cache[name, faces] = _decimated(source, faces, name=name)
            out[name] = self._cache[name, faces]
        return out


def record_threshold(record: Mapping) -> tuple[float | None, str]:
    """The record's activation threshold (None when not given) and sign."""
    activation = record.get("activation") or {}
    threshold = activation.get("threshold")
    sign = activation.get("sign") or "positive"
    return (None if threshold is None else float(threshold)), str(sign)


def plan_surfaces(
    record: Mapping,
    scalp_mesh: Any,
    *,
    brain_mesh: Any = None,
    activation_img: ImageLike | None = None,
    roi_img: ImageLike | None = None,
) -> PlanSurfaces:
    """Make the surfaces of a plan scene once: scalp, brain, activation cluster, ROI.

    Parameters
    ----------
    record : dict
        Plan record (activation threshold and sign; the atlas ROI sphere).
    scalp_mesh, brain_mesh : trimesh.Trimesh or pyvista.PolyData
        In ``record["space"]`` (RAS+ mm); ``brain_mesh`` optional.
    activation_img : image, optional
        Its isosurface at the record's threshold (and sign) is the activation layer.
    roi_img : image, optional
        ROI mask (smoothed outline at 0.5, at most 800 triangles); without it, the
        atlas sphere when its centre is known in the record's frame.

    Returns
    -------
    PlanSurfaces
    """
    pv = pyvista()
    scalp = _as_trimesh(scalp_mesh, name="scalp_mesh")
    brain = None if brain_mesh is None else _as_trimesh(brain_mesh, name="brain_mesh")
    activation = None
    if activation_img is not None:
        threshold, sign = record_threshold(record)
        if threshold is None:
            raise ImageError(
                "activation_img: the record gives no activation threshold, so the cluster "
                "surface cannot be drawn; pass a record with activation.threshold."
            )
        activation = _as_trimesh(
            isosurface_from_img(activation_img, threshold, name="activation_img", sign=sign),
            name="activation_img",
        )
    roi = None
    if roi_img is not None:
        roi = _decimated(
            isosurface_from_img(roi_img, 0.5, name="roi_img").smooth_taubin(n_iter=20),
            800,
            name="roi_img",
        )
    elif (sphere := _roi_sphere(record)) is not None:
        roi = pv.Sphere(radius=sphere[1], center=sphere[0], theta_resolution=24, phi_resolution=16)
    return PlanSurfaces(scalp=scalp, brain=brain, activation=activation, roi=roi)


def isosurface_from_img(
    img: ImageLike,
    level: float,
    *,
    name: str = "image",
    sign: str = "positive",
    step_mm: float | None = None,
) -> pv.PolyData:
    """Isosurface of an image at ``level``, in world millimetres.

    Marching cubes on the voxel grid (padded by one voxel so the surface is
    closed at the field-of-view border), then voxel -> world with the image's
    affine, so images stored RAS, LAS or LPS give the same world surface.

    Parameters
    ----------
    img : str, os.PathLike or nibabel image
        3-D image (map or mask).
    level : float
        Iso-value (e.g. a z threshold, or 0.5 for a binary mask).
    name : str
        Argument name for error messages.
    sign : {"positive", "negative", "absolute"}
        Surface of ``data >= level``, ``-data >= level`` or ``|data| >= level``.
    step_mm : float, optional
        March over every n-th voxel, n the whole number of voxels nearest to
        ``step_mm`` (at least 1): a 1 mm mask at ``step_mm=2`` gives a quarter
        of the triangles at a fifth of the time. Default: every voxel.

    Returns
    -------
    pyvista.PolyData
        Triangles in the image's world frame (RAS+ mm), outward normals.

    Raises
    ------
    ImageError
        No voxel reaches ``level``.
    """
    from skimage.measure import marching_cubes

    pv = pyvista()
    checked = check_img(img, name=name, nan_policy="zero", require_signal=False)
    data = np.asarray(checked.dataobj, dtype=np.float64)
    if sign == "negative":
        data = -data
    elif sign == "absolute":
        data = np.abs(data)
    elif sign != "positive":
        raise ValueError(f"sign must be 'positive', 'negative' or 'absolute', got {sign!r}.")
    level = float(level)
    if not np.any(data >= level):
        raise ImageError(
            f"{name}: no voxel reaches {level:g} ({sign} values; maximum "
            f"{float(data.max()):.3g}); nothing to draw. Check the threshold or the image."
        )
    floor = min(float(data.min()), level) - 1.0
    padded = np.pad(data, 1, mode="constant", constant_values=floor)
    step = 1
    if step_mm is not None:
        voxel_mm = float(np.max(np.linalg.norm(checked.affine[:3, :3], axis=0)))
        step = max(1, round(step_mm / voxel_mm))
    verts, faces, _, _ = marching_cubes(padded, level=level, step_size=step)
    world = voxel_to_world(checked.affine, verts - 1.0)
    # skimage's normals point towards decreasing values (outward for a blob);
    # a mirroring affine (det < 0) would turn the winding inside out.
    if np.linalg.det(checked.affine[:3, :3]) > 0:
        faces = faces[:, ::-1]
    cells = np.hstack([np.full((len(faces), 1), 3, dtype=np.int64), faces]).ravel()
    return pv.PolyData(world, cells)


def coil_meshes(coil_matrix: np.ndarray, *, stand_in: bool = False) -> dict[str, pv.PolyData]:
    """Figure-8 coil body and handle placed by a canonical coil matrix.

    In coil coordinates the body is two rings (outer radius
    ``COIL_WING_RADIUS_MM``) centred at x = -R and x = +R, touching at the coil
    centre, spanning z in ``[-COIL_THICKNESS_MM, 0]`` (outside the head, since
    +z points into it); the handle is a cylinder from the body along +y.

    Parameters
    ----------
    coil_matrix : (4, 4) float
        Canonical coil pose (columns x, y = handle, z = into the head, centre),
        world RAS+ mm.
    stand_in : bool, keyword-only
        Draw a plain disc (radius ``COIL_WING_RADIUS_MM``) instead of the two
        wings: the stand-in for coils without a flat figure-8 shape
        (double-cone, H-coils); the picture labels it as a stand-in.

    Returns
    -------
    dict
        ``{"body": PolyData, "handle": PolyData}`` in world millimetres.
    """
    pv = pyvista()
    matrix = np.asarray(coil_matrix, dtype=np.float64)
    r = COIL_WING_RADIUS_MM
    wings = []
    for side in () if stand_in else (-1.0, 1.0):
        ring = pv.Disc(
            center=(side * r, 0.0, 0.0),
            inner=COIL_INNER_RADIUS_MM,
            outer=r,
            normal=(0.0, 0.0, 1.0),
            r_res=1,
            c_res=64,
        )
        wings.append(ring.extrude((0.0, 0.0, -COIL_THICKNESS_MM), capping=True))
    if stand_in:
        disc = pv.Disc(center=(0.0, 0.0, 0.0), inner=0.0, outer=r, normal=(0.0, 0.0, 1.0), c_res=64)
        body = disc.extrude((0.0, 0.0, -COIL_THICKNESS_MM), capping=True)
        body = body.extract_surface(algorithm=None).triangulate()
    else:
        body = wings[0].merge(wings[1]).extract_surface(algorithm=None).triangulate()
    start = 0.5 * COIL_INNER_RADIUS_MM
    handle = pv.Cylinder(
        center=(0.0, start + 0.5 * HANDLE_LENGTH_MM, -0.5 * COIL_THICKNESS_MM),
        direction=(0.0, 1.0, 0.0),
        radius=HANDLE_RADIUS_MM,
        height=HANDLE_LENGTH_MM,
        resolution=32,
    ).triangulate()
    return {
        "body": body.transform(matrix, inplace=False),
        "handle": handle.transform(matrix, inplace=False),
    }


def _coil_is_stand_in(record: Mapping) -> bool:
    """True when the record's coil has no flat figure-8 shape (drawn as a labelled disc)."""
    coil = record.get("coil") or {}
    return coil.get("geometry", "figure8") != "figure8"


def _roi_sphere(record: Mapping) -> tuple[np.ndarray, float] | None:
    """ROI sphere (centre, radius) in the record's frame, when it can be known."""
    roi = record.get("roi") or {}
    radius = roi.get("radius_mm")
    if radius is None:
        return None
    if roi.get("centre_mm") is not None:
        return np.asarray(roi["centre_mm"], dtype=np.float64), float(radius)
    if roi.get("centre_mni") is not None and str(record.get("space", "")).upper().startswith("MNI"):
        return np.asarray(roi["centre_mni"], dtype=np.float64), float(radius)
    return None
