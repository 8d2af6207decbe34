import nibabel as nib
import numpy as np
import pytest
from _phantoms import asymmetric_map, restore, sphere_mask

from tmsplan.errors import ActivationError, EmptyIntersectionError, FormatError
from tmsplan.io.bundled import atlas_dir
from tmsplan.io.images import voxel_to_world
from tmsplan.target.activation import (
    Peak,
    map_from_peaks,
    mni_map_from_peak_table,
    read_peak_table,
    select_target,
)

FRAME = "MNI152NLin6Asym"


@pytest.mark.parametrize("order", ["RAS", "LAS", "LPS"])
def test_peak_target_is_the_same_world_point_in_every_storage_order(order):
    act = restore(asymmetric_map(), order)
    roi = sphere_mask((-30, 10, 20), 12.0, asymmetric_map())
    chosen = select_target(act, roi, frame=FRAME, threshold=3.0)
    np.testing.assert_allclose(chosen.target.xyz, [[-30, 10, 20]], atol=1e-6)
    assert chosen.target.frame == FRAME
    assert chosen.peak_value == pytest.approx(8.0, abs=1e-3)


def test_left_and_right_rois_select_their_own_hemisphere():
    act = asymmetric_map()
    left = select_target(act, sphere_mask((-30, 10, 20), 12, act), frame=FRAME)
    right = select_target(act, sphere_mask((30, -20, 10), 12, act), frame=FRAME)
    assert left.target.xyz[0, 0] < 0
    assert right.target.xyz[0, 0] > 0
    np.testing.assert_allclose(right.target.xyz, [[30, -20, 10]], atol=1e-6)
    assert right.peak_value == pytest.approx(5.0, abs=1e-3)


def test_cluster_size_matches_analytic_sphere():
    # Gaussian blob with sigma 5, peak 8: above 3.0 within r = 5 * sqrt(2 ln(8/3))
    act = asymmetric_map()
    chosen = select_target(act, sphere_mask((-30, 10, 20), 30, act), frame=FRAME, threshold=3.0)
    radius = 5.0 * np.sqrt(2 * np.log(8 / 3))
    expected = 4 / 3 * np.pi * radius**3
    assert chosen.cluster_volume_mm3 == pytest.approx(expected, rel=0.1)
    assert chosen.cluster_size_voxels * 8 == pytest.approx(chosen.cluster_volume_mm3)


def test_cog_rule_lands_inside_cluster():
    act = asymmetric_map()
    # ROI cuts the blob off-centre: cog differs from the peak but stays in the cluster
    roi = sphere_mask((-36, 10, 20), 7, act)
    chosen = select_target(act, roi, frame=FRAME, threshold=3.0, rule="cog")
    assert chosen.rule == "cog"
    assert chosen.target_value > 3.0
    assert chosen.target.xyz[0, 0] < -30


def test_negative_sign():
    act = asymmetric_map()
    neg = nib.Nifti1Image(-act.get_fdata(), act.affine)
    neg.set_sform(act.affine, code=1)
    chosen = select_target(neg, sphere_mask((-30, 10, 20), 12, act), frame=FRAME, sign="negative")
    np.testing.assert_allclose(chosen.target.xyz, [[-30, 10, 20]], atol=1e-6)
    assert chosen.peak_value == pytest.approx(-8.0, abs=1e-3)
    with pytest.raises(ActivationError, match="no voxel of the activation map passes"):
        select_target(neg, sphere_mask((-30, 10, 20), 12, act), frame=FRAME, sign="positive")


def test_empty_intersection_is_a_clear_error():
    act = asymmetric_map()
    far_roi = sphere_mask((0, -60, -40), 8, act)
    with pytest.raises(EmptyIntersectionError, match="no supra-threshold voxel .* inside ROI x"):
        select_target(act, far_roi, frame=FRAME, roi_label="ROI x")


def test_too_high_threshold():
    act = asymmetric_map()
    with pytest.raises(ActivationError, match="lower the threshold"):
        select_target(act, sphere_mask((-30, 10, 20), 12, act), frame=FRAME, threshold=50)


def test_bad_rule_and_sign():
    act = asymmetric_map()
    roi = sphere_mask((-30, 10, 20), 12, act)
    with pytest.raises(ActivationError, match="rule"):
        select_target(act, roi, frame=FRAME, rule="max")  # type: ignore[arg-type]
    with pytest.raises(ActivationError, match="sign"):
        select_target(act, roi, frame=FRAME, sign="both")  # type: ignore[arg-type]


def test_map_from_peaks_cluster_volume_is_the_reported_one():
    ref = asymmetric_map()  # 2 mm grid
    peak = Peak(xyz=(-30.0, 10.0, 20.0), value=6.0, volume_mm3=4000.0, label="left")
    img = map_from_peaks([peak], ref, threshold=3.1)
    data = img.get_fdata()
    assert data.max() == pytest.approx(6.0, rel=1e-6)
    ijk = np.unravel_index(np.argmax(data), data.shape)
    np.testing.assert_allclose(voxel_to_world(img.affine, ijk), [[-30, 10, 20]])
    volume = (data > 3.1).sum() * 8.0
    assert volume == pytest.approx(4000.0, rel=0.08)


def test_map_from_peaks_keeps_every_peak_height_and_sign():
    ref = asymmetric_map()
    peaks = [
        Peak((-30.0, 10.0, 20.0), 6.0, 3000.0, "L"),
        Peak((30.0, -20.0, 10.0), -5.0, 2000.0, "R deactivation"),
    ]
    data = map_from_peaks(peaks, ref).get_fdata()
    assert data.max() == pytest.approx(6.0, rel=1e-6)
    assert data.min() == pytest.approx(-5.0, rel=1e-6)


def test_map_from_peaks_refuses_subthreshold_and_outside():
    ref = asymmetric_map()
    with pytest.raises(ActivationError, match="not beyond the threshold"):
        map_from_peaks([Peak((0.0, 0.0, 0.0), 2.0)], ref, threshold=3.1)
    with pytest.raises(ActivationError, match="outside the reference grid"):
        map_from_peaks([Peak((500.0, 0.0, 0.0), 6.0)], ref)


def test_read_bundled_seed_table():
    peaks = read_peak_table(atlas_dir() / "peaks" / "zhang2018_cocaine_cue_table1.tsv")
    assert len(peaks) == 7
    first = peaks[0]
    assert first.xyz == (-39.0, -58.0, -14.0)
    assert first.value == 6.96
    assert first.volume_mm3 == 19737
    assert peaks[-1].label == "L/R Hypothalamus"


def test_read_peak_table_errors(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("x\ty\tvalue\n1\t2\t3\n")
    with pytest.raises(FormatError, match="lacks columns"):
        read_peak_table(bad)
    bad.write_text("x,y,z,peak_z\n1,2,three,4\n")
    with pytest.raises(FormatError, match="line 2"):
        read_peak_table(bad)
    with pytest.raises(FormatError, match="does not exist"):
        read_peak_table(tmp_path / "missing.tsv")


def test_mni_map_from_seed_table_recovers_left_mfg_peak():
    img, provenance = mni_map_from_peak_table(
        atlas_dir() / "peaks" / "zhang2018_cocaine_cue_table1.tsv"
    )
    assert provenance["n_peaks"] == 7
    roi = sphere_mask((-54, 2, 28), 10, img)
    chosen = select_target(img, roi, frame=FRAME)
    np.testing.assert_allclose(chosen.target.xyz, [[-54, 2, 28]], atol=1e-6)
    assert chosen.peak_value == pytest.approx(5.39, abs=1e-3)


@pytest.mark.parametrize("order", ["LAS", "LPS"])
def test_tied_peaks_give_the_same_world_target_in_every_storage_order(order):
    # a saturated blob: every voxel within 6 mm holds the same maximum
    act = asymmetric_map()
    data = np.minimum(act.get_fdata(), 6.0)
    flat = nib.Nifti1Image(data, act.affine)
    flat.set_sform(act.affine, code=1)
    roi = sphere_mask((-30, 10, 20), 12, act)
    ras = select_target(flat, roi, frame=FRAME)
    other = select_target(restore(flat, order), roi, frame=FRAME)
    np.testing.assert_allclose(other.target.xyz, ras.target.xyz)
    np.testing.assert_allclose(ras.target.xyz, [[-30, 10, 20]], atol=1e-6)  # centre of the plateau


@pytest.mark.parametrize("order", ["LAS", "LPS"])
def test_fully_tied_clusters_are_chosen_by_world_position_not_storage_order(order):
    # two identical plateaus (same size, same peak) mirrored across the midline
    ref = asymmetric_map()
    left = sphere_mask((-30, 10, 20), 5, ref).get_fdata()
    right = sphere_mask((30, 10, 20), 5, ref).get_fdata()
    twin = nib.Nifti1Image(5.0 * (left + right), ref.affine)
    twin.set_sform(ref.affine, code=1)
    roi = sphere_mask((0, 10, 20), 40, ref)
    ras = select_target(twin, roi, frame=FRAME)
    other = select_target(restore(twin, order), roi, frame=FRAME)
    np.testing.assert_allclose(other.target.xyz, ras.target.xyz)
    assert ras.target.xyz[0, 0] < 0  # the documented tie-break: smallest world x


def test_non_utf8_peak_table(tmp_path):
    bad = tmp_path / "peaks.tsv"
    bad.write_bytes(b"x\ty\tz\tpeak_z\n\xff\xfe1\t2\t3\t4\n")
    with pytest.raises(FormatError, match="UTF-8"):
        read_peak_table(bad)
