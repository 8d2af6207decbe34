"""Time of the transform fit check (tmsplan.xfm.check) on a 256^3 T1.

Run:  .venv/bin/python benchmarks/bench_transform_check.py

Builds a 256^3 T1 of 0.9 mm voxels in memory (the bundled 1 mm MNI head moved
by a known affine, like a patient's research T1), then times, best of 3:

- ``check``: :func:`tmsplan.xfm.check.check_transform_fit` of the right
  transform (coarse grid, intensity and overlap figures, verdict);
- ``wrong``: the same for a transform rotated by 40 degrees (refused);
- ``ambiguous``: :func:`tmsplan.xfm.check.choose_matrix_kind` of a FLIRT
  matrix saved as ``.txt`` (both readings evaluated).

Target: <= 2 s for ``check`` on 2 cores.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from tmsplan.errors import RegistrationError
from tmsplan.io import bundled
from tmsplan.io.images import check_img
from tmsplan.xfm.check import check_transform_fit, choose_matrix_kind
from tmsplan.xfm.transforms import MniToSubject


def _rotation_x(deg: float, centre: np.ndarray) -> np.ndarray:
    a = np.deg2rad(deg)
    rot = np.eye(4)
    rot[1:3, 1:3] = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]
    to_centre, back = np.eye(4), np.eye(4)
    to_centre[:3, 3], back[:3, 3] = -centre, centre
    return back @ rot @ to_centre


def patient_256(mni_to_t1: np.ndarray) -> nib.Nifti1Image:
    """The 1 mm MNI head seen through ``mni_to_t1`` on a 256^3 grid of 0.9 mm voxels."""
    source = bundled.load_mni_head(1)
    size, zoom = 256, 0.9
    affine = np.diag([zoom, zoom, zoom, 1.0])
    affine[:3, 3] = mni_to_t1[:3, 3] - zoom * (size - 1) / 2 + [0.0, -18.0, 18.0]
    mapping = np.linalg.inv(source.affine) @ np.linalg.inv(mni_to_t1) @ affine
    data = ndimage.affine_transform(
        np.asarray(source.dataobj, dtype=np.float32),
        mapping[:3, :3],
        offset=mapping[:3, 3],
        output_shape=(size,) * 3,
        order=1,
    )
    img = nib.Nifti1Image(data, affine)
    img.set_sform(affine, code=1)
    img.set_qform(affine, code=1)
    return img


def best_of(func, repeats: int = 3) -> float:
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> int:
    """Print the check times (seconds) on a 256^3 T1."""
    from nitransforms.io import fsl

    known = np.eye(4)
    known[:3, :3] = np.diag([1.04, 0.97, 1.02])
    known[:3, 3] = [3.0, -8.0, 12.0]
    t1 = check_img(patient_256(known), name="t1")
    right = MniToSubject.from_matrix(known)
    wrong = MniToSubject.from_matrix(_rotation_x(40.0, known[:3, 3]) @ known)

    def refuse():
        try:
            check_transform_fit(wrong, t1)
        except RegistrationError:
            return
        raise AssertionError("the 40-degree transform was accepted")

    moving = bundled.load_mni_head(1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "flirt.txt"
        # FLIRT's matrix for -in MNI -ref T1 (nitransforms writes FSL's convention)
        flirt = fsl.FSLLinearTransform.from_ras(np.linalg.inv(known), reference=t1, moving=moving)
        flirt.to_filename(path)
        check_transform_fit(right, t1)  # warm the template caches
        seconds = {
            "check": best_of(lambda: check_transform_fit(right, t1)),
            "wrong": best_of(refuse),
            "ambiguous": best_of(lambda: choose_matrix_kind(path, t1, moving)),
        }
        chosen = choose_matrix_kind(path, t1, moving)[1]["kind"]
    print(f"256^3 T1 of 0.9 mm {t1.shape}; target: check <= 2 s (best of 3, wall time)")
    for key, value in seconds.items():
        print(f"  {key:9s} {value:5.2f} s")
    print(f"  ambiguous FLIRT .txt read as: {chosen}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
