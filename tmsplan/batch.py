"""Many patients: a manifest (or BIDS derivatives) -> one plan folder per row -> a cohort table.

:func:`read_manifest` turns a TSV/CSV manifest (one row per target) into
:class:`BatchRow` s; :func:`bids_rows` finds the same in an fMRIPrep derivatives
folder. :func:`run_batch` plans every row with :func:`tmsplan.plan.plan_target`
and :func:`tmsplan.plan.write_plan` (so a row's folder is exactly what
``tmsplan plan`` writes), in this process, in ``jobs`` worker processes, or on an
existing Dask distributed cluster, and writes ``cohort.tsv``, ``cohort.png`` and
``cohort.html``.

Rules
-----
* **Columns**: ``subject`` (required); ``t1`` (empty: the embedded MNI head); one
  of ``activation`` / ``peaks`` / ``target_mni`` / ``target_t1`` (three numbers
  separated by spaces); any column of :data:`COLUMNS` (``plan``'s long options
  without the dashes). An unknown column stops the batch before any work.
  Relative paths are relative to the manifest's folder.
* **Folders**: ``OUT/<subject>/``; a subject with several rows gets
  ``OUT/<subject>/<target name>/`` per row (target name: ``target_name``, else
  the ROI id, else ``row<N>``).
* **Isolation**: a row that fails is reported with its one-line reason (and a
  log in ``OUT/failed/``); the other rows go on.
* **Resume**: beside each plan, ``batch.json`` holds the SHA-256 of every input
  file of the row and a hash of its options. A row whose folder is complete
  (its ``target.json`` and every output it lists exist) and whose inputs and
  options are unchanged is skipped; otherwise it is planned again and its
  folder replaced. Checksums are of file contents: ``touch`` alone does not redo
  a row, an edited file does. ``force`` redoes every row.
* **Work unit**: all rows of one subject run in one task, so the subject's
  head (scalp surface) and registration are computed once.
* **Outliers**: for each target name with at least :data:`OUTLIER_MIN_ROWS`
  planned rows, ``distance_from_mean_mm`` is the distance of the row's MNI
  target from the mean MNI target of those rows; a row is an outlier when that
  distance exceeds :data:`OUTLIER_DISTANCE_MM`.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import re
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tmsplan.errors import TmsplanError

__all__ = [
    "COLUMNS",
    "OUTLIER_DISTANCE_MM",
    "OUTLIER_MIN_ROWS",
    "COHORT_COLUMNS",
    "BatchRow",
    "BatchResult",
    "read_manifest",
    "bids_rows",
    "run_batch",
    "plan_subject",
]

OUTLIER_DISTANCE_MM = 15.0
"""A target farther than this from its group's mean MNI target is flagged an outlier."""
OUTLIER_MIN_ROWS = 3
"""Groups with fewer planned rows get no outlier flag (too few to say what is typical)."""

SIDECAR = "batch.json"
ROW_LOG = "batch.log"
FAILED_FOLDER = "failed"
BATCH_MARKER = ".tmsplan-batch"

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
        Keyword argument of :func:`tmsplan.plan.plan_target` (``to == "plan"``),
        of :func:`tmsplan.plan.write_plan` (``"write"``), or ``"peaks"``.
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
    "formats": Column("formats", _formats, to="write"),
}
"""Manifest columns besides ``subject`` (named like ``tmsplan plan``'s long options)."""

COHORT_COLUMNS = (
    "subject",
    "target",
    "status",
    "reason",
    "cortical_x",
    "cortical_y",
    "cortical_z",
    "scalp_x",
    "scalp_y",
    "scalp_z",
    "cortical_mni_x",
    "cortical_mni_y",
    "cortical_mni_z",
    "depth_mm",
    "reachable",
    "roi",
    "distance_from_mean_mm",
    "outlier",
    "space",
    "folder",
    "manifest_row",
)
"""Columns of ``cohort.tsv`` (one row per manifest row, in manifest order)."""


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
        Keyword arguments of :func:`tmsplan.plan.plan_target` (paths as absolute
        strings; ``peaks`` is turned into a map in the worker).
    write_kwargs : dict
        Keyword arguments of :func:`tmsplan.plan.write_plan` (``formats``, ``report``).
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
    merged = {**defaults, **{k: v for k, v in cells.items() if v is not None and v.strip()}}
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


# --------------------------------------------------------------------------- one subject


def _sha256(path: str) -> str | None:
    from tmsplan.images import file_sha256

    try:
        return file_sha256(path)
    except OSError:
        return None


def _fingerprint(row: BatchRow) -> dict:
    """Checksums of the row's input files and a hash of everything else that shapes it."""
    from tmsplan import __version__
    from tmsplan.headcache import HEAD_ALGORITHM_VERSION

    options = {
        key: value
        for key, value in sorted(row.plan_kwargs.items())
        if key not in {COLUMNS[c].key for c in row.inputs}
    }
    described = json.dumps(
        {
            "options": options,
            "write": row.write_kwargs,
            "inputs": sorted(row.inputs.items()),
            "tmsplan_version": __version__,
            "head_algorithm_version": HEAD_ALGORITHM_VERSION,
        },
        sort_keys=True,
        default=str,
    )
    return {
        "inputs": {name: _sha256(path) for name, path in sorted(row.inputs.items())},
        "options_sha256": hashlib.sha256(described.encode()).hexdigest(),
    }


def _complete(folder: Path) -> dict | None:
    """The record of a complete plan folder (every listed output present), else None."""
    from tmsplan.record import RECORD_FILENAME, read_record

    try:
        record = read_record(folder / RECORD_FILENAME)
    except (TmsplanError, OSError, ValueError):
        return None
    for names in record.get("outputs", {}).values():
        for name in names:
            if not (folder / name).is_file():
                return None
    return record


def _up_to_date(folder: Path, fingerprint: dict) -> dict | None:
    """The record when the folder is complete and was made from the same inputs/options."""
    try:
        stored = json.loads((folder / SIDECAR).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(stored, dict) or stored.get("fingerprint") != fingerprint:
        return None
    if any(value is None for value in fingerprint["inputs"].values()):
        return None
    return _complete(folder)


def _summary(record: dict) -> dict:
    """The cohort-table values of a plan record (its first target)."""
    target = record["targets"][0]
    roi = record.get("roi") or {}
    return {
        "cortical": target["cortical_mm"],
        "scalp": target["scalp_mm"],
        "cortical_mni": target.get("cortical_mni_mm"),
        "depth_mm": target["depth_mm"],
        "reachable": bool(target["reachable"]),
        "roi": roi.get("id") or ("mask" if roi else ""),
        "space": record["space"],
        "name": target["name"],
        "warnings": list(record.get("warnings", [])),
    }


_PEAK_MAPS: dict[tuple, Any] = {}


def _peak_map(path: str, threshold: float):
    """The MNI map of a peak table (kept per process: many rows share one table)."""
    from tmsplan.activation import mni_map_from_peak_table

    key = (path, _sha256(path), threshold)
    if key not in _PEAK_MAPS:
        if len(_PEAK_MAPS) >= 4:
            _PEAK_MAPS.clear()
        _PEAK_MAPS[key] = mni_map_from_peak_table(path, threshold=threshold)
    return _PEAK_MAPS[key]


def _peak_memory_mb() -> float:
    import resource

    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(kb / 1024.0 if sys.platform != "darwin" else kb / 1024.0**2, 1)


def _failed_log(out: Path, row: BatchRow) -> Path:
    name = row.subject or f"row{row.index}"
    stem = f"{name}__{row.target}" if "/" in row.folder and row.subject else name
    return out / FAILED_FOLDER / f"{_safe_name(stem)}.log"


def _plan_row(row: BatchRow, out: Path, *, force: bool, cache: bool) -> dict:
    """Plan and write one row (or skip it); a result dict, never an exception."""
    import warnings

    from tmsplan.outputs import write_text
    from tmsplan.plan import plan_target, write_plan

    started = time.perf_counter()
    folder = out / row.folder
    log = [
        f"tmsplan batch row {row.index}: subject {row.subject}, target {row.target}",
        f"started {time.strftime('%Y-%m-%d %H:%M:%S')}",
        f"inputs: {json.dumps(row.inputs, sort_keys=True)}",
        f"options: {json.dumps(row.plan_kwargs, sort_keys=True, default=str)}",
    ]
    result: dict[str, Any] = {
        "index": row.index,
        "subject": row.subject,
        "target": row.target,
        "folder": row.folder,
        "status": "failed",
        "reason": row.error or "",
    }
    try:
        if row.error:
            raise TmsplanError(row.error)
        fingerprint = _fingerprint(row)
        record = None if force else _up_to_date(folder, fingerprint)
        if record is not None:
            result.update(status="skipped", reason="", summary=_summary(record))
        else:
            kwargs = dict(row.plan_kwargs)
            peaks = kwargs.pop("peaks", None)
            if peaks is not None:
                from tmsplan.activation import DEFAULT_THRESHOLD

                threshold = kwargs.get("threshold", DEFAULT_THRESHOLD)
                img, provenance = _peak_map(peaks, threshold)
                kwargs.update(activation=img, activation_source=provenance)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                if not cache:
                    from tmsplan.headcache import load_head

                    kwargs["head"] = load_head(kwargs.get("t1"), cache=False)
                plan = plan_target(**kwargs)
                exists = folder.exists()
                record = write_plan(plan, folder, overwrite=exists, **row.write_kwargs)
            for item in caught:
                log.append(f"python warning: {item.message}")
            for warning in record["warnings"]:
                log.append(f"warning: {warning}")
            sidecar = {
                "manifest_row": row.index,
                "subject": row.subject,
                "target": row.target,
                "inputs": row.inputs,
                "fingerprint": fingerprint,
            }
            write_text(folder / SIDECAR, json.dumps(sidecar, indent=2) + "\n", overwrite=True)
            result.update(status="ok", reason="", summary=_summary(record))
            _failed_log(out, row).unlink(missing_ok=True)
    except KeyboardInterrupt:
        raise
    except TmsplanError as exc:
        result["reason"] = str(exc)
        log.append(f"failed: {exc}")
    except Exception as exc:  # noqa: BLE001 - one bad row must not stop the others
        result["reason"] = f"internal error ({type(exc).__name__}: {exc})"
        log.append("failed with an internal error:\n" + traceback.format_exc())
    result["seconds"] = round(time.perf_counter() - started, 3)
    log.append(f"status: {result['status']} after {result['seconds']:.1f} s")
    if result["status"] == "ok":
        summary = result["summary"]
        log.append(
            f"target {summary['name']}: cortical {summary['cortical']} -> scalp "
            f"{summary['scalp']} ({summary['space']}), depth {summary['depth_mm']} mm, "
            f"{'reachable' if summary['reachable'] else 'NOT reachable'}"
        )
    try:
        if result["status"] == "ok":
            write_text(folder / ROW_LOG, "\n".join(log) + "\n", overwrite=True)
        elif result["status"] == "failed":
            write_text(_failed_log(out, row), "\n".join(log) + "\n", overwrite=True)
    except OSError:
        pass  # the row's result stands; the log is a convenience
    return result


def plan_subject(task: dict) -> list[dict]:
    """Plan every row of one subject (the unit of work sent to a process or Dask worker).

    Parameters
    ----------
    task : dict
        ``rows`` (list of :class:`BatchRow` as dicts), ``out`` (str), ``force``,
        ``cache`` (bool) and ``cache_dir`` (str or None).

    Returns
    -------
    list of dict
        One result per row: ``index``, ``subject``, ``target``, ``folder``,
        ``status`` (``ok``, ``skipped``, ``failed``), ``reason``, ``seconds``,
        ``summary`` (record values) and ``peak_memory_mb`` of the process.
    """
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    if task.get("cache_dir"):
        os.environ["TMSPLAN_CACHE_DIR"] = task["cache_dir"]
    out = Path(task["out"])
    results = []
    for data in task["rows"]:
        row = BatchRow(**data)
        result = _plan_row(row, out, force=task["force"], cache=task["cache"])
        result["peak_memory_mb"] = _peak_memory_mb()
        result["worker_pid"] = os.getpid()
        results.append(result)
    return results


# --------------------------------------------------------------------------- the batch


@dataclass(frozen=True)
class BatchResult:
    """What a batch did.

    Attributes
    ----------
    rows : list of dict
        One entry per row, in manifest order (see :func:`plan_subject`), with
        ``distance_from_mean_mm`` and ``outlier`` added.
    out : pathlib.Path
        The output folder.
    table : pathlib.Path
        ``cohort.tsv``.
    html : pathlib.Path
        ``cohort.html``.
    picture : pathlib.Path or None
        ``cohort.png`` (None without pictures or without any planned target).
    seconds : float
        Wall time.
    """

    rows: list
    out: Path
    table: Path
    html: Path
    picture: Path | None
    seconds: float

    def count(self, status: str) -> int:
        """Number of rows with this status (``ok``, ``skipped`` or ``failed``)."""
        return sum(1 for row in self.rows if row["status"] == status)


def _group_distances(results: list[dict]) -> None:
    """Add distance_from_mean_mm and outlier to each result (per target name)."""
    import numpy as np

    groups: dict[str, list[dict]] = {}
    for result in results:
        result["distance_from_mean_mm"] = None
        result["outlier"] = False
        summary = result.get("summary")
        if summary and summary.get("cortical_mni") is not None:
            groups.setdefault(summary["name"], []).append(result)
    for members in groups.values():
        points = np.asarray([m["summary"]["cortical_mni"] for m in members], dtype=np.float64)
        distances = np.linalg.norm(points - points.mean(axis=0), axis=1)
        for member, distance in zip(members, distances, strict=True):
            member["distance_from_mean_mm"] = round(float(distance), 3)
            member["outlier"] = bool(
                len(members) >= OUTLIER_MIN_ROWS and distance > OUTLIER_DISTANCE_MM
            )


def _table_text(results: list[dict]) -> str:
    def number(value: Any) -> str:
        return "" if value is None else f"{float(value):.4f}".rstrip("0").rstrip(".")

    lines = ["\t".join(COHORT_COLUMNS)]
    for result in results:
        summary = result.get("summary") or {}
        cells = {
            "subject": result["subject"],
            "target": result["target"],
            "status": result["status"],
            "reason": " ".join(str(result.get("reason") or "").split()),
            "depth_mm": number(summary.get("depth_mm")),
            "reachable": "" if not summary else ("yes" if summary["reachable"] else "no"),
            "roi": summary.get("roi", ""),
            "distance_from_mean_mm": number(result.get("distance_from_mean_mm")),
            "outlier": "yes" if result.get("outlier") else ("no" if summary else ""),
            "space": summary.get("space", ""),
            "folder": result["folder"] if summary else "",
            "manifest_row": str(result["index"]),
        }
        for key in ("cortical", "scalp", "cortical_mni"):
            values = summary.get(key) or [None, None, None]
            for axis, value in zip("xyz", values, strict=True):
                cells[f"{key}_{axis}"] = number(value)
        lines.append("\t".join(cells[c].replace("\t", " ") for c in COHORT_COLUMNS))
    return "\n".join(lines) + "\n"


def _cohort_picture(results: list[dict], out_png: Path) -> Path | None:
    """All MNI targets on the embedded MNI head, outliers ringed in red."""
    import numpy as np

    from tmsplan.bundled import load_mni_brain_mask
    from tmsplan.head import surface_from_mask
    from tmsplan.headcache import load_head
    from tmsplan.outputs import write_bytes
    from tmsplan.render import group_plotter, set_view
    from tmsplan.render._vtk import png_bytes, pyvista
    from tmsplan.spaces import MNI_FRAME

    planned = [r for r in results if (r.get("summary") or {}).get("cortical_mni") is not None]
    if not planned:
        return None
    points = np.asarray([r["summary"]["cortical_mni"] for r in planned], dtype=np.float64)
    labels = [
        f"{r['subject']}:{r['target']}" + (" OUTLIER" if r["outlier"] else "") for r in planned
    ]
    head = load_head(None, frame=MNI_FRAME)
    brain = surface_from_mask(load_mni_brain_mask(1), frame=MNI_FRAME, target_faces=60000)
    plotter = group_plotter(points, labels, head.mesh, brain_mesh=brain)
    try:
        pv = pyvista()
        for i, result in enumerate(planned):
            if result["outlier"]:
                plotter.add_mesh(
                    pv.Sphere(radius=7.0, center=points[i]),
                    color=(0.9, 0.1, 0.1),
                    opacity=0.45,
                    name=f"outlier-{i}",
                )
        set_view(plotter, "top")
        image = np.asarray(plotter.screenshot(return_img=True))[..., :3].copy()
    finally:
        plotter.close()
    return write_bytes(out_png, png_bytes(image), overwrite=True)


def _cohort_html(results: list[dict], picture: Path | None, out: Path) -> str:
    import base64
    import html

    from tmsplan.plan import DISCLAIMER

    counts = {s: sum(r["status"] == s for r in results) for s in ("ok", "skipped", "failed")}
    rows_html = []
    for result in results:
        summary = result.get("summary") or {}
        mni = summary.get("cortical_mni")
        report = out / result["folder"] / "report.html"
        link = (
            f'<a href="{html.escape(result["folder"])}/report.html">report</a>'
            if summary and report.is_file()
            else ""
        )
        style = (
            ' class="failed"'
            if result["status"] == "failed"
            else ' class="outlier"'
            if result.get("outlier")
            else ""
        )
        cells = [
            result["subject"],
            result["target"],
            result["status"],
            "" if mni is None else ", ".join(f"{v:.1f}" for v in mni),
            "" if not summary else f"{summary['depth_mm']:.1f}",
            "" if not summary else ("yes" if summary["reachable"] else "NO"),
            ""
            if result.get("distance_from_mean_mm") is None
            else f"{result['distance_from_mean_mm']:.1f}",
            "OUTLIER" if result.get("outlier") else "",
            result.get("reason") or "",
        ]
        tds = "".join(f"<td>{html.escape(str(c))}</td>" for c in cells)
        rows_html.append(f"<tr{style}>{tds}<td>{link}</td></tr>")
    image = ""
    if picture is not None and picture.is_file():
        data = base64.b64encode(picture.read_bytes()).decode()
        image = (
            f'<img alt="all targets on the MNI152 head (top view)" '
            f'src="data:image/png;base64,{data}">'
        )
    header = "".join(
        f"<th>{h}</th>"
        for h in (
            "subject",
            "target",
            "status",
            "cortical MNI (mm)",
            "depth (mm)",
            "reachable",
            "from group mean (mm)",
            "outlier",
            "reason",
            "",
        )
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>tmsplan cohort</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 3px 8px; }}
tr.failed td {{ background: #fde2e2; }} tr.outlier td {{ background: #fff3c4; }}
img {{ max-width: 800px; display: block; margin: 1em 0; }}
</style></head><body>
<h1>tmsplan cohort</h1>
<p>{counts["ok"]} planned, {counts["skipped"]} unchanged (skipped), {counts["failed"]} failed.
Outlier: more than {OUTLIER_DISTANCE_MM:g} mm from the mean MNI target of the rows with the
same target name (groups of at least {OUTLIER_MIN_ROWS}).</p>
{image}
<table><tr>{header}</tr>
{"".join(rows_html)}
</table>
<p><em>{html.escape(DISCLAIMER)}</em></p>
</body></html>
"""


def _default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _tasks(rows: list[BatchRow], out: Path, force: bool, cache: bool) -> list[dict]:
    from tmsplan.headcache import cache_folder

    by_subject: dict[str, list[BatchRow]] = {}
    for row in rows:
        key = row.subject if row.subject and not row.error else f"#row{row.index}"
        by_subject.setdefault(key, []).append(row)
    return [
        {
            "rows": [asdict(r) for r in members],
            "out": str(out),
            "force": force,
            "cache": cache,
            "cache_dir": str(cache_folder()),
        }
        for members in by_subject.values()
    ]


def _check_out(out: Path, *, force: bool) -> None:
    from tmsplan.errors import OutputExistsError

    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"--out {out} exists and is a file; give a folder.")
    if out.is_dir() and any(out.iterdir()) and not (out / BATCH_MARKER).exists() and not force:
        raise OutputExistsError(
            f"--out {out} is not empty and was not written by 'tmsplan batch'; choose a new "
            "folder (or pass --force to add the batch's folders to it)."
        )


def _run_local(tasks: list[dict], jobs: int, on_result: Callable[[dict], None]) -> None:
    if jobs <= 1 or len(tasks) <= 1:
        for task in tasks:
            for result in plan_subject(task):
                on_result(result)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    context = multiprocessing.get_context("spawn")  # no fork of a process holding VTK/threads
    executor = ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=context)
    try:
        futures = [executor.submit(plan_subject, task) for task in tasks]
        for future in as_completed(futures):
            for result in future.result():
                on_result(result)
    except BaseException:
        executor.shutdown(wait=True, cancel_futures=True)
        raise
    executor.shutdown(wait=True)


def _run_dask(tasks: list[dict], address: str, on_result: Callable[[dict], None]) -> None:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise TmsplanError(
            "--scheduler needs Dask distributed: pip install 'tmsplan[cohort]' "
            "(or 'dask[distributed]')."
        ) from None
    try:
        client = Client(address, timeout="20s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise TmsplanError(
            f"cannot reach the Dask scheduler at {address} ({exc}); start it with "
            "'dask scheduler' and workers with 'dask worker ADDRESS'."
        ) from None
    try:
        keys = [f"tmsplan-batch-{i}-{os.getpid()}-{time.time_ns()}" for i in range(len(tasks))]
        futures = client.map(plan_subject, tasks, key=keys, pure=False, retries=0)
        try:
            for future in as_completed(futures, loop=client.loop):
                for result in future.result():
                    on_result(result)
        except BaseException:
            client.cancel(futures)
            raise
    finally:
        client.close()


def run_batch(
    rows: list[BatchRow],
    out: str | os.PathLike,
    *,
    jobs: int | None = None,
    scheduler: str | None = None,
    force: bool = False,
    cache: bool = True,
    report: bool = True,
    progress: Callable[[dict, int, int], None] | None = None,
) -> BatchResult:
    """Plan every row and write the cohort table, picture and page.

    Parameters
    ----------
    rows : list of BatchRow
        From :func:`read_manifest` or :func:`bids_rows`.
    out : str or os.PathLike
        Output folder (created); with ``scheduler`` it must be a path every
        Dask worker can reach (a shared file system).
    jobs : int, optional
        Worker processes on this machine (default: the number of cores); 1
        plans in this process. Ignored with ``scheduler``.
    scheduler : str, optional
        Address of a running Dask distributed scheduler (``tcp://HOST:PORT``).
    force : bool, keyword-only
        Plan every row again, even when its folder is up to date.
    cache : bool, keyword-only
        Use the head cache (False: ``--no-cache``).
    report : bool, keyword-only
        Draw ``cohort.png`` (rows' pictures are set per row in ``write_kwargs``).
    progress : callable, optional
        Called as ``progress(result, done, total)`` after each row.

    Returns
    -------
    BatchResult

    Raises
    ------
    OutputExistsError
        ``out`` is a file, or a non-empty folder not written by a batch (without ``force``).
    TmsplanError
        The Dask scheduler cannot be reached.
    """
    from tmsplan.outputs import write_text

    started = time.perf_counter()
    out = Path(out).resolve()
    _check_out(out, force=force)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / BATCH_MARKER, json.dumps({"rows": len(rows)}) + "\n", overwrite=True)
    tasks = _tasks(rows, out, force, cache)
    done: dict[int, dict] = {}

    def on_result(result: dict) -> None:
        done[result["index"]] = result
        if progress is not None:
            progress(result, len(done), len(rows))

    if scheduler:
        _run_dask(tasks, scheduler, on_result)
    else:
        _run_local(tasks, jobs or _default_jobs(), on_result)
    results = [done[row.index] for row in rows]
    _group_distances(results)
    table = write_text(out / "cohort.tsv", _table_text(results), overwrite=True)
    picture = None
    if report:
        picture = _cohort_picture(results, out / "cohort.png")
    html_path = write_text(out / "cohort.html", _cohort_html(results, picture, out), overwrite=True)
    return BatchResult(
        rows=results,
        out=out,
        table=table,
        html=html_path,
        picture=picture,
        seconds=round(time.perf_counter() - started, 3),
    )
