import nibabel as nib
import numpy as np
import pytest
from conftest import SCALP_RADIUS_MM, _sphere_mesh, _synthetic_record

from tmsplan.errors import ImageError, OutputExistsError, TmsplanError
from tmsplan.render import checks, group, meshes, scene
from tmsplan.render._vtk import is_blank, read_png

SIZE = (400, 400)


def _blob_img(affine_kind="RAS"):
    """Asymmetric phantom: a big blob on the left, a small one on the right-front."""
    shape = (40, 40, 40)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = -39.0
    ijk = np.indices(shape).reshape(3, -1).T
    xyz = ijk * 2.0 + affine[:3, 3]
    data = np.exp(-np.sum((xyz - [-15.0, 5.0, 0.0]) ** 2, axis=1) / (2 * 6.0**2))
    data += 0.8 * np.exp(-np.sum((xyz - [20.0, 15.0, 5.0]) ** 2, axis=1) / (2 * 3.0**2))
    data = data.reshape(shape)
    if affine_kind == "RAS":
        return nib.Nifti1Image(data, affine)
    flip = {"LAS": [0], "LPS": [0, 1]}[affine_kind]
    new_affine = affine.copy()
    for axis in flip:
        data = np.flip(data, axis=axis)
        new_affine[:3, axis] *= -1
        new_affine[axis, 3] = affine[axis, 3] + affine[axis, axis] * (shape[axis] - 1)
    return nib.Nifti1Image(np.ascontiguousarray(data), new_affine)


def _sorted_points(poly):
    points = np.asarray(poly.points)
    return points[np.lexsort(points.T[::-1])]


def test_isosurface_is_the_same_world_surface_for_ras_las_lps():
    ras = meshes.isosurface_from_img(_blob_img("RAS"), 0.5)
    centroid = np.asarray(ras.points).mean(axis=0)
    # the big blob (left, x = -15) dominates; the small right blob is also above 0.5
    assert ras.n_cells > 100
    assert centroid[0] < 0
    for kind in ("LAS", "LPS"):
        other = meshes.isosurface_from_img(_blob_img(kind), 0.5)
        assert other.n_points == ras.n_points
        np.testing.assert_allclose(_sorted_points(other), _sorted_points(ras), atol=1e-4)
        # normals stay outward whatever the storage order: the volume is positive
        assert other.volume == pytest.approx(ras.volume, rel=1e-6)
        assert other.volume > 0


def test_isosurface_bounds_match_analytic_sphere():
    shape = (41, 41, 41)
    affine = np.diag([1.0, 1.0, 1.0, 1.0])
    affine[:3, 3] = -20.0
    xyz = np.indices(shape).reshape(3, -1).T - 20.0
    data = (np.linalg.norm(xyz - [-5.0, 0.0, 0.0], axis=1) - 10.0).reshape(shape) * -1
    surface = meshes.isosurface_from_img(nib.Nifti1Image(data, affine), 0.0)
    radius = np.linalg.norm(np.asarray(surface.points) - [-5.0, 0.0, 0.0], axis=1)
    np.testing.assert_allclose(radius, 10.0, atol=0.05)


def test_isosurface_without_voxels_above_level_is_a_clear_error():
    with pytest.raises(ImageError, match="no voxel reaches 5"):
        meshes.isosurface_from_img(_blob_img(), 5.0, name="--activation")


def _random_pose(rng):
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    pose = np.eye(4)
    pose[:3, :3] = q
    pose[:3, 3] = rng.normal(scale=50.0, size=3)
    return pose


def test_coil_body_lies_outside_along_minus_z_and_handle_along_y():
    pose = _random_pose(np.random.default_rng(0))
    coil = meshes.coil_meshes(pose)
    local_body = (np.asarray(coil["body"].points) - pose[:3, 3]) @ pose[:3, :3]
    # body: z in [-thickness, 0] (outside the head), wings side by side along x
    assert local_body[:, 2].min() == pytest.approx(-meshes.COIL_THICKNESS_MM, abs=1e-4)
    assert local_body[:, 2].max() == pytest.approx(0.0, abs=1e-4)
    r = meshes.COIL_WING_RADIUS_MM
    assert local_body[:, 0].min() == pytest.approx(-2 * r, abs=0.1)
    assert local_body[:, 0].max() == pytest.approx(2 * r, abs=0.1)
    assert np.abs(local_body[:, 1]).max() == pytest.approx(r, abs=0.1)
    local_handle = (np.asarray(coil["handle"].points) - pose[:3, 3]) @ pose[:3, :3]
    assert local_handle[:, 1].min() > 0  # the handle leaves the body along +y only
    assert local_handle[:, 1].max() == pytest.approx(
        0.5 * meshes.COIL_INNER_RADIUS_MM + meshes.HANDLE_LENGTH_MM, abs=1e-4
    )
    np.testing.assert_allclose(local_handle[:, 0].mean(), 0.0, atol=1e-4)


def test_scene_geometry_of_the_synthetic_plan(render_scalp, render_record):
    (info,) = checks.scene_geometry(render_record, render_scalp)
    assert info["entry_to_scalp_mm"] < 0.5
    assert info["coil_z_dot_outward"] < -0.999  # coil z points straight into the head
    matrix = np.asarray(render_record["targets"][0]["coil_matrix"])
    np.testing.assert_allclose(info["handle_drawn"], matrix[:3, 1], atol=1e-9)
    assert info["handle_dot_y"] == pytest.approx(1.0, abs=1e-9)
    # coil-skin distance 4 mm on a sphere: the flat coil clears by at least ~4 mm
    assert info["coil_clearance_mm"] == pytest.approx(4.0, abs=0.2)
    assert info["problems"] == []


def test_scene_geometry_flags_a_coil_pointing_out_of_the_head(render_scalp):
    record = _synthetic_record()
    matrix = np.asarray(record["targets"][0]["coil_matrix"])
    flipped = matrix @ np.diag([-1.0, 1.0, -1.0, 1.0])  # 180 deg about y: z now points out
    record["targets"][0]["coil_matrix"] = flipped.tolist()
    (info,) = checks.scene_geometry(record, render_scalp)
    assert info["coil_z_dot_outward"] > 0.999
    assert info["coil_clearance_mm"] < -2.0
    assert any("does not point into the head" in p for p in info["problems"])
    assert any("inside the scalp" in p for p in info["problems"])


def test_scene_geometry_flags_an_entry_off_the_scalp(render_scalp):
    record = _synthetic_record()
    record["targets"][0]["scalp_mm"] = (
        np.asarray(record["targets"][0]["scalp_mm"]) * 1.05
    ).tolist()
    (info,) = checks.scene_geometry(record, render_scalp)
    assert info["entry_to_scalp_mm"] == pytest.approx(0.05 * SCALP_RADIUS_MM, abs=0.1)
    assert any("off the scalp" in p for p in info["problems"])


@pytest.fixture(scope="module")
def plotter(render_images, render_brain, render_scalp):
    record = _synthetic_record()
    _, activation, roi = render_images
    plotter = scene.plan_plotter(
        record,
        render_scalp,
        brain_mesh=render_brain,
        activation_img=activation,
        roi_img=roi,
        landmarks={"Cz": [0.0, 0.0, SCALP_RADIUS_MM], "F3": [-45.0, 45.0, 56.0]},
        window_size=SIZE,
    )
    yield record, plotter
    plotter.close()


def _is_greenish(pixel):
    r, g, b = (int(v) for v in pixel)
    return g >= 150 and g > 1.5 * r and g > 1.5 * b


@pytest.mark.parametrize(
    ("view", "side"),
    [("left", None), ("top", "left"), ("front", "right"), ("back", "left"), ("coil", None)],
)
def test_target_is_drawn_green_where_it_projects(plotter, view, side):
    record, plot = plotter
    scene.set_view(plot, view, record=record)
    image = np.asarray(plot.screenshot(return_img=True))[..., :3]
    assert image.shape == (SIZE[1], SIZE[0], 3)
    assert not is_blank(image)
    col, row = scene.project_to_screen(plot, record["targets"][0]["cortical_mm"])
    assert 0 <= col < SIZE[0] and 0 <= row < SIZE[1]
    assert _is_greenish(image[row, col]), image[row, col]
    # the target is on the patient's LEFT (x < 0): where that lands in each view
    if side == "left":
        assert col < SIZE[0] // 2
    elif side == "right":
        assert col > SIZE[0] // 2
    # far from the target the picture is not green
    assert not _is_greenish(image[row, (col + SIZE[0] // 2) % SIZE[0]])


def test_coil_view_shows_the_handle_pointing_up(plotter):
    record, plot = plotter
    scene.set_view(plot, "coil", record=record)
    matrix = np.asarray(record["targets"][0]["coil_matrix"])
    centre = scene.project_to_screen(plot, matrix[:3, 3])
    handle_end = scene.project_to_screen(plot, matrix[:3, 3] + 80.0 * matrix[:3, 1])
    assert handle_end[1] < centre[1] - 50  # up in the picture
    assert abs(handle_end[0] - centre[0]) <= 2
    image = np.asarray(plot.screenshot(return_img=True))[..., :3]
    r, g, b = (int(v) for v in image[handle_end[1], handle_end[0]])
    assert b > r + 40 and b > g + 20  # the dark-blue handle is drawn there


def test_render_views_writes_pngs_and_refuses_to_overwrite(tmp_path, render_scalp, render_record):
    written = scene.render_views(
        render_record, render_scalp, tmp_path, views=("right", "coil"), window_size=SIZE
    )
    assert set(written) == {"right", "coil"}
    for path in written.values():
        image = read_png(path.read_bytes())
        assert image.shape == (SIZE[1], SIZE[0], 3)
        assert not is_blank(image)
    with pytest.raises(OutputExistsError):
        scene.render_views(render_record, render_scalp, tmp_path, views=("right",))
    with pytest.raises(ValueError, match="sideways"):
        scene.render_views(render_record, render_scalp, tmp_path / "x", views=("sideways",))


def test_group_picture(tmp_path, render_scalp):
    points = np.array([[-40.0, 30.0, 50.0], [42.0, 28.0, 48.0], [-35.0, 40.0, 45.0]])
    out = group.render_group(
        points, ["sub-01", "sub-02", "sub-03"], render_scalp, tmp_path / "g.png", window_size=SIZE
    )
    assert not is_blank(read_png(out.read_bytes()))
    with pytest.raises(ValueError, match="2 labels for 3 points"):
        group.group_plotter(points, ["a", "b"], render_scalp)


def test_view_without_a_display_says_to_use_the_report(monkeypatch, render_scalp, render_record):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(TmsplanError, match=r"no display found.*report\.html"):
        scene.view(render_record, render_scalp)


def test_sphere_scalp_builder_is_outward(render_scalp):
    # the phantom's normals point outward (the scene relies on it)
    centres = render_scalp.triangles_center
    assert np.all(np.einsum("ij,ij->i", render_scalp.face_normals, centres) > 0)
    assert _sphere_mesh(10.0, 1).is_watertight


def test_every_listed_layer_is_in_the_scene(plotter):
    _, plot = plotter
    expected = plot._tmsplan_layers
    for layer in ("scalp", "brain", "activation", "roi", "target-0", "entry-0", "coil-0"):
        assert layer in expected
    scene.check_layers(plot, expected)  # all there, visible, with points


def test_a_picture_missing_a_layer_fails(tmp_path, render_scalp, render_brain, monkeypatch):
    from tmsplan.errors import RenderError

    record = _synthetic_record()
    real = scene._screenshot

    def screenshot_losing_the_brain(plot):
        plot.remove_actor("brain")  # as if the brain surface had not been drawn
        return real(plot)

    monkeypatch.setattr(scene, "_screenshot", screenshot_losing_the_brain)
    with pytest.raises(RenderError, match="lacks layer brain"):
        scene.render_views(record, render_scalp, tmp_path, views=("left",), brain_mesh=render_brain)
    assert list(tmp_path.iterdir()) == []
