"""Craving atlas v2: every region the seed review names, reference targets, reachability."""

import csv
import re
from pathlib import Path

import numpy as np
import pytest

from tmsplan.cli import main
from tmsplan.coil.catalogue import get_coil
from tmsplan.target.atlas import get_roi, load_rois, reachability

# region named by the seed review -> atlas ids (per drug)
SEED_REGIONS = {
    "cocaine": {
        "visual cortex": ["cocaine_visual_l", "cocaine_visual_r"],
        "inferior parietal cortex": ["cocaine_ipc_l", "cocaine_ipc_r"],
        "middle frontal gyrus": ["cocaine_mfg_l", "cocaine_mfg_r"],
        "hypothalamus": ["cocaine_hypothalamus"],
        "amygdala": ["cocaine_amygdala_l", "cocaine_amygdala_r"],
        "parahippocampus": ["cocaine_parahippocampal_l", "cocaine_parahippocampal_r"],
        "fusiform": ["cocaine_fusiform_r"],
        "DLPFC (Wiers 2020)": ["cocaine_dlpfc_l", "cocaine_dlpfc_r"],
        "anterior cingulate": ["cocaine_acc"],
    },
    "heroin": {
        "left DLPFC": ["heroin_dlpfc_l"],
        "thalamus (PPI partner)": ["heroin_thalamus_l", "heroin_thalamus_r"],
        "putamen (PPI partner)": ["heroin_putamen_l", "heroin_putamen_r"],
        "insula": ["heroin_insula_l", "heroin_insula_r"],
        "posterior cingulate / precuneus": ["heroin_pcc", "heroin_precuneus"],
        "vmPFC / ACC (Huang 2024)": ["heroin_vmpfc", "heroin_acc"],
        "amygdala / hippocampus (Wei 2021)": [
            "heroin_amygdala_l",
            "heroin_amygdala_r",
            "heroin_hippocampus_l",
        ],
        "left OFC (PPI partner)": ["heroin_ofc_l"],
        "left pallidum (Wei 2021)": ["heroin_pallidum_l"],
    },
    "methamphetamine": {
        "ventral striatum": ["meth_vs_l", "meth_vs_r"],
        "medial prefrontal cortex": ["meth_mpfc", "meth_vmpfc"],
        "posterior cingulate": ["meth_pcc"],
        "precuneus, insula, putamen, ACC (Grodin 2019)": [
            "meth_precuneus",
            "meth_insula_l",
            "meth_insula_r",
            "meth_putamen_l",
            "meth_putamen_r",
            "meth_acc",
        ],
    },
}


def _nilearn_data() -> Path:
    import nilearn

    return Path(nilearn.__file__).parent / "datasets" / "data"


def test_every_region_the_seed_names_is_in_the_atlas():
    for drug, regions in SEED_REGIONS.items():
        for region, ids in regions.items():
            for roi_id in ids:
                roi = get_roi(roi_id)
                assert roi.drug == drug, (region, roi_id)
                assert roi.citation and roi.reference and roi.coordinate_source, roi_id


def test_roi_set_rows_match_the_files_nilearn_ships():
    with open(_nilearn_data() / "dosenbach_2010.csv", encoding="utf-8") as handle:
        dosenbach = list(csv.DictReader(handle))
    seitzman = (_nilearn_data() / "seitzman_2018_ROIs_300inVol_MNI_allInfo.txt").read_text()
    seitzman = [line.split()[:3] for line in seitzman.splitlines()[1:]]
    rows = [r for r in load_rois() if r.source_kind == "roi_set"]
    assert len(rows) >= 20
    for roi in rows:
        assert "NOT from the seed review" in roi.notes
        if "Dosenbach" in roi.coordinate_source:
            number = re.search(r"ROI (\d+) \(", roi.coordinate_source).group(1)
            (row,) = [r for r in dosenbach if r["number"] == number]
            assert row["name"] in roi.coordinate_source
            expected = [float(row[k]) for k in "xyz"]
            np.testing.assert_allclose(roi.centre_mni, expected, err_msg=roi.id)
        else:
            number = int(roi.coordinate_source.split("(ROI ")[1].split(")")[0])
            expected = [round(float(v), 1) for v in seitzman[number - 1]]
            np.testing.assert_allclose(roi.centre_mni, expected, atol=1e-9, err_msg=roi.id)


def test_position_rule_rows_follow_their_stated_rule():
    lines = (_nilearn_data() / "seitzman_2018_ROIs_300inVol_MNI_allInfo.txt").read_text()
    labels = (_nilearn_data() / "seitzman_2018_ROIs_anatomicalLabels.txt").read_text()
    rois = [line.split() for line in lines.splitlines()[1:]]
    anat = [int(v) for v in labels.splitlines()[1:]]
    table = [
        (n, np.array([float(v) for v in r[:3]]), r[5], a)
        for n, (r, a) in enumerate(zip(rois, anat, strict=True), start=1)
    ]
    # left OFC: the anterior of the left cortical Reward-network ROIs
    reward_left = [(n, xyz) for n, xyz, net, a in table if net == "Reward" and a == 1]
    assert [n for n, _ in reward_left] == [240, 241]
    n, xyz = max(reward_left, key=lambda item: item[1][1])
    ofc = get_roi("heroin_ofc_l")
    assert f"(ROI {n})" in ofc.coordinate_source
    np.testing.assert_allclose(ofc.centre_mni, np.round(xyz, 1))
    # left pallidum: the only left basal-ganglia ROI with 16 <= |x| <= 22 mm
    (pallidum,) = [(n, xyz) for n, xyz, _, a in table if a == 5 and -22 <= xyz[0] <= -16]
    roi = get_roi("heroin_pallidum_l")
    assert f"(ROI {pallidum[0]})" in roi.coordinate_source
    np.testing.assert_allclose(roi.centre_mni, np.round(pallidum[1], 1))
    putamen = [xyz for _, xyz, _, a in table if a == 5 and xyz[0] < -24]
    assert all(xyz[0] < roi.centre_mni[0] for xyz in putamen)  # medial to the putamen


def test_reference_targets_are_sourced():
    refs = {r.id: r for r in load_rois() if r.drug == "reference"}
    assert set(refs) >= {
        "ref_dlpfc_fox2012_l",
        "ref_dlpfc_ba46_l",
        "ref_dlpfc_5cm_l",
        "ref_dlpfc_f3_l",
        "ref_m1_hand_l",
        "ref_frontal_pole_l",
    }
    for roi in refs.values():
        assert roi.hemisphere == "L" and roi.source_kind in ("tms_literature", "roi_set")
        assert "doi:10." in roi.reference and "NOT from the seed review" in roi.notes
        if roi.id.startswith("ref_dlpfc_"):
            assert "10.1016/j.biopsych.2012.04.028" in roi.reference
    m1 = refs["ref_m1_hand_l"]
    assert m1.centre_mni.tolist() == [-37.0, -21.0, 58.0]
    assert "PMC2034289" in m1.reference and "transform_coordinates.py" in m1.coordinate_source
    pole = refs["ref_frontal_pole_l"]
    assert "10.1016/j.bpsgos.2022.03.002" in pole.reference and "'aPFC'" in pole.coordinate_source
    # left out: the BA9 site and the Fitzgerald site, not in the embedded brain
    ids = {r.id for r in load_rois()}
    assert not any("ba9" in i or "fitzgerald" in i for i in ids)


@pytest.mark.slow
def test_reachability_on_the_embedded_head():
    rows = {r["id"]: r for r in reachability(load_rois())}
    for deep in ("cocaine_hypothalamus", "meth_vs_l", "meth_vs_r"):
        assert rows[deep]["reachable_with"] == [], deep  # no coil, not even an H-coil
        assert rows[deep]["depth_mm"] > get_coil("h7").reach_mm
    assert "fig8_70" in rows["heroin_dlpfc_l"]["reachable_with"]
    assert "fig8_70" not in rows["meth_mpfc"]["reachable_with"]
    assert "h7" in rows["meth_mpfc"]["reachable_with"]
    for row in rows.values():  # a deeper-reaching coil reaches at least as much
        if "fig8_70" in row["reachable_with"]:
            assert "h7" in row["reachable_with"] and "double_cone" in row["reachable_with"]


@pytest.mark.slow
def test_rois_command_filters_by_drug_and_coil(capsys):
    assert main(["rois", "--drug", "heroin", "--reachable-with", "fig8_70"]) == 0
    out = capsys.readouterr().out
    assert "heroin_dlpfc_l" in out and "heroin_thalamus_l" not in out
    assert "cocaine" not in out.split("depth:")[0] and "reached by" in out
    assert main(["rois", "--drug", "methamphetamine", "--reach"]) == 0
    out = capsys.readouterr().out
    assert "meth_vs_l" in out and "no coil" in out
    assert main(["rois", "--drug", "alcohol"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("tmsplan: error: no ROI for --drug 'alcohol'")


@pytest.mark.parametrize("roi_id", ["heroin_thalamus_l", "cocaine_amygdala_r", "meth_insula_r"])
def test_new_rows_keep_their_hemisphere(roi_id):
    roi = get_roi(roi_id)
    assert np.sign(roi.centre_mni[0]) == (1 if roi.hemisphere == "R" else -1)
