"""A synthetic resting-state run in MNI space with a planted (anti)correlated site."""

from __future__ import annotations

import nibabel as nib
import numpy as np

SEED_ROI = "meth_vs_l"
SEARCH_ROI = "heroin_dlpfc_l"
PLANTED = np.array([-35.0, 41.0, 29.0])  # anticorrelated with the seed, inside the search ROI
DECOY = np.array([-44.0, 47.0, 20.0])  # correlated with the seed, inside the search ROI
CONFOUND_COLUMNS = ("global_signal", "csf", "white_matter", "trans_x", "framewise_displacement")


def mni_affine(voxel_mm: float) -> np.ndarray:
    """RAS affine of an MNI152 grid (origin as FSL's 2 mm template, any voxel size)."""
    affine = np.diag([voxel_mm, voxel_mm, voxel_mm, 1.0])
    affine[:3, 3] = (-90.0, -126.0, -72.0)
    return affine


def _band(rng, n, tr, low=0.015, high=0.08, k=12):
    t = np.arange(n) * tr
    freqs = rng.uniform(low, high, k)
    phases = rng.uniform(0, 2 * np.pi, k)
    x = np.sin(2 * np.pi * freqs[:, None] * t[None] + phases[:, None]).sum(0)
    return (x - x.mean()) / x.std()


def synthetic_rest(
    *,
    voxel_mm: float = 3.0,
    n_volumes: int = 150,
    tr: float = 2.0,
    global_amplitude: float = 0.0,
    seed: int = 0,
    box=((-66.0, 12.0), (-6.0, 75.0), (-30.0, 54.0)),
) -> tuple[nib.Nifti1Image, np.ndarray]:
    """A 4-D run and its confounds.

    Voxels inside ``box`` (world mm) carry white noise; the ``SEED_ROI`` sphere a
    shared band-limited signal s(t); a 6-mm sphere at ``PLANTED`` carries -s(t)
    and one at ``DECOY`` +s(t). ``global_amplitude`` adds a global signal g(t)
    with a loading that grows with -x, which makes left-lateral voxels look
    least correlated with the seed unless g is regressed out; g is the first
    confound column (plus small noise, as the mean over the brain would be).

    Returns
    -------
    img : nibabel.Nifti1Image
        float32, MNI grid, TR in the header.
    confounds : (n_volumes, 5) float
        Columns :data:`CONFOUND_COLUMNS`.
    """
    rng = np.random.default_rng(seed)
    affine = mni_affine(voxel_mm)
    shape = tuple(int(round(s / voxel_mm)) + 1 for s in (180.0, 216.0, 180.0))
    ijk = np.indices(shape).reshape(3, -1).T
    world = ijk * voxel_mm + affine[:3, 3]
    inside = np.ones(len(world), bool)
    for axis, (a, b) in enumerate(box):
        inside &= (world[:, axis] >= a) & (world[:, axis] <= b)
    s = _band(rng, n_volumes, tr)
    g = _band(rng, n_volumes, tr, low=0.02, high=0.09)
    data = np.zeros((len(world), n_volumes), np.float32)
    sel = np.flatnonzero(inside)
    data[sel] = 100.0 + rng.normal(0, 1.0, (len(sel), n_volumes))
    from tmsplan.target.atlas import get_roi

    centre = get_roi(SEED_ROI).centre_mni
    for point, weight, radius in ((centre, 0.8, 6.0), (PLANTED, -0.6, 6.0), (DECOY, 0.5, 6.0)):
        near = sel[np.linalg.norm(world[sel] - point, axis=1) <= radius]
        data[near] += weight * s
    if global_amplitude:
        loading = np.clip((12.0 - world[sel, 0]) / 78.0, 0.0, 1.0)  # 0 at x=12, 1 at x=-66
        data[sel] += global_amplitude * (0.2 + loading)[:, None] * g
    img = nib.Nifti1Image(data.reshape(*shape, n_volumes), affine)
    img.header.set_xyzt_units("mm", "sec")
    img.header.set_zooms((voxel_mm, voxel_mm, voxel_mm, tr))
    img.set_sform(affine, code=4)
    img.set_qform(affine, code=4)
    confounds = np.column_stack(
        [
            g + rng.normal(0, 0.01, n_volumes),
            rng.normal(0, 1, n_volumes),
            rng.normal(0, 1, n_volumes),
            rng.normal(0, 0.05, n_volumes),
            np.abs(rng.normal(0, 0.1, n_volumes)),
        ]
    )
    return img, confounds


def write_confounds(path, confounds, *, columns=CONFOUND_COLUMNS) -> None:
    """Write an fMRIPrep-style TSV (n/a in the first row of framewise_displacement)."""
    lines = ["\t".join(columns)]
    for i, row in enumerate(confounds):
        cells = [repr(float(v)) for v in row]
        if i == 0 and "framewise_displacement" in columns:
            cells[list(columns).index("framewise_displacement")] = "n/a"
        lines.append("\t".join(cells))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
