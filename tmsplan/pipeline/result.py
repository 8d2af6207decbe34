"""Planning step 4: the typed result (:class:`Target`) and the record built from it.

:func:`build_record` is the one place the ``target.json`` dict is assembled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tmsplan import __version__
from tmsplan.coil.placement import COIL_AXES, DEFAULT_MIDLINE_MM, HANDLE_RULE, CoilPlacement
from tmsplan.io.images import ImageLike, file_sha256, image_source
from tmsplan.io.record import DISCLAIMER, SCHEMA_VERSION, t1_description
from tmsplan.spaces import MNI_FRAME, SUBJECT_FRAME, CoilPoses, Points


def _vector(value: Any) -> np.ndarray | None:
    if value is None:
        return None
    arr = np.array(value, dtype=np.float64).reshape(3)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True)
class Target:
    """One planned target: cortical point, scalp entry and coil pose, in one frame.

    Attributes
    ----------
    name : str
    cortical : Points
        ``(1, 3)`` cortical target (mm, RAS+ of :attr:`frame`).
    entry : Points
        ``(1, 3)`` scalp entry point.
    coil_pose : CoilPoses
        ``(1, 4, 4)`` coil pose (columns: x, y = handle, z = into the head, centre).
    depth_mm : float
        Entry-to-target distance.
    handle : (3,) float64
        Unit handle direction.
    normal : (3,) float64
        Outward scalp normal at the entry.
    coil_skin_distance_mm : float
    reachable : bool
    unreachable_reason : str or None
    handle_rule_applied : str
        ``"rule"``, ``"midline"`` or ``"inferior-fallback"``.
    normal_target_angle_deg : float
    cortical_mni : (3,) float64 or None
        The cortical target in MNI152 (None without a transform).
    role : {"chosen", "candidate"}
    rank : int
        1 for the chosen target, 2, 3, ... for the candidates.
    checks : dict
        Checks of the target (``snap_distance_mm``, ``entry_check``,
        ``given_target_moved_mm``, ``tissue``); a candidate carries the same
        ``snap_distance_mm`` and ``tissue`` as the chosen target, no entry check.
    evidence : dict
        Why a candidate ranks where it does (``score``, ``why``, ``value``, ...).
    """

    name: str
    cortical: Points
    entry: Points
    coil_pose: CoilPoses
    depth_mm: float
    handle: np.ndarray
    normal: np.ndarray
    coil_skin_distance_mm: float
    reachable: bool
    unreachable_reason: str | None = None
    handle_rule_applied: str = "rule"
    normal_target_angle_deg: float = 0.0
    cortical_mni: np.ndarray | None = None
    role: str = "chosen"
    rank: int = 1
    checks: dict = field(default_factory=dict)
    evidence: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key in ("handle", "normal", "cortical_mni"):
            object.__setattr__(self, key, _vector(getattr(self, key)))

    @property
    def frame(self) -> str:
        """World frame of the points and the pose."""
        return self.coil_pose.frame

    @property
    def coil_matrix(self) -> np.ndarray:
        """``(4, 4)`` float64 coil pose in :attr:`frame`."""
        return self.coil_pose.matrices[0]

    @classmethod
    def from_placement(
        cls,
        name: str,
        placement: CoilPlacement,
        cortical_mni: np.ndarray | None = None,
        **extra: Any,
    ) -> Target:
        """The target of a :class:`~tmsplan.coil.placement.CoilPlacement`.

        Parameters
        ----------
        name : str
        placement : CoilPlacement
        cortical_mni : (3,) float, optional
        **extra
            ``role``, ``rank``, ``checks``, ``evidence``.

        Returns
        -------
        Target
        """
        return cls(
            name=name,
            cortical=placement.cortical,
            entry=placement.entry,
            coil_pose=placement.pose,
            depth_mm=placement.depth_mm,
            handle=placement.handle,
            normal=placement.normal,
            coil_skin_distance_mm=placement.coil_skin_distance_mm,
            reachable=placement.reachable,
            unreachable_reason=placement.unreachable_reason,
            handle_rule_applied=placement.handle_how,
            normal_target_angle_deg=placement.normal_target_angle_deg,
            cortical_mni=cortical_mni,
            **extra,
        )

    def to_record(self) -> dict:
        """The entry of this target in the record's ``targets`` list (rounded, JSON types).

        Returns
        -------
        dict
        """
        mni = self.cortical_mni
        return {
            "name": self.name,
            "cortical_mm": np.round(self.cortical.xyz[0], 4).tolist(),
            "scalp_mm": np.round(self.entry.xyz[0], 4).tolist(),
            "coil_matrix": np.round(self.coil_matrix, 8).tolist(),
            "depth_mm": round(self.depth_mm, 3),
            "handle_direction": np.round(self.handle, 8).tolist(),
            "coil_skin_distance_mm": self.coil_skin_distance_mm,
            "cortical_mni_mm": None if mni is None else np.round(mni, 4).tolist(),
            "scalp_normal": np.round(self.normal, 8).tolist(),
            "reachable": self.reachable,
            "unreachable_reason": self.unreachable_reason,
            "handle_rule_applied": self.handle_rule_applied,
            "normal_target_angle_deg": round(self.normal_target_angle_deg, 3),
            **self.checks,
            "role": self.role,
            "rank": self.rank,
            **self.evidence,
        }


def image_entry(img: ImageLike | None) -> dict:
    """The record entry of an input image: absolute path and SHA-256 (None in memory).

    Parameters
    ----------
    img : image, optional

    Returns
    -------
    dict
        ``{"path": ..., "sha256": ...}``.
    """
    if img is None:
        return {"path": None, "sha256": None}
    source = image_source(img)
    if source is None:
        return {"path": None, "sha256": None}
    return {"path": str(Path(source).resolve()), "sha256": file_sha256(source)}


def strategy_description(strategy: str, chosen: Any, conn: Any) -> dict:
    """The record's ``strategy`` entry: which rule chose the target, and its evidence.

    Parameters
    ----------
    strategy : str
    chosen : tmsplan.target.activation.ActivationTarget or None
    conn : tmsplan.target.connectivity.ConnectivityTarget or None

    Returns
    -------
    dict
    """
    if conn is not None:
        return {"name": strategy, **conn.info}
    if chosen is not None and chosen.extra:
        return {"name": strategy, **chosen.extra}
    rules = {
        "peak": "peak voxel of the largest supra-threshold cluster in the ROI",
        "cog": "value-weighted centre of gravity of the largest supra-threshold cluster in "
        "the ROI, snapped into the cluster",
    }
    return {"name": strategy, "rule": rules.get(strategy, "target given by the user")}


def activation_entry(
    activation: ImageLike | None,
    chosen: Any,
    *,
    activation_space: str = "MNI",
    activation_source: dict | None = None,
    target_mni: Any = None,
    target_t1: Any = None,
) -> dict:
    """The record's ``activation`` entry: the map and its selection, or the given point.

    Parameters
    ----------
    activation : image, optional
    chosen : tmsplan.target.activation.ActivationTarget or None
    activation_space : {"MNI", "T1w"}
    activation_source : dict, optional
    target_mni, target_t1 : (3,) float, optional

    Returns
    -------
    dict
    """
    if activation is not None:
        info = {**image_entry(activation), **chosen.describe()}
        info["space"] = MNI_FRAME if activation_space == "MNI" else SUBJECT_FRAME
        if activation_source:
            info["generated_from"] = activation_source
        return info
    given_frame = MNI_FRAME if target_mni is not None else SUBJECT_FRAME
    given_xyz = target_mni if target_mni is not None else target_t1
    return {
        "path": None,
        "sha256": None,
        "given_target": {"frame": given_frame, "mm": np.asarray(given_xyz, float).tolist()},
    }


def plan_mode(frame: str, activation: Any, activation_space: str) -> str:
    """The planning mode's name (record ``parameters.mode``).

    Parameters
    ----------
    frame : str
    activation : image or None
    activation_space : str

    Returns
    -------
    str
        ``mni-head``, ``coordinates``, ``subject-map`` or ``group-map-to-subject``.
    """
    if frame == MNI_FRAME:
        return "mni-head"
    if activation is None:
        return "coordinates"
    return "subject-map" if activation_space == "T1w" else "group-map-to-subject"


def build_record(
    *,
    subject: str | None,
    space: Any,
    head: Any,
    roi_info: dict | None,
    activation_info: dict,
    targets: tuple[Target, ...],
    settings: Any,
    options: dict,
    clinic: dict,
    strategy: dict,
    thresholding: dict | None = None,
    deep_verdict: dict | None = None,
    warnings: list[str],
    conn: Any = None,
) -> dict:
    """Assemble the ``target.json`` record (``outputs`` empty) from the plan's parts.

    Parameters
    ----------
    subject : str, optional
    space : tmsplan.pipeline.HeadSpace
    head : tmsplan.head.cache.Head
    roi_info, activation_info : dict
        The ``roi`` and ``activation`` entries.
    targets : tuple of Target
        The chosen target first, then the candidates.
    settings : tmsplan.pipeline.CoilSettings
    options : dict
        ``threshold``, ``sign``, ``rule``, ``mode``, ``candidates``,
        ``export_candidates``, ``strategy`` (record ``parameters``).
    clinic : dict
        ``eeg1020`` and ``dose`` (:func:`tmsplan.pipeline.clinic_positions`).
    strategy : dict
        :func:`strategy_description`.
    thresholding : dict, optional
        How the map was thresholded (maps only).
    deep_verdict : dict, optional
    warnings : list of str
        Every warning, in order (the list itself is kept).
    conn : tmsplan.target.connectivity.ConnectivityTarget, optional

    Returns
    -------
    dict
    """
    from tmsplan.coil.catalogue import coil_description

    frame, scalp = space.frame, head.scalp
    source = image_source(space.head_source)
    head_sha = head.t1_sha256 or (file_sha256(source) if source else None)
    activation = dict(activation_info)
    if conn is not None:
        activation["given_target"] = {
            **activation["given_target"],
            "chosen_by": "the connectivity strategy (see 'strategy'), not the user",
        }
        if roi_info is None:  # searched in --roi-mask
            roi_info = {"id": None, "mask": conn.info["search"]["mask"]}
    parameters = {
        "threshold": options["threshold"],
        "sign": conn.info["sign"] if conn is not None else options["sign"],
        "rule": options["rule"],
        "coil_skin_distance_mm": settings.coil_skin_distance_mm,
        "handle_angle_deg": settings.handle_angle_deg,
        "max_depth_mm": settings.max_depth_mm,
        "normal_radius_mm": settings.normal_radius_mm,
        "coil": settings.coil.id,
        "max_depth_source": settings.max_depth_source,
        "entry_rule": "nearest scalp point to the cortical target",
        "handle_rule": HANDLE_RULE.format(
            angle=settings.handle_angle_deg, midline=DEFAULT_MIDLINE_MM
        ),
        "mode": options["mode"],
        "candidates": int(options["candidates"]),
        "export_candidates": bool(options["export_candidates"]),
        "strategy": options["strategy"],
    }
    record: dict[str, Any] = {
        "tmsplan_version": __version__,
        "schema_version": SCHEMA_VERSION,
        "subject": subject or (MNI_FRAME if frame == MNI_FRAME else "sub-unknown"),
        "space": frame,
        "t1": t1_description(space.t1_header, source, head_sha),
        "roi": roi_info,
        "activation": activation,
        "targets": [t.to_record() for t in targets],
        "transform": space.transform_info,
        "head": {
            "scalp_faces": int(len(scalp.faces)),
            "defaced": bool(scalp.defaced),
            "fov_cut_vertices": int(np.count_nonzero(scalp.fov_boundary)),
            "notes": list(scalp.notes),
        },
        "parameters": parameters,
        "conventions": {
            "frame": f"{frame}: RAS+ world millimetres of the image in 't1'",
            "units": "mm",
            "coil_axes": COIL_AXES,
            "disclaimer": DISCLAIMER,
        },
        "warnings": warnings,
        "outputs": {},
        "eeg1020": clinic["eeg1020"],
        "dose": clinic["dose"],
        "coil": coil_description(settings.coil),
    }
    if thresholding is not None:
        record["thresholding"] = thresholding
    record["strategy"] = strategy
    if deep_verdict is not None:
        record["deep_target"] = deep_verdict
    return record


def thresholding_entry(
    act_img: Any,
    threshold: float,
    threshold_info: dict | None,
    *,
    sign: str,
    min_cluster_mm3: float,
) -> dict | None:
    """The record's ``thresholding`` entry (None without a map).

    Parameters
    ----------
    act_img : nibabel.Nifti1Image or None
    threshold : float
        The threshold used.
    threshold_info : dict, optional
        How a statistical threshold was computed (:func:`tmsplan.pipeline.threshold_for`).
    sign : str
    min_cluster_mm3 : float

    Returns
    -------
    dict or None
    """
    if act_img is None:
        return None
    fixed = {"method": "fixed", "threshold": threshold}
    return {**(threshold_info or fixed), "sign": sign, "min_cluster_mm3": float(min_cluster_mm3)}


def picture_layers(act_img: Any, final: Any, space: Any, *, activation_space: str) -> dict:
    """Images in the head's frame for the pictures (activation, ROI, brain).

    Parameters
    ----------
    act_img : nibabel.Nifti1Image or None
        The activation map (an MNI map is resampled into a patient's T1).
    final : tmsplan.pipeline.CarriedTarget
        From :func:`tmsplan.pipeline.finalise_target` (ROI and brain images).
    space : tmsplan.pipeline.HeadSpace
    activation_space : {"MNI", "T1w"}

    Returns
    -------
    dict
        ``activation_img``, ``roi_img``, ``brain_img`` (each may be None).
    """
    picture_act = act_img
    if act_img is not None and activation_space == "MNI" and space.carried:
        picture_act = space.mni_to_subject.resample_to_subject(
            act_img, space.t1_img, interpolation="linear"
        )
    return {
        "activation_img": picture_act,
        "roi_img": final.roi_head_img,
        "brain_img": final.brain_img,
    }
