"""Thresholds as published maps use them: FDR/Bonferroni (nilearn), cluster extent, two-sided."""

import nibabel as nib
import numpy as np
import pytest
from _phantoms import sphere_mask
from scipy.stats import norm

from tmsplan.cli import main
from tmsplan.errors import ActivationError
from tmsplan.io.bundled import load_mni_brain_mask
from tmsplan.io.record import read_record
from tmsplan.pipeline.plan import plan_target
from tmsplan.target.activation import select_target, statistical_threshold

TARGET = np.array([-46.0, 30.0, 24.0])  # left DLPFC, ~17 mm below the scalp


def _noisy_map(seed=0, blob=6.0, sign=1.0):
    """MNI 2 mm map: N(0, 1) in the brain, plus a Gaussian blob (height ``sign * blob``)."""
    brain = load_mni_brain_mask(2)
    inside = np.asarray(brain.dataobj) > 0
    rng = np.random.default_rng(seed)
    data = np.zeros(inside.shape)
    data[inside] = rng.standard_normal(int(inside.sum()))
    ijk = np.indices(inside.shape).reshape(3, -1).T
    world = (ijk @ brain.affine[:3, :3].T + brain.affine[:3, 3]).reshape(*inside.shape, 3)
    d2 = np.sum((world - TARGET) ** 2, axis=-1)
    data += sign * blob * np.exp(-d2 / (2 * 5.0**2)) * inside
    img = nib.Nifti1Image(data.astype(np.float32), brain.affine)
    img.set_sform(brain.affine, code=4)
    return img


def _benjamini_hochberg(z, alpha):
    """Indices rejected by BH on one-sided p-values (independent of nilearn)."""
    p = norm.sf(z)
    order = np.argsort(p)
    n = len(p)
    passed = np.flatnonzero(p[order] <= alpha * np.arange(1, n + 1) / n)
    return set() if passed.size == 0 else set(order[: passed[-1] + 1].tolist())


@pytest.mark.parametrize("sign", ["positive", "absolute"])
def test_fdr_threshold_matches_benjamini_hochberg(sign):
    img = _noisy_map()
    thr, info = statistical_threshold(img, height_control="fdr", sign=sign)
    z = img.get_fdata()[img.get_fdata() != 0]
    alpha = 0.05
    if sign == "absolute":
        z, alpha = np.abs(z), alpha / 2  # two-sided: both tails share alpha
    rejected = _benjamini_hochberg(z, alpha)
    assert rejected and set(np.flatnonzero(z > thr).tolist()) == rejected
    assert info["method"] == "fdr" and info["alpha"] == 0.05
    assert info["two_sided"] is (sign == "absolute") and info["n_voxels_tested"] == len(z)


def test_bonferroni_and_fpr_thresholds_are_the_normal_quantiles():
    img = _noisy_map()
    n = int(np.count_nonzero(img.get_fdata()))
    thr, _ = statistical_threshold(img, height_control="bonferroni", sign="positive")
    assert thr == pytest.approx(norm.isf(0.05 / n))
    thr2, info = statistical_threshold(img, height_control="bonferroni", sign="absolute")
    assert thr2 == pytest.approx(norm.isf(0.025 / n)) and info["two_sided"]
    thr3, _ = statistical_threshold(img, height_control="fpr", sign="positive")
    assert thr3 == pytest.approx(norm.isf(0.001))
    with pytest.raises(ActivationError, match="--alpha"):
        statistical_threshold(img, height_control="fdr", alpha=1.5)
    flat = nib.Nifti1Image(np.where(img.get_fdata() != 0, 0.1, 0.0), img.affine)
    with pytest.raises(ActivationError, match="no voxel of the activation map survives FDR"):
        statistical_threshold(flat, height_control="fdr")


@pytest.mark.slow
def test_two_sided_fdr_plan_targets_a_negative_blob_and_records_it(tmp_path, capsys):
    img = _noisy_map(sign=-1.0)
    roi = sphere_mask(tuple(TARGET), 12.0, img)
    plan = plan_target(img, roi_mask=roi, sign="absolute", height_control="fdr")
    target = plan.record["targets"][0]
    assert np.linalg.norm(np.asarray(target["cortical_mm"]) - TARGET) <= 4
    assert plan.record["activation"]["target_value"] < -3
    thresholding = plan.record["thresholding"]
    assert thresholding["method"] == "fdr" and thresholding["two_sided"]
    assert plan.record["parameters"]["threshold"] == pytest.approx(thresholding["threshold"])
    # the same from the command line
    nib.save(img, tmp_path / "z.nii.gz")
    nib.save(roi, tmp_path / "roi.nii.gz")
    args = ["plan", "--activation", str(tmp_path / "z.nii.gz"), "--roi-mask"]
    args += [str(tmp_path / "roi.nii.gz"), "--sign", "absolute", "--height-control", "fdr"]
    args += ["--min-cluster-mm3", "100", "--no-report", "--formats", "csv"]
    assert main([*args, "--out", str(tmp_path / "p")]) == 0, capsys.readouterr().err
    record = read_record(tmp_path / "p")
    assert record["thresholding"]["min_cluster_mm3"] == 100.0
    assert record["thresholding"]["threshold"] == pytest.approx(thresholding["threshold"])


def test_cluster_extent_is_measured_on_the_whole_map_before_the_roi():
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    data = np.zeros((30, 30, 30), np.float32)
    data[2:20, 10:13, 10:13] = 4.0  # a long cluster (162 voxels), only its tip in the ROI
    data[20:23, 20:23, 10:13] = 5.0  # an isolated cluster of 27 voxels inside the ROI
    img = nib.Nifti1Image(data, affine)
    roi_data = np.zeros_like(data, dtype=np.uint8)
    roi_data[18:30, 8:30, 8:15] = 1  # 18 voxels of the long cluster, all of the small one
    roi = nib.Nifti1Image(roi_data, affine)
    plain = select_target(img, roi, frame="MNI152NLin6Asym", threshold=3.0)
    assert plain.target_value == 5.0  # the 27-voxel cluster is larger inside the ROI
    # 27 voxels x 8 mm3 = 216 mm3: an extent of 500 mm3 removes it, keeps the long one
    extent = select_target(img, roi, frame="MNI152NLin6Asym", threshold=3.0, min_cluster_mm3=500)
    assert extent.target_value == 4.0 and extent.cluster_size_voxels == 18
    assert extent.describe()["min_cluster_mm3"] == 500.0
    with pytest.raises(ActivationError, match="--min-cluster-mm3"):
        select_target(img, roi, frame="MNI152NLin6Asym", threshold=3.0, min_cluster_mm3=-1)
