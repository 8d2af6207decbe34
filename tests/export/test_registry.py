import json
import re
import warnings
import xml.etree.ElementTree as ET
from datetime import datetime

import numpy as np
import pytest
from _export_records import left_pose, make_record, random_poses

from tmsplan.errors import (
    FormatError,
    OutputExistsError,
    PoseError,
    SpaceError,
    UnreachableTargetError,
)
from tmsplan.export import (
    FORMATS,
    ExportWarning,
    default_filenames,
    export_all,
    export_record,
    read_export,
)

WHEN = datetime(2024, 3, 5, 14, 7, 9, 42_000)


def test_format_names():
    assert list(FORMATS) == [
        "localite",
        "localite-entrytarget",
        "brainsight",
        "visor2",
        "slicer",
        "navinibs",
        "bids",
        "csv",
        "json",
    ]
    assert {n for n, s in FORMATS.items() if "LPS" in s.spaces} == {
        "localite",
        "localite-entrytarget",
        "slicer",
    }
    assert {n for n, s in FORMATS.items() if not s.navigator} == {"csv", "json"}


def test_unknown_format_lists_valid_names(tmp_path):
    with pytest.raises(FormatError, match="valid formats are: localite, localite-entrytarget"):
        export_record(make_record([left_pose()]), "nexstim", tmp_path)
    with pytest.raises(FormatError, match="brainsight"):
        read_export(tmp_path / "x", "neuronav")


def test_unsupported_space(tmp_path):
    with pytest.raises(SpaceError, match="not available for the brainsight format"):
        export_record(make_record([left_pose()]), "brainsight", tmp_path, space="LPS")
    with pytest.raises(SpaceError):
        export_all(make_record([left_pose()]), tmp_path, ["slicer", "csv"], space="LPS")
    assert list(tmp_path.iterdir()) == []


def test_default_filenames():
    names = default_filenames({"subject": "sub-P 07"}, when=WHEN)
    assert names["localite"] == ["InstrumentMarker20240305140709042.xml"]
    assert names["localite-entrytarget"] == ["EntryTarget20240305140709042.xml"]
    assert names["bids"] == ["sub-P07_markers.tsv", "sub-P07_coordsystem.json"]
    assert set(names) == set(FORMATS)


def test_out_is_a_folder_or_a_file(tmp_path):
    record = make_record([left_pose()])
    (folder_file,) = export_record(record, "csv", tmp_path / "out", when=WHEN)
    assert folder_file == tmp_path / "out" / "targets_table.csv"
    (named,) = export_record(record, "csv", tmp_path / "mine.csv")
    assert named == tmp_path / "mine.csv"
    (slicer,) = export_record(record, "slicer", tmp_path / "s.mrk.json")
    assert slicer == tmp_path / "s.mrk.json"
    (js,) = export_record(record, "json", tmp_path / "t.json")
    assert js == tmp_path / "t.json"
    (loc,) = export_record(record, "localite", tmp_path / "loc", when=WHEN)
    assert loc.name == "InstrumentMarker20240305140709042.xml"
    bids = export_record(record, "bids", tmp_path / "b" / "sub-x_markers.tsv")
    assert [p.name for p in bids] == ["sub-x_markers.tsv", "sub-x_coordsystem.json"]


def test_export_all_writes_every_format(tmp_path):
    record = make_record(random_poses(3, 61))
    out = export_all(record, tmp_path, when=WHEN)
    assert list(out) == list(FORMATS)
    assert out["bids"] == ["sub-01_markers.tsv", "sub-01_coordsystem.json"]
    assert out["localite"] == ["InstrumentMarker20240305140709042.xml"]
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == sorted(f for files in out.values() for f in files)
    json.dumps(out)  # fits record["outputs"]


def test_export_all_lps_defaults_to_formats_offering_it(tmp_path):
    out = export_all(make_record([left_pose()]), tmp_path, space="LPS", when=WHEN)
    assert list(out) == ["localite", "localite-entrytarget", "slicer"]
    root = ET.parse(tmp_path / out["localite"][0]).getroot()
    assert root.get("coordinateSpace") == "LPS"
    assert float(root.find(".//Matrix4D").get("data03")) == 60.0


def test_export_all_checks_everything_before_writing(tmp_path):
    record = make_record([left_pose()])
    (tmp_path / "targets_table.json").write_text("keep")
    with pytest.raises(OutputExistsError):
        export_all(record, tmp_path, when=WHEN)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["targets_table.json"]
    out = export_all(record, tmp_path, when=WHEN, overwrite=True)
    assert json.loads((tmp_path / out["json"][0]).read_text())["format"] == "tmsplan-targets"


@pytest.mark.parametrize("defect", ["shear", "nan", "mirror"])
def test_bad_pose_refused_nothing_written(tmp_path, defect):
    poses = random_poses(3, 62)
    bad = poses[1]
    if defect == "shear":
        bad[0, 1] += 0.05
    elif defect == "nan":
        bad[2, 3] = np.nan
    else:
        bad[:3, 0] *= -1
    with pytest.raises(PoseError, match="'T1'"):
        export_all(make_record(poses), tmp_path / "out")
    for fmt in FORMATS:
        with pytest.raises(PoseError):
            export_record(make_record(poses), fmt, tmp_path / "out", when=WHEN)
    assert not (tmp_path / "out").exists()


def test_unreachable_targets(tmp_path):
    record = make_record(random_poses(3, 63))
    record["targets"][2]["reachable"] = False
    record["targets"][2]["unreachable_reason"] = "deeper than 40 mm"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = export_all(record, tmp_path, when=WHEN)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and issubclass(caught[0].category, ExportWarning)
    assert "'T2' (deeper than 40 mm)" in messages[0] and "brainsight" in messages[0]
    for fmt in ("localite", "brainsight", "visor2", "slicer", "bids"):
        assert read_export(tmp_path / out[fmt][0], fmt).names == ["T0", "T1"]
    for fmt in ("csv", "json"):
        nav = read_export(tmp_path / out[fmt][0], fmt)
        assert nav.names == ["T0", "T1", "T2"]
        assert nav.markers[2].info["reachable"] is False


def test_no_reachable_target(tmp_path):
    record = make_record([left_pose()])
    record["targets"][0]["reachable"] = False
    record["targets"][0]["unreachable_reason"] = "no scalp"
    with pytest.warns(ExportWarning, match="navigator formats .* not written"):
        out = export_all(record, tmp_path / "a")
    assert list(out) == ["csv", "json"]
    with pytest.raises(UnreachableTargetError, match="'T0' \\(no scalp\\)"):
        export_all(record, tmp_path / "b", ["localite", "csv"])
    assert not (tmp_path / "b").exists()


def _reader_kwargs(fmt, record):
    return {"t1": record["t1"]} if fmt == "visor2" else {}


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f != "localite-entrytarget"])
def test_every_format_round_trips_20_poses(tmp_path, fmt):
    poses = random_poses(20, 64)
    record = make_record(poses)
    paths = export_record(record, fmt, tmp_path, when=WHEN)
    nav = read_export(paths[0], fmt, **_reader_kwargs(fmt, record))
    np.testing.assert_allclose(nav.poses().matrices, np.stack(poses), atol=1e-6)
    assert nav.names == [f"T{i}" for i in range(20)]


def test_entrytarget_round_trips_points(tmp_path):
    record = make_record(random_poses(20, 65))
    (path,) = export_record(record, "localite-entrytarget", tmp_path, when=WHEN)
    nav = read_export(path, "localite-entrytarget")
    np.testing.assert_allclose(
        [m.cortical_mm for m in nav.markers], [t["cortical_mm"] for t in record["targets"]]
    )


@pytest.mark.parametrize("space", ["RAS", "LPS"])
def test_left_stays_left_in_every_format(tmp_path, space):
    record = make_record([left_pose()])
    formats = [n for n, s in FORMATS.items() if space in s.spaces]
    out = export_all(record, tmp_path, formats, space=space, when=WHEN)
    for fmt, files in out.items():
        marker = read_export(tmp_path / files[0], fmt).markers[0]
        point = marker.pose[:3, 3] if marker.pose is not None else marker.scalp_mm
        assert point[0] < 0, fmt
        if marker.pose is not None:
            np.testing.assert_allclose(marker.pose, left_pose(), atol=1e-9)
    if space == "LPS":
        root = ET.parse(tmp_path / out["localite"][0]).getroot()
        assert float(root.find(".//Matrix4D").get("data03")) > 0
        slicer = json.loads((tmp_path / out["slicer"][0]).read_text())
        assert slicer["markups"][0]["controlPoints"][0]["position"][0] > 0


def test_export_all_uses_one_time_stamp_when_none_is_given(tmp_path, monkeypatch):
    import tmsplan.export as export

    class _Clock(datetime):
        calls = 0

        @classmethod
        def now(cls, tz=None):
            cls.calls += 1  # every call is one millisecond later
            return WHEN.replace(microsecond=WHEN.microsecond + 1000 * cls.calls)

    monkeypatch.setattr(export, "datetime", _Clock)
    record = make_record([left_pose()])
    out = export_all(record, tmp_path, ["localite", "localite-entrytarget", "csv"])
    assert _Clock.calls == 1
    assert out["localite"] == ["InstrumentMarker20240305140709043.xml"]
    assert out["localite-entrytarget"] == ["EntryTarget20240305140709043.xml"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f for v in out.values() for f in v)
    # same clock again: the check of existing files looks at the names that would be written
    monkeypatch.setattr(_Clock, "calls", 0)
    with pytest.raises(OutputExistsError, match="EntryTarget20240305140709043"):
        export_all(record, tmp_path, ["localite-entrytarget", "localite"])


def test_export_all_is_all_or_nothing(tmp_path):
    from tmsplan.errors import RecordError

    record = make_record([left_pose()])
    del record["t1"]["quatern_bcd"]  # localite and brainsight need no qform; visor2 does
    with pytest.raises(RecordError, match="quatern_bcd"):
        export_all(record, tmp_path / "out", ["localite", "brainsight", "visor2"], when=WHEN)
    assert not (tmp_path / "out").exists()
    (tmp_path / "out").mkdir()
    with pytest.raises(RecordError, match="quatern_bcd"):
        export_all(record, tmp_path / "out", ["localite", "brainsight", "visor2"], when=WHEN)
    assert list((tmp_path / "out").iterdir()) == []
    # a target without its scalp entry: refused before the first file of any format is written
    record = make_record([left_pose()])
    record["targets"][0]["scalp_mm"] = None
    with pytest.raises(RecordError, match="targets\\[0\\].scalp_mm"):
        export_all(record, tmp_path / "out", ["csv", "localite-entrytarget"], when=WHEN)
    assert list((tmp_path / "out").iterdir()) == []


def test_export_all_removes_its_new_files_when_a_write_fails(tmp_path):
    record = make_record([left_pose()])
    # a folder where the last file goes: found only when that file is written (overwrite)
    (tmp_path / "targets_table.json").mkdir()
    (tmp_path / "targets_table.json" / "keep").write_text("x")
    with pytest.raises(OSError):
        export_all(record, tmp_path, ["localite", "bids", "json"], overwrite=True, when=WHEN)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["targets_table.json"]


@pytest.mark.parametrize(
    ("fmt", "name", "expected"),
    [
        ("slicer", "x.json", ".mrk.json"),
        ("slicer", "x.mrk", ".mrk.json"),
        ("csv", "x.txt", ".csv"),
        ("json", "x.csv", ".json"),
        ("localite", "x.mrk.json", ".xml"),
        ("brainsight", "x.xml", ".txt"),
        ("visor2", "x.json", ".mrk"),
        ("bids", "sub-01.tsv", "_markers.tsv"),
        ("bids", "sub-01_markers.csv", "_markers.tsv"),
    ],
)
def test_out_with_another_suffix_is_refused(tmp_path, fmt, name, expected):
    record = make_record([left_pose()])
    with pytest.raises(FormatError, match=f"{fmt} files end with '{re.escape(expected)}'"):
        export_record(record, fmt, tmp_path / name, when=WHEN)
    assert list(tmp_path.iterdir()) == []


def test_out_naming_an_existing_file_of_another_kind_is_refused(tmp_path):
    record = make_record([left_pose()])
    (tmp_path / "notes").write_text("keep")
    with pytest.raises(FormatError, match="'.*notes' is an existing file.*'.csv'"):
        export_record(record, "csv", tmp_path / "notes", when=WHEN)
    assert (tmp_path / "notes").read_text() == "keep"
    # a folder with a dotted name is still a folder
    (tmp_path / "plan.v2").mkdir()
    (path,) = export_record(record, "csv", tmp_path / "plan.v2", when=WHEN)
    assert path == tmp_path / "plan.v2" / "targets_table.csv"
    (path,) = export_record(record, "slicer", tmp_path / "run.2024", when=WHEN)
    assert path == tmp_path / "run.2024" / "slicer_targets.mrk.json"
