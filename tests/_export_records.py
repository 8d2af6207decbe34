"""Plan records with known coil poses, shared by the export tests.

Every pose is canonical (SimNIBS ``matsimnibs``: columns x, y = handle, z = into the
head, centre) in RAS+ world mm; each target's cortical point lies 25 mm and its scalp
entry 5 mm along the coil z axis from the coil centre.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np

from tmsplan.io import record as rec

RAS_AFFINE = np.array([[1.0, 0, 0, -90], [0, 1, 0, -126], [0, 0, 1, -72], [0, 0, 0, 1]])
"""A RAS-stored 1 mm affine (4, 4) with the MNI152 1 mm origin."""


def make_t1(aff=RAS_AFFINE, *, sform_code=1, qform_code=1, qform_affine=None):
    """T1 description of a 4x4x4 image with ``aff`` (qform ``qform_affine`` if given)."""
    img = nib.Nifti1Image(np.zeros((4, 4, 4), np.float32), aff)
    img.set_sform(aff, code=sform_code)
    img.set_qform(aff if qform_affine is None else qform_affine, code=qform_code)
    return rec.t1_description(img, None, None)


def random_poses(n, seed):
    """``n`` random rigid (4, 4) poses (proper rotations, centres in [-90, 90) mm)."""
    rng = np.random.default_rng(seed)
    poses = []
    for _ in range(n):
        q, r = np.linalg.qr(rng.normal(size=(3, 3)))
        q = q * np.sign(np.diag(r))
        if np.linalg.det(q) < 0:
            q[:, 0] *= -1
        mat = np.eye(4)
        mat[:3, :3] = q
        mat[:3, 3] = rng.uniform(-90, 90, 3)
        poses.append(mat)
    return poses


def make_record(poses, names=None, t1=None):
    """A plan record with one reachable target per pose (names ``T0, T1, ...`` by default)."""
    targets = []
    for i, pose in enumerate(poses):
        z, c = pose[:3, 2], pose[:3, 3]
        targets.append(
            {
                "name": names[i] if names else f"T{i}",
                "cortical_mm": (c + 25 * z).tolist(),
                "scalp_mm": (c + 5 * z).tolist(),
                "coil_matrix": pose.tolist(),
                "depth_mm": 20.0,
                "handle_direction": pose[:3, 1].tolist(),
                "coil_skin_distance_mm": 5.0,
                "reachable": True,
                "unreachable_reason": None,
            }
        )
    return {
        "tmsplan_version": "0.1.0",
        "schema_version": rec.SCHEMA_VERSION,
        "subject": "01",
        "space": "T1w",
        "t1": t1 or make_t1(),
        "roi": {},
        "activation": {},
        "targets": targets,
        "parameters": {},
        "warnings": [],
        "outputs": {},
    }


def left_pose():
    """A coil over the left hemisphere (centre x < 0), z pointing in (towards +x, down)."""
    pose = np.eye(4)
    z = np.array([0.8, 0.0, -0.6])
    y = np.array([0.0, 1.0, 0.0])
    pose[:3, :3] = np.column_stack([np.cross(y, z), y, z])
    pose[:3, 3] = [-60.0, 12.0, 45.0]
    return pose
