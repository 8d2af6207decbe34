"""Runner of ``tmsplan batch``: a cohort, with progress on stderr."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tmsplan.errors import TmsplanError


def run_batch(args: argparse.Namespace) -> int:
    from tmsplan.cohort.batch import COLUMNS, bids_rows, read_manifest, run_batch

    defaults = {}
    for name in COLUMNS:
        value = getattr(args, name, None)
        if value is None:
            continue
        if isinstance(value, list):
            value = " ".join(str(v) for v in value)
        elif isinstance(value, Path):
            value = str(value.resolve())
        defaults[name] = str(value)
    report = not args.no_report
    if args.manifest.is_dir():
        rows = bids_rows(args.manifest, defaults=defaults, report=report)
    else:
        rows = read_manifest(args.manifest, defaults=defaults, report=report)
    if args.jobs is not None and args.jobs < 1:
        raise TmsplanError(f"--jobs must be at least 1, got {args.jobs}.")
    where = f"the Dask cluster at {args.scheduler}" if args.scheduler else "this machine"
    print(
        f"batch: {len(rows)} rows from {args.manifest} on {where} -> {args.out}/", file=sys.stderr
    )
    bar = None
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=len(rows), unit="row", file=sys.stderr)

    def progress(result: dict, done: int, total: int) -> None:
        line = f"{result['subject'] or '?'} {result['target']}: {result['status']}"
        if result["status"] == "failed":
            line += f" ({result['reason']})"
        if bar is not None:
            bar.update(1)
            if result["status"] == "failed":
                bar.write(f"batch: {line}", file=sys.stderr)
        else:
            print(f"batch: [{done}/{total}] {line}", file=sys.stderr, flush=True)

    try:
        result = run_batch(
            rows,
            args.out,
            jobs=args.jobs,
            scheduler=args.scheduler,
            force=args.force,
            cache=not args.no_cache,
            report=report,
            progress=progress,
        )
    except KeyboardInterrupt:
        print(
            f"tmsplan: interrupted; {args.out}/ holds only complete plan folders. Run the same "
            "command again to finish (finished rows are skipped).",
            file=sys.stderr,
        )
        return 130
    finally:
        if bar is not None:
            bar.close()
    ok, skipped, failed = (result.count(s) for s in ("ok", "skipped", "failed"))
    print(
        f"batch: {ok} planned, {skipped} unchanged (skipped), {failed} failed in "
        f"{result.seconds:.1f} s; table {result.table}, page {result.html}"
    )
    redone = [r for r in result.rows if r["status"] == "ok"]
    if skipped and redone:
        names = ", ".join(f"{r['subject']}:{r['target']}" for r in redone)
        print(f"batch: planned again (inputs or options changed): {names}")
    if failed:
        raise TmsplanError(
            f"{failed} of {len(result.rows)} rows failed; see the 'reason' column of "
            f"{result.table} and the logs in {result.out / 'failed'}/."
        )
    return 0
