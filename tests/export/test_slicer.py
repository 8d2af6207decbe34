import json

import numpy as np
import pytest
from _export_records import left_pose, make_record, random_poses

from tmsplan.errors import FormatError, OutputExistsError, PoseError, SpaceError
from tmsplan.export.slicer import SLICER_SCHEMA, read_slicer, write_slicer


@pytest.mark.parametrize("space", ["RAS", "LPS"])
def test_round_trip_20_random_poses(tmp_path, space):
    poses = random_poses(20, seed=31)
    record = make_record(poses)
    path = write_slicer(record, tmp_path / "t.mrk.json", space=space)[0]
    nav = read_slicer(path)
    assert nav.file_space == space
    assert nav.names == [f"T{i}" for i in range(20)]
    np.testing.assert_allclose(nav.poses().matrices, np.stack(poses), atol=1e-6)
    for marker, target in zip(nav.markers, record["targets"], strict=True):
        np.testing.assert_allclose(marker.cortical_mm, target["cortical_mm"], atol=1e-9)
        np.testing.assert_allclose(marker.scalp_mm, target["scalp_mm"], atol=1e-9)


def test_layout_and_lps_negation(tmp_path):
    pose = left_pose()
    ras = json.loads(write_slicer(make_record([pose]), tmp_path / "r.mrk.json")[0].read_text())
    lps = json.loads(
        write_slicer(make_record([pose]), tmp_path / "l.mrk.json", space="LPS")[0].read_text()
    )
    assert ras["@schema"] == SLICER_SCHEMA
    (markup,) = ras["markups"]
    assert markup["type"] == "Fiducial" and markup["coordinateSystem"] == "RAS"
    assert markup["coordinateUnits"] == "mm" and markup["name"] == "T0"
    coil, cortex, scalp = markup["controlPoints"]
    assert [coil["id"], cortex["id"], scalp["id"]] == ["coil", "cortex", "scalp"]
    assert coil["positionStatus"] == "defined"
    assert coil["position"] == [-60.0, 12.0, 45.0]
    orient = np.array(coil["orientation"]).reshape(3, 3)  # row by row
    np.testing.assert_allclose(orient[:, 2], pose[:3, 2])  # columns are the axes
    np.testing.assert_allclose(orient[:, 1], pose[:3, 1])
    lcoil = lps["markups"][0]["controlPoints"][0]
    assert lps["markups"][0]["coordinateSystem"] == "LPS"
    assert lcoil["position"] == [60.0, -12.0, 45.0]  # left is +x in LPS
    lorient = np.array(lcoil["orientation"]).reshape(3, 3)
    np.testing.assert_allclose(lorient, np.diag([-1, -1, 1]) @ orient)
    for name in ("r.mrk.json", "l.mrk.json"):
        assert read_slicer(tmp_path / name).markers[0].pose[0, 3] < 0


def test_foreign_markups_give_points(tmp_path):
    doc = {
        "@schema": SLICER_SCHEMA,
        "markups": [
            {
                "type": "Fiducial",
                "coordinateSystem": "LPS",
                "controlPoints": [
                    {"id": "1", "label": "F-1", "position": [10.0, 20.0, 30.0]},
                    {
                        "id": "2",
                        "label": "F-2",
                        "position": [1.0, 2.0, 3.0],
                        "orientation": [1, 0, 0, 0, 1, 0, 0, 0, 1],
                    },
                    {"id": "3", "label": "F-3", "position": [0, 0, 0], "positionStatus": "missing"},
                ],
            }
        ],
    }
    (tmp_path / "f.mrk.json").write_text(json.dumps(doc))
    first, second = read_slicer(tmp_path / "f.mrk.json").markers
    assert first.kind == "point" and first.pose is None
    np.testing.assert_allclose(first.info["position_mm"], [-10, -20, 30])
    np.testing.assert_allclose(second.pose[:3, :3], np.diag([-1, -1, 1]))
    np.testing.assert_allclose(second.pose[:3, 3], [-1, -2, 3])


def test_reader_refuses_shear(tmp_path):
    path = write_slicer(make_record([left_pose()]), tmp_path / "t.mrk.json")[0]
    doc = json.loads(path.read_text())
    doc["markups"][0]["controlPoints"][0]["orientation"][1] += 0.2
    (tmp_path / "s.mrk.json").write_text(json.dumps(doc))
    with pytest.raises(PoseError, match="sheared"):
        read_slicer(tmp_path / "s.mrk.json")
    (tmp_path / "x.mrk.json").write_text("[]")
    with pytest.raises(FormatError, match="markups"):
        read_slicer(tmp_path / "x.mrk.json")


def test_writer_refusals(tmp_path):
    nan = left_pose()
    nan[2, 2] = np.nan
    with pytest.raises(PoseError):
        write_slicer(make_record([nan]), tmp_path / "a.mrk.json")
    assert not (tmp_path / "a.mrk.json").exists()
    write_slicer(make_record([left_pose()]), tmp_path / "b.mrk.json")
    with pytest.raises(OutputExistsError):
        write_slicer(make_record([left_pose()]), tmp_path / "b.mrk.json")
    with pytest.raises(SpaceError):
        write_slicer(make_record([left_pose()]), tmp_path / "c.mrk.json", space="RAI")


def test_names_are_json_escaped(tmp_path):
    path = write_slicer(
        make_record([left_pose()], names=['x"}, {"a": 1\n']), tmp_path / "t.mrk.json"
    )
    doc = json.loads(path[0].read_text())
    assert len(doc["markups"]) == 1
    assert read_slicer(path[0]).names == ['x"}, {"a": 1']
