"""Time the built-in MNI -> T1 registration on a 256^3, 1 mm synthetic T1.

The synthetic T1 is the bundled 1 mm MNI head resampled under a known rigid +
scaling transform onto a 256^3 grid of 1 mm voxels (LPS voxel order, as many
scanners write). Prints the wall time of ``register_mni_to_t1`` and the error
at MNI points against the known transform. Target: <= 60 s on 2 cores.

Run: ``.venv/bin/python benchmarks/bench_registration.py [--threads 1] [--kind affine]``
"""

import argparse
import platform
import time

import nibabel as nib
import numpy as np
from scipy import ndimage
from scipy.spatial.transform import Rotation

from tmsplan.io.bundled import load_mni_head
from tmsplan.spaces import Points
from tmsplan.xfm.registration import register_mni_to_t1

MNI_POINTS = np.array(
    [
        [-42.0, 36.0, 28.0],  # left DLPFC
        [44.0, 30.0, 30.0],  # right DLPFC
        [0.0, -60.0, 40.0],  # precuneus
        [-20.0, -10.0, -20.0],  # left amygdala region
        [0.0, 50.0, -10.0],  # vmPFC
    ]
)


def known_mni_to_t1():
    rot = Rotation.from_euler("xyz", [9.0, -6.0, 11.0], degrees=True).as_matrix()
    matrix = np.eye(4)
    matrix[:3, :3] = rot @ np.diag([1.04, 0.97, 1.02])
    matrix[:3, 3] = [3.0, -15.0, 22.0]
    return matrix


def synthetic_t1(mni_to_t1, size=256):
    head = load_mni_head(1)
    affine = np.diag([-1.0, -1.0, 1.0, 1.0])  # LPS voxel order, 1 mm
    centre = mni_to_t1[:3, 3]
    affine[:3, 3] = centre + [size / 2.0, size / 2.0, -size / 2.0]
    ijk = np.indices((size, size, size), dtype=np.float32).reshape(3, -1)
    mapping = np.linalg.inv(head.affine) @ np.linalg.inv(mni_to_t1) @ affine
    vox = mapping[:3, :3].astype(np.float32) @ ijk + mapping[:3, 3:4].astype(np.float32)
    data = ndimage.map_coordinates(
        np.asarray(head.dataobj, dtype=np.float32), vox, order=1, cval=0.0
    ).reshape(size, size, size)
    img = nib.Nifti1Image(data, affine)
    img.set_sform(affine, code=1)
    img.set_qform(affine, code=1)
    return img


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--kind", choices=["affine", "nonlinear"], default="affine")
    parser.add_argument("--template-resolution", type=int, choices=[1, 2], default=2)
    args = parser.parse_args(argv)

    known = known_mni_to_t1()
    start = time.perf_counter()
    t1 = synthetic_t1(known)
    build_s = time.perf_counter() - start
    start = time.perf_counter()
    result = register_mni_to_t1(
        t1, kind=args.kind, template_resolution=args.template_resolution, threads=args.threads
    )
    total_s = time.perf_counter() - start
    mapped = result.mni_to_subject.apply_points(Points(MNI_POINTS, "MNI152NLin6Asym")).xyz
    truth = MNI_POINTS @ known[:3, :3].T + known[:3, 3]
    errors = np.linalg.norm(mapped - truth, axis=1)

    print(f"machine: {platform.machine()}, {platform.python_version()}")
    print(f"synthetic T1: {t1.shape} at 1 mm, built in {build_s:.1f} s")
    print(
        f"registration: kind={args.kind}, template {args.template_resolution} mm, "
        f"threads={args.threads}"
    )
    print(f"  wall time (incl. checks): {total_s:.1f} s (ANTs part {result.seconds:.1f} s)")
    print(f"  quality: {result.quality}")
    print(
        f"  point error vs known transform: mean {errors.mean():.3f} mm, max {errors.max():.3f} mm"
    )
    ok = total_s <= 60.0 and errors.max() < 3.0
    print("  target (<= 60 s, < 3 mm):", "met" if ok else "NOT met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
