"""Lazy, headless-safe access to pyvista for the rendering layer.

pyvista/VTK are imported on first use, offscreen through EGL (Mesa, no X server).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import sys
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import TypeVar

import numpy as np

from tmsplan.io import interrupts

EGL_WINDOW = "vtkEGLRenderWindow"
T = TypeVar("T")
R = TypeVar("R")

_VTK_MODULES = tuple(
    f"vtkmodules.vtk{name}"
    for name in (
        "CommonCore CommonDataModel CommonExecutionModel CommonMath CommonMisc CommonSystem "
        "CommonTransforms CommonColor ParallelCore FiltersCore FiltersGeneral FiltersGeometry "
        "FiltersModeling FiltersSources FiltersPython IOCore IOImage ImagingCore ImagingMath "
        "ImagingSources InteractionStyle InteractionWidgets ChartsCore ViewsCore ViewsContext2D "
        "PythonContext2D RenderingCore RenderingOpenGL2 RenderingContext2D "
        "RenderingContextOpenGL2 RenderingAnnotation RenderingFreeType RenderingLabel "
        "RenderingUI RenderingVolume RenderingVolumeOpenGL2 RenderingHyperTreeGrid "
        "RenderingMatplotlib"
    ).split()
)
"""The VTK extension modules a plan's pictures and report load (pyvista imports them lazily)."""


def pyvista(*, offscreen: bool = True) -> ModuleType:
    """Import and return :mod:`pyvista`, set up for offscreen rendering.

    Parameters
    ----------
    offscreen : bool
        When True (pictures, reports), ``VTK_DEFAULT_OPENGL_WINDOW`` defaults to
        ``vtkEGLRenderWindow`` (``setdefault``: a value the user set is kept).
        An interactive window (:func:`tmsplan.render.view`) passes False.
    """
    if offscreen:
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", EGL_WINDOW)
    if "pyvista.plotting" not in sys.modules:
        # A Ctrl-C that lands while a VTK module initialises in C crashes the process
        # (SIGSEGV, seen in about 1 in 8 interrupts during the pictures): load them all
        # here, the interrupt held back until they are in place, then raised.
        with interrupts.deferred():
            importlib.import_module("pyvista.plotting")
            for name in _VTK_MODULES:
                with contextlib.suppress(ImportError):  # a VTK build without it
                    importlib.import_module(name)
    import pyvista as pv

    return pv


def png_bytes(
    image: np.ndarray, *, max_size: int | None = None, colors: int | None = None
) -> bytes:
    """Encode an ``(h, w, 3|4)`` uint8 image as PNG bytes, in memory.

    Parameters
    ----------
    image : (h, w, 3) or (h, w, 4) uint8
    max_size : int, optional
        Downscale (keeping the aspect ratio) so neither side exceeds it.
    colors : int, optional
        Quantise to a palette of this many colours (smaller files).
    """
    from PIL import Image

    picture = Image.fromarray(np.ascontiguousarray(image))
    if picture.mode == "RGBA":
        picture = picture.convert("RGB")
    if max_size is not None and max(picture.size) > max_size:
        scale = max_size / max(picture.size)
        size = (max(1, round(picture.size[0] * scale)), max(1, round(picture.size[1] * scale)))
        picture = picture.resize(size, Image.Resampling.LANCZOS)
    if colors is not None:
        picture = picture.quantize(colors=colors, method=Image.Quantize.MEDIANCUT)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def map_threads(function: Callable[[T], R], items: Mapping[str, T]) -> dict[str, R]:
    """``{name: function(item)}`` over two threads (PNG coding releases the GIL).

    Parameters
    ----------
    function : callable
    items : dict of str to any

    Returns
    -------
    dict of str to any
        Same keys, same order.
    """
    from concurrent.futures import ThreadPoolExecutor

    if len(items) < 2:
        return {name: function(item) for name, item in items.items()}
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(items, pool.map(function, items.values()), strict=True))


def read_png(data: bytes) -> np.ndarray:
    """Decode PNG bytes to an ``(h, w, 3)`` uint8 array."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as picture:
        return np.asarray(picture.convert("RGB"))


def is_blank(image: np.ndarray, *, min_std: float = 4.0) -> bool:
    """True when an image is (nearly) one flat colour: a failed render.

    Parameters
    ----------
    image : (h, w, 3) uint8
    min_std : float
        Minimum standard deviation of the grey values of a real picture.
    """
    grey = np.asarray(image, dtype=np.float64)[..., :3].mean(axis=-1)
    return bool(grey.std() < min_std)
