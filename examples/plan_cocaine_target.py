"""Plan a cocaine-craving TMS target with the Python API, end to end.

Copy this script and change the inputs. It uses only what ships with tmsplan:

1. a group cue-reactivity map rebuilt from a published peak table (the seed review's
   Table 1: cocaine cue > neutral, Zhang et al. 2018 as credited in the text);
2. two craving ROIs from tmsplan's atlas: the left middle frontal gyrus (a cortical,
   reachable target) and the hypothalamus (deep: must come out as NOT reachable);
3. the embedded whole-head MNI152NLin6Asym T1.

Run:  python examples/plan_cocaine_target.py [OUT_FOLDER]
"""

from __future__ import annotations

import sys
from pathlib import Path

import tmsplan
from tmsplan.io.bundled import atlas_dir


def main(out: Path) -> None:
    peaks = atlas_dir() / "peaks" / "zhang2018_cocaine_cue_table1.tsv"
    group_map, provenance = tmsplan.mni_map_from_peak_table(peaks, threshold=3.1)

    for roi_id in ("cocaine_mfg_l", "cocaine_hypothalamus"):
        roi = tmsplan.get_roi(roi_id)
        print(f"ROI {roi.id}: {roi.region} ({roi.hemisphere}), source: {roi.citation}")
        plan = tmsplan.plan_target(
            group_map, roi=roi_id, threshold=3.1, activation_source=provenance
        )
        target = plan.record["targets"][0]
        print(
            f"  cortical target (MNI152NLin6Asym mm): {target['cortical_mm']}\n"
            f"  scalp entry: {target['scalp_mm']}, depth {target['depth_mm']:.1f} mm\n"
            f"  reachable: {target['reachable']} {target['unreachable_reason'] or ''}"
        )
        if target["reachable"]:
            record = tmsplan.write_plan(plan, out / roi_id, overwrite=True)
            print(f"  written: {sorted(record['outputs'])} in {out / roi_id}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("example_out"))
