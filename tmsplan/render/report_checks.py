"""What the report checks on a plan, as plain text and numbers (no HTML).

The T1 still there and unchanged, the handle angle, each target's automatic checks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from tmsplan.errors import RecordError
from tmsplan.io.images import file_sha256
from tmsplan.io.record import target_pose

__all__ = ["check_record_t1", "handle_angle", "target_checks"]


def check_record_t1(record: Mapping) -> list[str]:
    """Check that the T1 image a plan was made on is still there and unchanged.

    Parameters
    ----------
    record : dict
        Plan record; uses ``record["t1"]["path"]`` and ``["sha256"]``.

    Returns
    -------
    list of str
        Warnings (empty when all is well): the file's checksum differs from the
        one recorded, or no checksum was recorded.

    Raises
    ------
    RecordError
        The record names no T1 file, or the file does not exist.
    """
    t1 = record.get("t1") or {}
    path = t1.get("path")
    if not path:
        raise RecordError(
            "the plan record names no T1 image file (t1.path is empty), so its slices cannot "
            "be drawn; re-run 'tmsplan plan' with the T1 given as a file."
        )
    if not Path(path).is_file():
        raise RecordError(
            f"the T1 image this plan was made on, '{path}', does not exist (moved or "
            "deleted); put it back at that path, or re-run 'tmsplan plan' with its new location."
        )
    recorded = t1.get("sha256")
    if not recorded:
        return [
            f"the plan record holds no checksum of the T1 image '{path}', so it cannot be "
            "verified that the pictures show the image the plan was made on."
        ]
    actual = file_sha256(path)
    if actual != recorded:
        return [
            f"THE T1 IMAGE HAS CHANGED since the plan was made: '{path}' has sha256 "
            f"{actual[:12]}..., the plan recorded {recorded[:12]}...; the target may not fit "
            "this image. Re-run 'tmsplan plan' on the current image before using this plan."
        ]
    return []


def handle_angle(target: Mapping) -> tuple[float, str]:
    """Angle of the coil handle from "straight back", in the scalp tangent plane.

    Parameters
    ----------
    target : dict
        One record target (``coil_matrix``; ``scalp_normal`` when present,
        otherwise minus coil z is the outward normal).

    Returns
    -------
    angle_deg : float
        Unsigned angle in [0, 180] between the handle (coil y) and the
        posterior direction projected on the scalp tangent plane; NaN where
        the scalp faces straight back (no such projection).
    description : str
        The handle's main anatomical directions, e.g. ``"backwards, left, down"``.
    """
    matrix = target_pose(target)
    handle = matrix[:3, 1]
    normal = np.asarray(target.get("scalp_normal", -matrix[:3, 2]), dtype=np.float64)
    normal = normal / np.linalg.norm(normal)
    back = np.array([0.0, -1.0, 0.0])
    back = back - back.dot(normal) * normal
    if np.linalg.norm(back) < 1e-6:
        angle = float("nan")
    else:
        back = back / np.linalg.norm(back)
        angle = math.degrees(math.acos(float(np.clip(handle @ back, -1.0, 1.0))))
    words = []
    for axis, (positive, negative) in enumerate(
        (("right", "left"), ("forwards", "backwards"), ("up", "down"))
    ):
        if abs(handle[axis]) >= 0.3:
            words.append((abs(handle[axis]), positive if handle[axis] > 0 else negative))
    words.sort(reverse=True)
    return angle, ", ".join(word for _, word in words)


def _hemisphere_check(record: Mapping, target: Mapping) -> tuple[str, bool] | None:
    hemi = str((record.get("roi") or {}).get("hemisphere") or "")[:1].upper()
    mni = target.get("cortical_mni_mm")
    if hemi not in ("L", "R") or mni is None:
        return None
    x = float(mni[0])
    found = "left" if x < 0 else "right"
    wanted = "left" if hemi == "L" else "right"
    return (f"target x (MNI) = {x:.1f} mm: {found} hemisphere; ROI: {wanted}", found == wanted)


def _roi_check(record: Mapping, target: Mapping) -> tuple[str, bool] | None:
    roi = record.get("roi") or {}
    mni = target.get("cortical_mni_mm")
    if roi.get("centre_mni") is None or roi.get("radius_mm") is None or mni is None:
        return None
    distance = float(np.linalg.norm(np.subtract(mni, roi["centre_mni"])))
    radius = float(roi["radius_mm"])
    return (f"{distance:.1f} mm from the ROI centre (radius {radius:g} mm)", distance <= radius)


def target_checks(
    record: Mapping, target: Mapping, geometry: Mapping | None
) -> list[tuple[str, bool]]:
    """The automatic checks of one target, as (text, passed) pairs.

    Parameters
    ----------
    record : dict
        Plan record (``roi`` gives the hemisphere and the sphere).
    target : dict
        One of its targets.
    geometry : dict or None
        The target's :func:`tmsplan.render.checks.scene_geometry` entry: adds
        the entry-to-scalp, coil-axis and coil-clearance checks.

    Returns
    -------
    list of (str, bool)
    """
    checks = [
        check
        for check in (_hemisphere_check(record, target), _roi_check(record, target))
        if check is not None
    ]
    if geometry is not None:
        checks.append(
            (
                f"scalp entry {geometry['entry_to_scalp_mm']:.2f} mm from the scalp surface drawn",
                geometry["entry_to_scalp_mm"] <= 1.0,
            )
        )
        checks.append(
            (
                f"coil z vs outward scalp normal: cosine {geometry['coil_z_dot_outward']:+.3f} "
                "(-1 = straight in)",
                geometry["coil_z_dot_outward"] <= -0.5,
            )
        )
        if bool(target.get("reachable", True)):
            checks.append(
                (
                    f"drawn coil clears the scalp by {geometry['coil_clearance_mm']:.1f} mm",
                    geometry["coil_clearance_mm"] >= -2.0,
                )
            )
    return checks
