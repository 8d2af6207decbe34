import json

import numpy as np
import pytest
from _export_records import left_pose, make_record, random_poses

from tmsplan.errors import OutputExistsError, PoseError, SpaceError, UnreachableTargetError
from tmsplan.export import ExportWarning
from tmsplan.export.bids import MARKER_COLUMNS, coordsystem_path, read_bids, write_bids


def test_round_trip_20_random_poses(tmp_path):
    poses = random_poses(20, seed=41)
    record = make_record(poses)
    paths = write_bids(record, tmp_path / "sub-01_markers.tsv")
    assert [p.name for p in paths] == ["sub-01_markers.tsv", "sub-01_coordsystem.json"]
    nav = read_bids(paths[0])
    assert nav.frame == "T1w"
    assert nav.names == [f"T{i}" for i in range(20)]
    np.testing.assert_allclose(nav.poses().matrices, np.stack(poses), atol=1e-6)
    for marker, target in zip(nav.markers, record["targets"], strict=True):
        np.testing.assert_allclose(marker.cortical_mm, target["cortical_mm"], atol=1e-9)
        np.testing.assert_allclose(marker.scalp_mm, target["scalp_mm"], atol=1e-9)
        assert marker.info["depth_mm"] == 20.0


def test_columns_and_coordsystem(tmp_path):
    pose = left_pose()
    record = make_record([pose])
    record["space"] = "MNI152NLin6Asym"
    record["t1"]["path"] = "/data/sub-01_T1w.nii.gz"
    record["t1"]["sha256"] = "ab" * 32
    markers, side = write_bids(record, tmp_path / "sub-01_markers.tsv")
    header, row = (line.split("\t") for line in markers.read_text().splitlines())
    assert tuple(header) == MARKER_COLUMNS
    cells = dict(zip(header, row, strict=True))
    assert (cells["coil_x"], cells["coil_y"], cells["coil_z"]) == ("-60.0", "12.0", "45.0")
    np.testing.assert_allclose([float(cells[f"normal_{a}"]) for a in "xyz"], pose[:3, 2])
    np.testing.assert_allclose([float(cells[f"direction_{a}"]) for a in "xyz"], pose[:3, 1])
    np.testing.assert_allclose(np.array(cells["Matrix_4x4"].split(","), float).reshape(4, 4), pose)
    meta = json.loads(side.read_text())
    assert meta["IntendedFor"] == "/data/sub-01_T1w.nii.gz"
    assert meta["TMSCoordinateSystem"] == "MNI152NLin6Asym"
    assert meta["TMSCoordinateUnits"] == "mm"
    assert meta["IntendedForSHA256"] == "ab" * 32
    nav = read_bids(markers)
    assert nav.frame == "MNI152NLin6Asym" and nav.markers[0].pose[0, 3] < 0


def test_pose_from_normal_and_direction_without_matrix(tmp_path):
    pose = left_pose()
    markers, _ = write_bids(make_record([pose]), tmp_path / "sub-01_markers.tsv")
    header, row = (line.split("\t") for line in markers.read_text().splitlines())
    row[header.index("Matrix_4x4")] = "n/a"
    row[header.index("depth_mm")] = "n/a"
    (tmp_path / "x_markers.tsv").write_text("\t".join(header) + "\n" + "\t".join(row) + "\n")
    (marker,) = read_bids(tmp_path / "x_markers.tsv").markers
    np.testing.assert_allclose(marker.pose, pose, atol=1e-9)
    assert marker.info["depth_mm"] is None


def test_tabs_and_newlines_cannot_break_rows(tmp_path):
    names = ["a\tb", "c\nd", 'e"f<&>;g']
    markers, _ = write_bids(
        make_record(random_poses(3, 5), names=names), tmp_path / "s_markers.tsv"
    )
    lines = markers.read_text().splitlines()
    assert len(lines) == 4 and all(len(line.split("\t")) == len(MARKER_COLUMNS) for line in lines)
    assert read_bids(markers).names == ["a b", "c d", 'e"f<&>;g']


def test_unreachable_left_out_with_warning(tmp_path):
    record = make_record(random_poses(2, 6))
    record["targets"][1]["reachable"] = False
    record["targets"][1]["unreachable_reason"] = "too deep"
    with pytest.warns(ExportWarning, match="'T1' \\(too deep\\)"):
        markers, _ = write_bids(record, tmp_path / "a_markers.tsv")
    assert read_bids(markers).names == ["T0"]
    record["targets"][0]["reachable"] = False
    record["targets"][0]["unreachable_reason"] = "too deep"
    with pytest.raises(UnreachableTargetError, match="no reachable target"):
        write_bids(record, tmp_path / "b_markers.tsv")
    assert not (tmp_path / "b_markers.tsv").exists()


def test_refusals(tmp_path):
    sheared = left_pose()
    sheared[0, 2] += 0.1
    with pytest.raises(PoseError):
        write_bids(make_record([sheared]), tmp_path / "a_markers.tsv")
    assert list(tmp_path.iterdir()) == []
    # the side file existing is enough to refuse, and nothing is written
    coordsystem_path(tmp_path / "b_markers.tsv").write_text("{}")
    with pytest.raises(OutputExistsError):
        write_bids(make_record([left_pose()]), tmp_path / "b_markers.tsv")
    assert not (tmp_path / "b_markers.tsv").exists()
    with pytest.raises(SpaceError):
        write_bids(make_record([left_pose()]), tmp_path / "c_markers.tsv", space="LPS")


def test_reader_refuses_shear(tmp_path):
    markers, _ = write_bids(make_record([left_pose()]), tmp_path / "a_markers.tsv")
    header, row = (line.split("\t") for line in markers.read_text().splitlines())
    values = np.array(row[header.index("Matrix_4x4")].split(","), float)
    values[1] += 0.2
    row[header.index("Matrix_4x4")] = ",".join(map(str, values))
    (tmp_path / "s_markers.tsv").write_text("\t".join(header) + "\n" + "\t".join(row) + "\n")
    with pytest.raises(PoseError, match="sheared"):
        read_bids(tmp_path / "s_markers.tsv")


def test_nothing_is_left_when_the_second_file_cannot_be_written(tmp_path):
    record = make_record([left_pose()])
    side = tmp_path / "sub-01_coordsystem.json"
    side.mkdir()  # a folder in the way: os.replace fails only when that file is written
    (side / "keep").write_text("x")
    with pytest.raises(OSError):
        write_bids(record, tmp_path / "sub-01_markers.tsv", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub-01_coordsystem.json"]
