"""The Python API speaks Python: parameter names, warnings, public names, typing."""

import warnings
from pathlib import Path

import numpy as np
import pytest

import tmsplan
from tmsplan.cli import _flag_message, main
from tmsplan.errors import ActivationError, PlanWarning, TmsplanWarning

HYPOTHALAMUS_MNI = (3.0, -4.0, -14.0)  # deep brain: no coil reaches it


def test_public_names_resolve():
    for name in (
        "plan_target",
        "write_plan",
        "Target",
        "Head",
        "load_head",
        "run_batch",
        "read_manifest",
        "register_mni_to_t1",
        "load_mni_to_subject",
        "read_export",
        "export_all",
        "report_record",
        "view_record",
        "group_picture",
        "TmsplanWarning",
        "PlanWarning",
        "TmsplanError",
        "OutputError",
        "RecordError",
        "UnreachableTargetError",
    ):
        assert name in tmsplan.__all__
    for name in tmsplan.__all__:
        assert getattr(tmsplan, name) is not None
    assert issubclass(tmsplan.PlanWarning, tmsplan.TmsplanWarning)
    assert issubclass(tmsplan.OutputError, (tmsplan.TmsplanError, OSError))


def test_package_is_typed():
    assert (Path(tmsplan.__file__).parent / "py.typed").is_file()


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ("max_depth_mm", float("nan")),
        ("coil_skin_distance_mm", -1.0),
        ("handle_angle_deg", 400.0),
        ("threshold", float("inf")),
        ("max_depth_mm", True),
    ],
)
def test_errors_name_the_python_parameter(parameter, value):
    with pytest.raises(ActivationError) as caught:
        tmsplan.plan_target(target_mni=(-38.0, 44.0, 26.0), **{parameter: value})
    message = str(caught.value)
    assert message.startswith(f"{parameter} must be")
    assert "--" not in message


def test_errors_about_images_name_the_python_parameter(tmp_path):
    with pytest.raises(tmsplan.ImageError, match=r"^t1: file .* does not exist"):
        tmsplan.plan_target(
            target_t1=(0.0, 0.0, 0.0), t1=tmp_path / "missing.nii.gz", mni_to_t1=np.eye(4)
        )
    from tmsplan.io.bundled import mni_head_path

    with pytest.raises(tmsplan.SpaceError, match="give either mni_to_t1 or register=True"):
        tmsplan.plan_target(
            target_mni=(0, 0, 0), t1=mni_head_path(1), register=True, mni_to_t1=np.eye(4)
        )


@pytest.mark.parametrize(
    ("library", "cli"),
    [
        (
            "max_depth_mm must be a finite number, got nan.",
            "--max-depth must be a finite number, got nan.",
        ),
        ("threshold must be positive.", "--threshold must be positive."),
        ("t1: file '/data/t1.nii' does not exist.", "--t1: file '/data/t1.nii' does not exist."),
        (
            "give either mni_to_t1 or register=True, not both.",
            "give either --mni-to-t1 or --register, not both.",
        ),
        (
            "activation_space='T1w' does not apply to it.",
            "--activation-space T1w does not apply to it.",
        ),
        ("lower the threshold or check the sign.", "lower the threshold or check the sign."),
        ("the activation map's header says so.", "the activation map's header says so."),
        ("sub-01_t1 and roi_mask differ.", "sub-01_t1 and --roi-mask differ."),
        ("see t1.nii.gz and target.json", "see t1.nii.gz and target.json"),
        (
            "it is not replaced even with overwrite=True.",
            "it is not replaced even with --force.",
        ),
        ("threshold=3.5 is above the peak.", "--threshold 3.5 is above the peak."),
    ],
)
def test_cli_turns_parameters_into_flags(library, cli):
    assert _flag_message(library) == cli


@pytest.mark.slow
def test_an_unreachable_target_is_a_python_warning():
    with pytest.warns(PlanWarning, match="NOT reachable") as caught:
        plan = tmsplan.plan_target(target_mni=HYPOTHALAMUS_MNI)
    assert not plan.record["targets"][0]["reachable"]
    issued = [str(w.message) for w in caught if issubclass(w.category, TmsplanWarning)]
    assert issued == plan.record["warnings"]  # each record warning, once, in order
    assert all(w.filename == __file__ for w in caught)  # points at the caller


@pytest.mark.slow
def test_the_cli_shows_each_warning_once(tmp_path, capsys):
    out = tmp_path / "plan"
    x, y, z = (str(v) for v in HYPOTHALAMUS_MNI)
    args = ["plan", "--target-mni", x, y, z, "--formats", "csv", "--no-report", "--out", str(out)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing leaks out of main() as a Python warning
        assert main(args) == 0
    stdout, stderr = capsys.readouterr()
    assert stderr.count("is NOT reachable:") == 1  # the one reachability warning, once
    assert "tmsplan: warning: target" in stderr
    assert "warning" not in stdout
