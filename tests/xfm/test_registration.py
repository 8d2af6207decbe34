"""Built-in MNI -> T1 registration on a synthetic patient with a known transform.

The synthetic patient is the bundled 2 mm MNI head resampled under a known
rigid + scaling transform ``M``; the registration must recover ``M`` at MNI
points (< 3 mm), write files that read back to the same mapping, and refuse
images that are not a head with scalp in a sane orientation.
"""

import json

import nibabel as nib
import numpy as np
import pytest
from _phantoms import restore
from scipy import ndimage
from scipy.spatial.transform import Rotation

from tmsplan.errors import ImageError, OutputExistsError, RegistrationError
from tmsplan.io.bundled import load_mni_brain_mask, load_mni_head
from tmsplan.spaces import Points
from tmsplan.xfm.registration import register_mni_to_t1
from tmsplan.xfm.transforms import MniToSubject, load_mni_to_subject

MNI_POINTS = np.array(
    [[-42.0, 36.0, 28.0], [44.0, 30.0, 30.0], [0.0, -60.0, 40.0], [-20.0, -10.0, -20.0]]
)


def _known_mni_to_t1():
    rot = Rotation.from_euler("xyz", [-6.0, 7.0, -10.0], degrees=True).as_matrix()
    matrix = np.eye(4)
    matrix[:3, :3] = rot @ np.diag([0.96, 1.04, 1.02])
    matrix[:3, 3] = [-6.0, 14.0, 30.0]
    return matrix


def _apply(matrix, xyz):
    return np.asarray(xyz) @ matrix[:3, :3].T + matrix[:3, 3]


def _synthetic_patient(mni_to_t1, voxel=2.0, source=None):
    """The MNI head (or ``source``) seen through ``mni_to_t1`` on a RAS grid around it."""
    head = load_mni_head(2) if source is None else source
    corners = np.array(np.meshgrid(*[[0, n - 1] for n in head.shape])).reshape(3, -1).T
    t1_corners = _apply(mni_to_t1 @ head.affine, corners)
    low = t1_corners.min(axis=0) - 6.0
    shape = tuple(int(n) for n in np.ceil((t1_corners.max(axis=0) + 6.0 - low) / voxel) + 1)
    affine = np.diag([voxel, voxel, voxel, 1.0])
    affine[:3, 3] = low
    world = _apply(affine, np.indices(shape).reshape(3, -1).T)
    vox = _apply(np.linalg.inv(head.affine) @ np.linalg.inv(mni_to_t1), world)
    data = ndimage.map_coordinates(head.get_fdata(), vox.T, order=1, cval=0.0)
    img = nib.Nifti1Image(data.reshape(shape), affine)
    img.set_sform(affine, code=1)
    img.set_qform(affine, code=1)
    return img


@pytest.fixture(scope="module")
def known():
    return _known_mni_to_t1()


@pytest.fixture(scope="module")
def patient_lps(known):
    return restore(_synthetic_patient(known), "LPS")


# ----------------------------------------------------------------- fast refusals


def test_four_d_t1_refused():
    four_d = nib.Nifti1Image(np.ones((8, 8, 8, 3)), np.eye(4))
    with pytest.raises(ImageError, match="4-D"):
        register_mni_to_t1(four_d)


def test_brain_extracted_t1_refused_before_registering(known, patient_lps):
    brain = MniToSubject.from_matrix(known).resample_to_subject(
        load_mni_brain_mask(2), patient_lps, interpolation="nearest"
    )
    stripped = nib.Nifti1Image(patient_lps.get_fdata() * brain.get_fdata(), patient_lps.affine)
    with pytest.raises(RegistrationError, match="brain-extracted"):
        register_mni_to_t1(stripped)


def test_sheared_t1_refused(patient_lps):
    affine = patient_lps.affine.copy()
    affine[:3, :3] = affine[:3, :3] @ np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.2], [0.0, 0.0, 1.0]])
    sheared = nib.Nifti1Image(patient_lps.get_fdata(), affine)
    with pytest.raises(RegistrationError, match="sheared"):
        register_mni_to_t1(sheared)


def test_bad_arguments(patient_lps):
    with pytest.raises(ValueError, match="kind"):
        register_mni_to_t1(patient_lps, kind="rigid")
    with pytest.raises(ValueError, match="template_resolution"):
        register_mni_to_t1(patient_lps, template_resolution=3)
    with pytest.raises(ValueError, match="threads"):
        register_mni_to_t1(patient_lps, threads=0)


# ----------------------------------------------------------------- real registrations


@pytest.mark.slow
def test_affine_registration_recovers_known_transform(tmp_path, known, patient_lps):
    result = register_mni_to_t1(patient_lps)
    xfm = result.mni_to_subject
    assert xfm.kind == "ants-registration" and xfm.is_linear
    t1 = xfm.apply_points(Points(MNI_POINTS, "MNI152NLin6Asym"))
    errors = np.linalg.norm(t1.xyz - _apply(known, MNI_POINTS), axis=1)
    assert errors.max() < 3.0, errors
    np.testing.assert_allclose(xfm.inverse_points(t1).xyz, MNI_POINTS, atol=1e-6)
    assert result.quality["head_dice"] > 0.95
    assert result.quality["nmi"] > 1.3
    desc = result.describe()
    json.dumps(desc)
    assert desc["settings"]["seed"] == result.settings["seed"]
    assert desc["transform"]["direction"] == "mni_to_subject"

    written = result.save(tmp_path / "plan")
    assert [p.name for p in written] == ["from-MNI152NLin6Asym_to-T1w_mode-image_xfm.mat"]
    reloaded = load_mni_to_subject(written[0], reference=patient_lps)
    assert reloaded.sha256 == xfm.sha256
    np.testing.assert_allclose(
        reloaded.apply_points(Points(MNI_POINTS, "MNI152NLin6Asym")).xyz, t1.xyz, atol=1e-6
    )
    with pytest.raises(OutputExistsError):
        result.save(tmp_path / "plan")


@pytest.mark.slow
def test_registration_is_reproducible(known):
    small = _synthetic_patient(known, voxel=4.0)
    first = register_mni_to_t1(small)
    second = register_mni_to_t1(small)
    assert first.files == second.files  # bit-for-bit the same transform file
    assert first.quality["head_dice"] > 0.9


@pytest.mark.slow
def test_turned_head_is_reported(patient_lps):
    """The head data turned by 90 degrees under an unchanged header: registration fails."""
    turned = nib.Nifti1Image(
        np.rot90(patient_lps.get_fdata(), axes=(1, 2)).copy(), patient_lps.affine
    )
    with pytest.raises(RegistrationError, match="does not line up|does not fit"):
        register_mni_to_t1(turned, threads=2)


@pytest.mark.slow
def test_pure_noise_is_reported():
    rng = np.random.default_rng(7)
    noise = nib.Nifti1Image(
        rng.uniform(0.0, 1000.0, size=(60, 70, 60)), np.diag([3.0, 3.0, 3.0, 1.0])
    )
    with pytest.raises(RegistrationError, match="does not line up|does not fit|noise"):
        register_mni_to_t1(noise, threads=2)


@pytest.mark.slow
def test_nonlinear_registration_writes_composites(tmp_path, known, patient_lps):
    result = register_mni_to_t1(patient_lps, kind="nonlinear", threads=2)
    xfm = result.mni_to_subject
    assert not xfm.is_linear
    t1 = xfm.apply_points(Points(MNI_POINTS, "MNI152NLin6Asym"))
    errors = np.linalg.norm(t1.xyz - _apply(known, MNI_POINTS), axis=1)
    assert errors.max() < 3.0, errors
    written = result.save(tmp_path)
    assert [p.name for p in written] == [
        "from-MNI152NLin6Asym_to-T1w_mode-image_xfm.h5",
        "from-T1w_to-MNI152NLin6Asym_mode-image_xfm.h5",
    ]
    reloaded = load_mni_to_subject(written[0], reference=patient_lps)
    np.testing.assert_allclose(
        reloaded.apply_points(Points(MNI_POINTS, "MNI152NLin6Asym")).xyz, t1.xyz, atol=1e-3
    )
    # the inverse composite is the T1 -> MNI file: refused by name where MNI -> T1 is due
    with pytest.raises(RegistrationError, match="opposite"):
        load_mni_to_subject(written[1])


def _running(pid):
    """True while ``pid`` runs (a zombie waiting to be reaped has ended)."""
    from pathlib import Path

    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in "ZX"
    except (FileNotFoundError, ProcessLookupError):
        return False


def test_the_registration_child_dies_with_its_parent(tmp_path):
    """A killed plan must not leave ANTs running: the child follows its parent."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    import tmsplan

    if not Path("/proc/self/stat").exists():
        pytest.skip("needs /proc")
    pid_file = tmp_path / "child.pid"
    child = (
        "import os, sys, time; from tmsplan.xfm.registration import _die_with_parent; "
        "_die_with_parent(int(sys.argv[1])); "
        f"open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(120)"
    )
    parent = (
        "import os, subprocess, sys, time; "
        f"subprocess.Popen([sys.executable, '-c', {child!r}, str(os.getpid())]); time.sleep(120)"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(tmsplan.__file__).resolve().parents[1]))
    proc = subprocess.Popen([sys.executable, "-c", parent], env=env)
    deadline = time.monotonic() + 60
    while not (pid_file.exists() and pid_file.read_text()):
        assert time.monotonic() < deadline and proc.poll() is None, "the child never started"
        time.sleep(0.05)
    child_pid = int(pid_file.read_text())
    proc.kill()  # SIGKILL: the parent cannot stop its child itself
    proc.wait()
    deadline = time.monotonic() + 10
    while _running(child_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    survived = _running(child_pid)
    if survived:
        os.kill(child_pid, signal.SIGKILL)
    assert not survived
