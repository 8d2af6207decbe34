"""Planning step 1: the head image, its frame and the MNI -> head transform.

The head is the patient's T1 (frame ``T1w``) or the embedded MNI152 head.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import nibabel as nib
import numpy as np

from tmsplan.errors import SpaceError
from tmsplan.head.cache import Head, load_head, registration_once, transform_once
from tmsplan.io.bundled import mni_head_path
from tmsplan.io.images import ImageLike, check_img, check_img_header
from tmsplan.spaces import MNI_FRAME, SUBJECT_FRAME, Points


@dataclass(frozen=True)
class HeadSpace:
    """The head a plan is computed on, and how MNI points reach it.

    Attributes
    ----------
    frame : str
        World frame of the plan (``"MNI152NLin6Asym"`` or ``"T1w"``).
    head_source : str, os.PathLike or nibabel image
        The head image as given (the embedded MNI head's path without a T1).
    t1_header : nibabel.Nifti1Image
        The head image with its header checked; its voxels are read (and checked)
        by :attr:`t1_img` when something needs them.
    mni_to_subject : tmsplan.xfm.transforms.MniToSubject or None
        MNI -> T1 transform (None on the MNI head or without a transform).
    registration : tmsplan.xfm.registration.RegistrationResult or None
        The built-in registration, when it made ``mni_to_subject``.
    transform_info : dict or None
        The record's ``transform`` entry.
    """

    frame: str
    head_source: Any
    t1_header: nib.Nifti1Image
    mni_to_subject: Any = None
    registration: Any = None
    transform_info: dict | None = None
    _read: dict = field(default_factory=dict, repr=False, compare=False)  # shared by replace()

    @property
    def t1_img(self) -> nib.Nifti1Image:
        """The head image, checked, its voxels in memory (read on first use).

        A plan on a cached head does not read them unless a step needs them: its
        scalp, skin voxels and checks come from the cache entry of the same file.
        """
        if "t1_img" not in self._read:
            self._read["t1_img"] = check_img(self.head_source, name="t1")
        return self._read["t1_img"]

    @property
    def t1_on_hand(self) -> nib.Nifti1Image:
        """:attr:`t1_img` when already read, else :attr:`t1_header` (voxels on disk)."""
        return self._read.get("t1_img", self.t1_header)

    @property
    def carried(self) -> bool:
        """True when MNI inputs are carried into a patient's T1 by a transform."""
        return self.frame == SUBJECT_FRAME and self.mni_to_subject is not None

    def to_head(self, points_mni: Points) -> Points:
        """MNI points in the head's frame (unchanged on the MNI head).

        Parameters
        ----------
        points_mni : Points
            ``(n, 3)`` mm in MNI152.

        Returns
        -------
        Points
            ``(n, 3)`` mm in :attr:`frame`.
        """
        return self.mni_to_subject.apply_points(points_mni) if self.carried else points_mni


def load_activation(
    activation: ImageLike | None, activation_space: str
) -> tuple[nib.Nifti1Image | None, list[str]]:
    """Check the activation map; warn when an "MNI" map's header says scanner coordinates.

    Parameters
    ----------
    activation : image, optional
        3-D statistic map.
    activation_space : {"MNI", "T1w"}

    Returns
    -------
    act_img : nibabel.Nifti1Image or None
    warnings : list of str
    """
    if activation is None:
        return None, []
    act_img = check_img(activation, name="activation", nan_policy="zero")
    codes = {int(act_img.header["sform_code"]), int(act_img.header["qform_code"])} - {0}
    if activation_space == "MNI" and codes == {1}:
        return act_img, [
            "the activation map's header says scanner coordinates (sform/qform code 1), "
            "yet it is used as an MNI map; if it is a subject's map, re-run with "
            "activation_space='T1w' and the subject's t1."
        ]
    return act_img, []


def resolve_head_space(
    t1: ImageLike | None,
    *,
    mni_to_t1: Any = None,
    xfm_kind: str | None = None,
    xfm_moving: ImageLike | None = None,
    register: bool | str = False,
    accept_poor_fit: bool = False,
    needs_mni: bool = False,
    needs_t1: bool = False,
) -> tuple[HeadSpace, list[str]]:
    """The head image, its frame and the MNI -> head transform, checked together.

    Parameters
    ----------
    t1 : image, optional
        The patient's head T1; ``None``: the embedded MNI152 head (1 mm).
    mni_to_t1, xfm_kind, xfm_moving, register, accept_poor_fit
        See :func:`tmsplan.pipeline.plan.plan_target`.
    needs_mni : bool
        Some input is in MNI (atlas ROI, group map, ``target_mni``): a patient
        T1 then needs a transform.
    needs_t1 : bool
        Some input is in the T1 (subject map, ``target_t1``): a T1 is required.

    Returns
    -------
    space : HeadSpace
    warnings : list of str

    Raises
    ------
    SpaceError
        A missing T1 or transform, or both a transform and ``register``.
    """
    warnings: list[str] = []
    if t1 is None:
        if needs_t1:
            raise SpaceError("a subject-space map or target_t1 needs the patient's T1 (t1).")
        if mni_to_t1 is not None or register:
            raise SpaceError("mni_to_t1 or register=True needs the patient's T1 (t1).")
        frame, head_source = MNI_FRAME, mni_head_path(1)
    else:
        frame, head_source = SUBJECT_FRAME, t1
    space = HeadSpace(frame, head_source, check_img_header(head_source, name="t1"))
    mni_to_subject, registration, transform_info = (
        _resolve_transform(
            space, mni_to_t1, xfm_kind, register, xfm_moving, warnings, accept_poor_fit
        )
        if t1 is not None
        else (None, None, None)
    )
    if t1 is not None and needs_mni and mni_to_subject is None:
        raise SpaceError(
            "planning in a patient's T1 from MNI-space inputs (atlas ROI, group map or "
            "target_mni) needs an MNI->T1 transform: pass mni_to_t1 (fMRIPrep's "
            "from-MNI152NLin2009cAsym_to-T1w_mode-image_xfm.h5, an FSL .mat or a 4x4 "
            "matrix) or register=True to run the built-in registration."
        )
    space = replace(space, mni_to_subject=mni_to_subject, registration=registration,
                    transform_info=transform_info)  # fmt: skip
    return space, warnings


def _resolve_transform(
    space: HeadSpace,
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
    t1_img = space.t1_img  # a transform is fitted to (or registered on) the T1's voxels
    if mni_to_t1 is not None:
        from tmsplan.xfm.transforms import MniToSubject

        if isinstance(mni_to_t1, MniToSubject):
            from tmsplan.xfm.check import check_transform_fit

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


def head_for(space: HeadSpace, head: Head | None = None) -> Head:
    """The :class:`~tmsplan.head.cache.Head` of the plan's head image (loaded, or checked).

    Parameters
    ----------
    space : HeadSpace
    head : Head, optional
        A head loaded before; refused when it belongs to another image or frame.

    Returns
    -------
    Head
    """
    if head is None:
        return load_head(space.head_source, frame=space.frame)
    head.check_matches(space.head_source, frame=space.frame)
    return head


def _carry_direction(mni_to_subject, target_mni: np.ndarray, direction) -> np.ndarray:
    """Unit vector in the T1 frame for an MNI direction at the target (local Jacobian)."""
    step = 10.0 * np.asarray(direction, dtype=np.float64)
    ends = Points(np.stack([target_mni - step, target_mni + step]), mni_to_subject.src_frame)
    moved = mni_to_subject.apply_points(ends).xyz
    vec = moved[1] - moved[0]
    return vec / np.linalg.norm(vec)


def head_directions(space: HeadSpace, target_mni: np.ndarray | None) -> dict[str, np.ndarray]:
    """MNI's posterior, right and inferior directions at the target, in the head's frame.

    Parameters
    ----------
    space : HeadSpace
    target_mni : (3,) float, optional
        The target in MNI152 mm.

    Returns
    -------
    dict
        ``posterior``, ``right``, ``inferior`` -> (3,) unit vectors; empty (the
        world axes are used) unless MNI is carried into a T1.
    """
    if not space.carried:
        return {}
    return {
        name: _carry_direction(space.mni_to_subject, target_mni, vec)
        for name, vec in (
            ("posterior", (0.0, -1.0, 0.0)),
            ("right", (1.0, 0.0, 0.0)),
            ("inferior", (0.0, 0.0, -1.0)),
        )
    }
