"""Localite TMS Navigator: InstrumentMarker and EntryTarget XML.

Design notes: ``docs/exports.md``, section ``tmsplan.export.localite``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

import numpy as np

from tmsplan import __version__
from tmsplan.errors import FormatError, RecordError
from tmsplan.export._common import (
    Documents,
    Marker,
    NavigatorFile,
    check_space,
    clean_text,
    default_frame,
    file_timestamp,
    float_text,
    parse_float,
    pose_from_file,
    record_targets,
    world_from_ras,
)
from tmsplan.io.outputs import write_files

__all__ = [
    "LOCALITE_FROM_CANONICAL",
    "write_localite",
    "build_localite",
    "write_localite_entrytarget",
    "build_localite_entrytarget",
    "read_localite",
    "localite_filename",
    "localite_marker_path",
]

# Coil-axis relabelling, on the right: columns of M_canonical @ P are
# (z, -y, x, centre) of the canonical pose. P @ P = I.
LOCALITE_FROM_CANONICAL = np.array(
    [
        [0.0, 0.0, 1.0, 0.0],  # Localite x <- canonical z (into the head)
        [0.0, -1.0, 0.0, 0.0],  # Localite y <- -canonical y (handle)
        [1.0, 0.0, 0.0, 0.0],  # Localite z <- canonical x
        [0.0, 0.0, 0.0, 1.0],
    ]
)

_XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
_COLOURS = ("#ff0000", "#00ff00", "#0000ff", "#ffc800", "#ff00ff", "#00ffff")
_NOTE = (
    " Written by tmsplan {version}. Positions in mm in the {space} world of the planning T1 "
    "(NIfTI data: RAS recommended by Localite). Matrix columns: Localite coil axes "
    "(x into the head, y opposite tmsplan's handle axis, z = tmsplan x) and the coil centre. "
)


def localite_filename(kind: str = "InstrumentMarker", when: datetime | None = None) -> str:
    """File name Localite uses for its own exports: ``<kind><YYYYMMDDHHMMSSmmm>.xml``.

    Parameters
    ----------
    kind : str
        ``"InstrumentMarker"`` or ``"EntryTarget"``.
    when : datetime, optional
        Default now.
    """
    return f"{kind}{file_timestamp(when)}.xml"


def localite_marker_path(session_folder: str | Path, *, when: datetime | None = None) -> Path:
    """Where an InstrumentMarker file goes inside a Localite session folder.

    Parameters
    ----------
    session_folder : str or pathlib.Path
        ``<patient>/Sessions/Session_<datetime>`` as created by Localite.

    Returns
    -------
    pathlib.Path
        ``<session_folder>/InstrumentMarkers/InstrumentMarker<YYYYMMDDHHMMSSmmm>.xml``.
    """
    return Path(session_folder) / "InstrumentMarkers" / localite_filename("InstrumentMarker", when)


def _serialise(root: ET.Element) -> str:
    ET.indent(root, space="    ")
    return _XML_DECLARATION + ET.tostring(root, encoding="unicode") + "\n"


def write_localite(
    record: dict, path: str | Path, *, space: str = "RAS", overwrite: bool = False
) -> list[Path]:
    """Write the reachable targets' coil poses as a Localite InstrumentMarker XML.

    Parameters
    ----------
    record : dict
        Plan record (canonical poses, RAS+ mm).
    path : str or pathlib.Path
        Output file (Localite expects ``InstrumentMarker<YYYYMMDDHHMMSSmmm>.xml``).
    space : {"RAS", "LPS"}, keyword-only
        ``coordinateSpace`` of the file; RAS (default) for NIfTI-based sessions.
    overwrite : bool, keyword-only

    Returns
    -------
    list of pathlib.Path
        ``[path]``.
    """
    return write_files(build_localite(record, path, space=space), overwrite=overwrite)


def build_localite(record: dict, path: str | Path, *, space: str = "RAS") -> Documents:
    """The InstrumentMarker XML of :func:`write_localite`, in memory.

    Same arguments and checks as :func:`write_localite`, without ``overwrite``;
    returns each file's ``(path, text)``, main file first.
    """
    space = check_space("localite", space)
    targets = record_targets(record, "localite")
    world = world_from_ras(space)
    root = ET.Element("InstrumentMarkerList", {"coordinateSpace": space})
    root.append(ET.Comment(_NOTE.format(version=__version__, space=space)))
    for i, target in enumerate(targets):
        holder = ET.SubElement(
            root,
            "InstrumentMarker",
            {"alwaysVisible": "false", "index": str(i), "selected": "false"},
        )
        marker = ET.SubElement(
            holder,
            "Marker",
            {
                "additionalInformation": "",
                "color": _COLOURS[i % len(_COLOURS)],
                "description": clean_text(target.name),
                "set": "true",
            },
        )
        mat = world @ target.pose @ LOCALITE_FROM_CANONICAL
        ET.SubElement(
            marker,
            "Matrix4D",
            {f"data{r}{c}": float_text(mat[r, c]) for r in range(4) for c in range(4)},
        )
    return [(Path(path), _serialise(root))]


def _point_marker(parent: ET.Element, tag: str, index: int, colour: str, name: str, xyz) -> None:
    holder = ET.SubElement(
        parent, tag, {"alwaysVisible": "false", "index": str(index), "selected": "false"}
    )
    marker = ET.SubElement(
        holder,
        "Marker",
        {
            "color": colour,
            "description": name,
            "drawAura": "false",
            "radius": "4.0",
            "set": "true",
        },
    )
    ET.SubElement(marker, "ColVec3D", {f"data{k}": float_text(xyz[k]) for k in range(3)})


def write_localite_entrytarget(
    record: dict, path: str | Path, *, space: str = "RAS", overwrite: bool = False
) -> list[Path]:
    """Write scalp entry and cortical target of each reachable target as Localite EntryTarget XML.

    No orientation is stored: use it when the operator sets the coil
    orientation at the bedside. Pair ``i`` is ``<Entry index="i">`` (scalp)
    and ``<Target index="i">`` (cortex), both described by the target name.

    Parameters
    ----------
    record : dict
    path : str or pathlib.Path
        Output file (Localite's own name: ``EntryTarget<YYYYMMDDHHMMSSmmm>.xml``).
    space : {"RAS", "LPS"}, keyword-only
    overwrite : bool, keyword-only

    Returns
    -------
    list of pathlib.Path
    """
    return write_files(build_localite_entrytarget(record, path, space=space), overwrite=overwrite)


def build_localite_entrytarget(record: dict, path: str | Path, *, space: str = "RAS") -> Documents:
    """The EntryTarget XML of :func:`write_localite_entrytarget`, in memory.

    Same arguments and checks as :func:`write_localite_entrytarget`, without ``overwrite``;
    returns each file's ``(path, text)``, main file first.
    """
    space = check_space("localite-entrytarget", space)
    targets = record_targets(record, "localite-entrytarget")
    for target in targets:
        if target.scalp is None or target.cortical is None:
            raise RecordError(
                f"target {target.name!r} lacks scalp_mm or cortical_mm; an EntryTarget file "
                "needs both. Re-run the plan."
            )
    flip = world_from_ras(space)[:3, :3]
    root = ET.Element("EntryTargetList", {"coordinateSpace": space})
    root.append(ET.Comment(_NOTE.format(version=__version__, space=space).split("Matrix")[0]))
    for i, target in enumerate(targets):
        name = clean_text(target.name)
        _point_marker(root, "Entry", i, "#00ff00", name, flip @ target.scalp)
        _point_marker(root, "Target", i, "#00ffff", name, flip @ target.cortical)
    return [(Path(path), _serialise(root))]


# ---------------------------------------------------------------------------
# reading


def _matrix4d(elem: ET.Element, where: str) -> np.ndarray:
    mat = np.empty((4, 4))
    for r in range(4):
        for c in range(4):
            key = f"data{r}{c}"
            if key not in elem.attrib:
                raise FormatError(f"{where}: Matrix4D lacks {key}.")
            mat[r, c] = parse_float(elem.attrib[key], where=f"{where} {key}")
    return mat


def _colvec(elem: ET.Element, where: str) -> np.ndarray:
    keys = ("data0", "data1", "data2")
    if any(k not in elem.attrib for k in keys):
        raise FormatError(f"{where}: ColVec3D needs data0, data1 and data2.")
    return np.array([parse_float(elem.attrib[k], where=f"{where} {k}") for k in keys])


def _space_of(root: ET.Element, source: str) -> str:
    space = root.get("coordinateSpace", "RAS").upper()
    if space not in ("RAS", "LPS"):
        raise FormatError(
            f"{source}: coordinateSpace {space!r} is neither RAS nor LPS; tmsplan cannot place it."
        )
    return space


def _is_untracked(mat: np.ndarray) -> bool:
    return bool(np.allclose(mat, np.eye(4), atol=1e-6))


def read_localite(path: str | Path, *, frame: str | None = None) -> NavigatorFile:
    """Read a Localite InstrumentMarker, EntryTarget or TriggerMarkers XML file.

    Parameters
    ----------
    path : str or pathlib.Path
    frame : str, optional
        World frame name given to the markers (default ``"T1w"``: the world of
        the T1 loaded in Localite).

    Returns
    -------
    NavigatorFile
        Markers in RAS+ mm with canonical poses. InstrumentMarker entries have
        kind ``"target"``; EntryTarget pairs ``"entry-target"`` (``scalp_mm`` =
        entry, ``cortical_mm`` = target, no pose); TriggerMarker entries
        ``"pulse"`` (``info["tracked"]`` False and ``pose`` None for an
        identity-like matrix).

    Raises
    ------
    FormatError
        Not a Localite XML file, or malformed values.
    PoseError
        A sheared, scaled or mirrored rotation.
    """
    path = Path(path)
    source = str(path)
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError, LookupError, ValueError) as exc:
        # LookupError: an unknown encoding in the XML declaration
        raise FormatError(f"{source}: cannot read it as XML ({exc}).") from None
    space = _space_of(root, source)
    world = world_from_ras(space)
    markers: list[Marker] = []
    if root.tag == "InstrumentMarkerList":
        for i, holder in enumerate(root.iter("InstrumentMarker")):
            marker = holder.find("Marker")
            matrix = marker.find("Matrix4D") if marker is not None else None
            if matrix is None:
                raise FormatError(f"{source}: InstrumentMarker #{i} has no Marker/Matrix4D.")
            name = marker.get("description", "")
            where = f"{source}: marker {name!r}"
            raw = _matrix4d(matrix, where)
            pose = pose_from_file(world @ raw @ LOCALITE_FROM_CANONICAL, name=where)
            info = {"color": marker.get("color"), "set": marker.get("set") == "true"}
            markers.append(Marker(name, pose=pose, kind="target", info=info))
    elif root.tag == "EntryTargetList":
        entries = {e.get("index", str(i)): e for i, e in enumerate(root.iter("Entry"))}
        targets = {t.get("index", str(i)): t for i, t in enumerate(root.iter("Target"))}
        for index in dict.fromkeys([*entries, *targets]):
            points, names = {}, []
            for role, elems in (("entry", entries), ("target", targets)):
                elem = elems.get(index)
                marker = elem.find("Marker") if elem is not None else None
                vec = marker.find("ColVec3D") if marker is not None else None
                if vec is None:
                    points[role] = None
                    continue
                names.append(marker.get("description", ""))
                xyz = _colvec(vec, f"{source}: {role} #{index}")
                points[role] = world[:3, :3] @ xyz
            name = next((n for n in reversed(names) if n), "")
            markers.append(
                Marker(
                    name,
                    cortical_mm=points["target"],
                    scalp_mm=points["entry"],
                    kind="entry-target",
                    info={"index": index},
                )
            )
    elif root.tag == "TriggerMarkerList":
        for i, trigger in enumerate(root.iter("TriggerMarker")):
            matrix = trigger.find("Matrix4D")
            if matrix is None:
                raise FormatError(f"{source}: TriggerMarker #{i} has no Matrix4D.")
            where = f"{source}: pulse #{i}"
            raw = _matrix4d(matrix, where)
            tracked = not _is_untracked(raw)
            pose = (
                pose_from_file(world @ raw @ LOCALITE_FROM_CANONICAL, name=where)
                if tracked
                else None
            )
            responses = {
                v.get("key"): v.get("response") for v in trigger.iter("Value") if v.get("key")
            }
            info = {
                "tracked": tracked,
                "recording_time_ms": trigger.get("recordingTime"),
                "responses": responses,
            }
            markers.append(
                Marker(trigger.get("description", ""), pose=pose, kind="pulse", info=info)
            )
    else:
        raise FormatError(
            f"{source}: root element <{root.tag}> is not a Localite InstrumentMarkerList, "
            "EntryTargetList or TriggerMarkerList."
        )
    return NavigatorFile(
        format="localite-entrytarget" if root.tag == "EntryTargetList" else "localite",
        path=path,
        markers=tuple(markers),
        file_space=space,
        frame=default_frame(frame),
        meta={"root": root.tag, **{k: v for k, v in root.attrib.items() if k != "coordinateSpace"}},
    )
