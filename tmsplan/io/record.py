"""The plan record (``target.json``): build, write, read and check it.

Design notes: ``docs/record.md``, section ``tmsplan.io.record``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from tmsplan import __version__
from tmsplan.errors import RecordError
from tmsplan.io.images import affine_source
from tmsplan.io.outputs import write_text
from tmsplan.spaces import check_rigid

__all__ = [
    "SCHEMA_VERSION",
    "RECORD_FILENAME",
    "DISCLAIMER",
    "t1_description",
    "write_record",
    "read_record",
    "check_record",
    "target_pose",
]

SCHEMA_VERSION = 1
RECORD_FILENAME = "target.json"
"""Name of the plan record in a plan folder; a folder holding it was written by tmsplan."""

DISCLAIMER = (
    "tmsplan is a research planning aid: geometry (where, how deep, which way), not an "
    "E-field model. A clinician must review every target before use."
)
"""What every record, report and cohort page says about the plan's use (one text)."""

_REQUIRED = (
    "tmsplan_version",
    "schema_version",
    "subject",
    "space",
    "t1",
    "roi",
    "activation",
    "targets",
    "parameters",
    "warnings",
    "outputs",
)
_TARGET_REQUIRED = (
    "name",
    "cortical_mm",
    "scalp_mm",
    "coil_matrix",
    "depth_mm",
    "handle_direction",
    "coil_skin_distance_mm",
)


def _floats(values: Any) -> list:
    return np.asarray(values, dtype=np.float64).round(6).tolist()


def t1_description(
    img: nib.Nifti1Image, path: str | os.PathLike | None, sha256: str | None
) -> dict:
    """Describe the head image a plan refers to, with its NIfTI header geometry.

    The header fields let exports state which NIfTI coordinate system they use
    (Brainsight) and fingerprint the image (ANT visor2) without re-reading it.

    Parameters
    ----------
    img : nibabel.Nifti1Image
        The (checked) T1 image.
    path : str, os.PathLike or None
        File the image came from (stored absolute), None for an in-memory image.
    sha256 : str or None
        Checksum of that file.

    Returns
    -------
    dict
        ``path, sha256, shape, zooms, affine, affine_source, sform_code,
        qform_code, sform, qform, quatern_bcd, qoffset_xyz, qfac, pixdim``.
    """
    header = img.header
    sform, sform_code = header.get_sform(coded=True)
    qform, qform_code = header.get_qform(coded=True)
    qfac = float(header["pixdim"][0]) if float(header["pixdim"][0]) in (-1.0, 1.0) else 1.0
    return {
        "path": str(Path(path).resolve()) if path is not None else None,
        "sha256": sha256,
        "shape": [int(s) for s in img.shape[:3]],
        "zooms": _floats(header.get_zooms()[:3]),
        "affine": _floats(img.affine),
        "affine_source": affine_source(img),
        "sform_code": int(sform_code),
        "qform_code": int(qform_code),
        "sform": _floats(sform) if sform is not None else None,
        "qform": _floats(qform) if qform is not None else None,
        "quatern_bcd": _floats([header["quatern_b"], header["quatern_c"], header["quatern_d"]]),
        "qoffset_xyz": _floats([header["qoffset_x"], header["qoffset_y"], header["qoffset_z"]]),
        "qfac": qfac,
        "pixdim": _floats(header["pixdim"][1:4]),
    }


def check_record(record: dict, *, source: str = "record") -> dict:
    """Check a plan record's schema and poses; return it unchanged.

    Raises
    ------
    RecordError
        Missing keys, another schema version, or a target whose coil matrix is
        not a rigid transform.
    """
    if not isinstance(record, dict):
        raise RecordError(f"{source}: a plan record must be a JSON object.")
    version = record.get("schema_version")
    if version != SCHEMA_VERSION:
        made_by = record.get("tmsplan_version", "an unknown version")
        raise RecordError(
            f"{source}: schema version {version!r} (written by tmsplan {made_by}) is not "
            f"the version this tmsplan {__version__} reads ({SCHEMA_VERSION}); re-run "
            "'tmsplan plan' with this version, or use the version that wrote it."
        )
    missing = [key for key in _REQUIRED if key not in record]
    if missing:
        raise RecordError(f"{source}: missing keys {missing}; it is not a tmsplan target.json.")
    if not isinstance(record["targets"], list):
        raise RecordError(f"{source}: 'targets' must be a list.")
    for i, target in enumerate(record["targets"]):
        lacking = [key for key in _TARGET_REQUIRED if key not in target]
        if lacking:
            raise RecordError(f"{source}: target #{i} lacks {lacking}.")
        check_rigid(
            target["coil_matrix"],
            name=f"{source}: targets[{i}].coil_matrix (target {target['name']!r})",
        )
        for key in ("depth_mm", "coil_skin_distance_mm"):
            value = target[key]
            if value is not None and not (isinstance(value, (int, float)) and np.isfinite(value)):
                raise RecordError(
                    f"{source}: target {target['name']!r} has {key} = {value!r}; "
                    "expected a finite number."
                )
    return record


def write_record(record: dict, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write a plan record as indented JSON, atomically.

    Parameters
    ----------
    record : dict
        A record as built by :func:`tmsplan.pipeline.plan.plan_target`.
    path : str or os.PathLike
        Usually ``<out>/target.json``.
    overwrite : bool, keyword-only
    """
    check_record(record, source=str(path))
    text = json.dumps(record, indent=2, allow_nan=False) + "\n"
    return write_text(path, text, overwrite=overwrite)


def read_record(path: str | os.PathLike) -> dict:
    """Read and check a ``target.json``.

    Raises
    ------
    RecordError
        Missing file, invalid JSON or schema problems.
    """
    path = Path(path)
    if path.is_dir():
        path = path / RECORD_FILENAME
    if not path.is_file():
        raise RecordError(f"plan record '{path}' does not exist; give the target.json of a plan.")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RecordError(f"plan record '{path}' cannot be read ({exc}).") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordError(f"'{path}' is not valid JSON ({exc}); it is not a target.json.") from None
    return check_record(record, source=str(path))


def target_pose(target: dict) -> np.ndarray:
    """The canonical coil matrix of one record target as a ``(4, 4)`` float64 array."""
    return check_rigid(np.asarray(target["coil_matrix"]), name=f"target {target.get('name')!r}")[0]
