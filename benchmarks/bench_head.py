"""Stage timings of the scalp surface (tmsplan.head.scalp) on the bundled MNI head.

Run:  .venv/bin/python benchmarks/bench_head.py [--png DIR]

Prints load / mask / marching cubes / smoothing / decimation / total seconds and
face counts for the bundled 1 mm MNI152NLin6Asym head (182x218x182) and for the
same head resampled in memory to a 256^3 grid of 0.9 mm voxels (the size of a
typical research T1). Target: <= 3 s total for the 256^3 image on 2 cores.
With --png DIR it also writes offscreen renders of the surfaces (needs pyvista).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

from tmsplan.head import scalp as head
from tmsplan.io import bundled
from tmsplan.io.images import resample_to_img

STAGES = ("load", "mask", "marching_cubes", "smoothing", "decimation")


def head_256() -> nib.Nifti1Image:
    """The 1 mm MNI head resampled (linear) to 256^3 voxels of 0.9 mm, same centre."""
    source = bundled.load_mni_head(1)
    size, zoom = 256, 0.9
    centre = source.affine[:3, :3] @ ((np.array(source.shape) - 1) / 2) + source.affine[:3, 3]
    affine = np.diag([zoom, zoom, zoom, 1.0])
    affine[:3, 3] = centre - zoom * (size - 1) / 2
    target = nib.Nifti1Image(np.zeros((size,) * 3, dtype=np.uint8), affine)
    return resample_to_img(source, target, interpolation="linear")


def run(label: str, img: nib.Nifti1Image | Path, repeats: int = 3) -> head.ScalpSurface:
    best: dict[str, float] | None = None
    surface = None
    for _ in range(repeats):
        timings: dict[str, float] = {}
        start = time.perf_counter()
        surface = head._scalp_surface(
            img,
            frame="MNI152NLin6Asym",
            name="--t1",
            target_faces=60000,
            working_mm=2.0,
            smooth_iterations=10,
            timings=timings,
        )
        timings["total"] = time.perf_counter() - start
        if best is None or timings["total"] < best["total"]:
            best = timings
    assert best is not None and surface is not None
    cells = "  ".join(f"{stage} {best.get(stage, 0.0):5.2f}" for stage in STAGES)
    print(
        f"{label:<26} {cells}  total {best['total']:5.2f} s  "
        f"faces {len(surface.mesh.faces)}  vertices {len(surface.mesh.vertices)}  "
        f"fov-flagged {int(surface.fov_boundary.sum())}  watertight {surface.mesh.is_watertight}"
    )
    return surface


def render(surface: head.ScalpSurface, path: Path) -> None:
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    import pyvista as pv

    mesh = surface.mesh
    faces = np.hstack([np.full((len(mesh.faces), 1), 3), mesh.faces]).ravel()
    poly = pv.PolyData(np.asarray(mesh.vertices), faces)
    plotter = pv.Plotter(off_screen=True, shape=(1, 3), window_size=(1200, 400))
    for column, view in enumerate(("yz", "xz", "xy")):
        plotter.subplot(0, column)
        plotter.add_mesh(
            poly,
            scalars=surface.fov_boundary.astype(float),
            cmap="coolwarm",
            show_scalar_bar=False,
        )
        getattr(plotter, f"view_{view}")(negative=view != "yz")
    plotter.screenshot(str(path))
    plotter.close()
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--png", type=Path, help="folder for offscreen renders")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    mni1 = bundled.load_mni_head(1)
    mni1 = nib.Nifti1Image(np.asarray(mni1.dataobj), mni1.affine, mni1.header)
    print(f"read bundled 1 mm head: {time.perf_counter() - start:.2f} s")
    start = time.perf_counter()
    big = head_256()
    print(f"resampled to 256^3 x 0.9 mm: {time.perf_counter() - start:.2f} s (not timed below)")
    print("seconds per stage (best of 3); 'load' = reading and checking the image")
    surfaces = {
        "mni_2mm": run("MNI 91x109x91 2 mm", bundled.load_mni_head(2)),
        "mni_1mm": run("MNI 182x218x182 1 mm", mni1),
        "mni_256": run("MNI 256^3 0.9 mm (memory)", big),
    }
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "t1_256.nii.gz"
        stored = nib.Nifti1Image(np.rint(big.get_fdata()).astype(np.int16), big.affine)
        nib.save(stored, path)
        surfaces["file_256"] = run("MNI 256^3 0.9 mm (.nii.gz)", path)
    if args.png:
        args.png.mkdir(parents=True, exist_ok=True)
        for label, surface in surfaces.items():
            render(surface, args.png / f"scalp_{label}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
