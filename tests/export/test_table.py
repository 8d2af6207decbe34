import csv
import io
import json

import numpy as np
import pytest
from _export_records import left_pose, make_record, random_poses

from tmsplan.errors import FormatError, OutputExistsError, PoseError, RecordError
from tmsplan.export.table import CSV_COLUMNS, read_csv, read_json, write_csv, write_json


def _with_unreachable(record):
    record["targets"][-1]["reachable"] = False
    record["targets"][-1]["unreachable_reason"] = "no scalp above the target"
    return record


@pytest.mark.parametrize(
    ("write", "read", "suffix"), [(write_csv, read_csv, "csv"), (write_json, read_json, "json")]
)
def test_round_trip_20_random_poses_all_targets(tmp_path, write, read, suffix):
    poses = random_poses(20, seed=51)
    record = _with_unreachable(make_record(poses))
    nav = read(write(record, tmp_path / f"t.{suffix}")[0])  # no warning: tables keep all
    assert nav.frame == "T1w"
    assert nav.names == [f"T{i}" for i in range(20)]
    np.testing.assert_allclose(nav.poses().matrices, np.stack(poses), atol=1e-6)
    for marker, target in zip(nav.markers, record["targets"], strict=True):
        np.testing.assert_allclose(marker.cortical_mm, target["cortical_mm"], atol=1e-9)
        np.testing.assert_allclose(marker.scalp_mm, target["scalp_mm"], atol=1e-9)
        np.testing.assert_allclose(marker.info["handle_direction"], target["handle_direction"])
        assert marker.info["depth_mm"] == 20.0
        assert marker.info["coil_skin_distance_mm"] == 5.0
    assert [m.info["reachable"] for m in nav.markers] == [True] * 19 + [False]
    assert nav.markers[-1].info["unreachable_reason"] == "no scalp above the target"


def test_csv_layout(tmp_path):
    pose = left_pose()
    record = make_record([pose])
    record["space"] = "MNI152NLin6Asym"
    path = write_csv(record, tmp_path / "t.csv")[0]
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert tuple(rows[0]) == CSV_COLUMNS
    row = rows[0]
    assert row["space"] == "MNI152NLin6Asym" and row["reachable"] == "true"
    assert (row["centre_x"], row["centre_y"], row["centre_z"]) == ("-60.0", "12.0", "45.0")
    np.testing.assert_allclose([float(row[f"zaxis_{a}"]) for a in "xyz"], pose[:3, 2])
    nav = read_csv(path)
    assert nav.frame == "MNI152NLin6Asym" and nav.markers[0].pose[0, 3] < 0


def test_csv_names_quoted_and_formula_guarded(tmp_path):
    names = ['a,b "c"', "=HYPERLINK(1)", "x;y<&>", "tab\there\nnewline", "-5 mm"]
    path = write_csv(make_record(random_poses(5, 7), names=names), tmp_path / "t.csv")[0]
    rows = list(csv.reader(io.StringIO(path.read_text())))
    assert len(rows) == 6 and all(len(r) == len(CSV_COLUMNS) for r in rows)
    assert rows[2][0] == "'=HYPERLINK(1)" and rows[5][0] == "'-5 mm"
    assert read_csv(path).names == [
        'a,b "c"',
        "=HYPERLINK(1)",
        "x;y<&>",
        "tab here newline",
        "-5 mm",
    ]


def test_json_layout(tmp_path):
    pose = left_pose()
    path = write_json(_with_unreachable(make_record([pose, pose])), tmp_path / "t.json")[0]
    doc = json.loads(path.read_text())
    assert doc["format"] == "tmsplan-targets" and doc["space"] == "T1w"
    first, second = doc["targets"]
    assert first["coil_centre_mm"] == [-60.0, 12.0, 45.0]
    np.testing.assert_allclose(first["coil_z_axis_into_head"], pose[:3, 2])
    assert second["reachable"] is False
    name = 'q"\n<x>'
    path = write_json(make_record([pose], names=[name]), tmp_path / "n.json")[0]
    assert read_json(path).names == [name]  # JSON keeps the name exactly


def test_refusals(tmp_path):
    sheared = left_pose()
    sheared[1, 0] += 0.1
    for write, name in ((write_csv, "a.csv"), (write_json, "a.json")):
        with pytest.raises(PoseError):
            write(make_record([sheared]), tmp_path / name)
    assert list(tmp_path.iterdir()) == []
    write_csv(make_record([left_pose()]), tmp_path / "b.csv")
    with pytest.raises(OutputExistsError):
        write_csv(make_record([left_pose()]), tmp_path / "b.csv")


def test_readers_refuse_shear_and_foreign_files(tmp_path):
    path = write_csv(make_record([left_pose()]), tmp_path / "t.csv")[0]
    text = path.read_text().splitlines()
    cells = text[1].split(",")
    cells[CSV_COLUMNS.index("xaxis_y")] = str(float(cells[CSV_COLUMNS.index("xaxis_y")]) + 0.2)
    (tmp_path / "s.csv").write_text(text[0] + "\n" + ",".join(cells) + "\n")
    with pytest.raises(PoseError, match="sheared"):
        read_csv(tmp_path / "s.csv")
    (tmp_path / "o.csv").write_text("a,b\n1,2\n")
    with pytest.raises(FormatError, match="missing"):
        read_csv(tmp_path / "o.csv")
    (tmp_path / "o.json").write_text('{"targets": []}')
    with pytest.raises(FormatError, match="tmsplan-targets"):
        read_json(tmp_path / "o.json")


def test_nan_in_the_record_is_refused_before_writing(tmp_path):
    record = make_record([left_pose()])
    record["targets"][0]["depth_mm"] = float("nan")
    with pytest.raises(RecordError, match="depth_mm = nan; expected a finite number"):
        write_json(record, tmp_path / "t.json")
    with pytest.raises(RecordError, match="depth_mm = nan; expected a finite number"):
        write_csv(record, tmp_path / "t.csv")
    assert list(tmp_path.iterdir()) == []
