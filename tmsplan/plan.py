"""One patient: activation map x ROI -> cortical target -> scalp entry -> coil pose -> record.

:func:`plan_target` computes (pure, nothing written); :func:`write_plan` writes the
plan folder atomically (``target.json``, navigator files, pictures, report).

Planning modes (one function):

1. group map + ROI in MNI, head = the embedded MNI152 head (no ``t1``);
2. group map + ROI in MNI, head = the patient's T1 with an MNI->T1 transform
   (given, or from the built-in registration): the target is chosen in MNI and
   carried into the patient, where it is re-checked inside the carried ROI;
3. subject map in the patient's T1 world (``activation_space="T1w"``) with the
   MNI ROI carried into the patient;
4. coordinates given by the user (``target_mni`` or ``target_t1``).
"""

from __future__ import annotations

import os
import warnings as _warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import nibabel as nib
import numpy as np

from tmsplan import __version__, interrupts
from tmsplan.activation import (
    DEFAULT_THRESHOLD,
    STRATEGIES,
    ActivationTarget,
    select_target,
    select_target_depth_aware,
    statistical_threshold,
)
from tmsplan.atlas import get_roi, roi_description, roi_mask_img
from tmsplan.bundled import load_mni_brain_mask, mni_head_path
from tmsplan.coils import SCALP_TO_CORTEX_MM, coil_description, deep_target_verdict, get_coil
from tmsplan.errors import ActivationError, PlanWarning, RoiError, SpaceError
from tmsplan.head import ScalpSurface
from tmsplan.headcache import Head, load_head, registration_once, transform_once
from tmsplan.headcheck import check_entry, image_warnings
from tmsplan.images import (
    ImageLike,
    check_img,
    file_sha256,
    image_source,
    resample_to_img,
    voxel_to_world,
    world_to_voxel,
)
from tmsplan.outputs import staged_folder
from tmsplan.projection import (
    COIL_AXES,
    DEFAULT_COIL_SKIN_DISTANCE_MM,
    DEFAULT_HANDLE_ANGLE_DEG,
    DEFAULT_MIDLINE_MM,
    DEFAULT_NORMAL_RADIUS_MM,
    HANDLE_RULE,
    CoilPlacement,
    place_coil,
)
from tmsplan.record import (
    DISCLAIMER,
    RECORD_FILENAME,
    SCHEMA_VERSION,
    t1_description,
    write_record,
)
from tmsplan.spaces import MNI_FRAME, SUBJECT_FRAME, Points

__all__ = [
    "Plan",
    "plan_target",
    "write_plan",
    "DISCLAIMER",
]


@dataclass(frozen=True)
class Plan:
    """A computed plan and the data it was computed from (nothing written yet).

    Attributes
    ----------
    record : dict
        The ``target.json`` content (``outputs`` still empty).
    scalp : ScalpSurface
        Scalp surface of the head image, in ``record["space"]``.
    t1_img : nibabel.Nifti1Image
        The head image (checked).
    activation_img : nibabel.Nifti1Image or None
        The activation map as used (its own grid and frame).
    layers : dict
        Images in the head's frame for the pictures: ``activation_img``,
        ``roi_img``, ``brain_img`` (each may be None).
    registration : tmsplan.registration.RegistrationResult or None
        The built-in registration, whose transform files the plan folder keeps.
    """

    record: dict
    scalp: ScalpSurface
    t1_img: nib.Nifti1Image
    activation_img: nib.Nifti1Image | None = None
    layers: dict = field(default_factory=dict)
    registration: Any = None


def _image_entry(img: ImageLike | None) -> dict:
    if img is None:
        return {"path": None, "sha256": None}
    source = image_source(img)
    if source is None:
        return {"path": None, "sha256": None}
    return {"path": str(Path(source).resolve()), "sha256": file_sha256(source)}


def _hemisphere_sign(x_mni: float) -> float:
    if abs(x_mni) <= DEFAULT_MIDLINE_MM:
        return 0.0
    return float(np.sign(x_mni))


def _hemisphere_name(sign: float) -> str:
    return {1.0: "right", -1.0: "left", 0.0: "midline"}[float(sign)]


def _target_entry(name: str, placement: CoilPlacement, target_mni: np.ndarray | None) -> dict:
    matrix = placement.pose.matrices[0]
    return {
        "name": name,
        "cortical_mm": np.round(placement.cortical.xyz[0], 4).tolist(),
        "scalp_mm": np.round(placement.entry.xyz[0], 4).tolist(),
        "coil_matrix": np.round(matrix, 8).tolist(),
        "depth_mm": round(placement.depth_mm, 3),
        "handle_direction": np.round(placement.handle, 8).tolist(),
        "coil_skin_distance_mm": placement.coil_skin_distance_mm,
        "cortical_mni_mm": None if target_mni is None else np.round(target_mni, 4).tolist(),
        "scalp_normal": np.round(placement.normal, 8).tolist(),
        "reachable": placement.reachable,
        "unreachable_reason": placement.unreachable_reason,
        "handle_rule_applied": placement.handle_how,
        "normal_target_angle_deg": round(placement.normal_target_angle_deg, 3),
    }


FOV_CUT_WARNING_MM = 20.0
"""Warn when the scalp entry is this close to where the field of view cuts the head."""


def _distance_to_cut(scalp: ScalpSurface, point: np.ndarray) -> float:
    """Distance (mm) from ``point`` to the nearest field-of-view-cut vertex (inf if none)."""
    cut = scalp.mesh.vertices[np.asarray(scalp.fov_boundary, dtype=bool)]
    if cut.size == 0:
        return float("inf")
    return float(np.min(np.linalg.norm(cut - point, axis=1)))


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


def _carry_direction(mni_to_subject, target_mni: np.ndarray, direction) -> np.ndarray:
    """Unit vector in the T1 frame for an MNI direction at the target (local Jacobian)."""
    step = 10.0 * np.asarray(direction, dtype=np.float64)
    ends = Points(np.stack([target_mni - step, target_mni + step]), mni_to_subject.src_frame)
    moved = mni_to_subject.apply_points(ends).xyz
    vec = moved[1] - moved[0]
    return vec / np.linalg.norm(vec)


def _snap_into(mask_img: nib.Nifti1Image, xyz: np.ndarray) -> tuple[np.ndarray, float]:
    """Nearest voxel centre of a binary mask to ``xyz`` (itself when inside); distance mm."""
    data = np.asarray(mask_img.dataobj) > 0
    ijk = np.round(world_to_voxel(mask_img.affine, xyz[None])[0]).astype(int)
    if np.all(ijk >= 0) and np.all(ijk < data.shape) and data[tuple(ijk)]:
        return xyz, 0.0
    inside = np.argwhere(data)
    if inside.size == 0:
        raise SpaceError("the brain mask carried into the T1 is empty; check the transform.")
    world = voxel_to_world(mask_img.affine, inside)
    nearest = int(np.argmin(np.sum((world - xyz) ** 2, axis=1)))
    return world[nearest], float(np.linalg.norm(world[nearest] - xyz))


GIVEN_TARGET_TOLERANCE_MM = 5.0
"""A given coordinate this close outside the brain is moved to it; farther is refused."""


def _given_target_in_brain(
    brain_img: nib.Nifti1Image, xyz: np.ndarray, given_frame: str
) -> tuple[np.ndarray, float]:
    """Only brain is a target: nearest brain voxel within the tolerance, else a clear error."""
    nearest, distance = _snap_into(brain_img, xyz)
    if distance > GIVEN_TARGET_TOLERANCE_MM:
        where = "in MNI space" if given_frame == MNI_FRAME else "in the T1"
        raise ActivationError(
            f"the given target is {distance:.1f} mm outside the brain {where} (scalp, skull or "
            f"muscle, not a cortical target; the tolerance is {GIVEN_TARGET_TOLERANCE_MM:g} mm); "
            f"the nearest brain point is ({', '.join(f'{v:.1f}' for v in nearest)}) in the "
            "head's frame; check the coordinates (sign, digits, MNI vs T1)."
        )
    return nearest, distance


def _inside(mask_img: nib.Nifti1Image, xyz: np.ndarray, tolerance_mm: float) -> bool:
    data = np.asarray(mask_img.dataobj) > 0
    if not data.any():
        return False
    world = voxel_to_world(mask_img.affine, np.argwhere(data))
    return bool(np.min(np.linalg.norm(world - xyz, axis=1)) <= tolerance_mm)


def _resolve_transform(
    t1_img: nib.Nifti1Image,
    mni_to_t1,
    xfm_kind,
    register,
    xfm_moving,
    warnings: list[str],
    accept_poor_fit: bool = False,
) -> tuple[Any, Any, dict | None]:
    """The MNI->T1 transform from a file, an object, or the built-in registration.

    tmsplan's atlas and group maps are in MNI152NLin6Asym. A transform from another
    MNI template (fMRIPrep's default MNI152NLin2009cAsym) is used as if it started
    there, with a warning: the templates differ by a few millimetres.
    """
    if mni_to_t1 is not None and register:
        raise SpaceError("give either mni_to_t1 or register=True, not both.")
    if mni_to_t1 is None and not register:
        return None, None, None
    if mni_to_t1 is not None:
        from tmsplan.transforms import MniToSubject

        if isinstance(mni_to_t1, MniToSubject):
            from tmsplan.transform_check import check_transform_fit

            xfm, _ = check_transform_fit(
                mni_to_t1, t1_img, what="the given transform", accept_poor_fit=accept_poor_fit
            )
            registration = None
        else:
            # FSL matrices are in the scaled-voxel space of their images; FSL's MNI152
            # 1 mm and 2 mm templates share that space with the embedded 1 mm head.
            moving = xfm_moving if xfm_moving is not None else mni_head_path(1)
            xfm = transform_once(
                mni_to_t1,
                kind=xfm_kind,
                reference=t1_img,
                moving=moving,
                accept_poor_fit=accept_poor_fit,
            )
            registration = None
        if xfm.fit and xfm.fit.get("warning"):
            warnings.append(xfm.fit["warning"])
        info = xfm.describe()
    else:
        kind = "affine" if register is True else register
        registration = registration_once(t1_img, kind=kind)  # reused on one head
        xfm, info = registration.mni_to_subject, registration.describe()
    if xfm.src_frame != MNI_FRAME:
        warnings.append(
            f"the transform starts from {xfm.src_frame}, but tmsplan's ROIs and group maps are "
            f"in {MNI_FRAME}; they are used as if in {xfm.src_frame} (the two MNI templates "
            "differ by a few mm)."
        )
        info = {**info, "applied_from_frame": MNI_FRAME}
        xfm = replace(xfm, src_frame=MNI_FRAME)
    return xfm, registration, info


def _connectivity_choice(
    activation, target_mni, target_t1, rest, confounds, rest_mask, seed_roi, seed_mask,
    roi, roi_mask, sign, activation_space, n_candidates,
):  # fmt: skip
    """Run the connectivity strategy (MNI-space run) and return its ConnectivityTarget."""
    from tmsplan.connectivity import connectivity_target
    from tmsplan.errors import ConnectivityError

    if rest is None:
        raise ConnectivityError(
            "--strategy connectivity needs the participant's resting-state run: --rest "
            "BOLD.nii.gz (4-D, in the ROIs' MNI space), a deep --seed-roi and a --roi to search."
        )
    if any(x is not None for x in (activation, target_mni, target_t1)):
        raise ConnectivityError(
            "--strategy connectivity chooses the target itself; leave out --activation, "
            "--peaks, --target-mni and --target-t1."
        )
    if activation_space != "MNI":
        raise ConnectivityError(
            "--strategy connectivity takes a run in MNI space (the ROIs' space); the target "
            "is carried into the T1 with --mni-to-t1/--register."
        )
    return connectivity_target(
        rest,
        seed_roi=seed_roi,
        seed_mask=seed_mask,
        roi=roi,
        roi_mask=roi_mask,
        confounds=confounds,
        rest_mask=rest_mask,
        sign=sign,
        frame=MNI_FRAME,
        n_candidates=n_candidates,
    )


def _depth_function(scalp: ScalpSurface, to_head, frame: str):
    """Depth below the scalp (mm) of points in ``frame``: distance to the nearest skin vertex."""
    from scipy.spatial import cKDTree

    vertices = np.asarray(scalp.mesh.vertices, dtype=np.float64)
    skin = ~np.asarray(scalp.fov_boundary, dtype=bool)
    tree = cKDTree(vertices[skin] if skin.any() else vertices)

    def depth_of(points: np.ndarray) -> np.ndarray:
        pts = Points(np.asarray(points, dtype=np.float64), frame)
        head = to_head(pts).xyz if to_head is not None else pts.xyz
        return tree.query(head)[0]

    return depth_of


def _strategy_description(strategy: str, chosen, conn) -> dict:
    """The record's ``strategy`` entry: which rule chose the target, and its evidence."""
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
) -> Plan:
    """Plan one TMS target (all planning modes; see the module docstring).

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
    mni_to_t1 : path or tmsplan.transforms.MniToSubject, optional
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
        :func:`tmsplan.transform_check.check_transform_fit`) instead of refusing
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
        See :func:`tmsplan.activation.select_target`.
    coil_skin_distance_mm, handle_angle_deg, max_depth_mm, normal_radius_mm
        See :func:`tmsplan.projection.place_coil`. ``max_depth_mm=None`` (the
        default) uses the coil's reach (:mod:`tmsplan.coils`).
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
        (:func:`tmsplan.activation.select_target_depth_aware`);
        ``connectivity``: the search-ROI site most (anti)correlated with a deep
        seed in a resting-state run (:mod:`tmsplan.connectivity`), chosen in
        MNI and carried like a ``target_mni``.
    rest, confounds, rest_mask, seed_roi, seed_mask, connectivity_sign
        Inputs of the connectivity strategy (see
        :func:`tmsplan.connectivity.connectivity_target`); ``roi``/``roi_mask``
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
        computed with nilearn (:func:`tmsplan.activation.statistical_threshold`);
        two-sided for ``sign="absolute"``.
    head : tmsplan.headcache.Head, optional
        The head of ``t1`` (or of the embedded head) from
        :func:`tmsplan.headcache.load_head`, reused as is. Default: loaded with
        the disk cache (computed once per T1 file).

    Returns
    -------
    Plan

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
    strategy = rule if strategy is None else strategy
    if isinstance(candidates, bool) or not isinstance(candidates, int) or not 0 <= candidates <= 20:
        raise ActivationError(
            f"--candidates must be a whole number from 0 to 20, got {candidates!r}."
        )
    if strategy not in STRATEGIES:
        raise ActivationError(f"--strategy must be one of {list(STRATEGIES)}, got {strategy!r}.")
    conn = None
    if strategy == "connectivity":
        conn = _connectivity_choice(
            activation, target_mni, target_t1, rest, confounds, rest_mask, seed_roi, seed_mask,
            roi, roi_mask, connectivity_sign, activation_space, candidates,
        )  # fmt: skip
        target_mni, roi_mask = conn.target.xyz[0], None
        target_name = target_name or roi or "connectivity_target"
    elif any(x is not None for x in (rest, confounds, rest_mask, seed_roi, seed_mask)):
        raise ActivationError(
            "--rest, --confounds, --rest-mask, --seed-roi and --seed-mask belong to "
            "--strategy connectivity; add it or leave them out."
        )
    elif strategy in ("peak", "cog"):
        rule = strategy
    if strategy == "depth-aware" and activation is None:
        raise ActivationError("--strategy depth-aware needs an activation map (--activation).")
    given = [x is not None for x in (activation, target_mni, target_t1)]
    if sum(given) != 1:
        raise ActivationError(
            "give exactly one of: an activation map (the first argument), target_mni or target_t1."
        )
    if activation is not None and (roi is None) == (roi_mask is None):
        raise RoiError("give exactly one of roi (an atlas id, see 'tmsplan rois') or roi_mask.")
    if activation_space not in ("MNI", "T1w"):
        raise SpaceError(f"activation_space must be 'MNI' or 'T1w', got {activation_space!r}.")
    if activation_source is not None and activation_space != "MNI":
        raise SpaceError(
            "a map rebuilt from a peak table (activation_source) is in MNI space; "
            "activation_space='T1w' does not apply to it."
        )
    coil_obj = get_coil(coil)
    max_depth_source = "--max-depth"
    if max_depth_mm is None:
        max_depth_mm, max_depth_source = coil_obj.reach_mm, f"reach of coil {coil_obj.id}"
    _check_parameters(
        threshold=threshold,
        coil_skin_distance_mm=coil_skin_distance_mm,
        handle_angle_deg=handle_angle_deg,
        max_depth_mm=max_depth_mm,
        normal_radius_mm=normal_radius_mm,
    )
    warnings: list[str] = []

    # -- the head and the MNI -> head transform ------------------------------------
    act_img = None
    if activation is not None:
        act_img = check_img(activation, name="activation", nan_policy="zero")
        codes = {int(act_img.header["sform_code"]), int(act_img.header["qform_code"])} - {0}
        if activation_space == "MNI" and codes == {1}:
            warnings.append(
                "the activation map's header says scanner coordinates (sform/qform code 1), "
                "yet it is used as an MNI map; if it is a subject's map, re-run with "
                "activation_space='T1w' and the subject's t1."
            )
    roi_obj = get_roi(roi) if roi is not None else None
    if t1 is None:
        if activation_space == "T1w" or target_t1 is not None:
            raise SpaceError("a subject-space map or target_t1 needs the patient's T1 (t1).")
        if mni_to_t1 is not None or register:
            raise SpaceError("mni_to_t1 or register=True needs the patient's T1 (t1).")
        frame, head_source = MNI_FRAME, mni_head_path(1)
    else:
        frame, head_source = SUBJECT_FRAME, t1
    t1_img = check_img(head_source, name="t1")
    mni_to_subject, registration, transform_info = (
        _resolve_transform(
            t1_img, mni_to_t1, xfm_kind, register, xfm_moving, warnings, accept_poor_fit
        )
        if t1 is not None
        else (None, None, None)
    )
    needs_mni = (
        roi_obj is not None
        or target_mni is not None
        or (activation is not None and activation_space == "MNI")
    )
    if t1 is not None and needs_mni and mni_to_subject is None:
        raise SpaceError(
            "planning in a patient's T1 from MNI-space inputs (atlas ROI, group map or "
            "target_mni) needs an MNI->T1 transform: pass mni_to_t1 (fMRIPrep's "
            "from-MNI152NLin2009cAsym_to-T1w_mode-image_xfm.h5, an FSL .mat or a 4x4 "
            "matrix) or register=True to run the built-in registration."
        )
    carried = t1 is not None and mni_to_subject is not None

    def to_head(points_mni: Points) -> Points:
        return mni_to_subject.apply_points(points_mni) if carried else points_mni

    # -- the cortical target ----------------------------------------------------------
    chosen: ActivationTarget | None = None
    threshold_info = None
    roi_info: dict | None = None
    roi_label = "the ROI"
    mask_img = None  # ROI on the activation map's grid
    roi_head_img = None  # ROI on the head's grid (for checks and pictures)
    roi_mni = None  # the atlas ROI on the 1 mm MNI grid, when it must be carried
    if roi_obj is not None:
        roi_info = roi_description(roi_obj)
        roi_label = f"ROI {roi_obj.id}"
        if carried:
            roi_mni = roi_mask_img(roi_obj, load_mni_brain_mask(1))
    if activation is not None:
        if roi_obj is not None:
            if activation_space == "MNI":
                mask_img = roi_mask_img(roi_obj, act_img)
            else:
                mask_img = mni_to_subject.resample_to_subject(
                    roi_mni, act_img, interpolation="nearest"
                )
        else:
            mask_img = resample_to_img(
                check_img(roi_mask, name="roi_mask"),
                act_img,
                interpolation="nearest",
                source_name="roi_mask",
                target_name="the activation map",
            )
            roi_info = {"id": None, "mask": _image_entry(roi_mask)}
            roi_label = "the ROI mask"
        act_frame = MNI_FRAME if activation_space == "MNI" else SUBJECT_FRAME
        if height_control is not None:
            threshold, threshold_info = statistical_threshold(
                act_img, height_control=height_control, alpha=alpha, sign=sign
            )
        if strategy == "depth-aware":
            if head is None:
                head = load_head(head_source, frame=frame)
            chosen = select_target_depth_aware(
                act_img,
                mask_img,
                frame=act_frame,
                depth_of=_depth_function(
                    head.scalp, to_head if activation_space == "MNI" else None, act_frame
                ),
                max_depth_mm=max_depth_mm,
                d_half_mm=10.0 * coil_obj.d_half_cm,
                scalp_to_cortex_mm=SCALP_TO_CORTEX_MM,
                threshold=threshold,
                sign=sign,
                roi_label=roi_label,
                n_candidates=candidates,
                min_cluster_mm3=min_cluster_mm3,
            )
        else:
            chosen = select_target(
                act_img,
                mask_img,
                frame=act_frame,
                threshold=threshold,
                sign=sign,
                rule=rule,
                roi_label=roi_label,
                n_candidates=candidates,
                min_cluster_mm3=min_cluster_mm3,
            )
        warnings.extend(chosen.notes)
        if activation_space == "MNI":
            target_head = to_head(chosen.target)
        else:
            target_head = chosen.target
    elif target_mni is not None:
        target_head = to_head(Points(target_mni, MNI_FRAME))
    else:
        target_head = Points(target_t1, SUBJECT_FRAME)

    # MNI coordinates of the target (stored with the patient-space ones)
    if frame == MNI_FRAME:
        target_mni_xyz = target_head.xyz[0]
    elif carried:
        target_mni_xyz = mni_to_subject.inverse_points(target_head).xyz[0]
    else:
        target_mni_xyz = None
        warnings.append(
            "no MNI->T1 transform: the target's MNI coordinates are unknown, and the handle "
            "rule uses the T1's world axes (assumes the head is roughly aligned with them)."
        )

    # -- after a warp: back into the brain, and still inside the ROI -----------------
    snap_mm = 0.0
    brain_img = load_mni_brain_mask(1)
    if carried:
        brain_img = mni_to_subject.resample_to_subject(brain_img, t1_img, interpolation="nearest")
    given_move_mm = None
    if activation is None and (carried or frame == MNI_FRAME):
        moved, given_move_mm = _given_target_in_brain(
            brain_img, target_head.xyz[0], MNI_FRAME if target_mni is not None else frame
        )
        if given_move_mm > 0:
            warnings.append(
                f"the given target lay {given_move_mm:.1f} mm outside the brain (within the "
                f"{GIVEN_TARGET_TOLERANCE_MM:g} mm tolerance); it was moved to the nearest brain "
                "voxel (the cortex)."
            )
            target_head = Points(moved, target_head.frame)
            if frame == MNI_FRAME:
                target_mni_xyz = target_head.xyz[0]
            else:
                target_mni_xyz = mni_to_subject.inverse_points(target_head).xyz[0]
    if carried:
        snapped, snap_mm = _snap_into(brain_img, target_head.xyz[0])
        if snap_mm > 0:
            warnings.append(
                f"the carried target fell {snap_mm:.1f} mm outside the brain mask carried "
                "into the T1; it was snapped to the nearest brain voxel."
            )
            target_head = Points(snapped, SUBJECT_FRAME)
            target_mni_xyz = mni_to_subject.inverse_points(target_head).xyz[0]
        if roi_obj is not None:
            roi_head_img = mni_to_subject.resample_to_subject(
                roi_mni, t1_img, interpolation="nearest"
            )
            voxel = float(np.max(t1_img.header.get_zooms()[:3]))
            if not _inside(roi_head_img, target_head.xyz[0], tolerance_mm=voxel):
                warnings.append(
                    f"the target carried into the T1 is not inside {roi_label} carried into "
                    "the T1; check the transform."
                )
    elif roi_obj is not None and frame == MNI_FRAME:
        roi_head_img = mask_img
    elif mask_img is not None and activation_space == "T1w":
        roi_head_img = mask_img
    if t1 is not None and not carried:
        brain_img = None

    # -- hemisphere and head directions -------------------------------------------
    hemi_x = target_mni_xyz[0] if target_mni_xyz is not None else target_head.xyz[0, 0]
    hemi = _hemisphere_sign(hemi_x)
    expected_sign = {"L": -1.0, "R": 1.0}.get(roi_obj.hemisphere[:1].upper()) if roi_obj else None
    if expected_sign is not None and hemi not in (0.0, expected_sign):
        warnings.append(
            f"the target (MNI x = {hemi_x:.1f} mm) is on the {_hemisphere_name(hemi)} "
            f"hemisphere but {roi_label} is {_hemisphere_name(expected_sign)}."
        )
    directions = {}
    if carried:
        directions = {
            name: _carry_direction(mni_to_subject, target_mni_xyz, vec)
            for name, vec in (
                ("posterior", (0.0, -1.0, 0.0)),
                ("right", (1.0, 0.0, 0.0)),
                ("inferior", (0.0, 0.0, -1.0)),
            )
        }

    # -- scalp, entry and coil ------------------------------------------------------
    interrupts.checkpoint("scalp")
    if head is None:
        head = load_head(head_source, frame=frame)
    else:
        head.check_matches(head_source, frame=frame)
    scalp = head.scalp
    warnings.extend(image_warnings(scalp))
    placement = place_coil(
        target_head,
        scalp.mesh,
        frame=frame,
        fov_boundary=scalp.fov_boundary,
        proximity=head.proximity,
        hemisphere_sign=hemi,
        coil_skin_distance_mm=coil_skin_distance_mm,
        handle_angle_deg=handle_angle_deg,
        max_depth_mm=max_depth_mm,
        normal_radius_mm=normal_radius_mm,
        coil_label=f"the {coil_obj.name}",
        **directions,
    )
    name = target_name or (roi if roi is not None else "target")
    entry_check = check_entry(
        placement.entry.xyz[0],
        placement.normal,
        scalp,
        t1_img,
        brain_img=brain_img,
        name=name,
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
    if placement.depth_mm > max_depth_mm:
        deep_verdict = deep_target_verdict(
            placement.depth_mm, coil_obj, max_depth_mm=max_depth_mm, roi_id=roi
        )
        warnings.append(f"target {name!r}: {deep_verdict['text']}")
    if placement.handle_how == "inferior-fallback":
        warnings.append(
            f"target {name!r}: the scalp there faces backwards, so the handle points down "
            "instead of backwards."
        )

    # -- the plan in a clinic's terms: 10-20 positions, tape distances, intensity ------
    from tmsplan.clinic import clinic_entries

    clinic = clinic_entries(
        scalp,
        placement,
        mni_to_subject=mni_to_subject if carried else None,
        to_head=to_head if (carried or frame == MNI_FRAME) else None,
        landmarks=landmarks,
        motor_threshold=motor_threshold,
        warnings=warnings,
    )

    # -- the record -------------------------------------------------------------------
    if activation is not None:
        activation_info = {**_image_entry(activation), **chosen.describe()}
        activation_info["space"] = MNI_FRAME if activation_space == "MNI" else SUBJECT_FRAME
        if activation_source:
            activation_info["generated_from"] = activation_source
    else:
        given_frame = MNI_FRAME if target_mni is not None else SUBJECT_FRAME
        given_xyz = target_mni if target_mni is not None else target_t1
        activation_info = {
            "path": None,
            "sha256": None,
            "given_target": {"frame": given_frame, "mm": np.asarray(given_xyz, float).tolist()},
        }
    mode = (
        "mni-head"
        if frame == MNI_FRAME
        else "coordinates"
        if activation is None
        else "subject-map"
        if activation_space == "T1w"
        else "group-map-to-subject"
    )
    target_entry = _target_entry(name, placement, target_mni_xyz)
    target_entry["snap_distance_mm"] = round(snap_mm, 3)
    target_entry["entry_check"] = entry_check.describe()
    if given_move_mm is not None:
        target_entry["given_target_moved_mm"] = round(given_move_mm, 3)
    head_sha = head.t1_sha256 or (
        file_sha256(image_source(head_source)) if image_source(head_source) else None
    )
    record: dict[str, Any] = {
        "tmsplan_version": __version__,
        "schema_version": SCHEMA_VERSION,
        "subject": subject or (MNI_FRAME if frame == MNI_FRAME else "sub-unknown"),
        "space": frame,
        "t1": t1_description(t1_img, image_source(head_source), head_sha),
        "roi": roi_info,
        "activation": activation_info,
        "targets": [target_entry],
        "transform": transform_info,
        "head": {
            "scalp_faces": int(len(scalp.mesh.faces)),
            "defaced": bool(scalp.defaced),
            "fov_cut_vertices": int(np.count_nonzero(scalp.fov_boundary)),
            "notes": list(scalp.notes),
        },
        "parameters": {
            "threshold": threshold,
            "sign": sign,
            "rule": rule,
            "coil_skin_distance_mm": coil_skin_distance_mm,
            "handle_angle_deg": handle_angle_deg,
            "max_depth_mm": max_depth_mm,
            "normal_radius_mm": normal_radius_mm,
            "coil": coil_obj.id,
            "max_depth_source": max_depth_source,
            "entry_rule": "nearest scalp point to the cortical target",
            "handle_rule": HANDLE_RULE.format(angle=handle_angle_deg, midline=DEFAULT_MIDLINE_MM),
            "mode": mode,
        },
        "conventions": {
            "frame": f"{frame}: RAS+ world millimetres of the image in 't1'",
            "units": "mm",
            "coil_axes": COIL_AXES,
            "disclaimer": DISCLAIMER,
        },
        "warnings": warnings,
        "outputs": {},
    }
    record.update(eeg1020=clinic["eeg1020"], dose=clinic["dose"])
    record["coil"] = coil_description(coil_obj)
    target_entry.update(role="chosen", rank=1)
    ranked = conn.candidates if conn is not None else chosen.candidates if chosen else ()
    source_frame = MNI_FRAME if conn is not None or activation_space == "MNI" else SUBJECT_FRAME
    for rank, cand in enumerate(ranked, start=2):
        point = Points(np.asarray(cand["target_mm"], dtype=np.float64), source_frame)
        head_point = to_head(point) if source_frame == MNI_FRAME else point
        cand_mni = point.xyz[0] if source_frame == MNI_FRAME else None
        if cand_mni is None and carried:
            cand_mni = mni_to_subject.inverse_points(head_point).xyz[0]
        cand_place = place_coil(
            head_point,
            scalp.mesh,
            frame=frame,
            fov_boundary=scalp.fov_boundary,
            proximity=head.proximity,
            hemisphere_sign=_hemisphere_sign(
                cand_mni[0] if cand_mni is not None else head_point.xyz[0, 0]
            ),
            coil_skin_distance_mm=coil_skin_distance_mm,
            handle_angle_deg=handle_angle_deg,
            max_depth_mm=max_depth_mm,
            normal_radius_mm=normal_radius_mm,
            coil_label=f"the {coil_obj.name}",
            **directions,
        )
        entry = _target_entry(f"{name}_candidate{rank}", cand_place, cand_mni)
        entry.update(role="candidate", rank=rank, score=cand["score"], why=cand["why"])
        for key in ("value", "r", "z", "cluster_size_voxels"):
            if key in cand:
                entry[key] = cand[key]
        if roi_obj is not None and cand_mni is not None:
            entry["distance_to_roi_centre_mm"] = round(
                float(np.linalg.norm(cand_mni - roi_obj.centre_mni)), 3
            )
        record["targets"].append(entry)
    if activation is not None:
        record["thresholding"] = {
            **(threshold_info or {"method": "fixed", "threshold": threshold}),
            "sign": sign,
            "min_cluster_mm3": float(min_cluster_mm3),
        }
    record["parameters"]["candidates"] = int(candidates)
    record["parameters"]["export_candidates"] = bool(export_candidates)
    record["parameters"]["strategy"] = strategy
    if conn is not None:
        record["parameters"]["sign"] = conn.info["sign"]
        record["activation"]["given_target"]["chosen_by"] = (
            "the connectivity strategy (see 'strategy'), not the user"
        )
        if record["roi"] is None:  # searched in --roi-mask
            record["roi"] = {"id": None, "mask": conn.info["search"]["mask"]}
    record["strategy"] = _strategy_description(strategy, chosen, conn)
    if conn is not None:
        warnings.extend(conn.notes)
    if deep_verdict is not None:
        record["deep_target"] = deep_verdict
    # pictures: everything drawn in the head's frame
    picture_act = act_img
    if act_img is not None and activation_space == "MNI" and carried:
        picture_act = mni_to_subject.resample_to_subject(act_img, t1_img, interpolation="linear")
    for text in record["warnings"]:  # every record warning is a Python warning too
        _warnings.warn(text, PlanWarning, stacklevel=2)
    return Plan(
        record=record,
        scalp=scalp,
        t1_img=t1_img,
        activation_img=act_img,
        layers={"activation_img": picture_act, "roi_img": roi_head_img, "brain_img": brain_img},
        registration=registration,
    )


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
        (:func:`tmsplan.record_checks.validate_record`); nothing is written.
    """
    from tmsplan.export import export_all
    from tmsplan.record_checks import validate_record

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
