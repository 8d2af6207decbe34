"""tmsplan batch: a cohort of synthetic patients (the MNI head under known transforms)."""

import csv
import json
import os
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
from _phantoms import rigid_scaling, synthetic_patient

import tmsplan.pipeline.plan
from tmsplan.cli import main
from tmsplan.cohort.batch import (
    COHORT_COLUMNS,
    BatchRow,
    ManifestError,
    read_manifest,
    run_batch,
)
from tmsplan.io.bundled import atlas_dir, load_mni_head
from tmsplan.io.record import read_record

PEAKS = atlas_dir() / "peaks" / "zhang2018_cocaine_cue_table1.tsv"
MFG_L = np.array([-54.0, 2.0, 28.0])  # the cocaine_mfg_l peak (see test_plan.py)
DLPFC = np.array([-38.0, 44.0, 26.0])
ORDERS = ("RAS", "LAS", "LPS")


def _transforms():
    """Eight known MNI -> patient transforms: rotations, scalings and shifts."""
    rng = np.random.default_rng(11)
    out = []
    for i in range(8):
        out.append(
            rigid_scaling(
                angle_deg=float(rng.uniform(-12, 12)),
                axis=tuple(rng.uniform(-1, 1, 3) + [0, 0, 2]),
                scale=tuple(rng.uniform(0.93, 1.07, 3)),
                shift=tuple(rng.uniform(-10, 10, 3)),
            )
            if i
            else np.eye(4)
        )
    return out


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """Manifest folder: 8 patients (relative paths) + 1 row whose T1 is missing."""
    folder = tmp_path_factory.mktemp("cohort")
    data = folder / "data"
    data.mkdir()
    mni = load_mni_head(2)
    transforms = _transforms()
    # no_snap: the carried targets stay where the transform puts them (analytic answers)
    lines = ["subject\tt1\tmni_to_t1\ttarget_mni\tpeaks\troi\ttarget_name\tno_snap"]
    expected = {}
    for i, matrix in enumerate(transforms, start=1):
        subject = f"sub-{i:02d}"
        t1 = synthetic_patient(mni, matrix, order=ORDERS[i % 3])
        nib.save(t1, data / f"{subject}_T1w.nii.gz")
        np.savetxt(data / f"{subject}_mni_to_t1.txt", matrix)
        if i <= 6:  # a coordinate from a protocol
            lines.append(
                f"{subject}\tdata/{subject}_T1w.nii.gz\tdata/{subject}_mni_to_t1.txt\t"
                f"{' '.join(f'{v:g}' for v in DLPFC)}\t\t\tdlpfc\tyes"
            )
            mni_target = DLPFC
        else:  # the group map rebuilt from the paper's peaks, in the cocaine MFG ROI
            lines.append(
                f"{subject}\tdata/{subject}_T1w.nii.gz\tdata/{subject}_mni_to_t1.txt\t\t"
                f"{PEAKS}\tcocaine_mfg_l\t\tyes"
            )
            mni_target = MFG_L
        expected[subject] = (matrix, mni_target)
    lines.append("sub-09\tdata/sub-09_T1w.nii.gz\tdata/sub-01_mni_to_t1.txt\t-38 44 26\t\t\t\tyes")
    (folder / "manifest.tsv").write_text("\n".join(lines) + "\n")
    return folder, expected


def _write_itk_affine_h5(path, mni_to_t1):
    """An ITK .h5 holding one affine, as ANTs writes it: T1 -> MNI points in LPS."""
    import h5py

    lps = np.diag([-1.0, -1.0, 1.0, 1.0])
    t1_to_mni = lps @ np.linalg.inv(mni_to_t1) @ lps
    with h5py.File(path, "w") as handle:
        node = handle.create_group("TransformGroup").create_group("0")
        node.create_dataset("TransformType", data=[b"AffineTransform_double_3_3"])
        node.create_dataset(
            "TransformParameters", data=np.r_[t1_to_mni[:3, :3].ravel(), t1_to_mni[:3, 3]]
        )
        node.create_dataset("TransformFixedParameters", data=np.zeros(3))


def _table(out):
    with open(out / "cohort.tsv", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def _check_targets(rows, expected, out):
    for row in rows:
        if row["subject"] == "sub-09":
            continue
        matrix, mni_target = expected[row["subject"]]
        cortical = np.array([float(row[f"cortical_{a}"]) for a in "xyz"])
        np.testing.assert_allclose(cortical, (matrix @ [*mni_target, 1.0])[:3], atol=1.0)
        mni = np.array([float(row[f"cortical_mni_{a}"]) for a in "xyz"])
        np.testing.assert_allclose(mni, mni_target, atol=1.0)
        assert row["reachable"] == "yes" and row["outlier"] == "no"
        assert float(row["distance_from_mean_mm"]) < 2.0
        record = read_record(out / row["folder"])
        assert record["subject"] == row["subject"] and record["space"] == "T1w"
        np.testing.assert_allclose(record["targets"][0]["cortical_mm"], cortical, atol=1e-3)


def _targets(out):
    return {
        row["subject"]: read_record(out / row["folder"])["targets"][0]
        for row in _table(out)
        if row["status"] != "failed"
    }


@pytest.fixture(scope="module")
def first_run(cohort, tmp_path_factory):
    folder, _ = cohort
    out = tmp_path_factory.mktemp("batch") / "out"
    argv = ["batch", str(folder / "manifest.tsv"), "--out", str(out), "--jobs", "1"]
    return out, argv


@pytest.mark.slow
def test_batch_isolates_the_broken_row_and_resumes(cohort, first_run, capsys, monkeypatch):
    folder, expected = cohort
    out, argv = first_run
    code = main([*argv, "--no-report"])
    captured = capsys.readouterr()
    assert code == 1
    assert "1 of 9 rows failed" in captured.err and "cohort.tsv" in captured.err
    rows = _table(out)
    assert [r["subject"] for r in rows] == [f"sub-{i:02d}" for i in range(1, 10)]
    assert list(rows[0]) == list(COHORT_COLUMNS)
    broken = rows[-1]
    assert broken["status"] == "failed" and "sub-09_T1w.nii.gz" in broken["reason"]
    assert (out / "failed" / "sub-09.log").is_file()
    assert all(r["status"] == "ok" for r in rows[:-1])
    assert all(r[c] != "" for r in rows[:-1] for c in COHORT_COLUMNS if c not in ("reason", "roi"))
    assert [r["roi"] for r in rows[:-1]] == [""] * 6 + ["cocaine_mfg_l"] * 2
    _check_targets(rows, expected, out)
    for row in rows[:-1]:  # exactly what 'tmsplan plan' writes, plus the batch's two files
        plan_folder = out / row["folder"]
        assert (plan_folder / "batch.json").is_file() and (plan_folder / "batch.log").is_file()
        assert "status: ok" in (plan_folder / "batch.log").read_text()
    assert (out / "cohort.html").is_file() and not (out / "cohort.png").exists()
    # plain log lines when not on a terminal
    assert "batch: [9/9]" in captured.err

    # a second run plans nothing: every complete row is skipped
    def no_planning(*args, **kwargs):
        raise AssertionError("planned again")

    monkeypatch.setattr(tmsplan.pipeline.plan, "plan_target", no_planning)
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("sub-0*/target.json")}
    assert main([*argv, "--no-report"]) == 1
    rows = _table(out)
    assert [r["status"] for r in rows] == ["skipped"] * 8 + ["failed"]
    _check_targets(rows, expected, out)
    assert stamps == {p: p.stat().st_mtime_ns for p in out.glob("sub-0*/target.json")}
    monkeypatch.undo()

    # an edited input (same transform, written differently) redoes that row only
    matrix = np.loadtxt(folder / "data" / "sub-03_mni_to_t1.txt")
    np.savetxt(folder / "data" / "sub-03_mni_to_t1.txt", matrix, fmt="%.12f")
    capsys.readouterr()
    assert main([*argv, "--no-report"]) == 1
    rows = _table(out)
    statuses = {r["subject"]: r["status"] for r in rows}
    assert statuses.pop("sub-03") == "ok" and statuses.pop("sub-09") == "failed"
    assert set(statuses.values()) == {"skipped"}
    assert "planned again (inputs or options changed): sub-03" in capsys.readouterr().out
    _check_targets(rows, expected, out)
    # a changed option on the command line redoes every row
    assert main([*argv, "--no-report", "--max-depth", "35"]) == 1
    assert [r["status"] for r in _table(out)] == ["ok"] * 8 + ["failed"]


@pytest.mark.slow
def test_several_targets_of_one_subject_get_one_folder_each(cohort, tmp_path, capsys):
    folder, expected = cohort
    manifest = tmp_path / "two.csv"
    t1 = folder / "data" / "sub-02_T1w.nii.gz"
    xfm = folder / "data" / "sub-02_mni_to_t1.txt"
    manifest.write_text(
        "subject,t1,mni_to_t1,target_mni,target_name,coil_skin_distance\n"
        f"sub-02,{t1},{xfm},-38 44 26,dlpfc_l,\n"
        f"sub-02,{t1},{xfm},38 44 26,dlpfc_r,6\n"
    )
    out = tmp_path / "out"
    code = main(["batch", str(manifest), "--out", str(out), "--jobs", "1", "--no-report"])
    assert code == 0, capsys.readouterr().err
    left = read_record(out / "sub-02" / "dlpfc_l")["targets"][0]
    right = read_record(out / "sub-02" / "dlpfc_r")["targets"][0]
    matrix = expected["sub-02"][0]
    np.testing.assert_allclose(left["cortical_mm"], (matrix @ [-38, 44, 26, 1])[:3], atol=1.0)
    np.testing.assert_allclose(right["cortical_mm"], (matrix @ [38, 44, 26, 1])[:3], atol=1.0)
    assert left["coil_skin_distance_mm"] == 4.0 and right["coil_skin_distance_mm"] == 6.0
    # left stays left: the two targets lie on either side of the carried midline
    right_axis = (matrix @ [1.0, 0, 0, 0])[:3]
    assert np.dot(np.subtract(right["cortical_mm"], left["cortical_mm"]), right_axis) > 60


def test_manifest_problems_stop_before_any_work(tmp_path, capsys):
    bad = tmp_path / "bad.tsv"
    bad.write_text("subject\ttarget_mni\tcoil_distance\nsub-01\t0 0 0\t4\n")
    assert main(["batch", str(bad), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert (
        err.startswith("tmsplan: error:") and "coil_distance" in err and len(err.splitlines()) == 1
    )
    assert not (tmp_path / "out").exists()
    with pytest.raises(ManifestError, match="no 'subject' column"):
        (tmp_path / "x.csv").write_text("id,t1\n1,a.nii\n")
        read_manifest(tmp_path / "x.csv")
    (tmp_path / "dup.tsv").write_text(
        "subject\ttarget_mni\ttarget_name\nsub-01\t0 0 50\tvertex\nsub-01\t0 0 60\tvertex\n"
    )
    with pytest.raises(ManifestError, match="different target_name"):
        read_manifest(tmp_path / "dup.tsv")
    # a bad cell fails its row only, with the reason
    (tmp_path / "cells.tsv").write_text(
        "subject\ttarget_mni\tthreshold\nsub-01\t1 2\t\n../x\t0 0 50\t\nsub-03\t0 0 50\tlow\n"
    )
    rows = read_manifest(tmp_path / "cells.tsv")
    assert "three numbers" in rows[0].error
    assert "folder name" in rows[1].error
    assert "threshold" in rows[2].error and "number" in rows[2].error


@pytest.mark.slow
def test_bids_derivatives_folder(cohort, tmp_path, capsys):
    pytest.importorskip("bids")
    folder, expected = cohort
    root = tmp_path / "derivatives" / "fmriprep"
    for subject in ("sub-01", "sub-05"):
        anat = root / subject / "anat"
        anat.mkdir(parents=True)
        (anat / f"{subject}_desc-preproc_T1w.nii.gz").write_bytes(
            (folder / "data" / f"{subject}_T1w.nii.gz").read_bytes()
        )
        xfm = anat / f"{subject}_from-MNI152NLin2009cAsym_to-T1w_mode-image_xfm.h5"
        _write_itk_affine_h5(xfm, expected[subject][0])
    (root / "dataset_description.json").write_text(
        json.dumps({"Name": "fMRIPrep", "BIDSVersion": "1.8.0", "DatasetType": "derivative"})
    )
    out = tmp_path / "out"
    code = main(
        ["batch", str(root), "--out", str(out), "--jobs", "1", "--no-report"]
        + ["--target-mni", "-38", "44", "26", "--formats", "localite"]
    )
    rows = _table(out)
    assert [r["subject"] for r in rows] == ["sub-01", "sub-05"]
    if code != 0:
        reasons = {r["reason"] for r in rows}
        pytest.fail(f"BIDS batch failed: {reasons}")
    for row in rows:
        matrix = expected[row["subject"]][0]
        cortical = [float(row[f"cortical_{a}"]) for a in "xyz"]
        np.testing.assert_allclose(cortical, (matrix @ [*DLPFC, 1])[:3], atol=1.0)
        record = read_record(out / row["folder"])
        assert record["transform"]["paths"][0].endswith("_xfm.h5")


@pytest.mark.slow
def test_pictures_and_outliers(cohort, tmp_path, capsys):
    folder, expected = cohort
    lines = ["subject\tt1\tmni_to_t1\ttarget_mni"]
    for i, subject in enumerate(("sub-01", "sub-02", "sub-04", "sub-05")):
        xyz = "-38 44 26" if i < 3 else "-38 10 60"  # sub-05: 40 mm away from the others
        lines.append(f"{subject}\tdata/{subject}_T1w.nii.gz\tdata/{subject}_mni_to_t1.txt\t{xyz}")
    (folder / "pictures.tsv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    code = main(["batch", str(folder / "pictures.tsv"), "--out", str(out), "--jobs", "1"])
    assert code == 0, capsys.readouterr().err
    rows = {r["subject"]: r for r in _table(out)}
    assert rows["sub-05"]["outlier"] == "yes"
    assert {rows[s]["outlier"] for s in ("sub-01", "sub-02", "sub-04")} == {"no"}
    assert float(rows["sub-05"]["distance_from_mean_mm"]) > 25
    assert (out / "sub-01" / "report.html").is_file()
    png = (out / "cohort.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    page = (out / "cohort.html").read_text()
    assert "data:image/png;base64," in page and "OUTLIER" in page
    assert 'href="sub-01/report.html"' in page


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_same_targets_with_two_processes_and_on_a_dask_cluster(cohort, first_run, tmp_path):
    distributed = pytest.importorskip("distributed")
    LocalCluster = distributed.LocalCluster

    folder, _ = cohort
    out, argv = first_run
    if not (out / "cohort.tsv").exists():
        assert main([*argv, "--no-report"]) == 1
    reference = _targets(out)
    manifest = str(folder / "manifest.tsv")
    local = tmp_path / "jobs2"
    assert main(["batch", manifest, "--out", str(local), "--jobs", "2", "--no-report"]) == 1
    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=":0",  # any free port: 8787 may be taken
    ) as cluster:
        dask_out = tmp_path / "dask"
        code = main(
            ["batch", manifest, "--out", str(dask_out), "--scheduler", cluster.scheduler_address]
            + ["--no-report"]
        )
    assert code == 1
    for other in (local, dask_out):
        rows = _table(other)
        assert [r["status"] for r in rows] == ["ok"] * 8 + ["failed"]
        targets = _targets(other)
        assert targets.keys() == reference.keys()
        for subject, target in targets.items():
            for key in ("cortical_mm", "scalp_mm", "coil_matrix", "cortical_mni_mm"):
                assert target[key] == reference[subject][key], (subject, key)


def test_command_line_options_apply_to_rows_without_their_own(tmp_path):
    (tmp_path / "m.tsv").write_text(
        "subject\tt1\tmni_to_t1\ttarget_mni\tmax_depth\n"
        "sub-01\tt1.nii.gz\txfm.txt\t0 0 50\t\n"
        "sub-02\tt1b.nii.gz\t\t0 0 50\t40\n"
    )
    rows = read_manifest(tmp_path / "m.tsv", defaults={"register": "affine", "max_depth": "25"})
    first, second = (row.plan_kwargs for row in rows)
    assert "register" not in first and first["mni_to_t1"] == str(tmp_path / "xfm.txt")
    assert second["register"] == "affine" and "mni_to_t1" not in second
    assert first["max_depth_mm"] == 25.0 and second["max_depth_mm"] == 40.0
    assert first["t1"] == str(tmp_path / "t1.nii.gz")  # relative to the manifest
    assert rows[0].inputs == {"t1": first["t1"], "mni_to_t1": first["mni_to_t1"]}


@pytest.mark.slow
def test_interrupted_batch_leaves_only_complete_folders(tmp_path, capsys, monkeypatch):
    import tmsplan.export

    manifest = tmp_path / "m.tsv"
    manifest.write_text(
        "subject\ttarget_mni\n" + "".join(f"sub-{i}\t{-40 + 3 * i} 40 30\n" for i in range(1, 6))
    )
    calls = []
    original = tmsplan.export.export_all

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # Ctrl-C while the third folder is being written
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(tmsplan.export, "export_all", interrupted)
    out = tmp_path / "out"
    argv = ["batch", str(manifest), "--out", str(out), "--jobs", "1", "--no-report"]
    assert main(argv) == 130
    assert "only complete plan folders" in capsys.readouterr().err
    folders = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert folders == ["sub-1", "sub-2"]  # no staging leftovers, no half-written sub-3
    assert all(read_record(out / name)["targets"] for name in folders)
    monkeypatch.undo()
    assert main(argv) == 0
    assert [r["status"] for r in _table(out)] == ["skipped"] * 2 + ["ok"] * 3


_FAULTS = """
import resource, sys
import numpy as np
from tmsplan.cohort.batch import _keep_freed_memory
if sys.argv[1] == "tuned":
    _keep_freed_memory()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(300):
    np.ones(1 << 17)  # 1 MiB, freed at once
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc")
def test_worker_keeps_freed_memory_under_dask_malloc_trim_threshold():
    # Dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536: every large array is then a fresh
    # mmap whose pages the kernel faults in (2 s of kernel time per row); the task undoes it
    env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": "65536"}
    faults = {
        how: int(
            subprocess.run(
                [sys.executable, "-c", _FAULTS, how], env=env, capture_output=True, check=True
            ).stdout
        )
        for how in ("as-set", "tuned")
    }
    assert faults["as-set"] > 300 * 200  # ~256 pages faulted in per 1 MiB array
    assert faults["tuned"] < faults["as-set"] / 10


def test_subjects_with_most_rows_go_first_and_rows_use_one_thread(tmp_path, monkeypatch):
    from threadpoolctl import threadpool_info

    import tmsplan.cohort.batch as batch

    rows = [
        BatchRow(index=i, subject=s, target="t", folder=s)
        for i, s in enumerate(["a", "b", "b", "c", "b", "c"], start=1)
    ]
    tasks = batch._tasks(rows, tmp_path, False, True, worker=False)
    assert [[r["subject"] for r in t["rows"]] for t in tasks] == [["b"] * 3, ["c"] * 2, ["a"]]
    assert not any(t["worker"] for t in tasks)

    def threads_seen(row, out, *, force, cache):
        return {"index": row.index, "threads": {i["num_threads"] for i in threadpool_info()}}

    monkeypatch.setattr(batch, "_plan_row", threads_seen)
    results = batch.plan_subject(tasks[0])
    assert [r["index"] for r in results] == [2, 3, 5]
    assert all(r["threads"] <= {1} for r in results)  # one row = one core in every mode


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_dask_workers_with_several_threads_are_named(tmp_path):
    distributed = pytest.importorskip("distributed")
    from tmsplan.errors import TmsplanWarning

    rows = [BatchRow(index=1, subject="sub-01", target="t", folder="sub-01", error="no T1")]
    environ = dict(os.environ)  # the nanny sets its worker variables here too
    try:
        with distributed.LocalCluster(
            n_workers=1,
            threads_per_worker=2,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",
        ) as cluster:
            with pytest.warns(TmsplanWarning, match="--nthreads 1"):
                result = run_batch(
                    rows, tmp_path / "out", scheduler=cluster.scheduler_address, report=False
                )
    finally:
        os.environ.clear()
        os.environ.update(environ)
    assert result.count("failed") == 1 and result.rows[0]["reason"] == "no T1"
    assert 0 < result.rows_seconds <= result.seconds
