"""Neuronavigation exports: one module per file format, and this registry.

Design notes: ``docs/exports.md``, section ``tmsplan.export``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from tmsplan.errors import FormatError
from tmsplan.export import bids, brainsight, localite, navinibs, slicer, table, visor2
from tmsplan.export._common import (
    READ_ATOL,
    Documents,
    ExportWarning,
    LeftOutWarning,
    Marker,
    NavigatorFile,
    bids_label,
    check_space,
    file_timestamp,
)
from tmsplan.io.outputs import check_writable, write_files
from tmsplan.io.record_checks import validate_record
from tmsplan.spaces import check_rigid

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


@dataclass(frozen=True)
class FormatSpec:
    """One export format of the registry.

    Attributes
    ----------
    name : str
        Registry name, e.g. ``"localite"``.
    writer : callable
        ``writer(record, path, *, space, overwrite) -> list of Path``.
    builder : callable
        ``builder(record, path, *, space) -> list of (Path, str)``: the writer's
        files in memory, nothing written (used by :func:`export_all`).
    reader : callable
        ``reader(path, **kwargs) -> NavigatorFile``.
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
    writer: Callable[..., list[Path]]
    builder: Callable[..., Documents]
    reader: Callable[..., NavigatorFile]
    suffix: str
    spaces: tuple[str, ...]
    navigator: bool
    description: str


_BOTH = ("RAS", "LPS")
FORMATS: dict[str, FormatSpec] = {
    spec.name: spec
    for spec in (
        FormatSpec(
            "localite",
            localite.write_localite,
            localite.build_localite,
            localite.read_localite,
            ".xml",
            _BOTH,
            True,
            "Localite InstrumentMarker XML (coil poses)",
        ),
        FormatSpec(
            "localite-entrytarget",
            localite.write_localite_entrytarget,
            localite.build_localite_entrytarget,
            localite.read_localite,
            ".xml",
            _BOTH,
            True,
            "Localite EntryTarget XML (scalp entry + cortical target, no orientation)",
        ),
        FormatSpec(
            "brainsight",
            brainsight.write_brainsight,
            brainsight.build_brainsight,
            brainsight.read_brainsight,
            ".txt",
            ("RAS",),
            True,
            "Brainsight targets text (NIfTI coordinates)",
        ),
        FormatSpec(
            "visor2",
            visor2.write_visor2,
            visor2.build_visor2,
            visor2.read_visor2,
            ".mrk",
            ("RAS",),
            True,
            "ANT visor2 .mrk JSON with the T1 qform fingerprint",
        ),
        FormatSpec(
            "slicer",
            slicer.write_slicer,
            slicer.build_slicer,
            slicer.read_slicer,
            ".mrk.json",
            _BOTH,
            True,
            "3D Slicer markups JSON (one fiducial list per target)",
        ),
        FormatSpec(
            "navinibs",
            navinibs.write_navinibs,
            navinibs.build_navinibs,
            navinibs.read_navinibs,
            ".json",
            ("RAS",),
            True,
            "NaviNIBS targets JSON (Session.mergeFromFile, sections=['targets'])",
        ),
        FormatSpec(
            "bids",
            bids.write_bids,
            bids.build_bids,
            bids.read_bids,
            "_markers.tsv",
            ("RAS",),
            True,
            "BIDS-TMS style *_markers.tsv + *_coordsystem.json",
        ),
        FormatSpec(
            "csv",
            table.write_csv,
            table.build_csv,
            table.read_csv,
            ".csv",
            ("RAS",),
            False,
            "CSV table of all targets",
        ),
        FormatSpec(
            "json",
            table.write_json,
            table.build_json,
            table.read_json,
            ".json",
            ("RAS",),
            False,
            "JSON list of all targets",
        ),
    )
}
"""Registry of export formats, by name."""


# ---------------------------------------------------------------------------
# the registry API


def _get_spec(fmt: str) -> FormatSpec:
    if fmt not in FORMATS:
        raise FormatError(
            f"unknown export format {fmt!r}; valid formats are: {', '.join(FORMATS)}."
        )
    return FORMATS[fmt]


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
    stamp = file_timestamp(when)
    label = bids_label(record.get("subject"))
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
    space = check_space(fmt, space)
    path = _main_path(record, fmt, out, when or datetime.now())
    return spec.writer(record, path, space=space, overwrite=overwrite)


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
        check_space(name, space_name)
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
    for name in names:
        for filename in files[name]:
            check_writable(out_dir / filename, overwrite=overwrite)
    left_out = [
        f"{t['name']!r} ({t.get('unreachable_reason') or 'unreachable'})"
        for t in record["targets"]
        if not bool(t.get("reachable", True))
    ]
    built: dict[str, Documents] = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ExportWarning)
        for name in names:
            built[name] = FORMATS[name].builder(record, out_dir / files[name][0], space=space_name)
    write_files([doc for name in names for doc in built[name]], overwrite=overwrite)
    written = {
        name: [Path(p).relative_to(out_dir).as_posix() for p, _ in built[name]] for name in names
    }
    for item in caught:
        if not issubclass(item.category, LeftOutWarning):
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
    return spec.reader(path, **kwargs)
