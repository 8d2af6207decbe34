"""Tests that catch a wrong coil pose: a rotated patient, and the demo's stored record."""

import importlib.util
import json

import nibabel as nib
import numpy as np
import pytest
from _paths import TEST_DATA
from _phantoms import rigid_scaling

from tmsplan.io.bundled import load_mni_head
from tmsplan.io.record_checks import validate_record
from tmsplan.pipeline.plan import plan_target

DATA = TEST_DATA

AXIS_ATOL = 1e-3
"""Coil axes (unit vectors): 1e-3 is 0.06 deg; a turned handle by 1 deg moves an axis by 0.017."""
POINT_ATOL_MM = 0.05


def _with_affine(img, affine):
    out = nib.Nifti1Image(np.asarray(img.dataobj), affine)
    out.set_sform(affine, code=1)
    out.set_qform(affine, code=1)
    return out


@pytest.fixture(scope="module")
def rotated_patient(tmp_path_factory):
    """The 2 mm MNI head whose world is turned 30 deg and shifted: voxels kept, affine moved.

    The patient's world is exactly ``mni_to_patient`` applied to the MNI head's, so every
    point and axis of a plan in the patient must be that transform of the same plan in MNI.
    """
    folder = tmp_path_factory.mktemp("rotated")
    mni_to_patient = rigid_scaling(
        angle_deg=30.0, axis=(0.3, -0.5, 1.0), scale=(1.0, 1.0, 1.0), shift=(12.0, -20.0, 7.0)
    )
    head = load_mni_head(2)
    np.savetxt(folder / "identity.txt", np.eye(4))
    np.savetxt(folder / "mni_to_patient.txt", mni_to_patient)
    mni = _with_affine(head, head.affine)
    patient = _with_affine(head, mni_to_patient @ head.affine)
    return folder, mni, patient, mni_to_patient


@pytest.mark.slow
@pytest.mark.parametrize(
    "target_mni", [(-54.0, 2.0, 28.0), (38.0, 44.0, 26.0)], ids=["left-MFG", "right-DLPFC"]
)
def test_every_coil_axis_in_patient_space_is_the_rotated_mni_axis(rotated_patient, target_mni):
    """Handle, inward axis, x axis and centre follow the patient's rotation (tolerance 1e-3
    on unit vectors = 0.06 deg, 0.05 mm on points; measured agreement ~1e-8)."""
    folder, mni, patient, mni_to_patient = rotated_patient
    in_mni = plan_target(target_mni=target_mni, t1=mni, mni_to_t1=folder / "identity.txt")
    in_patient = plan_target(
        target_mni=target_mni, t1=patient, mni_to_t1=folder / "mni_to_patient.txt"
    )
    (a,) = in_mni.record["targets"]
    (b,) = in_patient.record["targets"]
    rotation = mni_to_patient[:3, :3]
    pose_a, pose_b = np.asarray(a["coil_matrix"]), np.asarray(b["coil_matrix"])
    for column, axis in enumerate(("x", "y (handle)", "z (into the head)")):
        np.testing.assert_allclose(
            pose_b[:3, column], rotation @ pose_a[:3, column], atol=AXIS_ATOL, err_msg=axis
        )
    np.testing.assert_allclose(
        b["handle_direction"], rotation @ np.asarray(a["handle_direction"]), atol=AXIS_ATOL
    )
    for key in ("cortical_mm", "scalp_mm"):
        moved = (mni_to_patient @ [*a[key], 1.0])[:3]
        np.testing.assert_allclose(b[key], moved, atol=POINT_ATOL_MM, err_msg=key)
    np.testing.assert_allclose(
        pose_b[:3, 3], (mni_to_patient @ pose_a[:, 3])[:3], atol=POINT_ATOL_MM
    )
    assert b["depth_mm"] == pytest.approx(a["depth_mm"], abs=POINT_ATOL_MM)
    assert a["handle_rule_applied"] == b["handle_rule_applied"] == "rule"
    # the rule itself, in MNI: handle backwards and away from the midline
    handle = np.asarray(a["handle_direction"])
    assert handle[1] < 0 and np.sign(handle[0]) == np.sign(target_mni[0])


def _load_regenerator():
    spec = importlib.util.spec_from_file_location(
        "regenerate_demo_reference", DATA / "regenerate_demo_reference.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_demo_matches_its_stored_reference():
    """The demo's target, entry, coil pose and depth equal the stored reference copy.

    ``tests/data/demo_target.json`` is the demo's record as accepted by a person. A change
    that moves the demo's target, entry or coil pose must update this file on purpose:
    ``python tests/data/regenerate_demo_reference.py``, then review the diff.
    Tolerances: 1e-3 mm on points and depth, 1e-6 on the coil axes (records round points
    to 1e-4 mm and axes to 1e-8).
    """
    reference = json.loads((DATA / "demo_target.json").read_text(encoding="utf-8"))
    validate_record(reference, source="tests/data/demo_target.json")
    record = _load_regenerator().demo_record()
    assert record["space"] == reference["space"]
    assert record["roi"]["id"] == reference["roi"]["id"]
    assert record["t1"]["sha256"] == reference["t1"]["sha256"]
    assert [t["name"] for t in record["targets"]] == [t["name"] for t in reference["targets"]]
    for new, old in zip(record["targets"], reference["targets"], strict=True):
        for key in ("cortical_mm", "scalp_mm", "cortical_mni_mm"):
            np.testing.assert_allclose(new[key], old[key], atol=1e-3, err_msg=key)
        pose_new, pose_old = np.asarray(new["coil_matrix"]), np.asarray(old["coil_matrix"])
        np.testing.assert_allclose(pose_new[:3, :3], pose_old[:3, :3], atol=1e-6)
        np.testing.assert_allclose(pose_new[:3, 3], pose_old[:3, 3], atol=1e-3)
        np.testing.assert_allclose(new["handle_direction"], old["handle_direction"], atol=1e-6)
        np.testing.assert_allclose(new["scalp_normal"], old["scalp_normal"], atol=1e-6)
        assert new["depth_mm"] == pytest.approx(old["depth_mm"], abs=1e-3)
        assert new["reachable"] is old["reachable"]
    # left target, left entry: the reference itself is on the intended hemisphere
    (target,) = reference["targets"]
    assert target["cortical_mm"][0] < 0 and target["scalp_mm"][0] < target["cortical_mm"][0]
