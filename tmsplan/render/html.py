"""The interactive 3D view of a plan as one self-contained HTML page (vtk.js, no server).

The scene is serialised in this process and embedded in trame-vtk's offline vtk.js viewer.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from tmsplan.render._vtk import pyvista
from tmsplan.render.camera import set_view
from tmsplan.render.scene import plan_plotter

if TYPE_CHECKING:  # pragma: no cover
    import pyvista as pv

__all__ = ["INERT_URL", "inert_urls", "scene_html"]


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

    The plan scene (:func:`~tmsplan.render.scene.plan_plotter`) is serialised in
    this process into vtk.js's scene format (trame-vtk's serialisers: meshes,
    colours, opacity, camera) and embedded, base64-encoded, in the offline vtk.js
    viewer page that trame-vtk ships. No server is started and nothing is
    fetched. Meshes are decimated to ``max_faces`` triangles to keep the report
    small; 2D labels are left out (vtk.js shows geometry only) and 3D letters L,
    R, A, P, S mark the sides.

    Parameters
    ----------
    record, scalp_mesh, **layers
        As for :func:`~tmsplan.render.scene.plan_plotter`.
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
        plotter.render()
        archive = _scene_archive(plotter)
    finally:
        plotter.close()
    return inert_urls(_viewer_page(archive))


def _scene_archive(plotter: pv.Plotter) -> bytes:
    """The plotter's scene as vtk.js's offline archive (``.vtksz``: ``index.json`` in a zip).

    ``index.json`` holds ``scene`` (the render window state: renderers, actors,
    mappers, properties, camera) and ``hashes`` (each data array, base64).
    """
    from trame_vtk.modules.vtk.serializers import (
        SynchronizationContext,
        extract_array_hash,
        initialize_serializers,
        reference_id,
        serialize,
    )

    initialize_serializers()
    context = SynchronizationContext()
    # every property in full: without this trame-vtk sends only what changed since the
    # last serialisation of an object (by address), which a standalone page never saw
    context.set_ignore_last_dependencies(True)
    window = plotter.render_window
    camera = plotter.renderer.GetActiveCamera()
    state = serialize(None, window, reference_id(window), context, 1)
    state["extra"] = {
        "vtkRefId": reference_id(window),
        "centerOfRotation": list(camera.GetFocalPoint()),
        "camera": reference_id(camera),
    }
    hashes = {
        entry["hash"]: {**entry, "content": context.get_cached_data_array(entry["hash"], False)}
        for entry in extract_array_hash(state)
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("index.json", json.dumps({"hashes": hashes, "scene": state}))
    return buffer.getvalue()


def _viewer_page(archive: bytes) -> str:
    """trame-vtk's offline vtk.js viewer page with ``archive`` embedded (no server)."""
    from trame_vtk.tools.vtksz2html import write_html

    page = io.StringIO()
    write_html(archive, page)
    return page.getvalue()


# a string literal (or attribute value) that is a whole http(s) URL: something to load
_URL_LITERAL = re.compile(r"""(["'`])https?://[^"'`\s<>]*\1""", re.IGNORECASE)
# the lookahead on first letters lets the regex engine skip ahead (2-3x faster on a 2 MB page)
_URL_ATTRIBUTE = re.compile(
    r"""(?=[shapd])(\b(?:src|href|action|poster|data|srcset)\s*=\s*)https?://[^\s>]*""",
    re.IGNORECASE,
)
_CSS_URL = re.compile(r"""url\(\s*(["']?)https?://[^)]*\)""", re.IGNORECASE)
_URL_BASE = re.compile(r"new\s+URL\([^()]*,\s*$")
INERT_URL = "data:,"
"""What a resource URL of the exported 3D view is replaced by (an empty ``data:`` URL)."""


def inert_urls(text: str) -> str:
    """Replace every http(s) URL a page could load by :data:`INERT_URL`.

    The vtk.js viewer adds ``<link rel="icon">`` elements pointing at
    kitware.github.io when it runs; an offline report must not reach out.
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
