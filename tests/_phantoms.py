"""Small synthetic images with analytic answers, shared by the tests.

Builders are private (leading underscore in their users' fixtures); every image is
built in world RAS+ mm so that a re-stored copy (LAS, LPS voxel order) describes the
same anatomy.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np


def affine_ras(voxel_mm: float, shape: tuple[int, int, int]) -> np.ndarray:
    """RAS-stored affine whose grid is centred on the world origin."""
    affine = np.diag([voxel_mm, voxel_mm, voxel_mm, 1.0])
    affine[:3, 3] = -voxel_mm * (np.asarray(shape) - 1) / 2.0
    return affine


def from_world(func, shape=(64, 64, 64), voxel_mm=3.0, affine=None, dtype=np.float32):
    """Image whose voxel values are func(x, y, z) at the voxel centres (world mm)."""
    affine = affine_ras(voxel_mm, shape) if affine is None else affine
    ijk = np.indices(shape, dtype=np.float64).reshape(3, -1)
    xyz = (affine[:3, :3] @ ijk + affine[:3, 3:4]).reshape(3, *shape)
    data = func(*xyz).astype(dtype)
    img = nib.Nifti1Image(data, affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    return img


def restore(img: nib.Nifti1Image, order: str) -> nib.Nifti1Image:
    """The same anatomy stored in another voxel order: 'RAS', 'LAS' or 'LPS'."""
    data = np.asarray(img.dataobj)
    affine = img.affine.copy()
    flips = {"RAS": (), "LAS": (0,), "LPS": (0, 1)}[order]
    for axis in flips:
        data = np.flip(data, axis=axis)
        n = data.shape[axis]
        flip = np.eye(4)
        flip[axis, axis] = -1
        flip[axis, 3] = n - 1
        affine = affine @ flip
    out = nib.Nifti1Image(np.ascontiguousarray(data), affine)
    out.set_qform(affine, code=1)
    out.set_sform(affine, code=1)
    return out


def asymmetric_map(shape=(60, 72, 60), voxel_mm=2.0):
    """A statistic map with a strong blob on the LEFT (x=-30) and a weaker one on the RIGHT.

    Left blob: peak 8 at (-30, 10, 20); right blob: peak 5 at (30, -20, 10).
    """

    def func(x, y, z):
        left = 8.0 * np.exp(-((x + 30) ** 2 + (y - 10) ** 2 + (z - 20) ** 2) / (2 * 5.0**2))
        right = 5.0 * np.exp(-((x - 30) ** 2 + (y + 20) ** 2 + (z - 10) ** 2) / (2 * 5.0**2))
        return left + right

    affine = affine_ras(voxel_mm, shape)
    # put (-30, 10, 20) and (30, -20, 10) exactly on voxel centres (even mm)
    affine[:3, 3] = [-60.0, -72.0, -60.0]
    return from_world(func, shape=shape, voxel_mm=voxel_mm, affine=affine)


def sphere_mask(centre, radius, like: nib.Nifti1Image) -> nib.Nifti1Image:
    """Binary sphere on the grid of ``like`` (world mm)."""
    shape = like.shape[:3]
    ijk = np.indices(shape, dtype=np.float64).reshape(3, -1)
    xyz = like.affine[:3, :3] @ ijk + like.affine[:3, 3:4]
    inside = np.sum((xyz.T - np.asarray(centre)) ** 2, axis=1) <= radius**2
    img = nib.Nifti1Image(inside.reshape(shape).astype(np.uint8), like.affine)
    img.set_qform(like.affine, code=1)
    img.set_sform(like.affine, code=1)
    return img


def rigid_scaling(
    angle_deg=10.0, axis=(0.2, 0.3, 1.0), scale=(1.05, 0.97, 1.02), shift=(4.0, -6.0, 8.0)
):
    """A known MNI -> patient world transform: rotation, anisotropic scaling, translation."""
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    angle = np.deg2rad(angle_deg)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    rotation = np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k
    mat = np.eye(4)
    mat[:3, :3] = rotation @ np.diag(scale)
    mat[:3, 3] = shift
    return mat


def synthetic_patient(
    mni_img: nib.Nifti1Image, mni_to_patient: np.ndarray, order="LPS", voxel_mm=2.0
):
    """The MNI head as a 'patient': resampled under ``mni_to_patient`` onto a new grid.

    The patient grid covers the moved head, is stored in ``order`` voxel order, and has
    both sform and qform (code 1, scanner).
    """
    from scipy import ndimage

    shape = np.asarray(mni_img.shape[:3])
    corners = np.array(
        [
            [i, j, k]
            for i in (0, shape[0] - 1)
            for j in (0, shape[1] - 1)
            for k in (0, shape[2] - 1)
        ],
        float,
    )
    world = corners @ mni_img.affine[:3, :3].T + mni_img.affine[:3, 3]
    moved = world @ mni_to_patient[:3, :3].T + mni_to_patient[:3, 3]
    low, high = moved.min(0) - 4, moved.max(0) + 4
    new_shape = np.ceil((high - low) / voxel_mm).astype(int) + 1
    affine = np.diag([voxel_mm, voxel_mm, voxel_mm, 1.0])
    affine[:3, 3] = low
    # patient voxel -> patient world -> MNI world -> MNI voxel
    mapping = np.linalg.inv(mni_img.affine) @ np.linalg.inv(mni_to_patient) @ affine
    data = ndimage.affine_transform(
        np.asarray(mni_img.dataobj, dtype=np.float32),
        mapping[:3, :3],
        offset=mapping[:3, 3],
        output_shape=tuple(new_shape),
        order=1,
        mode="constant",
        cval=0.0,
    )
    rng = np.random.default_rng(7)
    data = data + rng.normal(0, 20, data.shape).clip(0)  # scanner-like background noise
    img = nib.Nifti1Image(data.astype(np.float32), affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    return restore(img, order)
