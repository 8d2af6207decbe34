"""End-to-end plans on the shipped MNI head and on synthetic patients."""

import json

import nibabel as nib
import numpy as np
import pytest
from _phantoms import restore, rigid_scaling, sphere_mask, synthetic_patient

from tmsplan.cli import main
from tmsplan.coil.placement import nearest_surface_point
from tmsplan.errors import TmsplanWarning
from tmsplan.export import read_export
from tmsplan.head.scalp import scalp_surface
from tmsplan.io.bundled import atlas_dir, load_mni_head
from tmsplan.io.record import read_record
from tmsplan.pipeline.plan import plan_target, write_plan

PEAKS = atlas_dir() / "peaks" / "zhang2018_cocaine_cue_table1.tsv"
MFG_L = np.array([-54.0, 2.0, 28.0])


def _angle_deg(a, b):
    cos = np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.degrees(np.arccos(np.clip(cos, -1, 1))))


def _check_pose_geometry(target):
    pose = np.asarray(target["coil_matrix"])
    cortical, scalp = np.asarray(target["cortical_mm"]), np.asarray(target["scalp_mm"])
    normal = np.asarray(target["scalp_normal"])
    np.testing.assert_allclose(
        pose[:3, 3], scalp + target["coil_skin_distance_mm"] * normal, atol=1e-3
    )
    assert _angle_deg(pose[:3, 2], cortical - pose[:3, 3]) < 25  # coil z points at the target
    assert target["depth_mm"] == pytest.approx(np.linalg.norm(scalp - cortical), abs=1e-2)
    np.testing.assert_allclose(pose[:3, 1], target["handle_direction"], atol=1e-6)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "demo_out"
    assert main(["demo", "--out", str(out)]) == 0
    return out


@pytest.mark.slow
def test_demo_outputs_are_self_consistent(demo):
    record = read_record(demo / "target.json")
    assert record["space"] == "MNI152NLin6Asym"
    assert record["roi"]["id"] == "cocaine_mfg_l"
    (target,) = record["targets"]
    cortical = np.asarray(target["cortical_mm"])
    # inside the ROI sphere and on its (left) hemisphere
    assert np.linalg.norm(cortical - MFG_L) <= record["roi"]["radius_mm"]
    assert cortical[0] < 0 and target["scalp_mm"][0] < 0
    assert target["reachable"]
    assert 10 <= target["depth_mm"] <= 40
    _check_pose_geometry(target)
    # the entry lies on the embedded head's scalp, not on the neck floor
    scalp = scalp_surface(load_mni_head(1), frame="MNI152NLin6Asym")
    _, distance, face = nearest_surface_point(scalp.mesh, target["scalp_mm"])
    assert distance < 0.05
    assert not scalp.fov_boundary[scalp.mesh.faces[face]].any()
    # handle: backwards and away from the midline (left)
    handle = np.asarray(target["handle_direction"])
    assert handle[1] < 0 and handle[0] <= 0.05
    # every output listed exists; navigator files read back to the same pose
    for names in record["outputs"].values():
        for name in names:
            assert (demo / name).is_file(), name
    pose = np.asarray(target["coil_matrix"])
    for fmt in ("localite", "brainsight", "visor2", "slicer", "navinibs", "bids", "csv", "json"):
        (name,) = [n for n in record["outputs"][fmt] if not n.endswith("coordsystem.json")]
        markers = read_export(demo / name, fmt).poses()
        np.testing.assert_allclose(markers.matrices[0], pose, atol=5e-3, err_msg=fmt)
    assert (demo / "report.html").stat().st_size < 3_000_000
    assert len(record["outputs"]["png"]) >= 5
    assert not [p for p in demo.parent.iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_export_command_re_exports_lps(demo, tmp_path, capsys):
    out = tmp_path / "lps.xml"
    code = main(
        [
            "export",
            str(demo / "target.json"),
            "--format",
            "localite",
            "--space",
            "LPS",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    record = read_record(demo)
    pose = np.asarray(record["targets"][0]["coil_matrix"])
    read_back = read_export(out, "localite").poses().matrices[0]
    np.testing.assert_allclose(read_back, pose, atol=1e-5)
    # the raw file is in LPS: x and y of the position negated
    import xml.etree.ElementTree as ET

    root = ET.parse(out).getroot()
    assert root.get("coordinateSpace") == "LPS"
    matrix = root.find(".//Matrix4D")
    raw_position = [float(matrix.get(f"data{r}3")) for r in range(3)]
    np.testing.assert_allclose(raw_position, [-pose[0, 3], -pose[1, 3], pose[2, 3]], atol=1e-5)


@pytest.mark.slow
def test_report_command_needs_force_and_warns_on_changed_t1(demo, tmp_path, capsys):
    code = main(["report", str(demo / "target.json")])
    err = capsys.readouterr().err
    assert code == 1 and "--force" in err and "Traceback" not in err
    # a record whose T1 checksum differs: loud warning, report still made
    record = json.loads((demo / "target.json").read_text())
    record["t1"]["sha256"] = "0" * 64
    other = tmp_path / "plan"
    other.mkdir()
    (other / "target.json").write_text(json.dumps(record))
    assert main(["report", str(other / "target.json"), "--force"]) == 0
    out, err = capsys.readouterr()
    assert "warning" in err and "CHANGED" in err.upper()
    assert (other / "report.html").is_file()
    # a record whose T1 is missing: one clear error
    record["t1"]["path"] = str(tmp_path / "gone.nii.gz")
    (other / "target.json").write_text(json.dumps(record))
    assert main(["report", str(other), "--force"]) == 1
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.slow
def test_report_refuses_other_schema(demo, tmp_path, capsys):
    record = json.loads((demo / "target.json").read_text())
    record["schema_version"] = 99
    (tmp_path / "target.json").write_text(json.dumps(record))
    assert main(["report", str(tmp_path / "target.json"), "--force"]) == 1
    assert "schema version 99" in capsys.readouterr().err


@pytest.mark.slow
def test_view_without_display_says_so(demo, capsys, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["view", str(demo)]) == 1
    err = capsys.readouterr().err
    assert "display" in err and "report.html" in err


@pytest.mark.slow
def test_hypothalamus_is_never_a_scalp_target(tmp_path):
    from tmsplan.target.activation import mni_map_from_peak_table

    group_map, provenance = mni_map_from_peak_table(PEAKS)
    plan = plan_target(group_map, roi="cocaine_hypothalamus", activation_source=provenance)
    (target,) = plan.record["targets"]
    assert not target["reachable"]
    assert "deeper than the 30 mm" in target["unreachable_reason"]
    assert target["depth_mm"] > 50
    with pytest.warns(TmsplanWarning, match="not reachable|left out|unreachable"):
        record = write_plan(plan, tmp_path / "hypo", report=False)
    assert "localite" not in record["outputs"]
    assert "csv" in record["outputs"]


@pytest.mark.slow
def test_real_motor_map_with_flipped_affine_stays_right(tmp_path):
    """nilearn's group motor map (NeuroVault 10426) is stored with an x-flipped affine."""
    from nilearn.datasets import load_sample_motor_activation_image

    path = load_sample_motor_activation_image()
    img = nib.load(path)
    assert img.affine[0, 0] < 0  # stored LAS-like: a flip bug would land on the left
    roi = sphere_mask((45.0, -20.0, 50.0), 25.0, img)
    plan = plan_target(path, roi_mask=roi, threshold=3.1)
    (target,) = plan.record["targets"]
    # the map saturates at its maximum (many tied voxels): the peak is the tied voxel
    # nearest their centroid, on the right precentral hand area
    assert plan.record["activation"]["target_value"] == pytest.approx(img.get_fdata().max())
    assert 25 < target["cortical_mm"][0] < 65
    assert target["scalp_mm"][0] > target["cortical_mm"][0] > 0
    assert target["reachable"]
    _check_pose_geometry(target)
    # the same map re-stored with a positive x axis gives the same world target
    data = np.asarray(img.dataobj)[::-1]
    affine = img.affine @ np.array(
        [[-1, 0, 0, img.shape[0] - 1], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
    )
    ras = nib.Nifti1Image(data, affine)
    ras.set_sform(affine, code=2)
    again = plan_target(ras, roi_mask=roi, threshold=3.1)
    np.testing.assert_allclose(
        again.record["targets"][0]["coil_matrix"], target["coil_matrix"], atol=1e-9
    )


@pytest.mark.slow
def test_coordinates_mode_on_mni_head():
    plan = plan_target(target_mni=(-38.0, 44.0, 26.0), target_name="fox_dlpfc")
    (target,) = plan.record["targets"]
    np.testing.assert_allclose(target["cortical_mm"], [-38, 44, 26])
    assert target["reachable"] and target["name"] == "fox_dlpfc"
    assert plan.record["parameters"]["mode"] == "mni-head"


# --- a synthetic patient: the MNI head moved by a known transform -----------------


@pytest.fixture(scope="module")
def patient(tmp_path_factory):
    folder = tmp_path_factory.mktemp("patient")
    mni_to_patient = rigid_scaling()
    t1 = synthetic_patient(load_mni_head(2), mni_to_patient, order="LPS")
    nib.save(t1, folder / "sub-01_T1w.nii.gz")
    np.savetxt(folder / "mni_to_t1.txt", mni_to_patient)
    np.savetxt(folder / "t1_to_mni.txt", np.linalg.inv(mni_to_patient))
    return folder, mni_to_patient


@pytest.mark.slow
def test_group_map_carried_into_patient_matches_analytic(patient, tmp_path, capsys):
    folder, mni_to_patient = patient
    out = tmp_path / "sub-01"
    code = main(
        [
            "plan",
            "--peaks",
            str(PEAKS),
            "--roi",
            "cocaine_mfg_l",
            "--t1",
            str(folder / "sub-01_T1w.nii.gz"),
            "--mni-to-t1",
            str(folder / "mni_to_t1.txt"),
            "--out",
            str(out),
            "--no-snap",  # the carried point itself, not the cortex near it
            "--no-report",
            "--subject",
            "sub-01",
        ]
    )
    assert code == 0, capsys.readouterr().err
    record = read_record(out)
    assert record["space"] == "T1w"
    assert record["t1"]["sha256"] and record["transform"]["direction"] == "mni_to_subject"
    (target,) = record["targets"]
    expected = (mni_to_patient @ [*MFG_L, 1])[:3]
    np.testing.assert_allclose(target["cortical_mm"], expected, atol=1.0)
    np.testing.assert_allclose(target["cortical_mni_mm"], MFG_L, atol=1.0)
    assert target["reachable"] and 10 <= target["depth_mm"] <= 40
    _check_pose_geometry(target)
    # left stays left: the target lies on the patient's left of the carried midline
    left_of_midline = (mni_to_patient @ [-1.0, 0, 0, 0])[:3]
    mid = (mni_to_patient @ [0.0, MFG_L[1], MFG_L[2], 1])[:3]
    assert np.dot(np.asarray(target["cortical_mm"]) - mid, left_of_midline) > 40
    # the Localite file of this plan holds the same pose
    markers = read_export(out / record["outputs"]["localite"][0], "localite").poses()
    np.testing.assert_allclose(markers.matrices[0], target["coil_matrix"], atol=5e-3)


@pytest.mark.slow
def test_wrong_direction_transform_is_refused(patient, tmp_path, capsys):
    folder, _ = patient
    code = main(
        [
            "plan",
            "--peaks",
            str(PEAKS),
            "--roi",
            "cocaine_mfg_l",
            "--t1",
            str(folder / "sub-01_T1w.nii.gz"),
            "--mni-to-t1",
            str(folder / "t1_to_mni.txt"),
            "--out",
            str(tmp_path / "x"),
            "--no-report",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert "direction" in err.lower() or "inverse" in err.lower()
    assert not (tmp_path / "x").exists()


def test_t1_without_transform_is_refused(patient, tmp_path, capsys):
    folder, _ = patient
    code = main(
        [
            "plan",
            "--peaks",
            str(PEAKS),
            "--roi",
            "cocaine_mfg_l",
            "--t1",
            str(folder / "sub-01_T1w.nii.gz"),
            "--out",
            str(tmp_path / "x"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and "--mni-to-t1" in err and "--register" in err


@pytest.mark.slow
@pytest.mark.parametrize("order", ["RAS", "LAS", "LPS"])
def test_same_pose_for_every_storage_order_of_the_patient_t1(patient, order):
    folder, mni_to_patient = patient
    t1 = restore(nib.load(folder / "sub-01_T1w.nii.gz"), "RAS")
    t1 = restore(t1, order) if order != "RAS" else t1
    plan = plan_target(target_mni=tuple(MFG_L), t1=t1, mni_to_t1=folder / "mni_to_t1.txt")
    pose = np.asarray(plan.record["targets"][0]["coil_matrix"])
    reference = plan_target(
        target_mni=tuple(MFG_L), t1=folder / "sub-01_T1w.nii.gz", mni_to_t1=folder / "mni_to_t1.txt"
    )
    expected = np.asarray(reference.record["targets"][0]["coil_matrix"])
    # The same anatomy on the same grid: only the triangulation of the scalp (marching cubes
    # and decimation follow the voxel order) differs, by less than a voxel. Measured: axes
    # within 4e-3 (0.24 deg), centre within 0.3 mm; an axis flip or a turned handle is ~1-2.
    np.testing.assert_allclose(pose[:3, :3], expected[:3, :3], atol=0.01)  # unit vectors
    np.testing.assert_allclose(pose[:3, 3], expected[:3, 3], atol=0.5)  # mm
    np.testing.assert_array_equal(pose[3], [0, 0, 0, 1])


@pytest.mark.slow
def test_subject_map_in_t1_space(patient):
    folder, mni_to_patient = patient
    t1 = nib.load(folder / "sub-01_T1w.nii.gz")
    spot = (mni_to_patient @ [*MFG_L, 1])[:3]
    subject_map = sphere_mask(spot, 6.0, t1)
    data = subject_map.get_fdata() * 5.0
    subject_map = nib.Nifti1Image(data, t1.affine)
    subject_map.set_sform(t1.affine, code=1)
    plan = plan_target(
        subject_map,
        roi="cocaine_mfg_l",
        t1=t1,
        mni_to_t1=folder / "mni_to_t1.txt",
        activation_space="T1w",
    )
    (target,) = plan.record["targets"]
    assert np.linalg.norm(np.asarray(target["cortical_mm"]) - spot) < 6.0
    np.testing.assert_allclose(target["cortical_mni_mm"], MFG_L, atol=7.0)
    assert plan.record["parameters"]["mode"] == "subject-map"


@pytest.mark.slow
def test_brain_extracted_t1_is_refused(tmp_path, capsys):
    from tmsplan.io.bundled import load_mni_brain_mask

    head, brain = load_mni_head(2), load_mni_brain_mask(2)
    stripped = nib.Nifti1Image(
        np.asarray(head.dataobj) * (np.asarray(brain.dataobj) > 0), head.affine
    )
    stripped.set_sform(head.affine, code=1)
    nib.save(stripped, tmp_path / "brain.nii.gz")
    np.savetxt(tmp_path / "eye.txt", np.eye(4))
    code = main(
        [
            "plan",
            "--target-t1",
            "-40",
            "20",
            "40",
            "--t1",
            str(tmp_path / "brain.nii.gz"),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert "skull" in err.lower() or "brain-extracted" in err.lower() or "stripped" in err.lower()


def test_four_d_t1_is_refused(tmp_path, capsys):
    img = nib.Nifti1Image(np.ones((10, 10, 10, 2), np.float32), np.eye(4))
    nib.save(img, tmp_path / "t1.nii.gz")
    code = main(
        [
            "plan",
            "--target-t1",
            "0",
            "0",
            "0",
            "--t1",
            str(tmp_path / "t1.nii.gz"),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and "4-D" in err


@pytest.mark.slow
def test_builtin_registration_within_3mm(patient, tmp_path, capsys):
    folder, mni_to_patient = patient
    out = tmp_path / "reg"
    code = main(
        [
            "plan",
            "--target-mni",
            "-54",
            "2",
            "28",
            "--t1",
            str(folder / "sub-01_T1w.nii.gz"),
            "--no-snap",  # registration accuracy: the carried point itself
            "--register",
            "--out",
            str(out),
            "--no-report",
        ]
    )
    assert code == 0, capsys.readouterr().err
    record = read_record(out)
    expected = (mni_to_patient @ [*MFG_L, 1])[:3]
    assert np.linalg.norm(np.asarray(record["targets"][0]["cortical_mm"]) - expected) < 3.0
    assert record["outputs"]["transforms"]
    assert record["transform"]["quality"]["nmi"] > 1.1


@pytest.mark.slow
def test_group_picture_of_several_plans(demo, tmp_path, capsys):
    other = tmp_path / "fox"
    assert (
        main(["plan", "--target-mni", "-38", "44", "26", "--out", str(other), "--no-report"]) == 0
    )
    png = tmp_path / "group.png"
    assert main(["group", str(demo), str(other / "target.json"), "--out", str(png)]) == 0
    from PIL import Image

    image = np.asarray(Image.open(png).convert("RGB"), dtype=float)
    assert image.shape[0] > 100 and image.std() > 10  # not blank
    assert main(["group", str(demo), "--out", str(png)]) == 1  # no overwrite without --force
    assert "--force" in capsys.readouterr().err


@pytest.mark.slow
def test_report_of_a_registered_plan_finds_its_saved_transform(
    patient, tmp_path, capsys, monkeypatch
):
    import tmsplan.head.scalp

    folder, _ = patient
    out = tmp_path / "reg"
    args = ["plan", "--target-mni", "-54", "2", "28", "--t1", str(folder / "sub-01_T1w.nii.gz")]
    assert main([*args, "--register", "--out", str(out), "--no-report"]) == 0
    capsys.readouterr()

    def no_new_scalp(*args, **kwargs):
        raise AssertionError("the report must reuse the plan's cached head")

    monkeypatch.setattr(tmsplan.head.scalp, "scalp_surface", no_new_scalp)
    assert main(["report", str(out)]) == 0
    err = capsys.readouterr().err
    assert "not found" not in err
    assert (out / "report.html").is_file()


@pytest.mark.slow
def test_transform_from_another_mni_template_is_used_with_a_warning(patient, tmp_path):
    folder, mni_to_patient = patient
    xfm = tmp_path / "sub-01_from-MNI152NLin2009cAsym_to-T1w_mode-image_xfm.txt"
    np.savetxt(xfm, mni_to_patient)
    plan = plan_target(
        snap_to_grey_matter=False,  # the carried point itself, not the cortex near it
        target_mni=tuple(MFG_L),
        t1=folder / "sub-01_T1w.nii.gz",
        mni_to_t1=xfm,
        xfm_kind="affine",
    )
    expected = (mni_to_patient @ [*MFG_L, 1])[:3]
    np.testing.assert_allclose(plan.record["targets"][0]["cortical_mm"], expected, atol=1.0)
    assert any("MNI152NLin2009cAsym" in w for w in plan.record["warnings"])


def test_peaks_cannot_be_a_subject_map(tmp_path, capsys):
    code = main(
        [
            "plan",
            "--peaks",
            str(PEAKS),
            "--roi",
            "cocaine_mfg_l",
            "--activation-space",
            "T1w",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert code == 1 and "--peaks" in capsys.readouterr().err


@pytest.mark.parametrize(
    "option, value",
    [
        ("--max-depth", "nan"),
        ("--threshold", "inf"),
        ("--handle-angle", "nan"),
        ("--max-depth", "-5"),
    ],
)
def test_non_finite_parameters_are_refused(option, value, tmp_path, capsys):
    code = main(
        ["plan", "--target-mni", "-38", "44", "26", option, value, "--out", str(tmp_path / "o")]
    )
    err = capsys.readouterr().err
    assert code == 1 and option in err and "internal error" not in err
