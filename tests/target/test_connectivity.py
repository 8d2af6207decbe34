"""Connectivity-guided targeting on a synthetic resting-state run with planted sites."""

import json

import nibabel as nib
import numpy as np
import pytest
from _phantoms import rigid_scaling, synthetic_patient
from _rest import (
    DECOY,
    PLANTED,
    SEARCH_ROI,
    SEED_ROI,
    mni_affine,
    synthetic_rest,
    write_confounds,
)

from tmsplan.cli import main
from tmsplan.errors import ConnectivityError
from tmsplan.io.bundled import load_mni_head
from tmsplan.io.record import read_record
from tmsplan.target.connectivity import DEFAULT_CONFOUNDS, connectivity_target, read_confounds


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rest")
    img, confounds = synthetic_rest()
    nib.save(img, folder / "bold.nii.gz")
    write_confounds(folder / "confounds.tsv", confounds)
    return folder, img


def _plan_args(folder, out, *extra):
    return [
        "plan",
        "--rest",
        str(folder / "bold.nii.gz"),
        "--confounds",
        str(folder / "confounds.tsv"),
        "--seed-roi",
        SEED_ROI,
        "--roi",
        SEARCH_ROI,
        "--strategy",
        "connectivity",
        "--out",
        str(out),
        *extra,
    ]


@pytest.mark.slow
def test_finds_the_planted_anticorrelated_site_and_the_decoy(run):
    folder, img = run
    conf = folder / "confounds.tsv"
    neg = connectivity_target(img, seed_roi=SEED_ROI, roi=SEARCH_ROI, confounds=conf)
    assert np.linalg.norm(neg.target.xyz[0] - PLANTED) <= 5.0
    assert neg.r < -0.5 and neg.z < neg.r  # Fisher z of a negative r is more negative
    pos = connectivity_target(
        img, seed_roi=SEED_ROI, roi=SEARCH_ROI, confounds=conf, sign="positive"
    )
    assert np.linalg.norm(pos.target.xyz[0] - DECOY) <= 5.0
    assert pos.r > 0.5
    # the anticorrelated site is never offered as a candidate of the positive search
    assert all(np.linalg.norm(np.array(c["target_mm"]) - PLANTED) > 5 for c in pos.candidates)


def test_confound_regression_removes_a_global_signal_that_hides_the_site(tmp_path):
    img, confounds = synthetic_rest(global_amplitude=1.0, seed=3)
    write_confounds(tmp_path / "c.tsv", confounds)
    # without regression the global signal makes every search voxel correlate positively
    with pytest.raises(ConnectivityError, match="no voxel of search ROI .* anticorrelated"):
        connectivity_target(img, seed_roi=SEED_ROI, roi=SEARCH_ROI)
    found = connectivity_target(
        img, seed_roi=SEED_ROI, roi=SEARCH_ROI, confounds=tmp_path / "c.tsv"
    )
    assert np.linalg.norm(found.target.xyz[0] - PLANTED) <= 5.0
    cleaning = found.info["cleaning"]
    assert cleaning["confound_regression"][0] == "global_signal"
    assert cleaning["band_pass_hz"] == [0.01, 0.1] and cleaning["smoothing_fwhm_mm"] == 6.0
    assert found.info["confounds"]["default_columns_missing"] == [
        c for c in DEFAULT_CONFOUNDS if c not in ("global_signal", "csf", "white_matter", "trans_x")
    ]


@pytest.mark.slow
def test_cli_plan_on_the_mni_head_records_the_evidence_and_is_reproducible(run, tmp_path, capsys):
    folder, _ = run
    assert main(_plan_args(folder, tmp_path / "a")) == 0, capsys.readouterr().err
    record = read_record(tmp_path / "a")
    (target,) = record["targets"]
    assert np.linalg.norm(np.asarray(target["cortical_mm"]) - PLANTED) <= 5.0
    assert target["reachable"] and target["name"] == SEARCH_ROI
    strategy = record["strategy"]
    assert strategy["name"] == "connectivity" and strategy["sign"] == "negative"
    assert record["parameters"]["sign"] == "negative"
    assert "connectivity" in record["activation"]["given_target"]["chosen_by"]
    assert strategy["seed"]["roi"] == SEED_ROI and strategy["search"]["roi"] == SEARCH_ROI
    assert strategy["target_r"] < -0.5 and strategy["cleaning"]["tr_s"] == 2.0
    assert len(strategy["rest"]["sha256"]) == 64 and len(strategy["confounds"]["sha256"]) == 64
    assert record["roi"]["id"] == SEARCH_ROI and record["parameters"]["strategy"] == "connectivity"
    assert "localite" in record["outputs"] and record["outputs"]["png"]
    html = (tmp_path / "a" / record["outputs"]["report"][0]).read_text(encoding="utf-8")
    assert "Target strategy" in html and "target_r" in html and "meth_vs_l" in html
    # a re-run gives bit-identical targets
    assert main(_plan_args(folder, tmp_path / "b", "--no-report")) == 0
    again = read_record(tmp_path / "b")
    assert json.dumps(again["targets"]) == json.dumps(record["targets"])


@pytest.mark.slow
def test_cli_plan_in_patient_space_carries_the_mni_target(run, tmp_path, capsys):
    folder, _ = run
    mni_to_patient = rigid_scaling()
    t1 = synthetic_patient(load_mni_head(2), mni_to_patient, order="LPS")
    nib.save(t1, tmp_path / "sub-01_T1w.nii.gz")
    np.savetxt(tmp_path / "mni_to_t1.txt", mni_to_patient)
    args = _plan_args(folder, tmp_path / "sub", "--no-report")
    args += ["--t1", str(tmp_path / "sub-01_T1w.nii.gz")]
    args += ["--mni-to-t1", str(tmp_path / "mni_to_t1.txt")]
    assert main(args) == 0, capsys.readouterr().err
    record = read_record(tmp_path / "sub")
    assert record["space"] == "T1w"
    (target,) = record["targets"]
    mni = np.asarray(target["cortical_mni_mm"])
    assert np.linalg.norm(mni - PLANTED) <= 5.0
    np.testing.assert_allclose(target["cortical_mm"], (mni_to_patient @ [*mni, 1])[:3], atol=1e-3)
    assert target["reachable"]


def _one_line_error(capsys, *, contains):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tmsplan: error:"), err
    assert contains in err[0], err[0]


@pytest.mark.slow
def test_bad_runs_are_one_line_errors_and_write_nothing(run, tmp_path, capsys):
    folder, img = run
    out = tmp_path / "out"
    # a 3-D image as --rest
    nib.save(img.slicer[..., 0], tmp_path / "vol.nii.gz")
    args = _plan_args(folder, out)
    args[2] = str(tmp_path / "vol.nii.gz")
    assert main(args) == 1
    _one_line_error(capsys, contains="4-D")
    # too few volumes
    nib.save(img.slicer[..., :30], tmp_path / "short.nii.gz")
    args[2] = str(tmp_path / "short.nii.gz")
    args[4] = str(tmp_path / "short.tsv")
    write_confounds(tmp_path / "short.tsv", np.zeros((30, 5)))
    assert main(args) == 1
    _one_line_error(capsys, contains="30 volumes")
    # a run whose grid is not in the ROIs' (MNI) space
    moved = nib.Nifti1Image(np.asarray(img.dataobj), np.diag([3.0, 3.0, 3.0, 1.0]), img.header)
    moved.set_sform(np.diag([3.0, 3.0, 3.0, 1.0]), code=1)
    nib.save(moved, tmp_path / "native.nii.gz")
    args = _plan_args(folder, out)
    args[2] = str(tmp_path / "native.nii.gz")
    assert main(args) == 1
    _one_line_error(capsys, contains="outside the field of view")
    # a confounds file of another run
    _, confounds = synthetic_rest(n_volumes=120)
    write_confounds(tmp_path / "other.tsv", confounds)
    args = _plan_args(folder, out)
    args[4] = str(tmp_path / "other.tsv")
    assert main(args) == 1
    _one_line_error(capsys, contains="120 rows but --rest has 150 volumes")
    assert not out.exists()


@pytest.mark.slow
def test_seed_outside_the_runs_mask_and_masks_on_another_grid(run, tmp_path, capsys):
    folder, img = run
    out = tmp_path / "out"
    # partial coverage: the run holds signal only above z = 0 (the seed is at z = -7)
    cut, confounds = synthetic_rest(box=((-66.0, 12.0), (-6.0, 75.0), (3.0, 54.0)))
    nib.save(cut, tmp_path / "cut.nii.gz")
    args = _plan_args(folder, out)
    args[2] = str(tmp_path / "cut.nii.gz")
    assert main(args) == 1
    _one_line_error(capsys, contains="outside the run's mask")
    # an explicit --rest-mask that leaves out the seed
    data = np.zeros(img.shape[:3], np.uint8)
    data[:, :, 30:] = 1  # z >= 18 mm on the 3 mm grid
    nib.save(nib.Nifti1Image(data, img.affine), tmp_path / "mask.nii.gz")
    assert main([*_plan_args(folder, out), "--rest-mask", str(tmp_path / "mask.nii.gz")]) == 1
    _one_line_error(capsys, contains="outside the run's mask")
    # a seed mask on another grid
    other = np.zeros((10, 10, 10), np.uint8)
    other[5, 5, 5] = 1
    nib.save(nib.Nifti1Image(other, mni_affine(2.0)), tmp_path / "seed.nii.gz")
    args = _plan_args(folder, out)
    args[5:7] = ["--seed-mask", str(tmp_path / "seed.nii.gz")]
    assert main(args) == 1
    _one_line_error(capsys, contains="not on the voxel grid of --rest")
    # the strategy without a run
    args = ["plan", "--strategy", "connectivity", "--seed-roi", SEED_ROI, "--roi", SEARCH_ROI]
    assert main([*args, "--out", str(out)]) == 1
    _one_line_error(capsys, contains="--rest BOLD.nii.gz")
    assert not out.exists()


def test_read_confounds_fills_fmriprep_na_and_checks_columns(tmp_path):
    _, confounds = synthetic_rest(n_volumes=60)
    write_confounds(tmp_path / "c.tsv", confounds)
    values, used, missing = read_confounds(
        tmp_path / "c.tsv", 60, ("global_signal", "framewise_displacement")
    )
    assert used == ["global_signal", "framewise_displacement"] and missing == []
    assert values.shape == (60, 2) and np.all(np.isfinite(values))
    assert values[0, 1] == pytest.approx(np.mean(confounds[1:, 4]))
    with pytest.raises(ConnectivityError, match="lacks the columns"):
        read_confounds(tmp_path / "c.tsv", 60, ("a_comp_cor_00",))


@pytest.mark.slow
def test_search_mask_instead_of_an_atlas_roi(run):
    from tmsplan.pipeline.plan import plan_target
    from tmsplan.target.atlas import get_roi, roi_mask_img

    folder, img = run
    grid = nib.Nifti1Image(np.zeros(img.shape[:3], np.uint8), img.affine)
    mask = roi_mask_img(get_roi(SEARCH_ROI), grid)
    plan = plan_target(
        strategy="connectivity",
        rest=img,
        confounds=folder / "confounds.tsv",
        seed_roi=SEED_ROI,
        roi_mask=mask,
        candidates=0,
    )
    (target,) = plan.record["targets"]
    assert np.linalg.norm(np.asarray(target["cortical_mm"]) - PLANTED) <= 5.0
    assert plan.record["roi"] == {"id": None, "mask": {"path": None, "sha256": None}}
    assert plan.record["strategy"]["search"]["roi"] is None


def test_repetition_time_comes_from_the_header(run):
    folder, img = run
    msec = nib.Nifti1Image(np.asarray(img.dataobj), img.affine, img.header.copy())
    msec.header.set_xyzt_units("mm", "msec")
    msec.header.set_zooms((3.0, 3.0, 3.0, 2000.0))
    found = connectivity_target(msec, seed_roi=SEED_ROI, roi=SEARCH_ROI, n_candidates=0)
    assert found.info["cleaning"]["tr_s"] == 2.0
    no_tr = nib.Nifti1Image(np.asarray(img.dataobj), img.affine, img.header.copy())
    no_tr.header.set_zooms((3.0, 3.0, 3.0, 0.0))
    with pytest.raises(ConnectivityError, match="repetition time"):
        connectivity_target(no_tr, seed_roi=SEED_ROI, roi=SEARCH_ROI)
    slow = nib.Nifti1Image(np.asarray(img.dataobj), img.affine, img.header.copy())
    slow.header.set_zooms((3.0, 3.0, 3.0, 6.0))  # Nyquist 0.083 Hz < the 0.1 Hz low-pass
    with pytest.raises(ConnectivityError, match="does not fit this run"):
        connectivity_target(slow, seed_roi=SEED_ROI, roi=SEARCH_ROI)
