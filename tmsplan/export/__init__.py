"""Neuronavigation exports: one module per file format, and this registry.

Every format has a writer and a reader over the canonical coil pose (SimNIBS
``matsimnibs``: columns x, y = handle, z = into the head, centre; RAS+ mm in the
world of the T1 the navigator loads). Vendor frames exist only inside their
module.

- ``localite``: ``InstrumentMarker<stamp>.xml`` (coil poses; RAS or LPS);
- ``localite-entrytarget``: ``EntryTarget<stamp>.xml`` (entry + target; RAS or LPS);
- ``brainsight``: ``brainsight_targets.txt`` (RAS, NIfTI coordinates);
- ``visor2``: ``visor2_targets.mrk`` (RAS, with the T1 qform fingerprint);
- ``slicer``: ``slicer_targets.mrk.json`` (RAS or LPS);
- ``navinibs``: ``navinibs_targets.json`` (RAS; NaviNIBS ``mergeFromFile`` targets);
- ``bids``: ``sub-<label>_markers.tsv`` + ``sub-<label>_coordsystem.json`` (RAS);
- ``csv``: ``targets_table.csv`` and ``json``: ``targets_table.json`` (RAS, all targets).

Unreachable targets are left out of the navigator formats (an operator must not
be offered a coil pose tmsplan could not place); they stay in the CSV and JSON
tables with ``reachable = false`` and the reason. Leaving one out emits an
:class:`ExportWarning`; a navigator format with no reachable target at all
raises :class:`~tmsplan.errors.UnreachableTargetError`.

Writers never write half a file (temporary file + rename), refuse an existing
file unless ``overwrite=True``, and check every pose is rigid before anything
is written. Readers refuse sheared or mirrored rotations; they accept the
rounding of vendor files (``|R^T R - I| <= 5e-3``) and return the nearest exact
rotation.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from tmsplan.errors import (
    FormatError,
    RecordError,
    SpaceError,
    TmsplanWarning,
    UnreachableTargetError,
)
from tmsplan.outputs import check_writable, write_text
from tmsplan.record_checks import validate_record
from tmsplan.spaces import LPS_FROM_RAS, SUBJECT_FRAME, CoilPoses, as_points_array, check_rigid

__all__ = [
    "FORMATS",
    "FormatSpec",
    "ExportWarning",
    "Marker",
    "NavigatorFile",
    "READ_ATOL",
    "export_record",
    "export_all",
    "default_filenames",
    "read_export",
]

READ_ATOL = 5e-3
"""Tolerance on ``|R^T R - I|`` when reading: vendor files round to 3-4 decimals."""


class ExportWarning(TmsplanWarning):
    """Something about an export the user should know (a target left out, a header choice)."""


class _LeftOutWarning(ExportWarning):
    """Unreachable targets left out of a navigator file (merged into one by export_all)."""


@dataclass(frozen=True)
class FormatSpec:
    """One export format of the registry.

    Attributes
    ----------
    name : str
        Registry name, e.g. ``"localite"``.
    module : str
        Module in :mod:`tmsplan.export` holding the writer and reader.
    writer, reader : str
        Function names in that module.
    suffix : str
        How a file path given as ``out`` must end to be taken as a file.
    spaces : tuple of str
        World frame conventions the format can be written in (``"RAS"``, ``"LPS"``).
    navigator : bool
        True when the format carries coil poses for an operator (unreachable
        targets are left out); False for the full tables.
    description : str
        One line for ``--help`` and the docs.
    """

    name: str
    module: str
    writer: str
    reader: str
    suffix: str
    spaces: tuple[str, ...]
    navigator: bool
    description: str


def _spec(
    name: str,
    suffix: str,
    spaces: tuple[str, ...],
    description: str,
    *,
    module: str | None = None,
    navigator: bool = True,
) -> FormatSpec:
    module = module or name
    stem = name.replace("-", "_")
    reader = "read_localite" if module == "localite" else f"read_{stem}"
    return FormatSpec(name, module, f"write_{stem}", reader, suffix, spaces, navigator, description)


_BOTH = ("RAS", "LPS")
FORMATS: dict[str, FormatSpec] = {
    spec.name: spec
    for spec in (
        _spec("localite", ".xml", _BOTH, "Localite InstrumentMarker XML (coil poses)"),
        _spec(
            "localite-entrytarget",
            ".xml",
            _BOTH,
            "Localite EntryTarget XML (scalp entry + cortical target, no orientation)",
            module="localite",
        ),
        _spec("brainsight", ".txt", ("RAS",), "Brainsight targets text (NIfTI coordinates)"),
        _spec("visor2", ".mrk", ("RAS",), "ANT visor2 .mrk JSON with the T1 qform fingerprint"),
        _spec(
            "slicer", ".mrk.json", _BOTH, "3D Slicer markups JSON (one fiducial list per target)"
        ),
        _spec(
            "navinibs",
            ".json",
            ("RAS",),
            "NaviNIBS targets JSON (Session.mergeFromFile, sections=['targets'])",
        ),
        _spec(
            "bids", "_markers.tsv", ("RAS",), "BIDS-TMS style *_markers.tsv + *_coordsystem.json"
        ),
        _spec("csv", ".csv", ("RAS",), "CSV table of all targets", module="table", navigator=False),
        _spec(
            "json", ".json", ("RAS",), "JSON list of all targets", module="table", navigator=False
        ),
    )
}
"""Registry of export formats, by name."""


# ---------------------------------------------------------------------------
# what readers return


@dataclass(frozen=True)
class Marker:
    """One entry of a navigator file, converted to tmsplan's conventions.

    Attributes
    ----------
    name : str
    pose : (4, 4) float64 or None
        Canonical coil pose (columns x, y = handle, z = into the head, centre),
        RAS+ mm. None when the entry has no orientation or no position.
    cortical_mm, scalp_mm : (3,) float64 or None
        Cortical target and scalp entry, RAS+ mm, when the file holds them.
    kind : str
        ``"target"``, ``"sample"`` (Brainsight), ``"pulse"`` (Localite
        TriggerMarkers), ``"entry-target"`` (Localite EntryTarget) or ``"point"``
        (a Slicer control point not written by tmsplan).
    info : dict
        Format-specific extras (colour, session, reachable flag, ...).
    """

    name: str
    pose: np.ndarray | None = None
    cortical_mm: np.ndarray | None = None
    scalp_mm: np.ndarray | None = None
    kind: str = "target"
    info: dict = field(default_factory=dict)


@dataclass(frozen=True)
class NavigatorFile:
    """The content of one navigator file.

    Attributes
    ----------
    format : str
        Registry name of the format read.
    path : pathlib.Path
    markers : tuple of Marker
    file_space : str
        ``"RAS"`` or ``"LPS"``: how the file stored coordinates (the markers
        are always returned in RAS).
    frame : str
        World frame of the markers (from the file when it names one, else the
        ``frame`` the reader was given, by default ``"T1w"``).
    meta : dict
        Header information (version, coordinate system, image fingerprint, ...).
    """

    format: str
    path: Path
    markers: tuple[Marker, ...]
    file_space: str
    frame: str
    meta: dict = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        """Marker names, in file order."""
        return [m.name for m in self.markers]

    def poses(self, kind: str | None = None) -> CoilPoses:
        """Canonical poses of the markers that have one, ``(n, 4, 4)`` in :attr:`frame`.

        Parameters
        ----------
        kind : str, optional
            Only markers of this kind (e.g. ``"target"`` or ``"sample"``).
        """
        mats = [
            m.pose for m in self.markers if m.pose is not None and (kind is None or m.kind == kind)
        ]
        arr = np.stack(mats) if mats else np.zeros((0, 4, 4))
        return CoilPoses(arr, self.frame)


# ---------------------------------------------------------------------------
# helpers shared by the format modules


@dataclass(frozen=True)
class _Target:
    """A record target ready for export (checked, float64, RAS)."""

    name: str
    pose: np.ndarray
    cortical: np.ndarray | None
    scalp: np.ndarray | None
    source: dict


def _check_space(fmt: str, space: str) -> str:
    """Normalise ``space`` and check ``fmt`` can be written in it."""
    spec = FORMATS[fmt]
    value = str(space).upper()
    if value not in spec.spaces:
        raise SpaceError(
            f"space {space!r} is not available for the {fmt} format; it can be written in "
            f"{', '.join(spec.spaces)}. Pass space='RAS' (tmsplan's convention) or pick a "
            f"format that offers {value}."
        )
    return value


def _world(space: str) -> np.ndarray:
    """Matrix taking RAS world coordinates to ``space`` (its own inverse)."""
    return LPS_FROM_RAS if space == "LPS" else np.eye(4)


def _nearest_rotation(pose: np.ndarray) -> np.ndarray:
    """Replace the rotation of a checked near-rigid pose by the nearest exact rotation."""
    out = np.array(pose, dtype=np.float64)
    u, _, vt = np.linalg.svd(out[:3, :3])
    out[:3, :3] = u @ vt
    out[3] = (0.0, 0.0, 0.0, 1.0)
    return out


def _optional_point(value: Any, name: str) -> np.ndarray | None:
    if value is None:
        return None
    return as_points_array(value, name=name)[0]


def _record_targets(record: dict, fmt: str) -> list[_Target]:
    """Check the record and return the targets ``fmt`` exports.

    Every pose is checked for rigidity before anything is written. Navigator
    formats leave out unreachable targets with an :class:`ExportWarning`.

    Raises
    ------
    RecordError, PoseError, SpaceError
        Invalid or inconsistent record (:func:`tmsplan.record_checks.validate_record`),
        non-rigid pose, non-finite point.
    UnreachableTargetError
        A navigator format and no reachable target.
    """
    validate_record(record, source="plan record")
    spec = FORMATS[fmt]
    chosen, left_out = [], []
    for target in record["targets"]:
        name = str(target["name"])
        label = f"target {name!r}"
        pose = check_rigid(np.asarray(target["coil_matrix"], dtype=float), name=label)[0]
        cortical = _optional_point(target.get("cortical_mm"), f"{label} cortical_mm")
        scalp = _optional_point(target.get("scalp_mm"), f"{label} scalp_mm")
        reachable = bool(target.get("reachable", True))
        if spec.navigator and not reachable:
            left_out.append(f"{name!r} ({target.get('unreachable_reason') or 'unreachable'})")
            continue
        chosen.append(_Target(name, _nearest_rotation(pose), cortical, scalp, target))
    if spec.navigator and not chosen:
        raise UnreachableTargetError(
            f"no reachable target to write as {fmt}: {', '.join(left_out) or 'the plan is empty'}. "
            "Navigator files only carry poses the operator can use; see the csv/json tables."
        )
    if left_out:
        warnings.warn(
            f"the {fmt} file leaves out unreachable target(s) {', '.join(left_out)}; they are "
            "listed in the csv/json tables.",
            _LeftOutWarning,
            stacklevel=3,
        )
    return chosen


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _clean_text(text: Any, *, replace: str = "") -> str:
    """Replace control characters (tab, newline, ...) and those in ``replace`` by a space."""
    out = _CONTROL.sub(" ", str(text))
    for char in replace:
        out = out.replace(char, " ")
    return out.strip()


def _num(value: float) -> str:
    """Shortest text that reads back as the same float64."""
    return repr(float(value))


def _parse_float(text: Any, *, where: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise FormatError(f"{where}: expected a number, got {text!r}.") from None
    if not np.isfinite(value):
        raise FormatError(f"{where}: expected a finite number, got {text!r}.")
    return value


def _pose_from_file(matrix: Any, *, name: str) -> np.ndarray:
    """Check a pose read from a file (tolerating vendor rounding) and make it exactly rigid.

    Raises
    ------
    PoseError
        Sheared, scaled, mirrored or non-finite rotation.
    """
    mat = check_rigid(np.asarray(matrix, dtype=float), name=name, atol=READ_ATOL)[0]
    return _nearest_rotation(mat)


def _read_text(path: Path) -> str:
    """The whole file as UTF-8 text.

    Raises
    ------
    FormatError
        The file cannot be read, or is not UTF-8.
    """
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FormatError(f"{path}: cannot read it as UTF-8 text ({exc}).") from None


def _read_json(path: Path) -> Any:
    """The file parsed as a UTF-8 JSON document.

    Raises
    ------
    FormatError
        The file cannot be read, is not UTF-8, or is not valid JSON.
    """
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"{path}: cannot read it as JSON ({exc}).") from None


def _dumps(doc: Any, fmt: str) -> str:
    """``doc`` as indented UTF-8 JSON text (newline-terminated), refusing NaN and infinity.

    Raises
    ------
    RecordError
        A number in ``doc`` is NaN or infinite (JSON has no such values).
    """
    try:
        return json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    except ValueError as exc:
        raise RecordError(
            f"the {fmt} file cannot hold a NaN or infinite number from the plan record ({exc}); "
            "check the record's numbers (re-run the plan)."
        ) from None


def _check_outputs(paths: Sequence[Path], *, overwrite: bool) -> None:
    for path in paths:
        check_writable(path, overwrite=overwrite)


_Documents = list[tuple[Path, str]]
"""What a format builder returns: (path, UTF-8 text) of each file, main file first."""


def _write_documents(documents: _Documents, *, overwrite: bool) -> list[Path]:
    """Write built documents, each atomically; all or none of the new files stay.

    Every path is checked before the first write. When a write fails, the
    files this call created are removed again (files it replaced under
    ``overwrite`` cannot be brought back).
    """
    paths = [Path(p) for p, _ in documents]
    _check_outputs(paths, overwrite=overwrite)
    created: list[Path] = []
    try:
        for path, text in documents:
            existed = Path(path).exists()
            write_text(path, text, overwrite=overwrite)
            if not existed:
                created.append(Path(path))
    except BaseException:
        for path in created:
            with contextlib.suppress(OSError):
                path.unlink()
        raise
    return paths


def _bids_label(subject: Any) -> str:
    label = re.sub(r"[^A-Za-z0-9]", "", str(subject or "").removeprefix("sub-"))
    return label or "01"


def _timestamp(when: datetime | None) -> str:
    when = when or datetime.now()
    return when.strftime("%Y%m%d%H%M%S") + f"{when.microsecond // 1000:03d}"


# ---------------------------------------------------------------------------
# the registry API


def _get_spec(fmt: str) -> FormatSpec:
    if fmt not in FORMATS:
        raise FormatError(
            f"unknown export format {fmt!r}; valid formats are: {', '.join(FORMATS)}."
        )
    return FORMATS[fmt]


def _function(spec: FormatSpec, which: str) -> Any:
    module = importlib.import_module(f"tmsplan.export.{spec.module}")
    if which == "builder":  # private: builds the files in memory, writes nothing
        return getattr(module, "_build_" + spec.writer.removeprefix("write_"))
    return getattr(module, getattr(spec, which))


def default_filenames(record: dict, *, when: datetime | None = None) -> dict[str, list[str]]:
    """File names each format writes into an output folder.

    Parameters
    ----------
    record : dict
        The plan record (its ``subject`` names the BIDS files).
    when : datetime, optional
        Time stamp of the Localite files (Localite names its own files
        ``InstrumentMarker<YYYYMMDDHHMMSSmmm>.xml``); default now.

    Returns
    -------
    dict
        Format name -> list of file names (the first is the main file).
    """
    stamp = _timestamp(when)
    label = _bids_label(record.get("subject"))
    return {
        "localite": [f"InstrumentMarker{stamp}.xml"],
        "localite-entrytarget": [f"EntryTarget{stamp}.xml"],
        "brainsight": ["brainsight_targets.txt"],
        "visor2": ["visor2_targets.mrk"],
        "slicer": ["slicer_targets.mrk.json"],
        "navinibs": ["navinibs_targets.json"],
        "bids": [f"sub-{label}_markers.tsv", f"sub-{label}_coordsystem.json"],
        "csv": ["targets_table.csv"],
        "json": ["targets_table.json"],
    }


_FILE_SUFFIXES = frozenset(
    {"." + spec.suffix.rsplit(".", 1)[-1] for spec in FORMATS.values()} | {".html", ".nii", ".gz"}
)
"""Name endings taken as a file name (not a folder) when they are not the format's."""


def _main_path(record: dict, fmt: str, out: str | Path, when: datetime) -> Path:
    """The main file ``fmt`` writes for ``out`` (a file path or a folder).

    Raises
    ------
    FormatError
        ``out`` names a file (an existing file, or a name ending like one of
        the export formats) that does not end with the format's suffix.
    """
    out = Path(out)
    spec = FORMATS[fmt]
    if out.is_dir():
        return out / default_filenames(record, when=when)[fmt][0]
    if out.name.lower().endswith(spec.suffix):
        return out
    ending = out.suffix.lower()
    if out.exists() or ending in _FILE_SUFFIXES:
        what = "is an existing file" if out.exists() else f"ends with {ending!r}"
        raise FormatError(
            f"output '{out}' {what}, but {fmt} files end with {spec.suffix!r}. Give a path "
            f"ending with {spec.suffix!r}, or a folder (the file is then named "
            f"{default_filenames(record, when=when)[fmt][0]!r})."
        )
    return out / default_filenames(record, when=when)[fmt][0]


def _without_candidates(record: dict) -> dict:
    """The record with only its chosen target(s), unless it asks to export candidates.

    A plan's ``targets`` hold the chosen target first (``"role": "chosen"``),
    then ranked alternatives (``"role": "candidate"``). Exports carry the chosen
    one only, unless ``record["parameters"]["export_candidates"]`` is true
    (``--export-candidates``). Targets without a role count as chosen.
    """
    if not isinstance(record, dict) or not isinstance(record.get("targets"), list):
        return record
    if (record.get("parameters") or {}).get("export_candidates"):
        return record
    kept = [t for t in record["targets"] if t.get("role", "chosen") != "candidate"]
    if len(kept) == len(record["targets"]):
        return record
    return {**record, "targets": kept}


def export_record(
    record: dict,
    fmt: str,
    out: str | Path,
    *,
    space: str = "RAS",
    overwrite: bool = False,
    when: datetime | None = None,
) -> list[Path]:
    """Write one navigator/table format from a plan record.

    Parameters
    ----------
    record : dict
        A checked plan record (``target.json``).
    fmt : str
        A name from :data:`FORMATS`.
    out : str or pathlib.Path
        A file path when it ends with the format's suffix (``.xml``, ``.txt``,
        ``.mrk``, ``.mrk.json``, ``_markers.tsv``, ``.csv``, ``.json``) and is
        not an existing folder; otherwise a folder, filled with
        :func:`default_filenames`. A path that names another kind of file
        (an existing file, or one ending in ``.json``, ``.txt``, ``.xml``,
        ``.csv``, ``.tsv``, ``.mrk``, ...) is refused.
    space : {"RAS", "LPS"}, keyword-only
        World convention of the file, for formats that offer a choice.
    overwrite : bool, keyword-only
        Replace existing files.
    when : datetime, optional, keyword-only
        Time stamp for Localite file names (default now).

    Returns
    -------
    list of pathlib.Path
        The files written (BIDS writes two).

    Raises
    ------
    FormatError
        Unknown format, or ``out`` names a file with another suffix.
    SpaceError
        ``space`` not offered by the format.
    PoseError, RecordError, UnreachableTargetError, OutputExistsError
        From the writer; nothing is written.
    """
    record = _without_candidates(record)
    spec = _get_spec(fmt)
    space = _check_space(fmt, space)
    path = _main_path(record, fmt, out, when or datetime.now())
    writer = _function(spec, "writer")
    return writer(record, path, space=space, overwrite=overwrite)


def export_all(
    record: dict,
    out_dir: str | Path,
    formats: Iterable[str] | None = None,
    *,
    space: str = "RAS",
    overwrite: bool = False,
    when: datetime | None = None,
) -> dict[str, list[str]]:
    """Write several formats into one folder.

    All or nothing: every file is built in memory first (so every check of
    every format runs: names, ``space``, poses, the T1 fields a format needs,
    existing files); only then are the files written.

    Parameters
    ----------
    record : dict
    out_dir : str or pathlib.Path
    formats : iterable of str, optional
        Default: every format that can be written in ``space``. When the record
        has no reachable target, navigator formats are skipped (with an
        :class:`ExportWarning`) unless named explicitly.
    space : {"RAS", "LPS"}, keyword-only
    overwrite : bool, keyword-only
    when : datetime, optional, keyword-only
        Time stamp of the Localite file names (default now).

    Returns
    -------
    dict
        Format name -> file names relative to ``out_dir`` (for ``record["outputs"]``).
    """
    record = _without_candidates(record)
    out_dir = Path(out_dir)
    explicit = formats is not None
    space_name = str(space).upper()
    if formats is None:
        names = [name for name, spec in FORMATS.items() if space_name in spec.spaces]
    else:
        names = list(dict.fromkeys(formats))
    for name in names:
        _get_spec(name)
        _check_space(name, space_name)
    validate_record(record, source="plan record")
    for target in record["targets"]:
        check_rigid(
            np.asarray(target["coil_matrix"], dtype=float), name=f"target {target['name']!r}"
        )
    reachable = any(bool(t.get("reachable", True)) for t in record["targets"])
    if not reachable and not explicit:
        skipped = [n for n in names if FORMATS[n].navigator]
        names = [n for n in names if not FORMATS[n].navigator]
        if skipped:
            warnings.warn(
                f"no reachable target: navigator formats {', '.join(skipped)} not written; "
                "the csv/json tables list the targets and why they are unreachable.",
                ExportWarning,
                stacklevel=2,
            )
    # one time stamp for every file name (and for the check of existing files)
    files = default_filenames(record, when=when or datetime.now())
    _check_outputs([out_dir / f for n in names for f in files[n]], overwrite=overwrite)
    left_out = [
        f"{t['name']!r} ({t.get('unreachable_reason') or 'unreachable'})"
        for t in record["targets"]
        if not bool(t.get("reachable", True))
    ]
    built: dict[str, _Documents] = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ExportWarning)
        for name in names:
            builder = _function(FORMATS[name], "builder")
            built[name] = builder(record, out_dir / files[name][0], space=space_name)
    _write_documents([doc for name in names for doc in built[name]], overwrite=overwrite)
    written = {
        name: [Path(p).relative_to(out_dir).as_posix() for p, _ in built[name]] for name in names
    }
    for item in caught:
        if not issubclass(item.category, _LeftOutWarning):
            warnings.warn_explicit(item.message, item.category, item.filename, item.lineno)
    navigators = [n for n in written if FORMATS[n].navigator]
    if left_out and navigators:
        warnings.warn(
            f"unreachable target(s) {', '.join(left_out)} left out of {', '.join(navigators)}; "
            "they are listed in the csv/json tables.",
            ExportWarning,
            stacklevel=2,
        )
    return written


def read_export(path: str | Path, fmt: str, **kwargs: Any) -> NavigatorFile:
    """Read a file of format ``fmt`` (see :data:`FORMATS`) back into canonical poses.

    Extra keyword arguments go to the format's reader (e.g. ``t1=`` for visor2).
    """
    spec = _get_spec(fmt)
    return _function(spec, "reader")(path, **kwargs)


def _frame_default(frame: str | None) -> str:
    return frame or SUBJECT_FRAME
