"""Connectivity-guided targeting: the reachable site most coupled to a deep seed.

Design notes: ``docs/targets.md``, section ``tmsplan.target.connectivity``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import nibabel as nib
import numpy as np
from scipy import ndimage

from tmsplan.errors import ConnectivityError
from tmsplan.io.images import (
    ImageLike,
    _load,
    check_img,
    file_sha256,
    image_source,
    same_grid,
    voxel_to_world,
)
from tmsplan.spaces import MNI_FRAME, Points
from tmsplan.target.activation import CLUSTER_CONNECTIVITY

__all__ = [
    "DEFAULT_CONFOUNDS",
    "DEFAULT_FWHM_MM",
    "DEFAULT_HIGH_PASS_HZ",
    "DEFAULT_LOW_PASS_HZ",
    "MIN_VOLUMES",
    "TOP_FRACTION",
    "ConnectivityTarget",
    "read_confounds",
    "connectivity_target",
]

DEFAULT_CONFOUNDS = (
    "global_signal",
    "csf",
    "white_matter",
    "trans_x",
    "trans_y",
    "trans_z",
    "rot_x",
    "rot_y",
    "rot_z",
)
"""fMRIPrep confound columns regressed by default (those present in the file are used):
global signal, CSF and white-matter means and the six rigid motion parameters.
Global signal regression is what the depression connectivity-targeting
literature used to define the anticorrelated DLPFC site; it is stated in the record."""

DEFAULT_FWHM_MM = 6.0
DEFAULT_HIGH_PASS_HZ = 0.01
DEFAULT_LOW_PASS_HZ = 0.1
MIN_VOLUMES = 50
"""Fewer volumes than this give correlations too noisy to target with."""
TOP_FRACTION = 0.1
"""Fraction of the search-ROI voxels (best scores) that form the clusters."""

Sign = Literal["negative", "positive"]


@dataclass(frozen=True)
class ConnectivityTarget:
    """The site chosen by the connectivity strategy.

    Attributes
    ----------
    target : Points
        ``(1, 3)`` mm, chosen voxel centre, in the run's world frame.
    r, z : float
        Pearson correlation with the seed signal at the target, and its Fisher z.
    peak : Points
        ``(1, 3)`` mm, the best-scoring voxel of the chosen cluster.
    peak_r : float
    cluster_size_voxels : int
    cluster_volume_mm3 : float
    candidates : tuple of dict
        Other clusters, best first: ``target_mm, r, z, cluster_size_voxels,
        score, why``.
    info : dict
        JSON-ready description for the record (inputs, checksums, cleaning).
    notes : tuple of str
        Caveats for the record's warnings.
    """

    target: Points
    r: float
    z: float
    peak: Points
    peak_r: float
    cluster_size_voxels: int
    cluster_volume_mm3: float
    candidates: tuple[dict, ...] = ()
    info: dict = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def _rest_image(rest: ImageLike) -> tuple[Any, float]:
    """The run (not loaded into memory) and its repetition time in seconds."""
    img = _load(rest, "--rest")
    shape = tuple(int(s) for s in img.shape)
    if len(shape) != 4 or shape[3] == 1:
        raise ConnectivityError(
            f"--rest must be a 4-D resting-state run (x, y, z, time); got a {len(shape)}-D image "
            f"of shape {shape}. Give the preprocessed BOLD series, not a single volume or map."
        )
    if shape[3] < MIN_VOLUMES:
        raise ConnectivityError(
            f"--rest has {shape[3]} volumes; the connectivity strategy needs at least "
            f"{MIN_VOLUMES} (about 5 minutes of data are usual). Give a longer run."
        )
    zooms = img.header.get_zooms()
    tr = float(zooms[3]) if len(zooms) > 3 else 0.0
    units = img.header.get_xyzt_units()[1] if hasattr(img.header, "get_xyzt_units") else "sec"
    if units == "msec":
        tr /= 1000.0
    elif units == "usec":
        tr /= 1e6
    if not math.isfinite(tr) or tr <= 0:
        raise ConnectivityError(
            f"--rest has no usable repetition time in its header (pixdim[4] = {tr}); set it, "
            "e.g. with nibabel: img.header.set_zooms((*zooms[:3], TR))."
        )
    affine = np.asarray(img.affine, dtype=np.float64)
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise ConnectivityError("--rest has an unusable affine (singular or not finite).")
    return img, tr


def read_confounds(
    path: str | Path, n_volumes: int, columns: tuple[str, ...] | None = None
) -> tuple[np.ndarray, list[str], list[str]]:
    """Read an fMRIPrep confounds TSV and select columns.

    Parameters
    ----------
    path : str or Path
        Tab-separated file with a header line (fMRIPrep ``*_desc-confounds_timeseries.tsv``).
    n_volumes : int
        Number of volumes of the run; the file must have one row per volume.
    columns : tuple of str, optional
        Columns to use (all must exist). Default: those of
        :data:`DEFAULT_CONFOUNDS` that are present.

    Returns
    -------
    values : (n_volumes, k) float64
        ``n/a`` cells (fMRIPrep's first row of derivative columns) replaced by
        the column mean.
    used : list of str
    missing : list of str
        Default columns absent from the file.

    Raises
    ------
    ConnectivityError
        Unreadable file, wrong row count, missing or non-numeric columns.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConnectivityError(f"--confounds '{path}' cannot be read ({exc}).") from None
    rows = [r for r in csv.reader(io.StringIO(text), delimiter="\t") if r]
    if len(rows) < 2:
        raise ConnectivityError(f"--confounds '{path}' needs a header line and one row per volume.")
    header, body = [h.strip() for h in rows[0]], rows[1:]
    if len(body) != n_volumes:
        raise ConnectivityError(
            f"--confounds '{path}' has {len(body)} rows but --rest has {n_volumes} volumes; "
            "give the confounds file of this run (one row per volume)."
        )
    if columns is None:
        used = [c for c in DEFAULT_CONFOUNDS if c in header]
        missing = [c for c in DEFAULT_CONFOUNDS if c not in header]
        if not used:
            raise ConnectivityError(
                f"--confounds '{path}' has none of the fMRIPrep columns "
                f"{list(DEFAULT_CONFOUNDS)}; is it an fMRIPrep confounds file?"
            )
    else:
        used, missing = list(columns), []
        absent = [c for c in used if c not in header]
        if absent:
            raise ConnectivityError(f"--confounds '{path}' lacks the columns {absent}.")
    values = np.empty((n_volumes, len(used)), dtype=np.float64)
    for j, name in enumerate(used):
        k = header.index(name)
        col = []
        for line, row in enumerate(body, start=2):
            cell = row[k].strip() if k < len(row) else ""
            if cell.lower() in ("n/a", "nan", ""):
                col.append(np.nan)
                continue
            try:
                col.append(float(cell))
            except ValueError:
                raise ConnectivityError(
                    f"--confounds '{path}', line {line}, column {name!r}: {cell!r} is not a number."
                ) from None
        arr = np.asarray(col, dtype=np.float64)
        if np.isnan(arr).all():
            raise ConnectivityError(f"--confounds '{path}': column {name!r} has no values.")
        values[:, j] = np.where(np.isnan(arr), np.nanmean(arr), arr)
    return values, used, missing


def _read_box(img: Any, box: tuple[slice, slice, slice]) -> np.ndarray:
    """The run's voxels inside ``box``, all volumes, float32 ``(x, y, z, t)``.

    A gzipped NIfTI is streamed once, volume by volume (seeking in gzip is slow,
    so slicing it through nibabel re-reads the stream); other images are sliced.
    """
    proxy = img.dataobj
    source = image_source(img)
    plain = (
        source is None
        or not str(source).lower().endswith(".gz")
        or not nib.is_proxy(proxy)
        or getattr(proxy, "order", "F") != "F"
    )
    if plain:
        return np.asarray(proxy[(*box, slice(None))], dtype=np.float32)
    shape = tuple(int(v) for v in img.shape)
    dtype = np.dtype(img.get_data_dtype())
    n_bytes = int(np.prod(shape[:3])) * dtype.itemsize
    slope, inter = float(proxy.slope), float(proxy.inter)
    out = np.empty((*(b.stop - b.start for b in box), shape[3]), dtype=np.float32)
    with nib.openers.ImageOpener(source, "rb") as handle:
        handle.seek(int(proxy.offset))
        for t in range(shape[3]):
            raw = handle.read(n_bytes)
            if len(raw) != n_bytes:
                raise EOFError(f"the file ends inside volume {t + 1} of {shape[3]}")
            volume = np.frombuffer(raw, dtype=dtype).reshape(shape[:3], order="F")
            out[..., t] = volume[box]
    if slope not in (0.0, 1.0) or inter != 0.0:
        out = out * np.float32(slope if slope else 1.0) + np.float32(inter)
    return out


def _mask_on_grid(mask: ImageLike, ref: nib.Nifti1Image, name: str) -> np.ndarray:
    img = check_img(mask, name=name, require_signal=False)
    if not same_grid(img, ref):
        raise ConnectivityError(
            f"{name} is not on the voxel grid of --rest (shape {tuple(ref.shape[:3])}); "
            "resample it onto the run first (nearest neighbour), e.g. "
            "nilearn.image.resample_to_img(mask, rest, interpolation='nearest')."
        )
    return np.asarray(img.dataobj) > 0


def _roi_on_grid(roi_id: str, ref: nib.Nifti1Image) -> np.ndarray:
    from tmsplan.target.atlas import get_roi, roi_mask_img

    return np.asarray(roi_mask_img(get_roi(roi_id), ref).dataobj) > 0


def _entry(img: Any) -> dict:
    source = image_source(img) if img is not None else None
    if source is None:
        return {"path": None, "sha256": None}
    return {"path": str(Path(source).resolve()), "sha256": file_sha256(source)}


def _snap_centre(world: np.ndarray, weights: np.ndarray) -> int:
    """Index of the voxel nearest the weighted centre (ties: smallest x, y, z)."""
    centre = (world * weights[:, None]).sum(0) / weights.sum()
    distance = np.round(np.linalg.norm(world - centre, axis=1), 6)
    rounded = np.round(world, 6)
    order = np.lexsort((rounded[:, 2], rounded[:, 1], rounded[:, 0], distance))
    return int(order[0])


def connectivity_target(
    rest: ImageLike,
    *,
    seed_roi: str | None = None,
    seed_mask: ImageLike | None = None,
    roi: str | None = None,
    roi_mask: ImageLike | None = None,
    confounds: str | Path | None = None,
    confound_columns: tuple[str, ...] | None = None,
    rest_mask: ImageLike | None = None,
    sign: Sign = "negative",
    fwhm_mm: float = DEFAULT_FWHM_MM,
    high_pass_hz: float = DEFAULT_HIGH_PASS_HZ,
    low_pass_hz: float = DEFAULT_LOW_PASS_HZ,
    n_candidates: int = 3,
    frame: str = MNI_FRAME,
) -> ConnectivityTarget:
    """Choose the search-ROI site most (anti)correlated with a seed's resting signal.

    Parameters
    ----------
    rest : str, os.PathLike or nibabel image
        4-D resting-state run in the ROIs' world space (typically MNI152),
        preprocessed (motion-corrected, normalised).
    seed_roi, seed_mask
        The deep seed: an atlas ROI id, or a binary mask on the run's grid.
    roi, roi_mask
        The reachable search region: an atlas ROI id, or a mask on the run's grid.
    confounds : path, optional
        fMRIPrep confounds TSV (one row per volume).
    confound_columns : tuple of str, optional
        Columns to regress; default :data:`DEFAULT_CONFOUNDS` present in the file.
    rest_mask : image, optional
        Brain mask of the run (same grid); default: voxels whose signal varies.
    sign : {"negative", "positive"}
        Most anticorrelated (default) or most correlated site.
    fwhm_mm, high_pass_hz, low_pass_hz : float
        Smoothing and band-pass (see the module docstring).
    n_candidates : int
        How many other clusters to return as candidates.
    frame : str
        Name of the run's world frame.

    Returns
    -------
    ConnectivityTarget

    Raises
    ------
    ConnectivityError
        Bad run, confounds, masks or parameters (one line saying what to do).
    SpaceError
        An atlas ROI lies outside the run's field of view (another space).
    """
    from nilearn import __version__ as nilearn_version

    if sign not in ("negative", "positive"):
        raise ConnectivityError(
            f"--sign for connectivity must be negative or positive, got {sign!r}."
        )
    if (seed_roi is None) == (seed_mask is None):
        raise ConnectivityError(
            "the connectivity strategy needs exactly one of --seed-roi or --seed-mask."
        )
    if (roi is None) == (roi_mask is None):
        raise ConnectivityError(
            "the connectivity strategy needs exactly one of --roi or --roi-mask "
            "(the search region)."
        )
    img, tr = _rest_image(rest)
    n_vol = int(img.shape[3])
    nyquist = 0.5 / tr
    if not (0 < high_pass_hz < low_pass_hz < nyquist):
        raise ConnectivityError(
            f"band-pass {high_pass_hz:g}-{low_pass_hz:g} Hz does not fit this run "
            f"(TR {tr:g} s, Nyquist {nyquist:g} Hz); it needs 0 < high < low < Nyquist."
        )
    if not (math.isfinite(fwhm_mm) and fwhm_mm >= 0):
        raise ConnectivityError(f"smoothing FWHM must be >= 0 mm, got {fwhm_mm!r}.")
    conf = used = missing = None
    if confounds is not None:
        conf, used, missing = read_confounds(confounds, n_vol, confound_columns)

    shape = tuple(int(s) for s in img.shape[:3])
    affine = np.asarray(img.affine, dtype=np.float64)
    ref = nib.Nifti1Image(np.ones(shape, dtype=np.uint8), affine)
    seed = _roi_on_grid(seed_roi, ref) if seed_roi else _mask_on_grid(seed_mask, ref, "--seed-mask")
    search = _roi_on_grid(roi, ref) if roi else _mask_on_grid(roi_mask, ref, "--roi-mask")
    seed_label = f"seed ROI {seed_roi}" if seed_roi else "--seed-mask"
    search_label = f"search ROI {roi}" if roi else "--roi-mask"
    for mask, label in ((seed, seed_label), (search, search_label)):
        if not mask.any():
            raise ConnectivityError(f"{label} covers no voxel of --rest.")
    if (seed & search).any():
        raise ConnectivityError(
            f"{seed_label} and {search_label} overlap; choose separate regions."
        )
    brain_full = _mask_on_grid(rest_mask, ref, "--rest-mask") if rest_mask is not None else None

    # crop to the ROIs plus two smoothing widths: only those voxels matter
    zooms = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    margin = np.ceil(2.0 * fwhm_mm / zooms).astype(int) + 1
    both = np.argwhere(seed | search)
    lo = np.maximum(both.min(axis=0) - margin, 0)
    hi = np.minimum(both.max(axis=0) + margin + 1, np.array(shape))
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    try:
        data = _read_box(img, box)
    except (OSError, EOFError, ValueError) as exc:
        raise ConnectivityError(f"--rest: the voxel data cannot be read ({exc}).") from None
    if not np.all(np.isfinite(data)):
        raise ConnectivityError("--rest holds NaN or infinite values near the ROIs; fix the run.")
    data_sha = hashlib.sha256(np.ascontiguousarray(data).tobytes()).hexdigest()
    seed_c, search_c = seed[box], search[box]
    varies = data.std(axis=3) > 0
    brain = brain_full[box] & varies if brain_full is not None else varies
    seed_in = seed_c & brain
    if not seed_in.any():
        raise ConnectivityError(
            f"{seed_label} lies outside the run's mask (no voxel with signal there); check that "
            "--rest covers the deep region and is in the ROIs' space."
        )
    search_in = search_c & brain
    if not search_in.any():
        raise ConnectivityError(
            f"{search_label} lies outside the run's mask (no voxel with signal)."
        )
    notes = []
    if seed_in.sum() < 0.5 * seed_c.sum():
        notes.append(
            f"only {int(seed_in.sum())} of {int(seed_c.sum())} voxels of {seed_label} have signal "
            "in the run (signal dropout or partial coverage); the seed signal uses those."
        )

    from nilearn.image import smooth_img
    from nilearn.signal import clean

    box_affine = affine.copy()
    box_affine[:3, 3] = voxel_to_world(affine, lo[None].astype(float))[0]
    if fwhm_mm > 0:
        smoothed = smooth_img(nib.Nifti1Image(data, box_affine), fwhm_mm)
        data = np.asarray(smoothed.dataobj, dtype=np.float64)
    else:
        data = data.astype(np.float64)
    series = np.concatenate([data[seed_in].T, data[search_in].T], axis=1)  # (n_vol, n_vox)
    del data
    cleaned = clean(
        series,
        detrend=True,
        standardize=None,
        confounds=conf,
        standardize_confounds=True,
        filter="butterworth",
        low_pass=low_pass_hz,
        high_pass=high_pass_hz,
        t_r=tr,
        ensure_finite=True,
    )
    n_seed = int(seed_in.sum())
    seed_signal = cleaned[:, :n_seed].mean(axis=1)
    voxels = cleaned[:, n_seed:]
    seed_c0 = seed_signal - seed_signal.mean()
    vox_c0 = voxels - voxels.mean(axis=0)
    norms = np.linalg.norm(vox_c0, axis=0)
    if np.linalg.norm(seed_c0) == 0:
        raise ConnectivityError(
            f"the cleaned signal of {seed_label} is flat; nothing to correlate."
        )
    r = np.zeros(vox_c0.shape[1])
    ok = norms > 0
    r[ok] = (vox_c0[:, ok].T @ seed_c0) / (norms[ok] * np.linalg.norm(seed_c0))
    r = np.clip(r, -1.0, 1.0)
    score = -r if sign == "negative" else r

    idx = np.argwhere(search_in)  # box voxel indices, same order as the columns
    world = voxel_to_world(box_affine, idx)
    positive = score > 0
    if not positive.any():
        word = "anticorrelated" if sign == "negative" else "correlated"
        raise ConnectivityError(
            f"no voxel of {search_label} is {word} with {seed_label}; try --sign "
            f"{'positive' if sign == 'negative' else 'negative'} or another search ROI."
        )
    cut = np.quantile(score[positive], 1.0 - TOP_FRACTION) if positive.sum() > 10 else 0.0
    top = positive & (score >= cut)
    grid = np.zeros(search_in.shape, dtype=bool)
    grid[tuple(idx[top].T)] = True
    labels, n_clusters = ndimage.label(grid, structure=CLUSTER_CONNECTIVITY)
    lab = labels[tuple(idx.T)]
    clusters = []
    for k in range(1, n_clusters + 1):
        members = np.flatnonzero(lab == k)
        w = score[members]
        pick = members[_snap_centre(world[members], w)]
        peak = members[int(np.lexsort((*np.round(world[members], 6).T[::-1], -w))[0])]
        clusters.append(
            {
                "members": members,
                "mass": float(w.sum()),
                "target": int(pick),
                "peak": int(peak),
                "key": tuple(np.round(world[pick], 6)),
            }
        )
    clusters.sort(key=lambda c: (-round(c["mass"], 9), c["key"]))
    best = clusters[0]
    voxel_volume = float(abs(np.linalg.det(affine[:3, :3])))
    word = "anticorrelated" if sign == "negative" else "correlated"

    def fisher(value: float) -> float:
        return float(np.arctanh(np.clip(value, -0.999999, 0.999999)))

    candidates = []
    for rank, c in enumerate(clusters[1 : 1 + max(0, int(n_candidates))], start=2):
        t = c["target"]
        candidates.append(
            {
                "target_mm": np.round(world[t], 4).tolist(),
                "r": round(float(r[t]), 6),
                "z": round(fisher(r[t]), 6),
                "cluster_size_voxels": int(len(c["members"])),
                "score": round(c["mass"], 6),
                "why": (
                    f"rank {rank}: a smaller {word} cluster (summed score {c['mass']:.2f} vs "
                    f"{best['mass']:.2f} for the chosen one; r = {r[t]:+.3f} at its centre)"
                ),
            }
        )
    t, p = best["target"], best["peak"]
    rest_entry = {**_entry(rest), "shape": [int(s) for s in img.shape], "tr_s": tr}
    info = {
        "strategy": "connectivity",
        "rest": rest_entry,
        "cropped_data_sha256": data_sha,
        "confounds": None
        if confounds is None
        else {
            "path": str(Path(confounds).resolve()),
            "sha256": file_sha256(confounds),
            "columns_used": used,
            "default_columns_missing": missing,
        },
        "rest_mask": None if rest_mask is None else _entry(rest_mask),
        "seed": {
            "roi": seed_roi,
            "mask": None if seed_mask is None else _entry(seed_mask),
            "n_voxels": int(seed_c.sum()),
            "n_voxels_with_signal": n_seed,
        },
        "search": {
            "roi": roi,
            "mask": None if roi_mask is None else _entry(roi_mask),
            "n_voxels_with_signal": int(search_in.sum()),
        },
        "sign": sign,
        "cleaning": {
            "library": f"nilearn {nilearn_version}",
            "smoothing_fwhm_mm": fwhm_mm,
            "detrend": "linear",
            "band_pass_hz": [high_pass_hz, low_pass_hz],
            "filter": "butterworth",
            "confound_regression": used or [],
            "standardize_confounds": True,
            "tr_s": tr,
            "order": "crop to the ROIs + margin, smooth, then per voxel: detrend, "
            "band-pass, confound regression (nilearn.signal.clean)",
        },
        "selection_rule": (
            f"Pearson r of every search voxel with the mean cleaned seed signal; the best "
            f"{TOP_FRACTION:.0%} of {word} voxels form 26-connected clusters; the cluster with "
            "the largest summed score wins; target = its score-weighted centre snapped to the "
            "nearest cluster voxel"
        ),
        "target_r": round(float(r[t]), 6),
        "target_z": round(fisher(r[t]), 6),
        "peak_mm": np.round(world[p], 4).tolist(),
        "peak_r": round(float(r[p]), 6),
        "cluster_size_voxels": int(len(best["members"])),
        "cluster_volume_mm3": round(len(best["members"]) * voxel_volume, 3),
        "n_clusters": int(n_clusters),
        "search_r_range": [round(float(r.min()), 6), round(float(r.max()), 6)],
    }
    return ConnectivityTarget(
        target=Points(world[t], frame),
        r=float(r[t]),
        z=fisher(r[t]),
        peak=Points(world[p], frame),
        peak_r=float(r[p]),
        cluster_size_voxels=int(len(best["members"])),
        cluster_volume_mm3=len(best["members"]) * voxel_volume,
        candidates=tuple(candidates),
        info=info,
        notes=tuple(notes),
    )
