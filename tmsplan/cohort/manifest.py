"""Batch manifests: which targets to plan, read from a TSV/CSV file or a BIDS folder.

Design notes: ``docs/batch.md``, section ``tmsplan.cohort.manifest``.
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tmsplan.errors import TmsplanError

__all__ = ["COLUMNS", "Column", "BatchRow", "ManifestError", "read_manifest", "bids_rows"]

FAILED_FOLDER = "failed"
"""Folder (in the batch's output) for the logs of failed rows."""

_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class ManifestError(TmsplanError, ValueError):
    """The manifest cannot be used (unknown column, no subject column, duplicates)."""


# --------------------------------------------------------------------------- columns


def _text(value: str, base: Path) -> str:
    return value


def _path(value: str, base: Path) -> str:
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (base / path).resolve())


def _number(value: str, base: Path) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"expected a number, got {value!r}") from None
    return number


def _triple(value: str, base: Path) -> list[float]:
    parts = value.replace(",", " ").split()
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        numbers = []
    if len(numbers) != 3 or not all(math.isfinite(n) for n in numbers):
        raise ValueError(f"expected three numbers separated by spaces (X Y Z mm), got {value!r}")
    return numbers


def _register(value: str, base: Path) -> bool | str:
    text = value.strip().lower()
    if text in ("no", "false", "0", "off"):
        return False
    if text in ("yes", "true", "1", "on", "affine"):
        return "affine"
    if text == "nonlinear":
        return "nonlinear"
    raise ValueError(f"expected affine, nonlinear, yes or no, got {value!r}")


def _no_snap(value: str, base: Path) -> bool:
    """``no_snap`` cell -> ``snap_to_grey_matter`` (yes: keep the carried target as it is)."""
    text = value.strip().lower()
    if text in ("yes", "true", "1", "on"):
        return False
    if text in ("no", "false", "0", "off"):
        return True
    raise ValueError(f"expected yes or no, got {value!r}")


def _formats(value: str, base: Path) -> list[str] | None:
    text = value.strip().lower()
    if text == "all":
        return None
    if text == "none":
        return []
    return [part.strip() for part in text.split(",") if part.strip()]


def _choice(*allowed: str) -> Callable[[str, Path], str]:
    def parse(value: str, base: Path) -> str:
        if value not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}, got {value!r}")
        return value

    return parse


@dataclass(frozen=True)
class Column:
    """How one manifest column maps onto the planning call.

    Attributes
    ----------
    key : str
        Keyword argument of :func:`tmsplan.pipeline.plan.plan_target` (``to == "plan"``),
        of :func:`tmsplan.pipeline.plan.write_plan` (``"write"``), or ``"peaks"``.
    parse : callable
        ``(cell text, manifest folder) -> value``; raises ValueError with a
        short reason.
    to : {"plan", "write", "peaks"}
    is_path : bool
        The value is an input file (checksummed for resuming).
    """

    key: str
    parse: Callable[[str, Path], Any]
    to: str = "plan"
    is_path: bool = False


COLUMNS: dict[str, Column] = {
    "t1": Column("t1", _path, is_path=True),
    "activation": Column("activation", _path, is_path=True),
    "peaks": Column("peaks", _path, to="peaks", is_path=True),
    "target_mni": Column("target_mni", _triple),
    "target_t1": Column("target_t1", _triple),
    "roi": Column("roi", _text),
    "roi_mask": Column("roi_mask", _path, is_path=True),
    "mni_to_t1": Column("mni_to_t1", _path, is_path=True),
    "xfm_kind": Column("xfm_kind", _choice("affine", "itk", "fsl")),
    "xfm_moving": Column("xfm_moving", _path, is_path=True),
    "register": Column("register", _register),
    "activation_space": Column("activation_space", _choice("MNI", "T1w")),
    "threshold": Column("threshold", _number),
    "sign": Column("sign", _choice("positive", "negative", "absolute")),
    "rule": Column("rule", _choice("peak", "cog")),
    "coil_skin_distance": Column("coil_skin_distance_mm", _number),
    "handle_angle": Column("handle_angle_deg", _number),
    "max_depth": Column("max_depth_mm", _number),
    "target_name": Column("target_name", _text),
    "no_snap": Column("snap_to_grey_matter", _no_snap),
    "formats": Column("formats", _formats, to="write"),
}
"""Manifest columns besides ``subject`` (named like ``tmsplan plan``'s long options)."""


@dataclass(frozen=True)
class BatchRow:
    """One target to plan (plain data: it travels to worker processes).

    Attributes
    ----------
    index : int
        1-based row number in the manifest (or discovery order in BIDS mode).
    subject : str
        Subject label (the folder name).
    target : str
        Target name (the sub-folder name when the subject has several rows).
    folder : str
        Output folder of the row, relative to the batch's output folder.
    plan_kwargs : dict
        Keyword arguments of :func:`tmsplan.pipeline.plan.plan_target` (paths as absolute
        strings; ``peaks`` is turned into a map in the worker).
    write_kwargs : dict
        Keyword arguments of :func:`tmsplan.pipeline.plan.write_plan` (``formats``, ``report``).
    inputs : dict
        Column name -> absolute path of every input file of the row.
    error : str or None
        Why the row cannot be planned, found while reading the manifest.
    """

    index: int
    subject: str
    target: str
    folder: str
    plan_kwargs: dict = field(default_factory=dict)
    write_kwargs: dict = field(default_factory=dict)
    inputs: dict = field(default_factory=dict)
    error: str | None = None


def _cells_to_row(
    index: int, cells: dict[str, str], base: Path, defaults: dict[str, str], report: bool
) -> tuple[str, dict, dict, dict, str | None]:
    """Parse one manifest row: (subject, plan kwargs, write kwargs, inputs, error)."""
    subject = (cells.get("subject") or "").strip()
    plan_kwargs: dict[str, Any] = {}
    write_kwargs: dict[str, Any] = {"report": report}
    inputs: dict[str, str] = {}
    error = None
    if not subject:
        error = "the 'subject' cell is empty"
    elif not _SAFE.fullmatch(subject):
        error = (
            f"subject {subject!r} is not usable as a folder name (letters, digits, '.', "
            "'_' and '-' only)"
        )
    given = {k: v for k, v in cells.items() if v is not None and v.strip()}
    merged = {**defaults, **given}
    if "mni_to_t1" in given and "register" not in given:
        merged.pop("register", None)  # a row's own transform file beats --register
    for name, column in COLUMNS.items():
        text = (merged.get(name) or "").strip()
        if not text:
            continue
        base_dir = base if name in cells and (cells.get(name) or "").strip() else Path.cwd()
        try:
            value = column.parse(text, base_dir)
        except ValueError as exc:
            error = error or f"column {name}: {exc}"
            continue
        if column.is_path:
            inputs[name] = value
        if column.to == "write":
            write_kwargs[column.key] = value
        elif column.to == "peaks":
            plan_kwargs["peaks"] = value
        else:
            plan_kwargs[column.key] = value
    sources = [k for k in ("activation", "peaks", "target_mni", "target_t1") if k in plan_kwargs]
    if error is None and len(sources) != 1:
        error = (
            "give exactly one of the columns activation, peaks, target_mni or target_t1 "
            f"(this row has {', '.join(sources) or 'none'})"
        )
    return subject, plan_kwargs, write_kwargs, inputs, error


def _safe_name(text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "target"
    return name


def _assign_folders(parsed: list[tuple[int, str, dict, dict, dict, str | None]]) -> list[BatchRow]:
    """Give each row its folder; several rows of one subject get one sub-folder each."""
    per_subject: dict[str, list[int]] = {}
    for i, (_, subject, *_rest) in enumerate(parsed):
        per_subject.setdefault(subject, []).append(i)
    rows = []
    for index, subject, plan_kwargs, write_kwargs, inputs, error in parsed:
        name = plan_kwargs.get("target_name") or plan_kwargs.get("roi") or f"row{index}"
        target = _safe_name(str(name))
        several = len(per_subject[subject]) > 1
        folder = f"{subject}/{target}" if several else subject
        if not subject:
            folder = f"{FAILED_FOLDER}/row{index}"
        rows.append(
            BatchRow(
                index=index,
                subject=subject,
                target=target,
                folder=folder,
                plan_kwargs={**plan_kwargs, "subject": subject or None},
                write_kwargs=write_kwargs,
                inputs=inputs,
                error=error,
            )
        )
    seen: dict[str, int] = {}
    for row in rows:
        if row.subject and row.folder in seen:
            raise ManifestError(
                f"manifest rows {seen[row.folder]} and {row.index} of subject {row.subject!r} "
                f"would both be written to {row.folder}/; give them different target_name "
                "values."
            )
        seen[row.folder] = row.index
    return rows


def read_manifest(
    path: str | os.PathLike,
    *,
    defaults: dict[str, str] | None = None,
    report: bool = True,
) -> list[BatchRow]:
    """Read a TSV/CSV manifest into batch rows (nothing is planned).

    Parameters
    ----------
    path : str or os.PathLike
        ``.tsv`` (tab-separated) or ``.csv`` (comma-separated) file with a
        header row; see :data:`COLUMNS`.
    defaults : dict of str, optional
        Column name -> cell text applied to every row whose cell is empty
        (options given on the command line); relative paths here are relative
        to the current folder.
    report : bool
        Write pictures and ``report.html`` for each row.

    Returns
    -------
    list of BatchRow
        In manifest order; rows with a problem carry it in ``error``.

    Raises
    ------
    ManifestError
        Unreadable file, no ``subject`` column, an unknown column, no data row,
        or two rows that would share a folder.
    """
    path = Path(path)
    defaults = dict(defaults or {})
    unknown = sorted(set(defaults) - set(COLUMNS))
    if unknown:
        raise ManifestError(f"unknown batch option(s) {unknown}.")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"cannot read the manifest {path}: {exc}.") from None
    delimiter = "," if path.suffix.lower() == ".csv" else "\t"
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    reader = csv.DictReader(lines, delimiter=delimiter)
    header = [name.strip() for name in (reader.fieldnames or [])]
    if "subject" not in header:
        what = "comma" if delimiter == "," else "tab"
        raise ManifestError(
            f"the manifest {path} has no 'subject' column (columns: {header}); the first "
            f"line must name the {what}-separated columns, e.g. subject, t1, peaks, roi."
        )
    unknown = [name for name in header if name != "subject" and name not in COLUMNS]
    if unknown:
        raise ManifestError(
            f"the manifest {path} has unknown column(s) {unknown}; allowed: subject, "
            f"{', '.join(COLUMNS)}."
        )
    parsed = []
    for number, raw in enumerate(reader, start=1):
        cells = {
            (k or "").strip(): (v or "").strip() if isinstance(v, str) else ""
            for k, v in raw.items()
        }
        if None in raw:  # more cells than header names
            cells = {**cells, "subject": cells.get("subject", "")}
            parsed.append(
                (number, cells["subject"], {}, {}, {}, "the row has more cells than the header")
            )
            continue
        subject, plan_kwargs, write_kwargs, inputs, error = _cells_to_row(
            number, cells, path.resolve().parent, defaults, report
        )
        parsed.append((number, subject, plan_kwargs, write_kwargs, inputs, error))
    if not parsed:
        raise ManifestError(f"the manifest {path} has a header but no rows.")
    return _assign_folders(parsed)


def bids_rows(
    root: str | os.PathLike,
    *,
    defaults: dict[str, str] | None = None,
    report: bool = True,
) -> list[BatchRow]:
    """Batch rows for every subject of an fMRIPrep derivatives folder.

    Each subject's ``*_desc-preproc_T1w.nii[.gz]`` is its T1 and its
    ``*_from-MNI152NLin2009cAsym_to-T1w_mode-image_xfm.h5`` the MNI->T1 transform
    (found with pybids). The map/ROI options come from ``defaults`` (the
    command line). A subject with session-level T1s only uses the one without a
    session, or fails with a reason when there are several.

    Parameters
    ----------
    root : str or os.PathLike
        The derivatives folder (holding ``sub-*/anat/``).
    defaults : dict of str, optional
        Column name -> value for every row (see :func:`read_manifest`).
    report : bool
        Write pictures and ``report.html`` for each row.

    Returns
    -------
    list of BatchRow

    Raises
    ------
    ManifestError
        No subject found, or pybids is not installed.
    """
    import warnings

    try:
        from bids import BIDSLayout
    except ImportError:
        raise ManifestError(
            "reading a BIDS folder needs pybids: pip install 'tmsplan[cohort]' (or pybids)."
        ) from None
    root = Path(root).resolve()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        layout = BIDSLayout(
            root, validate=False, is_derivative=True, config=["bids", "derivatives"]
        )
        subjects = sorted(layout.get_subjects())
        found = {}
        for label in subjects:
            t1s = layout.get(
                subject=label,
                desc="preproc",
                suffix="T1w",
                extension=[".nii.gz", ".nii"],
                return_type="filename",
            )
            xfms = layout.get(
                subject=label,
                suffix="xfm",
                extension=".h5",
                mode="image",
                return_type="filename",
                **{"from": "MNI152NLin2009cAsym", "to": "T1w"},
            )
            found[label] = (sorted(t1s), sorted(xfms))
    if not subjects:
        raise ManifestError(
            f"no sub-*/anat/*_desc-preproc_T1w.nii.gz found under {root}; give an fMRIPrep "
            "derivatives folder or a manifest (TSV/CSV)."
        )
    parsed = []
    for number, label in enumerate(subjects, start=1):
        t1s, xfms = found[label]
        cells = {"subject": f"sub-{label}"}
        error = None
        no_session = [p for p in t1s if "_ses-" not in Path(p).name]
        t1s = no_session or t1s
        if len(t1s) != 1:
            error = f"{len(t1s)} desc-preproc T1w images for sub-{label}; expected one"
        else:
            cells["t1"] = t1s[0]
            no_session = [p for p in xfms if "_ses-" not in Path(p).name] or xfms
            if no_session and "register" not in (defaults or {}):
                cells["mni_to_t1"] = no_session[0]
        subject, plan_kwargs, write_kwargs, inputs, row_error = _cells_to_row(
            number, cells, root, dict(defaults or {}), report
        )
        parsed.append((number, subject, plan_kwargs, write_kwargs, inputs, error or row_error))
    return _assign_folders(parsed)
