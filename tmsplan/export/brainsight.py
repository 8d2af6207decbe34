"""Brainsight (Rogue Research): tab-separated targets text.

Design notes: ``docs/exports.md``, section ``tmsplan.export.brainsight``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from tmsplan import __version__
from tmsplan.errors import FormatError, RecordError
from tmsplan.export._common import (
    Documents,
    ExportWarning,
    Marker,
    NavigatorFile,
    check_space,
    clean_text,
    default_frame,
    file_text,
    parse_float,
    pose_from_file,
    record_targets,
)
from tmsplan.io.outputs import write_files

__all__ = [
    "BRAINSIGHT_FROM_CANONICAL",
    "NIFTI_XFORM_NAMES",
    "brainsight_coordinate_system",
    "write_brainsight",
    "build_brainsight",
    "read_brainsight",
]

# Coil-axis relabelling, on the right (its own inverse): x -> -x, y -> y, z -> -z.
BRAINSIGHT_FROM_CANONICAL = np.diag([-1.0, 1.0, -1.0, 1.0])

NIFTI_XFORM_NAMES = {
    1: "Scanner",  # NIFTI_XFORM_SCANNER_ANAT
    2: "Aligned",  # NIFTI_XFORM_ALIGNED_ANAT
    3: "Talairach",  # NIFTI_XFORM_TALAIRACH
    4: "MNI-152",  # NIFTI_XFORM_MNI_152
    5: "Other-Template",  # NIFTI_XFORM_TEMPLATE_OTHER
}
"""Brainsight's name for each NIfTI qform/sform code."""

_LOC = ("Loc. X", "Loc. Y", "Loc. Z")
_ROT = tuple(f"m{c}n{r}" for c in range(3) for r in range(3))
_NULL = "(null)"
_NOTES = (
    "Each column is delimited by a tab. Each value within a column is delimited by a semicolon."
)


def _matrix_or_none(value: object) -> np.ndarray | None:
    """A finite (4, 4) matrix from a T1 description field, or None when it is not one."""
    if value is None:
        return None
    try:
        mat = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return None
    return mat if mat.shape == (4, 4) and np.all(np.isfinite(mat)) else None


def brainsight_coordinate_system(t1: dict, *, version: int = 14) -> str:
    """The ``# Coordinate system:`` value for a T1 description.

    Parameters
    ----------
    t1 : dict
        ``record["t1"]`` (:func:`tmsplan.io.record.t1_description`): uses
        ``sform_code``, ``qform_code``, ``sform``, ``qform``.
    version : {12, 13, 14}, keyword-only
        Brainsight file version; 14 names the header field (``Q``/``S``).

    Returns
    -------
    str
        E.g. ``"NIfTI:Q:Aligned"`` (v14) or ``"NIfTI:Aligned"`` (v12/13).

    Warns
    -----
    ExportWarning
        qform and sform codes are both set and the matrices differ, or cannot
        be compared (``t1`` lacks them): the sform is named.

    Raises
    ------
    RecordError
        No usable qform/sform code (0 or unknown) or missing header fields.
    """
    if version not in (12, 13, 14):
        raise FormatError(f"Brainsight file version must be 12, 13 or 14, got {version!r}.")
    try:
        s_code, q_code = int(t1["sform_code"]), int(t1["qform_code"])
    except (KeyError, TypeError, ValueError):
        raise RecordError(
            "record['t1'] lacks sform_code/qform_code; rebuild it with "
            "tmsplan.io.record.t1_description."
        ) from None
    s_ok, q_ok = s_code in NIFTI_XFORM_NAMES, q_code in NIFTI_XFORM_NAMES
    if not (s_ok or q_ok):
        raise RecordError(
            f"the T1 has sform_code {s_code} and qform_code {q_code}: no NIfTI coordinate system "
            "Brainsight can use. Set a qform/sform (e.g. scanner, code 1) in the T1 header, "
            "re-plan, and load that image in Brainsight."
        )
    if s_ok and q_ok:
        sform, qform = _matrix_or_none(t1.get("sform")), _matrix_or_none(t1.get("qform"))
        if sform is not None and qform is not None and np.allclose(sform, qform, atol=1e-4):
            form, code = "Q", q_code
        else:
            form, code = "S", s_code
            why = (
                "differ"
                if sform is not None and qform is not None
                else "cannot be compared (the plan record lacks the T1's 4x4 sform/qform)"
            )
            warnings.warn(
                f"the T1's qform and sform {why}; the Brainsight file uses the sform "
                f"(NIfTI:S:{NIFTI_XFORM_NAMES[s_code]}), which is tmsplan's world for this "
                "image. In Brainsight, make sure the project uses the sform coordinate system.",
                ExportWarning,
                stacklevel=3,
            )
    elif s_ok:
        form, code = "S", s_code
    else:
        form, code = "Q", q_code
    name = NIFTI_XFORM_NAMES[code]
    return f"NIfTI:{form}:{name}" if version >= 14 else f"NIfTI:{name}"


def _header(coordinate_system: str, version: int) -> list[str]:
    return [
        f"# Version: {version}",
        f"# Coordinate system: {coordinate_system}",
        f"# Created by: tmsplan {__version__}",
        "# Units: millimetres, degrees, milliseconds, and microvolts",
        "# Encoding: UTF-8",
        f"# Notes: {_NOTES}",
        "# " + "\t".join(("Target Name", *_LOC, *_ROT)),
    ]


def _cell_name(name: str, index: int) -> str:
    # a tab or newline would break the table, a semicolon splits a value, and a
    # leading '#' would turn the row into a header line
    text = clean_text(name, replace=";").lstrip("# ")
    return text or f"target {index + 1}"


def write_brainsight(
    record: dict,
    path: str | Path,
    *,
    space: str = "RAS",
    version: int = 14,
    overwrite: bool = False,
) -> list[Path]:
    """Write the reachable targets as a Brainsight targets text file.

    Parameters
    ----------
    record : dict
        Plan record; ``record["t1"]`` chooses the coordinate-system line.
    path : str or pathlib.Path
    space : {"RAS"}, keyword-only
        Brainsight NIfTI coordinates are RAS+.
    version : {14, 13, 12}, keyword-only
        File version (14: Brainsight >= 2.5.3).
    overwrite : bool, keyword-only

    Returns
    -------
    list of pathlib.Path
    """
    docs = build_brainsight(record, path, space=space, version=version)
    return write_files(docs, overwrite=overwrite)


def build_brainsight(
    record: dict, path: str | Path, *, space: str = "RAS", version: int = 14
) -> Documents:
    """The targets text of :func:`write_brainsight`, in memory.

    Same arguments and checks as :func:`write_brainsight`, without ``overwrite``;
    returns each file's ``(path, text)``, main file first.
    """
    check_space("brainsight", space)
    targets = record_targets(record, "brainsight")
    if not isinstance(record.get("t1"), dict):
        raise RecordError("record['t1'] is missing; Brainsight needs the T1's qform/sform codes.")
    coordinate_system = brainsight_coordinate_system(record["t1"], version=version)
    lines = _header(coordinate_system, version)
    for i, target in enumerate(targets):
        mat = target.pose @ BRAINSIGHT_FROM_CANONICAL
        values = [*mat[:3, 3], *mat[:3, :3].T.ravel()]  # loc, then columns (mCnR)
        lines.append("\t".join([_cell_name(target.name, i), *(f"{v:.8f}" for v in values)]))
    return [(Path(path), "\n".join(lines) + "\n")]


def _split_tables(lines: list[str], source: str) -> tuple[dict, list[tuple[list[str], list]]]:
    header: dict[str, str] = {}
    tables: list[tuple[list[str], list]] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            continue
        if line.startswith("#"):
            body = line[1:].strip()
            if "\t" in body:
                tables.append(([c.strip() for c in body.split("\t")], []))
            elif not tables and ":" in body:
                key, value = body.split(":", 1)
                header[key.strip().lower()] = value.strip()
            continue
        if not tables:
            raise FormatError(
                f"{source}: line {number} holds data before any '# ... Name' table header; "
                "not a Brainsight export."
            )
        tables[-1][1].append((number, line.split("\t")))
    return header, tables


def _value(text: str | None) -> str | None:
    if text is None:
        return None
    text = text.strip()
    return None if text in ("", _NULL) else text


def read_brainsight(path: str | Path, *, frame: str | None = None) -> NavigatorFile:
    """Read a Brainsight text export: Targets and (optional) Samples.

    Parameters
    ----------
    path : str or pathlib.Path
    frame : str, optional
        World frame name of the markers (default ``"T1w"``).

    Returns
    -------
    NavigatorFile
        Markers of kind ``"target"`` and ``"sample"`` with canonical poses
        (``None`` where a value is ``(null)``); other tables (landmarks,
        electrodes, sessions) in ``meta["tables"]``. A header-only file gives
        no markers.

    Raises
    ------
    FormatError
        Not a Brainsight export, a coordinate system that is not NIfTI, or a
        target/sample table lacking columns or with rows cut short.
    PoseError
        A sheared, scaled or mirrored rotation.
    """
    path = Path(path)
    source = str(path)
    lines = file_text(path).splitlines()
    header, tables = _split_tables(lines, source)
    if "version" not in header and not tables:
        raise FormatError(
            f"{source}: no '# Version:' header and no table; not a Brainsight export."
        )
    system = header.get("coordinate system", "")
    parts = system.split(":")
    if parts[0].lower() != "nifti":
        raise FormatError(
            f"{source}: coordinate system {system!r} is not a NIfTI coordinate system; "
            "re-export from Brainsight choosing NIfTI:Aligned/Scanner (the T1's qform/sform)."
        )
    meta: dict = {
        "version": header.get("version"),
        "coordinate_system": system,
        "created_by": header.get("created by"),
        "nifti_form": {"Q": "qform", "S": "sform"}.get(parts[1].upper())
        if len(parts) == 3
        else None,
        "nifti_name": parts[-1] if len(parts) > 1 else None,
        "tables": {},
    }
    markers: list[Marker] = []
    for columns, rows in tables:
        kind = {"Target Name": "target", "Sample Name": "sample"}.get(columns[0])
        if kind is None:
            meta["tables"][columns[0]] = [
                {c: _value(v) for c, v in zip(columns, cells, strict=False)} for _, cells in rows
            ]
            continue
        missing = [c for c in (*_LOC, *_ROT) if c not in columns]
        if missing:
            raise FormatError(
                f"{source}: the '{columns[0]}' table lacks columns {missing}; the file is cut "
                "or not a Brainsight export."
            )
        for number, cells in rows:
            if len(cells) != len(columns):
                raise FormatError(
                    f"{source}: line {number} has {len(cells)} cells, its table header "
                    f"{len(columns)}; the file is cut or was edited by hand."
                )
            row = {c: _value(v) for c, v in zip(columns, cells, strict=False)}
            name = cells[0] if cells else ""
            where = f"{source}: line {number} ({kind} {name!r})"
            values = [row.get(c) for c in (*_LOC, *_ROT)]
            pose = None
            if all(v is not None for v in values):
                nums = [parse_float(v, where=where) for v in values]
                mat = np.eye(4)
                mat[:3, 3] = nums[:3]
                mat[:3, :3] = np.array(nums[3:]).reshape(3, 3).T  # rows of mCnR are columns
                pose = pose_from_file(mat @ BRAINSIGHT_FROM_CANONICAL, name=where)
            info = {c: v for c, v in row.items() if c not in (columns[0], *_LOC, *_ROT)}
            markers.append(Marker(name, pose=pose, kind=kind, info=info))
    return NavigatorFile(
        format="brainsight",
        path=path,
        markers=tuple(markers),
        file_space="RAS",
        frame=default_frame(frame),
        meta=meta,
    )
