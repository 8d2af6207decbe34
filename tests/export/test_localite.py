import xml.etree.ElementTree as ET
from datetime import datetime

import numpy as np
import pytest
from _export_records import left_pose, make_record, random_poses
from _paths import SHARED

from tmsplan.errors import OutputExistsError, PoseError, SpaceError
from tmsplan.export import localite
from tmsplan.export.localite import (
    LOCALITE_FROM_CANONICAL,
    localite_filename,
    localite_marker_path,
    read_localite,
    write_localite,
    write_localite_entrytarget,
)

VENDOR = SHARED / "vendor-samples" / "localite"
needs_vendor = pytest.mark.skipif(
    not VENDOR.is_dir(), reason="vendor samples (../shared/vendor-samples) not available"
)


# -- private builders ---------------------------------------------------------


def _raw_matrices(path):
    root = ET.parse(path).getroot()
    return [
        np.array([[float(m.get(f"data{r}{c}")) for c in range(4)] for r in range(4)])
        for m in root.iter("Matrix4D")
    ]


# -- writer / reader ------------------------------------------------------------


@pytest.mark.parametrize("space", ["RAS", "LPS"])
def test_round_trip_20_random_poses(tmp_path, space):
    poses = random_poses(20, seed=1)
    out = write_localite(make_record(poses), tmp_path / "m.xml", space=space)
    nav = read_localite(out[0])
    assert nav.file_space == space
    assert nav.names == [f"T{i}" for i in range(20)]
    np.testing.assert_allclose(nav.poses().matrices, np.stack(poses), atol=1e-6)


def test_axis_relabelling_is_the_documented_matrix(tmp_path):
    pose = left_pose()
    (raw,) = _raw_matrices(write_localite(make_record([pose]), tmp_path / "m.xml")[0])
    np.testing.assert_allclose(raw, pose @ LOCALITE_FROM_CANONICAL, atol=1e-12)
    np.testing.assert_allclose(raw[:3, 0], pose[:3, 2])  # Localite x = into the head
    np.testing.assert_allclose(raw[:3, 1], -pose[:3, 1])  # Localite y = -handle axis
    np.testing.assert_allclose(raw[:3, 2], pose[:3, 0])
    np.testing.assert_allclose(LOCALITE_FROM_CANONICAL @ LOCALITE_FROM_CANONICAL, np.eye(4))


def test_lps_equals_ras_with_x_and_y_negated(tmp_path):
    poses = random_poses(5, seed=2)
    ras = _raw_matrices(write_localite(make_record(poses), tmp_path / "r.xml", space="RAS")[0])
    lps = _raw_matrices(write_localite(make_record(poses), tmp_path / "l.xml", space="LPS")[0])
    for r, m in zip(ras, lps, strict=True):
        np.testing.assert_allclose(m[:2, :], -r[:2, :], atol=1e-12)  # x, y of every column
        np.testing.assert_allclose(m[2:, :], r[2:, :], atol=1e-12)


def test_left_pose_stays_left(tmp_path):
    pose = left_pose()
    ras = write_localite(make_record([pose]), tmp_path / "r.xml")[0]
    lps = write_localite(make_record([pose]), tmp_path / "l.xml", space="LPS")[0]
    assert _raw_matrices(ras)[0][0, 3] == -60.0
    assert _raw_matrices(lps)[0][0, 3] == 60.0  # LPS x grows to the left
    for path in (ras, lps):
        back = read_localite(path).markers[0].pose
        assert back[0, 3] < 0
        np.testing.assert_allclose(back, pose, atol=1e-9)


def test_file_format_details(tmp_path):
    path = write_localite(make_record([left_pose()]), tmp_path / "m.xml")[0]
    data = path.read_bytes()
    assert b"\r" not in data
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<InstrumentMarkerList')
    root = ET.fromstring(data)
    assert root.get("coordinateSpace") == "RAS"
    marker = root.find("InstrumentMarker/Marker")
    assert marker.get("description") == "T0" and marker.get("set") == "true"
    assert list(root.find("InstrumentMarker/Marker/Matrix4D").attrib)[:2] == ["data00", "data01"]


def test_names_are_escaped_not_injected(tmp_path):
    evil = "M1 <b>\"x\" & 'y'</b>\n\t--><Injected/>"
    path = write_localite(make_record([left_pose()], names=[evil]), tmp_path / "m.xml")[0]
    root = ET.parse(path).getroot()
    assert root.find(".//Injected") is None and root.find(".//b") is None
    assert len(list(root.iter("InstrumentMarker"))) == 1
    # control characters become spaces; markup characters survive intact
    assert read_localite(path).names == ["M1 <b>\"x\" & 'y'</b>  --><Injected/>"]
    entry = write_localite_entrytarget(make_record([left_pose()], names=[evil]), tmp_path / "e.xml")
    assert ET.parse(entry[0]).getroot().find(".//Injected") is None


def test_entry_target_round_trip_and_lps(tmp_path):
    poses = random_poses(20, seed=3)
    record = make_record(poses)
    for space in ("RAS", "LPS"):
        path = write_localite_entrytarget(record, tmp_path / f"e_{space}.xml", space=space)[0]
        nav = read_localite(path)
        assert nav.format == "localite-entrytarget" and nav.file_space == space
        for marker, target in zip(nav.markers, record["targets"], strict=True):
            assert marker.kind == "entry-target" and marker.pose is None
            np.testing.assert_allclose(marker.scalp_mm, target["scalp_mm"], atol=1e-9)
            np.testing.assert_allclose(marker.cortical_mm, target["cortical_mm"], atol=1e-9)
    lps_root = ET.parse(tmp_path / "e_LPS.xml").getroot()
    vec = lps_root.find("Target/Marker/ColVec3D")
    expected = np.array(record["targets"][0]["cortical_mm"]) * [-1, -1, 1]
    np.testing.assert_allclose([float(vec.get(f"data{k}")) for k in range(3)], expected)


def test_shear_and_nan_refused_before_writing(tmp_path):
    sheared = left_pose()
    sheared[0, 1] += 0.2
    with pytest.raises(PoseError, match="not orthonormal"):
        write_localite(make_record([sheared]), tmp_path / "a.xml")
    nan = left_pose()
    nan[1, 3] = np.nan
    with pytest.raises(PoseError, match="NaN"):
        write_localite(make_record([nan]), tmp_path / "b.xml")
    assert list(tmp_path.iterdir()) == []


def test_reader_refuses_shear(tmp_path):
    path = write_localite(make_record([left_pose()]), tmp_path / "m.xml")[0]
    root = ET.parse(path).getroot()
    matrix = root.find(".//Matrix4D")
    matrix.set("data01", str(float(matrix.get("data01")) + 0.1))
    ET.ElementTree(root).write(tmp_path / "sheared.xml", encoding="UTF-8", xml_declaration=True)
    with pytest.raises(PoseError, match="sheared"):
        read_localite(tmp_path / "sheared.xml")


def test_existing_file_refused_without_overwrite(tmp_path):
    path = tmp_path / "m.xml"
    path.write_text("keep")
    with pytest.raises(OutputExistsError):
        write_localite(make_record([left_pose()]), path)
    assert path.read_text() == "keep"
    write_localite(make_record([left_pose()]), path, overwrite=True)
    assert read_localite(path).names == ["T0"]


def test_space_checked(tmp_path):
    with pytest.raises(SpaceError, match="RAS, LPS"):
        write_localite(make_record([left_pose()]), tmp_path / "m.xml", space="LAS")


def test_session_layout_helpers(tmp_path):
    when = datetime(2024, 3, 5, 14, 7, 9, 42_000)
    assert localite_filename("InstrumentMarker", when) == "InstrumentMarker20240305140709042.xml"
    assert localite_filename("EntryTarget", when) == "EntryTarget20240305140709042.xml"
    session = tmp_path / "Pat" / "Sessions" / "Session_20240305140000000"
    assert localite_marker_path(session, when=when) == (
        session / "InstrumentMarkers" / "InstrumentMarker20240305140709042.xml"
    )


# -- real vendor files ----------------------------------------------------------
# Centre of the head: the origin of the NIfTI world. These files are in the
# scanner/aligned RAS (or LPS) world of a head T1, whose origin lies near the head
# centre (isocentre/AC). The mean of the marker positions would not do: all
# markers of each file sit over one motor area, so their mean lies on the scalp.


def _inward_and_on_scalp(pose):
    centre = pose[:3, 3]
    to_middle = -centre / np.linalg.norm(centre)
    return float(pose[:3, 2] @ to_middle), float(np.linalg.norm(centre))


@needs_vendor
@pytest.mark.parametrize(
    ("name", "space", "count"),
    [
        ("RAS_InstrumentMarker20170316160859032.xml", "RAS", 6),
        ("LPS_InstrumentMarker20120925123537421.xml", "LPS", 4),
    ],
)
def test_vendor_instrument_markers(name, space, count):
    nav = read_localite(VENDOR / name)
    assert nav.file_space == space and len(nav.markers) == count
    for marker in nav.markers:
        rot = marker.pose[:3, :3]
        np.testing.assert_allclose(rot.T @ rot, np.eye(3), atol=1e-12)
        assert np.linalg.det(rot) > 0
        cosine, distance = _inward_and_on_scalp(marker.pose)
        assert cosine > 0.7, (marker.name, cosine)
        assert 50 < distance < 120, (marker.name, distance)
    if space == "RAS":  # M1 markers of this file lie over the left hemisphere
        assert all(m.pose[0, 3] < 0 for m in nav.markers)
        assert nav.names[:3] == ["M0", "M+45", "M-45"]


@needs_vendor
def test_vendor_lps_file_converted_to_ras():
    nav = read_localite(VENDOR / "LPS_InstrumentMarker20120925123537421.xml")
    raw = _raw_matrices(VENDOR / "LPS_InstrumentMarker20120925123537421.xml")[0]
    np.testing.assert_allclose(nav.markers[0].pose[:3, 3], raw[:3, 3] * [-1, -1, 1])
    assert nav.markers[0].name == "hotspot"


@needs_vendor
def test_vendor_entry_target():
    nav = read_localite(VENDOR / "EntryTarget20120925115848265.xml")
    (marker,) = nav.markers
    assert nav.file_space == "LPS" and marker.name == "premot"
    np.testing.assert_allclose(
        marker.scalp_mm, [-37.00814767241603, -26.455739754239733, 92.97407888875009]
    )
    np.testing.assert_allclose(
        marker.cortical_mm, [-28.85528143037781, -29.513064595004064, 78.70656296518321]
    )
    # the target lies deeper than the entry, i.e. nearer the head centre
    assert np.linalg.norm(marker.cortical_mm) < np.linalg.norm(marker.scalp_mm)


@needs_vendor
def test_vendor_trigger_markers_flag_untracked_pulses():
    nav = read_localite(VENDOR / "TriggerMarkers_Coil0_20210409170817799.xml")
    assert len(nav.markers) == 8
    assert all(m.kind == "pulse" and m.pose is None for m in nav.markers)
    assert all(m.info["tracked"] is False for m in nav.markers)
    assert nav.markers[0].info["responses"]["amplitudeA"] == "45.0"
    assert len(nav.poses()) == 0


def test_trigger_marker_tracked_pulse(tmp_path):
    pose = left_pose()
    raw = pose @ LOCALITE_FROM_CANONICAL
    attrs = " ".join(f'data{r}{c}="{float(raw[r, c])!r}"' for r in range(4) for c in range(4))
    ident = " ".join(f'data{r}{c}="{float(r == c)}"' for r in range(4) for c in range(4))
    (tmp_path / "t.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<TriggerMarkerList coordinateSpace="RAS">'
        f'<TriggerMarker description="p1"><Matrix4D {attrs}/></TriggerMarker>'
        f'<TriggerMarker description="p2"><Matrix4D {ident}/></TriggerMarker>'
        "</TriggerMarkerList>"
    )
    first, second = read_localite(tmp_path / "t.xml").markers
    assert first.info["tracked"] and not second.info["tracked"]
    np.testing.assert_allclose(first.pose, pose, atol=1e-12)
    assert second.pose is None


def test_not_localite_refused(tmp_path):
    (tmp_path / "x.xml").write_text("<Other/>")
    with pytest.raises(localite.FormatError, match="not a Localite"):
        read_localite(tmp_path / "x.xml")
