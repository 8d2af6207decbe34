"""Built-in registration of the bundled MNI head to a patient's T1 (ANTsPy).

Design notes: ``docs/transforms.md``, section ``tmsplan.xfm.registration``.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import nibabel as nib
import numpy as np

from tmsplan.errors import RegistrationError
from tmsplan.io.images import ImageLike, check_img
from tmsplan.io.outputs import check_writable, write_bytes
from tmsplan.spaces import MNI_FRAME, SUBJECT_FRAME
from tmsplan.xfm.check import MIN_NMI as _CHECK_MIN_NMI
from tmsplan.xfm.check import carried_nmi
from tmsplan.xfm.headfit import (
    FIT_GRID_MM,
    MIN_HEAD_VOLUME_L,
    downsample,
    head_fit,
    judge_fit,
    t1_fit_grid,
)
from tmsplan.xfm.transforms import MniToSubject, load_mni_to_subject

__all__ = [
    "RegistrationKind",
    "RegistrationResult",
    "register_mni_to_t1",
    "DEFAULT_SEED",
    "MIN_NMI",
]

RegistrationKind = Literal["affine", "nonlinear"]

DEFAULT_SEED = 20240611
"""Random seed passed to antsRegistration (metric sampling)."""

MIN_NMI = _CHECK_MIN_NMI
"""Smallest normalised mutual information (32 bins, 4 mm grid, in the head) of
T1 and warped template for a registration to count as aligned; the same line
as for given transforms (:data:`tmsplan.xfm.check.MIN_NMI`). On the
synthetic patients: aligned 1.28-1.59 (with gamma, bias field and 3-8 % noise),
a head turned by 90 degrees 1.03-1.08, pure noise 1.00; real heads 1.13-1.24.
Head-mask Dice alone does not catch a turned head (0.90): its outline is still a
blob."""

_ANTS_TYPE = {"affine": "Affine", "nonlinear": "SyN"}
_FORWARD_NAME = f"from-{MNI_FRAME}_to-{SUBJECT_FRAME}_mode-image_xfm"
_INVERSE_NAME = f"from-{SUBJECT_FRAME}_to-{MNI_FRAME}_mode-image_xfm"
_TIMEOUT_S = 3600


@dataclass(frozen=True, eq=False)
class RegistrationResult:
    """Outcome of :func:`register_mni_to_t1`.

    Attributes
    ----------
    mni_to_subject : MniToSubject
        The transform (``kind="ants-registration"``); its ``paths`` are the file
        names :meth:`save` writes.
    kind : {"affine", "nonlinear"}
    quality : Mapping
        ``head_dice`` (warped MNI head mask vs T1 head mask, 4 mm grid),
        ``reversed_head_dice``, ``brain_dice``, ``t1_head_volume_l``,
        ``coverage`` (see :func:`tmsplan.xfm.headfit.head_fit`) and ``nmi``
        (normalised mutual information of T1 and warped template, 1 to 2).
    seconds : float
        Wall time of the registration.
    settings : Mapping
        ANTs transform type, template, resolution, seed, threads, ANTsPy version.
    files : tuple of (str, bytes)
        File names and contents written by :meth:`save`.
    """

    mni_to_subject: MniToSubject
    kind: str
    quality: Mapping
    seconds: float
    settings: Mapping
    files: tuple = field(repr=False, default=())

    def save(self, folder: str | os.PathLike, *, overwrite: bool = False) -> list[Path]:
        """Write the ITK transform files into ``folder`` (created if needed).

        Affine: ``from-MNI152NLin6Asym_to-T1w_mode-image_xfm.mat`` (ITK binary,
        fixed = T1w, moving = MNI). Nonlinear: the composite ``…_xfm.h5`` and
        its inverse ``from-T1w_to-MNI152NLin6Asym_mode-image_xfm.h5``.

        Parameters
        ----------
        folder : str or os.PathLike
        overwrite : bool, keyword-only
            Replace existing files.

        Returns
        -------
        list of pathlib.Path
            Written files, the MNI -> T1w transform first.

        Raises
        ------
        OutputExistsError
            A file exists and ``overwrite`` is False (nothing is written then).
        """
        folder = Path(folder)
        targets = [folder / name for name, _ in self.files]
        for target in targets:
            check_writable(target, overwrite=overwrite)
        return [
            write_bytes(target, data, overwrite=overwrite)
            for target, (_, data) in zip(targets, self.files, strict=True)
        ]

    def describe(self) -> dict:
        """JSON-ready record: transform description, quality, timing, settings."""
        return {
            "transform": self.mni_to_subject.describe(),
            "kind": self.kind,
            "quality": dict(self.quality),
            "seconds": round(float(self.seconds), 2),
            "settings": dict(self.settings),
        }


def register_mni_to_t1(
    t1: ImageLike,
    *,
    kind: RegistrationKind = "affine",
    template_resolution: Literal[1, 2] = 2,
    seed: int = DEFAULT_SEED,
    threads: int = 1,
) -> RegistrationResult:
    """Register the bundled whole-head MNI T1 to the patient's T1.

    Parameters
    ----------
    t1 : str, os.PathLike or nibabel image
        The patient's 3-D T1 **with scalp** (not brain-extracted).
    kind : {"affine", "nonlinear"}
        ANTs ``"Affine"`` (12 parameters; default) or ``"SyN"`` (affine +
        symmetric diffeomorphic warp).
    template_resolution : {1, 2}
        Voxel size (mm) of the bundled template used, and of the T1 copy
        registered to it; 2 mm is about four times faster and is accurate to
        well under a voxel for an affine.
    seed : int
        Random seed of antsRegistration's metric sampling.
    threads : int
        ITK threads. 1 (default) makes runs bit-for-bit reproducible; more
        threads are faster but differ between runs by about 0.01 mm.

    Returns
    -------
    RegistrationResult

    Raises
    ------
    ImageError
        ``t1`` is not a valid 3-D image (e.g. 4-D).
    RegistrationError
        The T1 looks skull-stripped or cropped (head mask under
        :data:`tmsplan.xfm.headfit.MIN_HEAD_VOLUME_L` litres), its affine is
        sheared, ANTs failed, or the result does not fit the T1 (head Dice under
        :data:`tmsplan.xfm.headfit.FIT_MIN_HEAD_DICE`, or normalised mutual
        information under :data:`MIN_NMI`: a wrongly oriented head, noise).
    """
    if kind not in _ANTS_TYPE:
        raise ValueError(f"kind must be 'affine' or 'nonlinear', got {kind!r}")
    if template_resolution not in (1, 2):
        raise ValueError(f"template_resolution must be 1 or 2 (mm), got {template_resolution!r}")
    if not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    img = check_img(t1, name="t1")
    _check_orthogonal(img)
    _precheck_head(img)

    from tmsplan.io.bundled import mni_head_path

    template = mni_head_path(template_resolution)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tmsplan-reg-") as tmp:
        tmp = Path(tmp)
        fixed = tmp / "t1.nii.gz"
        affine = img.affine
        out = nib.Nifti1Image(np.asarray(img.dataobj, dtype=np.float32), affine)
        out.set_sform(affine, code=1)
        out.set_qform(affine, code=1)
        nib.save(out, fixed)
        job = {
            "fixed": str(fixed),
            "moving": str(template),
            "outprefix": str(tmp / "reg_"),
            "type_of_transform": _ANTS_TYPE[kind],
            "seed": int(seed),
            "resolution": float(template_resolution),
            "composite": kind == "nonlinear",
        }
        version = _run_worker(job, tmp, threads)
        if kind == "affine":
            files = [(f"{_FORWARD_NAME}.mat", tmp / "reg_0GenericAffine.mat")]
        else:
            files = [
                (f"{_FORWARD_NAME}.h5", tmp / "reg_Composite.h5"),
                (f"{_INVERSE_NAME}.h5", tmp / "reg_InverseComposite.h5"),
            ]
        missing = [str(p.name) for _, p in files if not p.is_file()]
        if missing:
            raise RegistrationError(
                f"ANTs finished without writing {missing}; the registration failed. "
                "Check the T1 (a head image with scalp) and try again."
            )
        loaded = load_mni_to_subject(files[0][1], kind="itk", src_frame=MNI_FRAME)
        contents = tuple((name, path.read_bytes()) for name, path in files)
    seconds = time.perf_counter() - started

    mni_to_subject = replace(
        loaded,
        kind="ants-registration",
        paths=tuple(name for name, _ in contents[:1]),
        sha256=tuple(hashlib.sha256(data).hexdigest() for _, data in contents[:1]),
    )
    quality = head_fit(mni_to_subject, img)
    quality["nmi"] = round(_nmi(mni_to_subject, img, template_resolution), 4)
    what = f"registration ({_ANTS_TYPE[kind]})"
    judge_fit(quality, what=what)
    if quality["nmi"] < MIN_NMI:
        raise RegistrationError(
            f"{what} failed: the template's anatomy does not line up with the T1 "
            f"(normalised mutual information {quality['nmi']:.3f} < {MIN_NMI}) although the "
            f"head outlines overlap (Dice {quality['head_dice']:.2f}). The T1 may be wrongly "
            "oriented (check in a viewer that the nose points anterior and the top of the "
            "head up; fix the header), not a T1-weighted head image, or pure noise. Fix the "
            "image or pass a transform made elsewhere (load_mni_to_subject)."
        )
    mni_to_subject = replace(mni_to_subject, fit=dict(quality))
    settings = {
        "tool": "ANTsPy antsRegistration",
        "antspy_version": version,
        "type_of_transform": _ANTS_TYPE[kind],
        "metric": "mattes mutual information",
        "template": template.name,
        "template_frame": MNI_FRAME,
        "template_resolution_mm": int(template_resolution),
        "fixed": "T1 (resampled to the template voxel size)",
        "moving": "bundled MNI152NLin6Asym whole-head T1",
        "seed": int(seed),
        "threads": int(threads),
    }
    return RegistrationResult(
        mni_to_subject=mni_to_subject,
        kind=kind,
        quality=quality,
        seconds=seconds,
        settings=settings,
        files=contents,
    )


# --------------------------------------------------------------------------- checks


def _check_orthogonal(img: nib.Nifti1Image) -> None:
    cols = img.affine[:3, :3] / np.linalg.norm(img.affine[:3, :3], axis=0)
    off = np.abs(cols.T @ cols - np.eye(3)).max()
    if off > 1e-3:
        raise RegistrationError(
            "t1: its affine is sheared (e.g. a gantry tilt), which ANTs/ITK images cannot "
            "represent, so a registration would be in the wrong place; reslice the T1 to a "
            "non-sheared grid first (e.g. dcm2niix's default tilt correction)."
        )


def _precheck_head(img: nib.Nifti1Image) -> None:
    """Refuse images that cannot be a head with scalp before spending time on ANTs."""
    _, affine, mask = t1_fit_grid(img)
    volume_l = float(mask.sum() * abs(np.linalg.det(affine[:3, :3])) / 1e6)
    if volume_l < MIN_HEAD_VOLUME_L:
        raise RegistrationError(
            f"t1: its head mask is only {volume_l:.2f} L, a whole head with scalp is over "
            f"{MIN_HEAD_VOLUME_L} L: the T1 looks brain-extracted (skull-stripped) or "
            "cropped. Registering the whole-head template to it would be wrong; give the "
            "T1 with skin and skull (e.g. fMRIPrep's desc-preproc_T1w, not desc-brain)."
        )


def _nmi(mni_to_subject: MniToSubject, img: nib.Nifti1Image, resolution: int) -> float:
    """Normalised mutual information on a 4 mm grid in the head (shared with the fit check)."""
    data, affine = downsample(img, FIT_GRID_MM)
    return carried_nmi(mni_to_subject.steps, data, affine, resolution)


# --------------------------------------------------------------------------- ANTs child


def _run_worker(job: dict, tmp: Path, threads: int) -> str:
    """Run :func:`_worker` in a fresh interpreter with a fixed ITK thread count."""
    job_path = tmp / "job.json"
    job_path.write_text(json.dumps(job))
    env = dict(os.environ)
    env["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = str(threads)
    code = (
        "import sys; from tmsplan.xfm.registration import _worker; "
        "_worker(sys.argv[1], int(sys.argv[2]))"
    )
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code, str(job_path), str(os.getpid())],
            env=env,
            capture_output=True,
            text=True,
            timeout=_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise RegistrationError(
            f"ANTs registration did not finish within {_TIMEOUT_S} s; check the T1 size."
        ) from None
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout or "").strip().splitlines()[-3:])
        raise RegistrationError(
            f"ANTs registration failed (exit code {proc.returncode}): {tail[:400]}. "
            "Check that the T1 is a head image and that antspyx is installed."
        )
    done = tmp / "done.json"
    if not done.is_file():
        raise RegistrationError("ANTs registration ended without reporting; it failed.")
    return str(json.loads(done.read_text()).get("antspy_version", "unknown"))


def _die_with_parent(parent_pid: int) -> None:
    """End this child process when the parent ends, even by SIGKILL."""
    try:  # Linux: the kernel sends SIGKILL when the parent dies
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGKILL))
    except (OSError, AttributeError):  # elsewhere: watch the parent

        def watch() -> None:
            while os.getppid() == parent_pid:
                time.sleep(1.0)
            os._exit(1)

        threading.Thread(target=watch, daemon=True).start()
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def _worker(job_path: str, parent_pid: int | None = None) -> None:
    """Child-process entry: run antsRegistration as described by ``job_path``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the parent ends this process
    if parent_pid is not None:
        _die_with_parent(parent_pid)
    import ants
    import ants.config

    job = json.loads(Path(job_path).read_text())
    # a fixed seed without ANTsPy's "Repro"-only deterministic mode
    ants.config.set_ants_deterministic(False, int(job["seed"]))
    fixed = ants.image_read(job["fixed"])
    res = float(job["resolution"])
    if min(fixed.spacing) < res - 1e-3:
        fixed = ants.resample_image(fixed, (res, res, res), use_voxels=False, interp_type=0)
    moving = ants.image_read(job["moving"])
    ants.registration(
        fixed=fixed,
        moving=moving,
        type_of_transform=job["type_of_transform"],
        outprefix=job["outprefix"],
        write_composite_transform=bool(job["composite"]),
    )
    done = Path(job_path).with_name("done.json")
    done.write_text(json.dumps({"antspy_version": str(ants.__version__)}))
