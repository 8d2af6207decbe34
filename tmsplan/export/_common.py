"""What the export format modules share: reader results, record targets, text and file helpers.

Private to :mod:`tmsplan.export`; the format modules import these by their names here.
"""

from __future__ import annotations

import json
import re
import warnings
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
from tmsplan.io.record_checks import validate_record
from tmsplan.spaces import LPS_FROM_RAS, SUBJECT_FRAME, CoilPoses, as_points_array, check_rigid

READ_ATOL = 5e-3
"""Tolerance on ``|R^T R - I|`` when reading: vendor files round to 3-4 decimals."""


class ExportWarning(TmsplanWarning):
    """Something about an export the user should know (a target left out, a header choice)."""


class LeftOutWarning(ExportWarning):
    """Unreachable targets left out of a navigator file (merged into one by export_all)."""


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


def _registered(fmt: str) -> Any:
    """The registry entry of ``fmt`` (:data:`tmsplan.export.FORMATS`).

    Looked up when called: the registry holds the format modules' functions, so
    it is filled after they (and this module) are imported.
    """
    from tmsplan.export import FORMATS

    return FORMATS[fmt]


@dataclass(frozen=True)
class ExportTarget:
    """A record target ready for export (checked, float64, RAS)."""

    name: str
    pose: np.ndarray
    cortical: np.ndarray | None
    scalp: np.ndarray | None
    source: dict


def check_space(fmt: str, space: str) -> str:
    """Normalise ``space`` and check ``fmt`` can be written in it."""
    spec = _registered(fmt)
    value = str(space).upper()
    if value not in spec.spaces:
        raise SpaceError(
            f"space {space!r} is not available for the {fmt} format; it can be written in "
            f"{', '.join(spec.spaces)}. Pass space='RAS' (tmsplan's convention) or pick a "
            f"format that offers {value}."
        )
    return value


def world_from_ras(space: str) -> np.ndarray:
    """Matrix taking RAS world coordinates to ``space`` (its own inverse)."""
    return LPS_FROM_RAS if space == "LPS" else np.eye(4)


def nearest_rotation(pose: np.ndarray) -> np.ndarray:
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


def record_targets(record: dict, fmt: str) -> list[ExportTarget]:
    """Check the record and return the targets ``fmt`` exports.

    Every pose is checked for rigidity before anything is written. Navigator
    formats leave out unreachable targets with an :class:`ExportWarning`.

    Raises
    ------
    RecordError, PoseError, SpaceError
        Invalid or inconsistent record (:func:`tmsplan.io.record_checks.validate_record`),
        non-rigid pose, non-finite point.
    UnreachableTargetError
        A navigator format and no reachable target.
    """
    validate_record(record, source="plan record")
    spec = _registered(fmt)
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
        chosen.append(ExportTarget(name, nearest_rotation(pose), cortical, scalp, target))
    if spec.navigator and not chosen:
        raise UnreachableTargetError(
            f"no reachable target to write as {fmt}: {', '.join(left_out) or 'the plan is empty'}. "
            "Navigator files only carry poses the operator can use; see the csv/json tables."
        )
    if left_out:
        warnings.warn(
            f"the {fmt} file leaves out unreachable target(s) {', '.join(left_out)}; they are "
            "listed in the csv/json tables.",
            LeftOutWarning,
            stacklevel=3,
        )
    return chosen


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def clean_text(text: Any, *, replace: str = "") -> str:
    """Replace control characters (tab, newline, ...) and those in ``replace`` by a space."""
    out = _CONTROL.sub(" ", str(text))
    for char in replace:
        out = out.replace(char, " ")
    return out.strip()


def float_text(value: float) -> str:
    """Shortest text that reads back as the same float64."""
    return repr(float(value))


def parse_float(text: Any, *, where: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise FormatError(f"{where}: expected a number, got {text!r}.") from None
    if not np.isfinite(value):
        raise FormatError(f"{where}: expected a finite number, got {text!r}.")
    return value


def pose_from_file(matrix: Any, *, name: str) -> np.ndarray:
    """Check a pose read from a file (tolerating vendor rounding) and make it exactly rigid.

    Raises
    ------
    PoseError
        Sheared, scaled, mirrored or non-finite rotation.
    """
    mat = check_rigid(np.asarray(matrix, dtype=float), name=name, atol=READ_ATOL)[0]
    return nearest_rotation(mat)


def file_text(path: Path) -> str:
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


def json_document(path: Path) -> Any:
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


def json_text(doc: Any, fmt: str) -> str:
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


Documents = list[tuple[Path, str]]
"""What a format builder returns: (path, UTF-8 text) of each file, main file first.
Writers hand it to :func:`tmsplan.io.outputs.write_files` (all or none of the files)."""


def bids_label(subject: Any) -> str:
    """BIDS subject label of a record's ``subject`` (letters and digits; ``"01"`` if none)."""
    label = re.sub(r"[^A-Za-z0-9]", "", str(subject or "").removeprefix("sub-"))
    return label or "01"


def file_timestamp(when: datetime | None) -> str:
    """``YYYYMMDDHHMMSSmmm`` of ``when`` (default now), as Localite names its files."""
    when = when or datetime.now()
    return when.strftime("%Y%m%d%H%M%S") + f"{when.microsecond // 1000:03d}"


def default_frame(frame: str | None) -> str:
    """The frame a reader reports when the file names none (the T1's world)."""
    return frame or SUBJECT_FRAME
