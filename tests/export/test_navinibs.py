"""NaviNIBS targets JSON: layout, axes, round trip, and loading by NaviNIBS itself.

The last test needs the ``navinibs`` package (it pulls PySide6, so it is not in
the test extra); see the README, "Testing the NaviNIBS export", to run it.
"""

import json
import warnings

import numpy as np
import pytest
from _export_records import left_pose, make_record, random_poses

from tmsplan.errors import FormatError, OutputExistsError, PoseError, SpaceError
from tmsplan.export import export_record, read_export
from tmsplan.export.navinibs import (
    NAVINIBS_FROM_TMSPLAN,
    NAVINIBS_TARGET_KEYS,
    read_navinibs,
    write_navinibs,
)


def test_round_trip_20_random_poses(tmp_path):
    poses = random_poses(20, seed=71)
    record = make_record(poses)
    (path,) = write_navinibs(record, tmp_path / "t.json")
    nav = read_navinibs(path)
    assert nav.format == "navinibs" and nav.file_space == "RAS"
    assert nav.names == [f"T{i}" for i in range(20)]
    np.testing.assert_allclose(nav.poses().matrices, np.stack(poses), atol=1e-6)
    for marker, target in zip(nav.markers, record["targets"], strict=True):
        np.testing.assert_allclose(marker.cortical_mm, target["cortical_mm"], atol=1e-9)
        np.testing.assert_allclose(marker.scalp_mm, target["scalp_mm"], atol=1e-9)
        assert marker.info == {"depth_offset_mm": 5.0}


def test_exactly_the_keys_navinibs_takes_and_the_axes(tmp_path):
    pose = left_pose()
    (path,) = write_navinibs(make_record([pose]), tmp_path / "t.json")
    doc = json.loads(path.read_text())
    assert list(doc) == ["targets"]
    (entry,) = doc["targets"]
    assert tuple(entry) == NAVINIBS_TARGET_KEYS
    assert entry["key"] == "T0" and entry["depthOffset"] == 5.0
    nav = np.asarray(entry["coilToMRITransf"])
    # NaviNIBS: -y along the handle, -z into the head, same origin, x kept
    np.testing.assert_allclose(-nav[:3, 1], pose[:3, 1], atol=1e-12)
    np.testing.assert_allclose(-nav[:3, 2], pose[:3, 2], atol=1e-12)
    np.testing.assert_allclose(nav[:3, 0], pose[:3, 0], atol=1e-12)
    np.testing.assert_allclose(nav[:3, 3], [-60.0, 12.0, 45.0], atol=1e-12)
    assert np.linalg.det(nav[:3, :3]) == pytest.approx(1.0)
    # the coil origin sits depthOffset out from the entry, along NaviNIBS's +z (outwards)
    np.testing.assert_allclose(
        nav[:3, 3], np.asarray(entry["entryCoord"]) + entry["depthOffset"] * nav[:3, 2], atol=1e-9
    )
    np.testing.assert_allclose(NAVINIBS_FROM_TMSPLAN @ NAVINIBS_FROM_TMSPLAN, np.eye(4))


def test_left_target_stays_left(tmp_path):
    """Asymmetric check: a left target is written and read back with x < 0, not mirrored."""
    (path,) = write_navinibs(make_record([left_pose()]), tmp_path / "t.json")
    (entry,) = json.loads(path.read_text())["targets"]
    assert entry["entryCoord"][0] < entry["targetCoord"][0] < 0  # entry lateral to target
    assert entry["coilToMRITransf"][0][3] < 0
    # the coil points into the head: towards +x from the left side (NaviNIBS -z)
    assert -entry["coilToMRITransf"][0][2] > 0
    (marker,) = read_navinibs(path).markers
    assert marker.pose[0, 3] < 0 and marker.cortical_mm[0] < 0
    np.testing.assert_allclose(marker.pose, left_pose(), atol=1e-9)


def test_registry_and_default_name(tmp_path):
    record = make_record([left_pose()])
    (path,) = export_record(record, "navinibs", tmp_path)
    assert path.name == "navinibs_targets.json"
    assert read_export(path, "navinibs").names == ["T0"]
    with pytest.raises(SpaceError, match="not available for the navinibs format"):
        export_record(record, "navinibs", tmp_path / "lps", space="LPS")
    with pytest.raises(OutputExistsError):
        write_navinibs(record, path)
    write_navinibs(record, path, overwrite=True)


def test_duplicate_names_get_unique_keys(tmp_path):
    record = make_record(random_poses(3, seed=2), names=["DLPFC", "DLPFC", "DLPFC"])
    (path,) = write_navinibs(record, tmp_path / "t.json")
    assert read_navinibs(path).names == ["DLPFC", "DLPFC #2", "DLPFC #3"]


def test_unreachable_target_left_out(tmp_path):
    from tmsplan.export import ExportWarning

    record = make_record(random_poses(2, seed=3))
    record["targets"][1]["reachable"] = False
    record["targets"][1]["unreachable_reason"] = "too deep"
    with pytest.warns(ExportWarning, match="'T1' \\(too deep\\)"):
        (path,) = write_navinibs(record, tmp_path / "t.json")
    assert read_navinibs(path).names == ["T0"]


def test_reads_navinibs_own_targets_with_extra_keys_and_bare_lists(tmp_path):
    pose = left_pose()
    own = [
        {
            "key": "M1",
            "targetCoord": [-40.0, -20.0, 60.0],
            "entryCoord": [-50.0, -22.0, 75.0],
            "angle": 45.0,
            "color": "#0000FF",
            "isVisible": True,
            "coilToMRITransf": (pose @ NAVINIBS_FROM_TMSPLAN).tolist(),
        },
        {"key": "no pose", "targetCoord": [1.0, 2.0, 3.0]},
    ]
    (tmp_path / "list.json").write_text(json.dumps(own))
    first, second = read_navinibs(tmp_path / "list.json").markers
    np.testing.assert_allclose(first.pose, pose, atol=1e-12)
    assert first.info == {"angle": 45.0, "color": "#0000FF", "isVisible": True}
    assert second.pose is None and second.scalp_mm is None
    np.testing.assert_allclose(second.cortical_mm, [1, 2, 3])


@pytest.mark.parametrize(
    ("doc", "error", "message"),
    [
        ({"markups": []}, FormatError, "no 'targets' list"),
        ({"targets": [{"targetCoord": [0, 0, 0]}]}, FormatError, "'key' string"),
        ({"targets": [{"key": "a", "targetCoord": [0, 0]}]}, FormatError, "3 numbers"),
        ({"targets": [{"key": "a", "coilToMRITransf": [[1, 0, 0]]}]}, FormatError, "4x4"),
        (
            {"targets": [{"key": "a", "coilToMRITransf": np.diag([1, 1, 2, 1]).tolist()}]},
            PoseError,
            "not orthonormal",
        ),
        (
            {"targets": [{"key": "a", "coilToMRITransf": np.diag([-1, 1, 1, 1]).tolist()}]},
            PoseError,
            "determinant",
        ),
        ({"targets": [{"key": "a", "entryCoord": [0, "x", 0]}]}, FormatError, "number"),
    ],
)
def test_malformed_files_are_refused(tmp_path, doc, error, message):
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    with pytest.raises(error, match=message):
        read_navinibs(tmp_path / "bad.json")


def _navinibs_session(tmp_path):
    """A fresh NaviNIBS session (needs the optional ``navinibs`` package)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its GUI stack warns on import
        session_module = pytest.importorskip("NaviNIBS.Navigator.Model.Session")
    return session_module.Session(
        filepath=str(tmp_path / "test.navinibs"), unpackedSessionDir=str(tmp_path / "unpacked")
    )


def test_navinibs_itself_loads_the_file(tmp_path):
    """NaviNIBS's own importer takes the file and keeps tmsplan's pose exactly."""
    session = _navinibs_session(tmp_path)
    poses = [left_pose(), *random_poses(3, seed=9)]
    record = make_record(poses, names=["left DLPFC", "T1", "T2", "T3"])
    (path,) = write_navinibs(record, tmp_path / "targets.json")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        session.mergeFromFile(str(path), sections=["targets"])
    assert list(session.targets.keys()) == ["left DLPFC", "T1", "T2", "T3"]
    for name, pose, target in zip(session.targets.keys(), poses, record["targets"], strict=True):
        loaded = session.targets[name]
        transf = np.asarray(loaded.coilToMRITransf, dtype=float)
        np.testing.assert_allclose(transf, pose @ NAVINIBS_FROM_TMSPLAN, atol=1e-9)
        # NaviNIBS's own reading of the axes: its handle (-y) is tmsplan's handle
        np.testing.assert_allclose(transf[:3, :3] @ [0, -1, 0], pose[:3, 1], atol=1e-9)
        np.testing.assert_allclose(transf[:3, :3] @ [0, 0, -1], pose[:3, 2], atol=1e-9)
        np.testing.assert_allclose(loaded.targetCoord, target["cortical_mm"], atol=1e-9)
        np.testing.assert_allclose(loaded.entryCoord, target["scalp_mm"], atol=1e-9)
        assert loaded.depthOffset == pytest.approx(5.0)
    assert session.targets["left DLPFC"].coilToMRITransf[0][3] < 0
