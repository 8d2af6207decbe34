"""The ``tmsplan`` command: a thin layer over the public API.

Every subcommand is ``main(argv) -> int``-testable in-process. Errors raised on
purpose (:class:`tmsplan.errors.TmsplanError`) become one line on stderr, with the
Python parameter names of library messages turned into flags, and exit code 1;
usage errors are one line plus a hint and exit 2; anything unexpected is reported
in one line too (``--debug`` shows the traceback). Ctrl-C at any moment exits 130
with one line (see :mod:`tmsplan.interrupts`).
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import signal
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from tmsplan import __version__, interrupts
from tmsplan.errors import FormatError, TmsplanError, TmsplanWarning

__all__ = ["main", "build_parser"]

DEMO_PEAKS = "peaks/zhang2018_cocaine_cue_table1.tsv"
DEMO_ROI = "cocaine_mfg_l"


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line plus a hint, not the whole usage block."""

    def error(self, message: str, prog: str | None = None):  # noqa: D102 - argparse API
        self.exit(2, f"tmsplan: error: {message} (see '{prog or self.prog} --help')\n")

    def parse_args(self, args=None, namespace=None):  # noqa: D102 - argparse API
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:  # the hint names the subcommand whose options were wrong
            command = getattr(parsed, "command", None)
            prog = f"{self.prog} {command}" if command else None
            self.error(f"unrecognized arguments: {' '.join(extras)}", prog)
        return parsed


class _Default:
    """A default read from a tmsplan module only when used.

    Parsing arguments then imports nothing heavy, so the checks before work
    (``--out``, ``--formats``) answer at once; :func:`_resolve_defaults` turns
    these into values after the checks.
    """

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name

    @property
    def value(self) -> float:
        return getattr(importlib.import_module(self.module), self.name)

    def __str__(self) -> str:  # shown by --help as %(default)s
        return f"{self.value:g}"


def _resolve_defaults(args: argparse.Namespace) -> None:
    for key, value in vars(args).items():
        if isinstance(value, _Default):
            setattr(args, key, value.value)


def _add_plan_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path, help="output folder (must not exist)")
    parser.add_argument("--force", action="store_true", help="replace an existing output folder")
    parser.add_argument(
        "--threshold",
        type=float,
        default=_Default("tmsplan.activation", "DEFAULT_THRESHOLD"),
        help="cluster-forming threshold on the map (default %(default)s)",
    )
    parser.add_argument(
        "--peaks-threshold",
        type=float,
        metavar="Z",
        help=(
            "with --peaks (and demo): the study's z threshold that the table's cluster "
            "volumes refer to, used only to rebuild the map (default: the default of "
            "--threshold, whatever --threshold is set to)"
        ),
    )
    parser.add_argument(
        "--sign",
        choices=("positive", "negative", "absolute"),
        default=None,
        help=(
            "which side of the threshold counts (default positive); with --strategy "
            "connectivity: negative = most anticorrelated site (default), positive = most "
            "correlated"
        ),
    )
    parser.add_argument(
        "--rule",
        choices=("peak", "cog"),
        default=None,
        help="same as --strategy peak|cog (kept for older command lines)",
    )
    parser.add_argument(
        "--coil-skin-distance",
        type=float,
        default=_Default("tmsplan.projection", "DEFAULT_COIL_SKIN_DISTANCE_MM"),
        metavar="MM",
        help="coil centre to skin, mm (default %(default)s)",
    )
    parser.add_argument(
        "--handle-angle",
        type=float,
        default=_Default("tmsplan.projection", "DEFAULT_HANDLE_ANGLE_DEG"),
        metavar="DEG",
        help="handle angle from the midsagittal plane (default %(default)s)",
    )
    parser.add_argument(
        "--max-depth",
        type=float,
        default=None,
        metavar="MM",
        help=(
            "deepest reachable target below the scalp, mm (default: the coil's reach; "
            "30 mm for the default 70 mm figure-8)"
        ),
    )
    parser.add_argument(
        "--coil",
        default=None,
        metavar="ID",
        help="coil from tmsplan's catalogue (see 'tmsplan coils'; default fig8_70)",
    )
    parser.add_argument(
        "--formats",
        default="all",
        help="comma-separated export formats, or 'all' (default) or 'none'",
    )
    parser.add_argument("--no-report", action="store_true", help="skip pictures and report.html")
    parser.add_argument(
        "--strategy",
        choices=("peak", "cog", "depth-aware", "connectivity"),
        default=None,
        help=(
            "how the target is chosen: peak (default) or cog of the largest cluster in the "
            "ROI; depth-aware (best value for depth within the coil's reach); connectivity "
            "(site of --roi most anticorrelated with --seed-roi in --rest)"
        ),
    )
    parser.add_argument(
        "--rest", type=Path, metavar="BOLD", help="connectivity: 4-D resting-state run (MNI)"
    )
    parser.add_argument(
        "--confounds", type=Path, metavar="TSV", help="connectivity: fMRIPrep confounds TSV"
    )
    parser.add_argument(
        "--rest-mask", type=Path, metavar="MASK", help="connectivity: brain mask of the run"
    )
    parser.add_argument(
        "--min-cluster-mm3",
        type=float,
        default=0.0,
        metavar="MM3",
        help="cluster-extent threshold: drop supra-threshold clusters smaller than this",
    )
    parser.add_argument(
        "--height-control",
        choices=("fpr", "fdr", "bonferroni"),
        default=None,
        help="replace --threshold by a voxel-level threshold computed with nilearn",
    )
    parser.add_argument(
        "--alpha",
        type=float,
        default=None,
        help="alpha of --height-control (default 0.001 for fpr, 0.05 for fdr/bonferroni)",
    )
    parser.add_argument(
        "--candidates",
        type=int,
        default=3,
        metavar="N",
        help="list up to N ranked alternative targets after the chosen one (default 3)",
    )
    parser.add_argument(
        "--export-candidates",
        action="store_true",
        help="also write the alternative targets into the navigator files and tables",
    )
    seed = parser.add_mutually_exclusive_group()
    seed.add_argument("--seed-roi", metavar="ID", help="connectivity: deep seed ROI id")
    seed.add_argument("--seed-mask", type=Path, metavar="MASK", help="connectivity: seed mask")
    parser.add_argument("--subject", help="subject label stored in the record")
    parser.add_argument(
        "--motor-threshold",
        type=float,
        metavar="PCT",
        help="motor threshold (%%MSO): adds the depth-adjusted intensity to the plan",
    )
    parser.add_argument(
        "--landmarks",
        type=Path,
        metavar="TSV",
        help="nasion, inion, lpa, rpa (TSV name x y z, head's world mm) for the 10-20 positions",
    )
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
    parser = _Parser(
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
        "--accept-transform",
        action="store_true",
        help="use a --mni-to-t1 that fits the T1 poorly anyway (loud warning in the record)",
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

    p_rois = sub.add_parser("rois", help="list the craving ROIs of tmsplan's atlas")
    p_rois.add_argument(
        "--drug", help="only this drug (cocaine, heroin, methamphetamine, reference)"
    )
    p_rois.add_argument(
        "--reachable-with", metavar="COIL", help="only ROIs whose centre this coil reaches"
    )
    p_rois.add_argument(
        "--reach", action="store_true", help="show depth and the coils that reach each ROI"
    )
    sub.add_parser("coils", help="list the TMS coils tmsplan knows, with their reach")

    p_export = sub.add_parser("export", help="re-export a saved plan (target.json)")
    p_export.add_argument("record", type=Path, help="target.json of a plan (or its folder)")
    p_export.add_argument("--format", required=True, help="format name (see --help of plan)")
    p_export.add_argument("--space", default="RAS", choices=("RAS", "LPS"), help="vendor frame")
    p_export.add_argument("--out", required=True, type=Path, help="output file or folder")
    p_export.add_argument("--force", action="store_true", help="replace existing files")

    p_validate = sub.add_parser(
        "validate", help="re-check a saved plan (target.json): types, geometry, T1 checksum"
    )
    p_validate.add_argument("record", type=Path, help="target.json of a plan (or its folder)")

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
    _add_clinic_parsers(sub)
    _add_batch_parser(sub)
    return parser


def _add_clinic_parsers(sub) -> None:
    """Subcommands for clinics without neuronavigation: eeg1020, beam-f3, dose."""
    p_eeg = sub.add_parser("eeg1020", help="10-20/10-10 positions on a head (TSV + JSON)")
    p_eeg.add_argument("--t1", type=Path, help="patient T1 (default: embedded MNI152 head)")
    xfm = p_eeg.add_mutually_exclusive_group()
    xfm.add_argument("--mni-to-t1", type=Path, metavar="XFM", help="MNI->T1 transform")
    xfm.add_argument(
        "--register",
        nargs="?",
        const="affine",
        choices=("affine", "nonlinear"),
        help="register the embedded MNI head to --t1 (default affine)",
    )
    p_eeg.add_argument(
        "--landmarks", type=Path, metavar="TSV", help="nasion, inion, lpa, rpa (TSV name x y z)"
    )
    p_eeg.add_argument("--system", choices=("10-20", "10-10"), default="10-10")
    p_eeg.add_argument("--out", required=True, type=Path, help="positions TSV (+ .json sidecar)")
    p_eeg.add_argument("--force", action="store_true", help="replace existing files")

    p_beam = sub.add_parser("beam-f3", help="Beam F3 tape distances from three head measures")
    p_beam.add_argument("--nasion-inion", type=float, required=True, metavar="CM")
    p_beam.add_argument("--tragus-tragus", type=float, required=True, metavar="CM")
    p_beam.add_argument("--circumference", type=float, required=True, metavar="CM")
    p_beam.add_argument("--json", action="store_true", help="print one JSON object")

    p_dose = sub.add_parser("dose", help="depth-adjusted intensity from the motor threshold")
    p_dose.add_argument("--motor-threshold", type=float, required=True, metavar="PCT")
    p_dose.add_argument("--target-depth", type=float, required=True, metavar="MM")
    p_dose.add_argument("--motor-depth", type=float, required=True, metavar="MM")
    p_dose.add_argument("--method", choices=("stokes", "sphere"), default="stokes")
    p_dose.add_argument(
        "--k",
        choices=("2.8", "3"),
        default="2.8",
        help="stokes slope, %%MSO/mm: 2.8 (Stokes 2007, default) or 3 (Stokes 2005)",
    )
    p_dose.add_argument(
        "--head-radius",
        type=float,
        default=85.0,
        metavar="MM",
        help="sphere method: local head radius at both sites (default 85)",
    )
    p_dose.add_argument("--json", action="store_true", help="print one JSON object")


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
        role = " [alternative]" if target.get("role") == "candidate" else ""
        lines.append(
            f"  {target['name']}{role}: cortical ({cortical}) -> scalp ({scalp}), "
            f"depth {target['depth_mm']:.1f} mm, {status}"
        )
    eeg, dose = record.get("eeg1020"), record.get("dose")
    if eeg:
        lines.append(f"  10-20: scalp entry {eeg['target']['text']}")
    if dose:
        flag = "" if dose["achievable"] else " (NOT achievable: above 100 %MSO)"
        lines.append(
            f"  intensity: {dose['adjusted_percent_mso']:.1f} %MSO{flag} (Stokes; sphere model "
            f"{dose['methods']['sphere']['adjusted_percent_mso']:.1f} %MSO); see the report"
        )
    return "\n".join(lines)  # the record's warnings are shown once, on stderr, by main()


def _plan_kwargs(args: argparse.Namespace) -> dict:
    _resolve_defaults(args)  # idempotent; main() has normally done it
    if args.rule and args.strategy and args.rule != args.strategy:
        raise TmsplanError(
            f"--rule {args.rule} and --strategy {args.strategy} disagree; --rule is the old "
            "name of --strategy peak|cog, give only --strategy."
        )
    strategy = args.strategy or args.rule or "peak"
    return {
        "threshold": args.threshold,
        "sign": args.sign or "positive",
        "rule": args.rule or "peak",
        "strategy": strategy,
        "rest": args.rest,
        "confounds": args.confounds,
        "rest_mask": args.rest_mask,
        "seed_roi": args.seed_roi,
        "seed_mask": args.seed_mask,
        "connectivity_sign": args.sign or "negative",
        "candidates": args.candidates,
        "min_cluster_mm3": args.min_cluster_mm3,
        "height_control": args.height_control,
        "alpha": args.alpha,
        "export_candidates": args.export_candidates,
        "coil_skin_distance_mm": args.coil_skin_distance,
        "handle_angle_deg": args.handle_angle,
        "max_depth_mm": args.max_depth,
        "motor_threshold": args.motor_threshold,
        "landmarks": args.landmarks,
        "coil": args.coil,
    }


def _activation(args: argparse.Namespace, peaks: Path | None) -> dict:
    """Keyword arguments giving plan_target its map: a NIfTI, or one built from peaks."""
    if peaks is None:
        return {"activation": args.activation}
    from tmsplan.activation import DEFAULT_THRESHOLD, mni_map_from_peak_table

    threshold = DEFAULT_THRESHOLD if args.peaks_threshold is None else args.peaks_threshold
    img, provenance = mni_map_from_peak_table(peaks, threshold=threshold)
    return {"activation": img, "activation_source": provenance}


def _plan_and_write(args: argparse.Namespace, **plan_args) -> int:
    """Plan with the shared options of ``plan``/``demo``, write the folder, summarise."""
    from tmsplan.plan import plan_target, write_plan

    interrupts.checkpoint("planning")
    if args.no_cache:
        from tmsplan.headcache import load_head

        plan_args["head"] = load_head(plan_args.get("t1"), cache=False)
    plan = plan_target(**plan_args, **_plan_kwargs(args))
    interrupts.checkpoint("writing")
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
    from tmsplan.record import RECORD_FILENAME

    sources = [args.activation, args.peaks, args.target_mni, args.target_t1]
    if args.strategy == "connectivity":
        pass  # the run chooses the target; plan_target checks the inputs
    elif sum(x is not None for x in sources) != 1:
        raise TmsplanError(
            "give exactly one of --activation MAP, --peaks TABLE, --target-mni X Y Z or "
            "--target-t1 X Y Z."
        )
    if (args.activation or args.peaks) and not (args.roi or args.roi_mask):
        raise TmsplanError(
            "an activation map needs an ROI: --roi ID (see 'tmsplan rois') or --roi-mask."
        )
    if args.peaks_threshold is not None and args.peaks is None:
        raise TmsplanError("--peaks-threshold applies only to a map rebuilt from --peaks.")
    if args.peaks is not None and args.activation_space != "MNI":
        raise TmsplanError(
            "--activation-space T1w does not apply to --peaks: a map rebuilt from a peak "
            "table is in MNI space."
        )
    check_replaceable_folder(args.out, overwrite=args.force, marker=RECORD_FILENAME)
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
        accept_poor_fit=args.accept_transform,
        activation_space=args.activation_space,
        target_mni=args.target_mni,
        target_t1=args.target_t1,
        subject=args.subject,
        target_name=args.target_name,
    )


def _run_demo(args: argparse.Namespace) -> int:
    from tmsplan.bundled import atlas_dir
    from tmsplan.outputs import check_replaceable_folder
    from tmsplan.record import RECORD_FILENAME

    check_replaceable_folder(args.out, overwrite=args.force, marker=RECORD_FILENAME)
    print(
        "demo: cocaine cue-reactivity map rebuilt from the seed review's Table 1 peaks, "
        f"ROI {args.roi}, embedded MNI152NLin6Asym head",  # stdout: stderr is for problems
    )
    return _plan_and_write(
        args,
        **_activation(args, atlas_dir() / DEMO_PEAKS),
        roi=args.roi,
        subject="MNI152NLin6Asym-demo",
    )


def _run_rois(args: argparse.Namespace) -> int:
    from tmsplan.atlas import format_reachability_table, format_roi_table, load_rois, reachability

    rois = list(load_rois())
    if args.drug:
        drugs = sorted({r.drug for r in rois})
        rois = [r for r in rois if r.drug == args.drug.strip().lower()]
        if not rois:
            raise TmsplanError(
                f"no ROI for --drug {args.drug!r}; the atlas has {', '.join(drugs)}."
            )
    if args.reachable_with:
        from tmsplan.coils import get_coil

        coil = get_coil(args.reachable_with)
        reach = {row["id"]: row for row in reachability(rois)}
        rois = [r for r in rois if coil.id in reach[r.id]["reachable_with"]]
        if not rois:
            print(f"no ROI centre is within the {coil.reach_mm:g} mm reach of the {coil.name}.")
            return 0
    if args.reach or args.reachable_with:
        print(format_reachability_table(rois))
    else:
        print(format_roi_table(rois))
    return 0


def _run_coils(args: argparse.Namespace) -> int:
    from tmsplan.coils import format_coil_table, load_coils

    print(format_coil_table(load_coils()))
    return 0


def _validated_record(path: Path) -> dict:
    """Read a target.json and re-check it; T1 checksum problems become warnings."""
    from tmsplan.record import RECORD_FILENAME, read_record
    from tmsplan.record_checks import validate_record

    record = read_record(path)
    source = str(path / RECORD_FILENAME if path.is_dir() else path)
    for text in validate_record(record, source=source, check_t1=True):
        warnings.warn(text, TmsplanWarning, stacklevel=2)
    return record


def _run_validate(args: argparse.Namespace) -> int:
    record = _validated_record(args.record)
    targets = record["targets"]
    reachable = sum(1 for t in targets if t["reachable"])
    print(
        f"{args.record}: OK, a consistent plan record (schema {record['schema_version']}, "
        f"frame {record['space']}, {len(targets)} target(s), {reachable} reachable)"
    )
    return 0


def _run_export(args: argparse.Namespace) -> int:
    from tmsplan.export import export_record

    record = _validated_record(args.record)
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


def _run_eeg1020(args: argparse.Namespace) -> int:
    from tmsplan.eeg1020 import head_positions, write_positions
    from tmsplan.head import scalp_surface
    from tmsplan.images import check_img
    from tmsplan.outputs import check_writable
    from tmsplan.spaces import MNI_FRAME, SUBJECT_FRAME

    check_writable(args.out, overwrite=args.force)
    check_writable(args.out.with_suffix(".json"), overwrite=args.force)
    if args.t1 is None and (args.mni_to_t1 or args.register):
        raise TmsplanError("--mni-to-t1/--register need the patient's T1 (--t1).")
    xfm = None
    if args.t1 is None:
        from tmsplan.bundled import mni_head_path

        head, frame = mni_head_path(1), MNI_FRAME
    else:
        head, frame = args.t1, SUBJECT_FRAME
    t1_img = check_img(head, name="--t1")
    if args.mni_to_t1 is not None:
        from tmsplan.bundled import mni_head_path
        from tmsplan.transforms import load_mni_to_subject

        xfm = load_mni_to_subject(args.mni_to_t1, reference=t1_img, moving=mni_head_path(1))
    elif args.register:
        from tmsplan.registration import register_mni_to_t1

        xfm = register_mni_to_t1(t1_img, kind=args.register).mni_to_subject
    scalp = scalp_surface(t1_img, frame=frame, name="--t1")
    positions = head_positions(
        scalp, mni_to_subject=xfm, landmarks=args.landmarks, system=args.system
    )
    tsv, sidecar = write_positions(positions, args.out, overwrite=args.force)
    tape = positions.tape_mm
    print(
        f"{len(positions.names)} {positions.system} positions ({positions.frame}, RAS+ mm) "
        f"written to {tsv} and {sidecar}; landmarks {positions.landmarks.source}"
    )
    print(
        f"  on the scalp: nasion-inion {tape['nasion_inion'] / 10:.1f} cm, tragus-tragus "
        f"{tape['tragus_tragus'] / 10:.1f} cm, circumference {tape['circumference'] / 10:.1f} cm"
    )
    for note in positions.notes:
        print(f"  warning: {note}")
    return 0


def _run_beam_f3(args: argparse.Namespace) -> int:
    import json

    from tmsplan.beamf3 import beam_f3

    result = beam_f3(args.nasion_inion, args.tragus_tragus, args.circumference)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"Beam F3 (left DLPFC): X = {result['x_cm']:.1f} cm, Y = {result['y_cm']:.1f} cm")
    print(
        f"  X: from the midline (Fpz) along the circumference to the LEFT; Y: from the vertex "
        f"(Cz) toward that point. {result['how']}"
    )
    print(f"  source: {result['source']}")
    return 0


def _run_dose(args: argparse.Namespace) -> int:
    import json

    from tmsplan.dose import dose

    result = dose(
        args.motor_threshold,
        args.target_depth,
        args.motor_depth,
        method=args.method,
        variant="stokes2007" if args.k == "2.8" else "stokes2005",
        target_radius_mm=args.head_radius,
        motor_radius_mm=args.head_radius,
    )
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    status = "" if result["achievable"] else "  NOT ACHIEVABLE (above 100 %MSO)"
    print(f"adjusted intensity: {result['adjusted_percent_mso']:.1f} %MSO{status}")
    print(f"  {result['method']}: {result['formula']}")
    print(f"  source: {result['source']}")
    for caveat in result["caveats"]:
        print(f"  caveat: {caveat}")
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
    "eeg1020": _run_eeg1020,
    "beam-f3": _run_beam_f3,
    "dose": _run_dose,
    "batch": _run_batch,
    "group": _run_group,
    "plan": _run_plan,
    "demo": _run_demo,
    "rois": _run_rois,
    "coils": _run_coils,
    "export": _run_export,
    "validate": _run_validate,
    "report": _run_report,
    "view": _run_view,
}


def _print_warnings(caught: list) -> None:
    """Print tmsplan's own warnings once each, one line each (library warnings stay quiet)."""
    seen = set()
    for item in caught:
        text = _flag_message(str(item.message))
        if issubclass(item.category, TmsplanWarning) and text not in seen:
            seen.add(text)
            print(f"tmsplan: warning: {text}", file=sys.stderr)


_FLAGS = {
    # Python parameter of the library -> its command-line flag, for error lines
    "coil_skin_distance_mm": "--coil-skin-distance",
    "handle_angle_deg": "--handle-angle",
    "max_depth_mm": "--max-depth",
    "target_mni": "--target-mni",
    "target_t1": "--target-t1",
    "roi_mask": "--roi-mask",
    "mni_to_t1": "--mni-to-t1",
    "xfm_kind": "--xfm-kind",
    "xfm_moving": "--xfm-moving",
    "activation_space": "--activation-space",
    "target_name": "--target-name",
    "t1": "--t1",
    "peaks_threshold": "--peaks-threshold",
}
# plain words that are parameters only as "word=value", "word:" or "word must" at the start
_WORD_FLAGS = {
    "activation": "--activation",
    "threshold": "--threshold",
    "sign": "--sign",
    "rule": "--rule",
    "register": "--register",
    "formats": "--formats",
    "overwrite": "--force",
}
_PARAMETER = re.compile(
    r"(?<![\w.\-'/])(?P<name>[a-z][a-z0-9_]*)"  # a word, not inside a path or name
    r"(?:=(?P<quote>'?)(?P<value>[\w\-]+(?:\.[\w\-]+)*)(?P=quote))?"  # =value, ='value'
    r"(?![\w\-/']|\.\w)"
)


def _flag_message(text: str) -> str:
    """A library message with its Python parameter names turned into command-line flags.

    ``max_depth_mm must be ...`` -> ``--max-depth must be ...``;
    ``activation_space='T1w'`` -> ``--activation-space T1w``; ``register=True`` ->
    ``--register``. Plain words (``threshold``) count as parameters only with a value
    (``threshold=3``) or as the message's subject (``threshold must ...``, ``activation: ...``).
    """

    def flag(match: re.Match) -> str:
        name, value = match["name"], match["value"]
        subject = match.start() == 0 and re.match(r"(:| must\b)", text[match.end() :])
        option = _FLAGS.get(name) or (
            _WORD_FLAGS.get(name) if (value is not None or subject) else None
        )
        if option is None:
            return match.group(0)
        if value is None or value == "True":
            return option
        return f"{option} {value}"

    return _PARAMETER.sub(flag, text)


def _check_formats(text: str) -> None:
    names = _formats(text)
    if not names:
        return
    from tmsplan.export import FORMATS

    unknown = [name for name in names if name not in FORMATS]
    if unknown:
        raise FormatError(
            f"--formats: unknown format {', '.join(map(repr, unknown))}; valid formats are "
            f"{', '.join(FORMATS)}, or 'all' or 'none'."
        )


def _check_before_work(args: argparse.Namespace) -> None:
    """Cheap checks of where and what to write, before anything is planned or imported."""
    from tmsplan.outputs import check_output_location

    if isinstance(getattr(args, "out", None), Path):  # plan folders are staged beside --out
        check_output_location(args.out, staged=args.command in ("plan", "demo"))
    if isinstance(getattr(args, "formats", None), str):
        _check_formats(args.formats)


def _interrupted_line() -> str:
    done = interrupts.written()
    if not done:
        return "tmsplan: interrupted; nothing was written."
    names = ", ".join(f"'{path}'" for path in done[:3]) + (" …" if len(done) > 3 else "")
    return f"tmsplan: interrupted; only {names} had been written in full, nothing else."


def _interrupted() -> int:
    """Say in one line that the run was interrupted, and what (if anything) it wrote."""
    import threading

    if threading.current_thread() is threading.main_thread():  # a second Ctrl-C: ignored
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    print(_interrupted_line(), file=sys.stderr)
    return 130


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``tmsplan`` command line.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 1 on a planning error, 2 on a usage error, 130 when
        interrupted (Ctrl-C).
    """
    interrupts.install()
    debug = False
    try:
        interrupts.checkpoint("start")
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help, --version, or a one-line usage error
            return exc.code if isinstance(exc.code, int) else 2 if exc.code else 0
        debug = args.debug
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _check_before_work(args)
            interrupts.checkpoint("checked")
            _resolve_defaults(args)
            code = _COMMANDS[args.command](args)
            interrupts.checkpoint("done")  # an interrupt some library swallowed ends here
        _print_warnings(caught)
        return code
    except KeyboardInterrupt:
        return _interrupted()
    except TmsplanError as exc:
        if interrupts.received():  # an interrupt a library swallowed broke its result
            return _interrupted()
        if debug:
            raise
        print(f"tmsplan: error: {_flag_message(str(exc))}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # e.g. 'tmsplan rois | head': the reader stopped reading
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes at exit
        return 0
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback
        if interrupts.received():
            return _interrupted()
        if debug:
            raise
        print(
            f"tmsplan: internal error ({type(exc).__name__}: {exc}); no plan folder was "
            "completed. Re-run with --debug and report it.",
            file=sys.stderr,
        )
        return 1
    finally:
        interrupts.uninstall()
