"""The ``tmsplan`` argument parser: one subparser per command, usage errors in one line."""

from __future__ import annotations

import argparse
from pathlib import Path

from tmsplan import __version__
from tmsplan.cli._options import DEMO_ROI, add_no_cache, add_plan_options


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

    def format_help(self) -> str:  # noqa: D102 - argparse API
        if callable(self.epilog):  # built only for --help: it imports tmsplan.head.cache
            self.epilog = self.epilog()
        return super().format_help()


def _cache_epilog() -> str:
    from tmsplan.head.cache import cache_folder

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
        epilog=_cache_epilog,
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
    add_plan_options(p_plan)

    p_demo = sub.add_parser("demo", help="run the whole pipeline on the embedded defaults")
    p_demo.add_argument(
        "--roi", default=DEMO_ROI, help=f"craving ROI id for the demo (default {DEMO_ROI})"
    )
    add_plan_options(p_demo)

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
    add_no_cache(p_batch)
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
    rows.add_argument(
        "--no-snap", action="store_true", default=None, help="keep carried targets as carried"
    )
    rows.add_argument("--formats", help="comma-separated export formats, 'all' or 'none'")
