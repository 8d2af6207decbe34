"""Carry points and images from an MNI template frame into the patient's T1 frame.

Design notes: ``docs/transforms.md``, section ``tmsplan.xfm.transforms``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import nibabel as nib
import numpy as np
from nibabel.affines import apply_affine

from tmsplan.errors import FormatError, RegistrationError, SpaceError
from tmsplan.io.images import (
    ImageLike,
    check_img,
    file_sha256,
    img_on_grid,
    voxel_to_world,
    world_to_voxel,
)
from tmsplan.spaces import MNI_FRAME, SUBJECT_FRAME, Points
from tmsplan.xfm.files import (
    TRANSFORM_KINDS,
    TransformKind,
    detect_kind,
    frame_from_name,
    is_matrix_text,
    read_affine,
    read_fsl,
    read_itk,
)
from tmsplan.xfm.headfit import (
    FIT_DIRECTION_MARGIN,
    FIT_GOOD_HEAD_DICE,
    FIT_MIN_HEAD_DICE,
    MIN_HEAD_VOLUME_L,
    head_fit,
    judge_fit,
)
from tmsplan.xfm.warps import (
    DisplacementField,
    check_head_affine,
    linear_part,
    map_steps,
    outside_fields,
)

__all__ = [
    "TransformKind",
    "DisplacementField",
    "MniToSubject",
    "load_mni_to_subject",
    "head_fit",
    "judge_fit",
    "FIT_MIN_HEAD_DICE",
    "FIT_DIRECTION_MARGIN",
    "FIT_GOOD_HEAD_DICE",
    "MIN_HEAD_VOLUME_L",
]

_INVERT_TOL_MM = 1e-3
_INVERT_MAX_ITER = 200
_CHUNK = 1 << 20  # points per chunk when resampling through a field


# --------------------------------------------------------------------------- the class


@dataclass(frozen=True, eq=False)
class MniToSubject:
    """Transform from an MNI frame into the patient's T1 world frame.

    Name variables holding it by direction: ``mni_to_subject``.

    Attributes
    ----------
    src_frame : str
        MNI frame of the inputs, e.g. ``"MNI152NLin6Asym"``.
    dst_frame : str
        ``"T1w"``: RAS+ mm world of the patient's T1 (its sform, else qform).
    kind : str
        Where it came from: ``"affine"``, ``"itk"``, ``"fsl"``, ``"matrix"`` (built in
        memory) or ``"ants-registration"``.
    steps : tuple of (4, 4) float64 arrays and DisplacementField
        The **T1w -> MNI** point mapping (ITK "image" direction, RAS+ mm), in the
        order applied. Read-only.
    paths : tuple of str
        Files the transform was read from (empty when built in memory).
    sha256 : tuple of str
        SHA-256 of each file in :attr:`paths` (or of the bytes it will be saved as).
    fit : Mapping or None
        Overlap figures from :func:`head_fit` when checked against a T1.
    """

    src_frame: str
    kind: str
    steps: tuple = field(repr=False)
    paths: tuple[str, ...] = ()
    sha256: tuple[str, ...] = ()
    dst_frame: str = SUBJECT_FRAME
    fit: Mapping | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.src_frame or not self.dst_frame:
            raise SpaceError("MniToSubject needs non-empty frame names.")
        if self.src_frame == self.dst_frame:
            raise SpaceError(
                f"MniToSubject maps an MNI frame into {self.dst_frame!r}; got the same frame "
                f"{self.src_frame!r} on both sides."
            )
        steps = []
        for step in self.steps:
            if isinstance(step, DisplacementField):
                steps.append(step)
                continue
            mat = np.array(step, dtype=np.float64)
            if mat.shape != (4, 4) or not np.all(np.isfinite(mat)):
                raise SpaceError("MniToSubject steps must be finite 4x4 matrices or fields.")
            mat.setflags(write=False)
            steps.append(mat)
        if not steps:
            raise SpaceError("MniToSubject needs at least one step.")
        object.__setattr__(self, "steps", tuple(steps))
        object.__setattr__(self, "paths", tuple(str(p) for p in self.paths))
        object.__setattr__(self, "sha256", tuple(self.sha256))

    # ------------------------------------------------------------------ building

    @classmethod
    def from_matrix(
        cls, mni_to_subject_matrix: np.ndarray, *, src_frame: str = MNI_FRAME
    ) -> MniToSubject:
        """Build from a 4x4 RAS+ mm matrix mapping MNI points to T1 points.

        Parameters
        ----------
        mni_to_subject_matrix : (4, 4) float
            ``t1_xyz1 = matrix @ mni_xyz1``.
        src_frame : str
            MNI frame name.

        Raises
        ------
        FormatError, RegistrationError
            Not a finite affine; mirrored or implausibly scaled.
        """
        mat = np.array(mni_to_subject_matrix, dtype=np.float64)
        check_head_affine(mat, "mni_to_subject matrix")
        return cls(src_frame=src_frame, kind="matrix", steps=(np.linalg.inv(mat),))

    # ------------------------------------------------------------------ properties

    @property
    def direction(self) -> str:
        """``"mni_to_subject"``."""
        return "mni_to_subject"

    @property
    def is_linear(self) -> bool:
        """True when no displacement field is involved."""
        return not any(isinstance(s, DisplacementField) for s in self.steps)

    @property
    def matrix(self) -> np.ndarray:
        """``(4, 4)`` RAS+ mm matrix mapping MNI points to T1 points.

        For a nonlinear transform this is its affine part only.
        """
        return np.linalg.inv(linear_part(self.steps))

    def as_transform(self):
        """The linear transform as a :class:`tmsplan.spaces.Transform` (src -> dst).

        Raises
        ------
        RegistrationError
            The transform has a displacement field.
        """
        from tmsplan.spaces import Transform

        if not self.is_linear:
            raise RegistrationError(
                "this MNI -> T1 transform is nonlinear (it has a displacement field); use "
                "apply_points()/inverse_points() instead of a 4x4 matrix."
            )
        return Transform(self.src_frame, self.dst_frame, self.matrix)

    # ------------------------------------------------------------------ points

    def apply_points(self, points: Points) -> Points:
        """Carry points from the MNI frame into the T1 frame.

        Parameters
        ----------
        points : Points
            ``(n, 3)`` RAS+ mm in :attr:`src_frame`.

        Returns
        -------
        Points
            ``(n, 3)`` RAS+ mm in :attr:`dst_frame` (``"T1w"``).

        Raises
        ------
        SpaceError
            Points in another frame, or outside the displacement field.
        RegistrationError
            The displacement field cannot be inverted at a point.
        """
        self._check_frame(points, self.src_frame, "apply_points", "inverse_points")
        if self.is_linear:
            mat = self.matrix
            return Points(apply_affine(mat, points.xyz), self.dst_frame)
        xyz = self._invert(points.xyz)
        self._check_inside(xyz, points.xyz, "MNI")
        return Points(xyz, self.dst_frame)

    def inverse_points(self, points: Points) -> Points:
        """Carry points from the T1 frame back into the MNI frame.

        Parameters
        ----------
        points : Points
            ``(n, 3)`` RAS+ mm in :attr:`dst_frame` (``"T1w"``).

        Returns
        -------
        Points
            ``(n, 3)`` RAS+ mm in :attr:`src_frame`.

        Raises
        ------
        SpaceError
            Points in another frame, or outside the displacement field.
        """
        self._check_frame(points, self.dst_frame, "inverse_points", "apply_points")
        if not self.is_linear:
            self._check_inside(points.xyz, points.xyz, "T1")
        return Points(map_steps(self.steps, points.xyz), self.src_frame)

    def _check_frame(self, points: Points, frame: str, method: str, other: str) -> None:
        if not isinstance(points, Points):
            raise SpaceError(
                f"{method}: expected tmsplan.spaces.Points, got {type(points).__name__}; wrap "
                f"coordinates as Points(xyz, {frame!r})."
            )
        if points.frame != frame:
            raise SpaceError(
                f"{method}: points are in {points.frame!r} but this transform maps "
                f"{self.src_frame!r} -> {self.dst_frame!r} and {method} expects {frame!r}; "
                f"use {other}() for the other direction."
            )

    def _check_inside(self, t1_xyz: np.ndarray, shown: np.ndarray, label: str) -> None:
        outside = outside_fields(self.steps, t1_xyz)
        if outside.any():
            bad = np.round(shown[outside][:3], 1).tolist()
            raise SpaceError(
                f"{int(outside.sum())} {label} point(s) (e.g. {bad}) lie outside the "
                "displacement field of the transform, where it is undefined; check that the "
                "points are in the head and in the right frame."
            )

    def _invert(self, mni_xyz: np.ndarray) -> np.ndarray:
        lin_inv = np.linalg.inv(linear_part(self.steps))
        jac_inv = lin_inv[:3, :3]
        xyz = mni_xyz @ jac_inv.T + lin_inv[:3, 3]
        err = np.full(len(xyz), np.inf)
        for _ in range(_INVERT_MAX_ITER):
            resid = map_steps(self.steps, xyz) - mni_xyz
            err = np.linalg.norm(resid, axis=1)
            if err.max() < _INVERT_TOL_MM:
                return xyz
            xyz = xyz - resid @ jac_inv.T
        raise RegistrationError(
            f"the displacement field could not be inverted to {_INVERT_TOL_MM} mm at "
            f"{int((err >= _INVERT_TOL_MM).sum())} point(s) (residual up to {err.max():.3g} mm); "
            "the warp is not invertible there (folded or extreme); check the registration."
        )

    # ------------------------------------------------------------------ images

    def resample_to_subject(
        self,
        img_in_mni: ImageLike,
        t1: ImageLike,
        *,
        interpolation: Literal["nearest", "linear"] = "nearest",
    ) -> nib.Nifti1Image:
        """Carry an image in the MNI frame (ROI mask, group map) onto the T1 grid.

        Parameters
        ----------
        img_in_mni : str, os.PathLike or nibabel image
            3-D image whose world frame is :attr:`src_frame`.
        t1 : str, os.PathLike or nibabel image
            The patient's T1; only its grid (shape, affine) is used.
        interpolation : {"nearest", "linear"}
            ``"nearest"`` for masks and labels, ``"linear"`` for continuous maps.

        Returns
        -------
        nibabel.Nifti1Image
            Float64 data on the T1 grid (T1 affine and codes); 0 outside the
            MNI image's field of view.

        Raises
        ------
        SpaceError
            The MNI image lands entirely outside the T1's field of view.
        """
        from scipy import ndimage

        if interpolation not in ("nearest", "linear"):
            raise ValueError(f"interpolation must be 'nearest' or 'linear', got {interpolation!r}")
        order = 0 if interpolation == "nearest" else 1
        src = check_img(img_in_mni, name="img_in_mni", require_signal=False)
        ref = check_img(t1, name="t1", require_signal=False)
        src_data = np.asarray(src.dataobj, dtype=np.float64)
        shape = tuple(int(s) for s in ref.shape[:3])
        if self.is_linear:
            from nibabel.processing import resample_from_to

            # T1 voxel -> T1 world -> MNI world (points T1w -> MNI) -> MNI voxel
            mni_grid = (shape, linear_part(self.steps) @ ref.affine)
            floating = nib.Nifti1Image(src_data, src.affine)
            resampled = resample_from_to(floating, mni_grid, order=order, mode="constant", cval=0.0)
            data = np.asarray(resampled.dataobj)
        else:
            flat = np.zeros(int(np.prod(shape)))
            for start in range(0, flat.size, _CHUNK):
                idx = np.arange(start, min(start + _CHUNK, flat.size))
                ijk = np.stack(np.unravel_index(idx, shape), axis=1)
                mni = map_steps(self.steps, voxel_to_world(ref.affine, ijk))
                vox = world_to_voxel(src.affine, mni)
                flat[idx] = ndimage.map_coordinates(
                    src_data, vox.T, order=order, mode="constant", cval=0.0, prefilter=False
                )
            data = flat.reshape(shape)
        if np.any(src_data) and not np.any(data):
            raise SpaceError(
                "img_in_mni lands entirely outside the T1's field of view after the MNI -> "
                "T1 transform: the image is probably not in the MNI frame, or the transform "
                "belongs to another T1."
            )
        return img_on_grid(data, ref)

    # ------------------------------------------------------------------ record

    def describe(self) -> dict:
        """JSON-ready description (kind, files, checksums, direction, frames, fit).

        Returns
        -------
        dict
            Keys ``kind``, ``direction`` (``"mni_to_subject"``), ``src_frame``,
            ``dst_frame``, ``paths``, ``sha256``, ``linear``,
            ``matrix_mni_to_subject`` (4x4 rows; the affine part when nonlinear)
            and ``fit`` (overlap figures or None).
        """
        return {
            "kind": self.kind,
            "direction": self.direction,
            "src_frame": self.src_frame,
            "dst_frame": self.dst_frame,
            "paths": list(self.paths),
            "sha256": list(self.sha256),
            "linear": self.is_linear,
            "matrix_mni_to_subject": np.round(self.matrix, 8).tolist(),
            "fit": None if self.fit is None else {k: v for k, v in self.fit.items()},
        }


# --------------------------------------------------------------------------- loading


def load_mni_to_subject(
    path: str | os.PathLike,
    *,
    kind: TransformKind | None = None,
    reference: ImageLike | None = None,
    moving: ImageLike | None = None,
    src_frame: str | None = None,
    check_fit: bool = True,
    accept_poor_fit: bool = False,
) -> MniToSubject:
    """Read an MNI -> T1 transform file.

    Parameters
    ----------
    path : str or os.PathLike
        - plain text 4x4 matrix (``kind="affine"``): RAS+ mm, maps MNI world points
          to T1 world points (``t1 = M @ [x, y, z, 1]``); a 3x4 matrix is completed.
        - ITK/ANTs (``kind="itk"``): ``.txt``/``.tfm`` text, binary ``.mat`` or a
          composite ``.h5``, in ITK's *image* convention for an MNI -> T1w
          resampling (fixed = T1w, moving = MNI), i.e. as fMRIPrep names
          ``from-<MNI>_to-T1w_mode-image_xfm``; ANTs ``antsRegistration`` with
          fixed = T1 and moving = MNI writes it as its forward transform.
        - FSL (``kind="fsl"``): the matrix of ``flirt -in <MNI> -ref <T1> -omat``.
    kind : {"affine", "itk", "fsl"} or None
        Force a reader; by default the kind is detected from content and
        extension (a text ``.mat`` of 4x4 numbers is FSL, other 4x4 text files
        are plain affines).
    reference : str, os.PathLike, nibabel image or None
        The patient's T1. Needed for FSL (its ``-ref``); when given, the
        transform is also checked against it (see ``check_fit``).
    moving : str, os.PathLike, nibabel image or None
        The MNI image FLIRT was run on (its ``-in``); needed for FSL only,
        e.g. :func:`tmsplan.io.bundled.mni_head_path` (1) for FSL's
        ``MNI152_T1_1mm``.
    src_frame : str or None
        MNI frame of the transform. None: taken from a BIDS-style file name
        (``from-<frame>_to-T1w``) when there is one, else ``"MNI152NLin6Asym"``.
    check_fit : bool
        With ``reference``: carry the bundled MNI head into the T1 and refuse a
        transform that does not fit it (see
        :func:`tmsplan.xfm.check.check_transform_fit`). Without ``kind``,
        a plain-text 4x4 matrix (any extension) is then read both as FSL and as a
        plain affine and the reading that fits is kept
        (:func:`tmsplan.xfm.check.choose_matrix_kind`; ``moving``
        defaults to the embedded 1 mm MNI head there).
    accept_poor_fit : bool
        Keep a transform that fits poorly; ``fit["warning"]`` then holds a loud
        warning for the plan record.

    Returns
    -------
    MniToSubject

    Raises
    ------
    FormatError
        Missing or unreadable file, or not of the given ``kind``.
    RegistrationError
        FSL without its images; a mirrored or non-mm matrix; a file named for the
        T1 -> MNI direction; with ``reference``: a transform for the opposite
        direction, for another image, or a skull-stripped T1.
    ImageError
        ``reference`` or ``moving`` is not a valid 3-D image.
    """
    path = Path(path)
    if not path.is_file():
        raise FormatError(
            f"transform file '{path}' does not exist or is not a file; check the path."
        )
    if kind is not None and kind not in TRANSFORM_KINDS:
        raise ValueError(f"kind must be one of {TRANSFORM_KINDS} or None, got {kind!r}")
    frame = frame_from_name(path, src_frame)
    ref_img = None if reference is None else check_img(reference, name="reference")
    if kind is None and ref_img is not None and check_fit and is_matrix_text(path):
        from tmsplan.io.bundled import mni_head_path
        from tmsplan.xfm.check import choose_matrix_kind

        mov = moving if moving is not None else mni_head_path(1)
        xfm, _ = choose_matrix_kind(path, ref_img, mov, src_frame=src_frame)
        return xfm
    kind = kind or detect_kind(path)
    if kind == "affine":
        steps = read_affine(path)
    elif kind == "itk":
        steps = read_itk(path)
    else:
        if ref_img is None or moving is None:
            raise RegistrationError(
                f"'{path.name}' is an FSL FLIRT matrix, which is in scaled-voxel coordinates "
                "of its images: pass reference= (the T1 used as -ref) and moving= (the MNI "
                "image used as -in, e.g. tmsplan.io.bundled.mni_head_path(1) for FSL's "
                "MNI152_T1_1mm). If it is a plain RAS+ mm matrix, pass kind='affine'."
            )
        mov_img = check_img(moving, name="moving")
        steps = read_fsl(path, ref_img, mov_img)
    xfm = MniToSubject(
        src_frame=frame,
        kind=kind,
        steps=steps,
        paths=(str(path),),
        sha256=(file_sha256(path),),
    )
    if ref_img is not None and check_fit:
        from tmsplan.xfm.check import check_transform_fit

        xfm, _ = check_transform_fit(
            xfm, ref_img, what=f"transform '{path.name}'", accept_poor_fit=accept_poor_fit
        )
    return xfm
