"""Review saved plans: regenerate their pictures and report, view them, group them.

Design notes: ``docs/render.md``, section ``tmsplan.render.review``.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any
from warnings import warn

import nibabel as nib
import numpy as np

from tmsplan.errors import ActivationError, TmsplanWarning
from tmsplan.head.cache import load_head
from tmsplan.head.scalp import surface_from_mask
from tmsplan.io.bundled import load_mni_brain_mask, mni_head_path
from tmsplan.io.images import check_img
from tmsplan.spaces import MNI_FRAME
from tmsplan.target.atlas import get_roi, roi_mask_img

__all__ = ["report_record", "view_record", "group_picture"]


def _saved_transform(record: dict, folder: Path, t1_img: nib.Nifti1Image):
    """Reload the MNI->T1 transform a plan used (a given file, or its saved registration)."""
    from tmsplan.xfm.transforms import load_mni_to_subject

    info = record["transform"]
    described = info.get("transform", info)  # a registration wraps the transform's description
    kind = {"ants-registration": "itk"}.get(described.get("kind"), described.get("kind"))
    kind = kind if kind in ("affine", "itk", "fsl") else None
    for name in described.get("paths", [])[:1]:  # the first file is the MNI->T1 one
        for candidate in (Path(name), folder / name, folder / "transforms" / Path(name).name):
            if candidate.is_file():
                xfm = load_mni_to_subject(
                    candidate,
                    kind=kind,
                    reference=t1_img,
                    moving=mni_head_path(1),
                    check_fit=False,
                )
                return replace(xfm, src_frame=MNI_FRAME)  # as planned (see _resolve_transform)
    return None


def _record_layers(record: dict, folder: Path, t1_img: nib.Nifti1Image) -> tuple[dict, list]:
    """Rebuild the picture layers of a saved plan, in the head's frame; notes for what fails."""
    notes: list[str] = []
    layers: dict[str, Any] = {"activation_img": None, "roi_img": None, "brain_img": None}
    mni_to_subject = None
    if record["space"] != MNI_FRAME and record.get("transform"):
        mni_to_subject = _saved_transform(record, folder, t1_img)
        if mni_to_subject is None:
            notes.append(
                "the plan's MNI->T1 transform file was not found; ROI, brain and activation "
                "layers are not drawn."
            )
    activation = record.get("activation") or {}
    if activation.get("path"):
        path = Path(activation["path"])
        path = path if path.is_absolute() else folder / path
        if path.exists():
            img = check_img(path, name="activation", nan_policy="zero")
            if activation.get("space", record["space"]) == record["space"]:
                layers["activation_img"] = img
            elif mni_to_subject is not None:
                layers["activation_img"] = mni_to_subject.resample_to_subject(
                    img, t1_img, interpolation="linear"
                )
        else:
            notes.append(f"the activation map {path} was not found; it is not drawn.")
    roi = record.get("roi") or {}
    if roi.get("id"):
        roi_mni = roi_mask_img(get_roi(roi["id"]), load_mni_brain_mask(1))
        if record["space"] == MNI_FRAME:
            layers["roi_img"] = roi_mni
        elif mni_to_subject is not None:
            layers["roi_img"] = mni_to_subject.resample_to_subject(roi_mni, t1_img)
    if record["space"] == MNI_FRAME:
        layers["brain_img"] = load_mni_brain_mask(1)
    elif mni_to_subject is not None:
        layers["brain_img"] = mni_to_subject.resample_to_subject(load_mni_brain_mask(1), t1_img)
    return layers, notes


def report_record(
    record_path: str | os.PathLike,
    *,
    out: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """Regenerate the pictures and ``report.html`` of a saved plan.

    Parameters
    ----------
    record_path : str or os.PathLike
        ``target.json`` of a plan, or its folder.
    out : str or os.PathLike, optional
        Folder for the report (default: the plan folder).
    overwrite : bool, keyword-only
        Replace existing pictures/report (``--force``).

    Returns
    -------
    list of pathlib.Path
        ``report.html``.

    Raises
    ------
    RecordError
        Another schema version, an inconsistent record
        (:func:`tmsplan.io.record_checks.validate_record`), or the T1 the plan refers
        to is missing.
    """
    from tmsplan.io.record import read_record
    from tmsplan.io.record_checks import validate_record
    from tmsplan.render import check_record_t1, make_report

    path = Path(record_path)
    folder = path if path.is_dir() else path.parent
    record = read_record(path)
    validate_record(record, source=str(path))
    t1_warnings = check_record_t1(record)
    for warning in t1_warnings:
        warn(warning, TmsplanWarning, stacklevel=2)
    t1_img = check_img(record["t1"]["path"], name="the plan's T1")
    scalp = load_head(record["t1"]["path"], frame=record["space"]).scalp
    layers, notes = _record_layers(record, folder, t1_img)
    for note in notes:
        warn(note, TmsplanWarning, stacklevel=2)
    report = make_report(
        record,
        Path(out) if out else folder,
        scalp.mesh,
        t1_img=t1_img,
        overwrite=overwrite,
        **layers,
    )
    return [report]


def view_record(record_path: str | os.PathLike) -> None:
    """Open a saved plan in an interactive 3D window (needs a display).

    Raises
    ------
    tmsplan.render.NoDisplayError
        No display: open the plan's ``report.html`` instead.
    """
    from tmsplan.io.record import read_record
    from tmsplan.render import display_available, view

    path = Path(record_path)
    folder = path if path.is_dir() else path.parent
    record = read_record(path)
    if not display_available():
        view(record, None)  # raises the clear no-display error before any work
    t1_img = check_img(record["t1"]["path"], name="the plan's T1")
    scalp = load_head(record["t1"]["path"], frame=record["space"]).scalp
    layers, _ = _record_layers(record, folder, t1_img)
    view(record, scalp.mesh, **layers)


def group_picture(
    record_paths: list[str | os.PathLike],
    out_png: str | os.PathLike,
    *,
    view: str = "top",
    overwrite: bool = False,
) -> Path:
    """Draw the targets of several plans on the embedded MNI152 head, in one picture.

    Each target is placed at its MNI152 coordinates (``cortical_mni_mm``), so
    plans made in different patients' heads are comparable; targets without MNI
    coordinates are skipped with a warning.

    Parameters
    ----------
    record_paths : list of str or os.PathLike
        ``target.json`` files (or plan folders).
    out_png : str or os.PathLike
        PNG to write.
    view : {"left", "right", "top", "front", "back"}
    overwrite : bool, keyword-only

    Returns
    -------
    pathlib.Path
    """
    from tmsplan.io.record import read_record
    from tmsplan.render import render_group

    points, labels = [], []
    for path in record_paths:
        record = read_record(path)
        for target in record["targets"]:
            label = f"{record['subject']}:{target['name']}"
            if target.get("cortical_mni_mm") is None:
                warn(
                    f"{label} has no MNI coordinates; left out of the group picture.",
                    TmsplanWarning,
                    stacklevel=2,
                )
                continue
            points.append(target["cortical_mni_mm"])
            labels.append(label + ("" if target["reachable"] else " (unreachable)"))
    if not points:
        raise ActivationError("none of the plans has a target with MNI coordinates to draw.")
    scalp = load_head(None).scalp  # the embedded MNI head
    brain = surface_from_mask(load_mni_brain_mask(1), frame=MNI_FRAME, target_faces=60000)
    return render_group(
        np.asarray(points, dtype=np.float64),
        labels,
        scalp.mesh,
        out_png,
        view=view,
        overwrite=overwrite,
        brain_mesh=brain,
    )
