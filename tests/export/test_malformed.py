"""Every reader refuses a malformed file with a FormatError that names the file.

Each case starts from a valid file written by tmsplan, damages it in one way
(truncated, wrong JSON types, missing keys or columns, rows cut short, ...) and
checks that the reader raises :class:`~tmsplan.errors.FormatError` (never an
AttributeError, TypeError, ValueError, KeyError or OSError of its own) and that
the message names the damaged file.
"""

import json
import re
from datetime import datetime
from pathlib import Path

import pytest
from _export_records import make_record, random_poses

from tmsplan.errors import FormatError
from tmsplan.export import FORMATS, export_record, read_export
from tmsplan.export.bids import coordsystem_path

WHEN = datetime(2024, 3, 5, 14, 7, 9, 42_000)


def _text(fn):
    """A damage acting on the main file's text."""

    def damage(paths):
        paths[0].write_text(fn(paths[0].read_text(encoding="utf-8")), encoding="utf-8")
        return paths[0]

    return damage


def _raw(data):
    def damage(paths):
        paths[0].write_bytes(data(paths[0].read_bytes()) if callable(data) else data)
        return paths[0]

    return damage


def _json(fn):
    """A damage editing the main file's JSON document in place (``fn(doc)``)."""

    def edit(text):
        doc = json.loads(text)
        out = fn(doc)
        return json.dumps(doc if out is None else out)

    return _text(edit)


def _side(content):
    """A damage replacing the BIDS coordsystem file (bytes, or None for a folder)."""

    def damage(paths):
        side = coordsystem_path(paths[0])
        side.unlink()
        if content is None:
            side.mkdir()
        else:
            side.write_bytes(content)
        return side

    return damage


def _lines(fn):
    return _text(lambda text: "\n".join(fn(text.splitlines())) + "\n")


def _cut_row(lines, sep):
    return [*lines[:-1], sep.join(lines[-1].split(sep)[:3])]


def _set(path_keys, value):
    def fn(doc):
        node = doc
        for key in path_keys[:-1]:
            node = node[key]
        node[path_keys[-1]] = value

    return fn


def _delete(path_keys):
    def fn(doc):
        node = doc
        for key in path_keys[:-1]:
            node = node[key]
        del node[path_keys[-1]]

    return fn


_GENERIC = {
    "empty": _raw(b""),
    "truncated": _raw(lambda data: data[: len(data) // 2]),
    "not UTF-8": _raw(bytes(range(128, 256)) * 4),
}

_CASES = {
    "localite": {
        "unknown encoding": _text(lambda t: t.replace('encoding="UTF-8"', 'encoding="abc"')),
        "other root": _text(lambda t: t.replace("InstrumentMarkerList", "Markers")),
        "no data03": _text(lambda t: re.sub(r' data03="[^"]*"', "", t, count=1)),
        "text number": _text(lambda t: re.sub(r'data00="[^"]*"', 'data00="abc"', t, count=1)),
        "no Matrix4D": _text(lambda t: re.sub(r"<Matrix4D[^>]*/>", "", t)),
        "space IJK": _text(lambda t: t.replace('coordinateSpace="RAS"', 'coordinateSpace="IJK"')),
    },
    "localite-entrytarget": {
        "no data1": _text(lambda t: re.sub(r' data1="[^"]*"', "", t, count=1)),
        "text number": _text(lambda t: re.sub(r'data2="[^"]*"', 'data2="x"', t, count=1)),
    },
    "brainsight": {
        "no header": _lines(lambda lines: [ln for ln in lines if not ln.startswith("#")]),
        "not NIfTI": _text(lambda t: re.sub(r"NIfTI:\S+", "Brainsight", t, count=1)),
        "text number": _lines(lambda lines: [*lines[:-1], lines[-1].replace("\t", "\tabc", 1)]),
        "short row": _lines(lambda lines: _cut_row(lines, "\t")),
        "long row": _lines(lambda lines: [*lines[:-1], lines[-1] + "\t1"]),
        "header without m2n2": _text(lambda t: t.replace("\tm2n2", "")),
    },
    "visor2": {
        "markers [1]": _json(_set(["TargetMarkers"], [1])),
        "no TargetMarkers": _json(_delete(["TargetMarkers"])),
        "Configuration 1": _json(_set(["Configuration"], 1)),
        "image info list": _json(_set(["Configuration", "AssociatedImageInfo"], [])),
        "no pixdim": _json(_delete(["Configuration", "AssociatedImageInfo", "NIfTI_pixdim"])),
        "short quatern": _json(
            _set(["Configuration", "AssociatedImageInfo", "NIfTI_quatern"], [0])
        ),
        "CoilPose 1": _json(_set(["TargetMarkers", 0, "CoilTarget", "CoilPose"], 1)),
        "ragged matrix": _json(
            _set(
                ["TargetMarkers", 0, "CoilTarget", "CoilPose", "RigidTransformMatrix4x4"],
                [[1, 0, 0, 0], [0, 1, 0], [0, 0, 1, 0], [0, 0, 0, 1]],
            )
        ),
        "matrix rows of text": _json(
            _set(
                ["TargetMarkers", 0, "CoilTarget", "CoilPose", "RigidTransformMatrix4x4"],
                ["abcd"] * 4,
            )
        ),
        "no CoilTarget": _json(_set(["TargetMarkers", 0], {"Other": {}})),
        "units m": _json(_set(["TargetMarkers", 0, "CoilTarget", "PositionalUnit"], "m")),
    },
    "slicer": {
        "markups [1]": _json(_set(["markups"], [1])),
        "no markups": _json(_delete(["markups"])),
        "controlPoints 'x'": _json(_set(["markups", 0, "controlPoints"], "x")),
        "controlPoints 1": _json(_set(["markups", 0, "controlPoints"], 1)),
        "control point 1": _json(_set(["markups", 0, "controlPoints", 0], 1)),
        "position text": _json(_set(["markups", 0, "controlPoints", 0, "position"], "abc")),
        "short orientation": _json(_set(["markups", 0, "controlPoints", 0, "orientation"], [1])),
        "coordinateSystem IJK": _json(_set(["markups", 0, "coordinateSystem"], "IJK")),
        "no coil orientation": _json(_delete(["markups", 0, "controlPoints", 0, "orientation"])),
    },
    "navinibs": {
        "targets [1]": _json(_set(["targets"], [1])),
        "targets 'x'": _json(_set(["targets"], "x")),
        "no targets": _json(_delete(["targets"])),
        "no key": _json(_delete(["targets", 0, "key"])),
        "key 1": _json(_set(["targets", 0, "key"], 1)),
        "ragged transform": _json(_set(["targets", 0, "coilToMRITransf"], [[1, 0], [0, 1, 2]])),
        "stacked transform": _json(
            _set(["targets", 0, "coilToMRITransf"], [[[1, 0, 0, 0]] * 4] * 2)
        ),
        "transform text": _json(_set(["targets", 0, "coilToMRITransf"], "eye")),
        "targetCoord text": _json(_set(["targets", 0, "targetCoord"], ["a", "b", "c"])),
        "targetCoord dict": _json(_set(["targets", 0, "targetCoord"], [{}, 0, 0])),
        "entryCoord short": _json(_set(["targets", 0, "entryCoord"], [1, 2])),
        "depthOffset text": _json(_set(["targets", 0, "depthOffset"], "deep")),
    },
    "bids": {
        "short row": _lines(lambda lines: _cut_row(lines, "\t")),
        "long row": _lines(lambda lines: [*lines[:-1], lines[-1] + "\t1\t2"]),
        "no MarkerID": _lines(lambda lines: [lines[0].replace("MarkerID", "Id"), *lines[1:]]),
        "15 matrix values": _lines(
            lambda lines: [*lines[:-1], re.sub(r",[^,\t]*\t", "\t", lines[-1], count=1)]
        ),
        "coordsystem [1]": _side(b"[1]"),
        "coordsystem not JSON": _side(b"{not json"),
        "coordsystem truncated": _side(b'{"TMSCoordinateSystem": "T1'),
        "coordsystem a folder": _side(None),
        "coordsystem in m": _side(b'{"TMSCoordinateUnits": "m"}'),
    },
    "csv": {
        "short row": _lines(lambda lines: _cut_row(lines, ",")),
        "long row": _lines(lambda lines: [*lines[:-1], lines[-1] + ",1,2"]),
        "no name column": _lines(
            lambda lines: [lines[0].replace("name,", "title,", 1), *lines[1:]]
        ),
        "reachable maybe": _lines(
            lambda lines: [*lines[:-1], lines[-1].replace(",true,", ",maybe,")]
        ),
        "text number": _lines(lambda lines: [*lines[:-1], lines[-1].replace(",-", ",abc", 1)]),
        "unclosed quote": _lines(lambda lines: [*lines[:-1], lines[-1].replace(",", ',"', 1)]),
    },
    "json": {
        "targets [1]": _json(_set(["targets"], [1])),
        "targets 'x'": _json(_set(["targets"], "x")),
        "targets 1": _json(_set(["targets"], 1)),
        "no format": _json(_delete(["format"])),
        "root list": _json(lambda doc: [doc]),
        "no coil_matrix": _json(_delete(["targets", 0, "coil_matrix"])),
        "ragged coil_matrix": _json(_set(["targets", 0, "coil_matrix"], [[1, 0], [0, 1]])),
        "stacked coil_matrix": _json(_set(["targets", 0, "coil_matrix"], [[[1, 0, 0, 0]] * 4] * 2)),
        "cortical text": _json(_set(["targets", 0, "cortical_mm"], ["a", "b", "c"])),
        "cortical dict": _json(_set(["targets", 0, "cortical_mm"], [{}, 0, 0])),
        "depth text": _json(_set(["targets", 0, "depth_mm"], "deep")),
        "reachable text": _json(_set(["targets", 0, "reachable"], "no")),
    },
}

_PARAMS = [
    pytest.param(fmt, label, damage, id=f"{fmt}-{label}")
    for fmt in FORMATS
    for label, damage in {**_GENERIC, **_CASES[fmt]}.items()
]


@pytest.mark.parametrize(("fmt", "label", "damage"), _PARAMS)
def test_every_reader_refuses_a_malformed_file_with_format_error(tmp_path, fmt, label, damage):
    record = make_record(random_poses(2, 71))
    paths = export_record(record, fmt, tmp_path, when=WHEN)
    kwargs = {"t1": record["t1"]} if fmt == "visor2" else {}
    read_export(paths[0], fmt, **kwargs)  # valid before the damage
    damaged = damage(paths)
    with pytest.raises(FormatError) as caught:
        read_export(paths[0], fmt, **kwargs)
    assert type(caught.value) is FormatError, label
    assert str(Path(damaged)) in str(caught.value), str(caught.value)


def test_every_format_has_malformed_cases():
    assert set(_CASES) == set(FORMATS)


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_reader_refuses_a_folder_and_a_missing_file(tmp_path, fmt):
    with pytest.raises(FormatError, match=re.escape(str(tmp_path))):
        read_export(tmp_path, fmt)
    with pytest.raises(FormatError, match="missing"):
        read_export(tmp_path / "missing.file", fmt)


def test_bids_coordsystem_that_cannot_be_read(tmp_path, monkeypatch):
    record = make_record(random_poses(1, 72))
    markers, side = export_record(record, "bids", tmp_path, when=WHEN)
    real = Path.read_text

    def failing(self, *args, **kwargs):
        if self == side:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", failing)
    with pytest.raises(FormatError, match=r"coordsystem\.json.*Permission denied"):
        read_export(markers, "bids")
