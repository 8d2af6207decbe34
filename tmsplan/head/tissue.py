"""Tissue classes (CSF, grey matter, white matter) in the patient's brain, and cortex snapping.

Design notes: ``docs/head.md``, section ``tmsplan.head.tissue``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import NamedTuple

import nibabel as nib
import numpy as np

from tmsplan.errors import ImageError, SpaceError
from tmsplan.io.images import ImageLike, check_img, same_grid
from tmsplan.spaces import SUBJECT_FRAME, Points, as_points_array

__all__ = [
    "OUTSIDE",
    "CSF",
    "GREY_MATTER",
    "WHITE_MATTER",
    "TISSUE_NAMES",
    "TissueMap",
    "CortexSnap",
    "tissue_segmentation",
    "tissue_at",
    "snap_to_cortex",
]

OUTSIDE, CSF, GREY_MATTER, WHITE_MATTER = 0, 1, 2, 3
"""Label values of :attr:`TissueMap.labels`."""

TISSUE_NAMES = {
    OUTSIDE: "outside brain",
    CSF: "csf",
    GREY_MATTER: "grey matter",
    WHITE_MATTER: "white matter",
}
"""Name of each label, as returned by :func:`tissue_at`."""

_BIAS_ROUNDS = 4
_EM_ITERATIONS = 30
_HIST_BINS = 512
_BIAS_VOXELS = 60_000
_BIAS_WM_POSTERIOR = 0.9
_MIN_BIAS_VOXELS = 200
_MAX_LOG_BIAS = float(np.log(2.0))
_MIN_GREY_ISLAND_ML = 0.1
_KMEANS_ITERATIONS = 10
_POLY_ORDER = 3
_MRF_STEPS = 2
_MIN_MASK_ML = 200.0
_MIN_SEPARATION = 1.0
_MIN_GAIN = 0.02
"""Least log-likelihood gain (nats per voxel) of the 3-class mixture over one Gaussian:
0.22 on a real 0.9 mm T1, 0.20 on a 3T MPRAGE, 0.3-0.6 on the test phantoms, 0.0001
on pure noise."""


@dataclass(frozen=True, eq=False)
class TissueMap:
    """Tissue labels of a patient's brain on the T1 grid.

    Attributes
    ----------
    labels : nibabel.Nifti1Image
        uint8 labels on the T1 grid (T1 affine): 0 outside the brain, 1 CSF,
        2 grey matter, 3 white matter (:data:`TISSUE_NAMES`).
    method : dict
        JSON-ready description of how the labels were made (for the record).
    quality : dict
        JSON-ready figures: class means, SDs and weights (bias-corrected, in
        units of the T1's median brain intensity), GM/WM and CSF/GM separations
        (pooled SDs), the mixture's log-likelihood gain over one Gaussian,
        volumes of each class and of the mask in mL.
    probabilities : nibabel.Nifti1Image or None
        float32 4-D image on the T1 grid, volumes CSF, GM, WM (posteriors after
        the MRF steps; 0 outside the classified region), when asked for.
    seconds : float
        Wall time of the segmentation (not part of :meth:`describe`, which must
        be reproducible).
    frame : str
        World frame of the labels' affine (``"T1w"``).
    """

    labels: nib.Nifti1Image
    method: dict
    quality: dict
    probabilities: nib.Nifti1Image | None = field(default=None, repr=False)
    seconds: float = 0.0
    frame: str = SUBJECT_FRAME

    def describe(self) -> dict:
        """JSON-ready record: method and quality (no timing)."""
        return {"method": dict(self.method), "quality": dict(self.quality)}


class CortexSnap(NamedTuple):
    """Result of :func:`snap_to_cortex` (unpacks as ``new_xyz, distance_mm, how``).

    Attributes
    ----------
    xyz : (3,) float64
        The point after snapping, world RAS+ mm of the T1 (frame ``"T1w"``):
        a grey-matter voxel centre, or the given point when it was not moved.
    distance_mm : float
        How far the point moved (0 when not moved).
    how : str
        One sentence for the record: the tissue the point was in and what was done.
    """

    xyz: np.ndarray
    distance_mm: float
    how: str


# --------------------------------------------------------------------------- segmentation


def tissue_segmentation(
    t1: ImageLike,
    brain_mask: ImageLike,
    *,
    rim_mm: float = 5.0,
    core_mm: float = 5.0,
    working_mm: float = 2.0,
    mrf_beta: float = 1.5,
    with_probabilities: bool = False,
) -> TissueMap:
    """Label CSF, grey matter and white matter in the patient's brain.

    See the module docstring for the method and the handling of the mask rim.

    Parameters
    ----------
    t1 : str, os.PathLike or nibabel image
        The patient's T1-weighted image (with or without scalp).
    brain_mask : str, os.PathLike or nibabel image
        Brain mask **on the T1 grid** (same shape and affine; nonzero = brain),
        e.g. the MNI brain mask carried in by the MNI -> T1 transform with
        nearest-neighbour interpolation. It may be a few mm off.
    rim_mm : float
        Voxels up to this distance outside the mask are classified too.
    core_mm : float
        Grey/white-matter components must reach this far inside the mask to be
        kept (drops marrow and scalp fat caught by the rim).
    working_mm : float
        Voxel size of the grid the mixture and bias field are fitted on.
    mrf_beta : float
        Strength of the MRF smoothing (0 = none).
    with_probabilities : bool
        Also return the class posteriors (a 4-D float32 image on the T1 grid;
        about 12 bytes per T1 voxel).

    Returns
    -------
    TissueMap

    Raises
    ------
    ImageError
        ``t1`` or ``brain_mask`` is not a valid 3-D image, the mask is empty or
        smaller than a brain, or the T1 shows no grey/white-matter contrast in
        the mask.
    SpaceError
        ``brain_mask`` is not on the T1's grid.
    """
    from scipy import ndimage

    for name, value in (("rim_mm", rim_mm), ("core_mm", core_mm), ("working_mm", working_mm)):
        if not np.isfinite(value) or value < 0 or (name == "working_mm" and value <= 0):
            raise ValueError(f"{name} must be a non-negative number of mm, got {value!r}")
    if not np.isfinite(mrf_beta) or mrf_beta < 0:
        raise ValueError(f"mrf_beta must be >= 0, got {mrf_beta!r}")
    started = time.perf_counter()
    img = check_img(t1, name="t1")
    mask_img = check_img(brain_mask, name="brain_mask", require_signal=False)
    if not same_grid(img, mask_img):
        raise SpaceError(
            f"brain_mask (shape {tuple(mask_img.shape)}) is not on the T1's grid (shape "
            f"{tuple(img.shape)}, or another affine); carry it onto the T1 first, e.g. "
            "mni_to_subject.resample_to_subject(mask, t1, interpolation='nearest')."
        )
    affine = img.affine
    voxel = np.linalg.norm(affine[:3, :3], axis=0)
    voxel_ml = float(abs(np.linalg.det(affine[:3, :3]))) / 1000.0
    mask_full = np.asarray(mask_img.dataobj) > 0.5
    mask_ml = float(mask_full.sum()) * voxel_ml
    if mask_ml < _MIN_MASK_ML:
        raise ImageError(
            f"brain_mask: only {mask_ml:.0f} mL inside, a brain is over {_MIN_MASK_ML:.0f} mL; "
            "give the brain mask carried onto this T1 (check the transform and the grid)."
        )

    # ---- crop to the mask plus the rim; working grid
    factor = np.maximum(np.round(working_mm / voxel).astype(int), 1)
    pad = np.ceil(rim_mm / voxel).astype(int) + 2 * factor
    idx = np.argwhere(mask_full)
    lo = np.maximum(idx.min(axis=0) - pad, 0)
    hi = np.minimum(idx.max(axis=0) + pad + 1, mask_full.shape)
    del idx
    crop = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    data = np.asarray(img.dataobj)[crop].astype(np.float32)
    mask = mask_full[crop]
    crop_affine = affine.copy()
    crop_affine[:3, 3] = affine[:3, :3] @ lo + affine[:3, 3]
    coarse = _block_mean(data, factor)
    coarse_mask = _block_mean(mask.astype(np.float32), factor) > 0.5
    coarse_affine = crop_affine.copy()
    coarse_affine[:3, :3] = affine[:3, :3] * factor
    coarse_affine[:3, 3] = crop_affine[:3, :3] @ ((factor - 1) / 2.0) + crop_affine[:3, 3]

    # ---- the rim (distances on the working grid, ~1 voxel of it accurate)
    coarse_voxel = voxel * factor
    coarse_region = ndimage.distance_transform_edt(~coarse_mask, sampling=coarse_voxel) <= rim_mm
    region = _upsample(coarse_region, factor, mask.shape)
    region |= mask
    core = _upsample(
        ndimage.distance_transform_edt(coarse_mask, sampling=coarse_voxel) >= core_mm,
        factor,
        mask.shape,
    )
    core &= mask

    # ---- mixture + bias field on the working grid
    brain = coarse[coarse_mask].astype(np.float64)
    if brain.size < 100 or np.ptp(brain) <= 0:
        raise ImageError(
            "t1: it is flat inside the brain mask; check that the mask lies on the brain."
        )
    scale = float(np.median(brain[brain > 0])) if np.any(brain > 0) else 1.0
    del brain
    fitted_on = "brain mask"
    fit = _fit_mixture(coarse, coarse_mask, coarse_mask, coarse_affine, scale)
    if min(fit["separation"], fit["csf_gm_separation"]) < _MIN_SEPARATION:
        # too little CSF in the mask (a mask too small, a brain without sulci):
        # the three classes split grey or white matter; the rim adds the CSF
        retry = _fit_mixture(coarse, coarse_region, coarse_mask, coarse_affine, scale)
        if min(retry["separation"], retry["csf_gm_separation"]) > min(
            fit["separation"], fit["csf_gm_separation"]
        ):
            fit, fitted_on = retry, "brain mask and its rim (too little CSF in the mask)"
    means, sds, weights = fit["means"], fit["sds"], fit["weights"]
    coef, centre, half, separation = fit["coef"], fit["centre"], fit["half"], fit["separation"]
    if not fit["gain"] >= _MIN_GAIN:
        raise ImageError(
            "t1: no tissue contrast inside the brain mask (three tissue classes fit the "
            f"intensities no better than one: gain {fit['gain']:.4f} < {_MIN_GAIN} nats per "
            "voxel); give a T1-weighted image and the brain mask carried onto it."
        )
    for pair, value in (("grey/white", separation), ("CSF/grey", fit["csf_gm_separation"])):
        if value < _MIN_SEPARATION:
            raise ImageError(
                f"t1: {pair}-matter classes overlap inside the brain mask (separation "
                f"{value:.2f} SD < {_MIN_SEPARATION}); give a T1-weighted image and a brain "
                "mask that covers the brain on it."
            )

    # ---- posteriors at full resolution (bias field evaluated on the working grid)
    coarse_xyz = _voxel_world(coarse_affine, np.indices(coarse.shape).reshape(3, -1).T)
    log_field = _log_field((coarse_xyz - centre) / half, coef)
    del coarse_xyz
    field_img = _upsample(
        np.exp(log_field).astype(np.float32).reshape(coarse.shape), factor, mask.shape
    )
    corrected = data / np.float32(scale) / field_img
    del field_img, data
    probs = np.empty((3, *mask.shape), dtype=np.float32)
    lsds, lweights = _equal_spread(sds, weights)
    for k in range(3):
        z = (corrected - np.float32(means[k])) / np.float32(lsds[k])
        probs[k] = -0.5 * z * z + np.float32(np.log(lweights[k] / lsds[k]))
    del corrected, z
    probs -= probs.max(axis=0)
    np.exp(probs, out=probs)
    probs /= probs.sum(axis=0)
    probs[:, ~region] = 0.0
    likelihood = probs.copy()
    for _ in range(_MRF_STEPS if mrf_beta > 0 else 0):
        for k in range(3):
            neighbours = ndimage.uniform_filter(probs[k], size=3, mode="constant")
            # mean over the 26 neighbours (the 3x3x3 mean includes the voxel itself)
            neighbours = (27.0 * neighbours - probs[k]) / 26.0
            probs[k] = likelihood[k] * np.exp(np.float32(mrf_beta) * neighbours)
        total = probs.sum(axis=0)
        np.divide(probs, np.where(total > 0, total, np.float32(1.0)), out=probs)
    del likelihood
    labels = np.where(region, np.argmax(probs, axis=0) + 1, OUTSIDE).astype(np.uint8)

    # ---- rim: keep GM/WM connected to the mask's core
    tissue = labels >= GREY_MATTER
    components, count = ndimage.label(tissue)
    if count:
        reach = np.zeros(count + 1, dtype=bool)
        reach[np.unique(components[core & tissue])] = True
        reach[0] = False
        dropped = tissue & ~reach[components]
        labels[dropped] = OUTSIDE
        probs[:, dropped] = 0.0
    del components, tissue

    # ---- grey-matter specks (noise, partial volume) inside white matter or CSF: a
    # target must not snap to them. Small components go to the likelier other class.
    grey = labels == GREY_MATTER
    components, count = ndimage.label(grey)
    if count:
        sizes = np.bincount(components.ravel()) * voxel_ml
        small = sizes < _MIN_GREY_ISLAND_ML
        small[0] = False
        speck = small[components]
        if speck.any():
            probs[1][speck] = 0.0
            white = probs[2][speck] >= probs[0][speck]
            labels[speck] = np.where(white, WHITE_MATTER, CSF)
            total = probs[:, speck].sum(axis=0)
            probs[:, speck] /= np.where(total > 0, total, 1.0)
    del components, grey

    out = np.zeros(img.shape, dtype=np.uint8)
    out[crop] = labels
    label_img = nib.Nifti1Image(out, affine)
    label_img.set_sform(affine, code=int(img.header["sform_code"]) or 1)
    label_img.set_qform(affine, code=int(img.header["qform_code"]) or 1)
    prob_img = None
    if with_probabilities:
        full_probs = np.zeros((*img.shape, 3), dtype=np.float32)
        full_probs[crop] = np.moveaxis(probs, 0, -1)
        prob_img = nib.Nifti1Image(full_probs, affine)
        prob_img.set_sform(affine, code=int(img.header["sform_code"]) or 1)
        prob_img.set_qform(affine, code=int(img.header["qform_code"]) or 1)

    volumes = {TISSUE_NAMES[k]: round(float((labels == k).sum()) * voxel_ml, 1) for k in (1, 2, 3)}
    method = {
        "tool": "tmsplan.head.tissue (numpy/scipy)",
        "model": "3-class Gaussian mixture on T1 intensity (EM, k-means start), "
        "classes ordered CSF < GM < WM; labels from the class means with one pooled SD "
        "and equal priors (boundaries at 50 % partial volume)",
        "bias_field": f"exp(order-{_POLY_ORDER} polynomial in x, y, z), least squares on "
        f"the log intensity of white matter (posterior > {_BIAS_WM_POSTERIOR}) over its "
        f"mean, {_BIAS_ROUNDS} rounds alternated with the mixture",
        "fit_grid_mm": [round(float(v), 3) for v in voxel * factor],
        "label_grid_mm": [round(float(v), 3) for v in voxel],
        "mrf": f"{_MRF_STEPS if mrf_beta > 0 else 0} mean-field steps, 26 neighbours, "
        f"beta {mrf_beta:g}",
        "mask": "brain mask given on the T1 grid",
        "mixture_fitted_on": fitted_on,
        "rim_mm": float(rim_mm),
        "core_mm": float(core_mm),
        "rim_rule": f"classified in the mask dilated by {rim_mm:g} mm; GM/WM kept only in "
        f"6-connected components reaching {core_mm:g} mm inside the mask",
        "grey_islands": f"grey-matter components under {_MIN_GREY_ISLAND_ML:g} mL relabelled",
        "labels": {str(k): v for k, v in TISSUE_NAMES.items()},
        "deterministic": True,
    }
    quality = {
        "class_means": [round(float(v), 4) for v in means],
        "class_sds": [round(float(v), 4) for v in sds],
        "class_weights": [round(float(v), 4) for v in weights],
        "gm_wm_separation_sd": round(separation, 3),
        "csf_gm_separation_sd": round(float(fit["csf_gm_separation"]), 3),
        "mixture_gain_nats": round(float(fit["gain"]), 4),
        "volumes_ml": volumes,
        "mask_ml": round(mask_ml, 1),
    }
    return TissueMap(
        labels=label_img,
        method=method,
        quality=quality,
        probabilities=prob_img,
        seconds=time.perf_counter() - started,
    )


def _fit_mixture(
    coarse: np.ndarray,
    fit_mask: np.ndarray,
    bias_mask: np.ndarray,
    affine: np.ndarray,
    scale: float,
) -> dict:
    """Alternate a 3-class mixture (voxels in ``fit_mask``) and a polynomial bias field.

    The bias field is fitted to the confident white matter of voxels in
    ``bias_mask`` only. Returns means, sds, weights (ordered CSF < GM < WM),
    the field's coefficients with its coordinate centre/half-size, and the
    GM/WM separation in pooled SDs.
    """
    values = coarse[fit_mask].astype(np.float64) / scale
    in_bias = bias_mask[fit_mask]
    log_values = np.log(np.maximum(values, 1e-3))
    world = _voxel_world(affine, np.argwhere(fit_mask))
    centre = world[in_bias].mean(axis=0)
    half = np.maximum(np.abs(world[in_bias] - centre).max(axis=0), 1.0)
    # the smooth field needs few voxels: a regular subsample of at most _BIAS_VOXELS
    sample = slice(None, None, max(1, values.size // _BIAS_VOXELS))
    norm = (world - centre) / half
    basis = _poly_basis(norm[sample], _POLY_ORDER)
    del world
    coef = np.zeros(basis.shape[1])
    means = _kmeans_1d(values, np.percentile(values, [10.0, 50.0, 85.0]))
    sds = np.full(3, max(float(np.std(values)) / 3.0, 1e-3))
    weights = np.full(3, 1.0 / 3.0)
    for _ in range(_BIAS_ROUNDS):
        corrected = values / np.exp(_log_field(norm, coef))
        means, sds, weights = _em_histogram(corrected, means, sds, weights)
        post = _posteriors(corrected[sample], means, *_equal_spread(sds, weights))
        # confident white matter only: the largest, most uniform tissue. Weighting
        # all GM + WM voxels let the polynomial absorb the radial GM/WM layout
        # (white core, grey rim) and shrink the contrast on a noisy phantom.
        white = (post[:, 2] > _BIAS_WM_POSTERIOR) & in_bias[sample]
        if white.sum() < _MIN_BIAS_VOXELS:
            break
        residual = log_values[sample] - np.log(max(float(means[2]), 1e-3))
        w = white.astype(np.float64)
        # weighted least squares through the normal equations (20 x 20); einsum, not
        # BLAS: threaded BLAS stalls on a busy machine and may round differently
        gram = np.einsum("ni,nj->ij", basis * w[:, None], basis)
        rhs = np.einsum("ni,n->i", basis, w * residual)
        coef = np.linalg.solve(gram + 1e-9 * np.eye(gram.shape[0]), rhs)
        # the field keeps the median brain intensity: its offset is not a bias
        fitted = np.einsum("ni,i->n", basis, coef)
        coef[0] -= float(np.median(fitted[in_bias[sample]]))
    corrected = values / np.exp(_log_field(norm, coef))
    means, sds, weights = _em_histogram(corrected, means, sds, weights)
    order = np.argsort(means)
    means, sds, weights = means[order], sds[order], weights[order]
    pooled = np.sqrt((sds[:-1] ** 2 + sds[1:] ** 2) / 2.0)
    separations = np.nan_to_num((means[1:] - means[:-1]) / pooled, nan=0.0)
    return {
        "csf_gm_separation": float(separations[0]),
        "gain": _mixture_gain(corrected, means, sds, weights),
        "means": means,
        "sds": sds,
        "weights": weights,
        "coef": coef,
        "centre": centre,
        "half": half,
        "separation": float(separations[1]),
    }


def _block_mean(data: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """Mean over ``factor``-sized blocks (edges padded by repetition)."""
    if np.all(factor == 1):
        return data.astype(np.float32, copy=True)
    target = [int(np.ceil(n / f)) * f for n, f in zip(data.shape, factor, strict=True)]
    padded = np.pad(
        data, [(0, t - n) for t, n in zip(target, data.shape, strict=True)], mode="edge"
    )
    shape = []
    for t, f in zip(target, factor, strict=True):
        shape += [t // f, int(f)]
    return padded.reshape(shape).mean(axis=(1, 3, 5), dtype=np.float64).astype(np.float32)


def _upsample(coarse: np.ndarray, factor: np.ndarray, shape: tuple) -> np.ndarray:
    """Repeat each working-grid voxel over its block and cut to ``shape``."""
    out = coarse
    for axis, f in enumerate(factor):
        if f > 1:
            out = np.repeat(out, int(f), axis=axis)
    return np.ascontiguousarray(out[: shape[0], : shape[1], : shape[2]])


def _voxel_world(affine: np.ndarray, ijk: np.ndarray) -> np.ndarray:
    return np.einsum("nj,ij->ni", np.asarray(ijk, dtype=np.float64), affine[:3, :3]) + affine[:3, 3]


def _poly_basis(xyz: np.ndarray, order: int) -> np.ndarray:
    """Monomials x^a y^b z^c with a + b + c <= order; first column is 1."""
    columns = []
    for total in range(order + 1):
        for a in range(total + 1):
            for b in range(total - a + 1):
                c = total - a - b
                columns.append(xyz[:, 0] ** a * xyz[:, 1] ** b * xyz[:, 2] ** c)
    return np.stack(columns, axis=1)


def _poly_eval(xyz: np.ndarray, coef: np.ndarray, order: int) -> np.ndarray:
    """``_poly_basis(xyz, order) @ coef`` without building the basis (memory O(n))."""
    out = np.zeros(xyz.shape[0])
    column = 0
    for total in range(order + 1):
        for a in range(total + 1):
            for b in range(total - a + 1):
                c = total - a - b
                out += coef[column] * (xyz[:, 0] ** a * xyz[:, 1] ** b * xyz[:, 2] ** c)
                column += 1
    return out


def _equal_spread(sds: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pooled SD for every class and equal priors: the model labels are drawn from.

    With it, a voxel goes to the class whose mean is nearest (before the MRF), so a
    boundary lies halfway between two class means (50 % partial volume). Separate
    SDs would move the grey/white boundary toward the narrower white-matter peak
    and call the darker half of white matter grey (measured on a 3T MPRAGE:
    995 mL grey matter instead of 725).
    """
    pooled = float(np.sqrt(np.sum(weights * sds**2) / np.sum(weights)))
    return np.full(sds.shape, pooled), np.full(weights.shape, 1.0 / weights.size)


def _log_field(norm: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """Log bias field at normalised coordinates, clipped to a factor of 2 either way.

    The polynomial is fitted to white matter and extrapolated over the cortex;
    the clip only bounds a runaway extrapolation (real fields stay well inside).
    """
    return np.clip(_poly_eval(norm, coef, _POLY_ORDER), -_MAX_LOG_BIAS, _MAX_LOG_BIAS)


def _kmeans_1d(values: np.ndarray, centres: np.ndarray) -> np.ndarray:
    centres = np.sort(np.asarray(centres, dtype=np.float64))
    for _ in range(_KMEANS_ITERATIONS):
        nearest = np.argmin(np.abs(values[:, None] - centres[None, :]), axis=1)
        for k in range(centres.size):
            chosen = values[nearest == k]
            if chosen.size:
                centres[k] = chosen.mean()
    return np.sort(centres)


def _posteriors(values, means, sds, weights) -> np.ndarray:
    z = (values[:, None] - means[None, :]) / sds[None, :]
    log_p = -0.5 * z * z - np.log(sds)[None, :] + np.log(np.maximum(weights, 1e-12))[None, :]
    log_p -= log_p.max(axis=1, keepdims=True)
    p = np.exp(log_p)
    return p / p.sum(axis=1, keepdims=True)


def _mixture_gain(values, means, sds, weights) -> float:
    """Mean log-likelihood per voxel of the mixture minus that of one Gaussian (nats).

    Near 0 when the intensities are one blob (no tissue contrast).
    """
    low, high = np.percentile(values, [0.05, 99.95])
    counts, edges = np.histogram(np.clip(values, low, high), bins=_HIST_BINS, range=(low, high))
    centres = 0.5 * (edges[:-1] + edges[1:])
    z = (centres[:, None] - means[None, :]) / sds[None, :]
    mixture = (weights[None, :] * np.exp(-0.5 * z * z) / sds[None, :]).sum(axis=1)
    mean = np.average(centres, weights=counts)
    sd = max(float(np.sqrt(np.average((centres - mean) ** 2, weights=counts))), 1e-9)
    single = np.exp(-0.5 * ((centres - mean) / sd) ** 2) / sd
    gain = np.log(np.maximum(mixture, 1e-300)) - np.log(np.maximum(single, 1e-300))
    return float(np.average(gain, weights=counts))


def _em_histogram(values, means, sds, weights):
    """EM of a 1-D Gaussian mixture on a fine histogram of ``values`` (fast, deterministic)."""
    low, high = np.percentile(values, [0.05, 99.95])
    counts, edges = np.histogram(np.clip(values, low, high), bins=_HIST_BINS, range=(low, high))
    centres = 0.5 * (edges[:-1] + edges[1:])
    floor = max(float(edges[1] - edges[0]), 1e-4)
    for _ in range(_EM_ITERATIONS):
        post = _posteriors(centres, means, sds, weights) * counts[:, None]
        total = post.sum(axis=0) + 1e-12
        weights = total / total.sum()
        means = (post * centres[:, None]).sum(axis=0) / total
        var = (post * (centres[:, None] - means[None, :]) ** 2).sum(axis=0) / total
        sds = np.sqrt(np.maximum(var, floor**2))
    return means, sds, weights


# --------------------------------------------------------------------------- queries


def _point(xyz, tissue: TissueMap, name: str) -> np.ndarray:
    if isinstance(xyz, Points):
        if xyz.frame != tissue.frame:
            raise SpaceError(
                f"{name} is in frame {xyz.frame!r} but the tissue map is in {tissue.frame!r}; "
                "carry the point into the T1's world first."
            )
        xyz = xyz.xyz
    arr = as_points_array(xyz, name=name)
    if arr.shape[0] != 1:
        raise SpaceError(f"{name}: expected one point (3,), got {arr.shape[0]} points.")
    return arr[0]


def _label_at(tissue: TissueMap, xyz: np.ndarray) -> int:
    from nibabel.affines import apply_affine

    ijk = np.rint(apply_affine(np.linalg.inv(tissue.labels.affine), xyz)).astype(int)
    shape = tissue.labels.shape[:3]
    if np.any(ijk < 0) or np.any(ijk >= shape):
        return OUTSIDE
    return int(np.asarray(tissue.labels.dataobj)[tuple(ijk)])


def tissue_at(tissue: TissueMap, xyz: np.ndarray | Points) -> str:
    """Name the tissue at a point (nearest voxel of the label image).

    Parameters
    ----------
    tissue : TissueMap
    xyz : (3,) float or Points
        One point in world RAS+ mm of the T1 (frame ``"T1w"``).

    Returns
    -------
    str
        ``"grey matter"``, ``"white matter"``, ``"csf"`` or ``"outside brain"``
        (also for points outside the image).

    Raises
    ------
    SpaceError
        Not one finite point, or a :class:`~tmsplan.spaces.Points` in another frame.
    """
    return TISSUE_NAMES[_label_at(tissue, _point(xyz, tissue, "xyz"))]


def snap_to_cortex(
    tissue: TissueMap,
    xyz: np.ndarray | Points,
    toward: np.ndarray | Points,
    *,
    cone_deg: float = 60.0,
    max_distance_mm: float = 20.0,
) -> CortexSnap:
    """Move a point that is not in grey matter to the nearest grey matter toward the scalp.

    Rules, by the tissue at ``xyz`` (:func:`tissue_at`):

    - **grey matter**: unchanged, distance 0.
    - **white matter**: the nearest grey-matter voxel centre among those whose
      direction from ``xyz`` is within ``cone_deg`` of the direction from
      ``xyz`` to ``toward`` (outward, when ``toward`` is the scalp entry);
      if there is none within ``max_distance_mm``, the nearest grey-matter
      voxel in any direction.
    - **csf** or **outside brain**: the nearest grey-matter voxel in any
      direction (CSF lies on both sides of a sulcus; outside the labelled
      brain the cortex is inward).

    In every case, a point with no grey-matter voxel within
    ``max_distance_mm`` is left unchanged and ``how`` says so.

    Parameters
    ----------
    tissue : TissueMap
    xyz : (3,) float or Points
        The target, world RAS+ mm of the T1 (frame ``"T1w"``).
    toward : (3,) float or Points
        A point that sets "outward", same frame: the scalp entry above the
        target, or ``2 * xyz - head_centre`` to go away from the head centre.
        When it equals ``xyz`` there is no direction and the nearest grey
        matter is taken.
    cone_deg : float
        Half-angle of the outward cone, degrees (0-90).
    max_distance_mm : float
        Farthest move allowed.

    Returns
    -------
    CortexSnap
        ``(xyz, distance_mm, how)``; ``xyz`` is (3,) float64 in frame ``"T1w"``.

    Raises
    ------
    SpaceError
        A point is not one finite (3,) point, or is a
        :class:`~tmsplan.spaces.Points` in another frame.
    """
    if not 0.0 <= cone_deg <= 90.0:
        raise ValueError(f"cone_deg must be within 0-90 degrees, got {cone_deg!r}")
    if not np.isfinite(max_distance_mm) or max_distance_mm <= 0:
        raise ValueError(f"max_distance_mm must be a positive number, got {max_distance_mm!r}")
    point = _point(xyz, tissue, "xyz")
    goal = _point(toward, tissue, "toward")
    label = _label_at(tissue, point)
    name = TISSUE_NAMES[label]
    if label == GREY_MATTER:
        return CortexSnap(point.copy(), 0.0, "in grey matter: kept as given")

    affine = tissue.labels.affine
    voxel = np.linalg.norm(affine[:3, :3], axis=0)
    from nibabel.affines import apply_affine

    centre = apply_affine(np.linalg.inv(affine), point)
    reach = np.ceil(max_distance_mm / voxel).astype(int) + 1
    shape = np.asarray(tissue.labels.shape[:3])
    lo = np.clip(np.floor(centre).astype(int) - reach, 0, shape)
    hi = np.clip(np.ceil(centre).astype(int) + reach + 1, 0, shape)
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    grey = np.argwhere(np.asarray(tissue.labels.dataobj)[box] == GREY_MATTER) + lo
    candidates = apply_affine(affine, grey) if grey.size else np.empty((0, 3))
    offsets = candidates - point
    dist = np.linalg.norm(offsets, axis=1)
    near = dist <= max_distance_mm
    candidates, offsets, dist = candidates[near], offsets[near], dist[near]
    if dist.size == 0:
        return CortexSnap(
            point.copy(),
            0.0,
            f"in {name}; no grey matter within {max_distance_mm:g} mm: kept as given",
        )

    direction = goal - point
    length = float(np.linalg.norm(direction))
    if label == WHITE_MATTER and length > 1e-6:
        cosine = offsets @ (direction / length) / np.maximum(dist, 1e-9)
        inside = cosine >= np.cos(np.radians(cone_deg)) - 1e-9
        if np.any(inside):
            pick = np.flatnonzero(inside)[np.argmin(dist[inside])]
            how = (
                f"moved from white matter to the nearest grey matter within {cone_deg:g} deg "
                "of the outward direction"
            )
            return CortexSnap(candidates[pick].copy(), float(dist[pick]), how)
        how = (
            f"moved from white matter to the nearest grey matter (none within {cone_deg:g} "
            "deg of the outward direction)"
        )
    else:
        how = f"moved from {name} to the nearest grey matter"
    pick = int(np.argmin(dist))
    return CortexSnap(candidates[pick].copy(), float(dist[pick]), how)
