"""Shared test set-up and small synthetic phantoms.

VTK must render offscreen through EGL on machines without a display; the
variable has to be set before anything imports pyvista/vtk.
"""

import os

os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")

import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import trimesh  # noqa: E402

SCALP_RADIUS_MM = 90.0
BRAIN_RADIUS_MM = 75.0


def _unit(vec):
    vec = np.asarray(vec, dtype=np.float64)
    return vec / np.linalg.norm(vec)


def _sphere_mesh(radius, subdivisions=4):
    sphere = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    return trimesh.Trimesh(sphere.vertices.copy(), sphere.faces.copy(), process=False)


def _coil_matrix_on_sphere(direction, radius, coil_skin_distance):
    """Canonical coil pose over a sphere point: z = inward normal, y = tangent, backwards."""
    outward = _unit(direction)
    z = -outward
    back = np.array([0.0, -1.0, 0.0])
    y = _unit(back - back.dot(outward) * outward)
    x = np.cross(y, z)
    matrix = np.eye(4)
    matrix[:3, 0], matrix[:3, 1], matrix[:3, 2] = x, y, z
    matrix[:3, 3] = (radius + coil_skin_distance) * outward
    return matrix


def _synthetic_record(
    direction=(-0.6, 0.35, 0.72),
    depth=18.0,
    *,
    name="L-DLPFC",
    reachable=True,
    warnings=("synthetic warning: the map was thresholded at 3.1",),
    extra_targets=(),
):
    """A plan record on the sphere head (space = MNI so the ROI sphere is drawn)."""

    def target_entry(direction, depth, name, reachable):
        outward = _unit(direction)
        scalp = SCALP_RADIUS_MM * outward
        cortical = (SCALP_RADIUS_MM - depth) * outward
        matrix = _coil_matrix_on_sphere(outward, SCALP_RADIUS_MM, 4.0)
        return {
            "name": name,
            "cortical_mm": cortical.round(4).tolist(),
            "scalp_mm": scalp.round(4).tolist(),
            "coil_matrix": matrix.tolist(),
            "depth_mm": float(depth),
            "handle_direction": matrix[:3, 1].tolist(),
            "coil_skin_distance_mm": 4.0,
            "cortical_mni_mm": cortical.round(4).tolist(),
            "scalp_normal": outward.tolist(),
            "reachable": reachable,
            "unreachable_reason": None if reachable else "deeper than 30 mm",
        }

    targets = [target_entry(direction, depth, name, reachable)]
    targets += [target_entry(*extra) for extra in extra_targets]
    first = np.asarray(targets[0]["cortical_mm"])
    return {
        "tmsplan_version": "0.1.0",
        "schema_version": 1,
        "subject": "sub-phantom",
        "space": "MNI152NLin6Asym",
        "t1": {"path": None, "sha256": None},
        "roi": {
            "id": "L_DLPFC_test",
            "region": "left dorsolateral prefrontal cortex",
            "hemisphere": "L",
            "centre_mni": (first + [2.0, -1.0, 1.0]).round(3).tolist(),
            "radius_mm": 12.0,
            "citation": "Phantom et al. (2020) J Synthetic 1:1",
        },
        "activation": {
            "path": "/data/phantom_zmap.nii.gz",
            "threshold": 3.1,
            "sign": "positive",
            "rule": "peak",
            "peak_value": 6.0,
            "cluster_size_voxels": 42,
        },
        "targets": targets,
        "parameters": {
            "handle_rule": "handle 45 deg from the midsagittal plane, pointing backwards",
            "coil_skin_distance_mm": 4.0,
        },
        "conventions": {},
        "warnings": list(warnings),
        "outputs": {},
    }


def _phantom_images(record, voxel=3.0, shape=66):
    """T1, activation and ROI images on one grid around the sphere head."""
    affine = np.diag([voxel, voxel, voxel, 1.0])
    affine[:3, 3] = -0.5 * voxel * (shape - 1)
    ijk = np.indices((shape,) * 3).reshape(3, -1).T
    xyz = ijk * voxel + affine[:3, 3]
    radius = np.linalg.norm(xyz, axis=1)
    t1 = np.where(radius <= SCALP_RADIUS_MM, 80.0, 0.0)
    t1 = np.where(radius <= BRAIN_RADIUS_MM, 160.0, t1)
    # asymmetric feature: a bright "eye" on the right-anterior side only
    t1 = np.where(np.linalg.norm(xyz - [35.0, 70.0, -10.0], axis=1) < 10.0, 250.0, t1)
    target = np.asarray(record["targets"][0]["cortical_mm"])
    activation = 6.0 * np.exp(-np.sum((xyz - target) ** 2, axis=1) / (2 * 6.0**2))
    centre = np.asarray(record["roi"]["centre_mni"])
    roi = (np.linalg.norm(xyz - centre, axis=1) <= record["roi"]["radius_mm"]).astype(float)

    def image(values):
        img = nib.Nifti1Image(values.reshape((shape,) * 3), affine)
        img.set_sform(affine, code=4)
        img.set_qform(affine, code=4)
        return img

    return image(t1), image(activation), image(roi)


@pytest.fixture(scope="session")
def render_scalp():
    return _sphere_mesh(SCALP_RADIUS_MM)


@pytest.fixture(scope="session")
def render_brain():
    return _sphere_mesh(BRAIN_RADIUS_MM, subdivisions=3)


@pytest.fixture
def render_record():
    return _synthetic_record()


@pytest.fixture(scope="session")
def render_images():
    return _phantom_images(_synthetic_record())


@pytest.fixture
def synthetic_record_builder():
    return _synthetic_record


@pytest.fixture(scope="session", autouse=True)
def _head_cache(tmp_path_factory):
    """Computed heads go to a temporary cache, never to the user's ~/.cache."""
    old = os.environ.get("TMSPLAN_CACHE_DIR")
    os.environ["TMSPLAN_CACHE_DIR"] = str(tmp_path_factory.mktemp("tmsplan-cache"))
    yield
    if old is None:
        os.environ.pop("TMSPLAN_CACHE_DIR", None)
    else:
        os.environ["TMSPLAN_CACHE_DIR"] = old
