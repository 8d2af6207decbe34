"""Many patients: batch rows -> one plan folder per row -> a cohort summary.

Design notes: ``docs/batch.md``, section ``tmsplan.cohort.batch``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tmsplan.cohort.manifest import (
    COLUMNS,
    FAILED_FOLDER,
    BatchRow,
    ManifestError,
    bids_rows,
    read_manifest,
)
from tmsplan.cohort.summary import (
    COHORT_COLUMNS,
    OUTLIER_DISTANCE_MM,
    OUTLIER_MIN_ROWS,
    cohort_html,
    cohort_picture,
    cohort_table,
    group_distances,
)
from tmsplan.errors import TmsplanError

__all__ = [
    "COLUMNS",
    "OUTLIER_DISTANCE_MM",
    "OUTLIER_MIN_ROWS",
    "COHORT_COLUMNS",
    "BatchRow",
    "BatchResult",
    "ManifestError",
    "read_manifest",
    "bids_rows",
    "run_batch",
    "plan_subject",
]

SIDECAR = "batch.json"
ROW_LOG = "batch.log"
BATCH_MARKER = ".tmsplan-batch"


# --------------------------------------------------------------------------- one subject


def _sha256(path: str) -> str | None:
    from tmsplan.io.images import file_sha256

    try:
        return file_sha256(path)
    except OSError:
        return None


def _fingerprint(row: BatchRow) -> dict:
    """Checksums of the row's input files and a hash of everything else that shapes it."""
    from tmsplan import __version__
    from tmsplan.head.cache import HEAD_ALGORITHM_VERSION

    options = {
        key: value
        for key, value in sorted(row.plan_kwargs.items())
        if key not in {COLUMNS[c].key for c in row.inputs}
    }
    described = json.dumps(
        {
            "options": options,
            "write": row.write_kwargs,
            "inputs": sorted(row.inputs.items()),
            "tmsplan_version": __version__,
            "head_algorithm_version": HEAD_ALGORITHM_VERSION,
        },
        sort_keys=True,
        default=str,
    )
    return {
        "inputs": {name: _sha256(path) for name, path in sorted(row.inputs.items())},
        "options_sha256": hashlib.sha256(described.encode()).hexdigest(),
    }


def _complete(folder: Path) -> dict | None:
    """The record of a complete plan folder (every listed output present), else None."""
    from tmsplan.io.record import RECORD_FILENAME, read_record

    try:
        record = read_record(folder / RECORD_FILENAME)
    except (TmsplanError, OSError, ValueError):
        return None
    for names in record.get("outputs", {}).values():
        for name in names:
            if not (folder / name).is_file():
                return None
    return record


def _up_to_date(folder: Path, fingerprint: dict) -> dict | None:
    """The record when the folder is complete and was made from the same inputs/options."""
    try:
        stored = json.loads((folder / SIDECAR).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(stored, dict) or stored.get("fingerprint") != fingerprint:
        return None
    if any(value is None for value in fingerprint["inputs"].values()):
        return None
    return _complete(folder)


def _summary(record: dict) -> dict:
    """The cohort-table values of a plan record (its first target)."""
    target = record["targets"][0]
    roi = record.get("roi") or {}
    return {
        "cortical": target["cortical_mm"],
        "scalp": target["scalp_mm"],
        "cortical_mni": target.get("cortical_mni_mm"),
        "depth_mm": target["depth_mm"],
        "reachable": bool(target["reachable"]),
        "roi": roi.get("id") or ("mask" if roi else ""),
        "space": record["space"],
        "name": target["name"],
        "warnings": list(record.get("warnings", [])),
    }


_PEAK_MAPS: dict[tuple, Any] = {}


def _peak_map(path: str, threshold: float):
    """The MNI map of a peak table (kept per process: many rows share one table)."""
    from tmsplan.target.activation import mni_map_from_peak_table

    key = (path, _sha256(path), threshold)
    if key not in _PEAK_MAPS:
        if len(_PEAK_MAPS) >= 4:
            _PEAK_MAPS.clear()
        _PEAK_MAPS[key] = mni_map_from_peak_table(path, threshold=threshold)
    return _PEAK_MAPS[key]


def _peak_memory_mb() -> float:
    """Peak resident memory of this process so far (MB).

    Linux: ``VmHWM`` (reset at exec, so a spawned worker does not report its
    parent's peak, as ``ru_maxrss`` would); elsewhere ``ru_maxrss``.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024.0, 1)
    except OSError:
        pass
    import resource

    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(kb / 1024.0 if sys.platform != "darwin" else kb / 1024.0**2, 1)


def _failed_log(out: Path, row: BatchRow) -> Path:
    if not row.subject or not re.fullmatch(r"[A-Za-z0-9._-]+", row.subject):
        return out / FAILED_FOLDER / f"row{row.index}.log"
    stem = f"{row.subject}__{row.target}" if "/" in row.folder else row.subject
    return out / FAILED_FOLDER / f"{stem}.log"


def _plan_row(row: BatchRow, out: Path, *, force: bool, cache: bool) -> dict:
    """Plan and write one row (or skip it); a result dict, never an exception."""
    import warnings

    from tmsplan.io.outputs import write_text
    from tmsplan.pipeline.plan import plan_target, write_plan

    started = time.perf_counter()
    folder = out / row.folder
    log = [
        f"tmsplan batch row {row.index}: subject {row.subject}, target {row.target}",
        f"started {time.strftime('%Y-%m-%d %H:%M:%S')}",
        f"inputs: {json.dumps(row.inputs, sort_keys=True)}",
        f"options: {json.dumps(row.plan_kwargs, sort_keys=True, default=str)}",
    ]
    result: dict[str, Any] = {
        "index": row.index,
        "subject": row.subject,
        "target": row.target,
        "folder": row.folder,
        "status": "failed",
        "reason": row.error or "",
    }
    try:
        if row.error:
            raise TmsplanError(row.error)
        fingerprint = _fingerprint(row)
        record = None if force else _up_to_date(folder, fingerprint)
        if record is not None:
            result.update(status="skipped", reason="", summary=_summary(record))
        else:
            kwargs = dict(row.plan_kwargs)
            peaks = kwargs.pop("peaks", None)
            if peaks is not None:
                from tmsplan.target.activation import DEFAULT_THRESHOLD

                threshold = kwargs.get("threshold", DEFAULT_THRESHOLD)
                img, provenance = _peak_map(peaks, threshold)
                kwargs.update(activation=img, activation_source=provenance)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                if not cache:
                    from tmsplan.head.cache import load_head

                    kwargs["head"] = load_head(kwargs.get("t1"), cache=False)
                plan = plan_target(**kwargs)
                exists = folder.exists()
                record = write_plan(plan, folder, overwrite=exists, **row.write_kwargs)
            for item in caught:
                log.append(f"python warning: {item.message}")
            for warning in record["warnings"]:
                log.append(f"warning: {warning}")
            sidecar = {
                "manifest_row": row.index,
                "subject": row.subject,
                "target": row.target,
                "inputs": row.inputs,
                "fingerprint": fingerprint,
            }
            write_text(folder / SIDECAR, json.dumps(sidecar, indent=2) + "\n", overwrite=True)
            result.update(status="ok", reason="", summary=_summary(record))
            _failed_log(out, row).unlink(missing_ok=True)
    except KeyboardInterrupt:
        raise
    except TmsplanError as exc:
        result["reason"] = str(exc)
        log.append(f"failed: {exc}")
    except Exception as exc:  # noqa: BLE001 - one bad row must not stop the others
        result["reason"] = f"internal error ({type(exc).__name__}: {exc})"
        log.append("failed with an internal error:\n" + traceback.format_exc())
    result["seconds"] = round(time.perf_counter() - started, 3)
    log.append(f"status: {result['status']} after {result['seconds']:.1f} s")
    if result["status"] == "ok":
        summary = result["summary"]
        log.append(
            f"target {summary['name']}: cortical {summary['cortical']} -> scalp "
            f"{summary['scalp']} ({summary['space']}), depth {summary['depth_mm']} mm, "
            f"{'reachable' if summary['reachable'] else 'NOT reachable'}"
        )
    try:
        if result["status"] == "ok":
            write_text(folder / ROW_LOG, "\n".join(log) + "\n", overwrite=True)
        elif result["status"] == "failed":
            write_text(_failed_log(out, row), "\n".join(log) + "\n", overwrite=True)
    except OSError:
        pass  # the row's result stands; the log is a convenience
    return result


ONE_THREAD_ENVIRON = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS",
)


def _one_thread_environ() -> None:
    """Numeric libraries loaded from now on in this worker process use one thread."""
    for name in ONE_THREAD_ENVIRON:
        os.environ.setdefault(name, "1")


_MALLOC_TUNED: list[bool] = []


def _keep_freed_memory() -> None:
    """Undo a ``MALLOC_TRIM_THRESHOLD_`` that makes glibc return every freed block at once.

    Dask's nanny sets ``MALLOC_TRIM_THRESHOLD_=65536`` in its workers (and leaks it
    into the process that started a ``LocalCluster``). That also freezes glibc's
    mmap threshold at 128 KiB, so every large array is a fresh ``mmap`` whose pages
    the kernel faults in and zeroes: a row then spends ~2 s in the kernel instead of
    ~0.15 s (35 % more CPU time). Set the thresholds glibc would otherwise grow to
    (32 MiB mmap, 64 MiB trim). Once per process; only when such a variable is set.
    """
    if _MALLOC_TUNED or not sys.platform.startswith("linux"):
        return
    _MALLOC_TUNED.append(True)
    if not any(name in os.environ for name in ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_")):
        return
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        libc.mallopt(m_mmap_threshold, 32 * 1024 * 1024)
        libc.mallopt(m_trim_threshold, 64 * 1024 * 1024)
    except (OSError, AttributeError):
        pass  # not glibc: nothing to undo


def plan_subject(task: dict) -> list[dict]:
    """Plan every row of one subject (the unit of work sent to a process or Dask worker).

    Parameters
    ----------
    task : dict
        ``rows`` (list of :class:`BatchRow` as dicts), ``out`` (str), ``force``,
        ``cache`` (bool), ``cache_dir`` (str or None) and ``worker`` (bool: this is
        a worker process, whose numeric libraries are set to one thread each).

    Returns
    -------
    list of dict
        One result per row: ``index``, ``subject``, ``target``, ``folder``,
        ``status`` (``ok``, ``skipped``, ``failed``), ``reason``, ``seconds``,
        ``summary`` (record values), ``cpu_seconds`` (CPU time of the process while
        the row ran, all its threads) and ``peak_memory_mb`` of the process.
    """
    from threadpoolctl import threadpool_limits

    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    if task.get("worker"):
        _one_thread_environ()
    _keep_freed_memory()
    if task.get("cache_dir"):
        os.environ["TMSPLAN_CACHE_DIR"] = task["cache_dir"]
    out = Path(task["out"])
    results = []
    # one row = one core, whatever runs it: no oversubscription, and the same sums in every mode
    with threadpool_limits(limits=1):
        for data in task["rows"]:
            row = BatchRow(**data)
            before = os.times()
            result = _plan_row(row, out, force=task["force"], cache=task["cache"])
            after = os.times()
            cpu = (after.user - before.user) + (after.system - before.system)
            result["cpu_seconds"] = round(cpu, 3)
            result["peak_memory_mb"] = _peak_memory_mb()
            result["worker_pid"] = os.getpid()
            results.append(result)
    return results


# --------------------------------------------------------------------------- the batch


@dataclass(frozen=True)
class BatchResult:
    """What a batch did.

    Attributes
    ----------
    rows : list of dict
        One entry per row, in manifest order (see :func:`plan_subject`), with
        ``distance_from_mean_mm`` and ``outlier`` added.
    out : pathlib.Path
        The output folder.
    table : pathlib.Path
        ``cohort.tsv``.
    html : pathlib.Path
        ``cohort.html``.
    picture : pathlib.Path or None
        ``cohort.png`` (None without pictures or without any planned target).
    seconds : float
        Wall time of the whole batch.
    rows_seconds : float
        Wall time until the last row was planned (the rest of ``seconds`` is the
        cohort table, picture and page).
    """

    rows: list
    out: Path
    table: Path
    html: Path
    picture: Path | None
    seconds: float
    rows_seconds: float

    def count(self, status: str) -> int:
        """Number of rows with this status (``ok``, ``skipped`` or ``failed``)."""
        return sum(1 for row in self.rows if row["status"] == status)


def _default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _tasks(
    rows: list[BatchRow], out: Path, force: bool, cache: bool, *, worker: bool
) -> list[dict]:
    by_subject: dict[str, list[BatchRow]] = {}
    for row in rows:
        key = row.subject if row.subject and not row.error else f"#row{row.index}"
        by_subject.setdefault(key, []).append(row)
    # subjects with most rows first, so that no long one starts last (results are by index)
    groups = sorted(by_subject.values(), key=len, reverse=True)
    return [
        {
            "rows": [asdict(r) for r in members],
            "out": str(out),
            "force": force,
            "cache": cache,
            # a cache folder set here is used by the workers too; else each uses its own
            "cache_dir": os.environ.get("TMSPLAN_CACHE_DIR") or None,
            "worker": worker,
        }
        for members in groups
    ]


def _check_out(out: Path, *, force: bool) -> None:
    from tmsplan.errors import OutputExistsError

    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"--out {out} exists and is a file; give a folder.")
    if out.is_dir() and any(out.iterdir()) and not (out / BATCH_MARKER).exists() and not force:
        raise OutputExistsError(
            f"--out {out} is not empty and was not written by 'tmsplan batch'; choose a new "
            "folder (or pass --force to add the batch's folders to it)."
        )


def _run_local(tasks: list[dict], jobs: int, on_result: Callable[[dict], None]) -> None:
    if jobs <= 1 or len(tasks) <= 1:
        for task in tasks:
            for result in plan_subject(task):
                on_result(result)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    context = multiprocessing.get_context("spawn")  # no fork of a process holding VTK/threads
    executor = ProcessPoolExecutor(
        max_workers=min(jobs, len(tasks)),
        mp_context=context,
        initializer=_one_thread_environ,  # before the worker imports numpy
    )
    try:
        futures = [executor.submit(plan_subject, task) for task in tasks]
        for future in as_completed(futures):
            for result in future.result():
                on_result(result)
    except BaseException:
        executor.shutdown(wait=True, cancel_futures=True)
        raise
    executor.shutdown(wait=True)


def _connect(address: str):
    """A Dask client of the scheduler at ``address`` (before anything is written)."""
    try:
        from distributed import Client
    except ImportError:
        raise TmsplanError(
            "--scheduler needs Dask distributed: pip install 'tmsplan[cohort]' "
            "(or 'dask[distributed]')."
        ) from None
    try:
        return Client(address, timeout="20s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise TmsplanError(
            f"cannot reach the Dask scheduler at {address} ({exc}); start it with "
            "'dask scheduler' and workers with 'dask worker ADDRESS'."
        ) from None


def _warn_threaded_workers(client) -> None:
    """Warn when Dask workers run several threads (several subjects in one process)."""
    import warnings

    from tmsplan.errors import TmsplanWarning

    try:
        workers = client.scheduler_info().get("workers", {})
    except (OSError, TimeoutError):  # the batch itself reports a lost scheduler
        return
    threads = max((int(w.get("nthreads", 1)) for w in workers.values()), default=1)
    if threads > 1:
        warnings.warn(
            f"Dask workers run up to {threads} threads each: that many subjects then share one "
            "process, its memory limit and its interpreter lock; start workers with "
            "'dask worker ADDRESS --nthreads 1 --nworkers CORES' (one subject per process).",
            TmsplanWarning,
            stacklevel=3,
        )


def _run_dask(tasks: list[dict], client, on_result: Callable[[dict], None]) -> None:
    from distributed import as_completed

    _warn_threaded_workers(client)

    keys = [f"tmsplan-batch-{i}-{os.getpid()}-{time.time_ns()}" for i in range(len(tasks))]
    futures = client.map(plan_subject, tasks, key=keys, pure=False, retries=0)
    try:
        for future in as_completed(futures, loop=client.loop):
            for result in future.result():
                on_result(result)
    except BaseException:
        client.cancel(futures)
        raise


def run_batch(
    rows: list[BatchRow],
    out: str | os.PathLike,
    *,
    jobs: int | None = None,
    scheduler: str | None = None,
    force: bool = False,
    cache: bool = True,
    report: bool = True,
    progress: Callable[[dict, int, int], None] | None = None,
) -> BatchResult:
    """Plan every row and write the cohort table, picture and page.

    Parameters
    ----------
    rows : list of BatchRow
        From :func:`read_manifest` or :func:`bids_rows`.
    out : str or os.PathLike
        Output folder (created); with ``scheduler`` it must be a path every
        Dask worker can reach (a shared file system).
    jobs : int, optional
        Worker processes on this machine (default: the number of cores); 1
        plans in this process. Ignored with ``scheduler``.
    scheduler : str, optional
        Address of a running Dask distributed scheduler (``tcp://HOST:PORT``).
    force : bool, keyword-only
        Plan every row again, even when its folder is up to date.
    cache : bool, keyword-only
        Use the head cache (False: ``--no-cache``).
    report : bool, keyword-only
        Draw ``cohort.png`` (rows' pictures are set per row in ``write_kwargs``).
    progress : callable, optional
        Called as ``progress(result, done, total)`` after each row.

    Returns
    -------
    BatchResult

    Raises
    ------
    OutputExistsError
        ``out`` is a file, or a non-empty folder not written by a batch (without ``force``).
    TmsplanError
        The Dask scheduler cannot be reached.
    """
    from tmsplan.io.outputs import write_text

    started = time.perf_counter()
    out = Path(out).resolve()
    _check_out(out, force=force)
    client = _connect(scheduler) if scheduler else None
    done: dict[int, dict] = {}

    def on_result(result: dict) -> None:
        done[result["index"]] = result
        if progress is not None:
            progress(result, len(done), len(rows))

    try:
        out.mkdir(parents=True, exist_ok=True)
        write_text(out / BATCH_MARKER, json.dumps({"rows": len(rows)}) + "\n", overwrite=True)
        jobs = jobs or _default_jobs()
        tasks = _tasks(rows, out, force, cache, worker=client is not None)
        if client is None and jobs > 1 and len(tasks) > 1:
            for task in tasks:
                task["worker"] = True  # runs in a process of the pool (_run_local)
        if client is not None:
            _run_dask(tasks, client, on_result)
        else:
            _run_local(tasks, jobs, on_result)
    finally:
        if client is not None:
            client.close()
    rows_seconds = time.perf_counter() - started
    results = [done[row.index] for row in rows]
    group_distances(results)
    table = write_text(out / "cohort.tsv", cohort_table(results), overwrite=True)
    picture = None
    if report:
        picture = cohort_picture(results, out / "cohort.png")
    html_path = write_text(out / "cohort.html", cohort_html(results, picture, out), overwrite=True)
    return BatchResult(
        rows=results,
        out=out,
        table=table,
        html=html_path,
        picture=picture,
        seconds=round(time.perf_counter() - started, 3),
        rows_seconds=round(rows_seconds, 3),
    )
