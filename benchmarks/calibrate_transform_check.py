"""Reproduce the calibration table of tmsplan.xfm.check on real heads.

Run:  .venv/bin/python benchmarks/calibrate_transform_check.py [--cache DIR]

For each T1 in ``../shared/real-heads`` (skipped when absent) the bundled MNI
head is registered with tmsplan's own ``register_mni_to_t1`` (affine; about
15 s per head, cached in ``--cache``), and that matrix is spoiled on purpose:
rotated 10-50 degrees about the head centre, shifted 5-20 mm, scaled by 0.85
and 1.15, replaced by the other head's registration (as is and re-centred on
this head), and written as a FLIRT matrix but read as a plain RAS matrix.
Prints, per transform, how far it moves the left DLPFC / hand-knob /
frontal-pole targets (``err``) and the figures of
:func:`tmsplan.xfm.check.transform_fit`, and whether
:func:`tmsplan.xfm.check.fit_problems` refuses it.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from tmsplan.io.bundled import load_mni_head
from tmsplan.io.images import check_img
from tmsplan.xfm.check import fit_problems, transform_fit
from tmsplan.xfm.registration import register_mni_to_t1
from tmsplan.xfm.transforms import MniToSubject, load_mni_to_subject

HEADS = Path(__file__).resolve().parents[2] / "shared" / "real-heads"
TARGETS = np.array([[-38.0, 44.0, 26.0], [-37.0, -21.0, 58.0], [-24.0, 64.0, 0.0]])
CENTRE_MNI = np.array([0.0, -18.0, 18.0])


def rotation(axis: int, deg: float, centre: np.ndarray) -> np.ndarray:
    """4x4 rotation by ``deg`` about world axis ``axis`` through ``centre``."""
    a = np.deg2rad(deg)
    i, j = [k for k in range(3) if k != axis]
    rot = np.eye(4)
    rot[[i, i, j, j], [i, j, i, j]] = [np.cos(a), -np.sin(a), np.sin(a), np.cos(a)]
    return shift(centre) @ rot @ shift(-centre)


def shift(vector) -> np.ndarray:
    """4x4 translation."""
    out = np.eye(4)
    out[:3, 3] = vector
    return out


def apply(matrix: np.ndarray, xyz: np.ndarray) -> np.ndarray:
    return xyz @ matrix[:3, :3].T + matrix[:3, 3]


def spoiled(good: np.ndarray, other: np.ndarray) -> dict[str, np.ndarray]:
    """Named MNI -> T1 matrices: the good one and deliberately wrong ones."""
    centre = apply(good, CENTRE_MNI)
    out = {"aligned (own register)": good}
    for deg in (10, 20, 30, 40, 50):
        for axis, name in enumerate("xyz"):
            out[f"rotated {deg} deg about {name}"] = rotation(axis, deg, centre) @ good
    for mm in (5, 10, 15, 20):
        for axis, name in enumerate("xyz"):
            out[f"shifted {mm} mm along {name}"] = shift(np.eye(3)[axis] * mm) @ good
    for factor in (0.85, 1.15):
        scale = np.diag([factor, factor, factor, 1.0])
        out[f"scaled by {factor}"] = shift(centre) @ scale @ shift(-centre) @ good
    out["other head's register"] = other
    out["other head, recentred"] = shift(centre - apply(other, CENTRE_MNI)) @ other
    return out


def registered(t1: Path, cache: Path) -> np.ndarray:
    """MNI -> T1 matrix of tmsplan's affine registration (cached)."""
    folder = cache / t1.name.split(".")[0]
    path = folder / "from-MNI152NLin6Asym_to-T1w_mode-image_xfm.mat"
    if not path.is_file():
        register_mni_to_t1(t1).save(folder)
    return load_mni_to_subject(path, check_fit=False).matrix


def flirt_read_as_ras(good: np.ndarray, img, folder: Path) -> np.ndarray:
    """The FLIRT matrix of ``good`` read as if it were a plain RAS matrix."""
    from nitransforms.io import fsl

    path = folder / "flirt.txt"
    xfm = fsl.FSLLinearTransform.from_ras(
        np.linalg.inv(good), reference=img, moving=load_mni_head(1)
    )
    xfm.to_filename(path)
    return np.loadtxt(path)


def main(argv: list[str] | None = None) -> int:
    """Print the calibration figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=None, help="folder for registrations")
    args = parser.parse_args(argv)
    heads = sorted(HEADS.glob("*.nii.gz"))
    if len(heads) < 2:
        print(f"needs two real heads in {HEADS}; found {len(heads)}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache or Path(tmp)
        goods = {h: registered(h, cache) for h in heads}
        print(
            f"{'head':8s} {'transform':28s} {'err':>5s} {'NMI':>5s} {'corr':>5s} "
            f"{'brain':>5s} {'Dice':>5s}  verdict"
        )
        for index, head in enumerate(heads):
            img = check_img(head, name="t1")
            other = goods[heads[(index + 1) % len(heads)]]
            cases = spoiled(goods[head], other)
            try:
                cases["FLIRT read as plain RAS"] = flirt_read_as_ras(goods[head], img, Path(tmp))
            except Exception as exc:  # noqa: BLE001 - a mirrored reading is refused on load
                print(f"{head.name[:8]:8s} FLIRT read as plain RAS: refused on load ({exc})")
            for name, matrix in cases.items():
                err = np.linalg.norm(apply(matrix, TARGETS) - apply(goods[head], TARGETS), axis=1)
                try:
                    xfm = MniToSubject.from_matrix(matrix)
                except Exception as exc:  # noqa: BLE001
                    print(f"{head.name[:8]:8s} {name:28s} refused on load: {exc}")
                    continue
                s = transform_fit(xfm, img)
                verdict = "refused" if fit_problems(s) else "accepted"
                print(
                    f"{head.name[:8]:8s} {name:28s} {err.max():5.1f} {s['nmi']:5.3f} "
                    f"{s['correlation']:5.2f} {s['brain_contrast']:5.2f} {s['head_dice']:5.2f}"
                    f"  {verdict}"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
