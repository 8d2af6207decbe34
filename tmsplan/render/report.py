"""The plan report: pictures, 3D view and ``report.html``, made in memory, then written.

The page itself (one offline file for the reviewing clinician) is :mod:`.report_page`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tmsplan.io import interrupts
from tmsplan.io.images import ImageLike, check_img
from tmsplan.io.outputs import check_writable, write_bytes, write_files
from tmsplan.io.record import DISCLAIMER, check_record
from tmsplan.render._vtk import map_threads, png_bytes
from tmsplan.render.report_checks import check_record_t1, handle_angle
from tmsplan.render.report_page import MAX_REPORT_BYTES, report_bytes

__all__ = [
    "REPORT_FILENAME",
    "MAX_REPORT_BYTES",
    "DISCLAIMER",
    "check_record_t1",
    "handle_angle",
    "write_report",
    "make_report",
]

REPORT_FILENAME = "report.html"
PICTURE_DIRNAME = "pictures"
_SCENE_BUDGET = 1_800_000  # characters of the interactive view's HTML


def write_report(
    record: Mapping,
    out_dir: str | os.PathLike,
    *,
    pictures: Mapping[str, str | os.PathLike],
    scene_html: str | None,
    warnings: Sequence[str] = (),
    geometry: Sequence[Mapping] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the self-contained ``report.html`` of a plan.

    Parameters
    ----------
    record : dict
        Plan record (checked with :func:`tmsplan.io.record.check_record`).
    out_dir : str or os.PathLike
        Folder; the report is ``<out_dir>/report.html``.
    pictures : dict of str to path
        PNG per view name (``left``, ``right``, ``top``, ``front``, ``back``,
        ``coil``, ``slices``); inlined as base64, re-encoded smaller when needed
        to keep the report within :data:`MAX_REPORT_BYTES`.
    scene_html : str or None
        A self-contained HTML document with the interactive 3D view (see
        :func:`tmsplan.render.html.scene_html`), embedded in an iframe; URLs
        it would load are made inert (:func:`tmsplan.render.html.inert_urls`).
    warnings : sequence of str
        Warnings found while making the report (e.g. from
        :func:`check_record_t1`), shown with the record's own warnings.
    geometry : list of dict, optional
        :func:`tmsplan.render.checks.scene_geometry` output, shown as checks.
    overwrite : bool, keyword-only

    Returns
    -------
    pathlib.Path
        The written ``report.html``.

    Warns
    -----
    TmsplanWarning
        The report exceeds :data:`MAX_REPORT_BYTES` even with the smallest pictures.
    """
    check_record(dict(record), source="record")
    path = check_writable(Path(out_dir) / REPORT_FILENAME, overwrite=overwrite)
    raw = {name: Path(p).read_bytes() for name, p in pictures.items()}
    data = report_bytes(record, raw, scene_html, warnings, geometry)
    return write_bytes(path, data, overwrite=overwrite)


def make_report(
    record: Mapping,
    out_dir: str | os.PathLike,
    scalp_mesh: Any,
    *,
    t1_img: ImageLike | None = None,
    brain_mesh: Any = None,
    brain_img: ImageLike | None = None,
    activation_img: ImageLike | None = None,
    roi_img: ImageLike | None = None,
    landmarks: Mapping[str, Sequence[float]] | None = None,
    views: Sequence[str] = ("left", "right", "top", "front", "coil"),
    interactive: bool = True,
    overwrite: bool = False,
) -> Path:
    """Render the views, the slices and the interactive scene; write ``report.html``.

    Writes ``<out_dir>/pictures/<view>.png``, ``<out_dir>/pictures/slices.png``
    and ``<out_dir>/report.html``, each atomically, once every picture, the
    scene and the report are made (a failure on the way writes nothing). All
    layers are in ``record["space"]``.

    Parameters
    ----------
    record : dict
        Plan record.
    out_dir : str or os.PathLike
        Plan folder (created if needed).
    scalp_mesh : trimesh.Trimesh or pyvista.PolyData
        Scalp surface in the record's frame.
    t1_img : image, optional
        Head image for the slices; default: ``record["t1"]["path"]``, checked
        with :func:`check_record_t1` (missing file: error; changed file: red
        warning in the report).
    brain_mesh : mesh, optional
        Brain surface; or ``brain_img``, a brain mask whose 0.5 isosurface is drawn.
    activation_img, roi_img, landmarks
        See :func:`tmsplan.render.scene.plan_plotter`. Like every layer, they
        must be in the record's frame (``record["space"]``): the caller carries
        them there (as :func:`tmsplan.pipeline.plan.plan_target` does).
    views : sequence of str
        3D views to render.
    interactive : bool
        Embed the interactive 3D view.
    overwrite : bool, keyword-only

    Returns
    -------
    pathlib.Path
        ``<out_dir>/report.html``.

    Warns
    -----
    TmsplanWarning
        The report exceeds :data:`MAX_REPORT_BYTES` even with the smallest pictures.
    """
    from tmsplan.render.checks import scene_geometry
    from tmsplan.render.html import scene_html as make_scene_html
    from tmsplan.render.meshes import _decimated, isosurface_from_img, plan_surfaces
    from tmsplan.render.scene import render_view_images
    from tmsplan.render.slices import slices_png

    record = check_record(dict(record), source="record")
    out_dir = Path(out_dir)
    picture_dir = out_dir / PICTURE_DIRNAME
    names = [*views, "slices"]
    for name in names:
        check_writable(picture_dir / f"{name}.png", overwrite=overwrite)
    check_writable(out_dir / REPORT_FILENAME, overwrite=overwrite)

    warnings: list[str] = []
    if t1_img is None:
        warnings += check_record_t1(record)
        t1_img = record["t1"]["path"]
    t1 = check_img(t1_img, name="t1_img")
    if brain_mesh is None and brain_img is not None:
        # 60k triangles look the same in the pictures as the ~280k of a 1 mm mask; marching
        # at 2 mm gives ~70k directly (a fifth of the time of marching at 1 mm + decimating)
        brain_mesh = _decimated(
            isosurface_from_img(brain_img, 0.5, name="brain_img", step_mm=2.0),
            60_000,
            name="brain_img",
        )
    if landmarks is None and (record.get("eeg1020") or {}).get("positions"):
        landmarks = _cap_landmarks(record)
    # the surfaces are made once and shared by the pictures and the 3D view
    surfaces = plan_surfaces(
        record, scalp_mesh, brain_mesh=brain_mesh, activation_img=activation_img, roi_img=roi_img
    )
    layers = {
        "brain_mesh": brain_mesh,
        "activation_img": activation_img,
        "roi_img": roi_img,
        "landmarks": landmarks,
        "surfaces": surfaces,
    }
    # everything is made in memory first: a failure leaves no pictures without a report
    geometry = scene_geometry(record, surfaces.scalp)
    images = render_view_images(record, scalp_mesh, views=views, **layers)
    pictures = map_threads(png_bytes, images)
    threshold = (record.get("activation") or {}).get("threshold")
    first = record["targets"][0] if record["targets"] else None
    if first is not None:
        pictures["slices"] = slices_png(
            t1,
            first["cortical_mm"],
            activation_img=activation_img,
            activation_threshold=threshold,
            roi_img=roi_img,
            title=str(first["name"]),
        )
    scene = None
    interrupts.checkpoint("scene")
    if interactive:
        # vtk.js alone is ~1.1 MB: coarser meshes until the 3D view leaves room for pictures
        for max_faces in (12_000, 6_000, 3_000):
            scene = make_scene_html(record, scalp_mesh, max_faces=max_faces, **layers)
            if len(scene) <= _SCENE_BUDGET:
                break
    report = report_bytes(record, pictures, scene, warnings, geometry)
    files = [(picture_dir / f"{name}.png", data) for name, data in pictures.items()]
    files.append((out_dir / REPORT_FILENAME, report))
    return write_files(files, overwrite=overwrite)[-1]


_CAP_LABELS = (
    "Fpz", "Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7", "C3", "Cz", "C4", "T8",
    "P7", "P3", "Pz", "P4", "P8", "O1", "Oz", "O2", "FC5", "FC6", "AF3", "AF4",
)  # fmt: skip


def _cap_landmarks(record: Mapping) -> dict:
    """Cap positions to draw as labelled dots: the midline and the first target's side.

    Labels are drawn over everything, so the other side's would show through the head.
    """
    eeg = record["eeg1020"]
    positions = eeg["positions"]
    midline = float(np.mean([p[0] for n, p in positions.items() if n.lower().endswith("z")]))
    entry_x = record["targets"][0]["scalp_mm"][0] if record["targets"] else midline
    odd = entry_x < midline  # left of the midline in RAS+: odd numbers
    keep = {}
    for name in _CAP_LABELS:
        digits = "".join(c for c in name if c.isdigit())
        if name in positions and (not digits or (int(digits) % 2 == 1) == odd):
            keep[name] = positions[name]
    beam = eeg.get("beam_f3") or {}
    if odd and beam.get("point_mm"):
        keep["Beam F3"] = beam["point_mm"]
    return keep
