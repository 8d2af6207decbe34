"""Real-MRI failure modes of the scalp and the entry self-checks (tmsplan.head scalp, checks).

Each phantom rebuilds one failure met on real heads: a zero background read as a
cut (FreeSurfer-style LIA .mgz), a zero-padded neck under a negative image minimum,
coarse voxels, an air cavity opening to the outside through a narrow channel, an
entry on an inner (cavity) surface.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import trimesh
from nibabel.affines import apply_affine
from nilearn.image import resample_img
from scipy import ndimage

from tmsplan.head.checks import check_entry, image_warnings
from tmsplan.head.scalp import ScalpSurface, scalp_surface
from tmsplan.io import bundled

MNI = "MNI152NLin6Asym"
# frontal pole, orbitofrontal, medial prefrontal, left DLPFC, left hand knob, right parietal
TARGETS = np.array(
    [(-24, 64, 0), (-40, 50, -10), (-10, 66, 10), (-38, 44, 26), (-37, -21, 58), (40, -60, 40)],
    dtype=float,
)


def _entries(scalp: ScalpSurface, points=TARGETS):
    skin = ~scalp.fov_boundary[scalp.mesh.faces].any(axis=1)
    mesh = trimesh.Trimesh(scalp.mesh.vertices, scalp.mesh.faces[skin], process=False)
    closest, distance, _ = trimesh.proximity.closest_point(mesh, points)
    return closest, distance


def _flagged_area_share(scalp: ScalpSurface) -> float:
    flagged = scalp.fov_boundary[scalp.mesh.faces].all(axis=1)
    return float(scalp.mesh.area_faces[flagged].sum() / scalp.mesh.area)


def _resampled(img, voxel_mm):
    return resample_img(
        img,
        target_affine=np.diag([voxel_mm] * 3),
        interpolation="continuous",
        force_resample=True,
        copy_header=True,
    )


def _as_lia_mgz(img, path):
    """Store ``img`` the way FreeSurfer stores a conformed volume: LIA voxel order, .mgz."""
    ornt = nib.orientations.ornt_transform(
        nib.io_orientation(img.affine), nib.orientations.axcodes2ornt("LIA")
    )
    lia = img.as_reoriented(ornt)
    mgz = nib.MGHImage(np.asarray(lia.dataobj, dtype=np.float32), lia.affine)
    nib.save(mgz, path)
    return path


@pytest.fixture(scope="module")
def mni_1mm():
    head = bundled.load_mni_head(1)
    return nib.Nifti1Image(np.asarray(head.dataobj, dtype=np.float32), head.affine)


@pytest.fixture(scope="module")
def zero_background(mni_1mm):
    """The embedded head with every voxel outside a generous head mask set to exactly 0."""
    data = np.asarray(mni_1mm.dataobj, dtype=np.float32)
    head = data > 0.1 * np.percentile(data, 99)
    head = ndimage.binary_closing(head, iterations=3)
    head = ndimage.binary_dilation(ndimage.binary_fill_holes(head), iterations=2)
    return nib.Nifti1Image(np.where(head, data, 0).astype(np.float32), mni_1mm.affine)


@pytest.fixture(scope="module", params=[3.0, 5.0], ids=["3mm", "5mm"])
def coarse_pair(request, mni_1mm, zero_background, tmp_path_factory):
    """(voxel size, the head resampled, the zero-background head resampled and stored LIA .mgz)."""
    voxel = request.param
    plain = _resampled(mni_1mm, voxel)
    zero = _resampled(zero_background, voxel)
    data = np.asarray(zero.dataobj, dtype=np.float32).copy()
    data[data < 1e-3] = 0.0  # exactly zero outside, as FreeSurfer writes it
    path = tmp_path_factory.mktemp("mgz") / f"T1_{int(voxel)}mm.mgz"
    _as_lia_mgz(nib.Nifti1Image(data, zero.affine), path)
    return voxel, plain, path


# --------------------------------------------------------------------------- zero backgrounds


@pytest.mark.slow
def test_zero_background_lia_mgz_is_not_a_cut(coarse_pair):
    voxel, plain, mgz = coarse_pair
    reference = scalp_surface(plain, frame=MNI)
    zero = scalp_surface(mgz, frame=MNI)
    assert nib.aff2axcodes(nib.load(mgz).affine) == ("L", "I", "A")
    assert zero.genus == 0 and reference.genus == 0
    # under 5 % of the surface flagged beyond the neck floor that the original has too
    assert _flagged_area_share(zero) - _flagged_area_share(reference) < 0.05
    ref_entries, ref_depth = _entries(reference)
    entries, depth = _entries(zero)
    assert np.linalg.norm(entries - ref_entries, axis=1).max() <= voxel
    np.testing.assert_allclose(depth, ref_depth, atol=voxel)
    assert np.all(depth > 12.0)  # never a cut or a cavity wall close to the cortex


@pytest.mark.slow
def test_coarse_voxels_keep_the_targets_and_warn(coarse_pair, mni_1mm):
    voxel, plain, _ = coarse_pair
    fine = scalp_surface(mni_1mm, frame=MNI)
    coarse = scalp_surface(plain, frame=MNI)
    assert coarse.genus == 0
    fine_entries, fine_depth = _entries(fine)
    entries, depth = _entries(coarse)
    assert np.linalg.norm(entries - fine_entries, axis=1).max() <= voxel
    np.testing.assert_allclose(depth, fine_depth, atol=voxel)
    warnings = image_warnings(coarse)
    assert any("coarse" in w and f"{voxel:.2g}" in w for w in warnings)
    assert not any("coarse" in w for w in image_warnings(fine))


def test_anisotropic_voxels_warn():
    img = nib.Nifti1Image(np.zeros((4, 4, 4), np.float32), np.diag([1.0, 1.0, 3.0, 1.0]))
    fake = ScalpSurface(
        mesh=trimesh.creation.icosphere(),
        frame="T1w",
        fov_boundary=np.zeros(642, bool),
        defaced=False,
        notes=(),
        voxel_mm=tuple(float(z) for z in img.header.get_zooms()),
    )
    assert any("anisotropic" in w for w in image_warnings(fake))


@pytest.mark.slow
def test_zero_padded_neck_under_negative_minimum_is_a_cut(mni_1mm):
    """Padding with exact zeros below a neck whose noisy intensities go below zero."""
    data = np.asarray(mni_1mm.dataobj, dtype=np.float32)
    rng = np.random.default_rng(0)
    shifted = data - 50.0 + rng.normal(0.0, 5.0, data.shape).astype(np.float32)
    assert shifted.min() < 0
    pad = 40
    padded = np.concatenate([np.zeros(data.shape[:2] + (pad,), np.float32), shifted], axis=2)
    affine = mni_1mm.affine.copy()
    affine[:3, 3] -= affine[:3, 2] * pad
    result = scalp_surface(nib.Nifti1Image(padded, affine), frame=MNI)
    reference = scalp_surface(mni_1mm, frame=MNI)
    assert result.genus == 0
    assert any("cut by an empty" in note for note in result.notes)
    v = result.mesh.vertices
    floor = v[:, 2] < v[:, 2].min() + 0.5
    assert floor.sum() > 50 and result.fov_boundary[floor].all()  # the flat floor is not skin
    entries, depth = _entries(result)
    ref_entries, ref_depth = _entries(reference)
    np.testing.assert_allclose(depth, ref_depth, atol=0.5)  # added noise moves the skin a little
    assert np.linalg.norm(entries - ref_entries, axis=1).max() < 1.5


# --------------------------------------------------------------------------- cavities


def _cavity_head(channel_radius_mm: float):
    """A sphere head (skin, dark skull, brain) with an air cavity under the forehead.

    The cavity (a 12 mm ball, like a frontal sinus) opens to the outside through a
    narrow channel along +y. Left != right: an ear-like bump on +x only.
    """
    shape, voxel = (90, 90, 90), 2.0
    affine = np.diag([voxel, voxel, voxel, 1.0])
    affine[:3, 3] = -voxel * (np.asarray(shape) - 1) / 2
    xyz = apply_affine(affine, np.indices(shape).reshape(3, -1).T).reshape(shape + (3,))
    radius = 70.0
    sd = np.linalg.norm(xyz, axis=-1) - radius
    sd = np.minimum(sd, np.linalg.norm(xyz - (radius, 0, 0), axis=-1) - 10.0)  # right ear
    data = 0.05 + 0.95 * np.clip(0.5 - sd / voxel, 0, 1)
    data -= 0.8 * np.clip(0.5 - (sd + 5.0) / voxel, 0, 1)  # skull
    data += 0.5 * np.clip(0.5 - (sd + 10.0) / voxel, 0, 1)  # brain
    centre = np.array([0.0, 55.0, 0.0])
    cavity = np.linalg.norm(xyz - centre, axis=-1) < 12.0
    channel = (np.hypot(xyz[..., 0], xyz[..., 2]) < channel_radius_mm) & (xyz[..., 1] > 55.0)
    air = cavity | channel
    data[air] = 0.05
    rng = np.random.default_rng(3)
    data = np.abs(data + rng.normal(0, 0.02, shape))
    img = nib.Nifti1Image(data.astype(np.float32), affine)
    return img, centre, radius


@pytest.mark.slow
def test_air_cavity_through_narrow_channel_is_not_skin():
    img, centre, radius = _cavity_head(channel_radius_mm=2.5)
    result = scalp_surface(img)
    assert result.genus == 0
    v = result.mesh.vertices
    assert np.all(np.linalg.norm(v - centre, axis=1) > 12.0 + 1.0)  # no vertex in the cavity
    # a target under the cavity: its entry is the outer skin, ~70 mm from the centre
    target = np.array([[0.0, 40.0, 0.0]])
    entry, depth = _entries(result, target)
    assert np.linalg.norm(entry[0]) == pytest.approx(radius, abs=1.5)
    assert depth[0] == pytest.approx(radius - 40.0, abs=1.5)
    check = check_entry(entry[0], entry[0] / np.linalg.norm(entry[0]), result, img)
    assert check.on_outer_skin and not check.warnings


@pytest.mark.slow
def test_entry_on_a_cavity_wall_is_caught():
    """An entry taken from an inner surface (the old failure) is refused by the image check."""
    img, centre, _ = _cavity_head(channel_radius_mm=2.5)
    good = scalp_surface(img)
    inner = trimesh.creation.icosphere(subdivisions=3, radius=12.0)
    inner.apply_translation(centre)
    wrong = ScalpSurface(
        mesh=inner,
        frame="T1w",
        fov_boundary=np.zeros(len(inner.vertices), bool),
        defaced=False,
        notes=(),
        skin_level=good.skin_level,
    )
    entry = centre + np.array([0.0, 0.0, 12.0])  # top of the cavity: skull and skin above it
    check = check_entry(entry, np.array([0.0, 0.0, 1.0]), wrong, img, name="fp")
    assert not check.on_outer_skin
    assert np.isfinite(check.tissue_beyond_mm)
    assert any("NOT on the outer skin" in w and "'fp'" in w for w in check.warnings)
    assert check.describe()["on_outer_skin"] is False


@pytest.mark.slow
def test_scalp_brain_distance_is_checked():
    img, _, radius = _cavity_head(channel_radius_mm=2.5)
    scalp = scalp_surface(img)
    entry = np.array([-radius, 0.0, 0.0])  # left side: no ear, plain skin
    # a brain mask reaching to 3 mm under the skin: implausibly thin
    data = np.asarray(img.dataobj)
    xyz = apply_affine(img.affine, np.indices(data.shape).reshape(3, -1).T)
    close = (np.linalg.norm(xyz, axis=1) < radius - 3.0).reshape(data.shape)
    brain = nib.Nifti1Image(close.astype(np.uint8), img.affine)
    check = check_entry(entry, np.array([-1.0, 0, 0]), scalp, img, brain_img=brain)
    assert check.on_outer_skin
    assert check.scalp_brain_mm < 6.0  # 3 mm, to the 2 mm voxel grid
    assert any("only" in w and "from the brain" in w for w in check.warnings)
    normal = (np.linalg.norm(xyz, axis=1) < radius - 12.0).reshape(data.shape)
    check = check_entry(
        entry,
        np.array([-1.0, 0, 0]),
        scalp,
        img,
        brain_img=nib.Nifti1Image(normal.astype(np.uint8), img.affine),
    )
    assert not check.warnings


def test_skin_voxels_answer_like_the_image_they_pack():
    """Packed tissue voxels give the image's own answer at every voxel centre, off the grid
    False, and keep left and right apart (an asymmetric, oblique, LAS-stored image)."""
    from tmsplan.head.checks import SkinVoxels

    rng = np.random.default_rng(2)
    data = rng.normal(size=(7, 9, 5))
    data[0, :, :] = 5.0  # one side slab of tissue: voxel i = 0 is world x = +6 (LAS)
    data[6, :, :] = -5.0
    affine = np.array(
        [[-1.0, 0.1, 0.0, 6.0], [0.0, 1.2, 0.0, -4.0], [0.0, 0.0, 2.0, -3.0], [0, 0, 0, 1]]
    )
    img = nib.Nifti1Image(data, affine)
    skin = SkinVoxels.from_image(img, level=0.3)
    assert skin.bits.nbytes == -(-data.size // 8)
    ijk = np.indices(data.shape).reshape(3, -1).T
    world = apply_affine(affine, ijk)
    np.testing.assert_array_equal(skin.is_tissue(world), (data >= 0.3).reshape(-1))
    # a third of a voxel off each centre still answers for that voxel
    jitter = rng.uniform(-0.3, 0.3, size=ijk.shape)
    np.testing.assert_array_equal(
        skin.is_tissue(apply_affine(affine, ijk + jitter)), (data >= 0.3).reshape(-1)
    )
    right, left = apply_affine(affine, [[0, 4, 2], [6, 4, 2]])
    assert right[0] > left[0]
    assert skin.is_tissue(np.array([right, left])).tolist() == [True, False]
    outside = apply_affine(affine, [[-1, 4, 2], [7, 4, 2], [3, 9, 2], [3, 4, -1]])
    assert not skin.is_tissue(outside).any()
