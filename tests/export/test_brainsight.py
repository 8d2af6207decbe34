from pathlib import Path

import numpy as np
import pytest
from _export_records import RAS_AFFINE, left_pose, make_record, make_t1, random_poses
from _paths import SHARED

from tmsplan.errors import FormatError, OutputExistsError, PoseError, RecordError, SpaceError
from tmsplan.export import ExportWarning
from tmsplan.export.brainsight import (
    BRAINSIGHT_FROM_CANONICAL,
    brainsight_coordinate_system,
    read_brainsight,
    write_brainsight,
)

VENDOR = SHARED / "vendor-samples" / "brainsight"
needs_vendor = pytest.mark.skipif(
    not VENDOR.is_dir(), reason="vendor samples (../shared/vendor-samples) not available"
)


def _table(path):
    return [
        line.split("\t") for line in Path(path).read_text().splitlines() if not line.startswith("#")
    ]


def test_round_trip_20_random_poses(tmp_path):
    poses = random_poses(20, seed=11)
    path = write_brainsight(make_record(poses), tmp_path / "b.txt")[0]
    nav = read_brainsight(path)
    assert nav.names == [f"T{i}" for i in range(20)]
    assert all(m.kind == "target" for m in nav.markers)
    np.testing.assert_allclose(nav.poses().matrices, np.stack(poses), atol=1e-6)


def test_columns_are_mCnR_with_x_and_z_negated(tmp_path):
    pose = left_pose()
    (row,) = _table(write_brainsight(make_record([pose]), tmp_path / "b.txt")[0])
    values = np.array(row[1:], float)
    np.testing.assert_allclose(values[:3], [-60, 12, 45])
    np.testing.assert_allclose(values[3:6], -pose[:3, 0], atol=1e-8)  # m0n0..m0n2: x axis
    np.testing.assert_allclose(values[6:9], pose[:3, 1], atol=1e-8)  # m1n*: y kept
    np.testing.assert_allclose(values[9:12], -pose[:3, 2], atol=1e-8)  # m2n*: z points away
    assert values[0] < 0  # left stays left
    assert read_brainsight(tmp_path / "b.txt").markers[0].pose[0, 3] < 0
    np.testing.assert_allclose(BRAINSIGHT_FROM_CANONICAL @ BRAINSIGHT_FROM_CANONICAL, np.eye(4))


def test_header(tmp_path):
    path = write_brainsight(make_record([left_pose()]), tmp_path / "b.txt")[0]
    lines = path.read_text().splitlines()
    assert lines[0] == "# Version: 14"
    assert lines[1] == "# Coordinate system: NIfTI:Q:Scanner"
    assert lines[6].split("\t")[:4] == ["# Target Name", "Loc. X", "Loc. Y", "Loc. Z"]
    assert b"\r" not in path.read_bytes()
    v13 = write_brainsight(make_record([left_pose()]), tmp_path / "b13.txt", version=13)[0]
    assert v13.read_text().splitlines()[:2] == [
        "# Version: 13",
        "# Coordinate system: NIfTI:Scanner",
    ]


@pytest.mark.parametrize(
    ("s_code", "q_code", "v14", "v12"),
    [
        (2, 2, "NIfTI:Q:Aligned", "NIfTI:Aligned"),
        (1, 0, "NIfTI:S:Scanner", "NIfTI:Scanner"),
        (0, 4, "NIfTI:Q:MNI-152", "NIfTI:MNI-152"),
        (3, 0, "NIfTI:S:Talairach", "NIfTI:Talairach"),
        (5, 0, "NIfTI:S:Other-Template", "NIfTI:Other-Template"),
    ],
)
def test_coordinate_system_from_codes(s_code, q_code, v14, v12):
    t1 = make_t1(sform_code=s_code, qform_code=q_code)
    assert brainsight_coordinate_system(t1) == v14
    assert brainsight_coordinate_system(t1, version=12) == v12


def test_differing_qform_and_sform_warns_and_names_the_sform(tmp_path):
    shifted = RAS_AFFINE.copy()
    shifted[0, 3] += 4.0
    t1 = make_t1(sform_code=2, qform_code=1, qform_affine=shifted)
    with pytest.warns(ExportWarning, match="qform and sform differ.*NIfTI:S:Aligned"):
        assert brainsight_coordinate_system(t1) == "NIfTI:S:Aligned"
    with pytest.warns(ExportWarning, match="sform"):
        path = write_brainsight(make_record([left_pose()], t1=t1), tmp_path / "b.txt")[0]
    assert "# Coordinate system: NIfTI:S:Aligned" in path.read_text()


def test_no_nifti_code_refused(tmp_path):
    with pytest.raises(RecordError, match="no NIfTI coordinate system"):
        write_brainsight(
            make_record([left_pose()], t1=make_t1(sform_code=0, qform_code=0)), tmp_path / "b.txt"
        )
    assert not (tmp_path / "b.txt").exists()


def test_lps_not_offered(tmp_path):
    with pytest.raises(SpaceError, match="brainsight"):
        write_brainsight(make_record([left_pose()]), tmp_path / "b.txt", space="LPS")


def test_names_cannot_break_the_table(tmp_path):
    names = ["a\tb", "c\nd;e", "# fake header", 'q"<&>']
    path = write_brainsight(make_record(random_poses(4, 3), names=names), tmp_path / "b.txt")[0]
    rows = _table(path)
    assert len(rows) == 4 and all(len(r) == 13 for r in rows)
    assert read_brainsight(path).names == ["a b", "c d e", "fake header", 'q"<&>']


def test_null_values_and_samples(tmp_path):
    pose = left_pose() @ BRAINSIGHT_FROM_CANONICAL
    cells = [*pose[:3, 3], *pose[:3, :3].T.ravel()]
    text = "\n".join(
        [
            "# Version: 14",
            "# Coordinate system: NIfTI:S:Scanner",
            "# Target Name\tLoc. X\tLoc. Y\tLoc. Z\t"
            + "\t".join(f"m{c}n{r}" for c in range(3) for r in range(3)),
            "T1\t" + "\t".join(map(str, cells)),
            "T2\t(null)\t" + "\t".join(map(str, cells[1:])),
            "# Sample Name\tSession Name\tIndex\tAssoc. Target\tLoc. X\tLoc. Y\tLoc. Z\t"
            + "\t".join(f"m{c}n{r}" for c in range(3) for r in range(3)),
            "S1\tSession 1\t1\t(null)\t" + "\t".join(map(str, cells)),
        ]
    )
    (tmp_path / "n.txt").write_text(text + "\n")
    nav = read_brainsight(tmp_path / "n.txt")
    t1, t2, s1 = nav.markers
    np.testing.assert_allclose(t1.pose, left_pose(), atol=1e-12)
    assert t2.pose is None
    assert s1.kind == "sample" and s1.info["Assoc. Target"] is None
    assert s1.info["Session Name"] == "Session 1"
    assert nav.meta["nifti_form"] == "sform" and nav.meta["nifti_name"] == "Scanner"
    assert len(nav.poses("target")) == 1 and len(nav.poses("sample")) == 1


def test_reader_refuses_shear_and_non_nifti(tmp_path):
    path = write_brainsight(make_record([left_pose()]), tmp_path / "b.txt")[0]
    lines = path.read_text().splitlines()
    cells = lines[-1].split("\t")
    cells[5] = str(float(cells[5]) + 0.2)
    (tmp_path / "s.txt").write_text("\n".join([*lines[:-1], "\t".join(cells)]) + "\n")
    with pytest.raises(PoseError, match="sheared"):
        read_brainsight(tmp_path / "s.txt")
    text = path.read_text().replace("NIfTI:Q:Scanner", "Brainsight")
    (tmp_path / "w.txt").write_text(text)
    with pytest.raises(FormatError, match="not a NIfTI coordinate system"):
        read_brainsight(tmp_path / "w.txt")


def test_existing_file_and_bad_pose(tmp_path):
    path = tmp_path / "b.txt"
    write_brainsight(make_record([left_pose()]), path)
    with pytest.raises(OutputExistsError):
        write_brainsight(make_record([left_pose()]), path)
    nan = left_pose()
    nan[0, 0] = np.nan
    with pytest.raises(PoseError):
        write_brainsight(make_record([nan]), tmp_path / "c.txt")
    assert not (tmp_path / "c.txt").exists()


# -- real vendor files: origin of the NIfTI world = head centre (see the Localite
# tests for why not the mean of the positions).


def _check_inward(marker):
    centre = marker.pose[:3, 3]
    rot = marker.pose[:3, :3]
    np.testing.assert_allclose(rot.T @ rot, np.eye(3), atol=1e-12)
    assert np.linalg.det(rot) > 0
    assert marker.pose[:3, 2] @ (-centre / np.linalg.norm(centre)) > 0.7, marker.name
    assert 50 < np.linalg.norm(centre) < 120, marker.name


@needs_vendor
def test_vendor_v14_targets_and_samples():
    nav = read_brainsight(VENDOR / "niiImage_niftialigned_q_coord_v14.txt")
    assert nav.meta["version"] == "14"
    assert nav.meta["coordinate_system"] == "NIfTI:Q:Aligned"
    assert nav.meta["nifti_form"] == "qform"
    targets = [m for m in nav.markers if m.kind == "target"]
    samples = [m for m in nav.markers if m.kind == "sample"]
    assert [m.name for m in targets] == ["Trajectory 1", "Trajectory 2"]
    assert [m.name for m in samples] == ["Sample 1", "Sample 2", "Sample 3"]
    for marker in targets:
        _check_inward(marker)
    np.testing.assert_allclose(targets[0].pose[:3, 3], [34.466, 26.188, 63.467])
    # Brainsight's z (m2n*) = (0.3499, 0, 0.9368) points away from the head; ours points in
    np.testing.assert_allclose(targets[0].pose[:3, 2], [-0.3499, 0, -0.9368], atol=1e-4)
    # samples were placed with the mouse (crosshairs), so only their parsing is checked
    assert samples[0].info["Assoc. Target"] is None
    assert samples[0].info["Crosshairs Driver"] == "Mouse"
    assert all(s.pose is not None for s in samples)
    assert nav.meta["tables"]["Session Name"][0]["Loc. X"] is None


@needs_vendor
def test_vendor_targets_without_samples():
    nav = read_brainsight(VENDOR / "niiImage_niftialignedcoord_no_samples.txt")
    assert nav.meta["coordinate_system"] == "NIfTI:Aligned" and nav.meta["nifti_form"] is None
    assert len(nav.markers) == 7 and all(m.kind == "target" for m in nav.markers)
    for marker in nav.markers:
        _check_inward(marker)
    # left and right both present: Sample 1 on the left, Sample 14 on the right
    by_name = {m.name: m for m in nav.markers}
    assert by_name["Sample 1"].pose[0, 3] < 0 < by_name["Sample 14"].pose[0, 3]
    landmarks = {r["Planned Landmark Name"]: r for r in nav.meta["tables"]["Planned Landmark Name"]}
    assert float(landmarks["LPA"]["Loc. X"]) < 0 < float(landmarks["RPA"]["Loc. X"])


@needs_vendor
def test_vendor_empty_file():
    nav = read_brainsight(VENDOR / "niiImage_niftialignedcoord_empty.txt")
    assert nav.markers == () and len(nav.poses()) == 0
    assert nav.meta["version"] == "7"


@pytest.mark.parametrize("missing", ["sform", "qform"])
def test_missing_sform_or_qform_says_cannot_compare(tmp_path, missing):
    t1 = make_t1(sform_code=2, qform_code=1)
    del t1[missing]
    with pytest.warns(ExportWarning, match="cannot be compared.*NIfTI:S:Aligned") as caught:
        assert brainsight_coordinate_system(t1) == "NIfTI:S:Aligned"
    assert "differ" not in str(caught[0].message)
    t1 = make_t1(sform_code=2, qform_code=1)
    t1[missing] = [[1.0, 0.0], [0.0, 1.0]]  # not a 4x4 matrix
    with pytest.warns(ExportWarning, match="cannot be compared"):
        assert brainsight_coordinate_system(t1) == "NIfTI:S:Aligned"
