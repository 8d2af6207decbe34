"""tmsplan.target.cortex: the tissue at a target and the move to grey matter (exact label maps)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from nibabel.affines import apply_affine

from tmsplan.head.tissue import TissueMap
from tmsplan.target.cortex import cortical_target


@pytest.fixture(scope="module")
def sphere_labels():
    """White matter r < 40 mm, grey matter 40-45 mm (46-52 mm on the left: thicker), CSF to 50."""
    shape, voxel = (60, 60, 60), 2.0
    affine = np.diag([voxel, voxel, voxel, 1.0])
    affine[:3, 3] = -voxel * (np.asarray(shape) - 1) / 2
    xyz = apply_affine(affine, np.indices(shape).reshape(3, -1).T).reshape(shape + (3,))
    r = np.linalg.norm(xyz, axis=-1)
    grey_out = np.where(xyz[..., 0] < 0, 52.0, 45.0)
    labels = np.zeros(shape, np.uint8)
    labels[r < grey_out + 5] = 1
    labels[r < grey_out] = 2
    labels[r < 40] = 3
    img = nib.Nifti1Image(labels, affine)
    return TissueMap(labels=img, method={"name": "exact"}, quality={})


@pytest.mark.parametrize("side", [-1.0, 1.0])
def test_white_matter_target_moves_outward_to_grey_on_its_side(sphere_labels, side):
    target = np.array([side * 30.0, 0.0, 0.0])
    scalp = np.array([side * 70.0, 0.0, 0.0])
    result = cortical_target(sphere_labels, target, scalp)
    assert result.tissue_given == "white matter"
    assert result.tissue == "grey matter"
    assert np.sign(result.xyz[0]) == side  # never crosses to the other hemisphere
    assert result.moved_mm == pytest.approx(10.0, abs=2.5)  # to the 40 mm boundary
    assert result.describe(sphere_labels)["moved_to_grey_matter_mm"] == pytest.approx(
        result.moved_mm, abs=1e-3
    )


def test_no_snap_keeps_the_target_and_records_the_tissue(sphere_labels):
    target = np.array([-30.0, 0.0, 0.0])
    result = cortical_target(sphere_labels, target, np.array([-70.0, 0, 0]), snap=False)
    assert result.moved_mm == 0.0 and result.tissue == "white matter"
    np.testing.assert_array_equal(result.xyz, target)


def test_grey_matter_target_is_kept(sphere_labels):
    target = np.array([0.0, 42.0, 1.0])
    result = cortical_target(sphere_labels, target, np.array([0.0, 70.0, 0.0]))
    assert result.tissue == result.tissue_given == "grey matter" and result.moved_mm == 0.0
