"""Group pictures: several targets (a cohort, or candidates) on one head."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tmsplan.io.outputs import check_writable, write_bytes
from tmsplan.render._vtk import png_bytes, pyvista
from tmsplan.render.camera import set_view
from tmsplan.render.meshes import COLORS, _decimated
from tmsplan.render.scene import _BACKGROUND, _screenshot

if TYPE_CHECKING:  # pragma: no cover
    import pyvista as pv

__all__ = ["group_plotter", "render_group"]


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
