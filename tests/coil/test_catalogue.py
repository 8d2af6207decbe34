"""The coil catalogue, coil-aware reach and the verdict for deep targets."""

import numpy as np
import pytest

from tmsplan.cli import main
from tmsplan.coil.catalogue import (
    DEFAULT_COIL,
    SCALP_TO_CORTEX_MM,
    coils_reaching,
    get_coil,
    load_coils,
)
from tmsplan.errors import CoilError, TmsplanWarning
from tmsplan.io.bundled import atlas_dir
from tmsplan.io.record import read_record
from tmsplan.pipeline.plan import plan_target, write_plan
from tmsplan.target.atlas import get_roi

PEAKS = atlas_dir() / "peaks" / "zhang2018_cocaine_cue_table1.tsv"


def test_every_coil_is_sourced_and_reach_follows_the_rule():
    coils = load_coils()
    ids = [c.id for c in coils]
    assert len(ids) == len(set(ids))
    kinds = {c.kind for c in coils}
    assert {"figure8", "double_cone", "h_coil"} <= kinds
    assert {"fig8_70", "fig8_25", "double_cone", "h1", "h4", "h7"} <= set(ids)
    for coil in coils:
        assert coil.source and coil.reference and coil.d_half_basis
        assert coil.reach_mm == pytest.approx(SCALP_TO_CORTEX_MM + 10 * coil.d_half_cm)
        if coil.d_half_basis != "paper_table":
            assert "not verified" in coil.notes  # an unchecked number says so
    # the default keeps tmsplan's historic 30 mm figure-8 reach
    assert get_coil().id == DEFAULT_COIL and get_coil().reach_mm == 30.0
    assert get_coil("fig8_25").reach_mm < get_coil("fig8_70").reach_mm < get_coil("h7").reach_mm


def test_unknown_coil_is_one_clear_error(tmp_path, capsys):
    with pytest.raises(CoilError, match="unknown coil 'h8'.*h1"):
        get_coil("h8")
    out = tmp_path / "x"
    code = main(["plan", "--target-mni", "-38", "44", "26", "--coil", "h8", "--out", str(out)])
    assert code == 1 and not out.exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tmsplan: error: unknown coil")


@pytest.mark.slow
def test_coil_reach_sets_max_depth_and_is_recorded():
    # the methamphetamine mPFC ROI centre: deeper than a figure-8 reaches, within an H7's
    centre = get_roi("meth_mpfc").centre_mni
    fig8 = plan_target(target_mni=centre, roi="meth_mpfc")
    h7 = plan_target(target_mni=centre, roi="meth_mpfc", coil="h7")
    (t8,), (t7,) = fig8.record["targets"], h7.record["targets"]
    assert t8["depth_mm"] == pytest.approx(t7["depth_mm"])
    assert 30 < t8["depth_mm"] < 50
    assert not t8["reachable"] and "70 mm figure-8 coil" in t8["unreachable_reason"]
    assert t7["reachable"]
    np.testing.assert_allclose(t7["coil_matrix"], t8["coil_matrix"])  # same pose, any coil
    assert h7.record["parameters"]["max_depth_mm"] == 50.0
    assert h7.record["parameters"]["coil"] == "h7"
    assert h7.record["coil"]["id"] == "h7" and "Deng" in h7.record["coil"]["reference"]
    assert h7.record["coil"]["geometry"] == "standin"
    # the figure-8 verdict names the coils that would reach it
    verdict = fig8.record["deep_target"]
    assert "h7" in [c["id"] for c in verdict["coils_that_reach"]]
    # and says that the H-coils' reach is only the comparison's upper bound
    assert get_coil("h7").d_half_basis == "paper_range_bound"
    assert "upper bound, likely optimistic" in verdict["text"]
    # an explicit --max-depth wins over the coil's reach
    forced = plan_target(target_mni=centre, coil="h7", max_depth_mm=20.0)
    assert not forced.record["targets"][0]["reachable"]
    assert forced.record["parameters"]["max_depth_source"] == "--max-depth"


@pytest.mark.slow
@pytest.mark.parametrize("roi", ["cocaine_hypothalamus", "meth_vs_l", "meth_vs_r"])
@pytest.mark.parametrize("coil", ["fig8_70", "fig8_25"])
def test_deep_rois_never_get_a_direct_figure8_target(roi, coil):
    plan = plan_target(target_mni=get_roi(roi).centre_mni, roi=roi, coil=coil)
    (target,) = plan.record["targets"]
    assert not target["reachable"]
    verdict = plan.record["deep_target"]
    assert verdict["coil"] == coil and verdict["depth_mm"] > get_coil(coil).reach_mm
    # the verdict names the catalogue's answer (coils or none) and the connectivity option
    reaching = [c.id for c in coils_reaching(target["depth_mm"])]
    assert [c["id"] for c in verdict["coils_that_reach"]] == [c for c in reaching if c != coil]
    assert "resting-state" in verdict["text"] and f"--seed-roi {roi}" in verdict["text"]
    assert "--strategy connectivity" in verdict["connectivity"]["command"]
    assert any("NOT reachable with the" in w for w in plan.record["warnings"])


@pytest.mark.slow
def test_hypothalamus_map_target_verdict_is_written(tmp_path):
    from tmsplan.target.activation import mni_map_from_peak_table

    group_map, provenance = mni_map_from_peak_table(PEAKS)
    plan = plan_target(group_map, roi="cocaine_hypothalamus", activation_source=provenance)
    with pytest.warns(TmsplanWarning):
        record = write_plan(plan, tmp_path / "hypo", report=False)
    assert "localite" not in record["outputs"]
    saved = read_record(tmp_path / "hypo")
    assert saved["deep_target"]["text"] == plan.record["deep_target"]["text"]
    assert "no coil of the catalogue reaches it" in saved["deep_target"]["text"]


@pytest.mark.slow
def test_stand_in_coil_plan_exports_and_draws(tmp_path, capsys):
    out = tmp_path / "h7"
    code = main(["plan", "--target-mni", "0.3", "36.4", "20.9", "--coil", "h7", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    record = read_record(out)
    assert record["targets"][0]["reachable"]
    assert "localite" in record["outputs"] and record["outputs"]["png"]
    html = (out / record["outputs"]["report"][0]).read_text(encoding="utf-8")
    assert "Target strategy" in html and "H7 coil (Brainsway)" in html
    from tmsplan.head.scalp import scalp_surface
    from tmsplan.io.bundled import load_mni_head
    from tmsplan.render.scene import scene_geometry

    scalp = scalp_surface(load_mni_head(1), frame="MNI152NLin6Asym")
    (geometry,) = scene_geometry(record, scalp.mesh)
    assert geometry["coil_z_dot_outward"] < -0.9
    assert geometry["coil_clearance_mm"] > 0  # the stand-in disc stays outside the head


def test_coils_command_lists_reach(capsys):
    assert main(["coils"]) == 0
    out = capsys.readouterr().out
    assert "h7" in out and "50 mm" in out and "scalp-to-cortex" in out
