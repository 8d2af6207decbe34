"""Re-check a plan record before any navigator file is made from it.

Design notes: ``docs/record.md``, section ``tmsplan.io.record_checks``.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from tmsplan.errors import RecordError
from tmsplan.io.record import check_record

__all__ = [
    "POSITION_TOL_MM",
    "DEPTH_TOL_MM",
    "AXIS_TOL",
    "record_schema",
    "validate_record",
    "t1_checksum_warnings",
]

POSITION_TOL_MM = 0.01
"""Coil centre vs. entry + coil-skin distance along -z (records round points to 1e-4 mm)."""
DEPTH_TOL_MM = 0.01
"""``depth_mm`` vs. the entry-target distance, and vs. ``max_depth_mm`` (depth rounds to 1e-3)."""
AXIS_TOL = 1e-6
"""Unit vectors (handle direction, scalp normal) vs. the coil matrix columns (rounded to 1e-8)."""

_REFUSED = (
    "navigator files are only written from a consistent record; re-run 'tmsplan plan' "
    "rather than editing target.json."
)


@lru_cache(maxsize=1)
def _schema_text() -> str:
    return resources.files("tmsplan").joinpath("data", "target.schema.json").read_text("utf-8")


@lru_cache(maxsize=1)
def record_schema() -> dict:
    """The JSON Schema of ``target.json`` shipped with tmsplan.

    Returns
    -------
    dict
        The schema (JSON Schema 2020-12); do not modify it.
    """
    return json.loads(_schema_text())


def _schema_sha256() -> str:
    return hashlib.sha256(_schema_text().encode("utf-8")).hexdigest()


_FAST_MODULE = Path(__file__).with_name("_record_validator.py")


def fast_validator_source() -> str:
    """The source of ``tmsplan.io._record_validator``: the schema compiled by fastjsonschema.

    Regenerate it with :func:`write_fast_validator` after changing
    ``tmsplan/data/target.schema.json`` (a test says so).

    Returns
    -------
    str
        Python source defining ``validate(record)`` and ``SCHEMA_SHA256``.
    """
    import re

    import fastjsonschema

    code = fastjsonschema.compile_to_code(record_schema())
    entry = re.search(r"^def (\w+)\(data", code, re.MULTILINE)[1]
    return (
        '"""target.schema.json compiled by fastjsonschema (generated: do not edit).\n\n'
        'Regenerate with tmsplan.io.record_checks.write_fast_validator().\n"""\n\n'
        f"# ruff: noqa\n{code}\n\nvalidate = {entry}\n"
        f'SCHEMA_SHA256 = "{_schema_sha256()}"\n'
    )


def write_fast_validator() -> Path:
    """Write :func:`fast_validator_source` into the package (a development step).

    Returns
    -------
    pathlib.Path
        The module written.
    """
    _FAST_MODULE.write_text(fast_validator_source(), encoding="utf-8")
    return _FAST_MODULE


def _field_path(path: Any) -> str:
    """``targets[0].reachable`` from a jsonschema error path."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


@lru_cache(maxsize=1)
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(record_schema())


@lru_cache(maxsize=1)
def _fast_validator() -> Any:
    """The compiled schema check, or None when it was compiled from another schema."""
    try:
        from tmsplan.io import _record_validator
    except ImportError:  # fastjsonschema missing: jsonschema alone
        return None
    current = _record_validator.SCHEMA_SHA256 == _schema_sha256()
    return _record_validator.validate if current else None


def _check_schema(record: dict, source: str) -> None:
    fast = _fast_validator()
    if fast is not None:
        from fastjsonschema import JsonSchemaException

        try:
            fast(record)
        except JsonSchemaException as exc:
            refused = exc
        else:
            return  # a valid record: jsonschema (60 ms to import) is not needed
    from jsonschema.exceptions import best_match

    error = best_match(_validator().iter_errors(record))
    if error is None:
        if fast is not None:  # the two readings of the schema disagree: refuse anyway
            raise RecordError(f"{source}: {refused}; {_REFUSED}")
        return
    value = repr(error.instance)
    value = value if len(value) <= 60 else value[:57] + "..."
    if error.validator == "type":
        what = f"{value} is not of type {error.validator_value!r}"
    elif error.validator == "required":
        what = error.message
    else:
        what = f"{value} is invalid ({error.message[:120]})"
    raise RecordError(f"{source}: {_field_path(error.absolute_path)}: {what}; {_REFUSED}")


def _vector(target: dict, key: str, where: str) -> np.ndarray:
    arr = np.asarray(target[key], dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise RecordError(f"{where}.{key}: {target[key]!r} holds NaN or infinity; {_REFUSED}")
    return arr


def _check_target(target: dict, where: str, max_depth: float | None) -> None:
    """Geometric consistency of one record target (see the module docstring)."""
    pose = _vector(target, "coil_matrix", where)
    cortical = _vector(target, "cortical_mm", where)
    scalp = _vector(target, "scalp_mm", where)
    handle = _vector(target, "handle_direction", where)
    y, z, centre = pose[:3, 1], pose[:3, 2], pose[:3, 3]
    distance = float(target["coil_skin_distance_mm"])
    off = float(np.linalg.norm(centre - (scalp - distance * z)))
    depth = float(np.linalg.norm(scalp - cortical))
    depth_off = abs(depth - float(target["depth_mm"]))
    if off > POSITION_TOL_MM and depth_off > DEPTH_TOL_MM:
        # both relations through the scalp entry fail: the entry is what moved
        raise RecordError(
            f"{where}.scalp_mm: the scalp entry is {off:.1f} mm from where the coil centre "
            f"and coil-skin distance put it, and {depth:.1f} mm (not depth_mm = "
            f"{target['depth_mm']!r}) from the cortical target; {_REFUSED}"
        )
    if off > POSITION_TOL_MM:
        raise RecordError(
            f"{where}.coil_matrix: the coil centre is {off:.1f} mm from where the scalp entry "
            f"and coil-skin distance put it ({distance:g} mm out from scalp_mm along the "
            f"coil's -z); {_REFUSED}"
        )
    if depth_off > DEPTH_TOL_MM:
        raise RecordError(
            f"{where}.depth_mm: {target['depth_mm']!r} mm, but the scalp entry and the "
            f"cortical target are {depth:.3f} mm apart; {_REFUSED}"
        )
    turn = float(np.max(np.abs(handle - y)))
    if turn > AXIS_TOL:
        raise RecordError(
            f"{where}.handle_direction: differs from the coil matrix's y column (handle) by "
            f"up to {turn:.2g}; {_REFUSED}"
        )
    if target.get("scalp_normal") is not None:
        normal = _vector(target, "scalp_normal", where)
        turn = float(np.max(np.abs(normal + z)))
        if turn > AXIS_TOL:
            raise RecordError(
                f"{where}.scalp_normal: is not the coil matrix's -z column (the coil z "
                f"points into the head along the inward normal; differs by up to "
                f"{turn:.2g}); {_REFUSED}"
            )
    reachable = target["reachable"]
    if reachable and max_depth is not None and depth > max_depth + DEPTH_TOL_MM:
        raise RecordError(
            f"{where}.reachable: true, but the target is {depth:.1f} mm deep, deeper than "
            f"parameters.max_depth_mm = {max_depth:g} mm; {_REFUSED}"
        )
    if not reachable and not str(target.get("unreachable_reason") or "").strip():
        raise RecordError(
            f"{where}.unreachable_reason: an unreachable target must say why (it is "
            f"{target.get('unreachable_reason')!r}); {_REFUSED}"
        )


def t1_checksum_warnings(record: dict) -> list[str]:
    """Check that the T1 at ``t1.path`` is still the image the plan was made on.

    Parameters
    ----------
    record : dict
        A plan record.

    Returns
    -------
    list of str
        Warnings (empty when the file is there and its SHA-256 matches).
    """
    from tmsplan.io.images import file_sha256

    t1 = record.get("t1") or {}
    path, recorded = t1.get("path"), t1.get("sha256")
    if not path:
        return [
            "the plan record names no T1 file (t1.path is empty), so it cannot be checked "
            "that the navigator loads the image the plan was made on."
        ]
    if not Path(path).is_file():
        return [
            f"the T1 image this plan was made on, '{path}', is not there (moved or deleted); "
            "load the navigator with that very image, its world coordinates are the file's."
        ]
    if not recorded:
        return [f"the plan record holds no checksum of the T1 image '{path}'; it is not verified."]
    actual = file_sha256(path)
    if actual != recorded:
        return [
            f"THE T1 IMAGE HAS CHANGED since the plan was made: '{path}' has sha256 "
            f"{actual[:12]}..., the plan recorded {recorded[:12]}...; the navigator file's "
            "coordinates belong to the original image."
        ]
    return []


def validate_record(
    record: dict, *, source: str = "plan record", check_t1: bool = False
) -> list[str]:
    """Re-check a plan record: structure, types (JSON Schema) and geometry.

    Called before any navigator file is written (``tmsplan plan``, ``export``,
    ``report``, :func:`tmsplan.pipeline.plan.write_plan`, :func:`tmsplan.export.export_all`
    and every format writer); ``tmsplan validate`` runs it alone.

    Parameters
    ----------
    record : dict
        A plan record (``target.json`` content).
    source : str, keyword-only
        Names the record in messages (e.g. its path).
    check_t1 : bool, keyword-only
        Also check that the T1 at ``t1.path`` has the recorded SHA-256
        (reads the file).

    Returns
    -------
    list of str
        Warnings about the T1 (only with ``check_t1``); the record is consistent.

    Raises
    ------
    RecordError
        Another schema version, a missing key, a value of the wrong type, or
        an inconsistent target; the message names the field.
    PoseError
        A coil matrix that is not a rigid transform.
    """
    key = _content_key(record)
    if key is None or key not in _PASSED:
        check_record(record, source=source)
        _check_schema(record, source)
        max_depth = (record.get("parameters") or {}).get("max_depth_mm")
        for i, target in enumerate(record["targets"]):
            _check_target(target, f"{source}: targets[{i}]", max_depth)
        if key is not None:
            _PASSED[key] = None
            while len(_PASSED) > 16:
                _PASSED.pop(next(iter(_PASSED)))
    return t1_checksum_warnings(record) if check_t1 else []


_PASSED: dict[str, None] = {}
"""Digests of the contents of records that passed (export_all checks once per format)."""


def _content_key(record: Any) -> str | None:
    """SHA-256 of a record's JSON text, or None when it is not plain JSON data."""
    import hashlib

    try:
        text = json.dumps(record, sort_keys=True, allow_nan=True)
    except (TypeError, ValueError):
        return None
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
