"""Tissue classes and cortex snapping (tmsplan.head.tissue).

The phantom is a head of nested spheres with known labels, built in world RAS+
mm: a white-matter core (r < 48 mm) holding two CSF ventricles and a small deep
grey-matter nucleus on the right; a cortex whose outer radius is
``58 - 3 x / r`` mm (61 mm at the far left, 55 mm at the far right: thicker on
the LEFT); CSF to 66 mm; a skull with a bright marrow layer; scalp. Then
partial-volume blur, a multiplicative bias field brighter on the right and at
the top, and noise. The brain mask is a sphere a few millimetres off, like an
MNI mask carried in by a registration.
"""

import nibabel as nib
import numpy as np
import pytest
from _paths import SHARED
from _phantoms import from_world, restore
from scipy import ndimage

from tmsplan.errors import ImageError, SpaceError
from tmsplan.head.tissue import (
    CSF,
    GREY_MATTER,
    OUTSIDE,
    WHITE_MATTER,
    CortexSnap,
    snap_to_cortex,
    tissue_at,
    tissue_segmentation,
)
from tmsplan.spaces import MNI_FRAME, SUBJECT_FRAME, Points

VOXEL = 1.5
SHAPE = (116, 116, 116)
WM_R = 48.0
CSF_R = 66.0
NUCLEUS = (np.array([22.0, 0.0, 0.0]), 5.0)  # deep grey matter inside the white matter
VENTRICLES = ((-7.0, 0.0, 10.0), (7.0, 0.0, 10.0))  # CSF ellipsoids, semi-axes 4, 16, 6 mm
INTENSITY = {CSF: 300.0, GREY_MATTER: 600.0, WHITE_MATTER: 760.0}  # GM/WM as real T1s (0.8)
REAL_HEADS = SHARED / "real-heads"


def gm_outer_radius(x, r):
    """Outer radius of the cortex in the direction of a point: 61 mm far left, 55 far right."""
    return 58.0 - 3.0 * x / np.maximum(r, 1e-9)


def true_labels(x, y, z):
    r = np.sqrt(x * x + y * y + z * z)
    labels = np.full(r.shape, OUTSIDE, dtype=np.uint8)
    labels[r < CSF_R] = CSF
    labels[r < gm_outer_radius(x, r)] = GREY_MATTER
    labels[r < WM_R] = WHITE_MATTER
    centre, radius = NUCLEUS
    nucleus = (x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2 < radius**2
    labels[nucleus] = GREY_MATTER
    for cx, cy, cz in VENTRICLES:
        inside = ((x - cx) / 4.0) ** 2 + ((y - cy) / 16.0) ** 2 + ((z - cz) / 6.0) ** 2 < 1.0
        labels[inside] = CSF
    return labels


def _t1_values(x, y, z):
    r = np.sqrt(x * x + y * y + z * z)
    labels = true_labels(x, y, z)
    values = np.zeros(r.shape)
    for label, value in INTENSITY.items():
        values[labels == label] = value
    values[(r >= CSF_R) & (r < 69.0)] = 80.0  # inner table (dark)
    values[(r >= 69.0) & (r < 71.5)] = 950.0  # marrow (bright, like white matter)
    values[(r >= 71.5) & (r < 74.0)] = 80.0  # outer table
    values[(r >= 74.0) & (r < 80.0)] = 700.0  # scalp
    return values


@pytest.fixture(scope="module")
def phantom():
    """(t1, brain_mask, truth) on a 1.5 mm RAS grid; seeded noise."""
    truth = from_world(true_labels, shape=SHAPE, voxel_mm=VOXEL, dtype=np.uint8)
    t1 = _noisy_t1(lambda x, y, z: np.exp(0.18 * x / 80 + 0.12 * z / 80 - 0.1 * (z / 80) ** 2))
    mask = _mask(63.0, (2.0, -1.5, 1.0))
    return t1, mask, truth


def _noisy_t1(bias_func, seed=8):
    """The phantom T1 blurred, times ``bias_func(x, y, z)``, plus noise (SD 40)."""
    t1 = from_world(_t1_values, shape=SHAPE, voxel_mm=VOXEL, dtype=np.float64)
    xyz = nib.affines.apply_affine(t1.affine, np.indices(SHAPE).reshape(3, -1).T)
    bias = bias_func(*(xyz[:, axis].reshape(SHAPE) for axis in range(3)))
    data = ndimage.gaussian_filter(t1.get_fdata(), 0.6) * bias
    data += np.random.default_rng(seed).normal(0.0, 40.0, SHAPE)
    out = nib.Nifti1Image(np.abs(data), t1.affine)
    out.set_sform(t1.affine, code=1)
    out.set_qform(t1.affine, code=1)
    return out


def _mask(radius, centre, affine=None):
    centre = np.asarray(centre)

    def func(x, y, z):
        return ((x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2) < radius**2

    return from_world(func, shape=SHAPE, voxel_mm=VOXEL, dtype=np.uint8)


@pytest.fixture(scope="module")
def tissue(phantom):
    t1, mask, _ = phantom
    return tissue_segmentation(t1, mask)


def dice(a, b):
    return 2.0 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


@pytest.mark.slow
def test_labels_match_the_phantom(phantom, tissue):
    _, _, truth = phantom
    got, want = np.asarray(tissue.labels.dataobj), np.asarray(truth.dataobj)
    assert tissue.labels.shape == truth.shape
    assert np.allclose(tissue.labels.affine, truth.affine)
    assert got.dtype == np.uint8
    gm, wm = (
        dice(got == GREY_MATTER, want == GREY_MATTER),
        dice(got == WHITE_MATTER, want == WHITE_MATTER),
    )
    assert gm >= 0.8, gm
    assert wm >= 0.8, wm
    # per hemisphere too: the bias field (brighter on the right) must not shift one side
    xyz = nib.affines.apply_affine(truth.affine, np.indices(SHAPE).reshape(3, -1).T)
    left = (xyz[:, 0] < 0).reshape(SHAPE)
    for side in (left, ~left):
        assert dice((got == GREY_MATTER) & side, (want == GREY_MATTER) & side) >= 0.8
    # the thicker left cortex is seen: more grey matter on the left than on the right
    assert ((got == GREY_MATTER) & left).sum() > 1.15 * ((got == GREY_MATTER) & ~left).sum()


@pytest.mark.slow
def test_centre_brightening_bias_is_removed(phantom):
    # a 3T-like field: 25 % darker at the brain's edge than at its centre, and a
    # 30 % left-right tilt; the bias fit must not take the white core / grey rim
    # layout for part of the field
    _, mask, truth = phantom
    t1 = _noisy_t1(lambda x, y, z: np.exp(0.3 * x / 80 - 0.25 * (x * x + y * y + z * z) / 80**2))
    got, want = np.asarray(tissue_segmentation(t1, mask).labels.dataobj), np.asarray(truth.dataobj)
    assert dice(got == GREY_MATTER, want == GREY_MATTER) >= 0.9
    assert dice(got == WHITE_MATTER, want == WHITE_MATTER) >= 0.9


def test_record_describes_the_method(tissue):
    record = tissue.describe()
    assert "Gaussian mixture" in record["method"]["model"]
    assert record["method"]["rim_mm"] == 5.0
    means = record["quality"]["class_means"]
    assert means[0] < means[1] < means[2]
    assert record["quality"]["gm_wm_separation_sd"] > 2.0
    assert "seconds" not in record
    assert tissue.frame == SUBJECT_FRAME


@pytest.mark.parametrize(
    ("xyz", "expected"),
    [
        ((-40.0, 0.0, 0.0), "white matter"),
        ((40.0, 5.0, 0.0), "white matter"),
        ((-52.0, 0.0, 0.0), "grey matter"),
        ((52.0, 0.0, 0.0), "grey matter"),
        ((-58.5, 0.0, 0.0), "grey matter"),  # left cortex is thick here ...
        ((58.5, 0.0, 0.0), "csf"),  # ... the right one ends at 55 mm
        ((-63.5, 0.0, 0.0), "csf"),
        ((0.0, 0.0, 56.0), "grey matter"),
        ((22.0, 0.0, 0.0), "grey matter"),  # the deep nucleus
        ((0.0, 0.0, 77.0), "outside brain"),  # scalp
        ((0.0, 70.0, 0.0), "outside brain"),  # bright marrow beyond the rim
        ((400.0, 0.0, 0.0), "outside brain"),  # outside the image
    ],
)
def test_tissue_at_analytic_points(tissue, xyz, expected):
    assert tissue_at(tissue, np.array(xyz)) == expected


@pytest.mark.slow
@pytest.mark.parametrize("order", ["LAS", "LPS"])
def test_same_anatomy_in_other_voxel_orders(phantom, tissue, order):
    t1, mask, _ = phantom
    other = tissue_segmentation(restore(t1, order), restore(mask, order))
    points = [(-58.5, 0, 0), (58.5, 0, 0), (-52, 10, 5), (52, 10, 5), (-40, 0, 0), (22, 0, 0)]
    assert [tissue_at(other, np.array(p, float)) for p in points] == [
        tissue_at(tissue, np.array(p, float)) for p in points
    ]
    back = restore(other.labels, order)  # flipping twice restores the RAS storage
    assert np.mean(np.asarray(back.dataobj) == np.asarray(tissue.labels.dataobj)) > 0.995


@pytest.mark.slow
def test_deterministic(phantom, tissue):
    t1, mask, _ = phantom
    again = tissue_segmentation(t1, mask)
    assert np.array_equal(np.asarray(again.labels.dataobj), np.asarray(tissue.labels.dataobj))
    assert again.describe() == tissue.describe()


@pytest.mark.parametrize("side", [-1.0, 1.0])
def test_snap_from_white_matter_moves_outward_on_the_same_side(tissue, side):
    point = np.array([30.0 * side, 20.0, 15.0])
    radius = np.linalg.norm(point)
    entry = point / radius * 78.0
    snap = snap_to_cortex(tissue, point, entry)
    assert isinstance(snap, CortexSnap)
    new_xyz, distance, how = snap
    assert tissue_at(tissue, new_xyz) == "grey matter"
    assert np.sign(new_xyz[0]) == side
    # the cortex starts at r = 48 mm: analytic distance within a voxel
    assert abs(distance - (WM_R - radius)) <= VOXEL
    assert abs(np.linalg.norm(new_xyz) - WM_R) <= VOXEL
    assert np.isclose(distance, np.linalg.norm(new_xyz - point))
    assert "white matter" in how and "outward" in how


def test_snap_from_white_matter_skips_deep_grey_matter_behind(tissue):
    # 6 mm from the deep nucleus (inward), about 15.6 mm from the cortex (outward)
    point = np.array([32.0, 0.0, 5.0])
    toward = point / np.linalg.norm(point) * 78.0
    new_xyz, distance, _ = snap_to_cortex(tissue, point, toward)
    assert np.linalg.norm(new_xyz) > WM_R - VOXEL
    assert abs(distance - (WM_R - np.linalg.norm(point))) <= VOXEL
    # without a direction the nearest grey matter is the nucleus
    near_xyz, near_distance, _ = snap_to_cortex(tissue, point, point)
    assert np.linalg.norm(near_xyz - NUCLEUS[0]) < NUCLEUS[1] + VOXEL
    assert near_distance < distance


@pytest.mark.parametrize("side", [-1.0, 1.0])
def test_snap_from_csf_to_nearest_grey_matter(tissue, side):
    direction = np.array([0.8 * side, 0.0, 0.6])
    outer = gm_outer_radius(direction[0], 1.0)
    point = direction * (outer + 3.5)
    assert tissue_at(tissue, point) == "csf"
    new_xyz, distance, how = snap_to_cortex(tissue, point, direction * 78.0)
    assert tissue_at(tissue, new_xyz) == "grey matter"
    assert np.sign(new_xyz[0]) == side
    assert abs(distance - 3.5) <= VOXEL
    assert how == "moved from csf to the nearest grey matter"


def test_snap_keeps_grey_matter_and_far_points(tissue):
    point = np.array([-55.0, 0.0, 0.0])
    new_xyz, distance, how = snap_to_cortex(tissue, point, point * 1.5)
    assert np.array_equal(new_xyz, point) and distance == 0.0 and "kept" in how
    far = np.array([0.0, 0.0, 120.0])
    new_xyz, distance, how = snap_to_cortex(tissue, far, far * 1.5, max_distance_mm=10.0)
    assert np.array_equal(new_xyz, far) and distance == 0.0
    assert "no grey matter within 10 mm" in how


def test_points_carry_their_frame(tissue):
    assert tissue_at(tissue, Points(np.array([[-40.0, 0.0, 0.0]]), SUBJECT_FRAME)) == "white matter"
    with pytest.raises(SpaceError, match="frame"):
        tissue_at(tissue, Points(np.array([[-40.0, 0.0, 0.0]]), MNI_FRAME))
    with pytest.raises(SpaceError, match="one point"):
        tissue_at(tissue, np.zeros((2, 3)))


@pytest.mark.slow
def test_mask_too_small_keeps_the_cortex_at_the_rim(phantom):
    t1, _, truth = phantom
    small = tissue_segmentation(t1, _mask(57.0, (0.0, 0.0, 0.0)))
    got, want = np.asarray(small.labels.dataobj), np.asarray(truth.dataobj)
    assert dice(got == GREY_MATTER, want == GREY_MATTER) >= 0.8
    assert tissue_at(small, np.array([-59.5, 0.0, 0.0])) == "grey matter"


@pytest.mark.slow
def test_mask_too_large_does_not_take_marrow(phantom):
    t1, _, truth = phantom
    large = tissue_segmentation(t1, _mask(68.0, (0.0, 0.0, 0.0)))
    got, want = np.asarray(large.labels.dataobj), np.asarray(truth.dataobj)
    assert dice(got == WHITE_MATTER, want == WHITE_MATTER) >= 0.8
    for xyz in ([0.0, 0.0, 70.0], [-70.0, 0.0, 0.0], [0.0, -70.0, 0.0]):
        assert tissue_at(large, np.array(xyz)) in ("outside brain", "csf")


def test_bad_inputs(phantom):
    t1, mask, _ = phantom
    other_grid = nib.Nifti1Image(np.asarray(mask.dataobj)[:-2], mask.affine)
    with pytest.raises(SpaceError, match="grid"):
        tissue_segmentation(t1, other_grid)
    empty = nib.Nifti1Image(np.zeros(SHAPE, np.uint8), mask.affine)
    with pytest.raises(ImageError, match="brain_mask"):
        tissue_segmentation(t1, empty)
    flat = nib.Nifti1Image(np.random.default_rng(1).normal(500, 50, SHAPE), t1.affine)
    with pytest.raises(ImageError, match="contrast"):
        tissue_segmentation(flat, mask)
    with pytest.raises(ImageError, match="t1"):
        tissue_segmentation(nib.Nifti1Image(np.zeros((*SHAPE, 2)), t1.affine), mask)


# --------------------------------------------------------------------------- real head


@pytest.fixture(scope="module")
def real_head():
    path = REAL_HEADS / "chris_t1.nii.gz"
    if not path.is_file():
        pytest.skip("real-head T1 not available")
    from tmsplan.io.bundled import load_mni_brain_mask
    from tmsplan.io.images import check_img
    from tmsplan.xfm.registration import register_mni_to_t1

    t1 = check_img(path, name="t1")
    mni_to_t1 = register_mni_to_t1(t1).mni_to_subject
    mask = mni_to_t1.resample_to_subject(load_mni_brain_mask(1), t1, interpolation="nearest")
    return t1, mni_to_t1, tissue_segmentation(t1, mask)


@pytest.mark.slow
def test_real_head_hand_knob_ends_in_grey_matter(real_head):
    t1, mni_to_t1, tissue = real_head
    volumes = tissue.quality["volumes_ml"]
    assert 450.0 < volumes["grey matter"] < 950.0
    assert 300.0 < volumes["white matter"] < 750.0
    knob = mni_to_t1.apply_points(Points(np.array([[-37.0, -21.0, 58.0]]), MNI_FRAME)).xyz[0]
    assert knob[0] < 0
    assert tissue_at(tissue, knob) in ("grey matter", "white matter")
    brain = np.argwhere(np.asarray(tissue.labels.dataobj) > OUTSIDE).mean(axis=0)
    centre = nib.affines.apply_affine(t1.affine, brain)
    new_xyz, distance, _ = snap_to_cortex(tissue, knob, 2 * knob - centre)
    assert tissue_at(tissue, new_xyz) == "grey matter"
    assert distance <= 8.0
    assert new_xyz[0] < 0


@pytest.mark.slow
def test_real_head_white_matter_point_snaps_outward(real_head):
    t1, mni_to_t1, tissue = real_head
    # MNI (-30, -20, 40) is deep white matter under the left central region
    deep = mni_to_t1.apply_points(Points(np.array([[-30.0, -20.0, 40.0]]), MNI_FRAME)).xyz[0]
    assert tissue_at(tissue, deep) == "white matter"
    brain = np.argwhere(np.asarray(tissue.labels.dataobj) > OUTSIDE).mean(axis=0)
    centre = nib.affines.apply_affine(t1.affine, brain)
    new_xyz, distance, how = snap_to_cortex(tissue, deep, 2 * deep - centre)
    assert tissue_at(tissue, new_xyz) == "grey matter"
    assert new_xyz[0] < 0
    assert 0.0 < distance <= 20.0
    # outward: farther from the brain centre than the start
    assert np.linalg.norm(new_xyz - centre) > np.linalg.norm(deep - centre)


@pytest.mark.slow
def test_probabilities_match_the_labels(phantom, tissue):
    t1, mask, _ = phantom
    with_probs = tissue_segmentation(t1, mask, with_probabilities=True)
    probs = with_probs.probabilities.get_fdata()
    labels = np.asarray(with_probs.labels.dataobj)
    assert probs.shape == (*SHAPE, 3)
    assert np.array_equal(labels, np.asarray(tissue.labels.dataobj))
    inside = labels > OUTSIDE
    assert np.allclose(probs[inside].sum(axis=1), 1.0, atol=1e-4)
    assert np.array_equal(np.argmax(probs[inside], axis=1) + 1, labels[inside])
    assert np.all(probs[~inside] == 0.0)
    assert tissue.probabilities is None
