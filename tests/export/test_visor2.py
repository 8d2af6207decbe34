import json

import numpy as np
import pytest
from _export_records import RAS_AFFINE, left_pose, make_record, make_t1, random_poses
from _paths import SHARED

from tmsplan.errors import FormatError, OutputExistsError, PoseError, SpaceError
from tmsplan.export.visor2 import read_visor2, visor2_fingerprint, write_visor2

VENDOR = SHARED / "vendor-samples" / "ant"
SAMPLE = VENDOR / "ioJson3DMarker_example_SimNIBS.mrk"
needs_vendor = pytest.mark.skipif(
    not SAMPLE.is_file(), reason="vendor samples (../shared/vendor-samples) not available"
)

# an LAS-stored 1 mm image (qfac -1): the geometry of the visor2 sample's T1
_LAS = np.array([[-1.0, 0, 0, 90], [0, 1, 0, -126], [0, 0, 1, -172], [0, 0, 0, 1]])


def test_round_trip_20_random_poses(tmp_path):
    poses = random_poses(20, seed=21)
    path = write_visor2(make_record(poses), tmp_path / "m.mrk")[0]
    nav = read_visor2(path, t1=make_t1())
    assert nav.names == [f"T{i}" for i in range(20)]
    np.testing.assert_allclose(nav.poses().matrices, np.stack(poses), atol=1e-6)


def test_matrix_written_as_is_with_fingerprint(tmp_path):
    pose = left_pose()
    t1 = make_t1(_LAS)
    path = write_visor2(make_record([pose], t1=t1), tmp_path / "m.mrk")[0]
    doc = json.loads(path.read_text())
    target = doc["TargetMarkers"][0]["CoilTarget"]
    assert target["CoilAxesConvention"] == "simnibs"
    assert target["CoordinateSystem"] == "ASSOCIATED_IMAGE" and target["PositionalUnit"] == "mm"
    np.testing.assert_allclose(target["CoilPose"]["RigidTransformMatrix4x4"], pose, atol=1e-12)
    assert target["CoilPose"]["RigidTransformMatrix4x4"][0][3] == -60.0  # left stays left
    info = doc["Configuration"]["AssociatedImageInfo"]
    assert info == {
        "NIfTI_quatern": [0.0, 1.0, 0.0],
        "NIfTI_qoffset": [90.0, -126.0, -172.0],
        "NIfTI_pixdim": [-1.0, 1.0, 1.0, 1.0],
    }
    assert visor2_fingerprint(t1) == info
    assert read_visor2(path).markers[0].pose[0, 3] < 0


def test_fingerprint_mismatch_refused(tmp_path):
    path = write_visor2(make_record([left_pose()], t1=make_t1(_LAS)), tmp_path / "m.mrk")[0]
    with pytest.raises(SpaceError, match="another image"):
        read_visor2(path, t1=make_t1(RAS_AFFINE))
    shifted = _LAS.copy()
    shifted[2, 3] += 1.0
    with pytest.raises(SpaceError, match="qoffset"):
        read_visor2(path, t1=make_t1(shifted))
    assert len(read_visor2(path, t1=make_t1(_LAS)).markers) == 1


def test_reader_refusals(tmp_path):
    path = write_visor2(make_record([left_pose()]), tmp_path / "m.mrk")[0]
    doc = json.loads(path.read_text())
    doc["TargetMarkers"][0]["CoilTarget"]["CoilPose"]["RigidTransformMatrix4x4"][0][1] += 0.2
    (tmp_path / "s.mrk").write_text(json.dumps(doc))
    with pytest.raises(PoseError, match="sheared"):
        read_visor2(tmp_path / "s.mrk")
    doc = json.loads(path.read_text())
    doc["TargetMarkers"][0]["CoilTarget"]["CoilAxesConvention"] = "localite"
    (tmp_path / "c.mrk").write_text(json.dumps(doc))
    with pytest.raises(FormatError, match="convention"):
        read_visor2(tmp_path / "c.mrk")
    (tmp_path / "x.mrk").write_text("{}")
    with pytest.raises(FormatError, match="TargetMarkers"):
        read_visor2(tmp_path / "x.mrk")


def test_writer_refusals(tmp_path):
    sheared = left_pose()
    sheared[2, 0] += 0.3
    with pytest.raises(PoseError):
        write_visor2(make_record([sheared]), tmp_path / "a.mrk")
    assert not (tmp_path / "a.mrk").exists()
    write_visor2(make_record([left_pose()]), tmp_path / "b.mrk")
    with pytest.raises(OutputExistsError):
        write_visor2(make_record([left_pose()]), tmp_path / "b.mrk")


def test_names_are_json_escaped(tmp_path):
    name = 'a"b\\c</x>\n{'
    path = write_visor2(make_record([left_pose()], names=[name]), tmp_path / "m.mrk")[0]
    assert read_visor2(path).names == ['a"b\\c</x> {']


@needs_vendor
def test_vendor_sample_fingerprint_and_poses():
    nav = read_visor2(SAMPLE)
    assert nav.meta["source"] == {"AppName": "visor2", "AppVersion": "2.8.0"}
    assert nav.meta["fingerprint"] == {
        "quatern_bcd": [0.0, 1.0, 0.0],
        "qoffset_xyz": [90.0, -126.0, -172.0],
        "qfac": -1.0,
        "pixdim": [1.0, 1.0, 1.0],
    }
    assert nav.names[:3] == ["CoilMarker_1", "CoilMarker_2", "CoilMarker_3"]
    assert "" in nav.names  # a marker without a name is kept
    first = nav.markers[0].pose
    np.testing.assert_allclose(first[:3, 3], [-70.0, -10.0, 60.0])
    for marker in nav.markers:
        centre = marker.pose[:3, 3]
        assert marker.pose[:3, 2] @ (-centre / np.linalg.norm(centre)) > 0.7
        assert 50 < np.linalg.norm(centre) < 120
    # the sample's image is LAS-stored with qfac -1: an image with that geometry matches
    assert len(read_visor2(SAMPLE, t1=make_t1(_LAS)).markers) == len(nav.markers)
    with pytest.raises(SpaceError):
        read_visor2(SAMPLE, t1=make_t1(RAS_AFFINE))
