"""ANT Neuro visor2: ``.mrk`` JSON coil targets.

Design notes: ``docs/exports.md``, section ``tmsplan.export.visor2``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tmsplan import __version__
from tmsplan.errors import FormatError, RecordError, SpaceError
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

__all__ = ["visor2_fingerprint", "check_fingerprint", "write_visor2", "build_visor2", "read_visor2"]

_FINGERPRINT_ATOL = 1e-5


def visor2_fingerprint(t1: dict) -> dict:
    """The ``AssociatedImageInfo`` block for a T1 description.

    Parameters
    ----------
    t1 : dict
        ``record["t1"]`` (:func:`tmsplan.io.record.t1_description`).

    Returns
    -------
    dict
        ``{"NIfTI_quatern": [b, c, d], "NIfTI_qoffset": [x, y, z],
        "NIfTI_pixdim": [qfac, dx, dy, dz]}``.

    Raises
    ------
    RecordError
        Header fields missing.
    """
    try:
        quatern = [float(v) for v in t1["quatern_bcd"]]
        qoffset = [float(v) for v in t1["qoffset_xyz"]]
        pixdim = [float(t1["qfac"]), *(float(v) for v in t1["pixdim"])]
    except (KeyError, TypeError, ValueError):
        raise RecordError(
            "record['t1'] lacks quatern_bcd/qoffset_xyz/qfac/pixdim; rebuild it with "
            "tmsplan.io.record.t1_description."
        ) from None
    if len(quatern) != 3 or len(qoffset) != 3 or len(pixdim) != 4:
        raise RecordError("record['t1'] has malformed qform fields (need 3, 3 and 1 + 3 values).")
    return {"NIfTI_quatern": quatern, "NIfTI_qoffset": qoffset, "NIfTI_pixdim": pixdim}


def _close_quaternion(a: np.ndarray, b: np.ndarray) -> bool:
    if np.allclose(a, b, atol=_FINGERPRINT_ATOL):
        return True
    # q and -q are the same rotation; with a unit (b, c, d) the scalar part is 0
    # and the sign of (b, c, d) is arbitrary.
    return bool(np.allclose(a, -b, atol=_FINGERPRINT_ATOL) and abs(1 - a @ a) < 1e-5)


def check_fingerprint(found: dict, t1: dict, *, source: str = "visor2 file") -> None:
    """Check a visor2 ``AssociatedImageInfo`` block against a T1 description.

    Parameters
    ----------
    found : dict
        The file's ``AssociatedImageInfo`` (``NIfTI_quatern``, ``NIfTI_qoffset``,
        ``NIfTI_pixdim``).
    t1 : dict
        ``record["t1"]`` (:func:`tmsplan.io.record.t1_description`).
    source : str, keyword-only
        Name of the file, for error messages.

    Raises
    ------
    FormatError
        ``found`` lacks the NIfTI qform fields or holds values that are not numbers.
    RecordError
        ``t1`` lacks its qform fields (see :func:`visor2_fingerprint`).
    SpaceError
        The markers were made for an image with another qform/voxel size.
    """
    expected = visor2_fingerprint(t1)
    try:
        quat = np.asarray(found["NIfTI_quatern"], float)
        offset = np.asarray(found["NIfTI_qoffset"], float)
        pixdim = np.asarray(found["NIfTI_pixdim"], float)
    except (KeyError, TypeError, ValueError):
        raise FormatError(f"{source}: AssociatedImageInfo lacks the NIfTI qform fields.") from None
    pix = pixdim.copy()
    if pix.shape == (4,) and pix[0] == 0:  # qfac 0 in a header means 1
        pix[0] = 1.0
    checks = {
        "quaternion": quat.shape == (3,)
        and _close_quaternion(quat, np.asarray(expected["NIfTI_quatern"])),
        "qoffset": offset.shape == (3,)
        and np.allclose(offset, expected["NIfTI_qoffset"], atol=_FINGERPRINT_ATOL),
        "pixdim": pix.shape == (4,)
        and np.allclose(pix, expected["NIfTI_pixdim"], atol=_FINGERPRINT_ATOL),
    }
    bad = [k for k, ok in checks.items() if not ok]
    if bad:
        raise SpaceError(
            f"{source}: the markers were made for another image ({', '.join(bad)} differ: file "
            f"{found}, T1 {expected}). Use the T1 the markers were planned on."
        )


def write_visor2(
    record: dict, path: str | Path, *, space: str = "RAS", overwrite: bool = False
) -> list[Path]:
    """Write the reachable targets as an ANT visor2 ``.mrk`` file.

    Parameters
    ----------
    record : dict
        Plan record; ``record["t1"]`` gives the image fingerprint and
        ``record["parameters"]["coil"]`` (if a string) the coil type.
    path : str or pathlib.Path
    space : {"RAS"}, keyword-only
    overwrite : bool, keyword-only

    Returns
    -------
    list of pathlib.Path
    """
    return write_files(build_visor2(record, path, space=space), overwrite=overwrite)


def build_visor2(record: dict, path: str | Path, *, space: str = "RAS") -> Documents:
    """The ``.mrk`` JSON of :func:`write_visor2`, in memory.

    Same arguments and checks as :func:`write_visor2`, without ``overwrite``;
    returns each file's ``(path, text)``, main file first.
    """
    check_space("visor2", space)
    targets = record_targets(record, "visor2")
    if not isinstance(record.get("t1"), dict):
        raise RecordError("record['t1'] is missing; visor2 needs the T1's qform fingerprint.")
    fingerprint = visor2_fingerprint(record["t1"])
    coil = (record.get("parameters") or {}).get("coil")
    coil_type = coil if isinstance(coil, str) else ""
    doc: dict[str, Any] = {
        "Configuration": {
            "SourceInfo": {"AppName": "tmsplan", "AppVersion": __version__},
            "AssociatedImageInfo": fingerprint,
        },
        "TargetMarkers": [
            {
                "CoilTarget": {
                    "Name": clean_text(target.name),
                    "CoordinateSystem": "ASSOCIATED_IMAGE",
                    "PositionalUnit": "mm",
                    "CoilAxesConvention": "simnibs",
                    "CoilInfo": {"Type": coil_type, "Id": ""},
                    "CoilPose": {"RigidTransformMatrix4x4": target.pose.tolist()},
                }
            }
            for target in targets
        ],
    }
    text = json_text(doc, "visor2")
    return [(Path(path), text)]


def read_visor2(
    path: str | Path, *, t1: dict | None = None, frame: str | None = None
) -> NavigatorFile:
    """Read an ANT visor2 ``.mrk`` file.

    Parameters
    ----------
    path : str or pathlib.Path
    t1 : dict, optional, keyword-only
        A T1 description (``record["t1"]``); when given, the file's image
        fingerprint must match it.
    frame : str, optional, keyword-only
        World frame name of the markers (default ``"T1w"``).

    Returns
    -------
    NavigatorFile
        ``meta["fingerprint"]`` holds the parsed ``AssociatedImageInfo``
        (``quatern_bcd``, ``qoffset_xyz``, ``qfac``, ``pixdim``).

    Raises
    ------
    FormatError
        Not a visor2 marker file, another axes convention, or units not mm.
    SpaceError
        Fingerprint does not match ``t1``.
    PoseError
        A sheared, scaled or mirrored rotation.
    """
    path = Path(path)
    source = str(path)
    doc = json_document(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("TargetMarkers"), list):
        raise FormatError(f"{source}: no 'TargetMarkers' list; not a visor2 .mrk file.")
    config = doc.get("Configuration")
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise FormatError(
            f"{source}: Configuration is {type(config).__name__}, expected a JSON object."
        )
    info = config.get("AssociatedImageInfo")
    fingerprint = None
    if info is not None and not isinstance(info, dict):
        raise FormatError(
            f"{source}: AssociatedImageInfo is {type(info).__name__}, expected a JSON object "
            "with NIfTI_quatern, NIfTI_qoffset and NIfTI_pixdim."
        )
    if isinstance(info, dict):
        try:
            pixdim = [float(v) for v in info["NIfTI_pixdim"]]
            quatern = [float(v) for v in info["NIfTI_quatern"]]
            qoffset = [float(v) for v in info["NIfTI_qoffset"]]
        except (KeyError, TypeError, ValueError):
            raise FormatError(f"{source}: malformed AssociatedImageInfo {info!r:.200}.") from None
        if len(quatern) != 3 or len(qoffset) != 3 or len(pixdim) != 4:
            raise FormatError(
                f"{source}: AssociatedImageInfo needs 3 NIfTI_quatern, 3 NIfTI_qoffset and 4 "
                f"NIfTI_pixdim values, got {len(quatern)}, {len(qoffset)} and {len(pixdim)}."
            )
        fingerprint = {
            "quatern_bcd": quatern,
            "qoffset_xyz": qoffset,
            "qfac": pixdim[0],
            "pixdim": pixdim[1:],
        }
    if t1 is not None:
        if info is None:
            raise FormatError(f"{source}: no AssociatedImageInfo to check against the T1.")
        check_fingerprint(info, t1, source=source)
    markers = []
    for i, item in enumerate(doc["TargetMarkers"]):
        target = item.get("CoilTarget") if isinstance(item, dict) else None
        if not isinstance(target, dict):
            raise FormatError(f"{source}: TargetMarkers[{i}] has no CoilTarget.")
        name = str(target.get("Name", ""))
        where = f"{source}: marker #{i} ({name!r})"
        convention = target.get("CoilAxesConvention", "simnibs")
        if convention != "simnibs":
            raise FormatError(
                f"{where}: coil axes convention {convention!r}; tmsplan reads 'simnibs'."
            )
        unit = target.get("PositionalUnit", "mm")
        if unit != "mm":
            raise FormatError(f"{where}: positional unit {unit!r}; tmsplan reads 'mm'.")
        system = target.get("CoordinateSystem", "ASSOCIATED_IMAGE")
        if system != "ASSOCIATED_IMAGE":
            raise FormatError(f"{where}: coordinate system {system!r}; expected ASSOCIATED_IMAGE.")
        coil_pose = target.get("CoilPose")
        if not isinstance(coil_pose, dict):
            raise FormatError(
                f"{where}: CoilPose is {type(coil_pose).__name__}, expected a JSON object with "
                "RigidTransformMatrix4x4."
            )
        rows = coil_pose.get("RigidTransformMatrix4x4")
        if not (
            isinstance(rows, list)
            and len(rows) == 4
            and all(isinstance(row, list) and len(row) == 4 for row in rows)
        ):
            raise FormatError(
                f"{where}: RigidTransformMatrix4x4 must be a list of 4 rows of 4 numbers, got "
                f"{rows!r:.120}."
            )
        mat = np.array([[parse_float(v, where=where) for v in row] for row in rows])
        pose = pose_from_file(mat, name=where)
        markers.append(
            Marker(name, pose=pose, kind="target", info={"coil": target.get("CoilInfo")})
        )
    return NavigatorFile(
        format="visor2",
        path=path,
        markers=tuple(markers),
        file_space="RAS",
        frame=default_frame(frame),
        meta={"source": config.get("SourceInfo"), "fingerprint": fingerprint},
    )
