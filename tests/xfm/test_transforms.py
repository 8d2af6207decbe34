"""MNI -> T1 transforms: every supported file kind against an analytic answer.

The synthetic patient is the bundled 2 mm MNI head resampled under a known
rigid + scaling transform ``M`` (MNI world -> T1 world), stored as RAS, LAS and
LPS. Each file kind is written for ``M`` and must map MNI points to ``M @ p``.
ANTs itself (ITK) is used as the reference for the ITK point direction.
"""

import json

import h5py
import nibabel as nib
import numpy as np
import pytest
from _phantoms import restore
from scipy import ndimage
from scipy.spatial.transform import Rotation

from tmsplan.errors import FormatError, ImageError, RegistrationError, SpaceError
from tmsplan.io.bundled import load_mni_brain_mask, load_mni_head, mni_head_path
from tmsplan.io.images import file_sha256
from tmsplan.spaces import LPS_FROM_RAS, Points
from tmsplan.xfm.transforms import (
    DisplacementField,
    MniToSubject,
    head_fit,
    load_mni_to_subject,
)

# MNI points on both sides (left != right), cortex and deep
MNI_POINTS = np.array(
    [[-42.0, 36.0, 28.0], [44.0, 30.0, 30.0], [0.0, -60.0, 40.0], [-20.0, -10.0, -20.0]]
)
FIELD_SHIFT_RAS = np.array([2.0, -3.0, 1.5])


def _known_mni_to_t1():
    """Rigid + anisotropic scaling, MNI world -> T1 world (RAS+ mm)."""
    rot = Rotation.from_euler("xyz", [8.0, -5.0, 12.0], degrees=True).as_matrix()
    matrix = np.eye(4)
    matrix[:3, :3] = rot @ np.diag([1.05, 0.95, 1.0])
    matrix[:3, 3] = [4.0, -18.0, 25.0]
    return matrix


def _apply(matrix, xyz):
    return np.asarray(xyz) @ matrix[:3, :3].T + matrix[:3, 3]


def _resample_mni(mni_img, mni_to_t1, affine, shape, order=1):
    """Image on a T1 grid whose value at world y is the MNI image at inv(M) y."""
    ijk = np.indices(shape).reshape(3, -1).T
    world = _apply(affine, ijk)
    mni = _apply(np.linalg.inv(mni_to_t1), world)
    vox = _apply(np.linalg.inv(mni_img.affine), mni)
    data = ndimage.map_coordinates(mni_img.get_fdata(), vox.T, order=order, cval=0.0)
    img = nib.Nifti1Image(data.reshape(shape), affine)
    img.set_sform(affine, code=1)
    img.set_qform(affine, code=1)
    return img


def _patient_grid(mni_to_t1, voxel=2.0, margin=4.0):
    head = load_mni_head(2)
    corners = np.array(np.meshgrid(*[[0, n - 1] for n in head.shape])).reshape(3, -1).T
    t1_corners = _apply(mni_to_t1 @ head.affine, corners)
    low = t1_corners.min(axis=0) - margin
    shape = tuple(int(n) for n in np.ceil((t1_corners.max(axis=0) + margin - low) / voxel) + 1)
    affine = np.diag([voxel, voxel, voxel, 1.0])
    affine[:3, 3] = low
    return affine, shape


@pytest.fixture(scope="module")
def known():
    return _known_mni_to_t1()


@pytest.fixture(scope="module")
def patient_ras(known):
    affine, shape = _patient_grid(known)
    return _resample_mni(load_mni_head(2), known, affine, shape)


@pytest.fixture(scope="module", params=["RAS", "LAS", "LPS"])
def patient(request, patient_ras):
    return restore(patient_ras, request.param)


@pytest.fixture(scope="module")
def mni_head():
    return load_mni_head(2)


def _mni_points():
    return Points(MNI_POINTS, "MNI152NLin6Asym")


# ----------------------------------------------------------------- writers (test side)


def _write_plain(path, matrix):
    np.savetxt(path, matrix, fmt="%.10f")
    return path


def _itk_lps_params(t1_to_mni_ras, center=(0.0, 0.0, 0.0)):
    """ITK AffineTransform parameters (LPS) for a T1 -> MNI point map, with a centre."""
    lps = LPS_FROM_RAS @ t1_to_mni_ras @ LPS_FROM_RAS
    center = np.asarray(center, dtype=np.float64)
    # ITK: y = A (x - c) + c + t  =>  offset = t + c - A c
    translation = lps[:3, 3] - center + lps[:3, :3] @ center
    return lps[:3, :3], translation, center


def _write_itk_txt(path, t1_to_mni_ras, center=(10.0, -20.0, 5.0)):
    mat, trans, center = _itk_lps_params(t1_to_mni_ras, center)
    params = " ".join(f"{v:.12g}" for v in [*mat.reshape(-1), *trans])
    path.write_text(
        "#Insight Transform File V1.0\n#Transform 0\n"
        "Transform: AffineTransform_double_3_3\n"
        f"Parameters: {params}\nFixedParameters: {' '.join(f'{c:g}' for c in center)}\n"
    )
    return path


def _write_itk_mat_ants(path, t1_to_mni_ras, center=(-7.0, 12.0, 30.0)):
    import ants

    mat, trans, center = _itk_lps_params(t1_to_mni_ras, center)
    tx = ants.create_ants_transform(
        transform_type="AffineTransform",
        precision="double",
        dimension=3,
        matrix=mat,
        translation=trans,
        center=center,
    )
    ants.write_transform(tx, str(path))
    return path


def _fsl_scaled_voxel(img):
    """FSL's scaled-voxel coordinates from voxel indices (x flipped for det > 0)."""
    zooms = np.sqrt((img.affine[:3, :3] ** 2).sum(axis=0))
    swap = np.eye(4)
    if np.linalg.det(img.affine) > 0:
        swap[0, 0] = -1.0
        swap[0, 3] = (img.shape[0] - 1) * zooms[0]
    return swap @ np.diag([*zooms, 1.0])


def _write_fsl(path, mni_to_t1, reference, moving):
    """FLIRT -in MNI -ref T1 matrix: MNI scaled-voxel -> T1 scaled-voxel coordinates."""
    flirt = (
        _fsl_scaled_voxel(reference)
        @ np.linalg.inv(reference.affine)
        @ mni_to_t1
        @ moving.affine
        @ np.linalg.inv(_fsl_scaled_voxel(moving))
    )
    np.savetxt(path, flirt, fmt="%.10f")
    return path


def _write_composite_h5(path, t1_to_mni_ras, field_ras, field_affine):
    """ITK composite .h5: [affine, displacement field]; ITK applies the field first."""
    mat, trans, center = _itk_lps_params(t1_to_mni_ras, (3.0, -4.0, 8.0))
    lps_affine = LPS_FROM_RAS @ field_affine
    spacing = np.sqrt((lps_affine[:3, :3] ** 2).sum(axis=0))
    direction = lps_affine[:3, :3] / spacing
    shape = field_ras.shape[:3]
    vectors_lps = field_ras * np.array([-1.0, -1.0, 1.0])
    with h5py.File(path, "w") as handle:
        group = handle.create_group("TransformGroup")
        comp = group.create_group("0")
        comp.create_dataset("TransformType", data=[b"CompositeTransform_double_3_3"])
        aff = group.create_group("1")
        aff.create_dataset("TransformType", data=[b"AffineTransform_double_3_3"])
        aff.create_dataset("TransformParameters", data=np.r_[mat.reshape(-1), trans])
        aff.create_dataset("TransformFixedParameters", data=center)
        fld = group.create_group("2")
        fld.create_dataset("TransformType", data=[b"DisplacementFieldTransform_double_3_3"])
        fld.create_dataset(
            "TransformParameters", data=np.moveaxis(vectors_lps, -1, 0).reshape(-1, order="F")
        )
        fld.create_dataset(
            "TransformFixedParameters",
            data=np.r_[shape, lps_affine[:3, 3], spacing, direction.reshape(-1)],
        )
    return path


def _field_on(patient_img, voxel=6.0, wavy=False):
    """Displacement field on a coarse grid covering the patient; constant or smooth."""
    step = np.diag([voxel / 2.0] * 3 + [1.0])
    affine = patient_img.affine @ step
    shape = tuple(int(np.ceil(n * 2.0 / voxel)) for n in patient_img.shape[:3])
    field = np.broadcast_to(FIELD_SHIFT_RAS, (*shape, 3)).copy()
    if wavy:
        xyz = _apply(affine, np.indices(shape).reshape(3, -1).T).reshape(*shape, 3)
        field[..., 0] += 2.0 * np.sin(xyz[..., 1] / 25.0)
        field[..., 1] += 1.5 * np.cos(xyz[..., 2] / 30.0)
    return field, affine


# ----------------------------------------------------------------- plain affine


def test_plain_affine_maps_points_analytically(tmp_path, known, patient):
    path = _write_plain(tmp_path / "mni2t1.txt", known)
    xfm = load_mni_to_subject(path, reference=patient)
    assert xfm.kind == "affine"
    assert xfm.src_frame == "MNI152NLin6Asym" and xfm.dst_frame == "T1w"
    out = xfm.apply_points(_mni_points())
    assert out.frame == "T1w"
    np.testing.assert_allclose(out.xyz, _apply(known, MNI_POINTS), atol=1e-6)
    back = xfm.inverse_points(out)
    assert back.frame == "MNI152NLin6Asym"
    np.testing.assert_allclose(back.xyz, MNI_POINTS, atol=1e-6)
    # left stays left: the two hemispheres' points stay apart in T1
    assert np.linalg.norm(out.xyz[0] - out.xyz[1]) > 80
    assert xfm.fit["head_dice"] > 0.95


def test_three_by_four_matrix_is_completed(tmp_path, known):
    path = tmp_path / "m.txt"
    np.savetxt(path, known[:3])
    xfm = load_mni_to_subject(path)
    np.testing.assert_allclose(xfm.matrix, known, atol=1e-9)


def test_describe_is_json_ready(tmp_path, known, patient_ras):
    path = _write_plain(tmp_path / "mni2t1.txt", known)
    desc = load_mni_to_subject(path, reference=patient_ras).describe()
    json.dumps(desc)
    assert desc["direction"] == "mni_to_subject"
    assert desc["kind"] == "affine"
    assert desc["src_frame"] == "MNI152NLin6Asym" and desc["dst_frame"] == "T1w"
    assert desc["paths"] == [str(path)]
    assert desc["sha256"] == [file_sha256(path)]
    assert desc["linear"] is True
    np.testing.assert_allclose(desc["matrix_mni_to_subject"], known, atol=1e-7)
    assert desc["fit"]["head_dice"] > 0.95


def test_as_transform_is_spaces_transform(known):
    xfm = MniToSubject.from_matrix(known)
    tr = xfm.as_transform()
    assert (tr.src, tr.dst) == ("MNI152NLin6Asym", "T1w")
    np.testing.assert_allclose(tr.apply(_mni_points()).xyz, _apply(known, MNI_POINTS))


# ----------------------------------------------------------------- ITK / ANTs


def test_itk_txt_uses_image_convention(tmp_path, known, patient):
    """An ITK from-MNI_to-T1w file holds the T1 -> MNI point map; we invert it."""
    path = _write_itk_txt(
        tmp_path / "from-MNI152NLin6Asym_to-T1w_mode-image_xfm.txt", np.linalg.inv(known)
    )
    xfm = load_mni_to_subject(path, reference=patient)
    assert xfm.kind == "itk"
    np.testing.assert_allclose(
        xfm.apply_points(_mni_points()).xyz, _apply(known, MNI_POINTS), atol=1e-4
    )


def test_itk_txt_written_by_nitransforms(tmp_path, known, patient_ras):
    from nitransforms.io.itk import ITKLinearTransform

    path = tmp_path / "xfm.txt"
    ITKLinearTransform.from_ras(np.linalg.inv(known)).to_filename(path)
    xfm = load_mni_to_subject(path, reference=patient_ras)
    np.testing.assert_allclose(
        xfm.apply_points(_mni_points()).xyz, _apply(known, MNI_POINTS), atol=1e-3
    )


@pytest.mark.slow
def test_itk_mat_written_by_ants_matches_ants_point_mapping(tmp_path, known, patient_ras):
    """ANTs (ITK) itself maps T1 points to MNI points with the same .mat file."""
    import ants
    import pandas as pd

    path = _write_itk_mat_ants(tmp_path / "xfm.mat", np.linalg.inv(known))
    xfm = load_mni_to_subject(path, reference=patient_ras)
    np.testing.assert_allclose(
        xfm.apply_points(_mni_points()).xyz, _apply(known, MNI_POINTS), atol=1e-4
    )

    t1_points = _apply(known, MNI_POINTS)
    lps = t1_points * [-1.0, -1.0, 1.0]
    mapped = ants.apply_transforms_to_points(
        3, pd.DataFrame(lps, columns=["x", "y", "z"]), [str(path)]
    )
    ants_mni = mapped[["x", "y", "z"]].to_numpy() * [-1.0, -1.0, 1.0]
    np.testing.assert_allclose(ants_mni, MNI_POINTS, atol=1e-4)
    ours = xfm.inverse_points(Points(t1_points, "T1w")).xyz
    np.testing.assert_allclose(ours, ants_mni, atol=1e-4)


@pytest.mark.slow
def test_itk_resampling_direction_matches_ants(tmp_path, known, patient_ras):
    """ANTs resampling the MNI head with the file reproduces the synthetic patient."""
    import ants

    path = _write_itk_mat_ants(tmp_path / "xfm.mat", np.linalg.inv(known))
    xfm = load_mni_to_subject(path)
    fixed_path = tmp_path / "t1.nii.gz"
    nib.save(patient_ras, fixed_path)
    warped = ants.apply_transforms(
        fixed=ants.image_read(str(fixed_path)),
        moving=ants.image_read(str(mni_head_path(2))),
        transformlist=[str(path)],
        interpolator="linear",
    )
    ours = xfm.resample_to_subject(load_mni_head(2), patient_ras, interpolation="linear")
    truth = patient_ras.get_fdata().reshape(-1)
    # ITK and scipy differ at the image borders (the cut neck); a wrong direction
    # or a flipped axis gives a correlation below 0.9
    assert np.corrcoef(warped.numpy().reshape(-1), truth)[0, 1] > 0.99
    assert np.corrcoef(ours.get_fdata().reshape(-1), truth)[0, 1] > 0.99999


def test_h5_composite_constant_field_analytic(tmp_path, known, patient):
    field, field_affine = _field_on(patient)
    path = _write_composite_h5(
        tmp_path / "from-MNI152NLin2009cAsym_to-T1w_mode-image_xfm.h5",
        np.linalg.inv(known),
        field,
        field_affine,
    )
    xfm = load_mni_to_subject(path, reference=patient)
    assert xfm.src_frame == "MNI152NLin2009cAsym"  # from the BIDS name
    assert not xfm.is_linear
    # T1 point y -> field (y + d) -> affine -> MNI; so MNI p -> T1 y = M p - d
    expected = _apply(known, MNI_POINTS) - FIELD_SHIFT_RAS
    t1 = xfm.apply_points(Points(MNI_POINTS, "MNI152NLin2009cAsym"))
    np.testing.assert_allclose(t1.xyz, expected, atol=1e-3)
    np.testing.assert_allclose(xfm.inverse_points(t1).xyz, MNI_POINTS, atol=1e-3)


@pytest.mark.slow
def test_h5_composite_matches_ants(tmp_path, known, patient_ras):
    import ants
    import pandas as pd

    field, field_affine = _field_on(patient_ras, wavy=True)
    path = _write_composite_h5(tmp_path / "comp.h5", np.linalg.inv(known), field, field_affine)
    xfm = load_mni_to_subject(path, reference=patient_ras)
    rng = np.random.default_rng(3)
    t1_points = _apply(known, MNI_POINTS) + rng.uniform(-3, 3, size=MNI_POINTS.shape)
    mapped = ants.apply_transforms_to_points(
        3, pd.DataFrame(t1_points * [-1.0, -1.0, 1.0], columns=["x", "y", "z"]), [str(path)]
    )
    ants_mni = mapped[["x", "y", "z"]].to_numpy() * [-1.0, -1.0, 1.0]
    ours = xfm.inverse_points(Points(t1_points, "T1w")).xyz
    np.testing.assert_allclose(ours, ants_mni, atol=1e-3)
    # round trip through the iterative inverse of the wavy field
    back = xfm.apply_points(Points(ours, "MNI152NLin6Asym")).xyz
    np.testing.assert_allclose(back, t1_points, atol=1e-2)


@pytest.mark.slow
def test_h5_resampling_moves_left_roi_by_field(tmp_path, known, patient_ras, mni_head):
    """An ROI sphere in the LEFT hemisphere lands at M c - d in the T1."""
    field, field_affine = _field_on(patient_ras)
    path = _write_composite_h5(tmp_path / "comp.h5", np.linalg.inv(known), field, field_affine)
    xfm = load_mni_to_subject(path)
    centre = np.array([-40.0, 24.0, 30.0])
    ijk = np.indices(mni_head.shape).reshape(3, -1).T
    inside = np.linalg.norm(_apply(mni_head.affine, ijk) - centre, axis=1) <= 10.0
    roi = nib.Nifti1Image(inside.reshape(mni_head.shape).astype(float), mni_head.affine)
    out = xfm.resample_to_subject(roi, patient_ras, interpolation="nearest")
    assert set(np.unique(out.get_fdata())) <= {0.0, 1.0}
    vox = np.argwhere(out.get_fdata() > 0.5)
    centroid = _apply(patient_ras.affine, vox).mean(axis=0)
    np.testing.assert_allclose(centroid, _apply(known, centre) - FIELD_SHIFT_RAS, atol=1.0)


def test_h5_point_outside_field_is_refused(tmp_path, known, patient_ras):
    field, field_affine = _field_on(patient_ras)
    path = _write_composite_h5(tmp_path / "comp.h5", np.linalg.inv(known), field, field_affine)
    xfm = load_mni_to_subject(path)
    with pytest.raises(SpaceError, match="outside the displacement field"):
        xfm.inverse_points(Points([[500.0, 0.0, 0.0]], "T1w"))


# ----------------------------------------------------------------- FSL


def test_fsl_matrix_needs_images_and_maps_points(tmp_path, known, patient, mni_head):
    path = _write_fsl(tmp_path / "mni2t1.mat", known, patient, mni_head)
    with pytest.raises(RegistrationError, match="reference=.*moving="):
        load_mni_to_subject(path)
    xfm = load_mni_to_subject(path, reference=patient, moving=mni_head)
    assert xfm.kind == "fsl"
    np.testing.assert_allclose(
        xfm.apply_points(_mni_points()).xyz, _apply(known, MNI_POINTS), atol=1e-5
    )


def test_fsl_matrix_from_nitransforms_writer(tmp_path, known, patient, mni_head):
    from nitransforms.linear import Affine

    path = tmp_path / "flirt.mat"
    Affine(np.linalg.inv(known), reference=patient).to_filename(path, fmt="fsl", moving=mni_head)
    xfm = load_mni_to_subject(path, reference=patient, moving=mni_head)
    np.testing.assert_allclose(
        xfm.apply_points(_mni_points()).xyz, _apply(known, MNI_POINTS), atol=1e-4
    )


# ----------------------------------------------------------------- resampling images


def test_resample_left_roi_lands_at_analytic_centre(known, patient, mni_head):
    xfm = MniToSubject.from_matrix(known)
    centre = np.array([-40.0, 24.0, 30.0])
    ijk = np.indices(mni_head.shape).reshape(3, -1).T
    inside = np.linalg.norm(_apply(mni_head.affine, ijk) - centre, axis=1) <= 10.0
    roi = nib.Nifti1Image(inside.reshape(mni_head.shape).astype(float), mni_head.affine)
    out = xfm.resample_to_subject(roi, patient, interpolation="nearest")
    np.testing.assert_allclose(out.affine, patient.affine)
    vox = np.argwhere(out.get_fdata() > 0.5)
    centroid = _apply(patient.affine, vox).mean(axis=0)
    np.testing.assert_allclose(centroid, _apply(known, centre), atol=1.0)
    assert centroid[0] < _apply(known, [0.0, 24.0, 30.0])[0]  # still on the left


def test_resample_linear_reproduces_patient(known, patient):
    xfm = MniToSubject.from_matrix(known)
    out = xfm.resample_to_subject(load_mni_head(2), patient, interpolation="linear")
    scale = patient.get_fdata().max()
    assert np.abs(out.get_fdata() - patient.get_fdata()).max() < 1e-4 * scale


def test_resample_rejects_bad_interpolation_and_no_overlap(known, patient_ras):
    xfm = MniToSubject.from_matrix(known)
    with pytest.raises(ValueError, match="interpolation"):
        xfm.resample_to_subject(load_mni_head(2), patient_ras, interpolation="cubic")
    far = np.eye(4)
    far[:3, 3] = [900.0, 0.0, 0.0]
    blob = nib.Nifti1Image(np.ones((4, 4, 4)), far)
    with pytest.raises(SpaceError, match="outside the T1"):
        xfm.resample_to_subject(blob, patient_ras)


# ----------------------------------------------------------------- refusals


def test_frame_mismatch_is_refused(known):
    xfm = MniToSubject.from_matrix(known)
    with pytest.raises(SpaceError, match="inverse_points"):
        xfm.apply_points(Points(MNI_POINTS, "T1w"))
    with pytest.raises(SpaceError, match="apply_points"):
        xfm.inverse_points(Points(MNI_POINTS, "MNI152NLin6Asym"))
    with pytest.raises(SpaceError, match="MNI152NLin2009cAsym"):
        xfm.apply_points(Points(MNI_POINTS, "MNI152NLin2009cAsym"))
    with pytest.raises(SpaceError, match="Points"):
        xfm.apply_points(MNI_POINTS)


def test_src_frame_conflicting_with_file_name(tmp_path, known):
    path = _write_plain(tmp_path / "from-MNI152NLin2009cAsym_to-T1w_xfm.txt", known)
    with pytest.raises(RegistrationError, match="src_frame"):
        load_mni_to_subject(path, src_frame="MNI152NLin6Asym")
    assert load_mni_to_subject(path).src_frame == "MNI152NLin2009cAsym"


def test_file_named_for_opposite_direction(tmp_path, known):
    path = _write_plain(
        tmp_path / "sub-01_from-T1w_to-MNI152NLin2009cAsym_mode-image_xfm.txt", known
    )
    with pytest.raises(RegistrationError, match="from-MNI152NLin2009cAsym_to-T1w"):
        load_mni_to_subject(path)


def test_wrong_direction_plain_affine_detected(tmp_path, known, patient):
    path = _write_plain(tmp_path / "t1_to_mni.txt", np.linalg.inv(known))
    with pytest.raises(RegistrationError, match="inverse"):
        load_mni_to_subject(path, reference=patient)
    # without the T1 there is nothing to check against
    assert load_mni_to_subject(path).fit is None


def test_wrong_direction_itk_detected(tmp_path, known, patient_ras):
    # the T1 -> MNI resampling transform (fixed = MNI) holds MNI -> T1 point maps
    path = _write_itk_txt(tmp_path / "xfm.txt", known)
    with pytest.raises(RegistrationError, match="T1 -> MNI transform"):
        load_mni_to_subject(path, reference=patient_ras)


def test_transform_for_another_t1_detected(tmp_path, known, patient_ras):
    shifted = known.copy()
    shifted[:3, 3] += [0.0, 35.0, -30.0]
    path = _write_plain(tmp_path / "other.txt", shifted)
    with pytest.raises(RegistrationError, match="does not fit this T1"):
        load_mni_to_subject(path, reference=patient_ras)


@pytest.mark.slow
def test_brain_extracted_t1_detected(tmp_path, known, patient_ras):
    xfm = MniToSubject.from_matrix(known)
    brain = xfm.resample_to_subject(load_mni_brain_mask(2), patient_ras, interpolation="nearest")
    stripped = nib.Nifti1Image(patient_ras.get_fdata() * brain.get_fdata(), patient_ras.affine)
    scores = head_fit(xfm, stripped)
    assert scores["brain_dice"] > scores["head_dice"]
    path = _write_plain(tmp_path / "m.txt", known)
    with pytest.raises(RegistrationError, match="brain-extracted"):
        load_mni_to_subject(path, reference=stripped)


def test_mirrored_matrix_refused(tmp_path, known):
    mirrored = known @ np.diag([-1.0, 1.0, 1.0, 1.0])
    with pytest.raises(RegistrationError, match="left and right"):
        load_mni_to_subject(_write_plain(tmp_path / "m.txt", mirrored))
    with pytest.raises(RegistrationError, match="left and right"):
        MniToSubject.from_matrix(mirrored)


def test_voxel_scaled_matrix_refused(tmp_path):
    with pytest.raises(RegistrationError, match="millimetres"):
        load_mni_to_subject(_write_plain(tmp_path / "m.txt", np.diag([0.1, 0.1, 0.1, 1.0])))


def test_wrong_kind_and_unreadable_files(tmp_path, known, patient_ras, mni_head):
    plain = _write_plain(tmp_path / "m.txt", known)
    with pytest.raises(FormatError, match="ITK"):
        load_mni_to_subject(plain, kind="itk")
    itk_txt = _write_itk_txt(tmp_path / "i.txt", np.linalg.inv(known))
    with pytest.raises(FormatError, match="kind='itk'"):
        load_mni_to_subject(itk_txt, kind="affine")
    with pytest.raises(FormatError, match="FSL"):
        load_mni_to_subject(
            _write_itk_mat_ants(tmp_path / "a.mat", known),
            kind="fsl",
            reference=patient_ras,
            moving=mni_head,
        )
    with pytest.raises(FormatError, match="does not exist"):
        load_mni_to_subject(tmp_path / "missing.txt")
    junk = tmp_path / "junk.txt"
    junk.write_text("hello world\n")
    with pytest.raises(FormatError, match="not a transform"):
        load_mni_to_subject(junk)
    broken = tmp_path / "broken.h5"
    broken.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(40))
    with pytest.raises(FormatError, match="cannot be read"):
        load_mni_to_subject(broken)
    with pytest.raises(FormatError, match="warp field alone"):
        nii = tmp_path / "warp.nii.gz"
        nib.save(nib.Nifti1Image(np.zeros((2, 2, 2, 1, 3), np.float32), np.eye(4)), nii)
        load_mni_to_subject(nii)
    euler = tmp_path / "euler.txt"
    euler.write_text(
        "#Insight Transform File V1.0\n#Transform 0\nTransform: Euler3DTransform_double_3_3\n"
        "Parameters: 0 0 0 1 2 3\nFixedParameters: 0 0 0\n"
    )
    with pytest.raises(FormatError, match="Euler3DTransform"):
        load_mni_to_subject(euler)
    with pytest.raises(ValueError, match="kind"):
        load_mni_to_subject(plain, kind="lta")


def test_four_d_reference_refused(tmp_path, known, patient_ras):
    data = np.stack([patient_ras.get_fdata()] * 2, axis=-1)
    four_d = nib.Nifti1Image(data, patient_ras.affine)
    with pytest.raises(ImageError, match="4-D"):
        load_mni_to_subject(_write_plain(tmp_path / "m.txt", known), reference=four_d)


def test_displacement_field_validates_shape():
    with pytest.raises(FormatError, match="shape"):
        DisplacementField(np.zeros((3, 3, 3)), np.eye(4))
