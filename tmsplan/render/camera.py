"""Standard views of a plan scene: the camera, side letters at the picture's edges, markers.

Also where a world point (RAS+ mm) lands in the picture.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from tmsplan.io.record import target_pose
from tmsplan.render.meshes import COLORS

if TYPE_CHECKING:  # pragma: no cover
    import pyvista as pv

__all__ = ["VIEWS", "project_to_screen", "set_view"]

VIEWS = ("left", "right", "top", "front", "back", "coil")
"""Names of the standard views."""


def _letter(direction: np.ndarray) -> str:
    axis = int(np.argmax(np.abs(direction)))
    positive = direction[axis] >= 0
    return (("R", "L"), ("A", "P"), ("S", "I"))[axis][0 if positive else 1]


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
            # the projection needs only the camera and the window size: no frame rendered
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
