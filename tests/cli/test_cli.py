"""The command line: one clear line on stderr for every bad input, nothing half-written."""

import gzip
import os
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from _phantoms import asymmetric_map

from tmsplan.cli import main


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _mni_map(tmp_path, data=None, name="map.nii.gz"):
    """A map on the MNI 2 mm grid (91x109x91)."""
    from tmsplan.io.bundled import load_mni_brain_mask

    brain = load_mni_brain_mask(2)
    values = np.asarray(brain.dataobj, dtype=np.float32) * 5.0 if data is None else data
    img = nib.Nifti1Image(values, brain.affine)
    img.set_sform(brain.affine, code=4)
    path = tmp_path / name
    nib.save(img, path)
    return path


def _assert_one_line_error(code, err, pattern, out_dir=None):
    assert code != 0
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1, err
    assert lines[0].startswith("tmsplan: error:"), err
    assert "Traceback" not in err
    assert pattern.lower() in lines[0].lower(), lines[0]
    if out_dir is not None:
        assert not out_dir.exists()
        assert not any(p.name.startswith(f".{out_dir.name}") for p in out_dir.parent.iterdir())


def test_rois_lists_the_atlas(capsys):
    code, out, _ = _run(capsys, "rois")
    assert code == 0
    for roi_id in ("cocaine_mfg_l", "cocaine_hypothalamus", "heroin_dlpfc_l", "meth_mpfc"):
        assert roi_id in out


def test_missing_activation_file(capsys, tmp_path):
    out = tmp_path / "out"
    code, _, err = _run(
        capsys,
        "plan",
        "--activation",
        str(tmp_path / "nope.nii.gz"),
        "--roi",
        "cocaine_mfg_l",
        "--out",
        str(out),
    )
    _assert_one_line_error(code, err, "does not exist", out)


def test_non_nifti_file(capsys, tmp_path):
    bad = tmp_path / "map.csv"
    bad.write_text("1,2,3\n")
    out = tmp_path / "out"
    code, _, err = _run(
        capsys, "plan", "--activation", str(bad), "--roi", "cocaine_mfg_l", "--out", str(out)
    )
    _assert_one_line_error(code, err, "not a NIfTI", out)


def test_truncated_gzip(capsys, tmp_path):
    path = _mni_map(tmp_path)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 3])
    out = tmp_path / "out"
    code, _, err = _run(
        capsys, "plan", "--activation", str(path), "--roi", "cocaine_mfg_l", "--out", str(out)
    )
    _assert_one_line_error(code, err, "truncated", out)
    assert gzip  # the module used to build truncated files elsewhere


def test_four_d_map(capsys, tmp_path):
    img = nib.Nifti1Image(np.ones((8, 8, 8, 3), np.float32), np.eye(4))
    path = tmp_path / "map4d.nii.gz"
    nib.save(img, path)
    out = tmp_path / "out"
    code, _, err = _run(
        capsys, "plan", "--activation", str(path), "--roi", "cocaine_mfg_l", "--out", str(out)
    )
    _assert_one_line_error(code, err, "4-D", out)


def test_all_nan_and_all_zero_maps(capsys, tmp_path):
    nan = _mni_map(tmp_path, np.full((91, 109, 91), np.nan, np.float32), "nan.nii.gz")
    zero = _mni_map(tmp_path, np.zeros((91, 109, 91), np.float32), "zero.nii.gz")
    for path, pattern in ((nan, "only NaN"), (zero, "all zeros")):
        out = tmp_path / "out"
        code, _, err = _run(
            capsys, "plan", "--activation", str(path), "--roi", "cocaine_mfg_l", "--out", str(out)
        )
        _assert_one_line_error(code, err, pattern, out)


def test_unknown_roi(capsys, tmp_path):
    path = _mni_map(tmp_path)
    out = tmp_path / "out"
    code, _, err = _run(
        capsys, "plan", "--activation", str(path), "--roi", "cocaine_nowhere", "--out", str(out)
    )
    _assert_one_line_error(code, err, "cocaine_nowhere", out)
    assert "tmsplan rois" in err


def test_no_suprathreshold_voxel_in_roi(capsys, tmp_path):
    data = np.zeros((91, 109, 91), np.float32)
    data[10:20, 10:20, 10:20] = 6.0  # far from the left MFG
    path = _mni_map(tmp_path, data)
    out = tmp_path / "out"
    code, _, err = _run(
        capsys, "plan", "--activation", str(path), "--roi", "cocaine_mfg_l", "--out", str(out)
    )
    _assert_one_line_error(code, err, "no supra-threshold voxel", out)


def test_existing_output_without_force(capsys, tmp_path):
    path = _mni_map(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    code, _, err = _run(
        capsys, "plan", "--activation", str(path), "--roi", "cocaine_mfg_l", "--out", str(out)
    )
    _assert_one_line_error(code, err, "--force")
    assert (out / "keep.txt").read_text() == "precious"


def test_activation_and_peaks_are_exclusive(capsys, tmp_path):
    code, _, err = _run(capsys, "plan", "--roi", "cocaine_mfg_l", "--out", str(tmp_path / "o"))
    _assert_one_line_error(code, err, "exactly one of --activation")


def test_usage_error_is_one_line_with_a_hint(capsys, tmp_path):
    code, _, err = _run(capsys, "plan", "--nonsense", "--out", str(tmp_path / "o"))
    assert code == 2
    assert err == (
        "tmsplan: error: unrecognized arguments: --nonsense (see 'tmsplan plan --help')\n"
    )
    code, _, err = _run(capsys, "plan", "--target-mni", "1", "2", "--out", str(tmp_path / "o"))
    assert code == 2 and len(err.splitlines()) == 1 and "usage" not in err
    assert "--target-mni" in err and "tmsplan plan --help" in err
    code, _, err = _run(capsys)
    assert code == 2 and err.startswith("tmsplan: error:") and "'tmsplan --help'" in err


def test_map_in_another_space_is_refused(capsys, tmp_path):
    # a subject-space map far from MNI space: the ROI does not overlap it
    img = asymmetric_map()
    affine = img.affine.copy()
    affine[:3, 3] += 1000.0
    moved = nib.Nifti1Image(np.asarray(img.dataobj), affine)
    moved.set_sform(affine, code=1)
    path = tmp_path / "elsewhere.nii.gz"
    nib.save(moved, path)
    out = tmp_path / "out"
    code, _, err = _run(
        capsys, "plan", "--activation", str(path), "--roi", "cocaine_mfg_l", "--out", str(out)
    )
    _assert_one_line_error(code, err, "space", out)


def test_closed_pipe_is_not_an_error(monkeypatch, capsys):
    """'tmsplan rois | head -1': the reader has closed the pipe before we write."""
    import os

    read_end, write_end = os.pipe()
    os.close(read_end)
    stdout = os.fdopen(write_end, "w", buffering=1)  # line-buffered: print raises EPIPE
    monkeypatch.setattr("sys.stdout", stdout)
    try:
        code = main(["rois"])
    finally:
        monkeypatch.undo()
        stdout.close()
    assert code == 0
    err = capsys.readouterr().err
    assert "error" not in err and "Traceback" not in err


def test_force_does_not_delete_a_data_folder(capsys, tmp_path):
    data = tmp_path / "sub-01"
    data.mkdir()
    (data / "T1w.nii.gz").write_bytes(b"scan")
    code, _, err = _run(
        capsys, "plan", "--target-mni", "-38", "44", "26", "--out", str(data), "--force"
    )
    _assert_one_line_error(code, err, "not written by tmsplan")
    assert (data / "T1w.nii.gz").read_bytes() == b"scan"


def _no_planning(monkeypatch):
    import tmsplan.pipeline.plan

    def fail(*args, **kwargs):
        raise AssertionError("planning started before the checks")

    monkeypatch.setattr(tmsplan.pipeline.plan, "plan_target", fail)


def test_unwritable_out_is_refused_at_once(tmp_path):
    import tmsplan

    if not Path("/proc/self").is_dir():
        pytest.skip("needs /proc")
    env = dict(os.environ, PYTHONPATH=str(Path(tmsplan.__file__).resolve().parents[1]))
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "tmsplan", "plan", "--target-mni", "-38", "44", "26"]
        + ["--out", "/proc/x"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    seconds = time.perf_counter() - started
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith("tmsplan: error: output '/proc/x' cannot be created")
    assert seconds < 2.0  # refused before planning (which takes several seconds)


def test_out_under_a_file_is_refused_before_planning(capsys, tmp_path, monkeypatch):
    _no_planning(monkeypatch)
    (tmp_path / "afile").write_text("x")
    out = tmp_path / "afile" / "plan"
    code, _, err = _run(capsys, "plan", "--target-mni", "1", "2", "3", "--out", str(out))
    _assert_one_line_error(code, err, "is a file, not a folder")


def test_unknown_format_is_refused_before_planning(capsys, tmp_path, monkeypatch):
    _no_planning(monkeypatch)
    out = tmp_path / "plan"
    code, _, err = _run(capsys, "demo", "--formats", "localite,navigatorx", "--out", str(out))
    _assert_one_line_error(code, err, "--formats: unknown format 'navigatorx'", out)
    assert "localite" in err  # the valid names are listed


def test_peaks_threshold_needs_peaks(capsys, tmp_path):
    code, _, err = _run(
        capsys,
        "plan",
        "--target-mni",
        "1",
        "2",
        "3",
        "--peaks-threshold",
        "3",
        "--out",
        str(tmp_path / "o"),
    )
    _assert_one_line_error(code, err, "--peaks-threshold applies only")


@pytest.mark.slow
def test_threshold_does_not_change_the_map_rebuilt_from_peaks(capsys, tmp_path):
    import json

    from tmsplan.io.bundled import atlas_dir

    peaks = atlas_dir() / "peaks/zhang2018_cocaine_cue_table1.tsv"
    common = ["plan", "--peaks", str(peaks), "--roi", "cocaine_mfg_l", "--no-report"]
    common += ["--formats", "none", "--threshold", "4"]
    assert main([*common, "--out", str(tmp_path / "a")]) == 0
    assert main([*common, "--peaks-threshold", "2.5", "--out", str(tmp_path / "b")]) == 0
    capsys.readouterr()
    a = json.loads((tmp_path / "a" / "target.json").read_text())["activation"]
    b = json.loads((tmp_path / "b" / "target.json").read_text())["activation"]
    assert a["threshold"] == b["threshold"] == 4.0  # the cluster-forming threshold
    assert "z=3.1 " in a["generated_from"]["construction"]  # the map: the table's own
    assert "z=2.5 " in b["generated_from"]["construction"]


def _bad_t1s(tmp_path):
    """T1s whose header is fine but whose voxels are not: NaNs, all zeros, a truncated file."""
    from tmsplan.io.bundled import load_mni_head

    head = load_mni_head(2)
    data = np.asarray(head.dataobj, dtype=np.float32)
    with_nan = data.copy()
    with_nan[40:45, 50:55, 40:45] = np.nan
    bad = {}
    for name, values in (("nan", with_nan), ("zero", np.zeros_like(data))):
        bad[name] = tmp_path / f"{name}_t1.nii.gz"
        nib.save(nib.Nifti1Image(values, head.affine), bad[name])
    whole = tmp_path / "whole_t1.nii.gz"
    nib.save(nib.Nifti1Image(data, head.affine), whole)
    raw = whole.read_bytes()
    bad["truncated"] = tmp_path / "truncated_t1.nii.gz"
    bad["truncated"].write_bytes(raw[: len(raw) // 2])
    return bad, {"nan": "NaN voxels", "zero": "all zeros", "truncated": "truncated"}


@pytest.mark.parametrize("with_transform", [False, True], ids=["target-t1", "mni-to-t1"])
def test_a_t1_with_bad_voxels_is_refused_whether_or_not_a_step_reads_them_early(
    capsys, tmp_path, with_transform
):
    """The T1's header is checked at once and its voxels when first read: by the transform's
    fit check, or else by the head (never cached: the check fails first). Either way one line
    names --t1 and what was wrong, and nothing is written."""
    bad, patterns = _bad_t1s(tmp_path)
    matrix = tmp_path / "mni_to_t1.txt"
    np.savetxt(matrix, np.eye(4))
    for name, path in bad.items():
        out = tmp_path / f"out_{name}"
        where = (
            ["--mni-to-t1", str(matrix), "--target-mni", "-38", "44", "26"]
            if with_transform
            else ["--target-t1", "-38", "44", "26"]
        )
        code, _, err = _run(capsys, "plan", "--t1", str(path), *where, "--out", str(out))
        _assert_one_line_error(code, err, patterns[name], out)
        assert "--t1" in err, err
