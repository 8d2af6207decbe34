"""Time the pictures and the HTML report of one plan and print the figures.

Run:  python benchmarks/bench_render.py [--repeat N]

Cases: a synthetic sphere head (scalp r = 90 mm, brain r = 75 mm, 3 mm phantom T1 with an
activation blob and a spherical ROI) and, when the planning modules are available, a real
plan on the embedded MNI152 head (scalp from tmsplan.head.scalp.scalp_surface, brain mask
isosurface, demo map from a peak table). Targets: <= 5 s per plan for all pictures + HTML,
report <= 3 MB.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")

import nibabel as nib  # noqa: E402

from tmsplan.render import make_report  # noqa: E402
from tmsplan.render.report import MAX_REPORT_BYTES  # noqa: E402

TARGET_SECONDS = 5.0


def _synthetic_case(folder: Path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from conftest import _phantom_images, _sphere_mesh, _synthetic_record

    record = _synthetic_record()
    t1, activation, roi = _phantom_images(record)
    nib.save(t1, folder / "t1.nii.gz")
    from tmsplan.io.images import file_sha256

    record["t1"] = {"path": str(folder / "t1.nii.gz"), "sha256": file_sha256(folder / "t1.nii.gz")}
    layers = {
        "brain_mesh": _sphere_mesh(75.0, 4),
        "activation_img": activation,
        "roi_img": roi,
        "landmarks": {"Cz": [0.0, 0.0, 90.0]},
    }
    return record, _sphere_mesh(90.0, 5), layers


def _mni_case():
    from tmsplan.io.bundled import atlas_dir
    from tmsplan.pipeline.plan import plan_target
    from tmsplan.target.activation import mni_map_from_peak_table

    peaks = atlas_dir() / "peaks" / "zhang2018_cocaine_cue_table1.tsv"
    activation, _ = mni_map_from_peak_table(peaks)
    plan = plan_target(activation, roi="cocaine_mfg_l")
    layers = {"t1_img": plan.t1_img, **plan.layers}
    return plan.record, plan.scalp.mesh, layers


def _run(label: str, case, repeat: int) -> None:
    record, scalp, layers = case
    times = []
    size = 0
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            out = make_report(record, Path(tmp) / "plan", scalp, **layers)
            times.append(time.perf_counter() - start)
            size = out.stat().st_size
            pictures = sorted(p.name for p in (out.parent / "pictures").iterdir())
    median = statistics.median(times)
    print(
        f"{label:<28} faces {len(scalp.faces):>7}  pictures+html {median:6.2f} s "
        f"(min {min(times):.2f}, n={repeat}; target <= {TARGET_SECONDS:g} s "
        f"{'OK' if median <= TARGET_SECONDS else 'SLOW'})  report {size / 1e6:.2f} MB "
        f"(<= {MAX_REPORT_BYTES / 1e6:g} MB {'OK' if size <= MAX_REPORT_BYTES else 'TOO BIG'})"
    )
    print(f"{'':<28} {', '.join(pictures)}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        _run("synthetic sphere head", _synthetic_case(Path(tmp)), args.repeat)
    start = time.perf_counter()
    mni = _mni_case()
    if mni is not None:
        print(f"{'(MNI plan computed in':<28} {time.perf_counter() - start:.2f} s, not counted)")
        _run("embedded MNI152 head", mni, args.repeat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
