"""3D Slicer markups JSON (``.mrk.json``).

Design notes: ``docs/exports.md``, section ``tmsplan.export.slicer``.
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
    world_from_ras,
)
from tmsplan.io.outputs import write_files

__all__ = ["SLICER_SCHEMA", "write_slicer", "build_slicer", "read_slicer"]

SLICER_SCHEMA = (
    "https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/Markups/"
    "Resources/Schema/markups-schema-v1.0.3.json#"
)

_ROLES = {"coil": "coil centre", "cortex": "cortical target", "scalp": "scalp entry"}


def _control_point(role: str, label: str, xyz: np.ndarray, rot: np.ndarray) -> dict:
    return {
        "id": role,
        "label": label,
        "description": _ROLES[role]
        + " (orientation columns: coil x, y = handle, z = into the head)",
        "associatedNodeID": "",
        "position": [float(v) for v in xyz],
        "orientation": [float(v) for v in rot.ravel()],  # row by row; columns are the axes
        "selected": True,
        "locked": True,
        "visibility": True,
        "positionStatus": "defined",
    }


def write_slicer(
    record: dict, path: str | Path, *, space: str = "RAS", overwrite: bool = False
) -> list[Path]:
    """Write the reachable targets as 3D Slicer markups (``.mrk.json``).

    Parameters
    ----------
    record : dict
    path : str or pathlib.Path
    space : {"RAS", "LPS"}, keyword-only
        ``coordinateSystem`` of every markup.
    overwrite : bool, keyword-only

    Returns
    -------
    list of pathlib.Path
    """
    return write_files(build_slicer(record, path, space=space), overwrite=overwrite)


def build_slicer(record: dict, path: str | Path, *, space: str = "RAS") -> Documents:
    """The markups JSON of :func:`write_slicer`, in memory.

    Same arguments and checks as :func:`write_slicer`, without ``overwrite``;
    returns each file's ``(path, text)``, main file first.
    """
    space = check_space("slicer", space)
    targets = record_targets(record, "slicer")
    world = world_from_ras(space)
    markups = []
    for target in targets:
        pose = world @ target.pose
        rot = pose[:3, :3]
        name = clean_text(target.name)
        points = [_control_point("coil", f"{name} coil", pose[:3, 3], rot)]
        for role, xyz in (("cortex", target.cortical), ("scalp", target.scalp)):
            if xyz is not None:
                points.append(_control_point(role, f"{name} {role}", world[:3, :3] @ xyz, rot))
        markups.append(
            {
                "type": "Fiducial",
                "name": name,
                "coordinateSystem": space,
                "coordinateUnits": "mm",
                "locked": True,
                "fixedNumberOfControlPoints": True,
                "labelFormat": "%N-%d",
                "controlPoints": points,
                "measurements": [],
            }
        )
    doc = {"@schema": SLICER_SCHEMA, "markups": markups}
    text = json_text(doc, "slicer")
    return [(Path(path), text)]


def _vector(values: Any, size: int, where: str) -> np.ndarray:
    if not isinstance(values, list) or len(values) != size:
        raise FormatError(f"{where}: expected a list of {size} numbers, got {values!r}.")
    return np.array([parse_float(v, where=where) for v in values])


def read_slicer(path: str | Path, *, frame: str | None = None) -> NavigatorFile:
    """Read 3D Slicer markups (``.mrk.json``).

    A markup with a control point of id ``"coil"`` (as tmsplan writes) gives
    one marker: pose from that point, ``cortical_mm``/``scalp_mm`` from the
    ``"cortex"``/``"scalp"`` points. Any other control point gives a marker of
    its own whose pose uses its orientation as tmsplan axes.

    Parameters
    ----------
    path : str or pathlib.Path
    frame : str, optional
        World frame name (default ``"T1w"``).

    Returns
    -------
    NavigatorFile
        Markers in RAS (LPS markups are converted). ``file_space`` is that of
        the first markup.

    Raises
    ------
    FormatError
        Not a markups file, or malformed values.
    PoseError
        A sheared, scaled or mirrored orientation.
    """
    path = Path(path)
    source = str(path)
    doc = json_document(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("markups"), list):
        raise FormatError(f"{source}: no 'markups' list; not a Slicer .mrk.json file.")
    markers: list[Marker] = []
    spaces = []
    for i, markup in enumerate(doc["markups"]):
        if not isinstance(markup, dict):
            raise FormatError(
                f"{source}: markup #{i} is {type(markup).__name__} {markup!r:.60}, expected a "
                "JSON object; not a Slicer .mrk.json file."
            )
        space = str(markup.get("coordinateSystem", "LPS")).upper()
        if space not in ("RAS", "LPS"):
            raise FormatError(f"{source}: markup #{i} coordinateSystem {space!r} is not RAS/LPS.")
        units = markup.get("coordinateUnits", "mm")
        if units not in ("mm", ["mm", "UCUM", "millimeter"]):
            raise FormatError(f"{source}: markup #{i} units {units!r}; tmsplan reads mm.")
        spaces.append(space)
        world = world_from_ras(space)
        name = str(markup.get("name", ""))
        found: dict[str, tuple[str, np.ndarray, np.ndarray | None]] = {}
        loose = []
        points = markup.get("controlPoints")
        if points is None:
            points = []
        if not isinstance(points, list):
            raise FormatError(
                f"{source}: markup {name!r} controlPoints is {type(points).__name__}, expected a "
                "list of control points."
            )
        for j, point in enumerate(points):
            where = f"{source}: markup {name!r} point #{j}"
            if not isinstance(point, dict):
                raise FormatError(
                    f"{where}: is {type(point).__name__} {point!r:.60}, expected a JSON object "
                    "with a position."
                )
            if point.get("positionStatus", "defined") != "defined":
                continue
            xyz = world[:3, :3] @ _vector(point.get("position"), 3, where)
            rot = None
            if point.get("orientation") is not None:
                rot = world[:3, :3] @ _vector(point["orientation"], 9, where).reshape(3, 3)
            role = point.get("id") if isinstance(point.get("id"), str) else None
            label = str(point.get("label", ""))
            if role in _ROLES and role not in found:
                found[role] = (label, xyz, rot)
            else:
                loose.append((label, xyz, rot, where))
        if "coil" in found:
            _, xyz, rot = found["coil"]
            where = f"{source}: markup {name!r} coil centre"
            if rot is None:
                raise FormatError(f"{where}: no orientation.")
            pose = np.eye(4)
            pose[:3, :3], pose[:3, 3] = rot, xyz
            markers.append(
                Marker(
                    name,
                    pose=pose_from_file(pose, name=where),
                    cortical_mm=found["cortex"][1] if "cortex" in found else None,
                    scalp_mm=found["scalp"][1] if "scalp" in found else None,
                )
            )
        else:
            loose = [(*found[r], f"{source}: markup {name!r} {r}") for r in found] + loose
        for label, xyz, rot, where in loose:
            pose = None
            if rot is not None:
                mat = np.eye(4)
                mat[:3, :3], mat[:3, 3] = rot, xyz
                pose = pose_from_file(mat, name=where)
            markers.append(Marker(label, pose=pose, kind="point", info={"position_mm": xyz}))
    return NavigatorFile(
        format="slicer",
        path=path,
        markers=tuple(markers),
        file_space=spaces[0] if spaces else "RAS",
        frame=default_frame(frame),
        meta={"schema": doc.get("@schema")},
    )
