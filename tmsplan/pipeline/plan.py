"""One patient: activation map x ROI -> cortical target -> scalp entry -> coil pose -> record.

:func:`plan_target` composes the steps of :mod:`tmsplan.pipeline`; :func:`write_plan` writes.
"""

from __future__ import annotations

import os
import warnings as _warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import nibabel as nib

from tmsplan.coil.placement import (
    DEFAULT_COIL_SKIN_DISTANCE_MM,
    DEFAULT_HANDLE_ANGLE_DEG,
    DEFAULT_NORMAL_RADIUS_MM,
)
from tmsplan.errors import PlanWarning
from tmsplan.head.cache import Head
from tmsplan.head.scalp import ScalpSurface
from tmsplan.io import interrupts
from tmsplan.io.images import ImageLike, file_sha256
from tmsplan.io.outputs import staged_folder
from tmsplan.io.record import RECORD_FILENAME, write_record
from tmsplan.pipeline import (
    DISCLAIMER,
    GIVEN_TARGET_TOLERANCE_MM,
    Target,
    activation_entry,
    build_record,
    candidate_frame,
    carry_target,
    check_inputs,
    check_strategy,
    choose_target,
    clinic_positions,
    coil_settings,
    connectivity_choice,
    depth_function,
    finalise_target,
    grey_matter_target,
    head_for,
    image_entry,
    load_activation,
    picture_layers,
    place_candidates,
    place_target,
    plan_mode,
    resolve_head_space,
    roi_on_map,
    strategy_description,
    threshold_for,
    thresholding_entry,
)
from tmsplan.spaces import MNI_FRAME, SUBJECT_FRAME
from tmsplan.target.activation import DEFAULT_THRESHOLD
from tmsplan.target.atlas import get_roi

__all__ = [
    "Plan",
    "Target",
    "plan_target",
    "write_plan",
    "DISCLAIMER",
    "GIVEN_TARGET_TOLERANCE_MM",
]


@dataclass(frozen=True)
class Plan:
    """A computed plan and the data it was computed from (nothing written yet).

    Attributes
    ----------
    record : dict
        The ``target.json`` content (``outputs`` still empty), built from
        ``targets`` by :func:`tmsplan.pipeline.build_record`.
    scalp : ScalpSurface
        Scalp surface of the head image, in ``record["space"]``.
    t1_img : nibabel.Nifti1Image
        The head image: checked, in memory when a step read its voxels, else its
        header checked and its voxels on disk (read and checked when drawn).
    activation_img : nibabel.Nifti1Image or None
        The activation map as used (its own grid and frame).
    layers : dict
        Images in the head's frame for the pictures: ``activation_img``,
        ``roi_img``, ``brain_img`` (each may be None).
    registration : tmsplan.xfm.registration.RegistrationResult or None
        The built-in registration, whose transform files the plan folder keeps.
    targets : tuple of Target
        The chosen target, then the ranked candidates (``plan.targets[0].coil_matrix``).
    """

    record: dict
    scalp: ScalpSurface
    t1_img: nib.Nifti1Image
    activation_img: nib.Nifti1Image | None = None
    layers: dict = field(default_factory=dict)
    registration: Any = None
    targets: tuple[Target, ...] = ()

    @property
    def frame(self) -> str:
        """World frame of every point and pose of the plan (``record["space"]``)."""
        return self.record["space"]


def plan_target(
    activation: ImageLike | None = None,
    *,
    roi: str | None = None,
    roi_mask: ImageLike | None = None,
    t1: ImageLike | None = None,
    mni_to_t1: Any = None,
    xfm_kind: str | None = None,
    xfm_moving: ImageLike | None = None,
    register: bool | Literal["affine", "nonlinear"] = False,
    accept_poor_fit: bool = False,
    activation_space: Literal["MNI", "T1w"] = "MNI",
    target_mni: Any = None,
    target_t1: Any = None,
    subject: str | None = None,
    target_name: str | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    sign: Literal["positive", "negative", "absolute"] = "positive",
    rule: Literal["peak", "cog"] = "peak",
    coil_skin_distance_mm: float = DEFAULT_COIL_SKIN_DISTANCE_MM,
    handle_angle_deg: float = DEFAULT_HANDLE_ANGLE_DEG,
    max_depth_mm: float | None = None,
    normal_radius_mm: float = DEFAULT_NORMAL_RADIUS_MM,
    activation_source: dict | None = None,
    motor_threshold: float | None = None,
    landmarks: Any = None,
    coil: str | None = None,
    strategy: str | None = None,
    rest: ImageLike | None = None,
    confounds: str | os.PathLike | None = None,
    rest_mask: ImageLike | None = None,
    seed_roi: str | None = None,
    seed_mask: ImageLike | None = None,
    connectivity_sign: Literal["negative", "positive"] = "negative",
    candidates: int = 3,
    export_candidates: bool = False,
    min_cluster_mm3: float = 0.0,
    height_control: Literal["fpr", "fdr", "bonferroni"] | None = None,
    alpha: float | None = None,
    head: Head | None = None,
    snap_to_grey_matter: bool = True,
) -> Plan:
    """Plan one TMS target, in any of the planning modes.

    1. group map + ROI in MNI, head = the embedded MNI152 head (no ``t1``);
    2. group map + ROI in MNI, head = the patient's T1 with an MNI->T1 transform
       (given, or from the built-in registration): the target is chosen in MNI and
       carried into the patient, where it is re-checked inside the carried ROI;
    3. subject map in the patient's T1 world (``activation_space="T1w"``) with the
       MNI ROI carried into the patient;
    4. coordinates given by the user (``target_mni`` or ``target_t1``).

    A short composition of the steps in :mod:`tmsplan.pipeline`, which can be
    called alone.

    Parameters
    ----------
    activation : str, os.PathLike or nibabel image, optional
        3-D statistic map (z or t). In MNI152 space unless
        ``activation_space="T1w"`` (a subject map in the patient's T1 world).
    roi : str, optional
        Craving-ROI id from tmsplan's atlas (``tmsplan rois``); MNI152.
    roi_mask : str, os.PathLike or nibabel image, optional
        Instead of ``roi``: a binary mask in the same space as the map.
    t1 : image, optional
        The patient's head T1. ``None``: the embedded whole-head
        MNI152NLin6Asym T1 (1 mm), and everything is in MNI space.
    mni_to_t1 : path or tmsplan.xfm.transforms.MniToSubject, optional
        MNI -> T1 transform (plain affine, ITK/ANTs .mat/.txt/.h5, FSL .mat).
    xfm_kind : {"affine", "itk", "fsl"}, optional
        Force the transform reader.
    xfm_moving : image, optional
        For FSL matrices: the MNI image used as FLIRT's ``-in`` (default: the
        embedded MNI152NLin6Asym 1 mm head, whose FSL coordinates equal those of
        FSL's MNI152 1 mm and 2 mm templates).
    register : bool or {"affine", "nonlinear"}
        Register the embedded MNI head to ``t1`` instead of ``mni_to_t1``.
    accept_poor_fit : bool
        Use a ``mni_to_t1`` that fits the T1 poorly (see
        :func:`tmsplan.xfm.check.check_transform_fit`) instead of refusing
        it; a loud warning goes into the record.
    activation_space : {"MNI", "T1w"}
        Space of ``activation`` (and of ``roi_mask``).
    target_mni, target_t1 : (3,) float, optional
        Coordinates given by the user (mode 4), in MNI152 or T1 world mm; no
        activation map is used.
    subject : str, optional
        Subject label stored in the record.
    target_name : str, optional
        Name of the target in exports (default: the ROI id).
    threshold, sign, rule
        See :func:`tmsplan.target.activation.select_target`.
    coil_skin_distance_mm, handle_angle_deg, max_depth_mm, normal_radius_mm
        See :func:`tmsplan.coil.placement.place_coil`. ``max_depth_mm=None`` (the
        default) uses the coil's reach (:mod:`tmsplan.coil.catalogue`).
    activation_source : dict, optional
        Provenance of a generated map (e.g. the peak table it was built from).
    motor_threshold : float, optional
        Motor threshold (%MSO): adds the depth-adjusted intensity (record key ``dose``).
    landmarks : path, optional
        TSV of nasion, inion, LPA, RPA in the head's frame for the 10-20 positions
        (record key ``eeg1020``); default: found on the MNI head or carried from it.
    coil : str, optional
        Coil id from tmsplan's catalogue (``tmsplan coils``); default
        ``"fig8_70"``, a 70 mm figure-8 coil.
    strategy : {"peak", "cog", "depth-aware", "connectivity"}, optional
        How the target is chosen (default: ``rule``). ``depth-aware``: best
        value-for-depth supra-threshold voxel within the coil's reach
        (:func:`tmsplan.target.activation.select_target_depth_aware`);
        ``connectivity``: the search-ROI site most (anti)correlated with a deep
        seed in a resting-state run (:mod:`tmsplan.target.connectivity`), chosen in
        MNI and carried like a ``target_mni``.
    rest, confounds, rest_mask, seed_roi, seed_mask, connectivity_sign
        Inputs of the connectivity strategy (see
        :func:`tmsplan.target.connectivity.connectivity_target`); ``roi``/``roi_mask``
        is its search region.
    candidates : int
        Up to this many ranked alternatives follow the chosen target in
        ``record["targets"]`` (``"role": "candidate"``, with score and why).
    export_candidates : bool
        Navigator files and tables include the candidates too (default: the
        chosen target only).
    min_cluster_mm3 : float
        Cluster-extent threshold (mm^3) on the whole supra-threshold map.
    height_control, alpha
        Replace ``threshold`` by a voxel-level FPR/FDR/Bonferroni threshold
        computed with nilearn (:func:`tmsplan.target.activation.statistical_threshold`);
        two-sided for ``sign="absolute"``.
    head : tmsplan.head.cache.Head, optional
        The head of ``t1`` (or of the embedded head) from
        :func:`tmsplan.head.cache.load_head`, reused as is. Default: loaded with
        the disk cache (computed once per T1 file).
    snap_to_grey_matter : bool
        A target carried into a T1 that lands in white matter or CSF moves to
        the nearest grey matter toward the scalp (the tissue is estimated in the
        carried brain mask; recorded under ``targets[0].tissue``). False keeps it.

    Returns
    -------
    Plan
        ``plan.targets`` (typed :class:`tmsplan.pipeline.Target`) and ``plan.record``.

    Raises
    ------
    TmsplanError
        Any invalid input, with a message naming the parameter and saying what to do.

    Warns
    -----
    PlanWarning
        One per entry of the record's ``warnings`` (unreachable target, target
        snapped into the brain, defaced T1, ...): each is both in the record and
        issued with :func:`warnings.warn`.
    """
    strategy = check_strategy(strategy, rule, candidates)
    conn = connectivity_choice(
        strategy, activation, target_mni, target_t1, rest, confounds, rest_mask, seed_roi,
        seed_mask, roi, roi_mask, connectivity_sign, activation_space, candidates,
    )  # fmt: skip
    if conn is not None:
        target_mni, roi_mask = conn.target.xyz[0], None
        target_name = target_name or roi or "connectivity_target"
    rule = strategy if strategy in ("peak", "cog") else rule
    given = dict(target_mni=target_mni, target_t1=target_t1)
    check_inputs(
        activation, **given, roi=roi, roi_mask=roi_mask, strategy=strategy,
        activation_space=activation_space, activation_source=activation_source,
    )  # fmt: skip
    settings = coil_settings(
        coil, threshold=threshold, max_depth_mm=max_depth_mm, normal_radius_mm=normal_radius_mm,
        coil_skin_distance_mm=coil_skin_distance_mm, handle_angle_deg=handle_angle_deg,
    )  # fmt: skip
    act_img, warnings = load_activation(activation, activation_space)
    roi_obj = get_roi(roi) if roi is not None else None
    in_mni = roi_obj is not None or target_mni is not None
    space, notes = resolve_head_space(
        t1, mni_to_t1=mni_to_t1, xfm_kind=xfm_kind, xfm_moving=xfm_moving, register=register,
        accept_poor_fit=accept_poor_fit,
        needs_t1=activation_space == "T1w" or target_t1 is not None,
        needs_mni=in_mni or (act_img is not None and activation_space == "MNI"),
    )  # fmt: skip
    warnings += notes
    region = roi_on_map(roi_obj, roi_mask, act_img, space, activation_space=activation_space,
                        mask_entry=image_entry)  # fmt: skip
    threshold, threshold_info = threshold_for(act_img, threshold, height_control=height_control,
                                              alpha=alpha, sign=sign)  # fmt: skip
    depth_of = None
    if strategy == "depth-aware":
        head = head_for(space, head) if head is None else head
        act_frame = MNI_FRAME if activation_space == "MNI" else SUBJECT_FRAME
        depth_of = depth_function(head.scalp, space, act_frame)
    point, chosen = choose_target(
        act_img, region, activation_space=activation_space, **given, strategy=strategy,
        threshold=threshold, sign=sign, candidates=candidates, min_cluster_mm3=min_cluster_mm3,
        depth_of=depth_of, max_depth_mm=settings.max_depth_mm, coil=settings.coil,
    )  # fmt: skip
    warnings += chosen.notes if chosen is not None else ()
    carried, notes = carry_target(point, space)
    warnings += notes
    given_frame = None if act_img is not None else point.frame
    final, notes = finalise_target(carried, space, region, given_frame=given_frame,
                                   activation_space=activation_space)  # fmt: skip
    warnings += notes
    interrupts.checkpoint("scalp")
    head = head_for(space, head)
    final, notes = grey_matter_target(final, space, head, snap=snap_to_grey_matter)
    warnings += notes
    name = target_name or (roi if roi is not None else "target")
    placed, notes = place_target(final, space, head, settings, name=name, roi=roi_obj,
                                 roi_id=roi, roi_label=region.label)  # fmt: skip
    warnings += notes
    clinic, notes = clinic_positions(head, placed.placement, space, landmarks=landmarks,
                                     motor_threshold=motor_threshold)  # fmt: skip
    warnings += notes
    ranked = conn.candidates if conn is not None else chosen.candidates if chosen else ()
    targets = (placed.target, *place_candidates(
        ranked, candidate_frame(conn, activation_space), space, head, settings, name=name,
        directions=placed.directions, roi=roi_obj, final=final, snap=snap_to_grey_matter,
    ))  # fmt: skip
    warnings += conn.notes if conn is not None else ()
    record = build_record(
        subject=subject, space=space, head=head, roi_info=region.info, targets=targets,
        activation_info=activation_entry(activation, chosen, activation_space=activation_space,
                                         activation_source=activation_source, **given),
        settings=settings, clinic=clinic, thresholding=thresholding_entry(
            act_img, threshold, threshold_info, sign=sign, min_cluster_mm3=min_cluster_mm3),
        strategy=strategy_description(strategy, chosen, conn),
        options=dict(threshold=threshold, sign=sign, rule=rule, strategy=strategy,
                     candidates=candidates, export_candidates=export_candidates,
                     mode=plan_mode(space.frame, activation, activation_space)),
        deep_verdict=placed.deep_verdict, warnings=warnings, conn=conn,
    )  # fmt: skip
    for text in record["warnings"]:  # every record warning is a Python warning too
        _warnings.warn(text, PlanWarning, stacklevel=2)
    layers = picture_layers(act_img, final, space, activation_space=activation_space)
    return Plan(record=record, scalp=head.scalp, t1_img=space.t1_on_hand, activation_img=act_img,
                layers=layers, registration=space.registration, targets=targets)  # fmt: skip


def _write_pictures(plan: Plan, record: dict, folder: Path, *, overwrite: bool = False) -> dict:
    """Render the 3D views, slices and report.html into ``folder``; return outputs entries."""
    from tmsplan.render import make_report

    report = make_report(
        record,
        folder,
        plan.scalp.mesh,
        t1_img=plan.t1_img,
        overwrite=overwrite,
        **plan.layers,
    )
    pictures = sorted(str(p.relative_to(folder)) for p in (folder / "pictures").glob("*.png"))
    return {"png": pictures, "report": [str(report.relative_to(folder))]}


def write_plan(
    plan: Plan,
    out: str | os.PathLike,
    *,
    formats: list[str] | None = None,
    report: bool = True,
    overwrite: bool = False,
) -> dict:
    """Write a plan folder atomically and return the final record.

    Contents: ``target.json``, one file per navigator format (default: all), a
    copy of a generated activation map, the pictures and ``report.html``.

    Parameters
    ----------
    plan : Plan
    out : str or os.PathLike
        Output folder; must not exist unless ``overwrite``.
    formats : list of str, optional
        Export format names (see :data:`tmsplan.export.FORMATS`); default all.
    report : bool
        Render pictures and the HTML report.
    overwrite : bool, keyword-only
        Replace an existing folder (``--force``).

    Returns
    -------
    dict
        The record as written (with ``outputs`` filled in).

    Raises
    ------
    RecordError, PoseError
        The plan's record is inconsistent
        (:func:`tmsplan.io.record_checks.validate_record`); nothing is written.
    """
    from tmsplan.export import export_all
    from tmsplan.io.record_checks import validate_record

    validate_record(plan.record, source="plan")  # before anything is written
    record = dict(plan.record)
    with staged_folder(out, overwrite=overwrite, marker=RECORD_FILENAME) as staging:
        outputs: dict[str, Any] = {}
        activation = dict(record["activation"])
        if activation.get("path") is None and plan.activation_img is not None:
            name = "activation.nii.gz"
            nib.save(plan.activation_img, staging / name)
            activation.update(path=name, sha256=file_sha256(staging / name))
            outputs["activation"] = [name]
        record["activation"] = activation
        if plan.registration is not None:
            saved = plan.registration.save(staging / "transforms")
            outputs["transforms"] = [str(p.relative_to(staging)) for p in saved]
        interrupts.checkpoint("exports")
        outputs.update(export_all(record, staging, formats=formats, overwrite=True))
        if report:
            interrupts.checkpoint("pictures")
            outputs.update(_write_pictures(plan, record, staging))
        record["outputs"] = {**outputs, "record": [RECORD_FILENAME]}
        write_record(record, staging / RECORD_FILENAME)
    return record
