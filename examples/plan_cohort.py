"""Plan a small cohort from a manifest, then read the cohort table.

Runs on the embedded MNI152 head (empty ``t1`` cells), so it needs no data:
three protocol coordinates and one target from the cocaine cue-reactivity peaks.
With real participants, fill the ``t1`` and ``mni_to_t1`` columns (paths relative
to the manifest) or point ``tmsplan batch`` at an fMRIPrep derivatives folder.

    python examples/plan_cohort.py [OUT]

The same from the command line:

    tmsplan batch OUT/manifest.tsv --out OUT/cohort --no-report
    tmsplan batch OUT/manifest.tsv --out OUT/cohort --scheduler tcp://HOST:8786
"""

from __future__ import annotations

import csv
import sys
import tempfile
from pathlib import Path

from tmsplan.cohort.batch import read_manifest, run_batch
from tmsplan.io.bundled import atlas_dir

PEAKS = atlas_dir() / "peaks" / "zhang2018_cocaine_cue_table1.tsv"


def main(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / "manifest.tsv"
    manifest.write_text(
        "subject\ttarget_mni\tpeaks\troi\ttarget_name\tcoil_skin_distance\n"
        "sub-01\t-38 44 26\t\t\tdlpfc_l\t\n"
        "sub-02\t-36 40 30\t\t\tdlpfc_l\t6\n"
        "sub-03\t-40 46 22\t\t\tdlpfc_l\t\n"
        f"sub-04\t\t{PEAKS}\tcocaine_mfg_l\t\t\n"
    )
    rows = read_manifest(manifest, report=False)
    result = run_batch(rows, out / "cohort", jobs=1, report=False)
    print(
        f"{result.count('ok')} planned, {result.count('skipped')} unchanged, "
        f"{result.count('failed')} failed; table: {result.table}"
    )
    with open(result.table, newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            print(
                f"  {row['subject']:7s} {row['target']:14s} {row['status']:8s} MNI "
                f"({row['cortical_mni_x']}, {row['cortical_mni_y']}, {row['cortical_mni_z']}) "
                f"depth {row['depth_mm']} mm, {row['distance_from_mean_mm']} mm from the group "
                f"mean{' OUTLIER' if row['outlier'] == 'yes' else ''}"
            )
    # running it again plans nothing: every row is unchanged
    again = run_batch(read_manifest(manifest, report=False), out / "cohort", jobs=1, report=False)
    print(f"second run: {again.count('skipped')} rows skipped")
    return 0 if result.count("failed") == 0 else 1


if __name__ == "__main__":
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="cohort-"))
    sys.exit(main(folder))
