"""Runners of ``tmsplan plan`` and ``tmsplan demo``: one patient, one plan folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from tmsplan.cli._options import DEMO_PEAKS, format_names, resolve_defaults
from tmsplan.errors import TmsplanError
from tmsplan.io import interrupts


def summary(record: dict, out: Path) -> str:
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
    resolve_defaults(args)  # idempotent; main() has normally done it
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
        "snap_to_grey_matter": not getattr(args, "no_snap", False),
        "coil": args.coil,
    }


def _activation(args: argparse.Namespace, peaks: Path | None) -> dict:
    """Keyword arguments giving plan_target its map: a NIfTI, or one built from peaks."""
    if peaks is None:
        return {"activation": args.activation}
    from tmsplan.target.activation import DEFAULT_THRESHOLD, mni_map_from_peak_table

    threshold = DEFAULT_THRESHOLD if args.peaks_threshold is None else args.peaks_threshold
    img, provenance = mni_map_from_peak_table(peaks, threshold=threshold)
    return {"activation": img, "activation_source": provenance}


def _plan_and_write(args: argparse.Namespace, **plan_args) -> int:
    """Plan with the shared options of ``plan``/``demo``, write the folder, summarise."""
    from tmsplan.pipeline.plan import plan_target, write_plan

    interrupts.checkpoint("planning")
    if args.no_cache:
        from tmsplan.head.cache import load_head

        plan_args["head"] = load_head(plan_args.get("t1"), cache=False)
    plan = plan_target(**plan_args, **_plan_kwargs(args))
    interrupts.checkpoint("writing")
    record = write_plan(
        plan,
        args.out,
        formats=format_names(args.formats),
        report=not args.no_report,
        overwrite=args.force,
    )
    print(summary(record, args.out))
    return 0


def run_plan(args: argparse.Namespace) -> int:
    from tmsplan.io.outputs import check_replaceable_folder
    from tmsplan.io.record import RECORD_FILENAME

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


def run_demo(args: argparse.Namespace) -> int:
    from tmsplan.io.bundled import atlas_dir
    from tmsplan.io.outputs import check_replaceable_folder
    from tmsplan.io.record import RECORD_FILENAME

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
