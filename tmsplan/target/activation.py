"""Activation maps: build one from a peak table, threshold it in an ROI, pick the target.

Design notes: ``docs/targets.md``, section ``tmsplan.target.activation``.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import nibabel as nib
import numpy as np

from tmsplan.errors import ActivationError, EmptyIntersectionError, FormatError, SpaceError
from tmsplan.io.bundled import load_mni_brain_mask
from tmsplan.io.images import (
    ImageLike,
    check_img,
    file_sha256,
    img_on_grid,
    resample_to_img,
    same_grid,
    voxel_to_world,
    world_to_voxel,
)
from tmsplan.spaces import Points, as_points_array

__all__ = [
    "CLUSTER_CONNECTIVITY",
    "Peak",
    "read_peak_table",
    "map_from_peaks",
    "mni_map_from_peak_table",
    "ActivationTarget",
    "select_target",
    "select_target_depth_aware",
    "STRATEGIES",
    "HEIGHT_CONTROLS",
    "statistical_threshold",
    "DEFAULT_THRESHOLD",
]

DEFAULT_THRESHOLD = 3.1
"""Default z threshold (one-sided p < 0.001 uncorrected), the common cluster-forming threshold."""

STRATEGIES = ("peak", "cog", "depth-aware", "connectivity")
"""Target strategies: ``peak``/``cog`` of the largest cluster, ``depth-aware`` (value
against depth within the coil's reach) and ``connectivity`` (:mod:`tmsplan.target.connectivity`)."""

HEIGHT_CONTROLS = ("fpr", "fdr", "bonferroni")
"""Voxel-level thresholds computed by nilearn (``nilearn.glm.threshold_stats_img``)."""

DEFAULT_ALPHA = {"fpr": 0.001, "fdr": 0.05, "bonferroni": 0.05}
"""Default alpha per height control (uncorrected p < 0.001; FDR q / FWE p < 0.05)."""

Sign = Literal["positive", "negative", "absolute"]
Rule = Literal["peak", "cog"]

# scipy labelling kept on purpose: nilearn's get_clusters_table returns a peak table, not
# the label image the ROI and target rules need
CLUSTER_CONNECTIVITY = np.ones((3, 3, 3), dtype=bool)
"""Neighbours that join voxels into a cluster: all 26 (faces, edges, corners), as SPM and FSL."""


@dataclass(frozen=True)
class Peak:
    """One row of a published peak table.

    Attributes
    ----------
    xyz : (3,) float
        Peak coordinate in mm, in the world frame of the grid the map is built on
        (MNI152 for :func:`mni_map_from_peak_table`).
    value : float
        Peak statistic (z). Negative for deactivations.
    volume_mm3 : float or None
        Cluster volume at the study's threshold, if reported.
    label : str
        Region name as printed in the table.
    """

    xyz: tuple[float, float, float]
    value: float
    volume_mm3: float | None = None
    label: str = ""


_TABLE_COLUMNS = ("x", "y", "z", "peak_z")


def read_peak_table(path: str | os.PathLike) -> tuple[Peak, ...]:
    """Read a peak table (TSV or CSV).

    Columns ``x, y, z, peak_z`` and optionally ``volume_mm3`` and ``label``;
    lines starting with ``#`` are comments.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    tuple of Peak

    Raises
    ------
    FormatError
        Missing file or columns, or non-numeric values (the row is named).
    """
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"peak table '{path}' does not exist.")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FormatError(f"peak table '{path}' cannot be read as UTF-8 text ({exc}).") from None
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if not lines:
        raise FormatError(f"peak table '{path}' has no rows.")
    delimiter = "\t" if "\t" in lines[0] else ","
    reader = csv.DictReader(lines, delimiter=delimiter)
    fields = [f.strip() for f in (reader.fieldnames or [])]
    missing = [c for c in _TABLE_COLUMNS if c not in fields]
    if missing:
        raise FormatError(
            f"peak table '{path}' lacks columns {missing}; expected a header with "
            "x, y, z, peak_z (and optionally volume_mm3, label)."
        )
    peaks = []
    for number, row in enumerate(reader, start=2):
        row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
        try:
            xyz = tuple(float(row[c]) for c in ("x", "y", "z"))
            value = float(row["peak_z"])
            volume = float(row["volume_mm3"]) if row.get("volume_mm3") else None
        except ValueError:
            raise FormatError(
                f"peak table '{path}', line {number}: non-numeric value in {row}."
            ) from None
        if not np.all(np.isfinite([*xyz, value])) or (volume is not None and volume <= 0):
            raise FormatError(f"peak table '{path}', line {number}: invalid value in {row}.")
        peaks.append(Peak(xyz=xyz, value=value, volume_mm3=volume, label=row.get("label", "")))
    return tuple(peaks)


def map_from_peaks(
    peaks: Sequence[Peak],
    reference: ImageLike,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    default_radius_mm: float = 6.0,
    mask: ImageLike | None = None,
) -> nib.Nifti1Image:
    """Build a statistic map from a published peak table.

    Each peak becomes an isotropic Gaussian blob of height ``peak.value`` whose
    width is chosen so that the blob exceeds ``threshold`` inside a sphere of the
    reported cluster volume: radius ``r = (3 V / 4 pi)^(1/3)`` and
    ``sigma = r / sqrt(2 ln(|value| / threshold))``. Without a volume,
    ``default_radius_mm`` is used. Blobs combine by taking, per voxel, the value
    of largest magnitude, so every peak keeps its exact height and location.

    Parameters
    ----------
    peaks : sequence of Peak
        Coordinates in the world frame of ``reference`` (mm).
    reference : str, os.PathLike or nibabel image
        Defines the output grid (e.g. the MNI brain mask).
    threshold : float
        The study's cluster-forming threshold that the volumes refer to.
    default_radius_mm : float
        Radius used for peaks without a volume.
    mask : image, optional
        Voxels outside this mask (e.g. the brain) are set to 0; must share the
        reference grid.

    Returns
    -------
    nibabel.Nifti1Image
        Float32 map on the reference grid.

    Raises
    ------
    ActivationError
        No peaks, a peak not above the threshold, or a peak outside the grid.
    """
    ref = check_img(reference, name="reference", require_signal=False)
    if not peaks:
        raise ActivationError("map_from_peaks needs at least one peak.")
    if threshold <= 0:
        raise ActivationError(f"threshold must be positive, got {threshold}.")
    shape = ref.shape[:3]
    ijk = np.indices(shape, dtype=np.float64).reshape(3, -1).T
    world = voxel_to_world(ref.affine, ijk)
    best = np.zeros(world.shape[0], dtype=np.float64)
    for peak in peaks:
        centre = as_points_array(peak.xyz, name=f"peak {peak.label!r}")[0]
        magnitude = abs(peak.value)
        if magnitude <= threshold:
            raise ActivationError(
                f"peak {peak.label!r} has value {peak.value}, not beyond the threshold "
                f"{threshold}; it cannot define a supra-threshold cluster."
            )
        vox = world_to_voxel(ref.affine, centre)[0]
        if np.any(vox < -0.5) or np.any(vox > np.array(shape) - 0.5):
            raise ActivationError(
                f"peak {peak.label!r} at {centre.tolist()} mm lies outside the reference grid."
            )
        if peak.volume_mm3 is not None:
            radius = (3.0 * peak.volume_mm3 / (4.0 * np.pi)) ** (1.0 / 3.0)
        else:
            radius = default_radius_mm
        sigma = radius / np.sqrt(2.0 * np.log(magnitude / threshold))
        d2 = np.sum((world - centre) ** 2, axis=1)
        blob = peak.value * np.exp(-d2 / (2.0 * sigma**2))
        replace = np.abs(blob) > np.abs(best)
        best[replace] = blob[replace]
    data = best.reshape(shape)
    if mask is not None:
        mask_img = check_img(mask, name="mask", require_signal=True)
        if not same_grid(mask_img, ref):
            raise SpaceError(
                "map_from_peaks: the mask must share the reference grid (shape and affine); "
                "resample it first (tmsplan.io.images.resample_to_img, nearest)."
            )
        data = np.where(mask_img.get_fdata() > 0, data, 0.0)
    return img_on_grid(data.astype(np.float32), ref, default_code=4)


def mni_map_from_peak_table(
    path: str | os.PathLike, *, threshold: float = DEFAULT_THRESHOLD
) -> tuple[nib.Nifti1Image, dict]:
    """Build an MNI152 group map (2 mm, brain-masked) from a peak-table file.

    Parameters
    ----------
    path : str or os.PathLike
        Peak table (see :func:`read_peak_table`), coordinates in MNI152 mm.
    threshold : float
        The threshold the table's cluster volumes refer to.

    Returns
    -------
    img : nibabel.Nifti1Image
        Map on the bundled MNI152NLin6Asym 2 mm grid, zero outside the brain.
    provenance : dict
        JSON-ready: table path, sha256, number of peaks, construction rule.
    """
    peaks = read_peak_table(path)
    brain = load_mni_brain_mask(2)
    img = map_from_peaks(peaks, brain, threshold=threshold, mask=brain)
    provenance = {
        "peak_table": str(Path(path).resolve()),
        "sha256": file_sha256(path),
        "n_peaks": len(peaks),
        "construction": (
            "one Gaussian blob per peak, height = peak z, width such that the blob exceeds "
            f"z={threshold:g} over a sphere of the reported cluster volume; per voxel the "
            "value of largest magnitude; MNI152NLin6Asym 2 mm grid masked to the brain"
        ),
    }
    return img, provenance


@dataclass(frozen=True)
class ActivationTarget:
    """The cortical target chosen from an activation map inside an ROI.

    Attributes
    ----------
    target : Points
        ``(1, 3)`` mm, the chosen voxel centre, in the map's world frame.
    peak : Points
        ``(1, 3)`` mm, the cluster's peak voxel centre.
    peak_value : float
        Map value at the peak (signed).
    target_value : float
        Map value at the target voxel.
    cluster_size_voxels : int
    cluster_volume_mm3 : float
    n_clusters : int
        Number of supra-threshold clusters inside the ROI.
    threshold : float
    sign : str
    rule : str
    notes : tuple of str
    extra : dict
        Strategy-specific details merged into :meth:`describe`.
    candidates : tuple of dict
        Ranked alternatives, best first: ``target_mm`` (map frame), ``value``,
        ``cluster_size_voxels``, ``score``, ``why``.
    """

    target: Points
    peak: Points
    peak_value: float
    target_value: float
    cluster_size_voxels: int
    cluster_volume_mm3: float
    n_clusters: int
    threshold: float
    sign: str
    rule: str
    notes: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict)
    candidates: tuple[dict, ...] = ()

    def describe(self) -> dict:
        """JSON-ready summary for the record's ``activation`` entry."""
        return {
            **self.extra,
            "threshold": self.threshold,
            "sign": self.sign,
            "rule": self.rule,
            "peak_value": round(self.peak_value, 6),
            "peak_mm": np.round(self.peak.xyz[0], 6).tolist(),
            "target_value": round(self.target_value, 6),
            "cluster_size_voxels": self.cluster_size_voxels,
            "cluster_volume_mm3": round(self.cluster_volume_mm3, 3),
            "n_clusters_in_roi": self.n_clusters,
            "connectivity": 26,
        }


def _signed(data: np.ndarray, sign: str) -> np.ndarray:
    if sign == "positive":
        return data
    if sign == "negative":
        return -data
    if sign == "absolute":
        return np.abs(data)
    raise ActivationError(f"sign must be 'positive', 'negative' or 'absolute', got {sign!r}.")


def _extent_filter(above: np.ndarray, affine: np.ndarray, min_cluster_mm3: float) -> np.ndarray:
    """Keep the supra-threshold voxels whose whole-map cluster is at least ``min_cluster_mm3``.

    Clusters are formed on the whole map (26-connectivity), before any ROI, as a
    published cluster-extent threshold is.
    """
    if not min_cluster_mm3:
        return above
    if not np.isfinite(min_cluster_mm3) or min_cluster_mm3 < 0:
        raise ActivationError(f"--min-cluster-mm3 must be >= 0, got {min_cluster_mm3!r}.")
    from scipy import ndimage

    labels, n = ndimage.label(above, structure=CLUSTER_CONNECTIVITY)
    if n == 0:
        return above
    voxel_mm3 = float(abs(np.linalg.det(affine[:3, :3])))
    sizes = np.bincount(labels.ravel())[1:] * voxel_mm3
    keep = np.concatenate([[False], sizes >= min_cluster_mm3])
    return keep[labels]


def statistical_threshold(
    activation: ImageLike,
    *,
    height_control: str,
    alpha: float | None = None,
    sign: Sign = "positive",
) -> tuple[float, dict]:
    """Voxel-level threshold of a z map by FPR, FDR or Bonferroni, computed by nilearn.

    ``nilearn.glm.threshold_stats_img`` over the map's non-zero voxels (NaN read
    as 0): ``sign="absolute"`` is two-sided (alpha split over both tails);
    ``"positive"`` is one-sided on the map, ``"negative"`` one-sided on the
    negated map.

    Parameters
    ----------
    activation : str, os.PathLike or nibabel image
        3-D z map.
    height_control : {"fpr", "fdr", "bonferroni"}
    alpha : float, optional
        Default :data:`DEFAULT_ALPHA` for the method.
    sign : {"positive", "negative", "absolute"}

    Returns
    -------
    threshold : float
        z threshold, applied as ``signed value > threshold``.
    info : dict
        JSON-ready: method, alpha, two_sided, n_voxels_tested, threshold, library.

    Raises
    ------
    ActivationError
        Unknown method, alpha outside (0, 1), or no voxel survives.
    """
    import warnings

    from nilearn import __version__ as nilearn_version
    from nilearn.glm import threshold_stats_img

    if height_control not in HEIGHT_CONTROLS:
        raise ActivationError(
            f"--height-control must be one of {list(HEIGHT_CONTROLS)}, got {height_control!r}."
        )
    alpha = DEFAULT_ALPHA[height_control] if alpha is None else float(alpha)
    if not 0.0 < alpha < 1.0:
        raise ActivationError(f"--alpha must be between 0 and 1, got {alpha!r}.")
    act = check_img(activation, name="activation map", nan_policy="zero")
    data = act.get_fdata()
    if sign == "negative":
        data = -data
    elif sign not in ("positive", "absolute"):
        raise ActivationError(f"sign must be 'positive', 'negative' or 'absolute', got {sign!r}.")
    mask = nib.Nifti1Image((data != 0).astype(np.uint8), act.affine)
    stat = nib.Nifti1Image(data.astype(np.float64), act.affine)
    two_sided = sign == "absolute"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nilearn's notes about future defaults
        _, threshold = threshold_stats_img(
            stat,
            mask_img=mask,
            alpha=alpha,
            height_control=height_control,
            cluster_threshold=0,
            two_sided=two_sided,
        )
    threshold = float(threshold)
    n_tested = int(np.count_nonzero(data))
    if not np.isfinite(threshold):
        raise ActivationError(
            f"no voxel of the activation map survives {height_control.upper()} at alpha "
            f"{alpha:g} ({n_tested} voxels tested); use a less strict --alpha or --threshold."
        )
    return threshold, {
        "method": height_control,
        "alpha": alpha,
        "two_sided": two_sided,
        "n_voxels_tested": n_tested,
        "voxels_tested": "non-zero voxels of the map (NaN read as 0)",
        "threshold": round(threshold, 6),
        "library": f"nilearn {nilearn_version} (nilearn.glm.threshold_stats_img)",
    }


def _peak_index(affine: np.ndarray, idx: np.ndarray, values: np.ndarray) -> int:
    """Index of the peak voxel, with ties broken in world space (not storage order).

    Thresholded or saturated maps hold many voxels at the maximum; the peak is then
    the tied voxel nearest to the tied voxels' centroid, and among equals the one
    with the smallest (x, y, z) in world mm, so every voxel order gives the same.
    """
    tied = np.flatnonzero(values >= values.max())
    if tied.size == 1:
        return int(tied[0])
    world = np.round(voxel_to_world(affine, idx[tied]), 6)
    distance = np.round(np.linalg.norm(world - world.mean(axis=0), axis=1), 6)
    order = np.lexsort((world[:, 2], world[:, 1], world[:, 0], distance))
    return int(tied[order[0]])


def select_target(
    activation: ImageLike,
    roi_mask: ImageLike,
    *,
    frame: str,
    threshold: float = DEFAULT_THRESHOLD,
    sign: Sign = "positive",
    rule: Rule = "peak",
    roi_label: str = "the ROI",
    n_candidates: int = 3,
    min_cluster_mm3: float = 0.0,
) -> ActivationTarget:
    """Choose the cortical target: activation above threshold inside the ROI.

    The ROI mask is resampled onto the map's grid with nearest-neighbour
    interpolation (explicitly; both must be in the same world frame).

    Parameters
    ----------
    activation : str, os.PathLike or nibabel image
        3-D statistic map (NaN outside the analysis mask is read as 0).
    roi_mask : str, os.PathLike or nibabel image
        Binary ROI mask (non-zero inside) in the same world frame.
    frame : str
        Name of that world frame (e.g. ``"MNI152NLin6Asym"``).
    threshold : float
        Cluster-forming threshold, applied to the signed value (see ``sign``).
    sign : {"positive", "negative", "absolute"}
        ``positive``: value > threshold; ``negative``: value < -threshold;
        ``absolute``: |value| > threshold.
    rule : {"peak", "cog"}
        Peak voxel of the largest cluster, or its centre of gravity snapped
        into the cluster.
    roi_label : str
        How to name the ROI in error messages.
    n_candidates : int
        How many other clusters (ranked like the chosen one: size, then peak)
        to return as candidates, each with the same rule applied.
    min_cluster_mm3 : float
        Cluster-extent threshold: supra-threshold clusters of the whole map
        smaller than this (mm^3) are dropped before the ROI is applied.

    Returns
    -------
    ActivationTarget

    Raises
    ------
    ActivationError
        Bad threshold, sign or rule; nothing above threshold anywhere.
    EmptyIntersectionError
        No supra-threshold voxel inside the ROI.
    """
    if rule not in ("peak", "cog"):
        raise ActivationError(f"rule must be 'peak' or 'cog', got {rule!r}.")
    if not np.isfinite(threshold) or threshold < 0:
        raise ActivationError(f"threshold must be a finite number >= 0, got {threshold}.")
    act = check_img(activation, name="activation map", nan_policy="zero")
    values = act.get_fdata()
    signed = _signed(values, sign)
    above = _extent_filter(signed > threshold, act.affine, min_cluster_mm3)
    if not above.any():
        raise ActivationError(
            f"no voxel of the activation map passes the threshold ({sign} > {threshold}; "
            f"the map's {sign} maximum is {signed.max():.3g}); lower the threshold or check "
            "the sign."
        )
    roi = resample_to_img(
        roi_mask,
        act,
        interpolation="nearest",
        source_name=roi_label,
        target_name="activation map",
    )
    inside = roi.get_fdata() > 0
    if not inside.any():
        raise EmptyIntersectionError(
            f"{roi_label} covers no voxel of the activation map's grid; the two are "
            "probably in different spaces."
        )
    candidate = above & inside
    if not candidate.any():
        best_inside = signed[inside].max()
        raise EmptyIntersectionError(
            f"no supra-threshold voxel of the activation map lies inside {roi_label} "
            f"({sign} > {threshold}; the map's best value inside it is {best_inside:.3g}); "
            "lower the threshold, choose another ROI, or check that map and ROI are in the "
            "same space."
        )
    from scipy import ndimage

    labels, n_clusters = ndimage.label(candidate, structure=CLUSTER_CONNECTIVITY)
    index = np.arange(1, n_clusters + 1)
    sizes = np.asarray(ndimage.sum_labels(candidate, labels, index=index))
    peaks = np.asarray(ndimage.maximum(signed, labels, index=index))
    # largest, then highest peak, then (full ties) the smallest world x, y, z of its
    # centre: never the label order, which depends on how the voxels are stored
    centres = voxel_to_world(act.affine, ndimage.center_of_mass(candidate, labels, index))
    centres = np.round(centres, 6)
    order = np.lexsort((centres[:, 2], centres[:, 1], centres[:, 0], -peaks, -sizes))
    chosen = int(order[0]) + 1
    cluster = labels == chosen
    idx = np.argwhere(cluster)
    cluster_signed = signed[cluster]
    peak_ijk = idx[_peak_index(act.affine, idx, cluster_signed)]
    notes = []
    if n_clusters > 1 and float(np.max(peaks)) > float(peaks[chosen - 1]):
        notes.append(
            f"{n_clusters} supra-threshold clusters in {roi_label}; the largest was chosen, "
            "although a smaller one has a higher peak."
        )
    if rule == "peak":
        target_ijk = peak_ijk
    else:
        weights = cluster_signed - threshold  # > 0 for every cluster voxel
        cog_world = voxel_to_world(act.affine, (idx * weights[:, None]).sum(0) / weights.sum())
        cluster_world = voxel_to_world(act.affine, idx)
        nearest = int(np.argmin(np.sum((cluster_world - cog_world) ** 2, axis=1)))
        target_ijk = idx[nearest]
    voxel_volume = float(abs(np.linalg.det(act.affine[:3, :3])))
    candidates = []
    for rank, k in enumerate(order[1 : 1 + max(0, int(n_candidates))], start=2):
        other = labels == int(k) + 1
        o_idx = np.argwhere(other)
        o_signed = signed[other]
        if rule == "peak":
            o_ijk = o_idx[_peak_index(act.affine, o_idx, o_signed)]
        else:
            w = o_signed - threshold
            o_cog = voxel_to_world(act.affine, (o_idx * w[:, None]).sum(0) / w.sum())
            o_world = voxel_to_world(act.affine, o_idx)
            o_ijk = o_idx[int(np.argmin(np.sum((o_world - o_cog) ** 2, axis=1)))]
        candidates.append(
            {
                "target_mm": np.round(voxel_to_world(act.affine, o_ijk)[0], 4).tolist(),
                "value": round(float(values[tuple(o_ijk)]), 6),
                "cluster_size_voxels": int(sizes[k]),
                "score": int(sizes[k]),
                "why": (
                    f"rank {rank}: a smaller supra-threshold cluster ({int(sizes[k])} voxels vs "
                    f"{int(sizes[chosen - 1])} for the chosen one; peak {float(peaks[k]):.2f})"
                ),
            }
        )
    return ActivationTarget(
        target=Points(voxel_to_world(act.affine, target_ijk), frame),
        peak=Points(voxel_to_world(act.affine, peak_ijk), frame),
        peak_value=float(values[tuple(peak_ijk)]),
        target_value=float(values[tuple(target_ijk)]),
        cluster_size_voxels=int(cluster.sum()),
        cluster_volume_mm3=float(cluster.sum()) * voxel_volume,
        n_clusters=int(n_clusters),
        threshold=float(threshold),
        sign=sign,
        rule=rule,
        notes=tuple(notes),
        candidates=tuple(candidates),
        extra={"min_cluster_mm3": float(min_cluster_mm3)} if min_cluster_mm3 else {},
    )


def select_target_depth_aware(
    activation: ImageLike,
    roi_mask: ImageLike,
    *,
    frame: str,
    depth_of: Callable[[np.ndarray], np.ndarray],
    max_depth_mm: float,
    d_half_mm: float,
    scalp_to_cortex_mm: float,
    threshold: float = DEFAULT_THRESHOLD,
    sign: Sign = "positive",
    roi_label: str = "the ROI",
    n_candidates: int = 3,
    min_cluster_mm3: float = 0.0,
) -> ActivationTarget:
    """Choose the best supra-threshold voxel in the ROI within the coil's reach.

    Every supra-threshold voxel inside the ROI gets the score

        score = value * 0.5 ** (max(0, depth - scalp_to_cortex_mm) / d_half_mm)

    (``value`` in the chosen sign, ``depth`` = distance to the scalp): the map
    value discounted by the coil's half-value depth below the cortex. Voxels
    deeper than ``max_depth_mm`` are out of reach and never chosen while a
    reachable one exists; without any, the shallowest voxel is returned (the
    plan then reports it unreachable). Ties: the voxel with the smallest world
    x, y, z.

    Parameters
    ----------
    activation, roi_mask, frame, threshold, sign, roi_label
        As for :func:`select_target`.
    depth_of : callable
        ``(n, 3)`` points in ``frame`` (mm) -> ``(n,)`` depth below the scalp (mm).
    max_depth_mm : float
        The coil's reach (or ``--max-depth``).
    d_half_mm : float
        The coil's half-value depth (mm).
    scalp_to_cortex_mm : float
        Depth above which the field counts as undiminished.
    n_candidates : int
        How many other clusters to return as candidates (each by its best
        score, reachable ones first).
    min_cluster_mm3 : float
        Cluster-extent threshold on the whole map (see :func:`select_target`).

    Returns
    -------
    ActivationTarget
        ``rule="depth-aware"``; ``extra`` holds the trade-off (chosen and
        strongest voxel, their values, depths and scores) and the scoring rule.

    Raises
    ------
    ActivationError, EmptyIntersectionError
        As for :func:`select_target`.
    """
    if not np.isfinite(threshold) or threshold < 0:
        raise ActivationError(f"threshold must be a finite number >= 0, got {threshold}.")
    act = check_img(activation, name="activation map", nan_policy="zero")
    values = act.get_fdata()
    signed = _signed(values, sign)
    roi = resample_to_img(
        roi_mask, act, interpolation="nearest", source_name=roi_label, target_name="activation map"
    )
    above = _extent_filter(signed > threshold, act.affine, min_cluster_mm3)
    candidate = above & (roi.get_fdata() > 0)
    if not candidate.any():
        raise EmptyIntersectionError(
            f"no supra-threshold voxel of the activation map lies inside {roi_label} "
            f"({sign} > {threshold}); lower --threshold or choose another ROI."
        )
    idx = np.argwhere(candidate)
    world = voxel_to_world(act.affine, idx)
    value = signed[candidate]
    depth = np.asarray(depth_of(world), dtype=np.float64)
    factor = 0.5 ** (np.maximum(0.0, depth - scalp_to_cortex_mm) / d_half_mm)
    score = value * factor
    reachable = depth <= max_depth_mm
    rounded = np.round(world, 6)
    if reachable.any():
        pool = np.flatnonzero(reachable)
        keys = (rounded[pool, 2], rounded[pool, 1], rounded[pool, 0], -np.round(score[pool], 9))
        best = int(pool[np.lexsort(keys)[0]])
    else:
        keys = (rounded[:, 2], rounded[:, 1], rounded[:, 0], np.round(depth, 6))
        best = int(np.lexsort(keys)[0])
    strongest = int(np.lexsort((rounded[:, 2], rounded[:, 1], rounded[:, 0], -value))[0])
    from scipy import ndimage

    labels, n_clusters = ndimage.label(candidate, structure=CLUSTER_CONNECTIVITY)
    cluster = labels == labels[tuple(idx[best])]
    voxel_label = labels[tuple(idx.T)]
    alternatives = []
    for k in range(1, n_clusters + 1):
        if k == voxel_label[best]:
            continue
        members = np.flatnonzero(voxel_label == k)
        pool = members[reachable[members]] if reachable[members].any() else members
        keys = (rounded[pool, 2], rounded[pool, 1], rounded[pool, 0], -np.round(score[pool], 9))
        alternatives.append(int(pool[np.lexsort(keys)[0]]))
    alternatives.sort(key=lambda i: (not reachable[i], -round(float(score[i]), 9), *rounded[i]))
    voxel_volume = float(abs(np.linalg.det(act.affine[:3, :3])))

    def describe_voxel(i: int) -> dict:
        return {
            "mm": np.round(world[i], 4).tolist(),
            "value": round(float(values[tuple(idx[i])]), 6),
            "depth_mm": round(float(depth[i]), 3),
            "score": round(float(score[i]), 6),
            "reachable": bool(reachable[i]),
        }

    notes = []
    if not reachable.any():
        why = (
            f"no supra-threshold voxel of {roi_label} is within the {max_depth_mm:g} mm reach; "
            "the shallowest one was taken"
        )
        notes.append(f"depth-aware: {why}.")
    elif strongest == best:
        why = "the strongest supra-threshold voxel is also within reach and scores best"
    else:
        s_val, s_depth = float(value[strongest]), float(depth[strongest])
        c_val, c_depth = float(value[best]), float(depth[best])
        where = (
            f"beyond the {max_depth_mm:g} mm reach"
            if not reachable[strongest]
            else f"scored {float(score[strongest]):.2f} after the depth discount"
        )
        why = (
            f"the strongest activation ({s_val:.2f} at {s_depth:.1f} mm below the scalp) is "
            f"{where}; the chosen site ({c_val:.2f} at {c_depth:.1f} mm, score "
            f"{float(score[best]):.2f}) is the best value-for-depth within reach"
        )
        notes.append(f"depth-aware: {why}.")
    return ActivationTarget(
        target=Points(world[best], frame),
        peak=Points(world[strongest], frame),
        peak_value=float(values[tuple(idx[strongest])]),
        target_value=float(values[tuple(idx[best])]),
        cluster_size_voxels=int(cluster.sum()),
        cluster_volume_mm3=float(cluster.sum()) * voxel_volume,
        n_clusters=int(n_clusters),
        threshold=float(threshold),
        sign=sign,
        rule="depth-aware",
        notes=tuple(notes),
        candidates=tuple(
            {
                "target_mm": np.round(world[i], 4).tolist(),
                "value": round(float(values[tuple(idx[i])]), 6),
                "cluster_size_voxels": int((voxel_label == voxel_label[i]).sum()),
                "score": round(float(score[i]), 6),
                "why": (
                    f"rank {rank}: value {float(value[i]):.2f} at {float(depth[i]):.1f} mm "
                    f"({'within' if reachable[i] else 'beyond'} reach), score "
                    f"{float(score[i]):.2f} vs {float(score[best]):.2f} for the chosen site"
                ),
            }
            for rank, i in enumerate(alternatives[: max(0, int(n_candidates))], start=2)
        ),
        extra={
            "strategy": "depth-aware",
            "scoring_rule": (
                f"score = value x 0.5 ** (max(0, depth - {scalp_to_cortex_mm:g} mm) / "
                f"{d_half_mm:g} mm), among supra-threshold ROI voxels within the "
                f"{max_depth_mm:g} mm reach"
            ),
            "trade_off": why,
            "chosen": describe_voxel(best),
            "strongest": describe_voxel(strongest),
            "n_voxels_scored": int(len(value)),
            "min_cluster_mm3": float(min_cluster_mm3),
            "n_voxels_within_reach": int(reachable.sum()),
        },
    )
