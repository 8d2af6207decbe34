"""Planning step 2: choose the cortical target (map, coordinates or connectivity).

Then carry it into the head and finalise it there (:func:`finalise_target`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import nibabel as nib
import numpy as np

from tmsplan.coil.catalogue import SCALP_TO_CORTEX_MM
from tmsplan.errors import ActivationError, RoiError, SpaceError
from tmsplan.io.bundled import load_mni_brain_mask
from tmsplan.io.images import (
    ImageLike,
    check_img,
    nearest_voxel,
    resample_to_img,
    world_to_voxel,
)
from tmsplan.pipeline.space import HeadSpace
from tmsplan.spaces import MNI_FRAME, SUBJECT_FRAME, Points
from tmsplan.target.activation import (
    STRATEGIES,
    ActivationTarget,
    select_target,
    select_target_depth_aware,
    statistical_threshold,
)
from tmsplan.target.atlas import roi_description, roi_mask_img

GIVEN_TARGET_TOLERANCE_MM = 5.0
"""A given coordinate this close outside the brain is moved to it; farther is refused."""


def check_strategy(strategy: str | None, rule: str, candidates: int) -> str:
    """The strategy name (``rule`` when None), checked with the number of candidates.

    Parameters
    ----------
    strategy : str, optional
    rule : {"peak", "cog"}
    candidates : int

    Returns
    -------
    str
        One of :data:`tmsplan.target.activation.STRATEGIES`.
    """
    strategy = rule if strategy is None else strategy
    if isinstance(candidates, bool) or not isinstance(candidates, int) or not 0 <= candidates <= 20:
        raise ActivationError(
            f"--candidates must be a whole number from 0 to 20, got {candidates!r}."
        )
    if strategy not in STRATEGIES:
        raise ActivationError(f"--strategy must be one of {list(STRATEGIES)}, got {strategy!r}.")
    return strategy


def check_inputs(
    activation: Any,
    *,
    target_mni: Any,
    target_t1: Any,
    roi: str | None,
    roi_mask: Any,
    strategy: str,
    activation_space: str,
    activation_source: dict | None,
) -> None:
    """Refuse inconsistent target inputs (exactly one source; an ROI for a map; spaces).

    Parameters
    ----------
    activation, target_mni, target_t1, roi, roi_mask, strategy, activation_space, activation_source
        See :func:`tmsplan.pipeline.plan.plan_target`.
    """
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


def connectivity_choice(
    strategy, activation, target_mni, target_t1, rest, confounds, rest_mask, seed_roi, seed_mask,
    roi, roi_mask, sign, activation_space, n_candidates,
):  # fmt: skip
    """Run the connectivity strategy (an MNI-space run) when it is the strategy.

    Parameters
    ----------
    strategy : str
        Other strategies refuse the connectivity inputs and return None.
    activation, target_mni, target_t1, rest, confounds, rest_mask, seed_roi, seed_mask : Any
        See :func:`tmsplan.pipeline.plan.plan_target`.
    roi, roi_mask : Any
        The search region.
    sign : {"negative", "positive"}
    activation_space : str
    n_candidates : int

    Returns
    -------
    tmsplan.target.connectivity.ConnectivityTarget or None
    """
    from tmsplan.errors import ConnectivityError

    if strategy != "connectivity":
        if any(x is not None for x in (rest, confounds, rest_mask, seed_roi, seed_mask)):
            raise ActivationError(
                "--rest, --confounds, --rest-mask, --seed-roi and --seed-mask belong to "
                "--strategy connectivity; add it or leave them out."
            )
        return None
    from tmsplan.target.connectivity import connectivity_target  # scipy: only when used

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


@dataclass(frozen=True)
class RoiOnMap:
    """The region the target must lie in, as the plan uses it.

    Attributes
    ----------
    roi : tmsplan.target.atlas.Roi or None
        The atlas ROI (None for a user mask or none at all).
    info : dict or None
        The record's ``roi`` entry.
    label : str
        How messages name it (``"ROI cocaine_mfg_l"``, ``"the ROI mask"``).
    mask_img : nibabel.Nifti1Image or None
        The ROI on the activation map's grid.
    roi_mni : nibabel.Nifti1Image or None
        The atlas ROI on the 1 mm MNI grid, when it is carried into a T1
        (:func:`finalise_target` makes it when missing).
    """

    roi: Any = None
    info: dict | None = None
    label: str = "the ROI"
    mask_img: nib.Nifti1Image | None = None
    roi_mni: nib.Nifti1Image | None = None


def roi_on_map(
    roi_obj: Any,
    roi_mask: ImageLike | None,
    act_img: nib.Nifti1Image | None,
    space: HeadSpace,
    *,
    activation_space: str,
    mask_entry: Callable[[Any], dict],
) -> RoiOnMap:
    """The atlas ROI or the user's mask, on the activation map's grid.

    Parameters
    ----------
    roi_obj : tmsplan.target.atlas.Roi, optional
    roi_mask : image, optional
        A binary mask in the map's space (instead of ``roi_obj``).
    act_img : nibabel.Nifti1Image, optional
        The activation map (no mask is resampled without one).
    space : HeadSpace
    activation_space : {"MNI", "T1w"}
    mask_entry : callable
        Image -> its record entry (path and checksum).

    Returns
    -------
    RoiOnMap
    """
    info, label, mask_img, roi_mni = None, "the ROI", None, None
    if roi_obj is not None:
        info, label = roi_description(roi_obj), f"ROI {roi_obj.id}"
        if space.carried:
            roi_mni = roi_mask_img(roi_obj, load_mni_brain_mask(1))
    if act_img is not None:
        if roi_obj is not None:
            if activation_space == "MNI":
                mask_img = roi_mask_img(roi_obj, act_img)
            else:
                mask_img = space.mni_to_subject.resample_to_subject(
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
            info, label = {"id": None, "mask": mask_entry(roi_mask)}, "the ROI mask"
    return RoiOnMap(roi_obj, info, label, mask_img, roi_mni)


def threshold_for(
    act_img: nib.Nifti1Image | None,
    threshold: float,
    *,
    height_control: str | None,
    alpha: float | None,
    sign: str,
) -> tuple[float, dict | None]:
    """The cluster-forming threshold: ``threshold``, or a voxel-level FPR/FDR/Bonferroni one.

    Parameters
    ----------
    act_img : nibabel.Nifti1Image, optional
    threshold : float
    height_control : {"fpr", "fdr", "bonferroni"}, optional
    alpha : float, optional
    sign : str

    Returns
    -------
    threshold : float
    info : dict or None
        How a statistical threshold was computed (None for a fixed one).
    """
    if act_img is None or height_control is None:
        return threshold, None
    return statistical_threshold(act_img, height_control=height_control, alpha=alpha, sign=sign)


def depth_function(scalp: Any, space: HeadSpace, frame: str) -> Callable:
    """Depth below the scalp (mm) of points in ``frame``: distance to the nearest skin vertex.

    Parameters
    ----------
    scalp : tmsplan.head.scalp.ScalpSurface
    space : HeadSpace
    frame : str
        Frame of the points asked about (MNI points are carried to the head).

    Returns
    -------
    callable
        ``(n, 3)`` points -> ``(n,)`` depths (mm).
    """
    from scipy.spatial import cKDTree

    vertices = np.asarray(scalp.vertices, dtype=np.float64)
    skin = ~np.asarray(scalp.fov_boundary, dtype=bool)
    tree = cKDTree(vertices[skin] if skin.any() else vertices)

    def depth_of(points: np.ndarray) -> np.ndarray:
        pts = Points(np.asarray(points, dtype=np.float64), frame)
        head = space.to_head(pts).xyz if frame == MNI_FRAME else pts.xyz
        return tree.query(head)[0]

    return depth_of


def choose_target(
    act_img: nib.Nifti1Image | None,
    region: RoiOnMap,
    *,
    activation_space: str = "MNI",
    target_mni: Any = None,
    target_t1: Any = None,
    strategy: str = "peak",
    threshold: float,
    sign: str = "positive",
    candidates: int = 3,
    min_cluster_mm3: float = 0.0,
    depth_of: Callable | None = None,
    max_depth_mm: float | None = None,
    coil: Any = None,
) -> tuple[Points, ActivationTarget | None]:
    """The cortical target in its source frame: from the map, or the given coordinates.

    Parameters
    ----------
    act_img : nibabel.Nifti1Image, optional
        The activation map (``None``: coordinates are given).
    region : RoiOnMap
    activation_space : {"MNI", "T1w"}
    target_mni, target_t1 : (3,) float, optional
    strategy : {"peak", "cog", "depth-aware", "connectivity"}
    threshold, sign, candidates, min_cluster_mm3
        See :func:`tmsplan.target.activation.select_target`.
    depth_of, max_depth_mm, coil
        For ``strategy="depth-aware"`` (:func:`depth_function`, the coil's reach).

    Returns
    -------
    target : Points
        ``(1, 3)`` in MNI152 or the T1's frame (not carried yet).
    chosen : ActivationTarget or None
        The map's selection (its notes, candidates, evidence).
    """
    if act_img is None:
        if target_mni is not None:
            return Points(target_mni, MNI_FRAME), None
        return Points(target_t1, SUBJECT_FRAME), None
    act_frame = MNI_FRAME if activation_space == "MNI" else SUBJECT_FRAME
    common = dict(
        frame=act_frame,
        threshold=threshold,
        sign=sign,
        roi_label=region.label,
        n_candidates=candidates,
        min_cluster_mm3=min_cluster_mm3,
    )
    if strategy == "depth-aware":
        chosen = select_target_depth_aware(
            act_img,
            region.mask_img,
            depth_of=depth_of,
            max_depth_mm=max_depth_mm,
            d_half_mm=10.0 * coil.d_half_cm,
            scalp_to_cortex_mm=SCALP_TO_CORTEX_MM,
            **common,
        )
    else:
        chosen = select_target(act_img, region.mask_img, rule=strategy, **common)
    return chosen.target, chosen


@dataclass(frozen=True)
class CarriedTarget:
    """The cortical target in the head's frame, with its MNI coordinates.

    Attributes
    ----------
    target : Points
        ``(1, 3)`` in the head's frame.
    target_mni : (3,) float64 or None
        The same point in MNI152 (None without a transform).
    snap_mm : float
        How far :func:`finalise_target` moved a carried target into the brain.
    given_move_mm : float or None
        How far a given coordinate was moved into the brain (None: not checked).
    brain_img : nibabel.Nifti1Image or None
        Brain mask in the head's frame (None in a T1 without a transform).
    roi_head_img : nibabel.Nifti1Image or None
        The ROI on the head's grid (checks and pictures).
    tissue : dict or None
        The tissue at the target and any move into grey matter
        (:func:`grey_matter_target`; None when not estimated).
    """

    target: Points
    target_mni: np.ndarray | None
    snap_mm: float = 0.0
    given_move_mm: float | None = None
    brain_img: nib.Nifti1Image | None = None
    roi_head_img: nib.Nifti1Image | None = None
    tissue: dict | None = None


def carry_target(target: Points, space: HeadSpace) -> tuple[CarriedTarget, list[str]]:
    """Carry the target into the head's frame and compute its MNI coordinates.

    Parameters
    ----------
    target : Points
        ``(1, 3)`` in MNI152 or in the head's frame.
    space : HeadSpace

    Returns
    -------
    carried : CarriedTarget
    warnings : list of str
    """
    head_point = space.to_head(target) if target.frame == MNI_FRAME else target
    if space.frame == MNI_FRAME:
        return CarriedTarget(head_point, head_point.xyz[0]), []
    if space.carried:
        return CarriedTarget(head_point, space.mni_to_subject.inverse_points(head_point).xyz[0]), []
    return CarriedTarget(head_point, None), [
        "no MNI->T1 transform: the target's MNI coordinates are unknown, and the handle "
        "rule uses the T1's world axes (assumes the head is roughly aligned with them)."
    ]


def _snap_into(mask_img: nib.Nifti1Image, xyz: np.ndarray) -> tuple[np.ndarray, float]:
    """Nearest voxel centre of a binary mask to ``xyz`` (itself when inside); distance mm."""
    data = np.asarray(mask_img.dataobj)
    ijk = np.round(world_to_voxel(mask_img.affine, xyz[None])[0]).astype(int)
    if np.all(ijk >= 0) and np.all(ijk < data.shape) and data[tuple(ijk)] > 0:
        return xyz, 0.0
    nearest, distance = nearest_voxel(data, mask_img.affine, xyz)
    if nearest is None:
        raise SpaceError("the brain mask carried into the T1 is empty; check the transform.")
    return nearest, distance


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
    _, distance = nearest_voxel(np.asarray(mask_img.dataobj), mask_img.affine, xyz)
    return distance <= tolerance_mm


def finalise_target(
    carried: CarriedTarget,
    space: HeadSpace,
    region: RoiOnMap,
    *,
    given_frame: str | None,
    activation_space: str = "MNI",
) -> tuple[CarriedTarget, list[str]]:
    """Make the carried target a brain target: the last word on the cortical point.

    A given coordinate outside the brain is moved to the nearest brain voxel
    within :data:`GIVEN_TARGET_TOLERANCE_MM` (farther: refused); a target carried
    into a T1 is snapped into the carried brain mask and re-checked inside the
    carried ROI.

    Parameters
    ----------
    carried : CarriedTarget
        From :func:`carry_target`.
    space : HeadSpace
    region : RoiOnMap
    given_frame : str, optional
        Frame of a coordinate given by the user (None: chosen from a map).
    activation_space : {"MNI", "T1w"}

    Returns
    -------
    CarriedTarget
        With the final point, the distances moved, the brain and ROI images in
        the head's frame.
    warnings : list of str
    """
    warnings: list[str] = []
    target, target_mni = carried.target, carried.target_mni
    snap_mm, given_move_mm, roi_head_img = 0.0, None, None
    brain_img = load_mni_brain_mask(1)
    xfm = space.mni_to_subject
    if space.carried:
        brain_img = xfm.resample_to_subject(brain_img, space.t1_img, interpolation="nearest")
    if given_frame is not None and (space.carried or space.frame == MNI_FRAME):
        moved, given_move_mm = _given_target_in_brain(
            brain_img, target.xyz[0], MNI_FRAME if given_frame == MNI_FRAME else space.frame
        )
        if given_move_mm > 0:
            warnings.append(
                f"the given target lay {given_move_mm:.1f} mm outside the brain (within the "
                f"{GIVEN_TARGET_TOLERANCE_MM:g} mm tolerance); it was moved to the nearest brain "
                "voxel (the cortex)."
            )
            target = Points(moved, target.frame)
            if space.frame == MNI_FRAME:
                target_mni = target.xyz[0]
            else:
                target_mni = xfm.inverse_points(target).xyz[0]
    if space.carried:
        snapped, snap_mm = _snap_into(brain_img, target.xyz[0])
        if snap_mm > 0:
            warnings.append(
                f"the carried target fell {snap_mm:.1f} mm outside the brain mask carried "
                "into the T1; it was snapped to the nearest brain voxel."
            )
            target = Points(snapped, SUBJECT_FRAME)
            target_mni = xfm.inverse_points(target).xyz[0]
        if region.roi is not None:
            roi_mni = region.roi_mni  # None when the region was made for the MNI head
            if roi_mni is None:
                roi_mni = roi_mask_img(region.roi, load_mni_brain_mask(1))
            roi_head_img = xfm.resample_to_subject(roi_mni, space.t1_img, interpolation="nearest")
            voxel = float(np.max(space.t1_header.header.get_zooms()[:3]))
            if not _inside(roi_head_img, target.xyz[0], tolerance_mm=voxel):
                warnings.append(
                    f"the target carried into the T1 is not inside {region.label} carried into "
                    "the T1; check the transform."
                )
    elif region.roi is not None and space.frame == MNI_FRAME:
        roi_head_img = region.mask_img
    elif region.mask_img is not None and activation_space == "T1w":
        roi_head_img = region.mask_img
    if space.frame == SUBJECT_FRAME and not space.carried:
        brain_img = None
    final = CarriedTarget(target, target_mni, snap_mm, given_move_mm, brain_img, roi_head_img)
    return final, warnings


def _to_grey_matter(
    xyz: np.ndarray, space: HeadSpace, brain_img: nib.Nifti1Image, head, *, snap: bool
) -> tuple[Any, dict, str | None]:
    """The grey-matter check of one point in a T1: (CortexTarget or None, record entry, error)."""
    from tmsplan.errors import ImageError
    from tmsplan.target.cortex import cortical_target, estimate_tissue

    try:
        tissue_map = estimate_tissue(space.t1_img, brain_img)
    except ImageError as exc:
        return None, {"at_target": None, "error": str(exc)}, str(exc)
    scalp_point, _, _ = head.proximity.nearest(xyz, skin_only=True)
    result = cortical_target(tissue_map, xyz, scalp_point, snap=snap)
    return result, result.describe(tissue_map), None


def grey_matter_target(
    final: CarriedTarget, space: HeadSpace, head, *, snap: bool = True
) -> tuple[CarriedTarget, list[str]]:
    """Estimate the tissue at a target carried into a T1 and move it to grey matter.

    A target carried by a transform can land in white matter or CSF a few mm
    under the cortex. The patient's tissue is estimated in the carried brain
    mask (:func:`tmsplan.target.cortex.estimate_tissue`); a target in white matter or
    CSF moves to the nearest grey matter toward the scalp (``snap=False``
    keeps it and records the tissue). Plans on the embedded MNI head and T1
    plans without a transform are returned unchanged.

    Parameters
    ----------
    final : CarriedTarget
        From :func:`finalise_target`.
    space : HeadSpace
    head : tmsplan.head.cache.Head
        The head (its scalp sets "toward the scalp").
    snap : bool
        Move a white-matter/CSF target into grey matter.

    Returns
    -------
    CarriedTarget
        With ``tissue`` filled in (and the moved point).
    warnings : list of str
    """
    from dataclasses import replace

    if not space.carried or final.brain_img is None:
        return final, []
    result, tissue, error = _to_grey_matter(
        final.target.xyz[0], space, final.brain_img, head, snap=snap
    )
    if result is None:
        return replace(final, tissue=tissue), [
            f"the tissue at the target could not be estimated ({error}); the target was not "
            "checked for grey matter."
        ]
    warnings: list[str] = []
    target, target_mni = final.target, final.target_mni
    if result.moved_mm > 0:
        target = Points(result.xyz, SUBJECT_FRAME)
        target_mni = space.mni_to_subject.inverse_points(target).xyz[0]
        warnings.append(
            f"the target carried into the T1 lay in {result.tissue_given}; it was moved "
            f"{result.moved_mm:.1f} mm to the nearest grey matter toward the scalp "
            "(--no-snap, snap_to_grey_matter=False, keeps it as carried)."
        )
    elif result.tissue != "grey matter":
        warnings.append(
            f"the target carried into the T1 lies in {result.tissue} "
            f"({'kept as carried' if not snap else result.how})."
        )
    return replace(final, target=target, target_mni=target_mni, tissue=tissue), warnings


def carry_candidate(
    point: Points,
    space: HeadSpace,
    head,
    *,
    final: CarriedTarget | None = None,
    snap: bool = True,
) -> tuple[Points, np.ndarray | None, dict]:
    """Carry a ranked candidate into the head's frame by the chosen target's rule.

    The same steps as the chosen target (:func:`carry_target`,
    :func:`finalise_target`, :func:`grey_matter_target`): in a T1 reached by a
    transform the candidate is snapped into the carried brain mask, then its
    tissue is checked and (``snap``) a white-matter or CSF point moves to the
    nearest grey matter toward the scalp. On the embedded MNI head, or in a T1
    without a transform, it is only carried.

    Parameters
    ----------
    point : Points
        ``(1, 3)`` candidate in MNI152 or in the head's frame.
    space : HeadSpace
    head : tmsplan.head.cache.Head
    final : CarriedTarget, optional
        The chosen target (:func:`grey_matter_target`): its brain mask, and
        whether its tissue was checked (None: only carried).
    snap : bool
        As for the chosen target (``--no-snap`` keeps the carried point).

    Returns
    -------
    head_point : Points
        ``(1, 3)`` in the head's frame.
    mni : (3,) float64 or None
        The same point in MNI152 (None without a transform).
    checks : dict
        ``snap_distance_mm`` (and ``tissue`` when the chosen target's tissue
        was checked), recorded as for the chosen target.
    """
    head_point = space.to_head(point) if point.frame == MNI_FRAME else point
    mni = point.xyz[0] if point.frame == MNI_FRAME else None
    checks: dict = {"snap_distance_mm": 0.0}
    if final is None or not space.carried or final.brain_img is None:
        if mni is None and space.carried:
            mni = space.mni_to_subject.inverse_points(head_point).xyz[0]
        return head_point, mni, checks
    xyz, snap_mm = _snap_into(final.brain_img, head_point.xyz[0])
    checks["snap_distance_mm"] = round(snap_mm, 3)
    if final.tissue is not None and "error" in final.tissue:
        checks["tissue"] = dict(final.tissue)  # the estimate failed for the chosen target too
    elif final.tissue is not None:
        result, checks["tissue"], _ = _to_grey_matter(xyz, space, final.brain_img, head, snap=snap)
        if result is not None:
            xyz = result.xyz
    moved = Points(np.asarray(xyz, dtype=np.float64), SUBJECT_FRAME)
    if snap_mm > 0 or (checks.get("tissue") or {}).get("moved_to_grey_matter_mm", 0) > 0:
        head_point, mni = moved, space.mni_to_subject.inverse_points(moved).xyz[0]
    elif mni is None:
        mni = space.mni_to_subject.inverse_points(head_point).xyz[0]
    return head_point, mni, checks
