import functools

import numpy as np
import pytest
import trimesh

from tmsplan.coil.placement import coil_matrix, handle_direction, place_coil
from tmsplan.errors import SpaceError
from tmsplan.spaces import Points

R = 90.0
FRAME = "T1w"


@functools.cache  # one sphere for the module (place_coil never mutates it)
def _sphere_head(radius=R):
    mesh = trimesh.creation.icosphere(subdivisions=6, radius=radius)
    return trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)


def _place(xyz, **kwargs):
    kwargs.setdefault("hemisphere_sign", float(np.sign(xyz[0])) if abs(xyz[0]) > 5 else 0.0)
    return place_coil(Points(xyz, FRAME), _sphere_head(), frame=FRAME, **kwargs)


@pytest.mark.parametrize("z", [60.0, 70.0, 80.0])
def test_sphere_vertex_target_projects_to_the_pole(z):
    placement = _place([0.0, 0.0, z])
    np.testing.assert_allclose(placement.entry.xyz, [[0, 0, R]], atol=0.4)  # facets ~1.7 mm
    assert placement.depth_mm == pytest.approx(R - z, abs=0.05)
    np.testing.assert_allclose(placement.normal, [0, 0, 1], atol=5e-3)
    pose = placement.pose.matrices[0]
    # z into the head, centre 4 mm outside the skin, handle straight back on the midline
    np.testing.assert_allclose(pose[:3, 2], [0, 0, -1], atol=5e-3)
    np.testing.assert_allclose(pose[:3, 3], [0, 0, R + 4.0], atol=0.4)
    np.testing.assert_allclose(pose[:3, 1], [0, -1, 0], atol=5e-3)
    np.testing.assert_allclose(pose[:3, 0], np.cross(pose[:3, 1], pose[:3, 2]), atol=1e-9)
    assert placement.handle_how == "midline"
    assert placement.reachable


@pytest.mark.parametrize("side", [-1.0, 1.0])
def test_lateral_target_analytic_and_mirror_symmetric(side):
    target = np.array([side * 40.0, 10.0, 60.0])
    placement = _place(target)
    expected_entry = R * target / np.linalg.norm(target)
    np.testing.assert_allclose(placement.entry.xyz[0], expected_entry, atol=0.4)
    assert placement.depth_mm == pytest.approx(R - np.linalg.norm(target), abs=0.05)
    pose = placement.pose.matrices[0]
    # coil z points from the coil centre toward the target
    to_target = target - pose[:3, 3]
    assert np.dot(pose[:3, 2], to_target / np.linalg.norm(to_target)) > 0.999
    # handle backwards and away from the midline, tangent to the scalp
    handle = pose[:3, 1]
    assert handle[1] < -0.3
    assert np.sign(handle[0]) == side
    assert abs(np.dot(handle, placement.normal)) < 1e-9
    # angle to the midsagittal plane (measured in the tangent plane) is 45 degrees
    posterior = np.array([0.0, -1.0, 0.0])
    lateral = np.array([side, 0.0, 0.0])
    n = placement.normal
    p_t = posterior - np.dot(posterior, n) * n
    l_t = lateral - np.dot(lateral, n) * n
    angle = np.degrees(
        np.arctan2(
            np.dot(handle, l_t / np.linalg.norm(l_t)), np.dot(handle, p_t / np.linalg.norm(p_t))
        )
    )
    assert 35 < angle < 55


def test_left_and_right_targets_are_mirror_images():
    left = _place([-40.0, 10.0, 60.0]).pose.matrices[0]
    right = _place([40.0, 10.0, 60.0]).pose.matrices[0]
    mirror = np.diag([-1.0, 1.0, 1.0])
    np.testing.assert_allclose(right[:3, 3], mirror @ left[:3, 3], atol=0.05)
    np.testing.assert_allclose(right[:3, 1], mirror @ left[:3, 1], atol=1e-3)
    np.testing.assert_allclose(right[:3, 2], mirror @ left[:3, 2], atol=1e-3)


def test_deep_target_is_unreachable():
    placement = _place([0.0, 0.0, 20.0])
    assert not placement.reachable
    assert "deeper than the 30 mm" in placement.unreachable_reason
    assert _place([0.0, 0.0, 20.0], max_depth_mm=80).reachable


def test_fov_floor_is_never_an_entry():
    mesh = _sphere_head()
    floor = mesh.vertices[:, 2] < -70.0  # pretend the FOV cuts the head here
    target = Points([0.0, 0.0, -60.0], FRAME)
    placement = place_coil(
        target, mesh, frame=FRAME, fov_boundary=floor, hemisphere_sign=0.0, max_depth_mm=80
    )
    assert not placement.reachable
    assert "field of view" in placement.unreachable_reason
    entry = placement.entry.xyz[0]
    assert entry[2] >= -70.5  # on skin, not on the floor


def test_target_outside_the_head():
    placement = _place([0.0, 0.0, 120.0])
    assert not placement.reachable
    assert "outside the head" in placement.unreachable_reason


def test_occipital_fallback_points_down():
    normal = np.array([0.0, -1.0, 0.0])
    handle, how = handle_direction(normal, hemisphere_sign=0.0)
    assert how == "inferior-fallback"
    np.testing.assert_allclose(handle, [0, 0, -1], atol=1e-9)


def test_frame_mismatch_refused():
    with pytest.raises(SpaceError, match="scalp surface is in 'T1w'"):
        place_coil(
            Points([0, 0, 60], "MNI152NLin6Asym"), _sphere_head(), frame=FRAME, hemisphere_sign=0
        )


def test_negative_coil_distance_refused():
    with pytest.raises(SpaceError, match="coil-skin distance"):
        _place([0.0, 0.0, 60.0], coil_skin_distance_mm=-1)


def test_coil_matrix_is_rigid_right_handed():
    mat = coil_matrix(np.array([1.0, 2, 3]), np.array([0, 0, -2.0]), np.array([0.2, -1, 0.3]))
    rot = mat[:3, :3]
    np.testing.assert_allclose(rot.T @ rot, np.eye(3), atol=1e-12)
    assert np.linalg.det(rot) == pytest.approx(1.0)


@pytest.mark.parametrize("target", [(-40.0, 10.0, 60.0), (-75.0, 0.0, 20.0), (70.0, -20.0, 30.0)])
@pytest.mark.parametrize("angle", [45.0, 30.0])
def test_handle_angle_on_the_scalp_is_exact(target, angle):
    # at lateral sites the lateral direction is nearly along the normal: the rule must
    # still give the stated angle from straight back, measured in the scalp plane
    placement = _place(np.asarray(target), handle_angle_deg=angle)
    n, handle = placement.normal, placement.handle
    back = np.array([0.0, -1.0, 0.0]) - np.dot([0.0, -1.0, 0.0], n) * n
    back /= np.linalg.norm(back)
    assert np.degrees(np.arccos(np.clip(np.dot(handle, back), -1, 1))) == pytest.approx(
        angle, abs=0.01
    )
    # turned away from the midline: toward the target's side
    away = np.cross(n, back)
    away *= np.sign(np.dot(away, [np.sign(target[0]), 0, 0]))
    assert np.dot(handle, away) > 0


def test_closest_points_on_triangles_match_trimesh():
    from tmsplan.coil.placement import _closest_on_triangles

    rng = np.random.default_rng(8)
    triangles = rng.normal(size=(400, 3, 3)) * 10.0
    triangles[:5, 2] = triangles[:5, 1]  # degenerate: two corners at one place
    for point in rng.normal(size=(20, 3)) * 15.0:
        expected = trimesh.triangles.closest_point(triangles, np.repeat(point[None], 400, axis=0))
        got = _closest_on_triangles(triangles, point)
        np.testing.assert_allclose(got[5:], expected[5:], atol=1e-9)
        # degenerate faces: a point of the face, no farther than its nearest corner
        nearest_corner = np.min(np.linalg.norm(triangles[:5] - point, axis=2), axis=1)
        assert np.all(np.linalg.norm(got[:5] - point, axis=1) <= nearest_corner + 1e-9)


def test_proximity_watertight_and_normal_agree_with_trimesh():
    from tmsplan.coil.placement import ScalpProximity, scalp_normal

    mesh = _sphere_head()
    proximity = ScalpProximity(mesh)
    assert proximity.watertight and mesh.is_watertight
    opened = trimesh.Trimesh(mesh.vertices, mesh.faces[:-1], process=False)
    assert not ScalpProximity(opened).watertight and not opened.is_watertight
    doubled = trimesh.Trimesh(mesh.vertices, np.vstack([mesh.faces, mesh.faces[:1]]), process=False)
    assert not ScalpProximity(doubled).watertight and not doubled.is_watertight
    for vertex in (0, 10, 100):
        point = mesh.vertices[vertex]
        expected = (mesh.face_normals * mesh.area_faces[:, None])[
            np.linalg.norm(mesh.triangles_center - point, axis=1) <= 12.0
        ].sum(axis=0)
        expected /= np.linalg.norm(expected)
        np.testing.assert_allclose(proximity.normal(point, radius_mm=12.0), expected, atol=1e-12)
        np.testing.assert_allclose(scalp_normal(mesh, point, radius_mm=12.0), expected, atol=1e-12)
        np.testing.assert_allclose(expected, point / np.linalg.norm(point), atol=0.02)
    assert proximity.describes(mesh) and not proximity.describes(opened)
