"""The planning steps alone, and the typed results plan_target returns."""

import dataclasses

import nibabel as nib
import numpy as np
import pytest
from _phantoms import rigid_scaling

import tmsplan
from tmsplan import pipeline
from tmsplan.io.bundled import load_mni_brain_mask, load_mni_head
from tmsplan.pipeline.plan import plan_target
from tmsplan.spaces import MNI_FRAME, SUBJECT_FRAME, CoilPoses
from tmsplan.target.activation import Peak, map_from_peaks

MFG_L = (-54.0, 2.0, 28.0)  # centre of cocaine_mfg_l


@pytest.fixture(scope="module")
def moved_patient(tmp_path_factory):
    """The 2 mm MNI head with its world turned and shifted (voxels kept, affine moved)."""
    folder = tmp_path_factory.mktemp("pipeline")
    mni_to_patient = rigid_scaling(angle_deg=20.0, scale=(1.0, 1.0, 1.0), shift=(6.0, -9.0, 4.0))
    head = load_mni_head(2)
    affine = mni_to_patient @ head.affine
    patient = nib.Nifti1Image(np.asarray(head.dataobj), affine)
    patient.set_sform(affine, code=1)
    nib.save(patient, folder / "t1.nii.gz")
    np.savetxt(folder / "mni_to_t1.txt", mni_to_patient)
    return folder, mni_to_patient


@pytest.fixture(scope="module")
def group_map():
    peaks = [Peak(xyz=MFG_L, value=5.0), Peak(xyz=(-46.0, 20.0, 36.0), value=4.0)]
    return map_from_peaks(peaks, load_mni_brain_mask(2))


@pytest.mark.slow
def test_plan_targets_are_typed_and_are_the_record(group_map):
    plan = plan_target(group_map, roi="cocaine_mfg_l", candidates=2)
    assert len(plan.targets) == len(plan.record["targets"]) >= 1
    first = plan.targets[0]
    assert isinstance(first, tmsplan.Target)
    assert (first.role, first.rank) == ("chosen", 1)
    assert first.coil_matrix.shape == (4, 4) and first.coil_matrix.dtype == np.float64
    assert isinstance(first.coil_pose, CoilPoses) and len(first.coil_pose) == 1
    assert first.frame == plan.frame == MNI_FRAME == first.cortical.frame == first.entry.frame
    for target, entry in zip(plan.targets, plan.record["targets"], strict=True):
        assert target.to_record() == entry  # the record is the targets' JSON form
        np.testing.assert_allclose(target.coil_matrix, entry["coil_matrix"], atol=1e-8)
        np.testing.assert_allclose(target.cortical_mni, entry["cortical_mni_mm"], atol=1e-4)
    # coil centre = entry + coil-skin distance along the normal; z axis points inwards
    np.testing.assert_allclose(
        first.coil_matrix[:3, 3],
        first.entry.xyz[0] + first.coil_skin_distance_mm * first.normal,
        atol=1e-6,
    )
    assert first.cortical.xyz[0, 0] < 0 and first.entry.xyz[0, 0] < 0  # left ROI, left head
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.depth_mm = 0.0
    with pytest.raises(ValueError):
        first.handle[0] = 1.0  # read-only arrays


@pytest.mark.slow
def test_steps_choose_once_then_place_on_two_heads(group_map, moved_patient):
    """A target chosen once in MNI, placed on the MNI head and on a patient by the steps
    alone, gives exactly what plan_target gives on each head."""
    folder, mni_to_patient = moved_patient
    region = pipeline.roi_on_map(
        tmsplan.get_roi("cocaine_mfg_l"),
        None,
        group_map,
        pipeline.resolve_head_space(None)[0],
        activation_space="MNI",
        mask_entry=pipeline.image_entry,
    )
    point, chosen = pipeline.choose_target(group_map, region, threshold=3.1)
    assert point.frame == MNI_FRAME
    settings = pipeline.coil_settings(threshold=3.1)
    placed_on = {}
    for t1 in (None, folder / "t1.nii.gz"):
        xfm = None if t1 is None else folder / "mni_to_t1.txt"
        space, _ = pipeline.resolve_head_space(t1, mni_to_t1=xfm, needs_mni=True)
        carried, _ = pipeline.carry_target(point, space)
        final, _ = pipeline.finalise_target(carried, space, region, given_frame=None)
        head = pipeline.head_for(space)
        final, _ = pipeline.grey_matter_target(final, space, head)
        placed, _ = pipeline.place_target(final, space, head, settings, name="mfg")
        reference = plan_target(group_map, roi="cocaine_mfg_l", t1=t1, mni_to_t1=xfm)
        np.testing.assert_array_equal(placed.target.coil_matrix, reference.targets[0].coil_matrix)
        np.testing.assert_array_equal(placed.target.cortical_mni, reference.targets[0].cortical_mni)
        placed_on[space.frame] = placed.target
    in_mni, in_patient = placed_on[MNI_FRAME], placed_on[SUBJECT_FRAME]
    assert in_patient.frame == SUBJECT_FRAME
    # the same MNI target reaches the patient through the known transform (voxel snapping
    # on the 1 mm vs 2 mm brain masks: within 2 mm), then moves into the patient's grey matter
    moved = (mni_to_patient @ [*chosen.target.xyz[0], 1.0])[:3]
    into_grey = in_patient.checks["tissue"]["moved_to_grey_matter_mm"]
    assert in_patient.checks["tissue"]["at_target"] == "grey matter"
    assert np.linalg.norm(in_patient.cortical.xyz[0] - moved) < 2.0 + into_grey
    assert np.linalg.norm(in_mni.cortical.xyz[0] - chosen.target.xyz[0]) < 2.0


def test_finalise_refuses_a_given_point_far_outside_the_brain():
    space, _ = pipeline.resolve_head_space(None)
    carried, _ = pipeline.carry_target(
        pipeline.choose_target(None, pipeline.RoiOnMap(), threshold=0, target_mni=(0, 0, 200))[0],
        space,
    )
    with pytest.raises(tmsplan.ActivationError, match="outside the brain in MNI space"):
        pipeline.finalise_target(carried, space, pipeline.RoiOnMap(), given_frame=MNI_FRAME)
