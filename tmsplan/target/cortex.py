"""Grey-matter targets: the tissue at a cortical target, and the move to the nearest cortex.

Design notes: ``docs/targets.md``, section ``tmsplan.target.cortex``.
"""

from __future__ import annotations

from dataclasses import dataclass

import nibabel as nib
import numpy as np

from tmsplan.head.tissue import TissueMap, snap_to_cortex, tissue_at, tissue_segmentation

__all__ = ["CortexTarget", "cortical_target", "estimate_tissue"]

_MEMO: dict = {}
_MEMO_SIZE = 4


@dataclass(frozen=True)
class CortexTarget:
    """The cortical target after the grey-matter check (world RAS+ mm of the T1).

    Attributes
    ----------
    xyz : (3,) float64
        The target, moved into grey matter when it was not (and ``snap``).
    tissue_given : str
        Tissue at the target before any move (``"grey matter"``, ``"white
        matter"``, ``"csf"``, ``"outside brain"``).
    tissue : str
        Tissue at ``xyz``.
    moved_mm : float
        Distance moved (0 when kept).
    how : str
        How the move was made (or why not), one sentence.
    """

    xyz: np.ndarray
    tissue_given: str
    tissue: str
    moved_mm: float
    how: str

    def describe(self, tissue_map: TissueMap) -> dict:
        """JSON-ready entry for the plan record (``targets[i].tissue``)."""
        return {
            "at_target": self.tissue,
            "given": self.tissue_given,
            "moved_to_grey_matter_mm": round(float(self.moved_mm), 3),
            "how": self.how,
            **tissue_map.describe(),
        }


def estimate_tissue(t1_img: nib.Nifti1Image, brain_img: nib.Nifti1Image) -> TissueMap:
    """:func:`tmsplan.head.tissue.tissue_segmentation`, computed once per T1 and mask in a process.

    Several targets planned on one head reuse the first estimate (it is
    deterministic). Keyed by the two images' voxels and affines.
    """
    import hashlib

    digest = hashlib.sha256()
    for img in (t1_img, brain_img):
        digest.update(np.ascontiguousarray(np.asarray(img.dataobj)).tobytes())
        digest.update(np.asarray(img.affine, dtype=np.float64).tobytes())
    key = digest.hexdigest()
    if key not in _MEMO:
        if len(_MEMO) >= _MEMO_SIZE:
            _MEMO.pop(next(iter(_MEMO)))
        _MEMO[key] = tissue_segmentation(t1_img, brain_img)
    return _MEMO[key]


def cortical_target(
    tissue_map: TissueMap, xyz: np.ndarray, scalp_point: np.ndarray, *, snap: bool = True
) -> CortexTarget:
    """Check the tissue at a target and move it to grey matter toward the scalp.

    Parameters
    ----------
    tissue_map : TissueMap
        Tissue labels of the T1 (:func:`estimate_tissue`).
    xyz : (3,) float
        The target, world RAS+ mm of the T1.
    scalp_point : (3,) float
        The scalp point nearest to the target: "toward the scalp" (from white
        matter the move goes to the nearest grey matter within 60 degrees of
        that direction; from CSF to the nearest grey matter).
    snap : bool
        False keeps the target where it is (the tissue is still recorded).

    Returns
    -------
    CortexTarget
    """
    xyz = np.asarray(xyz, dtype=np.float64)
    given = tissue_at(tissue_map, xyz)
    if given == "grey matter":
        return CortexTarget(xyz, given, given, 0.0, "already in grey matter")
    if not snap:
        return CortexTarget(xyz, given, given, 0.0, "kept where given (snap=False)")
    moved = snap_to_cortex(tissue_map, xyz, np.asarray(scalp_point, dtype=np.float64))
    new = np.asarray(moved.xyz, dtype=np.float64)
    return CortexTarget(new, given, tissue_at(tissue_map, new), float(moved.distance_mm), moved.how)
