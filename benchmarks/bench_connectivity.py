"""Time the connectivity strategy on a 200-volume 2 mm MNI run with confounds.

Run:  python benchmarks/bench_connectivity.py [--keep DIR]

A synthetic run is written first (2 mm MNI152 grid, 91 x 109 x 91, 200 volumes, TR 2 s,
float32 .nii.gz, noise in the brain mask, an anticorrelated site planted in the left DLPFC)
with an fMRIPrep-style confounds TSV. Then a fresh Python process measures, on those files:
the connectivity strategy alone (``connectivity_target``) and the whole
``tmsplan plan --strategy connectivity --no-report`` command in-process, and prints the wall
times and its peak resident memory (``resource.getrusage``). Target: <= 15 s, <= 2 GB.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

N_VOLUMES = 200
TR = 2.0
PLANTED = np.array([-36.0, 42.0, 28.0])
COLUMNS = ("global_signal", "csf", "white_matter", "trans_x", "trans_y", "trans_z")


def make_run(folder: Path) -> None:
    """Write bold.nii.gz and confounds.tsv into ``folder``."""
    from tmsplan.io.bundled import load_mni_brain_mask
    from tmsplan.target.atlas import get_roi

    rng = np.random.default_rng(0)
    brain = load_mni_brain_mask(2)
    inside = np.asarray(brain.dataobj) > 0
    idx = np.argwhere(inside)
    world = idx @ brain.affine[:3, :3].T + brain.affine[:3, 3]
    t = np.arange(N_VOLUMES) * TR
    s = sum(np.sin(2 * np.pi * f * t + p) for f, p in rng.uniform((0.02, 0), (0.08, 6), (8, 2)))
    g = sum(np.sin(2 * np.pi * f * t + p) for f, p in rng.uniform((0.02, 0), (0.08, 6), (8, 2)))
    data = np.zeros((*inside.shape, N_VOLUMES), np.float32)
    values = 100.0 + rng.standard_normal((len(idx), N_VOLUMES), dtype=np.float32)
    values += 0.3 * g.astype(np.float32)
    seed = get_roi("meth_vs_l").centre_mni
    for point, weight in ((seed, 0.8), (PLANTED, -0.6)):
        near = np.linalg.norm(world - point, axis=1) <= 6.0
        values[near] += weight * s.astype(np.float32)
    data[tuple(idx.T)] = values
    img = nib.Nifti1Image(data, brain.affine)
    img.header.set_xyzt_units("mm", "sec")
    img.header.set_zooms((2.0, 2.0, 2.0, TR))
    img.set_sform(brain.affine, code=4)
    nib.save(img, folder / "bold.nii.gz")
    conf = np.column_stack([g, *rng.standard_normal((len(COLUMNS) - 1, N_VOLUMES))])
    lines = ["\t".join(COLUMNS)] + ["\t".join(repr(float(v)) for v in row) for row in conf]
    (folder / "confounds.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def measure(folder: Path) -> None:
    """Time the strategy and the command on the files in ``folder``; print the figures."""
    from tmsplan.cli import main as cli_main
    from tmsplan.target.connectivity import connectivity_target

    bold, confounds = folder / "bold.nii.gz", folder / "confounds.tsv"
    start = time.perf_counter()
    chosen = connectivity_target(
        bold, seed_roi="meth_vs_l", roi="heroin_dlpfc_l", confounds=confounds
    )
    strategy_s = time.perf_counter() - start
    out = folder / "plan"
    start = time.perf_counter()
    code = cli_main(
        [
            "plan", "--rest", str(bold), "--confounds", str(confounds), "--seed-roi",
            "meth_vs_l", "--roi", "heroin_dlpfc_l", "--strategy", "connectivity",
            "--no-report", "--force", "--out", str(out),
        ]
    )  # fmt: skip
    command_s = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kB on Linux
    error = float(np.linalg.norm(chosen.target.xyz[0] - PLANTED))
    print(f"connectivity_target:           {strategy_s:6.2f} s  (r = {chosen.r:+.3f}, "
          f"{error:.1f} mm from the planted site)")  # fmt: skip
    print(f"tmsplan plan --strategy connectivity --no-report: {command_s:6.2f} s (exit {code})")
    print(f"peak resident memory:          {peak_mb:6.0f} MB")
    print(f"within target (<= 15 s, <= 2048 MB): {command_s <= 15 and peak_mb <= 2048}")


def main() -> int:
    """Build the run, then measure it in a fresh process."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="write the run here and keep it")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.measure)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        make_run(folder)
        size = (folder / "bold.nii.gz").stat().st_size / 1e6
        print(f"synthetic run written in {time.perf_counter() - start:.1f} s ({size:.0f} MB)")
        return subprocess.call([sys.executable, __file__, "--measure", str(folder)])


if __name__ == "__main__":
    raise SystemExit(main())
