"""Orthogonal T1 slices through the target (nilearn, on a matplotlib Agg canvas).

Activation above its threshold, the ROI outlined, the target green; patient's left on the left.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tmsplan.errors import TmsplanError
from tmsplan.io.images import ImageLike, check_img
from tmsplan.io.outputs import check_writable, write_bytes
from tmsplan.render._vtk import is_blank, read_png

__all__ = ["slices_png", "render_slices"]


def slices_png(
    t1_img: ImageLike,
    target_xyz: Sequence[float],
    *,
    activation_img: ImageLike | None = None,
    activation_threshold: float | None = None,
    roi_img: ImageLike | None = None,
    title: str | None = None,
    dpi: int = 100,
) -> bytes:
    """Orthogonal slices through the target, as PNG bytes (nothing written).

    Parameters
    ----------
    t1_img : str, os.PathLike or nibabel image
        The head image (its world frame is the frame of ``target_xyz``).
    target_xyz : (3,) float
        Cortical target, world RAS+ mm.
    activation_img : image, optional
        Activation map in the same world frame (any grid).
    activation_threshold : float, optional
        Overlay only values with ``|value| >=`` this (default: no threshold).
    roi_img : image, optional
        ROI mask in the same world frame; outlined in cyan.
    title : str, optional
    dpi : int

    Returns
    -------
    bytes
        A PNG image.
    """
    # a figure of its own with an Agg canvas: pyplot's figure list and the process's
    # matplotlib backend are left as they are
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from nilearn import plotting

    t1 = check_img(t1_img, name="t1_img")
    point = np.asarray(target_xyz, dtype=np.float64).reshape(3)
    figure = Figure(figsize=(10.0, 3.6), facecolor="black")
    FigureCanvasAgg(figure)
    display = plotting.plot_anat(
        t1,
        cut_coords=tuple(point),
        display_mode="ortho",
        draw_cross=True,
        annotate=True,
        black_bg=True,
        dim=-0.3,
        figure=figure,
        title=title,
    )
    if activation_img is not None:
        activation = check_img(activation_img, name="activation_img", nan_policy="zero")
        display.add_overlay(
            activation,
            threshold=activation_threshold,
            cmap="autumn" if activation_threshold is not None else "cold_hot",
            transparency=0.7,
        )
    if roi_img is not None:
        roi = check_img(roi_img, name="roi_img", require_signal=False)
        if np.any(np.asarray(roi.dataobj) > 0.5):
            display.add_contours(roi, levels=[0.5], colors="cyan", linewidths=1.5)
    display.add_markers(
        [point], marker_color="lime", marker_size=60, marker="o", edgecolors="black"
    )
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, facecolor="black")
    data = buffer.getvalue()
    if is_blank(read_png(data)):
        raise TmsplanError(
            "the slice picture came out blank; check that the T1 image holds a head and "
            "that the target lies inside its field of view."
        )
    return data


def render_slices(
    t1_img: ImageLike,
    target_xyz: Sequence[float],
    out_png: str | os.PathLike,
    *,
    activation_img: ImageLike | None = None,
    activation_threshold: float | None = None,
    roi_img: ImageLike | None = None,
    title: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write orthogonal slices through the target as a PNG, atomically.

    Parameters
    ----------
    t1_img, target_xyz, activation_img, activation_threshold, roi_img, title
        As for :func:`slices_png`.
    out_png : str or os.PathLike
    overwrite : bool, keyword-only
        Replace an existing file.

    Returns
    -------
    pathlib.Path
    """
    out_png = check_writable(out_png, overwrite=overwrite)
    data = slices_png(
        t1_img,
        target_xyz,
        activation_img=activation_img,
        activation_threshold=activation_threshold,
        roi_img=roi_img,
        title=title,
    )
    return write_bytes(out_png, data, overwrite=overwrite)
