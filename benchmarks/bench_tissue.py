"""Time the tissue segmentation (tmsplan.head.tissue) on a real 0.9 mm head.

Run:  .venv/bin/python benchmarks/bench_tissue.py [--t1 PATH] [--mask PATH] [--repeats 3]

The T1 is ``../shared/real-heads/chris_t1.nii.gz`` (188x256x190, 0.88 mm) by
default. Its brain mask is the bundled MNI brain mask carried in by tmsplan's
own registration (affine, ~10 s, done once and not timed; ``--mask`` reuses a
mask saved on the T1 grid). The segmentation is timed on the T1 as stored and
on the same T1 zero-padded to 256^3 voxels, best and median of ``--repeats``
runs, wall and CPU seconds (the machine is shared: CPU time is the figure an
idle machine would show). Target: <= 10 s on 2 cores.

Also prints the class volumes and where the hand-knob target MNI (-37, -21, 58)
and a white-matter point under it, MNI (-30, -20, 40), land before and after
:func:`tmsplan.head.tissue.snap_to_cortex` (with the time a snap takes).
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import nibabel as nib
import numpy as np

from tmsplan.head.tissue import snap_to_cortex, tissue_at, tissue_segmentation
from tmsplan.io.bundled import load_mni_brain_mask
from tmsplan.io.images import check_img
from tmsplan.spaces import MNI_FRAME, Points
from tmsplan.xfm.registration import register_mni_to_t1

DEFAULT_T1 = Path(__file__).resolve().parents[2] / "shared" / "real-heads" / "chris_t1.nii.gz"
HAND_KNOB_MNI = (-37.0, -21.0, 58.0)
DEEP_WM_MNI = (-30.0, -20.0, 40.0)


def pad_to(img: nib.Nifti1Image, size: int = 256) -> nib.Nifti1Image:
    """Zero-pad ``img`` to ``size`` voxels per axis, keeping the anatomy in place."""
    shape = np.array(img.shape[:3])
    before = np.maximum((size - shape) // 2, 0)
    after = np.maximum(size - shape - before, 0)
    data = np.pad(np.asarray(img.dataobj), list(zip(before, after, strict=True)))
    affine = img.affine.copy()
    affine[:3, 3] -= affine[:3, :3] @ before
    out = nib.Nifti1Image(data, affine)
    out.set_sform(affine, code=1)
    out.set_qform(affine, code=1)
    return out


def timed(t1, mask, repeats: int):
    walls, cpus, result = [], [], None
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        result = tissue_segmentation(t1, mask)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return result, walls, cpus


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--t1", type=Path, default=DEFAULT_T1)
    parser.add_argument("--mask", type=Path, default=None, help="brain mask on the T1 grid")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if not args.t1.is_file():
        print(f"no T1 at {args.t1}; give one with --t1")
        return 1

    t1 = check_img(args.t1, name="t1")
    mni_to_t1 = None
    if args.mask is None:
        start = time.perf_counter()
        mni_to_t1 = register_mni_to_t1(t1).mni_to_subject
        mask = mni_to_t1.resample_to_subject(load_mni_brain_mask(1), t1, interpolation="nearest")
        print(f"brain mask carried by registration in {time.perf_counter() - start:.1f} s")
    else:
        mask = check_img(args.mask, name="--mask")

    print(f"machine: {platform.machine()}, Python {platform.python_version()}")
    zooms = np.linalg.norm(t1.affine[:3, :3], axis=0)
    ok = True
    for label, image, brain in (
        ("as stored", t1, mask),
        ("padded to 256^3", pad_to(t1), pad_to(mask)),
    ):
        tissue, walls, cpus = timed(image, brain, args.repeats)
        print(
            f"{label}: {image.shape} at {zooms.round(2).tolist()} mm: wall best "
            f"{min(walls):.2f} s, median {np.median(walls):.2f} s; CPU best {min(cpus):.2f} s"
        )
        ok &= min(cpus) <= 10.0
    print(f"  quality: {tissue.quality}")
    print(f"  fit grid: {tissue.method['fit_grid_mm']} mm, {tissue.method['mixture_fitted_on']}")
    if mni_to_t1 is not None:
        knob = mni_to_t1.apply_points(Points(np.array([HAND_KNOB_MNI]), MNI_FRAME)).xyz[0]
        labels = np.asarray(tissue.labels.dataobj)
        centre = nib.affines.apply_affine(tissue.labels.affine, np.argwhere(labels > 0).mean(0))
        start = time.perf_counter()
        snap = snap_to_cortex(tissue, knob, 2 * knob - centre)
        snap_ms = 1000 * (time.perf_counter() - start)
        print(
            f"  hand knob MNI {HAND_KNOB_MNI} -> T1 {knob.round(1).tolist()}: "
            f"{tissue_at(tissue, knob)}; snapped {snap.distance_mm:.1f} mm to "
            f"{snap.xyz.round(1).tolist()} ({tissue_at(tissue, snap.xyz)}): {snap.how}"
        )
        deep = mni_to_t1.apply_points(Points(np.array([DEEP_WM_MNI]), MNI_FRAME)).xyz[0]
        start = time.perf_counter()
        snap = snap_to_cortex(tissue, deep, 2 * deep - centre)
        deep_ms = 1000 * (time.perf_counter() - start)
        print(
            f"  white matter MNI {DEEP_WM_MNI}: {tissue_at(tissue, deep)}; snapped "
            f"{snap.distance_mm:.1f} mm outward to {tissue_at(tissue, snap.xyz)} "
            f"(snap {snap_ms:.0f} ms / {deep_ms:.0f} ms)"
        )
    print("  target (<= 10 s CPU):", "met" if ok else "NOT met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
