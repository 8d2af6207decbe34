"""BIDS-TMS style ``*_markers.tsv`` + ``*_coordsystem.json``.

Design notes: ``docs/exports.md``, section ``tmsplan.export.bids``.
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

__all__ = ["MARKER_COLUMNS", "coordsystem_path", "write_bids", "build_bids", "read_bids"]

_XYZ = ("x", "y", "z")
MARKER_COLUMNS = (
    "MarkerID",
    "MarkerName",
    *(f"{p}_{a}" for p in ("target", "entry", "coil", "normal", "direction") for a in _XYZ),
    "Matrix_4x4",
    "depth_mm",
    "coil_skin_distance_mm",
)
"""Columns of ``*_markers.tsv``, in order."""

_NA = "n/a"


def coordsystem_path(markers_path: str | Path) -> Path:
    """The ``*_coordsystem.json`` beside a ``*_markers.tsv``."""
    markers_path = Path(markers_path)
    stem = markers_path.name
    if stem.endswith("_markers.tsv"):
        stem = stem[: -len("_markers.tsv")]
    elif stem.endswith(".tsv"):
        stem = stem[: -len(".tsv")]
    return markers_path.with_name(f"{stem}_coordsystem.json")


def _cells(values: Any) -> list[str]:
    if values is None:
        return [_NA] * 3
    return [float_text(v) for v in np.asarray(values, dtype=float).ravel()]


def write_bids(
    record: dict, path: str | Path, *, space: str = "RAS", overwrite: bool = False
) -> list[Path]:
    """Write ``*_markers.tsv`` and its ``*_coordsystem.json``.

    Parameters
    ----------
    record : dict
    path : str or pathlib.Path
        The markers file (``sub-<label>_markers.tsv``); the coordsystem file is
        written beside it (:func:`coordsystem_path`).
    space : {"RAS"}, keyword-only
    overwrite : bool, keyword-only

    Returns
    -------
    list of pathlib.Path
        ``[markers.tsv, coordsystem.json]``.
    """
    return write_files(build_bids(record, path, space=space), overwrite=overwrite)


def build_bids(record: dict, path: str | Path, *, space: str = "RAS") -> Documents:
    """The markers TSV and coordsystem JSON of :func:`write_bids`, in memory.

    Same arguments and checks as :func:`write_bids`, without ``overwrite``;
    returns each file's ``(path, text)``, main file first.
    """
    check_space("bids", space)
    targets = record_targets(record, "bids")
    path = Path(path)
    side = coordsystem_path(path)
    lines = ["\t".join(MARKER_COLUMNS)]
    for i, target in enumerate(targets):
        pose, src = target.pose, target.source
        name = clean_text(target.name) or _NA
        cells = [
            str(i + 1),
            name,
            *_cells(target.cortical),
            *_cells(target.scalp),
            *_cells(pose[:3, 3]),
            *_cells(pose[:3, 2]),
            *_cells(pose[:3, 1]),
            ",".join(float_text(v) for v in pose.ravel()),
            _NA if src.get("depth_mm") is None else float_text(src["depth_mm"]),
            _NA
            if src.get("coil_skin_distance_mm") is None
            else float_text(src["coil_skin_distance_mm"]),
        ]
        lines.append("\t".join(cells))
    t1 = record.get("t1") or {}
    coordsystem = {
        "IntendedFor": t1.get("path"),
        "TMSCoordinateSystem": record["space"],
        "TMSCoordinateUnits": "mm",
        "TMSCoordinateSystemDescription": (
            f"RAS+ world millimetres of the image the plan used ({record['space']}; its sform, "
            "else qform). Coil axes (Matrix_4x4 columns): x, y = handle (direction), "
            "z = into the head (normal), centre (coil)."
        ),
        "GeneratedBy": [{"Name": "tmsplan", "Version": __version__}],
    }
    if t1.get("sha256"):
        coordsystem["IntendedForSHA256"] = t1["sha256"]
    text = json_text(coordsystem, "bids")
    # TSV has no quoting: names were cleaned of tabs and line breaks above
    return [(path, "\n".join(lines) + "\n"), (side, text)]


def _triple(row: dict, prefix: str, where: str) -> np.ndarray | None:
    cells = [row.get(f"{prefix}_{a}", _NA) for a in _XYZ]
    if all(c in (_NA, "", None) for c in cells):
        return None
    return np.array([parse_float(c, where=f"{where} {prefix}") for c in cells])


def read_bids(path: str | Path) -> NavigatorFile:
    """Read a ``*_markers.tsv`` (and its ``*_coordsystem.json`` when present).

    The pose comes from ``Matrix_4x4``; without it, from ``coil``, ``normal``
    and ``direction`` (x = direction cross normal).

    Returns
    -------
    NavigatorFile
        ``frame`` is ``TMSCoordinateSystem`` from the coordsystem file
        (``"T1w"`` without one).

    Raises
    ------
    FormatError
        Missing columns, rows cut short, malformed numbers, or a coordsystem
        file that cannot be read or is not a JSON object in mm.
    PoseError
        A matrix that is not rigid.
    """
    path = Path(path)
    source = str(path)
    text = file_text(path)
    reader = csv.DictReader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE)
    if not reader.fieldnames or "MarkerID" not in reader.fieldnames:
        raise FormatError(f"{source}: no MarkerID column; not a *_markers.tsv file.")
    markers = []
    width = len(reader.fieldnames)
    for row in reader:
        number = reader.line_num
        if None in row or any(v is None for v in row.values()):
            which = "more" if None in row else "fewer"
            raise FormatError(
                f"{source}: line {number} has {which} cells than the {width} columns of the "
                "header; the table is cut or was edited by hand. Re-export it."
            )
        name = row.get("MarkerName") or row["MarkerID"]
        name = "" if name == _NA else name
        where = f"{source}: line {number} ({name!r})"
        pose = None
        matrix = row.get("Matrix_4x4")
        if matrix not in (None, "", _NA):
            values = [parse_float(v, where=f"{where} Matrix_4x4") for v in matrix.split(",")]
            if len(values) != 16:
                raise FormatError(f"{where}: Matrix_4x4 needs 16 numbers, got {len(values)}.")
            pose = pose_from_file(np.reshape(values, (4, 4)), name=where)
        else:
            centre = _triple(row, "coil", where)
            normal = _triple(row, "normal", where)
            handle = _triple(row, "direction", where)
            if centre is not None and normal is not None and handle is not None:
                mat = np.eye(4)
                mat[:3, :3] = np.column_stack([np.cross(handle, normal), handle, normal])
                mat[:3, 3] = centre
                pose = pose_from_file(mat, name=where)
        info = {"marker_id": row["MarkerID"]}
        for key in ("depth_mm", "coil_skin_distance_mm"):
            value = row.get(key)
            info[key] = None if value in (None, "", _NA) else parse_float(value, where=where)
        markers.append(
            Marker(
                name,
                pose=pose,
                cortical_mm=_triple(row, "target", where),
                scalp_mm=_triple(row, "entry", where),
                info=info,
            )
        )
    meta: dict = {}
    frame = SUBJECT_FRAME
    side = coordsystem_path(path)
    if side.exists():
        meta = json_document(side)
        if not isinstance(meta, dict):
            raise FormatError(
                f"{side}: holds a JSON {type(meta).__name__}, expected an object with "
                "TMSCoordinateSystem and TMSCoordinateUnits; not a BIDS *_coordsystem.json."
            )
        units = meta.get("TMSCoordinateUnits", "mm")
        if units != "mm":
            raise FormatError(f"{side}: TMSCoordinateUnits {units!r}; tmsplan reads mm.")
        frame = str(meta.get("TMSCoordinateSystem") or SUBJECT_FRAME)
    return NavigatorFile(
        format="bids", path=path, markers=tuple(markers), file_space="RAS", frame=frame, meta=meta
    )
