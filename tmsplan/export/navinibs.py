"""NaviNIBS: a targets ``.json`` for ``Session.mergeFromFile(path, sections=['targets'])``.

Design notes: ``docs/exports.md``, section ``tmsplan.export.navinibs``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tmsplan.errors import FormatError
from tmsplan.export._common import (
    Documents,
    Marker,
    NavigatorFile,
    check_space,
    clean_text,
    default_frame,
    json_document,
    json_text,
    parse_float,
    pose_from_file,
    record_targets,
)
from tmsplan.io.outputs import write_files

__all__ = [
    "NAVINIBS_FROM_TMSPLAN",
    "NAVINIBS_TARGET_KEYS",
    "write_navinibs",
    "build_navinibs",
    "read_navinibs",
]

NAVINIBS_FROM_TMSPLAN = np.diag([1.0, -1.0, -1.0, 1.0])
"""Right-multiply a coil matrix by this to swap tmsplan and NaviNIBS coil axes (self-inverse)."""

NAVINIBS_TARGET_KEYS = ("key", "targetCoord", "entryCoord", "depthOffset", "coilToMRITransf")
"""The keys tmsplan writes for each target (NaviNIBS refuses keys it does not know)."""


def _unique_keys(names: list[str]) -> list[str]:
    """Target names made unique (``name``, ``name #2``, ...): NaviNIBS keys targets by name."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        key = name or "target"
        count = seen.get(key, 0) + 1
        seen[key] = count
        out.append(key if count == 1 else f"{key} #{count}")
    return out


def _point(xyz: np.ndarray | None) -> list[float] | None:
    return None if xyz is None else [float(v) for v in xyz]


def write_navinibs(
    record: dict, path: str | Path, *, space: str = "RAS", overwrite: bool = False
) -> list[Path]:
    """Write the reachable targets as a NaviNIBS targets ``.json``.

    Parameters
    ----------
    record : dict
        A plan record (re-checked before anything is written).
    path : str or pathlib.Path
        File to write (``.json``).
    space : {"RAS"}, keyword-only
        NaviNIBS works in the NIfTI world (RAS+) only.
    overwrite : bool, keyword-only
        Replace an existing file.

    Returns
    -------
    list of pathlib.Path
        The file written.
    """
    return write_files(build_navinibs(record, path, space=space), overwrite=overwrite)


def build_navinibs(record: dict, path: str | Path, *, space: str = "RAS") -> Documents:
    """The targets JSON of :func:`write_navinibs`, in memory.

    Same arguments and checks as :func:`write_navinibs`, without ``overwrite``;
    returns each file's ``(path, text)``, main file first.
    """
    check_space("navinibs", space)
    targets = record_targets(record, "navinibs")
    keys = _unique_keys([clean_text(t.name) for t in targets])
    entries = []
    for key, target in zip(keys, targets, strict=True):
        entries.append(
            {
                "key": key,
                "targetCoord": _point(target.cortical),
                "entryCoord": _point(target.scalp),
                "depthOffset": float(target.source["coil_skin_distance_mm"]),
                "coilToMRITransf": (target.pose @ NAVINIBS_FROM_TMSPLAN).tolist(),
            }
        )
    return [(Path(path), json_text({"targets": entries}, "navinibs"))]


def _numbers(value: Any, shape: tuple[int, ...], where: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=object)
    except ValueError:  # ragged nesting numpy cannot hold
        arr = np.empty(0)
    if arr.shape != shape:
        raise FormatError(
            f"{where}: expected {'x'.join(map(str, shape))} numbers, got {value!r:.120}."
        )
    return np.array([parse_float(v, where=where) for v in arr.ravel()]).reshape(shape)


def read_navinibs(path: str | Path, *, frame: str | None = None) -> NavigatorFile:
    """Read a NaviNIBS targets ``.json`` (as tmsplan writes it, or as NaviNIBS saves it).

    Accepts ``{"targets": [...]}`` or a bare list of targets (both are what
    ``mergeFromFile`` takes). Keys other than the five tmsplan writes (NaviNIBS's
    own ``angle``, ``color``, ``isVisible``, ...) are kept in ``Marker.info``.

    Parameters
    ----------
    path : str or pathlib.Path
    frame : str, optional, keyword-only
        World frame name of the markers (default ``"T1w"``).

    Returns
    -------
    NavigatorFile
        One marker per target: ``pose`` from ``coilToMRITransf`` in tmsplan's
        axes (None when the target has no explicit pose), ``cortical_mm`` from
        ``targetCoord``, ``scalp_mm`` from ``entryCoord``;
        ``info["depth_offset_mm"]`` from ``depthOffset``.

    Raises
    ------
    FormatError
        Not a NaviNIBS targets file, or malformed values.
    PoseError
        A sheared, scaled or mirrored ``coilToMRITransf``.
    """
    path = Path(path)
    source = str(path)
    doc = json_document(path)
    items = doc.get("targets") if isinstance(doc, dict) else doc
    if not isinstance(items, list):
        raise FormatError(
            f"{source}: no 'targets' list; not a NaviNIBS targets file (expected "
            '{"targets": [...]}).'
        )
    markers = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise FormatError(
                f"{source}: targets[{i}] is {item!r:.60}; expected an object with a 'key' string."
            )
        name = item["key"]
        where = f"{source}: target {name!r}"
        points = {}
        for field in ("targetCoord", "entryCoord"):
            value = item.get(field)
            points[field] = None if value is None else _numbers(value, (3,), f"{where} {field}")
        pose = None
        if item.get("coilToMRITransf") is not None:
            matrix = _numbers(item["coilToMRITransf"], (4, 4), f"{where} coilToMRITransf")
            pose = pose_from_file(matrix @ NAVINIBS_FROM_TMSPLAN, name=f"{where} coilToMRITransf")
        info: dict[str, Any] = {
            key: value for key, value in item.items() if key not in NAVINIBS_TARGET_KEYS
        }
        if item.get("depthOffset") is not None:
            info["depth_offset_mm"] = parse_float(item["depthOffset"], where=f"{where} depthOffset")
        markers.append(
            Marker(
                name,
                pose=pose,
                cortical_mm=points["targetCoord"],
                scalp_mm=points["entryCoord"],
                kind="target",
                info=info,
            )
        )
    return NavigatorFile(
        format="navinibs",
        path=path,
        markers=tuple(markers),
        file_space="RAS",
        frame=default_frame(frame),
        meta={},
    )
