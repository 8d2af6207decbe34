"""Trust in an MNI -> T1 transform: does the carried MNI head look like the T1.

Design notes: ``docs/transforms.md``, section ``tmsplan.xfm.check``.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from nibabel.affines import apply_affine

from tmsplan.errors import RegistrationError, TmsplanError
from tmsplan.io.images import ImageLike, check_img, voxel_to_world, world_to_voxel
from tmsplan.xfm.headfit import (
    FIT_GRID_MM,
    FIT_MIN_HEAD_DICE,
    _mni_masks,
    _sample_mask,
    head_mask,
    judge_fit,
    overlaps_on_grid,
    t1_fit_grid,
)
from tmsplan.xfm.warps import map_steps

if TYPE_CHECKING:
    from tmsplan.xfm.transforms import MniToSubject

__all__ = [
    "normalized_mutual_information",
    "transform_fit",
    "fit_problems",
    "check_transform_fit",
    "choose_matrix_kind",
    "MIN_NMI",
    "MIN_CORRELATION",
    "MIN_BRAIN_CONTRAST",
    "ALIGNED_RANGES",
    "FIT_GRID_MM",
]

MIN_NMI = 1.09
"""Smallest normalised mutual information (32 bins) of T1 and carried MNI head.
Aligned real heads 1.145-1.19 (1.13-1.24 seen on others), synthetic patients
1.28-1.59; transforms 10 mm / 20 degrees off or worse 1.04-1.10."""

MIN_CORRELATION = 0.35
"""Smallest correlation of T1 and carried MNI head intensities in the head.
Aligned real heads 0.68-0.73; 10 mm / 20 degrees off or worse -0.02-0.47."""

MIN_BRAIN_CONTRAST = 0.37
"""Smallest brain contrast (1 - shell / brain medians, see the module text).
Aligned real heads 0.55-0.58; 10 mm / 20 degrees off or worse 0.14-0.46."""

ALIGNED_RANGES = {
    "nmi": (1.145, 1.19),
    "correlation": (0.68, 0.73),
    "brain_contrast": (0.55, 0.58),
    "head_dice": (0.96, 0.97),
}
"""What tmsplan's own registration scored on the real calibration heads."""

_LINES = (
    ("nmi", "NMI", MIN_NMI),
    ("correlation", "intensity correlation", MIN_CORRELATION),
    ("brain_contrast", "brain contrast", MIN_BRAIN_CONTRAST),
    ("head_dice", "head Dice", FIT_MIN_HEAD_DICE),
)

# the two readings of a plain-text 4x4 matrix, and when they give the same targets
_MATRIX_KINDS = ("fsl", "affine")
_SAME_READING_MM = 2.0


def normalized_mutual_information(a: np.ndarray, b: np.ndarray, bins: int = 32) -> float:
    """Normalised mutual information ``(H(a) + H(b)) / H(a, b)`` of paired samples.

    :func:`skimage.metrics.normalized_mutual_information`, with tmsplan's answer
    for samples too small or flat to measure.

    Parameters
    ----------
    a, b : (n,) float
        Paired intensities (any shapes with the same number of values).
    bins : int
        Histogram bins per image.

    Returns
    -------
    float
        1 (independent) to 2 (one determines the other); 1 for fewer than 10
        values or a constant sample.

    Examples
    --------
    >>> x = np.arange(100.0)
    >>> round(normalized_mutual_information(x, 2 * x), 2)
    2.0
    """
    from skimage.metrics import normalized_mutual_information as skimage_nmi

    a = np.asarray(a, dtype=np.float64).reshape(-1)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    if a.size < 10 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return 1.0
    return float(skimage_nmi(a, b, bins=bins))


@lru_cache(maxsize=2)
def _template(resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """Intensities (read-only) and affine of the bundled MNI head."""
    from tmsplan.io.bundled import load_mni_head

    img = load_mni_head(resolution)
    data = np.asarray(img.dataobj, dtype=np.float64)
    data.setflags(write=False)
    affine = np.array(img.affine, dtype=np.float64)
    affine.setflags(write=False)
    return data, affine


def carried_nmi(steps: tuple, data: np.ndarray, affine: np.ndarray, resolution: int = 2) -> float:
    """NMI of a coarse T1 and the MNI head carried onto it (registration's figure).

    Parameters
    ----------
    steps : tuple of (4, 4) float64 arrays and DisplacementField
        T1w -> MNI point steps.
    data : (X, Y, Z) float
        T1 intensities on a coarse grid (:func:`tmsplan.xfm.headfit.downsample`).
    affine : (4, 4) float
        Voxel-to-world (RAS+ mm) matrix of ``data``.
    resolution : {1, 2}
        Voxel size of the bundled MNI head sampled.

    Returns
    -------
    float
        :func:`normalized_mutual_information` in the union of the T1's head
        mask and the carried MNI head.
    """
    mni_xyz = _carry_grid(steps, data.shape, affine)
    return _intensity_scores(mni_xyz, data, head_mask(data), resolution)["nmi"]


def _carry_grid(steps: tuple, shape: tuple, affine: np.ndarray) -> np.ndarray:
    """Voxel centres of a grid (C order) carried into MNI, (n, 3) mm."""
    return map_steps(steps, voxel_to_world(affine, np.indices(shape).reshape(3, -1).T))


def _intensity_scores(
    mni_xyz: np.ndarray, data: np.ndarray, t1_mask: np.ndarray, resolution: int = 2
) -> dict:
    from scipy import ndimage

    template, template_affine = _template(resolution)
    _, mni_brain, mni_affine = _mni_masks()
    vox = world_to_voxel(template_affine, mni_xyz)
    carried = ndimage.map_coordinates(template, vox.T, order=1, cval=0.0)
    flat = data.reshape(-1)
    in_head = t1_mask.reshape(-1)
    union = in_head | (carried > 0)
    nmi = normalized_mutual_information(flat[union], carried[union])
    both = in_head & (carried > 0)
    a, b = flat[both], carried[both]
    correlation = (
        float(np.corrcoef(a, b)[0, 1]) if a.size >= 10 and np.ptp(a) > 0 and np.ptp(b) > 0 else 0.0
    )
    brain_flat, _ = _sample_mask(mni_brain, mni_affine, mni_xyz)
    brain = brain_flat.reshape(data.shape)
    inner = ndimage.binary_erosion(brain, iterations=1)
    shell = ndimage.binary_dilation(brain, iterations=1) & ~brain
    contrast = 0.0
    if inner.sum() >= 10 and shell.sum() >= 10:
        centre = float(np.median(data[inner]))
        if centre > 0:
            contrast = 1.0 - float(np.median(data[shell])) / centre
    return {"nmi": nmi, "correlation": correlation, "brain_contrast": contrast}


def transform_fit(mni_to_subject: MniToSubject, t1: ImageLike) -> dict:
    """Measure how well an MNI -> T1 transform fits a T1 (intensities and overlaps).

    Parameters
    ----------
    mni_to_subject : MniToSubject
    t1 : str, os.PathLike or nibabel image
        The patient's T1 with scalp.

    Returns
    -------
    dict
        ``nmi``, ``correlation``, ``brain_contrast`` (see the module text), the
        keys of :func:`tmsplan.xfm.headfit.head_fit` (``head_dice``,
        ``reversed_head_dice``, ``brain_dice``, ``t1_head_volume_l``,
        ``coverage``) and ``grid_mm``; no timing, so records of re-runs are identical.
    """
    img = check_img(t1, name="t1")
    with _one_blas_thread():
        data, affine, t1_mask = t1_fit_grid(img)
        return _fit_on_grid(mni_to_subject.steps, data, affine, t1_mask)


def _one_blas_thread():
    """Context limiting BLAS to one thread.

    The check multiplies (n, 3) points by 3x3 matrices, which gain nothing from
    threads; a multithreaded BLAS on a busy machine made it 5x slower (3.1 s
    instead of 0.55 s on a 256^3 T1).
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def _fit_on_grid(steps, data, affine, t1_mask) -> dict:
    with _one_blas_thread():
        return _fit_on_grid_unlimited(steps, data, affine, t1_mask)


def _fit_on_grid_unlimited(steps, data, affine, t1_mask) -> dict:
    mni_xyz = _carry_grid(steps, data.shape, affine)
    scores = overlaps_on_grid(steps, affine, t1_mask, mni_xyz=mni_xyz)
    intensity = _intensity_scores(mni_xyz, data, t1_mask)
    scores.update({k: round(float(v), 4) for k, v in intensity.items()})
    scores["grid_mm"] = round(float(np.sqrt((affine[:3, :3] ** 2).sum(axis=0)).mean()), 2)
    return scores


def fit_problems(scores: dict) -> list[str]:
    """The figures of :func:`transform_fit` that are below their refusal lines.

    Parameters
    ----------
    scores : dict
        Output of :func:`transform_fit`.

    Returns
    -------
    list of str
        One phrase per figure below its line, e.g. ``"NMI 1.05 < 1.09 (aligned
        heads 1.15-1.19)"``; empty when the transform fits.
    """
    problems = []
    for key, label, line in _LINES:
        value = float(scores[key])
        if value < line:
            low, high = ALIGNED_RANGES[key]
            problems.append(
                f"{label} {value:.2f} < {line:.2f} (aligned heads {low:.2f}-{high:.2f})"
            )
    if float(scores["coverage"]) < 0.5:
        problems.append(
            f"only {float(scores['coverage']):.0%} of the T1 head maps into the template"
        )
    return problems


def _refusal_text(what: str, problems: list[str]) -> str:
    return (
        f"{what} does not fit this T1: {'; '.join(problems)}; transforms that score like "
        "this were 10 mm or 20 degrees off or worse on the calibration heads (made for "
        "another image or subject, wrongly oriented, or a matrix read as the wrong kind)."
    )


def check_transform_fit(
    mni_to_subject: MniToSubject,
    t1: ImageLike,
    *,
    what: str = "transform",
    accept_poor_fit: bool = False,
) -> tuple[MniToSubject, str | None]:
    """Judge an MNI -> T1 transform against the T1; refuse it when it fits poorly.

    Parameters
    ----------
    mni_to_subject : MniToSubject
    t1 : str, os.PathLike or nibabel image
        The patient's T1 with scalp.
    what : str
        Names the transform in messages.
    accept_poor_fit : bool, keyword-only
        Use a poorly fitting transform anyway and return a loud warning
        instead of raising. A T1 -> MNI transform given for MNI -> T1 or a
        skull-stripped T1 are refused all the same.

    Returns
    -------
    mni_to_subject : MniToSubject
        The same transform with :attr:`~tmsplan.xfm.transforms.MniToSubject.fit`
        set to the :func:`transform_fit` figures plus ``thresholds``,
        ``verdict`` (``"fits"`` or ``"poor fit accepted by override"``) and
        ``problems``.
    warning : str or None
        The warning to put into the plan record when a poor fit was accepted.

    Raises
    ------
    RegistrationError
        The transform fits poorly (see :func:`fit_problems`) and
        ``accept_poor_fit`` is False; or it is reversed or the T1 is
        skull-stripped (see :func:`tmsplan.xfm.headfit.judge_fit`).
    """
    scores = transform_fit(mni_to_subject, t1)
    judge_fit(scores, what=what, check_overlap=False)
    problems = fit_problems(scores)
    fit = {
        **scores,
        "thresholds": {key: line for key, _, line in _LINES},
        "verdict": "fits" if not problems else "poor fit accepted by override",
        "problems": problems,
    }
    if not problems:
        return replace(mni_to_subject, fit=fit), None
    text = _refusal_text(what, problems)
    if not accept_poor_fit:
        raise RegistrationError(
            f"{text} Give the transform computed for this T1, or run the built-in "
            "registration (--register), or use it anyway with --accept-transform "
            "(accept_poor_fit=True) after checking the overlay."
        )
    warning = (
        f"!!! TRANSFORM ACCEPTED DESPITE A POOR FIT (--accept-transform): {text} The target "
        "may be centimetres from where it should be: check the MNI-to-T1 overlay before use."
    )
    return replace(mni_to_subject, fit={**fit, "warning": warning}), warning


_CLEARLY_BETTER = {"nmi": 0.1, "correlation": 0.2}
"""One reading of an ambiguous matrix beats the other when it is better by this much on both."""


def _clearly_better(fsl: dict, affine: dict) -> str | None:
    """``"fsl"``/``"affine"`` when that reading's similarity is clearly higher, else None."""
    for first, second, name in ((fsl, affine, "fsl"), (affine, fsl, "affine")):
        if all(first[k] - second[k] >= margin for k, margin in _CLEARLY_BETTER.items()):
            return name
    return None


def choose_matrix_kind(
    path: str | Path,
    t1: ImageLike,
    moving: ImageLike,
    *,
    src_frame: str | None = None,
) -> tuple[MniToSubject, dict]:
    """Read a plain-text 4x4 matrix file both as FSL FLIRT and as plain RAS; keep the one that fits.

    Parameters
    ----------
    path : str or pathlib.Path
        A text file of 4 lines of 4 numbers (any extension: ``.mat``, ``.txt``,
        ``.fsl``, ...).
    t1 : str, os.PathLike or nibabel image
        The patient's T1 (FLIRT's ``-ref``).
    moving : str, os.PathLike or nibabel image
        The MNI image FLIRT was run on (its ``-in``).
    src_frame : str or None
        As in :func:`tmsplan.xfm.transforms.load_mni_to_subject`.

    Returns
    -------
    mni_to_subject : MniToSubject
        The fitting reading, with its :func:`check_transform_fit` figures in
        ``fit`` (and ``fit["kind_choice"]``).
    choice : dict
        ``kind`` chosen (``"fsl"`` or ``"affine"``), ``why`` (one sentence) and
        per reading its figures or the reason it could not be read.

    Raises
    ------
    RegistrationError
        Neither reading fits, or both fit and put targets more than 2 mm
        apart: the message names ``--xfm-kind`` (``kind=``).
    """
    from tmsplan.xfm.transforms import load_mni_to_subject

    path = Path(path)
    img = check_img(t1, name="t1")
    with _one_blas_thread():
        data, affine, t1_mask = t1_fit_grid(img)
    readings: dict = {}
    per_kind: dict = {}
    for kind in _MATRIX_KINDS:
        try:
            xfm = load_mni_to_subject(
                path, kind=kind, reference=img, moving=moving, src_frame=src_frame, check_fit=False
            )
        except TmsplanError as exc:
            per_kind[kind] = {"readable": False, "reason": str(exc)}
            continue
        scores = _fit_on_grid(xfm.steps, data, affine, t1_mask)
        problems = fit_problems(scores)
        readings[kind] = (xfm, scores, problems)
        per_kind[kind] = {"readable": True, "fits": not problems, "problems": problems, **scores}
    fitting = [k for k, (_, _, problems) in readings.items() if not problems]
    names = {"fsl": "an FSL FLIRT matrix", "affine": "a plain RAS+ mm matrix"}

    def summary(kind: str) -> str:
        if kind not in readings:
            return f"as {names[kind]} it cannot be used ({per_kind[kind]['reason'][:80]})"
        _, scores, problems = readings[kind]
        state = "fits" if not problems else "does not fit"
        return (
            f"as {names[kind]} it {state} (NMI {scores['nmi']:.2f}, correlation "
            f"{scores['correlation']:.2f}, brain contrast {scores['brain_contrast']:.2f})"
        )

    both = f"{summary('fsl')}; {summary('affine')}"
    if len(fitting) == 2:
        probe = np.array([[-38.0, 44.0, 26.0], [-37.0, -21.0, 58.0], [-24.0, 64.0, 0.0]])
        a = readings["fsl"][0].matrix
        b = readings["affine"][0].matrix
        gap = float(np.linalg.norm(apply_affine(a, probe) - apply_affine(b, probe), axis=1).max())
        better = _clearly_better(readings["fsl"][1], readings["affine"][1])
        if gap > _SAME_READING_MM and better is not None:
            chosen = better
            why = (
                f"both readings pass the fit lines but read as {names[chosen]} it fits clearly "
                f"better (targets {gap:.1f} mm apart): {both}"
            )
        elif gap > _SAME_READING_MM:
            raise RegistrationError(
                f"'{path.name}' is a 4x4 matrix that fits this T1 both ways and the two "
                f"readings put targets {gap:.1f} mm apart ({both}); say which it is with "
                "--xfm-kind fsl or --xfm-kind affine (kind=)."
            )
        else:
            chosen = "fsl" if path.name.lower().endswith(".mat") else "affine"
            why = f"both readings fit and agree within {gap:.1f} mm; read as the extension says"
    elif len(fitting) == 1:
        chosen = fitting[0]
        why = f"read as {names[chosen]} because it fits only that way: {both}"
    else:
        for _, scores, _ in readings.values():
            judge_fit(scores, what=f"transform '{path.name}'", check_overlap=False)
        raise RegistrationError(
            f"'{path.name}' is a 4x4 matrix that does not fit this T1 read either way "
            f"({both}); if you know which it is, say so with --xfm-kind fsl or --xfm-kind "
            "affine (kind=) and check its fit, or run the built-in registration (--register)."
        )
    xfm, scores, _ = readings[chosen]
    choice = {"kind": chosen, "why": why, "readings": per_kind}
    fit = {
        **scores,
        "thresholds": {key: line for key, _, line in _LINES},
        "verdict": "fits",
        "problems": [],
        "kind_choice": {"kind": chosen, "why": why},
    }
    return replace(xfm, fit=fit), choice
