"""Data shipped with tmsplan: the whole-head MNI152 T1 and the craving-ROI atlas.

Design notes: ``docs/images.md``, section ``tmsplan.io.bundled``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

import nibabel as nib
import numpy as np

from tmsplan.errors import TmsplanError

__all__ = [
    "mni_head_path",
    "mni_brain_mask_path",
    "load_mni_head",
    "load_mni_brain_mask",
    "atlas_dir",
]

_PACKAGE = Path(__file__).resolve().parents[1]  # tmsplan/
_TEMPLATES = _PACKAGE / "data" / "templates"

Resolution = Literal[1, 2]


def _check_resolution(resolution: int) -> int:
    if resolution not in (1, 2):
        raise ValueError(f"resolution must be 1 or 2 (mm), got {resolution!r}")
    return int(resolution)


def mni_head_path(resolution: Resolution = 1) -> Path:
    """Path of the bundled whole-head MNI152NLin6Asym T1 (skull and scalp).

    Parameters
    ----------
    resolution : {1, 2}
        Voxel size in mm: 1 mm is 182x218x182, 2 mm is 91x109x91.
    """
    res = _check_resolution(resolution)
    return _TEMPLATES / f"tpl-MNI152NLin6Asym_res-0{res}_T1w.nii.gz"


def mni_brain_mask_path(resolution: Resolution = 1) -> Path:
    """Path of the bundled MNI152NLin6Asym brain mask on the same grid as the head."""
    res = _check_resolution(resolution)
    return _TEMPLATES / f"tpl-MNI152NLin6Asym_res-0{res}_desc-brain_mask.nii.gz"


def load_mni_head(resolution: Resolution = 1) -> nib.Nifti1Image:
    """Load the bundled whole-head MNI152NLin6Asym T1 (frame ``MNI152NLin6Asym``)."""
    return nib.load(mni_head_path(resolution))


@lru_cache(maxsize=2)
def load_mni_brain_mask(resolution: Resolution = 1) -> nib.Nifti1Image:
    """Load the bundled MNI152NLin6Asym brain mask (1 inside the brain).

    Cached: the same image object, its voxels read once into memory (read-only),
    is returned on every call; do not modify it.
    """
    proxy = nib.load(mni_brain_mask_path(resolution))
    data = np.asarray(proxy.dataobj)
    data.setflags(write=False)
    return nib.Nifti1Image(data, proxy.affine, header=proxy.header)


def atlas_dir() -> Path:
    """Folder holding tmsplan's atlas files.

    In an installed wheel the top-level ``atlases/`` folder is packaged as
    ``tmsplan/atlases``; in a source checkout it is read from the repository.
    """
    for candidate in (_PACKAGE / "atlases", _PACKAGE.parent / "atlases"):
        if candidate.is_dir():
            return candidate
    raise TmsplanError(
        "tmsplan's atlases folder is missing from the installation; reinstall tmsplan."
    )
