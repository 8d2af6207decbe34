"""3D pictures of a plan: the plotter, the standard views' pictures, the interactive window.

Reads a plan record (``target.json`` content) and meshes in ``record["space"]`` (RAS+ mm).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tmsplan.errors import TmsplanError
from tmsplan.io.images import ImageLike
from tmsplan.io.outputs import check_writable, write_bytes
from tmsplan.io.record import target_pose
from tmsplan.render._vtk import is_blank, png_bytes, pyvista
from tmsplan.render.camera import VIEWS, project_to_screen, set_view
from tmsplan.render.checks import _expected_layers, check_layers, scene_geometry
from tmsplan.render.meshes import (
    COLORS,
    PlanSurfaces,
    _coil_is_stand_in,
    as_polydata,
    coil_meshes,
    isosurface_from_img,
    plan_surfaces,
    record_threshold,
)

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
    "view",
]

_TARGET_RADIUS_MM = 4.0
_ENTRY_RADIUS_MM = 2.5
_BACKGROUND = "white"


class NoDisplayError(TmsplanError, RuntimeError):
    """An interactive window was asked for on a machine without a display."""


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
    surfaces: PlanSurfaces | None = None,
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
    surfaces : PlanSurfaces, optional
        The scene's surfaces made beforehand (:func:`~tmsplan.render.meshes.plan_surfaces`,
        from the same layers), so several plotters of one report share them;
        ``brain_mesh``, ``activation_img`` and ``roi_img`` are then not read again.

    Returns
    -------
    pyvista.Plotter
        Set a view with :func:`set_view`.

    Notes
    -----
    Drawing conventions (also in the picture's legend): scalp translucent skin
    colour; brain translucent grey; activation an orange isosurface at the
    record's threshold; ROI a cyan wireframe (mask isosurface, or the atlas
    sphere in MNI space); cortical target a pure green sphere (red when
    unreachable), unlit so its colour is exact; scalp entry a magenta sphere
    joined to the target by a black line labelled with the depth; coil a
    figure-8 body (two rings side by side along coil x, in the coil x-y plane,
    *outside* the head: coil z from 0 to ``-COIL_THICKNESS_MM``) and a handle
    cylinder along +coil y.
    """
    pv = pyvista(offscreen=off_screen)
    plotter = pv.Plotter(off_screen=off_screen, window_size=tuple(int(s) for s in window_size))
    plotter.set_background(_BACKGROUND)
    legend: list[tuple[str, tuple]] = []

    if surfaces is None:
        surfaces = plan_surfaces(
            record,
            scalp_mesh,
            brain_mesh=brain_mesh,
            activation_img=activation_img,
            roi_img=roi_img,
        )
    meshes = {k: v if v is None else v.copy(deep=False) for k, v in surfaces.at(max_faces).items()}
    plotter.add_mesh(
        meshes["scalp"], color=COLORS["scalp"], opacity=0.25, smooth_shading=True, name="scalp"
    )
    legend.append(("scalp", COLORS["scalp"]))
    if meshes["brain"] is not None:
        plotter.add_mesh(
            meshes["brain"], color=COLORS["brain"], opacity=0.3, smooth_shading=True, name="brain"
        )
        legend.append(("brain", COLORS["brain"]))
    if meshes["activation"] is not None:
        threshold, _ = record_threshold(record)
        plotter.add_mesh(
            meshes["activation"], color=COLORS["activation"], opacity=0.7, name="activation"
        )
        legend.append((f"activation >= {threshold:g}", COLORS["activation"]))
    if meshes["roi"] is not None:
        plotter.add_mesh(
            meshes["roi"],
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
        # a coarse sphere per position (about 10 px wide in a picture): 25 of them at full
        # resolution weighed more in the 3D view than the scalp
        dot = pv.Sphere(radius=2.5, theta_resolution=16, phi_resolution=12)
        plotter.add_mesh(
            pv.PolyData(points).glyph(geom=dot, scale=False, orient=False),
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
        brain=surfaces.brain is not None,
        activation=surfaces.activation is not None,
        roi=surfaces.roi is not None,
        landmarks=bool(landmarks),
    )
    check_layers(plotter, expected)
    plotter._tmsplan_layers = expected  # checked again after each picture
    return plotter


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


# names that moved to modules built on this one (importing them here would be a cycle)
_MOVED = {
    "group_plotter": "group",
    "render_group": "group",
    "scene_html": "html",
    "inert_urls": "html",
    "INERT_URL": "html",
}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        import importlib

        return getattr(importlib.import_module(f"tmsplan.render.{_MOVED[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
