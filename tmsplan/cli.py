"""The ``tmsplan`` command: a thin layer over the public API.

Every subcommand is ``main(argv) -> int``-testable in-process. Errors raised on
purpose (:class:`tmsplan.errors.TmsplanError`) become one line on stderr and exit
code 1; usage errors exit 2; anything unexpected is reported in one line too
(``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from tmsplan import __version__
from tmsplan.errors import TmsplanError, TmsplanWarning

__all__ = ["main", "build_parser"]

DEMO_PEAKS = "peaks/zhang2018_cocaine_cue_table1.tsv"
DEMO_ROI = "cocaine_mfg_l"
RECORD_MARKER = "target.json"  # a folder holding it was written by tmsplan


def _add_plan_options(parser: argparse.ArgumentParser) -> None:
    from tmsplan.activation import DEFAULT_THRESHOLD
    from tmsplan.projection import (
        DEFAULT_COIL_SKIN_DISTANCE_MM,
        DEFAULT_HANDLE_ANGLE_DEG,
        DEFAULT_MAX_DEPTH_MM,
    )

    parser.add_argument("--out", required=True, type=Path, help="output folder (must not exist)")
    parser.add_argument("--force", action="store_true", help="replace an existing output folder")
    parser.add_argument(
        "--threshold",
        type=float,
        default=DEFAULT_THRESHOLD,
        help=f"cluster-forming threshold on the map (default {DEFAULT_THRESHOLD})",
    )
    parser.add_argument(
        "--sign",
        choices=("positive", "negative", "absolute"),
        default="positive",
        help="which side of the threshold counts (default positive)",
    )
    parser.add_argument(
        "--rule",
        choices=("peak", "cog"),
        default="peak",
        help="target = peak of the largest cluster in the ROI, or its centre of gravity",
    )
    parser.add_argument(
        "--coil-skin-distance",
        type=float,
        default=DEFAULT_COIL_SKIN_DISTANCE_MM,
        metavar="MM",
        help=f"coil centre to skin, mm (default {DEFAULT_COIL_SKIN_DISTANCE_MM:g})",
    )
    parser.add_argument(
        "--handle-angle",
        type=float,
        default=DEFAULT_HANDLE_ANGLE_DEG,
        metavar="DEG",
        help=f"handle angle from the midsagittal plane (default {DEFAULT_HANDLE_ANGLE_DEG:g})",
    )
    parser.add_argument(
        "--max-depth",
        type=float,
        default=DEFAULT_MAX_DEPTH_MM,
        metavar="MM",
        help=f"deepest reachable target, mm (default {DEFAULT_MAX_DEPTH_MM:g})",
    )
    parser.add_argument(
        "--formats",
        default="all",
        help="comma-separated export formats, or 'all' (default) or 'none'",
    )
    parser.add_argument("--no-report", action="store_true", help="skip pictures and report.html")
    parser.add_argument("--subject", help="subject label stored in the record")
    _add_no_cache(parser)


def _add_no_cache(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="recompute the scalp surface; neither read nor write the head cache",
    )


def _cache_epilog() -> str:
    from tmsplan.headcache import cache_folder

    return (
        f"Computed heads (scalp surfaces) are cached in {cache_folder()}/heads (set "
        "TMSPLAN_CACHE_DIR to move it; safe to delete; --no-cache bypasses it)."
    )


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with all subcommands."""
    parser = argparse.ArgumentParser(
        prog="tmsplan",
        description=(
            "Plan TMS targets for drug-craving research: activation map x craving ROI -> "
            "cortical target -> scalp entry -> coil pose -> navigator files. Research "
            "planning aid; a clinician reviews every target."
        ),
        epilog=_cache_epilog(),
    )
    parser.add_argument("--version", action="version", version=f"tmsplan {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p_plan = sub.add_parser("plan", help="plan a target from an activation map and an ROI")
    p_plan.add_argument("--activation", type=Path, help="3-D statistic map (NIfTI)")
    p_plan.add_argument("--peaks", type=Path, help="instead of --activation: a peak table (TSV)")
    roi = p_plan.add_mutually_exclusive_group()
    roi.add_argument("--roi", help="craving ROI id (see 'tmsplan rois')")
    roi.add_argument("--roi-mask", type=Path, help="binary ROI mask in the map's space")
    p_plan.add_argument(
        "--target-mni",
        type=float,
        nargs=3,
        metavar=("X", "Y", "Z"),
        help="instead of a map: a target given in MNI152 mm",
    )
    p_plan.add_argument(
        "--target-t1",
        type=float,
        nargs=3,
        metavar=("X", "Y", "Z"),
        help="instead of a map: a target given in the T1's world mm (needs --t1)",
    )
    p_plan.add_argument("--t1", type=Path, help="patient T1 (default: embedded MNI152 head)")
    p_plan.add_argument(
        "--activation-space",
        choices=("MNI", "T1w"),
        default="MNI",
        help="space of --activation/--roi-mask: MNI (group map, default) or T1w (subject map)",
    )
    xfm = p_plan.add_mutually_exclusive_group()
    xfm.add_argument(
        "--mni-to-t1",
        type=Path,
        metavar="XFM",
        help="MNI->T1 transform: 4x4 matrix, ITK/ANTs .mat/.txt/.h5 (fMRIPrep), FSL .mat",
    )
    xfm.add_argument(
        "--register",
        nargs="?",
        const="affine",
        choices=("affine", "nonlinear"),
        help="register the embedded MNI head to --t1 (default affine)",
    )
    p_plan.add_argument(
        "--xfm-kind", choices=("affine", "itk", "fsl"), help="force the --mni-to-t1 reader"
    )
    p_plan.add_argument(
        "--xfm-moving",
        type=Path,
        metavar="MNI_IMAGE",
        help="FSL .mat only: the MNI image given to flirt -in (default: FSL's MNI152 grid)",
    )
    p_plan.add_argument("--target-name", help="target name in exports (default: ROI id)")
    _add_plan_options(p_plan)

    p_demo = sub.add_parser("demo", help="run the whole pipeline on the embedded defaults")
    p_demo.add_argument(
        "--roi", default=DEMO_ROI, help=f"craving ROI id for the demo (default {DEMO_ROI})"
    )
    _add_plan_options(p_demo)

    sub.add_parser("rois", help="list the craving ROIs of tmsplan's atlas")

    p_export = sub.add_parser("export", help="re-export a saved plan (target.json)")
    p_export.add_argument("record", type=Path, help="target.json of a plan (or its folder)")
    p_export.add_argument("--format", required=True, help="format name (see --help of plan)")
    p_export.add_argument("--space", default="RAS", choices=("RAS", "LPS"), help="vendor frame")
    p_export.add_argument("--out", required=True, type=Path, help="output file or folder")
    p_export.add_argument("--force", action="store_true", help="replace existing files")

    p_report = sub.add_parser("report", help="regenerate pictures and report.html of a plan")
    p_report.add_argument("record", type=Path, help="target.json of a plan (or its folder)")
    p_report.add_argument("--out", type=Path, help="folder (default: the plan folder)")
    p_report.add_argument("--force", action="store_true", help="replace existing files")

    p_view = sub.add_parser("view", help="open the plan in an interactive 3D window")
    p_view.add_argument("record", type=Path, help="target.json of a plan (or its folder)")

    p_group = sub.add_parser("group", help="several plans' targets on the MNI head, one picture")
    p_group.add_argument("records", type=Path, nargs="+", help="target.json files or plan folders")
    p_group.add_argument("--out", required=True, type=Path, help="PNG to write")
    p_group.add_argument(
        "--view", default="top", choices=("left", "right", "top", "front", "back"), help="view"
    )
    p_group.add_argument("--force", action="store_true", help="replace an existing PNG")
    _add_batch_parser(sub)
    return parser


def _add_batch_parser(sub) -> None:
    p_batch = sub.add_parser(
        "batch",
        help="plan a cohort: a manifest (TSV/CSV) or an fMRIPrep derivatives folder",
        description=(
            "Plan one target per manifest row (columns: subject, t1, one of activation/peaks/"
            "target_mni/target_t1, and plan's long options without dashes, e.g. roi, "
            "mni_to_t1, register, threshold), or every subject of an fMRIPrep derivatives "
            "folder with the map/ROI options below. Writes OUT/<subject>/ as 'tmsplan plan' "
            "does, OUT/cohort.tsv, cohort.png and cohort.html. Re-running skips rows whose "
            "inputs and options are unchanged."
        ),
    )
    p_batch.add_argument("manifest", type=Path, help="manifest .tsv/.csv, or a BIDS folder")
    p_batch.add_argument("--out", required=True, type=Path, help="output folder")
    p_batch.add_argument(
        "--jobs", type=int, metavar="N", help="worker processes (default: number of cores)"
    )
    p_batch.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on an existing Dask cluster, e.g. tcp://10.0.0.5:8786 (OUT must be shared)",
    )
    p_batch.add_argument(
        "--force", action="store_true", help="plan every row again, even unchanged ones"
    )
    p_batch.add_argument("--no-report", action="store_true", help="no pictures or reports")
    _add_no_cache(p_batch)
    rows = p_batch.add_argument_group("options for every row (a manifest cell overrides them)")
    rows.add_argument("--activation", type=Path, help="3-D statistic map (NIfTI)")
    rows.add_argument("--peaks", type=Path, help="peak table (TSV) instead of --activation")
    rows.add_argument("--roi", help="craving ROI id (see 'tmsplan rois')")
    rows.add_argument("--roi-mask", type=Path, help="binary ROI mask in the map's space")
    rows.add_argument("--target-mni", type=float, nargs=3, metavar=("X", "Y", "Z"))
    rows.add_argument("--register", nargs="?", const="affine", choices=("affine", "nonlinear"))
    rows.add_argument("--activation-space", choices=("MNI", "T1w"))
    rows.add_argument("--threshold", type=float)
    rows.add_argument("--sign", choices=("positive", "negative", "absolute"))
    rows.add_argument("--rule", choices=("peak", "cog"))
    rows.add_argument("--coil-skin-distance", type=float, metavar="MM")
    rows.add_argument("--handle-angle", type=float, metavar="DEG")
    rows.add_argument("--max-depth", type=float, metavar="MM")
    rows.add_argument("--target-name")
    rows.add_argument("--formats", help="comma-separated export formats, 'all' or 'none'")


def _formats(text: str) -> list[str] | None:
    text = text.strip().lower()
    if text == "all":
        return None
    if text == "none":
        return []
    return [part.strip() for part in text.split(",") if part.strip()]


def _summary(record: dict, out: Path) -> str:
    lines = [f"plan written to {out}/ (frame {record['space']}, RAS+ mm)"]
    for target in record["targets"]:
        status = (
            "reachable" if target["reachable"] else f"NOT reachable: {target['unreachable_reason']}"
        )
        cortical = ", ".join(f"{v:.1f}" for v in target["cortical_mm"])
        scalp = ", ".join(f"{v:.1f}" for v in target["scalp_mm"])
        lines.append(
            f"  {target['name']}: cortical ({cortical}) -> scalp ({scalp}), "
            f"depth {target['depth_mm']:.1f} mm, {status}"
        )
    for warning in record["warnings"]:
        lines.append(f"  warning: {warning}")
    return "\n".join(lines)


def _plan_kwargs(args: argparse.Namespace) -> dict:
    return {
        "threshold": args.threshold,
        "sign": args.sign,
        "rule": args.rule,
        "coil_skin_distance_mm": args.coil_skin_distance,
        "handle_angle_deg": args.handle_angle,
        "max_depth_mm": args.max_depth,
    }


def _activation(args: argparse.Namespace, peaks: Path | None) -> dict:
    """Keyword arguments giving plan_target its map: a NIfTI, or one built from peaks."""
    if peaks is None:
        return {"activation": args.activation}
    from tmsplan.activation import mni_map_from_peak_table

    img, provenance = mni_map_from_peak_table(peaks, threshold=args.threshold)
    return {"activation": img, "activation_source": provenance}


def _plan_and_write(args: argparse.Namespace, **plan_args) -> int:
    """Plan with the shared options of ``plan``/``demo``, write the folder, summarise."""
    from tmsplan.plan import plan_target, write_plan

    if args.no_cache:
        from tmsplan.headcache import load_head

        plan_args["head"] = load_head(plan_args.get("t1"), cache=False)
    plan = plan_target(**plan_args, **_plan_kwargs(args))
    record = write_plan(
        plan,
        args.out,
        formats=_formats(args.formats),
        report=not args.no_report,
        overwrite=args.force,
    )
    print(_summary(record, args.out))
    return 0


def _run_plan(args: argparse.Namespace) -> int:
    from tmsplan.outputs import check_replaceable_folder

    sources = [args.activation, args.peaks, args.target_mni, args.target_t1]
    if sum(x is not None for x in sources) != 1:
        raise TmsplanError(
            "give exactly one of --activation MAP, --peaks TABLE, --target-mni X Y Z or "
            "--target-t1 X Y Z."
        )
    if (args.activation or args.peaks) and not (args.roi or args.roi_mask):
        raise TmsplanError(
            "an activation map needs an ROI: --roi ID (see 'tmsplan rois') or --roi-mask."
        )
    check_replaceable_folder(args.out, overwrite=args.force, marker=RECORD_MARKER)
    return _plan_and_write(
        args,
        **(_activation(args, args.peaks) if (args.activation or args.peaks) else {}),
        roi=args.roi,
        roi_mask=args.roi_mask,
        t1=args.t1,
        mni_to_t1=args.mni_to_t1,
        xfm_kind=args.xfm_kind,
        xfm_moving=args.xfm_moving,
        register=args.register or False,
        activation_space=args.activation_space,
        target_mni=args.target_mni,
        target_t1=args.target_t1,
        subject=args.subject,
        target_name=args.target_name,
    )


def _run_demo(args: argparse.Namespace) -> int:
    from tmsplan.bundled import atlas_dir
    from tmsplan.outputs import check_replaceable_folder

    check_replaceable_folder(args.out, overwrite=args.force, marker=RECORD_MARKER)
    print(
        "demo: cocaine cue-reactivity map rebuilt from the seed review's Table 1 peaks, "
        f"ROI {args.roi}, embedded MNI152NLin6Asym head",
        file=sys.stderr,
    )
    return _plan_and_write(
        args,
        **_activation(args, atlas_dir() / DEMO_PEAKS),
        roi=args.roi,
        subject="MNI152NLin6Asym-demo",
    )


def _run_rois(args: argparse.Namespace) -> int:
    from tmsplan.atlas import format_roi_table, load_rois

    print(format_roi_table(load_rois()))
    return 0


def _run_export(args: argparse.Namespace) -> int:
    from tmsplan.export import export_record
    from tmsplan.record import read_record

    record = read_record(args.record)
    written = export_record(record, args.format, args.out, space=args.space, overwrite=args.force)
    for path in written:
        print(path)
    return 0


def _run_report(args: argparse.Namespace) -> int:
    from tmsplan.review import report_record

    for path in report_record(args.record, out=args.out, overwrite=args.force):
        print(path)
    return 0


def _run_view(args: argparse.Namespace) -> int:
    from tmsplan.review import view_record

    view_record(args.record)
    return 0


def _run_group(args: argparse.Namespace) -> int:
    from tmsplan.review import group_picture

    print(group_picture(args.records, args.out, view=args.view, overwrite=args.force))
    return 0


def _run_batch(args: argparse.Namespace) -> int:
    from tmsplan.batch import COLUMNS, bids_rows, read_manifest, run_batch

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


_COMMANDS = {
    "batch": _run_batch,
    "group": _run_group,
    "plan": _run_plan,
    "demo": _run_demo,
    "rois": _run_rois,
    "export": _run_export,
    "report": _run_report,
    "view": _run_view,
}


def _print_warnings(caught: list) -> None:
    """Print tmsplan's own warnings, one line each (library warnings stay quiet)."""
    seen = set()
    for item in caught:
        text = str(item.message)
        if issubclass(item.category, TmsplanWarning) and text not in seen:
            seen.add(text)
            print(f"tmsplan: warning: {text}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``tmsplan`` command line.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 1 on a planning error, 2 on a usage error.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse prints its own one-line usage error
        return int(exc.code or 0)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            code = _COMMANDS[args.command](args)
        _print_warnings(caught)
        return code
    except TmsplanError as exc:
        if args.debug:
            raise
        print(f"tmsplan: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("tmsplan: interrupted; nothing was written.", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. 'tmsplan rois | head': the reader stopped reading
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes at exit
        return 0
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback
        if args.debug:
            raise
        print(
            f"tmsplan: internal error ({type(exc).__name__}: {exc}); no plan folder was "
            "completed. Re-run with --debug and report it.",
            file=sys.stderr,
        )
        return 1
