"""Every plan record is re-checked before a navigator file is written from it."""

import copy
import json
import re

import nibabel as nib
import numpy as np
import pytest
from _export_records import left_pose, make_record, random_poses

from tmsplan.cli import main
from tmsplan.errors import PoseError, RecordError
from tmsplan.export import export_all, export_record
from tmsplan.io.images import file_sha256
from tmsplan.io.record_checks import (
    AXIS_TOL,
    DEPTH_TOL_MM,
    POSITION_TOL_MM,
    record_schema,
    validate_record,
)
from tmsplan.pipeline.plan import Plan, write_plan


def _good_record(tmp_path=None):
    """A consistent record (coil 5 mm off the skin, target 20 mm deep), limit 30 mm."""
    record = make_record([left_pose()])
    record["parameters"] = {"max_depth_mm": 30.0, "coil_skin_distance_mm": 5.0}
    target = record["targets"][0]
    target["scalp_normal"] = (-np.asarray(left_pose()[:3, 2])).tolist()
    if tmp_path is not None:
        t1 = tmp_path / "t1.nii.gz"
        nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.float32), np.eye(4)), t1)
        record["t1"]["path"], record["t1"]["sha256"] = str(t1), file_sha256(t1)
    return record


def _string_reachable(record):
    record["targets"][0]["reachable"] = "false"


def _coil_moved_50mm(record):
    pose = np.asarray(record["targets"][0]["coil_matrix"])
    pose[:3, 3] += [0.0, 50.0, 0.0]
    record["targets"][0]["coil_matrix"] = pose.tolist()


def _entry_moved_40mm(record):
    scalp = np.asarray(record["targets"][0]["scalp_mm"])
    record["targets"][0]["scalp_mm"] = (scalp + [0.0, 0.0, 40.0]).tolist()


def _deep_target_marked_reachable(record):
    """A 77 mm deep target, geometry consistent, hand-marked reachable."""
    target = record["targets"][0]
    z = np.asarray(target["coil_matrix"])[:3, 2]
    target["cortical_mm"] = (np.asarray(target["scalp_mm"]) + 77.0 * z).tolist()
    target["depth_mm"] = 77.0


def _non_rigid_matrix(record):
    pose = np.asarray(record["targets"][0]["coil_matrix"])
    pose[:3, 0] *= 1.3  # scaled x axis
    record["targets"][0]["coil_matrix"] = pose.tolist()


def _depth_edited(record):
    record["targets"][0]["depth_mm"] = 12.0


def _handle_turned(record):
    handle = np.asarray(record["targets"][0]["handle_direction"])
    record["targets"][0]["handle_direction"] = (-handle).tolist()


def _normal_flipped(record):
    normal = np.asarray(record["targets"][0]["scalp_normal"])
    record["targets"][0]["scalp_normal"] = (-normal).tolist()


def _unreachable_without_reason(record):
    record["targets"][0]["reachable"] = False
    record["targets"][0]["unreachable_reason"] = ""


def _matrix_of_strings(record):
    record["targets"][0]["coil_matrix"][1][2] = "0.5"


TAMPERED = [
    (_string_reachable, RecordError, r"targets\[0\]\.reachable: 'false' is not of type 'boolean'"),
    (_coil_moved_50mm, RecordError, r"targets\[0\]\.coil_matrix: the coil centre is 50\.0 mm"),
    (_entry_moved_40mm, RecordError, r"targets\[0\]\.scalp_mm: the scalp entry is 40\.0 mm"),
    (_deep_target_marked_reachable, RecordError, r"targets\[0\]\.reachable: true.*77\.0 mm deep"),
    (_non_rigid_matrix, PoseError, r"targets\[0\]\.coil_matrix.*not orthonormal"),
    (_depth_edited, RecordError, r"targets\[0\]\.depth_mm: 12\.0 mm.*20\.000 mm apart"),
    (_handle_turned, RecordError, r"targets\[0\]\.handle_direction"),
    (_normal_flipped, RecordError, r"targets\[0\]\.scalp_normal"),
    (_unreachable_without_reason, RecordError, r"targets\[0\]\.unreachable_reason"),
    (_matrix_of_strings, PoseError, r"targets\[0\]\.coil_matrix"),
]


def test_a_consistent_record_passes():
    assert validate_record(_good_record()) == []


def test_tolerances_are_above_the_rounding_of_a_record():
    """A record as plan.py stores it (points 4 decimals, matrix 8, depth 3) passes."""
    for pose in random_poses(20, seed=5):
        record = make_record([pose])
        record["parameters"] = {"max_depth_mm": 30.0}
        target = record["targets"][0]
        target["coil_matrix"] = np.round(pose, 8).tolist()
        target["handle_direction"] = np.round(pose[:3, 1], 8).tolist()
        target["cortical_mm"] = np.round(target["cortical_mm"], 4).tolist()
        target["scalp_mm"] = np.round(target["scalp_mm"], 4).tolist()
        target["scalp_normal"] = np.round(-pose[:3, 2], 8).tolist()
        validate_record(record)
    # and far below what moves a coil or a target
    assert POSITION_TOL_MM <= 0.01 and DEPTH_TOL_MM <= 0.01 and AXIS_TOL <= 1e-6


@pytest.mark.parametrize(("tamper", "error", "message"), TAMPERED, ids=lambda v: str(v)[:30])
def test_tampered_record_is_refused_naming_the_field(tamper, error, message):
    record = _good_record()
    tamper(record)
    with pytest.raises(error, match=message):
        validate_record(record)


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (_string_reachable, r"targets\[0\]\.reachable"),
        (_coil_moved_50mm, r"targets\[0\]\.coil_matrix"),
        (_entry_moved_40mm, r"targets\[0\]\.scalp_mm"),
        (_deep_target_marked_reachable, r"targets\[0\]\.reachable"),
        (_non_rigid_matrix, r"targets\[0\]\.coil_matrix"),
    ],
    ids=["string-reachable", "coil-50mm", "entry-40mm", "77mm-reachable", "non-rigid"],
)
def test_export_command_refuses_a_tampered_record(tamper, message, tmp_path, capsys):
    record = _good_record(tmp_path)
    tamper(record)
    path = tmp_path / "target.json"
    path.write_text(json.dumps(record))
    for fmt in ("localite", "brainsight", "csv"):
        out = tmp_path / f"out_{fmt}"
        code = main(["export", str(path), "--format", fmt, "--out", str(out)])
        err = capsys.readouterr().err
        assert code == 1, fmt
        assert err.startswith("tmsplan: error: ") and err.count("\n") == 1, err
        assert "Traceback" not in err
        assert re.search(message, err), err
        assert not out.exists()


def test_python_exports_refuse_a_tampered_record(tmp_path):
    record = _good_record()
    _coil_moved_50mm(record)
    with pytest.raises(RecordError, match="coil_matrix"):
        export_record(record, "slicer", tmp_path / "a")
    with pytest.raises(RecordError, match="coil_matrix"):
        export_all(record, tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_write_plan_refuses_an_inconsistent_record_before_writing(tmp_path):
    record = _good_record()
    _string_reachable(record)
    plan = Plan(record=record, scalp=None, t1_img=None)
    with pytest.raises(RecordError, match="reachable"):
        write_plan(plan, tmp_path / "plan", report=False)
    assert list(tmp_path.iterdir()) == []


def test_validate_command(tmp_path, capsys):
    record = _good_record(tmp_path)
    (tmp_path / "good").mkdir()
    (tmp_path / "good" / "target.json").write_text(json.dumps(record))
    assert main(["validate", str(tmp_path / "good")]) == 0
    out, err = capsys.readouterr()
    assert out.count("\n") == 1 and "OK" in out and "1 target(s), 1 reachable" in out
    assert err == ""
    _coil_moved_50mm(record)
    (tmp_path / "bad.json").write_text(json.dumps(record))
    assert main(["validate", str(tmp_path / "bad.json")]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and "targets[0].coil_matrix: the coil centre is 50.0 mm" in err


def test_changed_t1_is_a_warning_not_a_refusal(tmp_path, capsys):
    record = _good_record(tmp_path)
    record["t1"]["sha256"] = "0" * 64
    (tmp_path / "target.json").write_text(json.dumps(record))
    assert main(["validate", str(tmp_path / "target.json")]) == 0
    out, err = capsys.readouterr()
    assert "OK" in out
    assert "tmsplan: warning: THE T1 IMAGE HAS CHANGED" in err
    # export warns the same way and still writes the file
    assert main(["export", str(tmp_path), "--format", "brainsight", "--out", str(tmp_path)]) == 0
    assert "CHANGED" in capsys.readouterr().err
    assert (tmp_path / "brainsight_targets.txt").is_file()
    # the library says it in the list it returns
    (warning,) = validate_record(record, check_t1=True)
    assert "HAS CHANGED" in warning


def test_extra_keys_from_other_modules_are_allowed():
    record = _good_record()
    record["dose"] = {"adjusted_percent_mt": 112.0}
    record["coil"] = {"model": "figure-8"}
    record["targets"][0]["eeg1020"] = {"nearest": "F3"}
    record["targets"][0]["tissue"] = "grey matter"
    record["targets"][0]["candidates"] = [{"rank": 1}]
    assert validate_record(copy.deepcopy(record)) == []


def test_schema_is_shipped_inside_the_package():
    from importlib import resources

    assert resources.files("tmsplan").joinpath("data", "target.schema.json").is_file()
    schema = record_schema()
    assert schema["$defs"]["target"]["properties"]["reachable"] == {"type": "boolean"}


def test_the_compiled_schema_is_the_shipped_schema():
    from tmsplan.io import _record_validator
    from tmsplan.io.record_checks import _fast_validator, _schema_sha256

    assert _record_validator.SCHEMA_SHA256 == _schema_sha256(), (
        "target.schema.json changed: regenerate tmsplan/io/_record_validator.py with "
        "tmsplan.io.record_checks.write_fast_validator()"
    )
    assert _fast_validator() is _record_validator.validate


def _schema_breaks():
    """Records that break the schema one way each (types, required keys, pattern, shapes)."""

    def edit(change):
        record = _good_record()
        change(record)
        return record

    yield edit(lambda r: r.pop("targets"))
    yield edit(lambda r: r.update(schema_version=2))
    yield edit(lambda r: r.update(space=""))
    yield edit(lambda r: r["t1"].update(sha256="ABC"))
    yield edit(lambda r: r["t1"].pop("sha256"))
    yield edit(lambda r: r["targets"][0].update(reachable="false"))
    yield edit(lambda r: r["targets"][0].update(cortical_mm=[1.0, 2.0]))
    yield edit(lambda r: r["targets"][0].update(scalp_mm=[1.0, True, 3.0]))
    yield edit(lambda r: r["targets"][0]["coil_matrix"].pop())
    yield edit(lambda r: r["targets"][0]["coil_matrix"][1].__setitem__(2, "0.5"))
    yield edit(lambda r: r.update(warnings="none"))
    yield edit(lambda r: r.update(targets={}))


def test_both_readings_of_the_schema_agree():
    """fastjsonschema (the fast check) and jsonschema (the messages) refuse the same records."""
    from fastjsonschema import JsonSchemaException
    from jsonschema import Draft202012Validator

    from tmsplan.io.record_checks import _fast_validator

    fast, full = _fast_validator(), Draft202012Validator(record_schema())
    good = _good_record()
    good["extra_module_key"] = {"anything": [1, 2]}  # keys other modules add are allowed
    good["t1"]["path"] = None
    fast(good)
    assert not list(full.iter_errors(good))
    breaks = list(_schema_breaks())
    for record in breaks:
        assert list(full.iter_errors(record)), record
        with pytest.raises(JsonSchemaException):
            fast(record)
        with pytest.raises((RecordError, PoseError)):
            validate_record(record)


def test_a_compiled_schema_of_another_schema_is_not_used(monkeypatch):
    from tmsplan.io import _record_validator, record_checks

    monkeypatch.setattr(_record_validator, "SCHEMA_SHA256", "0" * 64)
    record_checks._fast_validator.cache_clear()
    try:
        assert record_checks._fast_validator() is None
        record = _good_record()
        record["targets"][0]["reachable"] = "false"
        with pytest.raises(RecordError, match=r"targets\[0\]\.reachable: 'false' is not of type"):
            validate_record(record)
    finally:
        monkeypatch.undo()
        record_checks._fast_validator.cache_clear()
