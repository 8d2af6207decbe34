"""Transform trust: a --mni-to-t1 that does not fit is refused; matrix kinds chosen by fit."""

from __future__ import annotations

import time

import nibabel as nib
import numpy as np
import pytest
from _paths import SHARED
from _phantoms import rigid_scaling, synthetic_patient

from tmsplan.cli import main
from tmsplan.errors import RegistrationError
from tmsplan.io.bundled import load_mni_head, mni_head_path
from tmsplan.pipeline.plan import plan_target
from tmsplan.xfm.check import (
    MIN_BRAIN_CONTRAST,
    MIN_CORRELATION,
    MIN_NMI,
    check_transform_fit,
    choose_matrix_kind,
    fit_problems,
    normalized_mutual_information,
    transform_fit,
)
from tmsplan.xfm.transforms import MniToSubject, load_mni_to_subject

REAL_T1 = SHARED / "real-heads" / "chris_t1.nii.gz"
TARGETS_MNI = np.array([[-38.0, 44.0, 26.0], [-37.0, -21.0, 58.0], [-24.0, 64.0, 0.0]])


def _apply(matrix, xyz):
    return np.asarray(xyz) @ matrix[:3, :3].T + matrix[:3, 3]


def _turned(matrix, deg, axis, centre_mni=(0.0, -18.0, 18.0)):
    """``matrix`` followed by a rotation of ``deg`` about ``axis`` through the head centre."""
    from scipy.spatial.transform import Rotation

    centre = _apply(matrix, centre_mni)
    rot = np.eye(4)
    rot[:3, :3] = Rotation.from_rotvec(np.deg2rad(deg) * np.asarray(axis, float)).as_matrix()
    rot[:3, 3] = centre - rot[:3, :3] @ centre
    return rot @ matrix


def _write_flirt(path, mni_to_t1, t1):
    """Write the FLIRT matrix (-in MNI 1 mm -ref t1) equivalent to ``mni_to_t1``."""
    from nitransforms.io import fsl

    xfm = fsl.FSLLinearTransform.from_ras(
        np.linalg.inv(mni_to_t1), reference=t1, moving=load_mni_head(1)
    )
    xfm.to_filename(path)
    return path


def _assert_one_line_refusal(message):
    assert "\n" not in message
    assert "does not fit this T1" in message
    assert "--register" in message and "--accept-transform" in message


@pytest.fixture(scope="module")
def known():
    return rigid_scaling()


@pytest.fixture(scope="module")
def patient(known):
    return synthetic_patient(load_mni_head(2), known, order="LPS")


# --------------------------------------------------------------------- the figures


def test_nmi_of_identical_and_independent_samples():
    rng = np.random.default_rng(0)
    x = rng.normal(size=5000)
    assert normalized_mutual_information(x, x) == pytest.approx(2.0, abs=1e-9)
    assert normalized_mutual_information(x, rng.normal(size=5000)) < 1.05
    assert normalized_mutual_information(np.ones(50), x[:50]) == 1.0


def test_right_transform_fits_with_margin(known, patient):
    scores = transform_fit(MniToSubject.from_matrix(known), patient)
    assert scores["nmi"] > MIN_NMI + 0.1
    assert scores["correlation"] > MIN_CORRELATION + 0.3
    assert scores["brain_contrast"] > MIN_BRAIN_CONTRAST + 0.1
    assert scores["head_dice"] > 0.95
    assert fit_problems(scores) == []
    checked, warning = check_transform_fit(MniToSubject.from_matrix(known), patient)
    assert warning is None and checked.fit["verdict"] == "fits"


# --------------------------------------------------------------------- wrong transforms


@pytest.mark.parametrize(("deg", "axis"), [(30, (1, 0, 0)), (40, (0, 1, 0)), (50, (0, 0, 1))])
def test_rotated_transform_is_refused_in_one_line(known, patient, deg, axis):
    wrong = MniToSubject.from_matrix(_turned(known, deg, axis))
    with pytest.raises(RegistrationError) as info:
        check_transform_fit(wrong, patient, what="transform 'x.mat'")
    message = str(info.value)
    _assert_one_line_refusal(message)
    assert message.startswith("transform 'x.mat' does not fit")
    # says how far off: at least one figure against its line and the aligned range
    assert "aligned heads" in message and "<" in message


@pytest.mark.slow
def test_transform_of_a_different_head_is_refused(known):
    """A 'subject' whose head is the MNI head scaled and sheared; the original's transform."""
    other_head = known @ np.array(
        [[1.16, 0.12, 0.0, 0.0], [0.0, 0.86, 0.10, 0.0], [0.0, 0.0, 1.12, 0.0], [0, 0, 0, 1.0]]
    )
    subject = synthetic_patient(load_mni_head(2), other_head, order="RAS")
    with pytest.raises(RegistrationError) as info:
        check_transform_fit(MniToSubject.from_matrix(known), subject)
    _assert_one_line_refusal(str(info.value))
    # its own transform fits
    checked, _ = check_transform_fit(MniToSubject.from_matrix(other_head), subject)
    assert checked.fit["verdict"] == "fits"


@pytest.mark.slow
def test_override_keeps_a_poor_fit_with_a_loud_warning(known, patient, tmp_path):
    wrong = _turned(known, 40, (1, 0, 0))
    checked, warning = check_transform_fit(
        MniToSubject.from_matrix(wrong), patient, accept_poor_fit=True
    )
    assert warning is not None and warning.startswith("!!!") and "--accept-transform" in warning
    assert checked.fit["verdict"] == "poor fit accepted by override"
    assert checked.fit["problems"] and checked.fit["warning"] == warning
    np.testing.assert_allclose(checked.matrix, wrong, atol=1e-9)
    # the same through the loader
    path = tmp_path / "wrong.txt"
    np.savetxt(path, wrong)
    with pytest.raises(RegistrationError, match="--xfm-kind"):
        load_mni_to_subject(path, reference=patient, accept_poor_fit=True)
    loaded = load_mni_to_subject(path, kind="affine", reference=patient, accept_poor_fit=True)
    assert loaded.fit["verdict"] == "poor fit accepted by override"


@pytest.mark.slow
def test_plan_records_the_override_and_the_cli_refuses_in_one_line(
    known, patient, tmp_path, capsys
):
    nib.save(patient, tmp_path / "t1.nii.gz")
    np.savetxt(tmp_path / "wrong.txt", _turned(known, 40, (0, 0, 1)))
    args = ["plan", "--target-mni", "-38", "44", "26", "--t1", str(tmp_path / "t1.nii.gz")]
    args += ["--mni-to-t1", str(tmp_path / "wrong.txt"), "--xfm-kind", "affine"]
    code = main([*args, "--out", str(tmp_path / "out"), "--no-report"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.startswith("tmsplan: error:") and "Traceback" not in err
    _assert_one_line_refusal(err)
    assert not (tmp_path / "out").exists()

    plan = plan_target(
        target_mni=(-38.0, 44.0, 26.0),
        t1=tmp_path / "t1.nii.gz",
        mni_to_t1=MniToSubject.from_matrix(_turned(known, 40, (0, 0, 1))),
        accept_poor_fit=True,
    )
    loud = [w for w in plan.record["warnings"] if "POOR FIT" in w]
    assert len(loud) == 1 and "--accept-transform" in loud[0]
    fit = plan.record["transform"]["fit"]
    assert fit["verdict"] == "poor fit accepted by override"
    assert {"nmi", "correlation", "brain_contrast", "head_dice", "thresholds"} <= set(fit)


@pytest.mark.slow
def test_plan_records_fit_figures_of_a_right_transform(known, patient, tmp_path):
    np.savetxt(tmp_path / "m.txt", known)
    plan = plan_target(target_mni=(-38.0, 44.0, 26.0), t1=patient, mni_to_t1=tmp_path / "m.txt")
    fit = plan.record["transform"]["fit"]
    assert fit["verdict"] == "fits" and fit["nmi"] > MIN_NMI
    assert fit["kind_choice"]["kind"] == "affine"
    assert not any("POOR FIT" in w for w in plan.record["warnings"])
    np.testing.assert_allclose(
        plan.record["targets"][0]["cortical_mm"], _apply(known, [-38, 44, 26]), atol=1.0
    )


# --------------------------------------------------------------------- ambiguous matrix files


@pytest.mark.parametrize("suffix", [".txt", ".fsl", ".mat"])
def test_flirt_matrix_under_any_extension_is_read_as_flirt(known, patient, tmp_path, suffix):
    path = _write_flirt(tmp_path / f"flirt{suffix}", known, patient)
    xfm = load_mni_to_subject(path, reference=patient, moving=mni_head_path(1))
    assert xfm.kind == "fsl"
    assert xfm.fit["kind_choice"]["kind"] == "fsl" and "FLIRT" in xfm.fit["kind_choice"]["why"]
    carried = _apply(xfm.matrix, TARGETS_MNI)
    np.testing.assert_allclose(carried, _apply(known, TARGETS_MNI), atol=1.0)
    # read as a plain RAS matrix it would have been wrong
    plain = load_mni_to_subject(path, kind="affine", check_fit=False)
    assert np.linalg.norm(_apply(plain.matrix, TARGETS_MNI) - carried, axis=1).max() > 5.0


def test_plain_matrix_named_mat_is_read_as_plain(known, patient, tmp_path):
    path = tmp_path / "plain.mat"
    np.savetxt(path, known)
    xfm, choice = choose_matrix_kind(path, patient, mni_head_path(1))
    assert choice["kind"] == "affine" and xfm.kind == "affine"
    assert choice["readings"]["affine"]["fits"]
    np.testing.assert_allclose(xfm.matrix, known, atol=1e-6)


def test_explicit_kind_is_obeyed(known, patient, tmp_path):
    path = _write_flirt(tmp_path / "flirt.txt", known, patient)
    with pytest.raises(RegistrationError, match="does not fit this T1"):
        load_mni_to_subject(path, kind="affine", reference=patient)
    assert load_mni_to_subject(path, kind="affine", reference=patient, check_fit=False).kind == (
        "affine"
    )
    assert (
        load_mni_to_subject(path, kind="fsl", reference=patient, moving=mni_head_path(1)).fit[
            "verdict"
        ]
        == "fits"
    )


def test_matrix_fitting_neither_way_is_refused_naming_xfm_kind(known, patient, tmp_path):
    path = tmp_path / "m.fsl"
    np.savetxt(path, _turned(known, 45, (1, 0, 0)))
    with pytest.raises(RegistrationError) as info:
        load_mni_to_subject(path, reference=patient)
    message = str(info.value)
    assert "\n" not in message and "either way" in message
    assert "--xfm-kind fsl" in message and "--xfm-kind affine" in message


# --------------------------------------------------------------------- tmsplan's own registration


@pytest.mark.slow
def test_own_registration_file_is_accepted(known, tmp_path):
    small = synthetic_patient(load_mni_head(2), known, order="RAS", voxel_mm=3.0)
    from tmsplan.xfm.registration import register_mni_to_t1

    written = register_mni_to_t1(small, threads=2).save(tmp_path)
    xfm = load_mni_to_subject(written[0], reference=small)
    assert xfm.fit["verdict"] == "fits"
    np.testing.assert_allclose(
        _apply(xfm.matrix, TARGETS_MNI), _apply(known, TARGETS_MNI), atol=3.0
    )


# --------------------------------------------------------------------- a real head


@pytest.fixture(scope="module")
def real_registration(tmp_path_factory):
    if not REAL_T1.is_file():
        pytest.skip(f"real head not available: {REAL_T1}")
    from tmsplan.xfm.registration import register_mni_to_t1

    folder = tmp_path_factory.mktemp("real")
    result = register_mni_to_t1(REAL_T1, threads=2)
    return result, result.save(folder)[0]


@pytest.mark.slow
def test_real_head_own_registration_accepted_and_turned_refused(real_registration, tmp_path):
    result, written = real_registration
    t1 = nib.load(REAL_T1)
    started = time.perf_counter()
    xfm = load_mni_to_subject(written, reference=t1)
    seconds = time.perf_counter() - started
    assert xfm.fit["verdict"] == "fits"
    assert seconds < 2.0 * 3  # the 2 s budget, with room for a busy test machine
    good = result.mni_to_subject.matrix
    for axis in ((1, 0, 0), (0, 0, 1)):
        with pytest.raises(RegistrationError) as info:
            check_transform_fit(MniToSubject.from_matrix(_turned(good, 40, axis)), t1)
        _assert_one_line_refusal(str(info.value))
    # its FLIRT matrix saved as .fsl: read as FLIRT, within 1 mm of the registration
    path = _write_flirt(tmp_path / "flirt.fsl", good, t1)
    flirt = load_mni_to_subject(path, reference=t1, moving=mni_head_path(1))
    assert flirt.kind == "fsl"
    np.testing.assert_allclose(
        _apply(flirt.matrix, TARGETS_MNI), _apply(good, TARGETS_MNI), atol=1.0
    )


def test_a_reading_that_fits_clearly_better_wins():
    from tmsplan.xfm.check import _clearly_better

    good = {"nmi": 1.95, "correlation": 1.0}
    fair = {"nmi": 1.13, "correlation": 0.52}
    assert _clearly_better(fair, good) == "affine"
    assert _clearly_better(good, fair) == "fsl"
    assert _clearly_better(good, {"nmi": 1.9, "correlation": 0.95}) is None  # too close: ask
