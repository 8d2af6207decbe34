"""How well an MNI -> T1 transform fits a T1: head-mask overlaps and the verdict.

Design notes: ``docs/transforms.md``, section ``tmsplan.xfm.headfit``.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING

import nibabel as nib
import numpy as np

from tmsplan.errors import RegistrationError
from tmsplan.io.images import ImageLike, block_reduce, check_img, voxel_to_world, world_to_voxel
from tmsplan.xfm.warps import map_steps

if TYPE_CHECKING:
    from tmsplan.xfm.transforms import MniToSubject

__all__ = [
    "head_fit",
    "judge_fit",
    "head_mask",
    "downsample",
    "overlaps_on_grid",
    "FIT_MIN_HEAD_DICE",
    "FIT_DIRECTION_MARGIN",
    "FIT_GOOD_HEAD_DICE",
    "MIN_HEAD_VOLUME_L",
    "FIT_GRID_MM",
    "t1_fit_grid",
]

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

FIT_GRID_MM = 4.0
"""Grid (mm) of the fit checks: the T1 is block-averaged to about this size."""


def head_mask(data: np.ndarray) -> np.ndarray:
    """Head (foreground) mask: Otsu threshold, closed, holes filled, largest part.

    Kept apart from :func:`tmsplan.head.scalp.head_mask_img` on purpose: the fit lines
    were calibrated on this mask, and it must measure skull-stripped T1s (which
    the scalp model refuses), cheaply, on the 4 mm grid.

    Holes are filled in 3-D and then slice by slice along each axis, so a head
    left open where the field of view cuts the neck is still filled.

    Parameters
    ----------
    data : (X, Y, Z) float
        Image intensities (e.g. from :func:`downsample`); NaNs are ignored.

    Returns
    -------
    (X, Y, Z) bool
        The head mask on the same grid; all False for a constant image.
    """
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


def downsample(img: nib.Nifti1Image, voxel_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Block-mean ``img`` to about ``voxel_mm``; return data and its affine.

    Each axis is averaged over blocks of ``round(voxel_mm / voxel size)`` voxels
    (at least 1; none when that would leave fewer than 4 voxels on an axis);
    voxels beyond the last whole block are dropped.

    Parameters
    ----------
    img : nibabel.Nifti1Image
        A checked 3-D image (see :func:`tmsplan.io.images.check_img`).
    voxel_mm : float
        Wanted voxel size, millimetres.

    Returns
    -------
    data : (X', Y', Z') float64
        Block means.
    affine : (4, 4) float64
        Voxel-to-world (RAS+ mm) matrix of the coarse grid, voxel centres at
        the centres of their blocks.
    """
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
    blocks = block_reduce(cropped, factors, func=np.mean)
    scale = np.diag([*factors.astype(float), 1.0])
    scale[:3, 3] = (factors - 1) / 2.0
    return blocks, img.affine @ scale


@lru_cache(maxsize=1)
def _mni_masks() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Head mask, brain mask (bool) and affine of the bundled 2 mm MNI head."""
    from tmsplan.io.bundled import load_mni_brain_mask, load_mni_head

    head = load_mni_head(2)
    brain = load_mni_brain_mask(2)
    mni_head = head_mask(np.asarray(head.dataobj, dtype=np.float64))
    mni_brain = np.asarray(brain.dataobj) > 0.5
    mni_head.setflags(write=False)
    mni_brain.setflags(write=False)
    affine = np.array(head.affine, dtype=np.float64)
    affine.setflags(write=False)
    return mni_head, mni_brain, affine


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
    _, affine, mask = t1_fit_grid(img)
    return overlaps_on_grid(mni_to_subject.steps, affine, mask)


def t1_fit_grid(img: nib.Nifti1Image) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The T1 as every fit check sees it: :data:`FIT_GRID_MM` block means and head mask.

    Parameters
    ----------
    img : nibabel.Nifti1Image
        A checked 3-D T1 (see :func:`tmsplan.io.images.check_img`).

    Returns
    -------
    data : (X, Y, Z) float64
        Block means (:func:`downsample`).
    affine : (4, 4) float64
        Voxel-to-world (RAS+ mm) matrix of that grid.
    mask : (X, Y, Z) bool
        :func:`head_mask` of ``data``.
    """
    data, affine = downsample(img, FIT_GRID_MM)
    return data, affine, head_mask(data)


def overlaps_on_grid(
    steps: tuple, affine: np.ndarray, t1_mask: np.ndarray, mni_xyz: np.ndarray | None = None
) -> dict:
    """:func:`head_fit` figures for a T1 head mask already on a coarse grid.

    Parameters
    ----------
    steps : tuple of (4, 4) float64 arrays and DisplacementField
        T1w -> MNI point steps (:attr:`tmsplan.xfm.transforms.MniToSubject.steps`).
    affine : (4, 4) float
        Voxel-to-world (RAS+ mm) matrix of ``t1_mask``.
    t1_mask : (X, Y, Z) bool
        The T1's head mask (:func:`head_mask` of :func:`downsample` output).
    mni_xyz : (X * Y * Z, 3) float, optional
        The grid's voxel centres already carried into MNI (C order), to save
        mapping them again.

    Returns
    -------
    dict
        The keys of :func:`head_fit`.
    """
    voxel_l = abs(np.linalg.det(affine[:3, :3])) / 1e6
    mni_head, mni_brain, mni_affine = _mni_masks()

    # as given: T1 voxels -> MNI, sample the MNI masks
    if mni_xyz is None:
        t1_xyz = voxel_to_world(affine, np.indices(t1_mask.shape).reshape(3, -1).T)
        mni_xyz = map_steps(steps, t1_xyz)
    warped_head, inside = _sample_mask(mni_head, mni_affine, mni_xyz)
    warped_brain, _ = _sample_mask(mni_brain, mni_affine, mni_xyz)
    t1_flat = t1_mask.reshape(-1)
    head_dice = _dice(t1_flat[inside], warped_head[inside])
    brain_dice = _dice(t1_flat[inside], warped_brain[inside])
    coverage = float(inside[t1_flat].mean()) if t1_flat.any() else 0.0

    # reversed: read the transform as MNI -> T1 points and compare in MNI space
    mni_low = mni_head[::2, ::2, ::2]
    mni_low_affine = mni_affine @ np.diag([2.0, 2.0, 2.0, 1.0])
    grid_xyz = voxel_to_world(mni_low_affine, np.indices(mni_low.shape).reshape(3, -1).T)
    back, inside_t1 = _sample_mask(t1_mask, affine, map_steps(steps, grid_xyz))
    reversed_dice = _dice(mni_low.reshape(-1)[inside_t1], back[inside_t1])
    return {
        "head_dice": round(head_dice, 4),
        "reversed_head_dice": round(reversed_dice, 4),
        "brain_dice": round(brain_dice, 4),
        "t1_head_volume_l": round(float(t1_mask.sum() * voxel_l), 3),
        "coverage": round(coverage, 4),
    }


def judge_fit(scores: Mapping, *, what: str = "transform", check_overlap: bool = True) -> None:
    """Raise when :func:`head_fit` figures show a transform that does not fit.

    Parameters
    ----------
    scores : Mapping
        Output of :func:`head_fit`.
    what : str
        Names the transform in messages.
    check_overlap : bool
        Also apply the last (overlap) refusal; False leaves it to the caller
        (:mod:`tmsplan.xfm.check` judges it with its other figures).

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
    if check_overlap and (head < FIT_MIN_HEAD_DICE or float(scores["coverage"]) < 0.5):
        raise RegistrationError(
            f"{what}: the transform does not fit this T1 {figures}, coverage "
            f"{float(scores['coverage']):.2f}; needed head Dice >= {FIT_MIN_HEAD_DICE}. It "
            "was probably made for another image (another T1, resampled or re-oriented) "
            "or another template; give the transform computed for this T1, or register "
            "with tmsplan.xfm.registration.register_mni_to_t1."
        )
