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


def test_reference_targets_are_sourced_dlpfc_definitions():
    refs = [r for r in load_rois() if r.drug == "reference"]
    assert {r.id for r in refs} >= {"ref_dlpfc_fox2012_l", "ref_dlpfc_ba46_l", "ref_dlpfc_f3_l"}
    for roi in refs:
        assert roi.hemisphere == "L" and roi.source_kind == "tms_literature"
        assert "10.1016/j.biopsych.2012.04.028" in roi.reference


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
