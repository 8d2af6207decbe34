"""Tests of tmsplan.head.scalp: scalp surface from a T1, on phantoms with analytic answers."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import trimesh
from scipy import ndimage

from tmsplan.errors import HeadSurfaceError, ImageError
from tmsplan.head.scalp import ScalpSurface, head_mask_img, scalp_surface, surface_from_mask
from tmsplan.io import bundled

# --------------------------------------------------------------------------- builders


def _affine(shape, zooms, order="RAS", rotation_deg=0.0, centre=(0.0, 0.0, 0.0)):
    """Voxel -> world affine whose central voxel sits at ``centre``.

    ``order`` gives the world direction of increasing voxel axes: "RAS", "LAS"
    (x flipped) or "LPS" (x and y flipped); ``rotation_deg`` rotates the grid
    about the world x then z axis (oblique acquisition).
    """
    flips = {"RAS": (1, 1, 1), "LAS": (-1, 1, 1), "LPS": (-1, -1, 1)}[order]
    a = np.deg2rad(rotation_deg)
    rot_x = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    rot_z = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    linear = rot_z @ rot_x @ np.diag(np.asarray(zooms, float) * flips)
    affine = np.eye(4)
    affine[:3, :3] = linear
    affine[:3, 3] = np.asarray(centre, float) - linear @ ((np.asarray(shape) - 1) / 2)
    return affine


def _world_grid(shape, affine):
    ijk = np.indices(shape, dtype=np.float64).reshape(3, -1).T
    return (ijk @ affine[:3, :3].T + affine[:3, 3]).reshape(tuple(shape) + (3,))


def _edge(sd, width):
    """Partial-volume ramp: 1 inside (sd < 0), 0 outside, linear across one voxel."""
    return np.clip(0.5 - sd / width, 0.0, 1.0)


def _image(data, affine):
    img = nib.Nifti1Image(data.astype(np.float32), affine)
    img.set_sform(affine, code=1)
    img.set_qform(affine, code=1)
    return img


def _sphere_img(radius=40.0, size=100, zoom=1.0, order="RAS", noise=0.01, seed=0):
    shape = (size,) * 3
    affine = _affine(shape, (zoom,) * 3, order)
    xyz = _world_grid(shape, affine)
    sd = np.linalg.norm(xyz, axis=-1) - radius
    background = 0.05
    data = background + (1.0 - background) * _edge(sd, zoom)
    if noise:
        rng = np.random.default_rng(seed)
        data = np.hypot(data + rng.normal(0, noise, shape), rng.normal(0, noise, shape))
    return _image(data, affine)


# Asymmetric head: ellipsoid + nose (+y) + one ear (+x only) + neck cut by the floor.
_HEAD_AXES = np.array([60.0, 75.0, 65.0])
_EAR = (np.array([62.0, 0.0, 0.0]), 12.0)
_NOSE = (np.array([0.0, 74.0, -10.0]), 10.0)
_NECK_RADIUS = 38.0
_FLOOR_Z = -76.0  # world z of the bottom face of the field of view
_AIRWAY = (np.array([0.0, 15.0]), 6.0, -20.0)  # axis (x, y), radius, top z
_SINUS = (np.array([0.0, 30.0, -20.0]), 14.0)


def _head_sd(xyz):
    """Approximate signed distance (mm) to the asymmetric head phantom's skin."""
    scaled = np.linalg.norm(xyz / _HEAD_AXES, axis=-1)
    ellipsoid = (scaled - 1.0) * _HEAD_AXES.min()
    ear = np.linalg.norm(xyz - _EAR[0], axis=-1) - _EAR[1]
    nose = np.linalg.norm(xyz - _NOSE[0], axis=-1) - _NOSE[1]
    neck = np.maximum(np.hypot(xyz[..., 0], xyz[..., 1]) - _NECK_RADIUS, xyz[..., 2] + 20.0)
    return np.minimum.reduce([ellipsoid, ear, nose, neck])


def _cavity_sd(xyz):
    """Signed distance to the air cavity: an airway from the floor into a sinus."""
    (axis, radius, top), (centre, sinus_r) = _AIRWAY, _SINUS
    airway = np.maximum(
        np.hypot(xyz[..., 0] - axis[0], xyz[..., 1] - axis[1]) - radius, xyz[..., 2] - top
    )
    sinus = np.linalg.norm(xyz - centre, axis=-1) - sinus_r
    return np.minimum(airway, sinus)


def _head_img(
    order="RAS",
    zooms=(2.0, 2.0, 2.0),
    rotation_deg=0.0,
    cavity=False,
    noise=0.03,
    seed=1,
):
    """Asymmetric T1-like head: bright scalp, dark skull, grey brain, noisy background.

    The field of view is 160 x 190 x 160 mm (bottom face at z = _FLOOR_Z) so the
    neck reaches the floor.
    """
    extent = np.array([160.0, 190.0, 160.0])
    zooms = np.asarray(zooms, float)
    shape = tuple(int(round(e / z)) for e, z in zip(extent, zooms, strict=True))
    centre = (0.0, 0.0, _FLOOR_Z + extent[2] / 2)
    if rotation_deg:
        shape = tuple(int(round(1.25 * e / z)) for e, z in zip(extent, zooms, strict=True))
    affine = _affine(shape, zooms, order, rotation_deg, centre)
    xyz = _world_grid(shape, affine)
    sd = _head_sd(xyz)
    width = float(zooms.mean())
    background = 0.05
    scalp = _edge(sd, width)
    skull = _edge(sd + 5.0, width)
    brain = _edge(sd + 10.0, width)
    data = background + (1.0 - background) * scalp - 0.85 * skull + 0.55 * brain
    if cavity:
        air = _edge(_cavity_sd(xyz), width)
        data = data * (1 - air) + background * air
    if rotation_deg:  # the image box is larger than the head: cut the floor explicitly
        data[xyz[..., 2] < _FLOOR_Z] = background
    rng = np.random.default_rng(seed)
    data = np.hypot(data + rng.normal(0, noise, shape), rng.normal(0, noise, shape))
    return _image(data, affine)


def _surface_distance(a: trimesh.Trimesh, b: trimesh.Trimesh, n=1500, seed=0):
    """Symmetric max distance (mm) from sampled vertices of each mesh to the other surface."""
    rng = np.random.default_rng(seed)
    worst = 0.0
    for src, dst in ((a, b), (b, a)):
        pick = rng.choice(len(src.vertices), size=min(n, len(src.vertices)), replace=False)
        _, distance, _ = trimesh.proximity.closest_point(dst, src.vertices[pick])
        worst = max(worst, float(distance.max()))
    return worst


def _check_on_phantom_skin(vertices):
    """Vertices lie on the phantom skin: within 0.3 mm typically, 1.5 mm in the creases.

    (The ear/head crease is concave; smoothing bridges it by up to ~1 mm.)
    """
    sd = np.abs(_head_sd(vertices[np.abs(vertices[:, 2]) < 40]))
    assert np.median(sd) < 0.3
    assert np.percentile(sd, 99) < 1.0
    assert sd.max() < 1.5


def _check_closed_outward(mesh: trimesh.Trimesh):
    assert mesh.is_watertight
    assert mesh.is_winding_consistent
    assert mesh.body_count == 1
    assert mesh.volume > 0


# --------------------------------------------------------------------------- sphere


@pytest.mark.parametrize("working_mm", [2.0, None])
def test_sphere_radius_and_outward_normals(working_mm):
    radius = 40.0
    result = scalp_surface(_sphere_img(radius), working_mm=working_mm)
    assert isinstance(result, ScalpSurface)
    mesh = result.mesh
    _check_closed_outward(mesh)
    radii = np.linalg.norm(mesh.vertices, axis=1)
    assert np.abs(radii - radius).max() < 0.5  # half a voxel
    assert abs(radii.mean() - radius) < 0.2
    # every face normal points away from the centre
    assert np.all(np.einsum("ij,ij->i", mesh.face_normals, mesh.triangles_center) > 0)
    assert not result.fov_boundary.any()
    assert result.fov_boundary.shape == (len(mesh.vertices),)
    assert result.fov_boundary.dtype == bool
    assert result.frame == "T1w"
    assert result.defaced is False


def test_sphere_with_noisy_background():
    radius = 40.0
    result = scalp_surface(_sphere_img(radius, noise=0.12, seed=3))
    _check_closed_outward(result.mesh)
    radii = np.linalg.norm(result.mesh.vertices, axis=1)
    assert np.abs(radii - radius).max() < 1.0
    assert abs(radii.mean() - radius) < 0.4


def test_target_faces_bounds_the_mesh():
    result = scalp_surface(_sphere_img(), target_faces=2000)
    assert len(result.mesh.faces) <= 2000
    _check_closed_outward(result.mesh)


def test_input_image_not_modified():
    img = _sphere_img()
    before = np.asarray(img.dataobj).copy()
    scalp_surface(img, frame="MNI152NLin6Asym")
    np.testing.assert_array_equal(np.asarray(img.dataobj), before)


# --------------------------------------------------------------------------- head phantoms


@pytest.fixture(scope="module")
def ras_head():
    return scalp_surface(_head_img("RAS"), target_faces=20000)


def test_neck_floor_is_one_closed_surface_and_only_floor_flagged(ras_head):
    mesh, fov = ras_head.mesh, ras_head.fov_boundary
    _check_closed_outward(mesh)
    z = mesh.vertices[:, 2]
    floor = _FLOOR_Z  # box face: voxel centres start one half voxel above
    assert fov.any()
    assert z.min() >= floor - 1e-6  # the surface closes on the box face
    assert np.all(z[fov] <= floor + 2.0 + 1e-6)  # flagged: within one voxel (2 mm)
    assert np.all(fov[z <= floor + 0.5])  # the whole floor is flagged
    # the floor is the neck's cross-section: a disc of the neck radius
    floor_xy = mesh.vertices[z <= floor + 0.5, :2]
    assert np.linalg.norm(floor_xy, axis=1).max() < _NECK_RADIUS + 1.0
    assert any("bottom" in note for note in ras_head.notes)


def test_asymmetric_phantom_keeps_left_right(ras_head):
    v = ras_head.mesh.vertices
    # the ear is on the right (+x) only, the nose on the front (+y)
    assert v[:, 0].max() > _EAR[0][0] + _EAR[1] - 1.5
    assert -v[:, 0].min() < _HEAD_AXES[0] + 1.5
    assert v[:, 1].max() > _NOSE[0][1] + _NOSE[1] - 1.5


def test_head_surface_matches_phantom_skin(ras_head):
    v = ras_head.mesh.vertices[~ras_head.fov_boundary]
    _check_on_phantom_skin(v)


@pytest.mark.slow
@pytest.mark.parametrize("order", ["LAS", "LPS"])
def test_voxel_order_does_not_change_world_surface(ras_head, order):
    other = scalp_surface(_head_img(order), target_faces=20000)
    _check_closed_outward(other.mesh)
    assert _surface_distance(ras_head.mesh, other.mesh) < 1.0  # half a 2 mm voxel
    assert other.mesh.vertices[:, 0].max() > _EAR[0][0] + _EAR[1] - 1.5  # ear still right
    np.testing.assert_allclose(other.mesh.volume, ras_head.mesh.volume, rtol=0.005)
    assert other.fov_boundary.sum() == pytest.approx(ras_head.fov_boundary.sum(), rel=0.1)


@pytest.mark.slow
def test_oblique_affine(ras_head):
    oblique = scalp_surface(_head_img("RAS", rotation_deg=20.0), target_faces=20000)
    _check_closed_outward(oblique.mesh)
    v = oblique.mesh.vertices[oblique.mesh.vertices[:, 2] > _FLOOR_Z + 6]
    _check_on_phantom_skin(v)


@pytest.mark.slow
def test_anisotropic_voxels(ras_head):
    aniso = scalp_surface(_head_img("LPS", zooms=(1.0, 1.0, 2.0)), target_faces=20000)
    _check_closed_outward(aniso.mesh)
    assert _surface_distance(ras_head.mesh, aniso.mesh) < 1.0
    assert aniso.fov_boundary.any()
    assert np.all(aniso.mesh.vertices[aniso.fov_boundary, 2] <= _FLOOR_Z + 2.0 + 1e-6)


@pytest.mark.slow
def test_cavity_open_through_neck_floor_gives_no_inner_surface():
    result = scalp_surface(_head_img("LPS", cavity=True), target_faces=20000)
    mesh = result.mesh
    _check_closed_outward(mesh)
    v = mesh.vertices
    above_floor = v[:, 2] > _FLOOR_Z + 1.0
    assert np.all(_cavity_sd(v[above_floor]) > 0.0)  # no vertex inside the air cavity
    # and the volume is the full head, cavity included (within 1 %)
    solid = scalp_surface(_head_img("LPS", cavity=False), target_faces=20000)
    np.testing.assert_allclose(mesh.volume, solid.mesh.volume, rtol=0.01)


@pytest.mark.slow
def test_head_mask_img_fills_cavities_on_t1_grid():
    img = _head_img("LAS", cavity=True)
    mask = head_mask_img(img)
    assert mask.shape == img.shape
    np.testing.assert_array_equal(mask.affine, img.affine)
    assert mask.get_data_dtype() == np.uint8
    data = np.asarray(mask.dataobj)
    assert set(np.unique(data)) == {0, 1}
    xyz = _world_grid(img.shape, img.affine)
    deep_cavity = (_cavity_sd(xyz) < -2.0) & (xyz[..., 2] > _FLOOR_Z + 2)
    assert data[deep_cavity].all()
    assert not data[_head_sd(xyz) > 2.0].any()
    assert ndimage.label(data)[1] == 1


def test_head_mask_volume_of_sphere():
    radius = 40.0
    mask = head_mask_img(_sphere_img(radius))
    volume = np.asarray(mask.dataobj).sum() * 1.0
    assert volume == pytest.approx(4 / 3 * np.pi * radius**3, rel=0.02)


# --------------------------------------------------------------------------- errors


def test_flat_image_has_no_head():
    img = _image(np.full((30, 30, 30), 7.0), np.eye(4))
    with pytest.raises(HeadSurfaceError, match="no head found"):
        scalp_surface(img)


def test_small_blob_is_not_a_head():
    img = _sphere_img(radius=15.0, size=60, noise=0.05)
    with pytest.raises(HeadSurfaceError, match="no head found"):
        scalp_surface(img)


def test_zero_image_is_rejected_by_the_gate():
    with pytest.raises(ImageError, match="^t1"):
        scalp_surface(_image(np.zeros((10, 10, 10)), np.eye(4)))


def test_bad_arguments():
    with pytest.raises(ValueError, match="frame"):
        scalp_surface(_sphere_img(), frame="")
    with pytest.raises(ValueError, match="target_faces"):
        scalp_surface(_sphere_img(), target_faces=10)


# --------------------------------------------------------------------------- surface_from_mask


@pytest.mark.parametrize("order", ["RAS", "LPS"])
def test_surface_from_mask_sphere(order):
    radius = 20.0
    shape = (60, 60, 60)
    affine = _affine(shape, (1.0, 1.0, 1.0), order, centre=(5.0, -3.0, 2.0))
    xyz = _world_grid(shape, affine)
    inside = np.linalg.norm(xyz - [5.0, -3.0, 2.0], axis=-1) <= radius
    mesh = surface_from_mask(_image(inside.astype(np.uint8), affine), frame="T1w")
    _check_closed_outward(mesh)
    radii = np.linalg.norm(mesh.vertices - [5.0, -3.0, 2.0], axis=1)
    assert np.abs(radii - radius).max() < 0.75
    centres = mesh.triangles_center - [5.0, -3.0, 2.0]
    assert np.all(np.einsum("ij,ij->i", mesh.face_normals, centres) > 0)


def test_surface_from_mask_empty():
    with pytest.raises(HeadSurfaceError, match="empty"):
        surface_from_mask(_image(np.zeros((10, 10, 10)), np.eye(4)), frame="T1w")


# --------------------------------------------------------------------------- bundled MNI head


def _brain_distance(points, resolution):
    """Distance (mm) of world points outside the bundled brain mask (0 inside)."""
    brain = bundled.load_mni_brain_mask(resolution)
    inside = np.asarray(brain.dataobj) > 0.5
    distance = ndimage.distance_transform_edt(~inside, sampling=brain.header.get_zooms()[:3])
    ijk = np.linalg.inv(brain.affine) @ np.c_[points, np.ones(len(points))].T
    return ndimage.map_coordinates(distance, ijk[:3], order=1)


def _check_mni_scalp(result: ScalpSurface, resolution: int):
    mesh, fov = result.mesh, result.fov_boundary
    _check_closed_outward(mesh)
    assert result.frame == "MNI152NLin6Asym"
    v = mesh.vertices
    # outward: normals point away from the head's centroid almost everywhere
    outward = np.einsum("ij,ij->i", mesh.face_normals, mesh.triangles_center - v.mean(0)) > 0
    assert outward.mean() > 0.95
    upper = v[(v[:, 2] > 20) & (v[:, 2] < 60)]
    assert 130 < np.ptp(upper[:, 0]) < 170  # head width above the ears
    assert 170 < np.ptp(v[:, 1]) < 220  # length
    face = v[(v[:, 2] > -40) & (v[:, 2] < 0)]
    nose = face[np.argmax(face[:, 1])]
    assert abs(nose[0]) < 10 and nose[1] > 75  # nose to +y near x = 0
    assert fov.any()
    # only the neck floor (box bottom at z = -72 - res/2), and at 2 mm the chin, which
    # touches the front face of that smaller box (y = 91)
    assert np.all((v[fov, 2] < -70) | ((v[fov, 1] > 88) & (v[fov, 2] < -55)))
    assert np.all(fov[v[:, 2] <= -72.0])
    assert np.all(_brain_distance(v[~fov], resolution) >= 5.0)
    assert result.defaced is False


@pytest.mark.slow
def test_mni_head_2mm():
    result = scalp_surface(bundled.load_mni_head(2), frame="MNI152NLin6Asym")
    _check_mni_scalp(result, 2)


@pytest.mark.slow
def test_mni_head_1mm():
    result = scalp_surface(bundled.mni_head_path(1), frame="MNI152NLin6Asym")
    _check_mni_scalp(result, 1)


def _defaced(img):
    data = np.asarray(img.dataobj, dtype=np.float32).copy()
    xyz = _world_grid(img.shape, img.affine)
    data[(xyz[..., 1] > 20) & (xyz[..., 2] < 15)] = 0  # anterior-inferior block: the face
    return _image(data, img.affine)


@pytest.mark.slow
def test_defaced_mni_head_is_detected():
    result = scalp_surface(_defaced(bundled.load_mni_head(2)), frame="MNI152NLin6Asym")
    assert result.defaced is True
    _check_closed_outward(result.mesh)
    assert any("defaced" in note for note in result.notes)
    # the defacing cut is flagged as not skin, the top of the head is not
    v = result.mesh.vertices
    on_cut = (np.abs(v[:, 1] - 20) < 1.5) & (v[:, 2] < 10) & (v[:, 2] > -60)
    assert on_cut.sum() > 100
    assert result.fov_boundary[on_cut].mean() > 0.9
    assert not result.fov_boundary[v[:, 2] > 30].any()


@pytest.mark.slow
def test_skull_stripped_image_is_refused():
    head = bundled.load_mni_head(2)
    brain = np.asarray(bundled.load_mni_brain_mask(2).dataobj) > 0.5
    stripped = _image(np.asarray(head.dataobj, dtype=np.float32) * brain, head.affine)
    with pytest.raises(HeadSurfaceError, match="skull-stripped"):
        scalp_surface(stripped)
    with pytest.raises(HeadSurfaceError, match="before brain extraction"):
        head_mask_img(stripped)


@pytest.mark.slow
def test_real_brain_mask_surface_stays_closed_after_decimation():
    # quadric decimation pinches the 1 mm MNI brain mask's thin parts into non-manifold
    # edges at 60k faces; the surface must still come out closed
    from tmsplan.io.bundled import load_mni_brain_mask

    mesh = surface_from_mask(load_mni_brain_mask(1), frame="MNI152NLin6Asym", target_faces=60000)
    assert mesh.is_watertight
    assert mesh.volume > 1.0e6  # a brain: > 1 litre
