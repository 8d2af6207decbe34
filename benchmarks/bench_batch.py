"""Cohort figures: a plan on a cached head, batch throughput, several targets on one head.

Run:  python benchmarks/bench_batch.py [--patients 8] [--repeat 3] [--skip-dask] [--skip-single]

(a) `tmsplan plan --no-report` on the embedded head with a warm head cache, against a
    minimal nearest-scalp-point tool (load the head, threshold, marching cubes, nearest
    vertex); both as fresh commands and in-process (imports excluded). Commands run with
    Python's bytecode cache on (as after `pip install`), whatever PYTHONDONTWRITEBYTECODE
    says; the import floor of each (its imports alone, as a command) is printed too.
(b) `tmsplan batch --no-report` throughput (targets/minute) over synthetic patients (the
    2 mm MNI head under known transforms, each with its MNI->T1 matrix) with --jobs 1,
    --jobs 2, 1 and 2 Dask workers (LocalClusters of one-thread workers started here, startup
    not timed), each with an empty head cache: the whole batch and its rows alone (the rest
    is the cohort summary, timed also with cohort.png); peak memory (max RSS) per worker.
(c) 5 targets on one patient head against 1 target (batch, empty head cache).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _phantoms import rigid_scaling, synthetic_patient  # noqa: E402

from tmsplan.cohort.batch import read_manifest, run_batch  # noqa: E402
from tmsplan.io.bundled import load_mni_head, mni_head_path  # noqa: E402

MINIMAL_TOOL = """
import sys, time
import nibabel as nib, numpy as np
from scipy.spatial import cKDTree
from skimage.measure import marching_cubes
img = nib.load(sys.argv[1])
data = np.asarray(img.dataobj, dtype=np.float32)
verts, faces, _, _ = marching_cubes(data, level=float(data.mean()))
world = verts @ img.affine[:3, :3].T + img.affine[:3, 3]
point = np.array([float(v) for v in sys.argv[2:5]])
distance, index = cKDTree(world).query(point)
print(world[index], distance)
"""

DLPFC = ("-38", "44", "26")


def _run(cmd: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, capture_output=True)
    return time.perf_counter() - start


PLAN_IMPORTS = "import numpy, nibabel, fastjsonschema"  # what a plan on a cached head needs
MINIMAL_IMPORTS = "import numpy, nibabel, scipy.spatial; from skimage.measure import marching_cubes"


def bench_single(repeat: int, cache: Path) -> None:
    env = {**os.environ, "TMSPLAN_CACHE_DIR": str(cache)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # installed packages have their bytecode
    python = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        tool = Path(tmp) / "minimal_tool.py"
        tool.write_text(MINIMAL_TOOL)
        plan = [python, "-m", "tmsplan", "plan", "--target-mni", *DLPFC, "--no-report"]
        _run([*plan, "--out", f"{tmp}/warm"], env)  # fills the cache (and the bytecode)
        ours, minimal = [], []
        for i in range(repeat):  # interleaved: load from other processes hits both alike
            ours.append(_run([*plan, "--out", f"{tmp}/p{i}"], env))
            minimal.append(_run([python, str(tool), str(mni_head_path(1)), *DLPFC], env))
        floor_ours = [_run([python, "-c", PLAN_IMPORTS], env) for _ in range(repeat)]
        floor_minimal = [_run([python, "-c", MINIMAL_IMPORTS], env) for _ in range(repeat)]
        cold = [_run([*plan, "--out", f"{tmp}/c{i}", "--no-cache"], env) for i in range(repeat)]
    # in-process, imports done
    from scipy.spatial import cKDTree
    from skimage.measure import marching_cubes

    from tmsplan.pipeline.plan import plan_target

    plan_target(target_mni=tuple(map(float, DLPFC)))
    in_ours, in_minimal = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        plan_target(target_mni=tuple(map(float, DLPFC)))
        in_ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        img = nib.load(mni_head_path(1))
        data = np.asarray(img.dataobj, dtype=np.float32)
        verts, _, _, _ = marching_cubes(data, level=float(data.mean()))
        world = verts @ img.affine[:3, :3].T + img.affine[:3, 3]
        cKDTree(world).query(np.array(DLPFC, float))
        in_minimal.append(time.perf_counter() - start)
    med = statistics.median
    print("(a) one target on the embedded 1 mm head (median of", repeat, "runs, seconds)")
    print(f"    tmsplan plan --no-report, warm head cache (command) {med(ours):6.2f}")
    print(f"    tmsplan plan --no-report --no-cache (command)       {med(cold):6.2f}")
    print(f"    minimal nearest-scalp-point tool (command)          {med(minimal):6.2f}")
    print(
        f"    ratio plan/minimal, commands                        {med(ours) / med(minimal):6.2f}"
    )
    print(f"    imports alone: {PLAN_IMPORTS[7:]:34s}   {med(floor_ours):6.2f}")
    print(f"    imports alone: the minimal tool's                   {med(floor_minimal):6.2f}")
    print(f"    plan_target, warm (in-process)                      {med(in_ours):6.2f}")
    print(f"    minimal tool (in-process)                           {med(in_minimal):6.2f}")
    ratio = med(in_ours) / med(in_minimal)
    print(f"    ratio plan/minimal, in-process                      {ratio:6.2f}")


def _cohort(folder: Path, n: int, targets_per_subject: int = 1) -> Path:
    rng = np.random.default_rng(5)
    mni = load_mni_head(2)
    lines = ["subject\tt1\tmni_to_t1\ttarget_mni\ttarget_name"]
    for i in range(1, n + 1):
        matrix = rigid_scaling(
            angle_deg=float(rng.uniform(-12, 12)),
            scale=tuple(rng.uniform(0.93, 1.07, 3)),
            shift=tuple(rng.uniform(-10, 10, 3)),
        )
        subject = f"sub-{i:02d}"
        nib.save(synthetic_patient(mni, matrix, order="LPS"), folder / f"{subject}_T1w.nii.gz")
        np.savetxt(folder / f"{subject}_mni_to_t1.txt", matrix)
        for k in range(targets_per_subject):
            xyz = f"{-38 + 4 * k} {44 - 6 * k} {26 + 3 * k}"
            lines.append(f"{subject}\t{subject}_T1w.nii.gz\t{subject}_mni_to_t1.txt\t{xyz}\tt{k}")
    manifest = folder / "manifest.tsv"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def _batch(manifest: Path, out: Path, cache: Path, **kwargs) -> dict:
    os.environ["TMSPLAN_CACHE_DIR"] = str(cache)
    rows = read_manifest(manifest, report=False)
    start = time.perf_counter()
    result = run_batch(rows, out, report=False, **kwargs)
    seconds = time.perf_counter() - start
    assert result.count("failed") == 0, [r["reason"] for r in result.rows]
    memory: dict[int, float] = {}
    for row in result.rows:
        memory[row["worker_pid"]] = max(memory.get(row["worker_pid"], 0.0), row["peak_memory_mb"])
    return {
        "seconds": seconds,
        "rows_seconds": result.rows_seconds,
        "cpu": statistics.median(r["cpu_seconds"] for r in result.rows),
        "cores": sum(r["cpu_seconds"] for r in result.rows) / result.rows_seconds,
        "memory": sorted(memory.values()),
        "result": result,
    }


def _dask_batch(workers: int, manifest: Path, out: Path, cache: Path) -> dict:
    """A batch on a LocalCluster of ``workers`` one-thread worker processes (startup not timed)."""
    from distributed import LocalCluster

    environ = dict(os.environ)  # the nanny leaks its worker variables into this process
    try:
        with LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",
        ) as cluster:
            return _batch(manifest, out, cache, scheduler=cluster.scheduler_address)
    finally:
        os.environ.clear()
        os.environ.update(environ)


def bench_batch(n: int, skip_dask: bool) -> None:
    from tmsplan.cohort.summary import cohort_html, cohort_picture

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        manifest = _cohort(tmp, n)
        load = os.getloadavg()
        print(
            f"(b) tmsplan batch --no-report, {n} synthetic patients (1 target each), empty head "
            f"cache per run; load average before {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
        )
        print(
            "    targets/min of the whole batch (rows + cohort.tsv/html) and of the rows only; "
            "median CPU time of a row's process while it ran (load-independent) and the cores "
            "the rows kept busy (all rows' CPU time / rows' wall time: 2 is all of a 2-core "
            "machine)"
        )
        runs = [("--jobs 1", {"jobs": 1}), ("1 Dask worker", 1)]
        runs += [("--jobs 2", {"jobs": 2}), ("2 Dask workers", 2)]
        figures = {}
        for i, (label, how) in enumerate(runs):
            if isinstance(how, int) and skip_dask:
                continue
            out, cache = tmp / f"out{i}", tmp / f"cache{i}"
            if isinstance(how, int):
                figures[label] = _dask_batch(how, manifest, out, cache)
            else:
                figures[label] = _batch(manifest, out, cache, **how)
            got = figures[label]
            memory = ", ".join(f"{m / 1024:.2f}" for m in got["memory"])
            whole = 60 * n / got["seconds"]
            print(
                f"    {label:15s} {got['seconds']:6.1f} s {whole:5.1f} targets/min"
                f" | rows {got['rows_seconds']:6.1f} s {60 * n / got['rows_seconds']:5.1f}"
                f" targets/min | CPU/row {got['cpu']:4.2f} s, cores busy {got['cores']:4.2f}"
                f" | peak memory per worker {memory} GB",
                flush=True,
            )
        pairs = [("--jobs 2", "--jobs 1"), ("2 Dask workers", "1 Dask worker")]
        pairs += [("2 Dask workers", "--jobs 1"), ("1 Dask worker", "--jobs 1")]
        for fast, slow in pairs:
            if fast in figures and slow in figures:
                whole = figures[slow]["seconds"] / figures[fast]["seconds"]
                rows = figures[slow]["rows_seconds"] / figures[fast]["rows_seconds"]
                print(f"    speed-up {fast} / {slow}: {whole:.2f}x (rows only {rows:.2f}x)")
        summary = [g["seconds"] - g["rows_seconds"] for g in figures.values()]
        results = figures["--jobs 1"]["result"].rows
        start = time.perf_counter()
        picture = cohort_picture(results, tmp / "cohort.png")
        cohort_html(results, picture, tmp)
        drawn = time.perf_counter() - start
        load = os.getloadavg()
        print(
            f"    fixed cohort summary: cohort.tsv + cohort.html {max(summary):.2f} s at most; "
            f"with cohort.png (no --no-report) {drawn:.2f} s"
        )
        print(f"    load average after {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")

        (tmp / "one").mkdir()
        (tmp / "five").mkdir()
        one, five = _cohort(tmp / "one", 1, 1), _cohort(tmp / "five", 1, 5)
        t1 = _batch(one, tmp / "o1", tmp / "c1", jobs=1)["seconds"]
        t5 = _batch(five, tmp / "o5", tmp / "c5", jobs=1)["seconds"]
        print("(c) one patient head, empty head cache, tmsplan batch --no-report --jobs 1")
        print(f"    1 target {t1:5.2f} s, 5 targets {t5:5.2f} s: ratio {t5 / t1:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-dask", action="store_true")
    parser.add_argument("--skip-single", action="store_true", help="skip (a)")
    args = parser.parse_args()
    if not args.skip_single:
        with tempfile.TemporaryDirectory() as cache:
            bench_single(args.repeat, Path(cache))
    bench_batch(args.patients, args.skip_dask)


if __name__ == "__main__":
    main()
