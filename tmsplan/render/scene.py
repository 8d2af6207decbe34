"""3D pictures of a plan: head, brain, activation, ROI, target, scalp entry and coil.

Everything here reads a plan record (``target.json`` content) plus meshes and
images given as arguments, in the record's world frame (``record["space"]``,
RAS+ millimetres). pyvista is imported only when a function runs, offscreen
through EGL (no display needed).

Drawing conventions (also in the picture's legend):

- scalp: translucent skin colour; brain: translucent grey;
- activation: orange isosurface at the record's threshold;
- ROI: cyan wireframe (mask isosurface, or the atlas sphere in MNI space);
- cortical target: pure green sphere (red when unreachable), drawn unlit so its
  colour is exact;
- scalp entry: magenta sphere; a black line joins it to the target, labelled
  with the depth;
- coil: figure-8 body (two rings side by side along coil x, in the coil x-y
  plane, lying *outside* the head: the body spans coil z from 0 to
  ``-COIL_THICKNESS_MM``) and a handle cylinder along +coil y.

Standard views: ``left``, ``right``, ``top``, ``front``, ``back`` and ``coil``
(looking down the coil z axis from outside, handle pointing up in the image).
Each picture names the patient's sides at its edges (L/R, A/P, S/I) and
carries an orientation marker whose axes are labelled R, A, S.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import trimesh

from tmsplan.errors import ImageError, RenderError, TmsplanError, TmsplanWarning
from tmsplan.images import ImageLike, check_img, voxel_to_world
from tmsplan.outputs import check_writable, write_bytes
from tmsplan.record import target_pose
from tmsplan.render._vtk import is_blank, png_bytes, pyvista

if TYPE_CHECKING:  # pragma: no cover
    import pyvista as pv

__all__ = [
    "VIEWS",
    "COLORS",
    "NoDisplayError",
    "as_polydata",
    "isosurface_from_img",
    "coil_meshes",
    "scene_geometry",
    "plan_plotter",
    "set_view",
    "check_layers",
    "project_to_screen",
    "render_view_images",
    "render_views",
    "group_plotter",
    "render_group",
    "scene_html",
    "inert_urls",
    "INERT_URL",
    "view",
]

VIEWS = ("left", "right", "top", "front", "back", "coil")
"""Names of the standard views."""

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
_TARGET_RADIUS_MM = 4.0
_ENTRY_RADIUS_MM = 2.5
_BACKGROUND = "white"


class NoDisplayError(TmsplanError, RuntimeError):
    """An interactive window was asked for on a machine without a display."""


# --------------------------------------------------------------------------- meshes


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


def isosurface_from_img(
    img: ImageLike, level: float, *, name: str = "image", sign: str = "positive"
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
    verts, faces, _, _ = marching_cubes(padded, level=level)
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


def _signed_distance_outside(scalp: trimesh.Trimesh, points: np.ndarray) -> np.ndarray:
    """Distance of points to the scalp, positive outside (along the outward normals)."""
    closest, distance, triangle = trimesh.proximity.closest_point(scalp, points)
    normals = scalp.face_normals[triangle]
    side = np.sign(np.einsum("ij,ij->i", points - closest, normals))
    side[side == 0] = 1.0
    return side * distance


def scene_geometry(record: Mapping, scalp_mesh: Any) -> list[dict]:
    """The numbers each drawn target is built from, checked against the scalp.

    For every target of the record: how far the recorded scalp entry lies from
    the scalp mesh, whether coil z points into the head, whether the drawn
    handle runs along coil y, and whether the drawn coil stays outside the head.

    Parameters
    ----------
    record : dict
        Plan record (``target.json`` content).
    scalp_mesh : trimesh.Trimesh or pyvista.PolyData
        Scalp in ``record["space"]`` (RAS+ mm), outward face normals.

    Returns
    -------
    list of dict
        One per target: ``name``, ``entry_to_scalp_mm`` (float),
        ``coil_z_dot_outward`` (cosine of coil z with the outward scalp normal
        at the entry; -1 = straight in), ``handle_drawn`` ((3,) unit vector from
        the coil centre to the centre of the drawn handle, projected on the coil
        plane), ``handle_dot_y`` (its cosine with coil y),
        ``coil_clearance_mm`` (smallest distance of the drawn coil outside the
        scalp; negative = inside the head) and ``problems`` (list of str).
    """
    scalp = _as_trimesh(scalp_mesh)
    out = []
    for target in record["targets"]:
        name = str(target["name"])
        matrix = target_pose(target)
        entry = np.asarray(target["scalp_mm"], dtype=np.float64).reshape(1, 3)
        closest, distance, triangle = trimesh.proximity.closest_point(scalp, entry)
        outward = scalp.face_normals[triangle[0]]
        z_axis, y_axis = matrix[:3, 2], matrix[:3, 1]
        meshes = coil_meshes(matrix, stand_in=_coil_is_stand_in(record))
        handle_vec = np.asarray(meshes["handle"].center, dtype=np.float64) - matrix[:3, 3]
        handle_vec -= handle_vec.dot(z_axis) * z_axis
        handle_drawn = handle_vec / np.linalg.norm(handle_vec)
        body_points = np.asarray(meshes["body"].points, dtype=np.float64)
        clearance = float(_signed_distance_outside(scalp, body_points).min())
        info = {
            "name": name,
            "entry_to_scalp_mm": float(distance[0]),
            "coil_z_dot_outward": float(z_axis.dot(outward)),
            "handle_drawn": handle_drawn,
            "handle_dot_y": float(handle_drawn.dot(y_axis)),
            "coil_clearance_mm": clearance,
            "problems": [],
        }
        if info["entry_to_scalp_mm"] > 1.0:
            info["problems"].append(
                f"target {name!r}: the scalp entry is {info['entry_to_scalp_mm']:.1f} mm off "
                "the scalp surface drawn; the record and this head do not match."
            )
        if info["coil_z_dot_outward"] > -0.5:
            info["problems"].append(
                f"target {name!r}: coil z does not point into the head (cosine with the "
                f"outward scalp normal {info['coil_z_dot_outward']:+.2f}, expected near -1)."
            )
        if clearance < -2.0 and bool(target.get("reachable", True)):
            info["problems"].append(
                f"target {name!r}: the drawn coil reaches {-clearance:.1f} mm inside the scalp."
            )
        out.append(info)
    return out


# --------------------------------------------------------------------------- scene


def _record_threshold(record: Mapping) -> tuple[float | None, str]:
    activation = record.get("activation") or {}
    threshold = activation.get("threshold")
    sign = activation.get("sign") or "positive"
    return (None if threshold is None else float(threshold)), str(sign)


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


def _expected_layers(
    record: Mapping, *, brain: bool, activation: bool, roi: bool, landmarks: bool
) -> list[str]:
    """Names of the actors a plan scene must hold, from what was asked for."""
    names = ["scalp"]
    names += ["brain"] if brain else []
    names += ["activation"] if activation else []
    names += ["roi"] if roi or _roi_sphere(record) is not None else []
    for i, target in enumerate(record["targets"]):
        names += [f"target-{i}", f"entry-{i}", f"depth-{i}"]
        if bool(target.get("reachable", True)):
            names += [f"coil-{i}", f"handle-{i}"]
    names += ["landmarks"] if landmarks else []
    return names


def check_layers(plotter: pv.Plotter, names: Sequence[str]) -> None:
    """Check that every named layer is in the scene, visible, with points to draw.

    A picture missing its brain or scalp must fail, not be written.

    Parameters
    ----------
    plotter : pyvista.Plotter
    names : sequence of str
        Actor names (as given to ``add_mesh(name=...)``).

    Raises
    ------
    RenderError
        A layer is missing, hidden or empty.
    """
    missing = []
    for name in names:
        actor = plotter.actors.get(name)
        mapper = getattr(actor, "mapper", None)
        data = getattr(mapper, "dataset", None) if mapper is not None else None
        if data is None or data.n_points == 0 or not actor.GetVisibility():
            missing.append(name)
    if missing:
        raise RenderError(
            f"the 3D scene lacks layer {', '.join(missing)} (not drawn, or with no points), "
            "so its pictures would be incomplete; nothing was written. Re-run; if it "
            "happens again, report it with the plan's target.json."
        )


def _letter(direction: np.ndarray) -> str:
    axis = int(np.argmax(np.abs(direction)))
    positive = direction[axis] >= 0
    return (("R", "L"), ("A", "P"), ("S", "I"))[axis][0 if positive else 1]


def plan_plotter(
    record: Mapping,
    scalp_mesh: Any,
    *,
    brain_mesh: Any = None,
    activation_img: ImageLike | None = None,
    roi_img: ImageLike | None = None,
    landmarks: Mapping[str, Sequence[float]] | None = None,
    window_size: tuple[int, int] = (800, 800),
    max_faces: int | None = 150_000,
    labels: bool = True,
    off_screen: bool = True,
) -> pv.Plotter:
    """A plotter holding the whole plan scene (offscreen by default).

    Parameters
    ----------
    record : dict
        Plan record; its targets (cortical point, scalp entry, coil matrix,
        depth) are drawn.
    scalp_mesh : trimesh.Trimesh or pyvista.PolyData
        Scalp in ``record["space"]`` (RAS+ mm).
    brain_mesh : trimesh.Trimesh or pyvista.PolyData, optional
        Brain or cortex surface, same frame.
    activation_img : image, optional
        Activation map in the record's frame; its isosurface at
        ``record["activation"]["threshold"]`` (and sign) is drawn.
    roi_img : image, optional
        ROI mask in the record's frame (outline at 0.5). Without it, an atlas
        sphere ROI is drawn when its centre is known in the record's frame.
    landmarks : dict of str to (3,) float, optional
        E.g. 10-20 positions, record frame.
    window_size : (int, int)
        Picture width and height in pixels.
    max_faces : int or None
        Decimate the scalp, brain and activation meshes to at most this many
        triangles each.
    labels : bool
        Draw 2D text (legend, depth and landmark labels). The interactive HTML
        export leaves them out (vtk.js shows only geometry).
    off_screen : bool
        False only for an interactive window (:func:`view`).

    Returns
    -------
    pyvista.Plotter
        Set a view with :func:`set_view`.
    """
    pv = pyvista(offscreen=off_screen)
    plotter = pv.Plotter(off_screen=off_screen, window_size=tuple(int(s) for s in window_size))
    plotter.set_background(_BACKGROUND)
    legend: list[tuple[str, tuple]] = []

    scalp = _decimated(scalp_mesh, max_faces, name="scalp_mesh")
    plotter.add_mesh(scalp, color=COLORS["scalp"], opacity=0.25, smooth_shading=True, name="scalp")
    legend.append(("scalp", COLORS["scalp"]))
    if brain_mesh is not None:
        brain = _decimated(brain_mesh, max_faces, name="brain_mesh")
        plotter.add_mesh(
            brain, color=COLORS["brain"], opacity=0.3, smooth_shading=True, name="brain"
        )
        legend.append(("brain", COLORS["brain"]))
    if activation_img is not None:
        threshold, sign = _record_threshold(record)
        if threshold is None:
            raise ImageError(
                "activation_img: the record gives no activation threshold, so the cluster "
                "surface cannot be drawn; pass a record with activation.threshold."
            )
        surface = isosurface_from_img(activation_img, threshold, name="activation_img", sign=sign)
        surface = _decimated(surface, max_faces, name="activation_img")
        plotter.add_mesh(surface, color=COLORS["activation"], opacity=0.7, name="activation")
        legend.append((f"activation >= {threshold:g}", COLORS["activation"]))
    roi_surface = None
    if roi_img is not None:
        roi_surface = _decimated(
            isosurface_from_img(roi_img, 0.5, name="roi_img").smooth_taubin(n_iter=20),
            800,
            name="roi_img",
        )
    else:
        sphere = _roi_sphere(record)
        if sphere is not None:
            roi_surface = pv.Sphere(
                radius=sphere[1], center=sphere[0], theta_resolution=24, phi_resolution=16
            )
    if roi_surface is not None:
        plotter.add_mesh(
            roi_surface,
            color=COLORS["roi"],
            style="wireframe",
            opacity=0.45,
            line_width=1,
            name="roi",
        )
        legend.append(("ROI", COLORS["roi"]))

    any_reachable = any_unreachable = False
    for i, target in enumerate(record["targets"]):
        cortical = np.asarray(target["cortical_mm"], dtype=np.float64)
        entry = np.asarray(target["scalp_mm"], dtype=np.float64)
        reachable = bool(target.get("reachable", True))
        any_reachable |= reachable
        any_unreachable |= not reachable
        colour = COLORS["target"] if reachable else COLORS["unreachable"]
        plotter.add_mesh(
            pv.Sphere(radius=_TARGET_RADIUS_MM, center=cortical),
            color=colour,
            lighting=False,
            name=f"target-{i}",
        )
        plotter.add_mesh(
            pv.Sphere(radius=_ENTRY_RADIUS_MM, center=entry),
            color=COLORS["entry"],
            lighting=False,
            name=f"entry-{i}",
        )
        plotter.add_mesh(
            pv.Line(entry, cortical),
            color=COLORS["depth line"],
            line_width=3,
            name=f"depth-{i}",
        )
        if labels:
            plotter.add_point_labels(
                [entry],
                [f"depth {float(target['depth_mm']):.1f} mm"],
                font_size=12,
                shape_opacity=0.5,
                show_points=False,
                always_visible=True,
                name=f"depth-label-{i}",
            )
        if reachable and target.get("role", "chosen") != "candidate":
            meshes = coil_meshes(target_pose(target), stand_in=_coil_is_stand_in(record))
            plotter.add_mesh(meshes["body"], color=COLORS["coil"], opacity=0.4, name=f"coil-{i}")
            plotter.add_mesh(meshes["handle"], color=COLORS["handle"], name=f"handle-{i}")
    if any_reachable:
        legend.append(("cortical target", COLORS["target"]))
    if any_unreachable:
        legend.append(("UNREACHABLE target", COLORS["unreachable"]))
    legend.append(("scalp entry", COLORS["entry"]))
    if any_reachable:
        if _coil_is_stand_in(record):
            coil_name = (record.get("coil") or {}).get("name", "coil")
            legend.append((f"STAND-IN disc for the {coil_name}, not its shape", COLORS["coil"]))
        else:
            legend.append(("coil (handle dark)", COLORS["coil"]))

    if landmarks:
        names = list(landmarks)
        points = np.asarray([landmarks[n] for n in names], dtype=np.float64).reshape(-1, 3)
        plotter.add_mesh(
            pv.PolyData(points).glyph(geom=pv.Sphere(radius=2.5), scale=False, orient=False),
            color=COLORS["landmark"],
            name="landmarks",
        )
        if labels:
            plotter.add_point_labels(
                points,
                names,
                font_size=11,
                shape_opacity=0.4,
                show_points=False,
                always_visible=True,
                name="landmark-labels",
            )
        legend.append(("10-20 landmarks", COLORS["landmark"]))

    if labels:
        plotter.add_legend(
            labels=[[text, colour] for text, colour in legend],
            bcolor=(0.35, 0.35, 0.35),
            border=True,
            size=(0.3, 0.24),
            loc="upper right",
            face="rectangle",
        )
        plotter.add_axes(xlabel="R", ylabel="A", zlabel="S", line_width=3)
    expected = _expected_layers(
        record,
        brain=brain_mesh is not None,
        activation=activation_img is not None,
        roi=roi_img is not None,
        landmarks=bool(landmarks),
    )
    check_layers(plotter, expected)
    plotter._tmsplan_layers = expected  # checked again after each picture
    return plotter


def set_view(
    plotter: pv.Plotter,
    view: str,
    *,
    record: Mapping | None = None,
    target: int = 0,
    labels: bool = True,
) -> None:
    """Point the camera for a standard view and label the picture's edges.

    Parameters
    ----------
    plotter : pyvista.Plotter
        From :func:`plan_plotter` or :func:`group_plotter`.
    view : {"left", "right", "top", "front", "back", "coil"}
        ``left`` looks at the patient's left side; ``front`` faces the patient
        (their left on the picture's right); ``top`` looks down with the nose
        up (their left on the picture's left); ``coil`` looks down coil z from
        outside with the handle up.
    record : dict, optional
        The plan record drawn; needed by the ``coil`` view.
    target : int
        Index of the target the ``coil`` view looks at.
    labels : bool
        Write the anatomical side letters at the picture's edges and the view name.
    """
    directions = {
        # view: (camera direction of projection, view up)
        "left": ((1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),
        "right": ((-1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),
        "top": ((0.0, 0.0, -1.0), (0.0, 1.0, 0.0)),
        "front": ((0.0, -1.0, 0.0), (0.0, 0.0, 1.0)),
        "back": ((0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),
    }
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}.")
    if view == "coil":
        if record is None or not record["targets"]:
            raise ValueError("the 'coil' view needs the plan record with at least one target.")
        matrix = target_pose(record["targets"][target])
        forward, up = matrix[:3, 2], matrix[:3, 1]
        focus = np.asarray(record["targets"][target]["cortical_mm"], dtype=np.float64)
        distance = 480.0
    else:
        forward, up = (np.asarray(v) for v in directions[view])
        bounds = np.asarray(plotter.bounds, dtype=np.float64).reshape(3, 2)
        focus = bounds.mean(axis=1)
        distance = 4.0 * float(np.ptp(bounds, axis=1).max())
    # no render while the scene changes (pyvista renders after each added actor)
    previous = plotter.suppress_rendering
    plotter.suppress_rendering = True
    try:
        forward = np.asarray(forward, dtype=np.float64)
        up = np.asarray(up, dtype=np.float64)
        plotter.camera_position = [tuple(focus - distance * forward), tuple(focus), tuple(up)]
        if view != "coil":
            plotter.reset_camera(render=False)
            plotter.camera.zoom(1.15)
        else:
            plotter.camera.view_angle = 30.0
            plotter.reset_camera_clipping_range()
        right = np.cross(forward, up)
        for actor_name in ("edge-left", "edge-right", "edge-up", "edge-down", "title"):
            plotter.remove_actor(actor_name, render=False)
        for actor_name in [n for n in plotter.actors if n.startswith("marker-")]:
            plotter.remove_actor(actor_name, render=False)
        if record is not None and labels:
            # projecting needs the camera of a rendered frame
            plotter.suppress_rendering = previous
            plotter.render()
            plotter.suppress_rendering = True
            for i, entry in enumerate(record["targets"]):
                reachable = bool(entry.get("reachable", True))
                colour = COLORS["target"] if reachable else COLORS["unreachable"]
                pixel = project_to_screen(plotter, entry["cortical_mm"])
                _add_marker(plotter, pixel, colour, name=f"marker-{i}")
        if labels:
            for position, direction, actor_name in (
                ("left_edge", -right, "edge-left"),
                ("right_edge", right, "edge-right"),
                ("upper_edge", up, "edge-up"),
                ("lower_edge", -up, "edge-down"),
            ):
                plotter.add_text(
                    _letter(direction),
                    position=position,
                    font_size=22,
                    color="black",
                    name=actor_name,
                )
            title = "coil view: down coil z, handle up" if view == "coil" else f"view: {view}"
            plotter.add_text(
                title, position="upper_left", font_size=12, color="black", name="title"
            )
    finally:
        plotter.suppress_rendering = previous
    plotter.render()  # screenshots read the last rendered frame


def _add_marker(plotter: pv.Plotter, pixel: tuple[int, int], colour: tuple, *, name: str) -> None:
    """A target marker drawn over everything: a ring and a dot (picture pixels).

    The cortical target lies inside translucent brain, activation and coil
    layers; the marker keeps its position visible in every view.
    """
    from vtkmodules.vtkFiltersSources import vtkRegularPolygonSource
    from vtkmodules.vtkRenderingCore import vtkActor2D, vtkPolyDataMapper2D

    height = int(plotter.window_size[1])
    x, y = float(pixel[0]), float(height - 1 - pixel[1])
    for part, radius, filled in (("ring", 13.0, False), ("dot", 3.5, True)):
        source = vtkRegularPolygonSource()
        source.SetCenter(x, y, 0.0)
        source.SetRadius(radius)
        source.SetNumberOfSides(40)
        source.SetGeneratePolygon(filled)
        source.SetGeneratePolyline(not filled)
        mapper = vtkPolyDataMapper2D()
        mapper.SetInputConnection(source.GetOutputPort())
        actor = vtkActor2D()
        actor.SetMapper(mapper)
        actor.GetProperty().SetColor(*colour)
        actor.GetProperty().SetLineWidth(2.5)
        plotter.add_actor(actor, name=f"{name}-{part}", reset_camera=False, render=False)


def project_to_screen(plotter: pv.Plotter, xyz: Sequence[float]) -> tuple[int, int]:
    """Pixel of a world point in the plotter's current picture.

    Parameters
    ----------
    plotter : pyvista.Plotter
        After :func:`set_view` (the camera is used as it is).
    xyz : (3,) float
        World point, RAS+ mm.

    Returns
    -------
    (int, int)
        ``(column, row)`` with row 0 at the top, as in a screenshot array.
    """
    renderer = plotter.renderer
    point = np.asarray(xyz, dtype=np.float64).reshape(3)
    renderer.SetWorldPoint(float(point[0]), float(point[1]), float(point[2]), 1.0)
    renderer.WorldToDisplay()
    x, y, _ = renderer.GetDisplayPoint()
    height = int(plotter.window_size[1])
    return int(round(x)), int(round(height - 1 - y))


def _screenshot(plotter: pv.Plotter) -> np.ndarray:
    image = np.asarray(plotter.screenshot(return_img=True))[..., :3].copy()
    if is_blank(image):
        raise TmsplanError(
            "the offscreen renderer produced a blank picture; check that VTK can render "
            "through EGL (VTK_DEFAULT_OPENGL_WINDOW=vtkEGLRenderWindow) on this machine."
        )
    return image


def render_view_images(
    record: Mapping,
    scalp_mesh: Any,
    *,
    views: Sequence[str] = ("left", "right", "top", "front", "coil"),
    target: int = 0,
    **layers: Any,
) -> dict[str, np.ndarray]:
    """Render standard views to memory.

    Parameters
    ----------
    record, scalp_mesh, **layers
        As for :func:`plan_plotter` (``brain_mesh``, ``activation_img``,
        ``roi_img``, ``landmarks``, ``window_size``, ``max_faces``).
    views : sequence of str
        Names from :data:`VIEWS`.
    target : int
        Target the ``coil`` view looks at.

    Returns
    -------
    dict of str to (h, w, 3) uint8
    """
    for name in views:
        if name not in VIEWS:
            raise ValueError(f"views: {name!r} is not one of {VIEWS}.")
    plotter = plan_plotter(record, scalp_mesh, **layers)
    try:
        images = {}
        for name in views:
            if name == "coil" and not record["targets"]:
                continue
            set_view(plotter, name, record=record, target=target)
            images[name] = _screenshot(plotter)
            check_layers(plotter, plotter._tmsplan_layers)
        return images
    finally:
        plotter.close()


def render_views(
    record: Mapping,
    scalp_mesh: Any,
    out_dir: str | os.PathLike,
    *,
    views: Sequence[str] = ("left", "right", "top", "front", "coil"),
    overwrite: bool = False,
    **layers: Any,
) -> dict[str, Path]:
    """Render standard views and write them as ``<out_dir>/<view>.png`` (atomic).

    Parameters
    ----------
    record, scalp_mesh, **layers
        As for :func:`plan_plotter`.
    out_dir : str or os.PathLike
        Folder for the pictures (created).
    views : sequence of str
        Names from :data:`VIEWS`.
    overwrite : bool, keyword-only
        Replace existing pictures.

    Returns
    -------
    dict of str to pathlib.Path
        Written picture per view.
    """
    out_dir = Path(out_dir)
    for name in views:
        check_writable(out_dir / f"{name}.png", overwrite=overwrite)
    images = render_view_images(record, scalp_mesh, views=views, **layers)
    return {
        name: write_bytes(out_dir / f"{name}.png", png_bytes(image), overwrite=overwrite)
        for name, image in images.items()
    }


# --------------------------------------------------------------------------- group


def group_plotter(
    points_mm: np.ndarray,
    labels: Sequence[str],
    scalp_mesh: Any,
    *,
    brain_mesh: Any = None,
    window_size: tuple[int, int] = (800, 800),
    max_faces: int | None = 150_000,
) -> pv.Plotter:
    """Several targets (a cohort, or candidates) on one head.

    Parameters
    ----------
    points_mm : (n, 3) float
        Cortical targets, world RAS+ mm in the head's frame.
    labels : sequence of str, length n
        One label per point.
    scalp_mesh, brain_mesh
        As for :func:`plan_plotter`.

    Returns
    -------
    pyvista.Plotter
        ``off_screen=True``.
    """
    from matplotlib import colormaps

    pv = pyvista()
    points = np.asarray(points_mm, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3 or len(points) == 0:
        raise ValueError(f"points_mm must have shape (n, 3) with n >= 1, got {points.shape}.")
    if len(labels) != len(points):
        raise ValueError(f"labels: {len(labels)} labels for {len(points)} points.")
    plotter = pv.Plotter(off_screen=True, window_size=tuple(int(s) for s in window_size))
    plotter.set_background(_BACKGROUND)
    plotter.add_mesh(
        _decimated(scalp_mesh, max_faces, name="scalp_mesh"),
        color=COLORS["scalp"],
        opacity=0.3,
        smooth_shading=True,
        name="scalp",
    )
    if brain_mesh is not None:
        plotter.add_mesh(
            _decimated(brain_mesh, max_faces, name="brain_mesh"),
            color=COLORS["brain"],
            opacity=0.45,
            smooth_shading=True,
            name="brain",
        )
    cmap = colormaps["tab10"] if len(points) <= 10 else colormaps["turbo"]
    for i, point in enumerate(points):
        colour = cmap(i % 10) if len(points) <= 10 else cmap(i / max(1, len(points) - 1))
        plotter.add_mesh(
            pv.Sphere(radius=3.0, center=point), color=colour[:3], lighting=False, name=f"point-{i}"
        )
    plotter.add_point_labels(
        points,
        [str(label) for label in labels],
        font_size=11,
        shape_opacity=0.4,
        show_points=False,
        always_visible=True,
        name="point-labels",
    )
    plotter.add_axes(xlabel="R", ylabel="A", zlabel="S", line_width=3)
    return plotter


def render_group(
    points_mm: np.ndarray,
    labels: Sequence[str],
    scalp_mesh: Any,
    out_png: str | os.PathLike,
    *,
    view: str = "top",
    overwrite: bool = False,
    **kwargs: Any,
) -> Path:
    """Write a group picture (see :func:`group_plotter`) as a PNG, atomically.

    Parameters
    ----------
    points_mm, labels, scalp_mesh, **kwargs
        As for :func:`group_plotter`.
    out_png : str or os.PathLike
    view : {"left", "right", "top", "front", "back"}
    overwrite : bool, keyword-only

    Returns
    -------
    pathlib.Path
    """
    if view == "coil":
        raise ValueError("the group picture has no coil; use left, right, top, front or back.")
    out_png = check_writable(out_png, overwrite=overwrite)
    plotter = group_plotter(points_mm, labels, scalp_mesh, **kwargs)
    try:
        set_view(plotter, view)
        image = _screenshot(plotter)
    finally:
        plotter.close()
    return write_bytes(out_png, png_bytes(image), overwrite=overwrite)


# --------------------------------------------------------------------------- interactive


def _add_side_letters(plotter: pv.Plotter, bounds: np.ndarray) -> None:
    """3D letters L, R, A, P and S beside the head (geometry, so vtk.js shows them)."""
    pv = pyvista()
    centre = bounds.mean(axis=1)
    half = 0.5 * np.ptp(bounds, axis=1)
    size = 0.18 * float(half.max())
    gap = 0.25 * float(half.max())
    letters = {
        "L": (centre + [-(half[0] + gap), 0.0, 0.0], (0.0, 1.0, 0.0)),
        "R": (centre + [half[0] + gap, 0.0, 0.0], (0.0, 1.0, 0.0)),
        "A": (centre + [0.0, half[1] + gap, 0.0], (0.0, 1.0, 0.0)),
        "P": (centre + [0.0, -(half[1] + gap), 0.0], (0.0, -1.0, 0.0)),
        "S": (centre + [0.0, 0.0, half[2] + gap], (0.0, 1.0, 0.0)),
    }
    for letter, (position, normal) in letters.items():
        text = pv.Text3D(letter, depth=0.2 * size, height=size, center=position, normal=normal)
        plotter.add_mesh(text, color="black", name=f"letter-{letter}")


def scene_html(
    record: Mapping,
    scalp_mesh: Any,
    *,
    max_faces: int | None = 12_000,
    **layers: Any,
) -> str:
    """Self-contained interactive 3D view (vtk.js inlined, no network) as HTML text.

    Uses pyvista's trame exporter (``plotter.trame.export_html``; the older
    ``Plotter.export_html`` is deprecated in pyvista 0.49). Meshes are
    decimated to ``max_faces`` triangles to keep the report small; 2D labels
    are left out (vtk.js shows geometry only) and 3D letters L, R, A, P, S mark
    the sides.

    Parameters
    ----------
    record, scalp_mesh, **layers
        As for :func:`plan_plotter`.
    max_faces : int or None
        Triangle budget per surface mesh.

    Returns
    -------
    str
        A complete HTML document.
    """
    plotter = plan_plotter(record, scalp_mesh, max_faces=max_faces, labels=False, **layers)
    try:
        bounds = np.asarray(plotter.bounds, dtype=np.float64).reshape(3, 2)
        _add_side_letters(plotter, bounds)
        set_view(plotter, "front", labels=False)
        plotter.camera.azimuth = -35.0
        plotter.camera.elevation = 20.0
        plotter.camera.zoom(1.4)
        with _without_vtk_wasm(), _stopping_export_server():
            buffer = plotter.trame.export_html(None)
    finally:
        plotter.close()
    return inert_urls(buffer.getvalue())


# a string literal (or attribute value) that is a whole http(s) URL: something to load
_URL_LITERAL = re.compile(r"""(["'`])https?://[^"'`\s<>]*\1""", re.IGNORECASE)
_URL_ATTRIBUTE = re.compile(
    r"""(\b(?:src|href|action|poster|data|srcset)\s*=\s*)https?://[^\s>]*""", re.IGNORECASE
)
_CSS_URL = re.compile(r"""url\(\s*(["']?)https?://[^)]*\)""", re.IGNORECASE)
_URL_BASE = re.compile(r"new\s+URL\([^()]*,\s*$")
INERT_URL = "data:,"
"""What a resource URL of the exported 3D view is replaced by (an empty ``data:`` URL)."""


def inert_urls(text: str) -> str:
    """Replace every http(s) URL a page could load by :data:`INERT_URL`.

    pyvista's exporter inlines vtk.js, which at run time adds ``<link rel="icon">``
    elements pointing at kitware.github.io; an offline report must not reach out.
    Replaced: string literals that are a whole URL (``"https://..."``, template
    literals included), unquoted ``src=``/``href=`` values and CSS ``url(...)``.
    Left alone: URLs inside longer text (licence notices in shader comments,
    error messages) and a literal used as the base of ``new URL(path, base)``,
    which parses a path and loads nothing.

    Parameters
    ----------
    text : str
        An HTML document (or script).

    Returns
    -------
    str
        The same text with resource URLs made inert.
    """

    def literal(match: re.Match) -> str:
        if _URL_BASE.search(text, max(0, match.start() - 80), match.start()):
            return match.group(0)
        quote = match.group(1)
        return f"{quote}{INERT_URL}{quote}"

    text = _URL_LITERAL.sub(literal, text)
    text = _URL_ATTRIBUTE.sub(lambda m: m.group(1) + INERT_URL, text)
    return _CSS_URL.sub(f"url({INERT_URL})", text)


@contextlib.contextmanager
def _stopping_export_server() -> Iterator[None]:
    """Stop the local trame server pyvista's exporter starts, once the export is done.

    ``plotter.trame.export_html`` starts a trame server (``exec_mode="task"``,
    listening on 127.0.0.1) when none is running, and leaves it listening for the
    rest of the process. A server that was already running (a Jupyter session's)
    is left alone.
    """
    pv = pyvista()
    from trame_pyvista.widgets import get_server

    server = get_server(pv.global_theme.trame.jupyter_server_name)
    was_running = server.running
    try:
        yield
    finally:
        if not was_running and server.running:
            port = server.port
            try:
                # the exporter's launch patched asyncio (nest_asyncio2): this runs the
                # stop on the loop the server was started on
                asyncio.run(server.stop())
            except Exception as exc:  # report, never lose the exported scene
                warnings.warn(
                    f"could not stop the local trame server pyvista started for the 3D "
                    f"export ({type(exc).__name__}: {exc}); it listens on 127.0.0.1:{port} "
                    "until this process ends.",
                    TmsplanWarning,
                    stacklevel=3,
                )


@contextlib.contextmanager
def _without_vtk_wasm() -> Iterator[None]:
    """Keep trame-vtklocal out of the export: it fetches VTK-WASM from the internet.

    pyvista's exporter starts a local trame server that initialises every trame
    widget module it can import, trame-vtklocal included; that module then tries to
    download a WebAssembly build of VTK (failing offline, with a traceback at exit).
    The vtk.js export needs none of it, so its import is made to fail (the server
    skips modules that raise ImportError) for the duration of the export.
    """
    name = "trame.widgets.vtklocal"
    if name in sys.modules:  # already imported elsewhere in this process: leave it
        yield
        return
    sys.modules[name] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if sys.modules.get(name, 0) is None:
            del sys.modules[name]


def display_available() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def view(record: Mapping, scalp_mesh: Any, **layers: Any) -> None:
    """Open an interactive 3D window of the plan (needs a display).

    Parameters
    ----------
    record, scalp_mesh, **layers
        As for :func:`plan_plotter`.

    Raises
    ------
    NoDisplayError
        Neither ``DISPLAY`` nor ``WAYLAND_DISPLAY`` is set (a server or SSH
        session): open the plan's ``report.html`` in a browser instead.
    """
    if not display_available():
        raise NoDisplayError(
            "no display found (neither DISPLAY nor WAYLAND_DISPLAY is set), so no 3D window "
            "can open here; open the plan's report.html in a web browser instead (it holds "
            "the same interactive 3D view), or run 'tmsplan report' to make one."
        )
    plotter = plan_plotter(record, scalp_mesh, off_screen=False, **layers)
    set_view(plotter, "front", record=record)
    plotter.show(title=f"tmsplan: {record.get('subject', 'plan')}")
