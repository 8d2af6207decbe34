"""The plan in a clinic's terms: 10-20 positions, tape distances and intensity.

Design notes: ``docs/clinic.md``, section ``tmsplan.clinic.terms``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from tmsplan.errors import TmsplanError
from tmsplan.spaces import MNI_FRAME, Points

if TYPE_CHECKING:  # trimesh (with scipy and networkx) is imported where it is used
    import trimesh

__all__ = ["clinic_entries", "eeg1020_entry", "dose_entry", "head_cap_positions"]


def eeg1020_entry(
    positions: Any, entry_mm: np.ndarray, mesh: Any = None, *, beam_point_mm: Any = None
) -> dict:
    """The record's ``eeg1020`` entry: positions, landmarks, tapes, the target in cap terms.

    Parameters
    ----------
    positions : tmsplan.clinic.eeg1020.CapPositions
    entry_mm : (3,) float
        The target's scalp entry, same frame.
    mesh : trimesh.Trimesh, optional
        The scalp: where the Beam F3 distances land on it is recorded too.
    beam_point_mm : (3,) float, optional
        That point, already found (:func:`head_cap_positions`); ``mesh`` is then
        not needed.

    Returns
    -------
    dict
    """
    from tmsplan.clinic.beamf3 import BeamError
    from tmsplan.clinic.eeg1020 import target_in_cap

    entry = positions.describe()
    entry["target"] = target_in_cap(positions, entry_mm)
    try:
        beam = _beam_from_tape(positions)
        f3 = positions.position("F3")
        beam["f3_to_target_mm"] = round(float(np.linalg.norm(f3 - np.asarray(entry_mm))), 1)
        point = beam_point_mm
        if point is None and mesh is not None:
            point = _beam_point(positions, mesh)
        if point is not None:
            point = np.asarray(point, dtype=np.float64)
            beam["point_mm"] = np.round(point, 2).tolist()
            beam["point_to_f3_mm"] = round(float(np.linalg.norm(point - f3)), 1)
            beam["point_to_target_mm"] = round(float(np.linalg.norm(point - entry_mm)), 1)
        entry["beam_f3"] = beam
    except BeamError as exc:
        entry["beam_f3"] = {"error": str(exc)}
    return entry


def _beam_from_tape(positions: Any) -> dict:
    """The Beam F3 method fed with the head's own tape measures (raises ``BeamError``)."""
    from tmsplan.clinic.beamf3 import beam_f3

    tape = positions.tape_mm
    return beam_f3(
        tape["nasion_inion"] / 10.0, tape["tragus_tragus"] / 10.0, tape["circumference"] / 10.0
    )


def _beam_point(positions: Any, mesh: Any) -> np.ndarray | None:
    """Where the head's own Beam F3 distances land on its scalp (None: no Beam F3)."""
    from tmsplan.clinic.beamf3 import BeamError
    from tmsplan.clinic.eeg1020 import beam_point

    try:
        beam = _beam_from_tape(positions)
    except BeamError:
        return None
    return beam_point(mesh, positions, beam["x_cm"] * 10.0, beam["y_cm"] * 10.0)


def head_cap_positions(
    scalp: Any, landmarks: Any, *, head: Any = None
) -> tuple[Any, np.ndarray | None]:
    """A head's 10-10 positions and Beam F3 point, computed once per head and landmarks.

    Both depend on the head and its landmarks only, not on the target, so a
    cached head keeps them (:func:`tmsplan.head.cache.derived_once`).

    Parameters
    ----------
    scalp : tmsplan.head.scalp.ScalpSurface
    landmarks : tmsplan.clinic.eeg1020.Landmarks
        In the scalp's frame (:func:`tmsplan.clinic.eeg1020.head_landmarks`).
    head : tmsplan.head.cache.Head, optional
        The head of ``scalp``: the answer is cached with it.

    Returns
    -------
    positions : tmsplan.clinic.eeg1020.CapPositions
    beam_point : (3,) float64 or None
        Where the Beam F3 distances land on the scalp.

    Raises
    ------
    tmsplan.clinic.eeg1020.EegError
        The positions cannot be traced.
    """
    from tmsplan.clinic.eeg1020 import CapPositions, cap_positions

    def compute() -> dict:
        positions = cap_positions(
            scalp.mesh, landmarks, system="10-10", fov_boundary=scalp.fov_boundary
        )
        point = _beam_point(positions, scalp.mesh)
        return {
            "positions": positions.as_data(),
            "beam_point_mm": None if point is None else np.asarray(point, float).tolist(),
        }

    if head is None:
        data = compute()
    else:
        from tmsplan.head.cache import derived_once

        if head.scalp is not scalp:
            raise ValueError("head is not the head of scalp.")
        key = {
            "landmarks": landmarks.xyz.tolist(),
            "frame": landmarks.frame,
            "source": landmarks.source,
            "system": "10-10",
        }
        data = derived_once(head, "eeg1020", key, compute)
    point = data["beam_point_mm"]
    return CapPositions.from_data(data["positions"]), (
        None if point is None else np.asarray(point, dtype=np.float64)
    )


def dose_entry(
    motor_threshold: float,
    target_depth_mm: float,
    scalp_mesh: trimesh.Trimesh,
    entry_mm: np.ndarray,
    to_head: Callable[[Points], Points],
) -> dict:
    """The record's ``dose`` entry: the motor hotspot's depth and both dose estimates.

    Parameters
    ----------
    motor_threshold : float
        %MSO.
    target_depth_mm : float
        The plan's target depth (scalp entry to cortical target).
    scalp_mesh : trimesh.Trimesh
        Scalp in the plan's frame.
    entry_mm : (3,) float
        The target's scalp entry.
    to_head : callable
        Carries MNI :class:`~tmsplan.spaces.Points` into the plan's frame.

    Returns
    -------
    dict
    """
    import trimesh

    from tmsplan.clinic.dose import HAND_KNOB_MNI, fit_local_radius, sphere_dose, stokes_dose

    knob = to_head(Points(np.array(HAND_KNOB_MNI), MNI_FRAME)).xyz[0]
    closest, distance, _ = trimesh.proximity.closest_point(scalp_mesh, knob[None])
    motor_depth = float(distance[0])
    stokes = stokes_dose(motor_threshold, target_depth_mm, motor_depth)
    sphere = sphere_dose(
        motor_threshold,
        target_depth_mm,
        motor_depth,
        target_radius_mm=fit_local_radius(scalp_mesh.vertices, entry_mm),
        motor_radius_mm=fit_local_radius(scalp_mesh.vertices, closest[0]),
    )
    return {
        "motor_threshold_percent": stokes["motor_threshold_percent"],
        "motor_hotspot": {
            "cortical_mni_mm": list(HAND_KNOB_MNI),
            "cortical_mm": np.round(knob, 2).tolist(),
            "scalp_mm": np.round(closest[0], 2).tolist(),
            "depth_mm": round(motor_depth, 2),
            "note": "left hand knob of M1 (where the motor threshold of the right hand is "
            "measured), carried like the target",
        },
        "target_depth_mm": stokes["target_depth_mm"],
        "motor_depth_mm": stokes["motor_depth_mm"],
        "method": "stokes",
        "adjusted_percent_mso": stokes["adjusted_percent_mso"],
        "achievable": stokes["achievable"],
        "methods": {"stokes": stokes, "sphere": sphere},
        "depth_note": "both depths are distances from the nearest scalp point to the planned "
        "coordinate (the target, the hand knob), measured the same way at both sites; Stokes "
        "et al. measured scalp to the cortical surface",
    }


def clinic_entries(
    scalp: Any,
    placement: Any,
    *,
    mni_to_subject: Any = None,
    to_head: Callable[[Points], Points] | None = None,
    landmarks: Any = None,
    motor_threshold: float | None = None,
    warnings: list[str],
    head: Any = None,
) -> dict:
    """Record keys ``eeg1020`` and ``dose`` for one plan (``dose`` only with a threshold).

    Positions that cannot be placed automatically (defaced head, no transform)
    become a warning; landmarks given by the user must work or raise.

    Parameters
    ----------
    scalp : tmsplan.head.scalp.ScalpSurface
    placement : tmsplan.coil.placement.CoilPlacement
    mni_to_subject : tmsplan.xfm.transforms.MniToSubject, optional
    to_head : callable, optional
        MNI points -> plan frame (needed for the dose in a patient).
    landmarks : path, optional
        ``--landmarks`` TSV.
    motor_threshold : float, optional
        ``--motor-threshold`` (%MSO).
    warnings : list of str
        The plan's warnings (appended to).
    head : tmsplan.head.cache.Head, optional
        The head of ``scalp``: its 10-10 positions are computed once and cached with it.

    Returns
    -------
    dict
        ``{"eeg1020": ..., "dose": ...}`` (values may be None).
    """
    from tmsplan.clinic.dose import check_dose_inputs
    from tmsplan.clinic.eeg1020 import EegError, head_landmarks

    entry = placement.entry.xyz[0]
    out: dict[str, Any] = {"eeg1020": None, "dose": None}
    if motor_threshold is not None:
        check_dose_inputs(motor_threshold, 1.0, 1.0)  # the threshold itself: refuse early
    try:
        given = head_landmarks(scalp, mni_to_subject=mni_to_subject, landmarks=landmarks)
        positions, beam_point_mm = head_cap_positions(scalp, given, head=head)
    except EegError as exc:
        if landmarks is not None:
            raise
        warnings.append(f"10-20 positions were not computed: {exc}")
    else:
        out["eeg1020"] = eeg1020_entry(positions, entry, beam_point_mm=beam_point_mm)
        warnings.extend(f"10-20: {note}" for note in positions.notes)
    if motor_threshold is not None:
        if to_head is None and scalp.frame != MNI_FRAME:
            warnings.append(
                "the depth-adjusted intensity needs the motor hotspot's depth, which needs an "
                "MNI->T1 transform; it was not computed."
            )
        else:
            try:
                out["dose"] = dose_entry(
                    motor_threshold,
                    placement.depth_mm,
                    scalp.mesh,
                    entry,
                    to_head or (lambda points: points),
                )
            except TmsplanError as exc:
                warnings.append(f"the depth-adjusted intensity was not computed: {exc}")
            else:
                if not out["dose"]["achievable"]:
                    warnings.append(
                        f"the depth-adjusted intensity ({out['dose']['adjusted_percent_mso']:.1f} "
                        "%MSO) exceeds the stimulator's maximum: not achievable with this coil."
                    )
    return out
