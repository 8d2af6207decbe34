"""Planning step 3: place the coil over the final target and check the entry.

Also the ranked candidates' poses and the clinic's terms (10-20 positions, dose).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from tmsplan.coil.catalogue import deep_target_verdict, get_coil
from tmsplan.coil.placement import (
    DEFAULT_COIL_SKIN_DISTANCE_MM,
    DEFAULT_HANDLE_ANGLE_DEG,
    DEFAULT_MIDLINE_MM,
    DEFAULT_NORMAL_RADIUS_MM,
    CoilPlacement,
    place_coil,
)
from tmsplan.errors import ActivationError
from tmsplan.head.cache import Head
from tmsplan.head.checks import check_entry, image_warnings
from tmsplan.pipeline.choose import CarriedTarget, carry_candidate
from tmsplan.pipeline.result import Target
from tmsplan.pipeline.space import HeadSpace, head_directions
from tmsplan.spaces import MNI_FRAME, SUBJECT_FRAME, Points

FOV_CUT_WARNING_MM = 20.0
"""Warn when the scalp entry is this close to where the field of view cuts the head."""


@dataclass(frozen=True)
class CoilSettings:
    """The coil and how it is placed (checked by :func:`coil_settings`).

    Attributes
    ----------
    coil : tmsplan.coil.catalogue.Coil
    coil_skin_distance_mm, handle_angle_deg, max_depth_mm, normal_radius_mm : float
        See :func:`tmsplan.coil.placement.place_coil`.
    max_depth_source : str
        Where ``max_depth_mm`` came from (``--max-depth`` or the coil's reach).
    """

    coil: Any
    coil_skin_distance_mm: float = DEFAULT_COIL_SKIN_DISTANCE_MM
    handle_angle_deg: float = DEFAULT_HANDLE_ANGLE_DEG
    max_depth_mm: float = 0.0
    normal_radius_mm: float = DEFAULT_NORMAL_RADIUS_MM
    max_depth_source: str = "--max-depth"


def _check_parameters(**values: float) -> None:
    """Refuse non-finite or out-of-range planning parameters, naming the parameter.

    The message names the Python parameter (``max_depth_mm must be ...``); the
    command line shows its flag instead (``--max-depth must be ...``).
    """
    limits = {
        "threshold": (0.0, None),
        "coil_skin_distance_mm": (0.0, 50.0),
        "handle_angle_deg": (-180.0, 180.0),
        "max_depth_mm": (1.0, 150.0),
        "normal_radius_mm": (1.0, 60.0),
    }
    for key, value in values.items():
        low, high = limits[key]
        number = isinstance(value, (int, float, np.integer, np.floating))
        ok = number and not isinstance(value, bool) and np.isfinite(value) and value >= low
        if not ok or (high is not None and value > high):
            upper = f" and at most {high:g}" if high is not None else ""
            raise ActivationError(
                f"{key} must be a finite number of at least {low:g}{upper}, got {value!r}."
            )


def coil_settings(
    coil: str | None = None,
    *,
    threshold: float,
    coil_skin_distance_mm: float = DEFAULT_COIL_SKIN_DISTANCE_MM,
    handle_angle_deg: float = DEFAULT_HANDLE_ANGLE_DEG,
    max_depth_mm: float | None = None,
    normal_radius_mm: float = DEFAULT_NORMAL_RADIUS_MM,
) -> CoilSettings:
    """Look the coil up and check the numbers (with the map ``threshold``).

    Parameters
    ----------
    coil : str, optional
        Coil id (default ``"fig8_70"``).
    threshold : float
        The map threshold, checked here with the others.
    coil_skin_distance_mm, handle_angle_deg, normal_radius_mm : float
    max_depth_mm : float, optional
        Default: the coil's reach.

    Returns
    -------
    CoilSettings
    """
    coil_obj = get_coil(coil)
    source = "--max-depth"
    if max_depth_mm is None:
        max_depth_mm, source = coil_obj.reach_mm, f"reach of coil {coil_obj.id}"
    _check_parameters(
        threshold=threshold,
        coil_skin_distance_mm=coil_skin_distance_mm,
        handle_angle_deg=handle_angle_deg,
        max_depth_mm=max_depth_mm,
        normal_radius_mm=normal_radius_mm,
    )
    return CoilSettings(
        coil_obj, coil_skin_distance_mm, handle_angle_deg, max_depth_mm, normal_radius_mm, source
    )


def _hemisphere_sign(x_mni: float) -> float:
    if abs(x_mni) <= DEFAULT_MIDLINE_MM:
        return 0.0
    return float(np.sign(x_mni))


def _hemisphere_name(sign: float) -> str:
    return {1.0: "right", -1.0: "left", 0.0: "midline"}[float(sign)]


def _distance_to_cut(scalp: Any, point: np.ndarray) -> float:
    """Distance (mm) from ``point`` to the nearest field-of-view-cut vertex (inf if none)."""
    cut = scalp.vertices[np.asarray(scalp.fov_boundary, dtype=bool)]
    if cut.size == 0:
        return float("inf")
    return float(np.min(np.linalg.norm(cut - point, axis=1)))


def _place(point: Points, head: Head, settings: CoilSettings, hemi: float, directions: dict):
    return place_coil(
        point,
        None,  # the head's proximity queries hold the surface
        frame=head.frame,
        proximity=head.proximity,
        hemisphere_sign=hemi,
        coil_skin_distance_mm=settings.coil_skin_distance_mm,
        handle_angle_deg=settings.handle_angle_deg,
        max_depth_mm=settings.max_depth_mm,
        normal_radius_mm=settings.normal_radius_mm,
        coil_label=f"the {settings.coil.name}",
        **directions,
    )


@dataclass(frozen=True)
class Placed:
    """The chosen target placed on the head (see :func:`place_target`).

    Attributes
    ----------
    target : Target
        The chosen target (role ``"chosen"``, rank 1).
    placement : tmsplan.coil.placement.CoilPlacement
    directions : dict
        Head directions used by the handle rule (for the candidates).
    deep_verdict : dict or None
        The deep-target verdict when the target is beyond the coil's reach.
    """

    target: Target
    placement: CoilPlacement
    directions: dict
    deep_verdict: dict | None = None


def place_target(
    final: CarriedTarget,
    space: HeadSpace,
    head: Head,
    settings: CoilSettings,
    *,
    name: str,
    roi: Any = None,
    roi_id: str | None = None,
    roi_label: str = "the ROI",
) -> tuple[Placed, list[str]]:
    """Place the coil over the final target and check the entry point.

    Parameters
    ----------
    final : CarriedTarget
        From :func:`tmsplan.pipeline.finalise_target`.
    space : HeadSpace
    head : Head
        The head of ``space`` (:func:`tmsplan.pipeline.head_for`).
    settings : CoilSettings
    name : str
        The target's name (messages, exports).
    roi : tmsplan.target.atlas.Roi, optional
        Its hemisphere is compared with the target's.
    roi_id : str, optional
        The ROI id given (named by the deep-target verdict).
    roi_label : str

    Returns
    -------
    placed : Placed
    warnings : list of str
        Hemisphere, head image, entry, field-of-view, reach and handle warnings.
    """
    warnings: list[str] = []
    target_mni = final.target_mni
    hemi_x = target_mni[0] if target_mni is not None else final.target.xyz[0, 0]
    hemi = _hemisphere_sign(hemi_x)
    expected_sign = {"L": -1.0, "R": 1.0}.get(roi.hemisphere[:1].upper()) if roi else None
    if expected_sign is not None and hemi not in (0.0, expected_sign):
        warnings.append(
            f"the target (MNI x = {hemi_x:.1f} mm) is on the {_hemisphere_name(hemi)} "
            f"hemisphere but {roi_label} is {_hemisphere_name(expected_sign)}."
        )
    directions = head_directions(space, target_mni)
    scalp = head.scalp
    warnings.extend(image_warnings(scalp))
    placement = _place(final.target, head, settings, hemi, directions)
    entry_check = check_entry(
        placement.entry.xyz[0],
        placement.normal,
        scalp,
        head.skin_voxels,  # None only for a surface without a skin level
        brain_img=final.brain_img,
        name=name,
        proximity=head.proximity,
    )
    warnings.extend(entry_check.warnings)
    if not entry_check.on_outer_skin:
        reason = "the scalp entry is not on the outer skin (head tissue lies beyond it)"
        placement = replace(
            placement,
            reachable=False,
            unreachable_reason="; ".join(filter(None, [placement.unreachable_reason, reason])),
        )
    cut_distance = _distance_to_cut(scalp, placement.entry.xyz[0])
    if cut_distance < FOV_CUT_WARNING_MM:
        warnings.append(
            f"target {name!r}: the scalp entry is {cut_distance:.0f} mm from where the image's "
            "field of view (or a defacing mask) cuts the head; the surface there may be "
            "incomplete, check the entry point on the pictures."
        )
    if not placement.reachable:
        warnings.append(f"target {name!r} is NOT reachable: {placement.unreachable_reason}.")
    deep_verdict = None
    if placement.depth_mm > settings.max_depth_mm:
        deep_verdict = deep_target_verdict(
            placement.depth_mm,
            settings.coil,
            max_depth_mm=settings.max_depth_mm,
            roi_id=roi_id,
        )
        warnings.append(f"target {name!r}: {deep_verdict['text']}")
    if placement.handle_how == "inferior-fallback":
        warnings.append(
            f"target {name!r}: the scalp there faces backwards, so the handle points down "
            "instead of backwards."
        )
    checks = {"snap_distance_mm": round(final.snap_mm, 3), "entry_check": entry_check.describe()}
    if final.given_move_mm is not None:
        checks["given_target_moved_mm"] = round(final.given_move_mm, 3)
    if final.tissue is not None:
        checks["tissue"] = final.tissue
    target = Target.from_placement(name, placement, target_mni, checks=checks)
    return Placed(target, placement, directions, deep_verdict), warnings


def place_candidates(
    ranked: tuple[dict, ...],
    source_frame: str,
    space: HeadSpace,
    head: Head,
    settings: CoilSettings,
    *,
    name: str,
    directions: dict,
    roi: Any = None,
    final: CarriedTarget | None = None,
    snap: bool = True,
) -> tuple[Target, ...]:
    """Coil poses for the ranked alternatives (ranks 2, 3, ...).

    Each candidate is carried into the head by the chosen target's rule
    (:func:`tmsplan.pipeline.carry_candidate`): in a T1 reached by a transform
    it is snapped into the brain and moved to grey matter when the chosen one
    is, and the same checks are recorded (``snap_distance_mm``, ``tissue``).

    Parameters
    ----------
    ranked : tuple of dict
        Candidates from the selection (``target_mm`` in ``source_frame``,
        ``score``, ``why``, evidence).
    source_frame : str
        Frame of the candidates (MNI152 or the T1's).
    space : HeadSpace
    head : Head
    settings : CoilSettings
    name : str
        The chosen target's name (candidates are ``<name>_candidate<rank>``).
    directions : dict
        The chosen target's head directions (:attr:`Placed.directions`).
    roi : tmsplan.target.atlas.Roi, optional
        Adds each candidate's distance to the ROI centre.
    final : CarriedTarget, optional
        The chosen target after :func:`tmsplan.pipeline.grey_matter_target`
        (None: candidates are only carried, as on the embedded head).
    snap : bool
        Move a candidate in white matter or CSF to grey matter, as the chosen
        target (``--no-snap`` keeps them all as carried).

    Returns
    -------
    tuple of Target
    """
    out = []
    for rank, cand in enumerate(ranked, start=2):
        point = Points(np.asarray(cand["target_mm"], dtype=np.float64), source_frame)
        head_point, cand_mni, checks = carry_candidate(point, space, head, final=final, snap=snap)
        hemi_x = cand_mni[0] if cand_mni is not None else head_point.xyz[0, 0]
        cand_place = _place(head_point, head, settings, _hemisphere_sign(hemi_x), directions)
        evidence = {"score": cand["score"], "why": cand["why"]}
        keys = ("value", "r", "z", "cluster_size_voxels")
        evidence.update({key: cand[key] for key in keys if key in cand})
        if roi is not None and cand_mni is not None:
            evidence["distance_to_roi_centre_mm"] = round(
                float(np.linalg.norm(cand_mni - roi.centre_mni)), 3
            )
        out.append(
            Target.from_placement(
                f"{name}_candidate{rank}",
                cand_place,
                cand_mni,
                role="candidate",
                rank=rank,
                checks=checks,
                evidence=evidence,
            )
        )
    return tuple(out)


def clinic_positions(
    head: Head,
    placement: CoilPlacement,
    space: HeadSpace,
    *,
    landmarks: Any = None,
    motor_threshold: float | None = None,
) -> tuple[dict, list[str]]:
    """The plan in a clinic's terms: 10-20 positions, tape distances, intensity.

    Parameters
    ----------
    head : Head
    placement : tmsplan.coil.placement.CoilPlacement
    space : HeadSpace
    landmarks : path, optional
    motor_threshold : float, optional

    Returns
    -------
    entries : dict
        Record keys ``eeg1020`` and ``dose`` (:func:`tmsplan.clinic.terms.clinic_entries`).
    warnings : list of str
    """
    from tmsplan.clinic.terms import clinic_entries

    warnings: list[str] = []
    entries = clinic_entries(
        head.scalp,
        placement,
        mni_to_subject=space.mni_to_subject if space.carried else None,
        to_head=space.to_head if (space.carried or space.frame == MNI_FRAME) else None,
        landmarks=landmarks,
        motor_threshold=motor_threshold,
        warnings=warnings,
        head=head,
    )
    return entries, warnings


def candidate_frame(conn: Any, activation_space: str) -> str:
    """Frame of the ranked candidates: MNI for connectivity or an MNI map, else the T1's.

    Parameters
    ----------
    conn : tmsplan.target.connectivity.ConnectivityTarget or None
    activation_space : {"MNI", "T1w"}

    Returns
    -------
    str
    """
    return MNI_FRAME if conn is not None or activation_space == "MNI" else SUBJECT_FRAME
