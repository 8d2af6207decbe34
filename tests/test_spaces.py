import numpy as np
import pytest

from tmsplan.errors import PoseError, SpaceError
from tmsplan.spaces import LPS_FROM_RAS, CoilPoses, Points, Transform, check_rigid


def _random_rigid(rng):
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    mat = np.eye(4)
    mat[:3, :3] = q
    mat[:3, 3] = rng.normal(scale=50, size=3)
    return mat


def test_points_shape_and_frame():
    pts = Points([1, 2, 3], "MNI152NLin6Asym")
    assert pts.xyz.shape == (1, 3)
    assert pts.frame == "MNI152NLin6Asym"
    with pytest.raises(ValueError):
        pts.xyz[0, 0] = 5  # read-only
    with pytest.raises(SpaceError, match=r"\(n, 3\)"):
        Points(np.zeros((2, 2)), "T1w")
    with pytest.raises(SpaceError, match="finite"):
        Points([np.nan, 0, 0], "T1w")


def test_check_rigid_refuses_shear_mirror_nan():
    rng = np.random.default_rng(1)
    good = _random_rigid(rng)
    assert check_rigid(good).shape == (1, 4, 4)
    sheared = good.copy()
    sheared[0, 1] += 0.05
    with pytest.raises(PoseError, match="not orthonormal"):
        check_rigid(sheared)
    mirrored = good @ np.diag([-1.0, 1, 1, 1])
    with pytest.raises(PoseError, match="determinant -1"):
        check_rigid(mirrored)
    nan = good.copy()
    nan[0, 3] = np.nan
    with pytest.raises(PoseError, match="NaN"):
        check_rigid(nan)
    with pytest.raises(PoseError, match="last row"):
        bad = good.copy()
        bad[3, 0] = 1
        check_rigid(bad)


def test_coil_poses_batch():
    rng = np.random.default_rng(2)
    poses = CoilPoses(np.stack([_random_rigid(rng) for _ in range(3)]), "T1w")
    assert len(poses) == 3
    assert poses.centres.xyz.shape == (3, 3)
    assert poses.centres.frame == "T1w"


def test_transform_direction_and_compose():
    shift = np.eye(4)
    shift[:3, 3] = [10, 0, 0]
    mni_to_subject = Transform("MNI152NLin6Asym", "T1w", shift)
    moved = mni_to_subject.apply(Points([[-40, 0, 0]], "MNI152NLin6Asym"))
    assert moved.frame == "T1w"
    np.testing.assert_allclose(moved.xyz, [[-30, 0, 0]])
    back = mni_to_subject.inverse().apply(moved)
    np.testing.assert_allclose(back.xyz, [[-40, 0, 0]])
    with pytest.raises(SpaceError, match="points are in 'T1w'"):
        mni_to_subject.apply(moved)
    with pytest.raises(SpaceError, match="frames"):
        mni_to_subject.compose(mni_to_subject)


def test_lps_constant_flips_left_right_and_front_back():
    left_front = np.array([-40.0, 20.0, 50.0, 1.0])
    lps = LPS_FROM_RAS @ left_front
    np.testing.assert_allclose(lps, [40, -20, 50, 1])
    np.testing.assert_allclose(LPS_FROM_RAS @ LPS_FROM_RAS, np.eye(4))


def test_non_numeric_poses_and_points_are_clear_errors():
    with pytest.raises(PoseError, match="4x4 numbers"):
        check_rigid([["a", "b", "c", "d"]] * 4)
    with pytest.raises(PoseError, match="4x4 numbers"):
        check_rigid([[1, 0, 0], [0, 1]])
    with pytest.raises(SpaceError, match=r"shape \(n, 3\)"):
        Points([[1, 2, 3], [4, 5]], "T1w")
