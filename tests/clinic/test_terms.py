"""The plan in a clinic's terms: record keys eeg1020 and dose, and the report section."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from tmsplan.clinic.dose import HAND_KNOB_MNI, DoseError
from tmsplan.clinic.eeg1020 import Landmarks
from tmsplan.clinic.terms import clinic_entries
from tmsplan.coil.placement import place_coil
from tmsplan.head.scalp import ScalpSurface
from tmsplan.spaces import Points

R = 90.0


def _sphere_scalp(frame="MNI152NLin6Asym", defaced=False):
    ico = trimesh.creation.icosphere(subdivisions=5, radius=R)
    mesh = trimesh.Trimesh(ico.vertices.copy(), ico.faces.copy(), process=False)
    return ScalpSurface(mesh, frame, np.zeros(len(mesh.vertices), bool), defaced, ())


def _landmarks(frame="MNI152NLin6Asym"):
    xyz = np.array([[0, R, 0], [0, -R, 0], [-R, 0, 0], [R, 0, 0]], float)
    return Landmarks(xyz, frame, "phantom")


def _placement(scalp, target=(-40.0, 40.0, 45.0)):
    return place_coil(
        Points(np.array(target), scalp.frame), scalp.mesh, frame=scalp.frame, hemisphere_sign=-1.0
    )


def test_record_entries_on_a_sphere_head():
    scalp = _sphere_scalp()
    placement = _placement(scalp)
    warnings: list[str] = []
    out = clinic_entries(
        scalp,
        placement,
        to_head=lambda points: points,
        landmarks=_landmarks(),
        motor_threshold=55.0,
        warnings=warnings,
    )
    eeg, dose = out["eeg1020"], out["dose"]
    assert warnings == []
    assert eeg["system"] == "10-10" and eeg["frame"] == "MNI152NLin6Asym"
    assert eeg["positions"]["F3"][0] < 0 < eeg["positions"]["F4"][0]
    assert eeg["target"]["nearest"][0]["name"] in ("F3", "F5", "AF3", "FC3", "F1")
    assert eeg["beam_f3"]["nasion_inion_cm"] == pytest.approx(np.pi * R / 10, rel=3e-3)
    # Beam F3 with the sphere's own tape measures lands near its geodesic F3
    assert eeg["beam_f3"]["point_to_f3_mm"] < 6.0 and eeg["beam_f3"]["point_mm"][0] < 0
    # the hand knob lies |knob| from the centre: its depth under a sphere head is exact
    assert dose["motor_depth_mm"] == pytest.approx(R - np.linalg.norm(HAND_KNOB_MNI), abs=0.1)
    stokes = dose["methods"]["stokes"]
    expected = 55 + 2.8 * (placement.depth_mm - dose["motor_depth_mm"])
    assert stokes["adjusted_percent_mso"] == pytest.approx(expected, abs=0.06)
    assert dose["methods"]["sphere"]["target_sphere_radius_mm"] == pytest.approx(R, rel=1e-3)
    assert dose["adjusted_percent_mso"] == stokes["adjusted_percent_mso"]


def test_defaced_or_untransformed_patient_needs_landmarks():
    scalp = _sphere_scalp(frame="T1w", defaced=True)
    placement = _placement(scalp)
    warnings: list[str] = []
    out = clinic_entries(scalp, placement, warnings=warnings, motor_threshold=50)
    assert out["eeg1020"] is None and out["dose"] is None
    assert any("defaced" in w and "--landmarks" in w for w in warnings)
    assert any("needs an MNI->T1 transform" in w for w in warnings)
    given = clinic_entries(scalp, placement, landmarks=_landmarks("T1w"), warnings=[])
    assert given["eeg1020"]["landmarks_source"] == "phantom"


def test_bad_motor_threshold_is_one_line():
    scalp = _sphere_scalp()
    with pytest.raises(DoseError, match="--motor-threshold") as info:
        clinic_entries(scalp, _placement(scalp), motor_threshold=0, warnings=[])
    assert "\n" not in str(info.value)


def test_report_section(tmp_path, synthetic_record_builder):
    from tmsplan.render import write_report

    scalp = _sphere_scalp()
    record = synthetic_record_builder()
    target = record["targets"][0]
    placement = _placement(scalp, target["cortical_mm"])
    record.update(
        clinic_entries(
            scalp,
            placement,
            to_head=lambda points: points,
            landmarks=_landmarks(),
            motor_threshold=60.0,
            warnings=[],
        )
    )
    path = write_report(record, tmp_path, pictures={}, scene_html=None)
    text = path.read_text()
    assert 'id="clinic"' in text and "Beam F3 tape distances" in text
    assert "adjusted intensity, stokes" in text and "adjusted intensity, sphere" in text
    assert "Stokes MG" in text and "Heller" in text
    assert record["eeg1020"]["target"]["text"] in text.replace("&#x27;", "'")


@pytest.mark.slow
def test_plan_on_the_mni_head(tmp_path):
    from tmsplan.io.record import read_record
    from tmsplan.pipeline.plan import plan_target, write_plan

    plan = plan_target(target_mni=(-38.0, 44.0, 26.0), motor_threshold=55.0)
    record = write_plan(plan, tmp_path / "plan", formats=[], report=False)
    saved = read_record(tmp_path / "plan")
    assert saved["eeg1020"]["target"]["nearest"][0]["name"] in ("F3", "AF3", "F5", "F1")
    assert saved["eeg1020"]["positions"]["F3"][0] < 0
    assert saved["dose"]["methods"]["stokes"]["motor_threshold_percent"] == 55.0
    assert saved["dose"]["target_depth_mm"] == pytest.approx(
        record["targets"][0]["depth_mm"], abs=0.01
    )
    assert 10 < saved["dose"]["motor_depth_mm"] < 35
    from tmsplan.cli import _summary

    summary = _summary(saved, tmp_path / "plan")
    assert "10-20: scalp entry" in summary and "%MSO (Stokes; sphere model" in summary
    without = plan_target(target_mni=(-38.0, 44.0, 26.0))
    assert without.record["dose"] is None and without.record["eeg1020"] is not None
