"""Target strategies on activation maps: peak/cog (--rule alias) and depth-aware."""

import json

import nibabel as nib
import numpy as np
import pytest
from _phantoms import rigid_scaling, sphere_mask, synthetic_patient

from tmsplan.cli import main
from tmsplan.errors import ActivationError
from tmsplan.io.bundled import load_mni_brain_mask, load_mni_head
from tmsplan.pipeline.plan import plan_target

DEEP = np.array([-30.0, 20.0, 0.0])  # ~43 mm below the scalp of the MNI head
SHALLOW = np.array([-50.0, 30.0, 20.0])  # ~17 mm below the scalp
ROI_CENTRE = np.array([-40.0, 25.0, 10.0])


def _blob_map(blobs, sigma_mm=4.0):
    """A 2 mm MNI map of Gaussian blobs ``((centre, height), ...)``, the maximum where they meet."""
    ref = load_mni_brain_mask(2)
    ijk = np.indices(ref.shape[:3]).reshape(3, -1).T
    world = ijk @ ref.affine[:3, :3].T + ref.affine[:3, 3]
    data = np.zeros(len(world))
    for centre, height in blobs:
        blob = height * np.exp(-np.sum((world - centre) ** 2, axis=1) / (2 * sigma_mm**2))
        data = np.maximum(data, blob)
    img = nib.Nifti1Image(data.reshape(ref.shape[:3]).astype(np.float32), ref.affine)
    img.set_sform(ref.affine, code=4)
    return img


def _two_blob_map():
    return _blob_map(((DEEP, 8.0), (SHALLOW, 4.0)))


@pytest.fixture(scope="module")
def two_blobs():
    img = _two_blob_map()
    return img, sphere_mask(tuple(ROI_CENTRE), 22.0, img)


@pytest.mark.slow
def test_depth_aware_picks_the_weaker_reachable_blob_and_says_why(two_blobs):
    img, roi = two_blobs
    peak = plan_target(img, roi_mask=roi)
    aware = plan_target(img, roi_mask=roi, strategy="depth-aware")
    p, a = peak.record["targets"][0], aware.record["targets"][0]
    assert np.linalg.norm(np.asarray(p["cortical_mm"]) - DEEP) < 3  # the peak rule goes deep
    assert not p["reachable"] and "deep_target" in peak.record
    assert np.linalg.norm(np.asarray(a["cortical_mm"]) - SHALLOW) < 4
    assert a["reachable"] and a["depth_mm"] <= 30
    strategy = aware.record["strategy"]
    assert strategy["name"] == "depth-aware"
    assert strategy["strongest"]["value"] == pytest.approx(8.0, abs=0.2)
    assert not strategy["strongest"]["reachable"] and strategy["chosen"]["reachable"]
    assert "beyond the 30 mm reach" in strategy["trade_off"]
    assert "depth" in strategy["scoring_rule"]
    assert any("depth-aware" in w for w in aware.record["warnings"])
    # a deeper-reaching coil takes the strong deep blob
    h7 = plan_target(img, roi_mask=roi, strategy="depth-aware", coil="h7")
    t = h7.record["targets"][0]
    assert np.linalg.norm(np.asarray(t["cortical_mm"]) - DEEP) < 4 and t["reachable"]


@pytest.mark.slow
def test_strategies_rerun_bit_identical(two_blobs):
    img, roi = two_blobs
    for strategy in ("peak", "cog", "depth-aware"):
        a = plan_target(img, roi_mask=roi, strategy=strategy).record["targets"]
        b = plan_target(img, roi_mask=roi, strategy=strategy).record["targets"]
        assert json.dumps(a) == json.dumps(b)


@pytest.mark.slow
def test_rule_is_an_alias_of_strategy(two_blobs, tmp_path, capsys):
    img, roi = two_blobs
    nib.save(img, tmp_path / "map.nii.gz")
    nib.save(roi, tmp_path / "roi.nii.gz")
    base = ["plan", "--activation", str(tmp_path / "map.nii.gz"), "--roi-mask"]
    base += [str(tmp_path / "roi.nii.gz"), "--no-report", "--formats", "none"]
    assert main([*base, "--rule", "cog", "--out", str(tmp_path / "a")]) == 0
    assert main([*base, "--strategy", "cog", "--out", str(tmp_path / "b")]) == 0
    a = json.loads((tmp_path / "a" / "target.json").read_text())
    b = json.loads((tmp_path / "b" / "target.json").read_text())
    assert a["targets"] == b["targets"] and a["parameters"]["strategy"] == "cog"
    code = main([*base, "--rule", "peak", "--strategy", "cog", "--out", str(tmp_path / "c")])
    assert code == 1 and "disagree" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def test_connectivity_inputs_without_the_strategy_are_refused(two_blobs):
    img, roi = two_blobs
    with pytest.raises(ActivationError, match="belong to --strategy connectivity"):
        plan_target(img, roi_mask=roi, seed_roi="meth_vs_l")


@pytest.mark.slow
def test_ranked_candidates_follow_the_chosen_target_and_stay_out_of_exports(two_blobs, tmp_path):
    import csv

    from tmsplan.pipeline.plan import write_plan

    img, roi = two_blobs
    aware = plan_target(img, roi_mask=roi, strategy="depth-aware")
    chosen, *others = aware.record["targets"]
    assert chosen["role"] == "chosen" and chosen["rank"] == 1
    (alt,) = others  # the other blob, with its score and why
    assert alt["role"] == "candidate" and alt["rank"] == 2 and alt["name"].endswith("candidate2")
    assert np.linalg.norm(np.asarray(alt["cortical_mm"]) - DEEP) < 4 and not alt["reachable"]
    assert (
        "beyond reach" in alt["why"] and alt["score"] < aware.record["strategy"]["chosen"]["score"]
    )
    assert aware.record["parameters"]["candidates"] == 3
    # exports: the chosen one only, unless asked
    record = write_plan(aware, tmp_path / "one", formats=["csv", "slicer"], report=False)
    with open(tmp_path / "one" / record["outputs"]["csv"][0], encoding="utf-8") as handle:
        assert len(list(csv.DictReader(handle))) == 1
    both = plan_target(img, roi_mask=roi, strategy="depth-aware", export_candidates=True)
    record = write_plan(both, tmp_path / "two", formats=["csv"], report=False)
    with open(tmp_path / "two" / record["outputs"]["csv"][0], encoding="utf-8") as handle:
        assert len(list(csv.DictReader(handle))) == 2
    # no candidates when asked for none
    none = plan_target(img, roi_mask=roi, strategy="peak", candidates=0)
    assert len(none.record["targets"]) == 1
    with pytest.raises(ActivationError, match="--candidates"):
        plan_target(img, roi_mask=roi, candidates=-1)


# --- candidates carried into a T1 follow the chosen target's grey-matter rule ---------

WM_STRONG = np.array([-28.0, 0.0, 30.0])  # white matter of the MNI head (centrum semiovale)
WM_WEAK = np.array([-26.0, -20.0, 30.0])  # white matter too, 20 mm behind


@pytest.fixture(scope="module")
def white_matter_patient(tmp_path_factory):
    folder = tmp_path_factory.mktemp("wm_patient")
    mni_to_patient = rigid_scaling()
    t1 = synthetic_patient(load_mni_head(2), mni_to_patient, order="LPS")
    np.savetxt(folder / "mni_to_t1.txt", mni_to_patient)
    img = _blob_map(((WM_STRONG, 8.0), (WM_WEAK, 6.0)), sigma_mm=3.0)
    roi = sphere_mask(tuple((WM_STRONG + WM_WEAK) / 2), 22.0, img)
    return t1, folder / "mni_to_t1.txt", mni_to_patient, img, roi


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::tmsplan.errors.PlanWarning")
def test_candidates_in_a_t1_are_snapped_to_grey_matter_like_the_chosen_target(
    white_matter_patient,
):
    t1, xfm, mni_to_patient, img, roi = white_matter_patient
    kwargs = dict(roi_mask=roi, t1=t1, mni_to_t1=xfm, strategy="peak")
    snapped = plan_target(img, **kwargs).record["targets"]
    kept = plan_target(img, snap_to_grey_matter=False, **kwargs).record["targets"]
    assert [t["rank"] for t in snapped] == [t["rank"] for t in kept] == [1, 2]
    for moved, carried, peak in zip(snapped, kept, (WM_STRONG, WM_WEAK), strict=True):
        # both the chosen target and the candidate: recorded the same way
        assert set(moved) >= {"snap_distance_mm", "tissue"} and set(carried) >= {"tissue"}
        # --no-snap keeps the point where the transform put it (white matter, recorded)
        np.testing.assert_allclose(carried["cortical_mm"], (mni_to_patient @ [*peak, 1])[:3],
                                   atol=2.5)  # fmt: skip
        assert carried["tissue"]["given"] == carried["tissue"]["at_target"] == "white matter"
        assert carried["tissue"]["moved_to_grey_matter_mm"] == 0
        # the default moves it to grey matter, by the distance it records
        assert moved["tissue"]["given"] == "white matter"
        assert moved["tissue"]["at_target"] == "grey matter"
        distance = np.linalg.norm(np.subtract(moved["cortical_mm"], carried["cortical_mm"]))
        assert distance == pytest.approx(moved["tissue"]["moved_to_grey_matter_mm"], abs=1e-2)
        assert distance > 1.0
        # its MNI coordinates are those of the moved point
        back = (mni_to_patient @ [*moved["cortical_mni_mm"], 1])[:3]
        np.testing.assert_allclose(back, moved["cortical_mm"], atol=1e-3)
        assert moved["depth_mm"] < carried["depth_mm"]  # toward the scalp


@pytest.mark.slow
def test_candidates_on_the_mni_head_are_only_carried(two_blobs):
    img, roi = two_blobs
    targets = plan_target(img, roi_mask=roi, strategy="depth-aware").record["targets"]
    for target in targets:
        assert target["snap_distance_mm"] == 0.0 and "tissue" not in target
