"""Plain tables of all targets: CSV (one row per target) and JSON.

Design notes: ``docs/exports.md``, section ``tmsplan.export.table``.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np

from tmsplan import __version__
from tmsplan.errors import FormatError
from tmsplan.export._common import (
    Documents,
    Marker,
    NavigatorFile,
    check_space,
    clean_text,
    file_text,
    float_text,
    json_document,
    json_text,
    parse_float,
    pose_from_file,
    record_targets,
)
from tmsplan.io.outputs import write_files
from tmsplan.spaces import SUBJECT_FRAME

__all__ = [
    "CSV_COLUMNS",
    "write_csv",
    "build_csv",
    "read_csv",
    "write_json",
    "build_json",
    "read_json",
]

_XYZ = ("x", "y", "z")


def _triple(prefix: str) -> list[str]:
    return [f"{prefix}_{a}" for a in _XYZ]


CSV_COLUMNS = (
    "name",
    "space",
    "reachable",
    "unreachable_reason",
    *_triple("cortical"),
    *_triple("scalp"),
    *_triple("centre"),
    *_triple("xaxis"),
    *_triple("yaxis"),
    *_triple("zaxis"),
    "depth_mm",
    "coil_skin_distance_mm",
    *_triple("handle"),
)
"""Columns of the CSV table, in order."""

_FORMULA = ("=", "+", "-", "@")
_AXES_NOTE = "columns of coil_matrix: x axis, y axis (handle), z axis (into the head), centre"


def _safe_cell(text: Any) -> str:
    out = clean_text("" if text is None else text)
    return "'" + out if out.startswith(_FORMULA) else out


def _unsafe_cell(text: str) -> str:
    return text[1:] if text.startswith("'") and text[1:2] in _FORMULA and text[1:2] else text


def _opt(value: Any) -> list[str]:
    if value is None:
        return ["", "", ""]
    return [float_text(v) for v in np.asarray(value, dtype=float).ravel()]


def _scalar(value: Any) -> str:
    return "" if value is None else float_text(value)


def write_csv(
    record: dict, path: str | Path, *, space: str = "RAS", overwrite: bool = False
) -> list[Path]:
    """Write every target of the record as one CSV row.

    Parameters
    ----------
    record : dict
    path : str or pathlib.Path
    space : {"RAS"}, keyword-only
    overwrite : bool, keyword-only

    Returns
    -------
    list of pathlib.Path
    """
    return write_files(build_csv(record, path, space=space), overwrite=overwrite)


def build_csv(record: dict, path: str | Path, *, space: str = "RAS") -> Documents:
    """The CSV table of :func:`write_csv`, in memory.

    Same arguments and checks as :func:`write_csv`, without ``overwrite``;
    returns each file's ``(path, text)``, main file first.
    """
    check_space("csv", space)
    targets = record_targets(record, "csv")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    frame = _safe_cell(record["space"])
    for target in targets:
        src = target.source
        pose = target.pose
        writer.writerow(
            [
                _safe_cell(target.name),
                frame,
                "true" if bool(src.get("reachable", True)) else "false",
                _safe_cell(src.get("unreachable_reason")),
                *_opt(target.cortical),
                *_opt(target.scalp),
                *_opt(pose[:3, 3]),
                *_opt(pose[:3, 0]),
                *_opt(pose[:3, 1]),
                *_opt(pose[:3, 2]),
                _scalar(src.get("depth_mm")),
                _scalar(src.get("coil_skin_distance_mm")),
                *_opt(src.get("handle_direction")),
            ]
        )
    return [(Path(path), buffer.getvalue())]


def _point(row: dict, prefix: str, where: str) -> np.ndarray | None:
    cells = [row.get(c) or "" for c in _triple(prefix)]
    if all(c == "" for c in cells):
        return None
    return np.array([parse_float(c, where=f"{where} {prefix}") for c in cells])


def _bool(text: str, where: str) -> bool:
    value = text.strip().lower()
    if value not in ("true", "false"):
        raise FormatError(f"{where}: reachable must be true or false, got {text!r}.")
    return value == "true"


def read_csv(path: str | Path) -> NavigatorFile:
    """Read a CSV table written by :func:`write_csv`.

    Returns
    -------
    NavigatorFile
        One marker per row (reachable or not); ``info`` holds ``reachable``,
        ``unreachable_reason``, ``depth_mm``, ``coil_skin_distance_mm``,
        ``handle_direction``. ``frame`` is the ``space`` column.

    Raises
    ------
    FormatError
        Missing columns or malformed numbers.
    PoseError
        Axes that are not a rotation (sheared, scaled, mirrored).
    """
    path = Path(path)
    source = str(path)
    text = file_text(path)
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise FormatError(f"{source}: columns {missing} are missing; not a tmsplan targets CSV.")
    markers, frames = [], []
    width = len(reader.fieldnames or [])
    for row in reader:
        number = reader.line_num
        if None in row or any(v is None for v in row.values()):
            which = "more" if None in row else "fewer"
            raise FormatError(
                f"{source}: line {number} has {which} cells than the {width} columns of the "
                "header; the table is cut or was edited by hand. Re-export it with tmsplan."
            )
        name = _unsafe_cell(row["name"])
        where = f"{source}: line {number} ({name!r})"
        frames.append(_unsafe_cell(row["space"]))
        centre = _point(row, "centre", where)
        axes = [_point(row, f"{a}axis", where) for a in _XYZ]
        pose = None
        if centre is not None and all(a is not None for a in axes):
            mat = np.eye(4)
            mat[:3, :3] = np.column_stack(axes)
            mat[:3, 3] = centre
            pose = pose_from_file(mat, name=where)
        info = {
            "reachable": _bool(row["reachable"], where),
            "unreachable_reason": _unsafe_cell(row["unreachable_reason"]) or None,
            "depth_mm": parse_float(row["depth_mm"], where=where) if row["depth_mm"] else None,
            "coil_skin_distance_mm": parse_float(row["coil_skin_distance_mm"], where=where)
            if row["coil_skin_distance_mm"]
            else None,
            "handle_direction": _point(row, "handle", where),
        }
        markers.append(
            Marker(
                name,
                pose=pose,
                cortical_mm=_point(row, "cortical", where),
                scalp_mm=_point(row, "scalp", where),
                info=info,
            )
        )
    if len(set(frames)) > 1:
        raise FormatError(f"{source}: rows are in different spaces {sorted(set(frames))}.")
    return NavigatorFile(
        format="csv",
        path=path,
        markers=tuple(markers),
        file_space="RAS",
        frame=frames[0] if frames else SUBJECT_FRAME,
    )


def _list(value: Any) -> list | None:
    return None if value is None else np.asarray(value, dtype=float).tolist()


def write_json(
    record: dict, path: str | Path, *, space: str = "RAS", overwrite: bool = False
) -> list[Path]:
    """Write every target of the record as a plain JSON document.

    The document: ``format`` ("tmsplan-targets"), ``format_version``,
    ``tmsplan_version``, ``space``, ``units``, ``coil_axes``, ``t1`` (path,
    sha256) and ``targets`` (name, reachable, unreachable_reason,
    cortical_mm, scalp_mm, coil_matrix, coil_centre_mm, coil_x_axis,
    coil_y_axis_handle, coil_z_axis_into_head, depth_mm,
    coil_skin_distance_mm, handle_direction).

    Parameters
    ----------
    record : dict
    path : str or pathlib.Path
    space : {"RAS"}, keyword-only
    overwrite : bool, keyword-only

    Returns
    -------
    list of pathlib.Path
    """
    return write_files(build_json(record, path, space=space), overwrite=overwrite)


def build_json(record: dict, path: str | Path, *, space: str = "RAS") -> Documents:
    """The JSON document of :func:`write_json`, in memory.

    Same arguments and checks as :func:`write_json`, without ``overwrite``;
    returns each file's ``(path, text)``, main file first.
    """
    check_space("json", space)
    targets = record_targets(record, "json")
    t1 = record.get("t1") or {}
    rows = []
    for target in targets:
        src, pose = target.source, target.pose
        rows.append(
            {
                "name": target.name,
                "reachable": bool(src.get("reachable", True)),
                "unreachable_reason": src.get("unreachable_reason"),
                "cortical_mm": _list(target.cortical),
                "scalp_mm": _list(target.scalp),
                "coil_matrix": pose.tolist(),
                "coil_centre_mm": pose[:3, 3].tolist(),
                "coil_x_axis": pose[:3, 0].tolist(),
                "coil_y_axis_handle": pose[:3, 1].tolist(),
                "coil_z_axis_into_head": pose[:3, 2].tolist(),
                "depth_mm": src.get("depth_mm"),
                "coil_skin_distance_mm": src.get("coil_skin_distance_mm"),
                "handle_direction": _list(src.get("handle_direction")),
            }
        )
    doc = {
        "format": "tmsplan-targets",
        "format_version": 1,
        "tmsplan_version": __version__,
        "space": record["space"],
        "units": "mm, RAS+",
        "coil_axes": _AXES_NOTE,
        "t1": {"path": t1.get("path"), "sha256": t1.get("sha256")},
        "targets": rows,
    }
    text = json_text(doc, "json")
    return [(Path(path), text)]


def _json_point(value: Any, where: str) -> np.ndarray | None:
    if value is None:
        return None
    arr = None
    if isinstance(value, list) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
    ):
        arr = np.asarray(value, dtype=float)
    if arr is None or arr.shape != (3,) or not np.all(np.isfinite(arr)):
        raise FormatError(f"{where}: expected 3 finite numbers, got {value!r:.120}.")
    return arr


def _json_number(item: dict, key: str, where: str) -> float | None:
    value = item.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FormatError(f"{where}: {key} must be a number or null, got {value!r:.60}.")
    return parse_float(value, where=f"{where} {key}")


def read_json(path: str | Path) -> NavigatorFile:
    """Read a JSON table written by :func:`write_json`.

    Returns
    -------
    NavigatorFile
        One marker per target, pose from ``coil_matrix``; ``frame`` is the
        document's ``space``.

    Raises
    ------
    FormatError
        Not a tmsplan targets JSON, or malformed values.
    PoseError
        A coil matrix that is not rigid.
    """
    path = Path(path)
    source = str(path)
    doc = json_document(path)
    if not isinstance(doc, dict) or doc.get("format") != "tmsplan-targets":
        raise FormatError(f"{source}: not a tmsplan targets JSON (format != 'tmsplan-targets').")
    items = doc.get("targets")
    if items is None:
        items = []
    if not isinstance(items, list):
        raise FormatError(
            f"{source}: 'targets' is {type(items).__name__}, expected a list of target objects."
        )
    markers = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise FormatError(
                f"{source}: target #{i} is {type(item).__name__} {item!r:.60}, expected a JSON "
                "object with a name and a coil_matrix."
            )
        name = str(item.get("name", ""))
        where = f"{source}: target #{i} ({name!r})"
        rows = item.get("coil_matrix")
        if not (
            isinstance(rows, list)
            and len(rows) == 4
            and all(isinstance(row, list) and len(row) == 4 for row in rows)
        ):
            raise FormatError(
                f"{where}: coil_matrix must be a list of 4 rows of 4 numbers, got {rows!r:.120}."
            )
        mat = np.array([[parse_float(v, where=f"{where} coil_matrix") for v in r] for r in rows])
        reachable = item.get("reachable", True)
        if not isinstance(reachable, bool):
            raise FormatError(f"{where}: reachable must be true or false, got {reachable!r:.60}.")
        reason = item.get("unreachable_reason")
        info = {
            "reachable": reachable,
            "unreachable_reason": None if reason is None else str(reason),
            "depth_mm": _json_number(item, "depth_mm", where),
            "coil_skin_distance_mm": _json_number(item, "coil_skin_distance_mm", where),
            "handle_direction": _json_point(item.get("handle_direction"), where),
        }
        markers.append(
            Marker(
                name,
                pose=pose_from_file(mat, name=where),
                cortical_mm=_json_point(item.get("cortical_mm"), where),
                scalp_mm=_json_point(item.get("scalp_mm"), where),
                info=info,
            )
        )
    return NavigatorFile(
        format="json",
        path=path,
        markers=tuple(markers),
        file_space="RAS",
        frame=str(doc.get("space") or SUBJECT_FRAME),
        meta={"t1": doc.get("t1"), "tmsplan_version": doc.get("tmsplan_version")},
    )
