"""Carry points and images from an MNI template frame into the patient's T1 frame.

One class, :class:`MniToSubject`, holds the mapping between an MNI frame (e.g.
``"MNI152NLin6Asym"``) and the RAS+ world millimetres of the patient's T1
(``"T1w"``), whatever file it came from:

- a plain 4x4 matrix text file (``kind="affine"``): RAS+ mm, acting on column
  vectors ``[x, y, z, 1]``, mapping **MNI world points to T1 world points**
  (``t1 = M @ mni``);
- ANTs/ITK transforms (``kind="itk"``): an affine ``.txt``/``.tfm``/``.mat`` or a
  composite ``.h5`` (affine + displacement field) as written by fMRIPrep
  (``…from-MNI152NLin2009cAsym_to-T1w_mode-image_xfm.h5``) or antsRegistration;
- FSL FLIRT matrices (``kind="fsl"``) from ``flirt -in MNI -ref T1 -omat``,
  which need the reference (T1) and moving (MNI) images.

Direction, stated once: ITK/ANTs "image" transforms named ``from-MNI_to-T1w``
resample an MNI image onto the T1 grid, so as point mappings they go the other
way, from the fixed space (T1w) to the moving space (MNI). tmsplan keeps that
T1w -> MNI point mapping (:attr:`MniToSubject.steps`, in RAS+ mm) because it is
exactly what resampling needs, and inverts it to carry MNI points into the T1
(exactly for affines, by fixed-point iteration through displacement fields).

With the T1 at hand (``reference=``) the loader checks that the transform fits
it: the bundled MNI head, warped into the T1, must overlap the T1's head. A
file for the opposite direction (T1 -> MNI), a transform made for another
image, or a skull-stripped T1 are refused with a message saying what to pass.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Literal

import nibabel as nib
import numpy as np

from tmsplan.errors import FormatError, RegistrationError, SpaceError
from tmsplan.images import (
    ImageLike,
    check_img,
    file_sha256,
    voxel_to_world,
    world_to_voxel,
)
from tmsplan.spaces import MNI_FRAME, SUBJECT_FRAME, Points

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

TransformKind = Literal["affine", "itk", "fsl"]
_KINDS = ("affine", "itk", "fsl")

FIT_MIN_HEAD_DICE = 0.80
"""Smallest Dice overlap between the warped MNI head mask and the T1 head mask
for a transform to be accepted (the synthetic patients of the tests reach
0.97-0.99; a transform for another head or a 90-degree error stays below 0.75)."""

FIT_DIRECTION_MARGIN = 0.05
"""How much better the reversed transform must fit (in Dice) to call the given
one inverted."""

FIT_GOOD_HEAD_DICE = 0.88
"""Dice the reversed transform must reach to call the given one inverted (a
transform for another head can fit reversed at ~0.8 by chance)."""

MIN_HEAD_VOLUME_L = 2.2
"""Head masks smaller than this (litres) are taken as brain-extracted or
cropped T1s: the bundled MNI head measures 3.1 L, its brain mask 1.8 L."""

_FIT_GRID_MM = 4.0
_INVERT_TOL_MM = 1e-3
_INVERT_MAX_ITER = 200
_CHUNK = 1 << 20  # points per chunk when resampling through a field

# ITK's "image" transforms and fMRIPrep's BIDS names (from-X_to-Y_mode-image)
_BIDS_XFM = re.compile(r"from-([A-Za-z0-9]+)_to-([A-Za-z0-9]+)")


# --------------------------------------------------------------------------- steps


@dataclass(frozen=True, eq=False)
class DisplacementField:
    """A dense displacement field acting on points: ``y = x + d(x)``.

    Evaluated as ITK's ``DisplacementFieldTransform`` does: trilinear
    interpolation of the vectors, identity outside the field's grid.

    Attributes
    ----------
    vectors : (X, Y, Z, 3) float64
        Displacements in RAS+ millimetres.
    affine : (4, 4) float64
        Voxel-to-world (RAS+ mm) matrix of the field's grid.
    """

    vectors: np.ndarray = field(repr=False)
    affine: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        vec = np.array(self.vectors, dtype=np.float64)
        aff = np.array(self.affine, dtype=np.float64)
        if vec.ndim != 4 or vec.shape[3] != 3 or aff.shape != (4, 4):
            raise FormatError(
                f"displacement field: expected vectors of shape (X, Y, Z, 3) and a 4x4 "
                f"affine, got {vec.shape} and {aff.shape}."
            )
        if not (np.all(np.isfinite(vec)) and np.all(np.isfinite(aff))):
            raise FormatError("displacement field: contains NaN or infinite values.")
        vec.setflags(write=False)
        aff.setflags(write=False)
        object.__setattr__(self, "vectors", vec)
        object.__setattr__(self, "affine", aff)

    @property
    def shape(self) -> tuple[int, int, int]:
        """Grid shape ``(X, Y, Z)``."""
        return tuple(int(s) for s in self.vectors.shape[:3])

    def inside(self, xyz: np.ndarray) -> np.ndarray:
        """``(n,)`` bool: which RAS+ points ``(n, 3)`` lie within the field's grid."""
        ijk = world_to_voxel(self.affine, xyz)
        upper = np.array(self.shape) - 0.5
        return np.all((ijk >= -0.5) & (ijk <= upper), axis=1)

    def map(self, xyz: np.ndarray) -> np.ndarray:
        """Displace RAS+ points ``(n, 3)`` mm; points outside the grid are unchanged."""
        from scipy import ndimage

        xyz = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
        ijk = world_to_voxel(self.affine, xyz)
        disp = np.stack(
            [
                ndimage.map_coordinates(
                    self.vectors[..., c], ijk.T, order=1, mode="nearest", prefilter=False
                )
                for c in range(3)
            ],
            axis=1,
        )
        disp[~self.inside(xyz)] = 0.0
        return xyz + disp


Step = np.ndarray | DisplacementField


def _map_steps(steps: tuple[Step, ...], xyz: np.ndarray) -> np.ndarray:
    out = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
    for step in steps:
        if isinstance(step, DisplacementField):
            out = step.map(out)
        else:
            out = out @ step[:3, :3].T + step[:3, 3]
    return out


def _linear_part(steps: tuple[Step, ...]) -> np.ndarray:
    """Product of the affine steps, fields left out (exact when there are none)."""
    total = np.eye(4)
    for step in steps:
        if not isinstance(step, DisplacementField):
            total = step @ total
    return total


def _outside_fields(steps: tuple[Step, ...], xyz: np.ndarray) -> np.ndarray:
    """``(n,)`` bool: points that leave the grid of a field on the way through ``steps``."""
    out = np.zeros(len(xyz), dtype=bool)
    cur = np.asarray(xyz, dtype=np.float64)
    for step in steps:
        if isinstance(step, DisplacementField):
            out |= ~step.inside(cur)
            cur = step.map(cur)
        else:
            cur = cur @ step[:3, :3].T + step[:3, 3]
    return out


def _check_linear(matrix: np.ndarray, what: str) -> None:
    """Refuse mirrored, singular or non-millimetre matrices (MNI->T1 direction)."""
    if matrix.shape != (4, 4) or not np.all(np.isfinite(matrix)):
        raise FormatError(f"{what}: the transform matrix is not a finite 4x4 matrix.")
    if not np.allclose(matrix[3], [0, 0, 0, 1], atol=1e-6):
        raise FormatError(
            f"{what}: the last row of the matrix must be (0, 0, 0, 1), got {matrix[3].tolist()}."
        )
    det = float(np.linalg.det(matrix[:3, :3]))
    if det <= 0:
        raise RegistrationError(
            f"{what}: the transform mirrors the head (determinant {det:.3g} <= 0), which "
            "would swap left and right; an MNI -> T1 transform never does. Check how the "
            "file was made (e.g. an LPS/RAS mix-up) and give a proper transform."
        )
    scales = np.linalg.svd(matrix[:3, :3], compute_uv=False)
    if scales.max() > 2.5 or scales.min() < 0.4:
        raise RegistrationError(
            f"{what}: the transform scales by {scales.min():.2f}-{scales.max():.2f}, "
            "not a head-to-head mapping in millimetres (expected 0.4-2.5); it may be in "
            "voxel units (an FSL matrix given as kind='affine'?) or for another purpose."
        )


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
        _check_linear(mat, "mni_to_subject matrix")
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
        return np.linalg.inv(_linear_part(self.steps))

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
            return Points(points.xyz @ mat[:3, :3].T + mat[:3, 3], self.dst_frame)
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
        return Points(_map_steps(self.steps, points.xyz), self.src_frame)

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
        outside = _outside_fields(self.steps, t1_xyz)
        if outside.any():
            bad = np.round(shown[outside][:3], 1).tolist()
            raise SpaceError(
                f"{int(outside.sum())} {label} point(s) (e.g. {bad}) lie outside the "
                "displacement field of the transform, where it is undefined; check that the "
                "points are in the head and in the right frame."
            )

    def _invert(self, mni_xyz: np.ndarray) -> np.ndarray:
        lin_inv = np.linalg.inv(_linear_part(self.steps))
        jac_inv = lin_inv[:3, :3]
        xyz = mni_xyz @ jac_inv.T + lin_inv[:3, 3]
        err = np.full(len(xyz), np.inf)
        for _ in range(_INVERT_MAX_ITER):
            resid = _map_steps(self.steps, xyz) - mni_xyz
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
            mapping = np.linalg.inv(src.affine) @ _linear_part(self.steps) @ ref.affine
            data = ndimage.affine_transform(
                src_data,
                mapping[:3, :3],
                offset=mapping[:3, 3],
                output_shape=shape,
                order=order,
                mode="constant",
                cval=0.0,
            )
        else:
            flat = np.zeros(int(np.prod(shape)))
            for start in range(0, flat.size, _CHUNK):
                idx = np.arange(start, min(start + _CHUNK, flat.size))
                ijk = np.stack(np.unravel_index(idx, shape), axis=1)
                mni = _map_steps(self.steps, voxel_to_world(ref.affine, ijk))
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
        out = nib.Nifti1Image(data, ref.affine)
        out.set_qform(ref.affine, code=int(ref.header["qform_code"]) or 1)
        out.set_sform(ref.affine, code=int(ref.header["sform_code"]) or 1)
        return out

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


# --------------------------------------------------------------------------- readers


def _read_text(path: Path, limit: int = 1 << 16) -> str | None:
    """First bytes of ``path`` decoded as text, or None for binary content."""
    with open(path, "rb") as handle:
        head = handle.read(limit)
    if b"\x00" in head:
        return None
    try:
        return head.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _parse_matrix_text(text: str) -> np.ndarray | None:
    """A 4x4 (or 3x4) matrix of whitespace-separated numbers, else None."""
    rows = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            rows.append([float(v) for v in line.replace(",", " ").split()])
        except ValueError:
            return None
    if len(rows) == 3 and all(len(r) == 4 for r in rows):
        rows.append([0.0, 0.0, 0.0, 1.0])
    if len(rows) != 4 or any(len(r) != 4 for r in rows):
        return None
    return np.array(rows, dtype=np.float64)


def _detect_kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".h5"):
        return "itk"
    if name.endswith((".nii", ".nii.gz")):
        raise FormatError(
            f"'{path}' is a NIfTI image; a warp field alone is not supported. Give the "
            "composite .h5 (e.g. fMRIPrep's ..._from-MNI..._to-T1w_mode-image_xfm.h5)."
        )
    text = _read_text(path)
    if text is not None and text.lstrip().startswith("#Insight Transform File"):
        return "itk"
    if text is not None and _parse_matrix_text(text) is not None:
        return "fsl" if name.endswith(".mat") else "affine"
    if name.endswith(".mat") and text is None:
        return "itk"
    raise FormatError(
        f"'{path}' is not a transform tmsplan can read: expected a plain 4x4 matrix text "
        "file (kind='affine'), an ITK/ANTs transform (.txt, .tfm, binary .mat, .h5; "
        "kind='itk') or an FSL FLIRT .mat (kind='fsl')."
    )


def _read_affine(path: Path) -> tuple[np.ndarray, ...]:
    text = _read_text(path)
    matrix = None if text is None else _parse_matrix_text(text)
    if matrix is None:
        hint = (
            " It looks like an ITK transform; use kind='itk'."
            if text is not None and text.lstrip().startswith("#Insight")
            else ""
        )
        raise FormatError(
            f"'{path}' is not a plain affine: expected 4 lines of 4 numbers (RAS+ mm, "
            f"MNI -> T1).{hint}"
        )
    _check_linear(matrix, f"'{path}'")
    return (np.linalg.inv(matrix),)


_ITK_AFFINE_TYPES = ("AffineTransform_", "MatrixOffsetTransformBase_")


def _read_itk(path: Path) -> tuple[Step, ...]:
    """Read an ITK transform file as T1w -> MNI point steps (RAS+ mm)."""
    from nitransforms.io import itk

    name = path.name.lower()
    try:
        if name.endswith(".h5"):
            xforms = _read_itk_h5(path)
        elif name.endswith(".mat"):
            if _read_text(path) is not None:
                raise FormatError(
                    f"'{path}' is a text .mat (FSL FLIRT style), not an ITK binary .mat; "
                    "use kind='fsl' with reference= and moving= images."
                )
            xforms = [itk.ITKLinearTransform.from_filename(path)]
        else:
            text = _read_text(path) or ""
            if not text.lstrip().startswith("#Insight Transform File"):
                raise FormatError(
                    f"'{path}' is not an ITK transform text file (no '#Insight Transform "
                    "File' banner)."
                )
            types = re.findall(r"^\s*Transform:\s*(\S+)", text, flags=re.MULTILINE)
            bad = [t for t in types if not t.startswith(_ITK_AFFINE_TYPES)]
            if bad or len(types) != 1:
                raise FormatError(
                    f"'{path}' holds {len(types)} transform(s) of type(s) {types}; tmsplan "
                    "reads exactly one AffineTransform or MatrixOffsetTransformBase from "
                    "ITK text files (convert others with ANTs' ConvertTransformFile)."
                )
            xforms = [itk.ITKLinearTransform.from_filename(path)]
    except FormatError:
        raise
    except (OSError, KeyError, ValueError, IndexError, NotImplementedError) as exc:
        raise FormatError(
            f"'{path}' cannot be read as an ITK/ANTs transform ({type(exc).__name__}: "
            f"{str(exc)[:120]}); check the file and kind."
        ) from None
    steps: list[Step] = []
    for xfm in reversed(xforms):  # ITK applies the last transform of a composite first
        if isinstance(xfm, nib.Nifti1Image):
            steps.append(DisplacementField(np.asarray(xfm.dataobj), xfm.affine))
        else:
            ras = np.asarray(xfm.to_ras(), dtype=np.float64)
            if ras.shape != (4, 4) or not np.all(np.isfinite(ras)):
                raise FormatError(f"'{path}': the affine parameters are not finite.")
            _check_linear(np.linalg.inv(ras), f"'{path}'")
            steps.append(ras)
    if not steps:
        raise FormatError(f"'{path}' contains no transform.")
    return tuple(steps)


def _read_itk_h5(path: Path) -> list:
    import h5py
    from nibabel.affines import from_matvec
    from nitransforms.io import itk

    with h5py.File(path, "r") as handle:
        group = handle["TransformGroup"]
        first = group["0"]["TransformType"][0]
        first = first.decode() if isinstance(first, bytes) else str(first)
    if first.startswith("CompositeTransform"):
        return list(itk.ITKCompositeH5.from_filename(path))
    if first.startswith(_ITK_AFFINE_TYPES):  # a single affine saved as .h5
        with h5py.File(path, "r") as handle:
            node = handle["TransformGroup"]["0"]
            key = "TransformParameters" if "TransformParameters" in node else "TranformParameters"
            params = np.asarray(node[key], dtype=np.float64)
            fixed = np.asarray(node[key.replace("Parameters", "FixedParameters")])
        return [
            itk.ITKLinearTransform(
                parameters=from_matvec(params[:9].reshape(3, 3), params[9:12]), offset=fixed
            )
        ]
    raise FormatError(
        f"'{path}': unsupported ITK transform type {first!r}; expected a composite "
        "(affine + displacement field) or an affine."
    )


def _read_fsl(path: Path, reference: nib.Nifti1Image, moving: nib.Nifti1Image) -> tuple:
    from nitransforms.io import fsl

    text = _read_text(path)
    if text is None or _parse_matrix_text(text) is None:
        raise FormatError(
            f"'{path}' is not an FSL FLIRT matrix: expected 4 lines of 4 numbers"
            + (" (it is binary; an ITK .mat? use kind='itk')." if text is None else ".")
        )
    try:
        xfm = fsl.FSLLinearTransform.from_filename(path)
        # nitransforms returns the reference -> moving (T1w -> MNI) point mapping
        ras = np.asarray(xfm.to_ras(moving=moving, reference=reference), dtype=np.float64)
    except (OSError, ValueError) as exc:
        raise FormatError(f"'{path}' cannot be read as an FSL matrix ({exc}).") from None
    _check_linear(np.linalg.inv(ras), f"'{path}'")
    return (ras,)


def _frame_from_name(path: Path, src_frame: str | None) -> str:
    found = _BIDS_XFM.search(path.name)
    if found is None:
        return src_frame or MNI_FRAME
    src, dst = found.groups()
    if src == SUBJECT_FRAME and dst != SUBJECT_FRAME:
        raise RegistrationError(
            f"'{path.name}' maps {SUBJECT_FRAME} -> {dst} (from-{src}_to-{dst}), the opposite "
            f"of what is needed; pass the inverse file, from-{dst}_to-{SUBJECT_FRAME} "
            "(fMRIPrep writes both)."
        )
    if dst != SUBJECT_FRAME:
        raise RegistrationError(
            f"'{path.name}' maps {src} -> {dst}, not into the T1 ({SUBJECT_FRAME}); pass the "
            f"from-<MNI template>_to-{SUBJECT_FRAME} transform."
        )
    if src_frame is not None and src_frame != src:
        raise RegistrationError(
            f"src_frame={src_frame!r} but the file name says the transform starts in {src!r} "
            f"('{path.name}'); pass src_frame={src!r} and use ROIs/maps in that template."
        )
    return src


def load_mni_to_subject(
    path: str | os.PathLike,
    *,
    kind: TransformKind | None = None,
    reference: ImageLike | None = None,
    moving: ImageLike | None = None,
    src_frame: str | None = None,
    check_fit: bool = True,
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
        e.g. :func:`tmsplan.bundled.mni_head_path` (1) for FSL's
        ``MNI152_T1_1mm``.
    src_frame : str or None
        MNI frame of the transform. None: taken from a BIDS-style file name
        (``from-<frame>_to-T1w``) when there is one, else ``"MNI152NLin6Asym"``.
    check_fit : bool
        With ``reference``: warp the bundled MNI head into the T1 and refuse a
        transform that does not fit it (see :func:`judge_fit`).

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
    if kind is not None and kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS} or None, got {kind!r}")
    frame = _frame_from_name(path, src_frame)
    kind = kind or _detect_kind(path)
    ref_img = None if reference is None else check_img(reference, name="reference")
    if kind == "affine":
        steps = _read_affine(path)
    elif kind == "itk":
        steps = _read_itk(path)
    else:
        if ref_img is None or moving is None:
            raise RegistrationError(
                f"'{path.name}' is an FSL FLIRT matrix, which is in scaled-voxel coordinates "
                "of its images: pass reference= (the T1 used as -ref) and moving= (the MNI "
                "image used as -in, e.g. tmsplan.bundled.mni_head_path(1) for FSL's "
                "MNI152_T1_1mm). If it is a plain RAS+ mm matrix, pass kind='affine'."
            )
        mov_img = check_img(moving, name="moving")
        steps = _read_fsl(path, ref_img, mov_img)
    xfm = MniToSubject(
        src_frame=frame,
        kind=kind,
        steps=steps,
        paths=(str(path),),
        sha256=(file_sha256(path),),
    )
    if ref_img is not None and check_fit:
        scores = head_fit(xfm, ref_img)
        judge_fit(scores, what=f"transform '{path.name}'")
        xfm = replace(xfm, fit=scores)
    return xfm


# --------------------------------------------------------------------------- fit check


def _head_mask(data: np.ndarray) -> np.ndarray:
    """Head (foreground) mask: Otsu threshold, closed, holes filled, largest part."""
    from scipy import ndimage
    from skimage.filters import threshold_otsu

    finite = data[np.isfinite(data)]
    if finite.size == 0 or finite.max() <= finite.min():
        return np.zeros(data.shape, dtype=bool)
    mask = data > threshold_otsu(finite)
    mask = ndimage.binary_closing(mask, iterations=2, border_value=0)
    labels, count = ndimage.label(mask)
    if count > 1:
        sizes = ndimage.sum_labels(mask, labels, index=np.arange(1, count + 1))
        mask = labels == (int(np.argmax(sizes)) + 1)
    filled = ndimage.binary_fill_holes(mask)
    # also fill slice by slice: where the field of view cuts the neck the head is open
    for axis in range(3):
        slab = np.moveaxis(filled, axis, 0)
        filled = np.moveaxis(np.stack([ndimage.binary_fill_holes(s) for s in slab]), 0, axis)
    return filled


def _downsample(img: nib.Nifti1Image, voxel_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Block-mean ``img`` to about ``voxel_mm``; return data and its affine."""
    zooms = np.sqrt((img.affine[:3, :3] ** 2).sum(axis=0))
    factors = np.maximum(1, np.round(voxel_mm / zooms)).astype(int)
    data = np.asarray(img.dataobj, dtype=np.float64)
    new_shape = np.array(data.shape[:3]) // factors
    if np.any(new_shape < 4):
        factors = np.ones(3, dtype=int)
        new_shape = np.array(data.shape[:3])
    cropped = data[
        : new_shape[0] * factors[0], : new_shape[1] * factors[1], : new_shape[2] * factors[2]
    ]
    blocks = cropped.reshape(
        new_shape[0], factors[0], new_shape[1], factors[1], new_shape[2], factors[2]
    ).mean(axis=(1, 3, 5))
    scale = np.diag([*factors.astype(float), 1.0])
    scale[:3, 3] = (factors - 1) / 2.0
    return blocks, img.affine @ scale


@lru_cache(maxsize=1)
def _mni_masks() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Head mask, brain mask (bool) and affine of the bundled 2 mm MNI head."""
    from tmsplan.bundled import load_mni_brain_mask, load_mni_head

    head = load_mni_head(2)
    brain = load_mni_brain_mask(2)
    head_mask = _head_mask(np.asarray(head.dataobj, dtype=np.float64))
    brain_mask = np.asarray(brain.dataobj) > 0.5
    head_mask.setflags(write=False)
    brain_mask.setflags(write=False)
    affine = np.array(head.affine, dtype=np.float64)
    affine.setflags(write=False)
    return head_mask, brain_mask, affine


def _sample_mask(mask: np.ndarray, affine: np.ndarray, xyz: np.ndarray):
    """Nearest-voxel values of ``mask`` at world points and whether each is inside its FOV."""
    ijk = np.rint(world_to_voxel(affine, xyz)).astype(np.int64)
    inside = np.all((ijk >= 0) & (ijk < np.array(mask.shape)), axis=1)
    values = np.zeros(len(xyz), dtype=bool)
    ii = ijk[inside]
    values[inside] = mask[ii[:, 0], ii[:, 1], ii[:, 2]]
    return values, inside


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 0.0 if total == 0 else 2.0 * int(np.logical_and(a, b).sum()) / total


def head_fit(mni_to_subject: MniToSubject, t1: ImageLike) -> dict:
    """Measure how well an MNI -> T1 transform fits a T1 (head-mask overlaps).

    The bundled MNI head's mask (Otsu threshold) is carried into the T1 on a
    4 mm grid and compared with the T1's own head mask, only where both images
    have data (field-of-view cuts such as the neck are ignored). For contrast,
    the same is done with the transform read in the opposite direction.

    Parameters
    ----------
    mni_to_subject : MniToSubject
    t1 : str, os.PathLike or nibabel image
        The patient's T1 with scalp.

    Returns
    -------
    dict
        ``head_dice`` (warped MNI head mask vs T1 head mask), ``reversed_head_dice``
        (the transform used backwards), ``brain_dice`` (warped MNI *brain* mask vs
        T1 head mask: high for a skull-stripped T1), ``t1_head_volume_l`` (litres)
        and ``coverage`` (fraction of the T1 head mapped inside the MNI template).
    """
    img = check_img(t1, name="t1")
    data, affine = _downsample(img, _FIT_GRID_MM)
    t1_mask = _head_mask(data)
    voxel_l = abs(np.linalg.det(affine[:3, :3])) / 1e6
    head_mask, brain_mask, mni_affine = _mni_masks()
    steps = mni_to_subject.steps

    # as given: T1 voxels -> MNI, sample the MNI masks
    t1_xyz = voxel_to_world(affine, np.indices(data.shape).reshape(3, -1).T)
    mni_xyz = _map_steps(steps, t1_xyz)
    warped_head, inside = _sample_mask(head_mask, mni_affine, mni_xyz)
    warped_brain, _ = _sample_mask(brain_mask, mni_affine, mni_xyz)
    t1_flat = t1_mask.reshape(-1)
    head_dice = _dice(t1_flat[inside], warped_head[inside])
    brain_dice = _dice(t1_flat[inside], warped_brain[inside])
    coverage = float(inside[t1_flat].mean()) if t1_flat.any() else 0.0

    # reversed: read the transform as MNI -> T1 points and compare in MNI space
    mni_low = head_mask[::2, ::2, ::2]
    mni_low_affine = mni_affine @ np.diag([2.0, 2.0, 2.0, 1.0])
    grid_xyz = voxel_to_world(mni_low_affine, np.indices(mni_low.shape).reshape(3, -1).T)
    back, inside_t1 = _sample_mask(t1_mask, affine, _map_steps(steps, grid_xyz))
    reversed_dice = _dice(mni_low.reshape(-1)[inside_t1], back[inside_t1])
    return {
        "head_dice": round(head_dice, 4),
        "reversed_head_dice": round(reversed_dice, 4),
        "brain_dice": round(brain_dice, 4),
        "t1_head_volume_l": round(float(t1_mask.sum() * voxel_l), 3),
        "coverage": round(coverage, 4),
    }


def judge_fit(scores: Mapping, *, what: str = "transform") -> None:
    """Raise when :func:`head_fit` figures show a transform that does not fit.

    Parameters
    ----------
    scores : Mapping
        Output of :func:`head_fit`.
    what : str
        Names the transform in messages.

    Raises
    ------
    RegistrationError
        - T1 head mask under :data:`MIN_HEAD_VOLUME_L` litres (skull-stripped or
          cropped T1) or the MNI brain fits the T1's mask better than the head;
        - the reversed transform fits better by :data:`FIT_DIRECTION_MARGIN` and
          reaches :data:`FIT_GOOD_HEAD_DICE` (T1 -> MNI given where MNI -> T1 is
          needed);
        - head Dice under :data:`FIT_MIN_HEAD_DICE` or less than half of the T1
          head mapped inside the template (transform for another image).
    """
    head = float(scores["head_dice"])
    rev = float(scores["reversed_head_dice"])
    brain = float(scores["brain_dice"])
    volume = float(scores["t1_head_volume_l"])
    figures = f"(head overlap Dice {head:.2f}, reversed {rev:.2f}, brain-only {brain:.2f})"
    if volume < MIN_HEAD_VOLUME_L or (head < FIT_MIN_HEAD_DICE and brain > head):
        raise RegistrationError(
            f"{what}: the T1 looks brain-extracted (skull-stripped) or cropped: its head "
            f"mask is {volume:.2f} L, a whole head with scalp is over {MIN_HEAD_VOLUME_L} L "
            f"{figures}. tmsplan needs the T1 with skin and skull (e.g. fMRIPrep's "
            "desc-preproc_T1w, not desc-brain); give that image."
        )
    if rev - head >= FIT_DIRECTION_MARGIN and rev >= FIT_GOOD_HEAD_DICE:
        raise RegistrationError(
            f"{what}: this looks like a T1 -> MNI transform where MNI -> T1 is expected: "
            f"used as given the MNI head overlaps the T1's head poorly, used the other way "
            f"it fits {figures}. Pass the inverse transform (for fMRIPrep: the "
            "from-<MNI>_to-T1w file instead of from-T1w_to-<MNI>; for a matrix: its inverse)."
        )
    if head < FIT_MIN_HEAD_DICE or float(scores["coverage"]) < 0.5:
        raise RegistrationError(
            f"{what}: the transform does not fit this T1 {figures}, coverage "
            f"{float(scores['coverage']):.2f}; needed head Dice >= {FIT_MIN_HEAD_DICE}. It "
            "was probably made for another image (another T1, resampled or re-oriented) "
            "or another template; give the transform computed for this T1, or register "
            "with tmsplan.registration.register_mni_to_t1."
        )
