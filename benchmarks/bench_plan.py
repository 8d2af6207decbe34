"""Time `tmsplan plan` stage by stage on the embedded MNI152 head and print the figures.

Run:  python benchmarks/bench_plan.py [--repeat N]
Stages: load + check the head, build the demo map from the peak table, ROI mask, target
selection, scalp surface, coil placement, exports, pictures + report, whole command.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from tmsplan.cli import main as cli_main
from tmsplan.coil.placement import place_coil
from tmsplan.head.scalp import scalp_surface
from tmsplan.io.bundled import atlas_dir, mni_head_path
from tmsplan.io.images import check_img
from tmsplan.pipeline.plan import plan_target, write_plan
from tmsplan.spaces import MNI_FRAME
from tmsplan.target.activation import mni_map_from_peak_table, select_target
from tmsplan.target.atlas import get_roi, roi_mask_img


def _time(label, func, results):
    start = time.perf_counter()
    value = func()
    results.setdefault(label, []).append(time.perf_counter() - start)
    return value


def run_once(results: dict) -> None:
    peaks = atlas_dir() / "peaks" / "zhang2018_cocaine_cue_table1.tsv"
    head = _time("load+check head (1 mm)", lambda: check_img(mni_head_path(1)), results)
    act, prov = _time("map from peak table", lambda: mni_map_from_peak_table(peaks), results)
    roi = get_roi("cocaine_mfg_l")
    mask = _time("ROI mask", lambda: roi_mask_img(roi, act), results)
    chosen = _time("target selection", lambda: select_target(act, mask, frame=MNI_FRAME), results)
    scalp = _time("scalp surface (1 mm)", lambda: scalp_surface(head, frame=MNI_FRAME), results)
    _time(
        "coil placement",
        lambda: place_coil(
            chosen.target,
            scalp.mesh,
            frame=MNI_FRAME,
            fov_boundary=scalp.fov_boundary,
            hemisphere_sign=-1.0,
        ),
        results,
    )
    plan = plan_target(act, roi="cocaine_mfg_l", activation_source=prov)
    with tempfile.TemporaryDirectory() as tmp:
        _time(
            "write exports (all formats)",
            lambda: write_plan(plan, Path(tmp) / "exports", report=False),
            results,
        )
        _time(
            "write exports + pictures + report",
            lambda: write_plan(plan, Path(tmp) / "full"),
            results,
        )
        _time(
            "whole command: tmsplan demo",
            lambda: cli_main(["demo", "--out", str(Path(tmp) / "demo")]),
            results,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[float]] = {}
    for _ in range(args.repeat):
        run_once(results)
    print(f"tmsplan plan stages on the embedded MNI152 head ({args.repeat} runs, seconds)")
    print(f"{'stage':40s} {'median':>8s} {'min':>8s} {'max':>8s}")
    for label, values in results.items():
        print(f"{label:40s} {statistics.median(values):8.3f} {min(values):8.3f} {max(values):8.3f}")


if __name__ == "__main__":
    main()
