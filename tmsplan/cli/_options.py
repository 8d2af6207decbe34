"""Options shared by ``plan``, ``demo`` and ``batch``; defaults read only when used.

Building the parser imports nothing heavy, so ``--out`` and ``--formats`` are checked at once.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

DEMO_PEAKS = "peaks/zhang2018_cocaine_cue_table1.tsv"
DEMO_ROI = "cocaine_mfg_l"


class _Default:
    """A default read from a tmsplan module only when used.

    Parsing arguments then imports nothing heavy, so the checks before work
    (``--out``, ``--formats``) answer at once; :func:`resolve_defaults` turns
    these into values after the checks.
    """

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name

    @property
    def value(self) -> float:
        return getattr(importlib.import_module(self.module), self.name)

    def __str__(self) -> str:  # shown by --help as %(default)s
        return f"{self.value:g}"


def resolve_defaults(args: argparse.Namespace) -> None:
    for key, value in vars(args).items():
        if isinstance(value, _Default):
            setattr(args, key, value.value)


def add_plan_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path, help="output folder (must not exist)")
    parser.add_argument("--force", action="store_true", help="replace an existing output folder")
    parser.add_argument(
        "--threshold",
        type=float,
        default=_Default("tmsplan.target.activation", "DEFAULT_THRESHOLD"),
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
        default=_Default("tmsplan.coil.placement", "DEFAULT_COIL_SKIN_DISTANCE_MM"),
        metavar="MM",
        help="coil centre to skin, mm (default %(default)s)",
    )
    parser.add_argument(
        "--handle-angle",
        type=float,
        default=_Default("tmsplan.coil.placement", "DEFAULT_HANDLE_ANGLE_DEG"),
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
    parser.add_argument(
        "--no-snap",
        action="store_true",
        help="keep a target carried into the T1 where the transform puts it, even in white "
        "matter or CSF (default: moved to the nearest grey matter toward the scalp)",
    )
    add_no_cache(parser)


def add_no_cache(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="recompute the scalp surface; neither read nor write the head cache",
    )


def format_names(text: str) -> list[str] | None:
    text = text.strip().lower()
    if text == "all":
        return None
    if text == "none":
        return []
    return [part.strip() for part in text.split(",") if part.strip()]
