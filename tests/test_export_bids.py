import json

import nibabel as nib
import numpy as np
import pytest

from tmsplan import record as rec
from tmsplan.errors import OutputExistsError, PoseError, SpaceError, UnreachableTargetError
from tmsplan.export import ExportWarning
from tmsplan.export.bids import MARKER_COLUMNS, coordsystem_path, read_bids, write_bids


def _t1():
    aff = np.array([[1.0, 0, 0, -90], [0, 1, 0, -126], [0, 0, 1, -72], [0, 0, 0, 1]])
    img = nib.Nifti1Image(np.zeros((4, 4, 4), np.float32), aff)
    img.set_sform(aff, code=1)
    img.set_qform(aff, code=1)
    return rec.t1_description(img, None, None)


def _random_poses(n, seed):
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


def _record(poses, names=None):
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
        "t1": _t1(),
        "roi": {},
        "activation": {},
        "targets": targets,
        "parameters": {},
        "warnings": [],
        "outputs": {},
    }


def _left_pose():
    # coil over the left hemisphere (x < 0), z pointing in (towards +x, down)
    pose = np.eye(4)
    z = np.array([0.8, 0.0, -0.6])
    y = np.array([0.0, 1.0, 0.0])
    pose[:3, :3] = np.column_stack([np.cross(y, z), y, z])
    pose[:3, 3] = [-60.0, 12.0, 45.0]
    return pose


def test_round_trip_20_random_poses(tmp_path):
    poses = _random_poses(20, seed=41)
    record = _record(poses)
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
    pose = _left_pose()
    record = _record([pose])
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
    pose = _left_pose()
    markers, _ = write_bids(_record([pose]), tmp_path / "sub-01_markers.tsv")
    header, row = (line.split("\t") for line in markers.read_text().splitlines())
    row[header.index("Matrix_4x4")] = "n/a"
    row[header.index("depth_mm")] = "n/a"
    (tmp_path / "x_markers.tsv").write_text("\t".join(header) + "\n" + "\t".join(row) + "\n")
    (marker,) = read_bids(tmp_path / "x_markers.tsv").markers
    np.testing.assert_allclose(marker.pose, pose, atol=1e-9)
    assert marker.info["depth_mm"] is None


def test_tabs_and_newlines_cannot_break_rows(tmp_path):
    names = ["a\tb", "c\nd", 'e"f<&>;g']
    markers, _ = write_bids(_record(_random_poses(3, 5), names=names), tmp_path / "s_markers.tsv")
    lines = markers.read_text().splitlines()
    assert len(lines) == 4 and all(len(line.split("\t")) == len(MARKER_COLUMNS) for line in lines)
    assert read_bids(markers).names == ["a b", "c d", 'e"f<&>;g']


def test_unreachable_left_out_with_warning(tmp_path):
    record = _record(_random_poses(2, 6))
    record["targets"][1]["reachable"] = False
    record["targets"][1]["unreachable_reason"] = "too deep"
    with pytest.warns(ExportWarning, match="'T1' \\(too deep\\)"):
        markers, _ = write_bids(record, tmp_path / "a_markers.tsv")
    assert read_bids(markers).names == ["T0"]
    record["targets"][0]["reachable"] = False
    with pytest.raises(UnreachableTargetError, match="no reachable target"):
        write_bids(record, tmp_path / "b_markers.tsv")
    assert not (tmp_path / "b_markers.tsv").exists()


def test_refusals(tmp_path):
    sheared = _left_pose()
    sheared[0, 2] += 0.1
    with pytest.raises(PoseError):
        write_bids(_record([sheared]), tmp_path / "a_markers.tsv")
    assert list(tmp_path.iterdir()) == []
    # the side file existing is enough to refuse, and nothing is written
    coordsystem_path(tmp_path / "b_markers.tsv").write_text("{}")
    with pytest.raises(OutputExistsError):
        write_bids(_record([_left_pose()]), tmp_path / "b_markers.tsv")
    assert not (tmp_path / "b_markers.tsv").exists()
    with pytest.raises(SpaceError):
        write_bids(_record([_left_pose()]), tmp_path / "c_markers.tsv", space="LPS")


def test_reader_refuses_shear(tmp_path):
    markers, _ = write_bids(_record([_left_pose()]), tmp_path / "a_markers.tsv")
    header, row = (line.split("\t") for line in markers.read_text().splitlines())
    values = np.array(row[header.index("Matrix_4x4")].split(","), float)
    values[1] += 0.2
    row[header.index("Matrix_4x4")] = ",".join(map(str, values))
    (tmp_path / "s_markers.tsv").write_text("\t".join(header) + "\n" + "\t".join(row) + "\n")
    with pytest.raises(PoseError, match="sheared"):
        read_bids(tmp_path / "s_markers.tsv")
