"""The four 10-20 landmarks of a head: nasion, inion, left and right preauricular points.

Design notes: ``docs/clinic.md``, section ``tmsplan.head.landmarks``.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tmsplan.errors import HeadSurfaceError, TmsplanError
from tmsplan.spaces import MNI_FRAME, Points, as_points_array

if TYPE_CHECKING:  # trimesh (with scipy and networkx) is imported where it is used
    import trimesh

__all__ = [
    "LANDMARK_NAMES",
    "MNI_LANDMARKS",
    "EegError",
    "Landmarks",
    "detect_mni_landmarks",
    "carry_landmarks",
    "read_landmarks",
]

LANDMARK_NAMES = ("nasion", "inion", "lpa", "rpa")
"""The four landmarks, in this order."""

MNI_LANDMARKS = {
    "nasion": (0.0, 82.506, -44.0),
    "inion": (0.0, -113.083, -44.0),
    "lpa": (-80.975, -18.17, -54.015),
    "rpa": (82.315, -18.177, -56.004),
}
"""Landmarks of the embedded MNI152NLin6Asym head (RAS+ mm), as
:func:`detect_mni_landmarks` finds them on its scalp surface (re-derived in the
tests)."""


class EegError(TmsplanError, ValueError):
    """Landmarks, tape measures or a head surface cannot give 10-20 positions."""


@dataclass(frozen=True)
class Landmarks:
    """The four 10-20 landmarks of one head.

    Attributes
    ----------
    xyz : (4, 3) float64
        Nasion, inion, LPA, RPA (:data:`LANDMARK_NAMES` order), RAS+ mm in ``frame``.
    frame : str
        World frame of the head (``"MNI152NLin6Asym"``, ``"T1w"``).
    source : str
        How they were obtained (``"detected on the embedded MNI head"``,
        ``"carried from MNI"``, ``"user: <file>"``).
    """

    xyz: np.ndarray
    frame: str
    source: str

    def __post_init__(self) -> None:
        xyz = as_points_array(self.xyz, name="landmarks")
        if xyz.shape != (4, 3):
            raise EegError(
                f"landmarks: expected 4 points (nasion, inion, LPA, RPA), got {xyz.shape}."
            )
        xyz.setflags(write=False)
        object.__setattr__(self, "xyz", xyz)

    def as_dict(self) -> dict[str, list[float]]:
        """Landmark name -> ``[x, y, z]`` (mm, rounded to 0.001)."""
        return {n: np.round(p, 3).tolist() for n, p in zip(LANDMARK_NAMES, self.xyz, strict=False)}

    def point(self, name: str) -> np.ndarray:
        """One landmark, ``(3,)`` float64."""
        return self.xyz[LANDMARK_NAMES.index(name)]


def _project(mesh: trimesh.Trimesh, xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import trimesh

    closest, distance, faces = trimesh.proximity.closest_point(mesh, xyz)
    return np.asarray(closest), np.asarray(distance), np.asarray(faces)


def _check_mesh(mesh: Any) -> trimesh.Trimesh:
    import trimesh

    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
        raise HeadSurfaceError(
            "scalp mesh: expected a non-empty trimesh.Trimesh (ScalpSurface.mesh)."
        )
    return mesh


# --------------------------------------------------------------------------- landmarks


def detect_mni_landmarks(mesh: trimesh.Trimesh) -> Landmarks:
    """Find nasion, inion and preauricular points on the embedded MNI head's scalp.

    The rules (module docstring) use the MNI frame's anatomical axes; they are
    meant for the embedded MNI152 head (or another template in MNI space), not
    for a patient's T1 in scanner coordinates.

    Parameters
    ----------
    mesh : trimesh.Trimesh
        Scalp of an MNI-space head, RAS+ mm.

    Returns
    -------
    Landmarks
        Frame ``MNI152NLin6Asym``.

    Raises
    ------
    EegError
        The midline profile or an ear could not be found (not a whole head in MNI space).
    """
    import trimesh

    mesh = _check_mesh(mesh)
    cut = trimesh.intersections.mesh_plane(mesh, [1.0, 0.0, 0.0], [0.0, 0.0, 0.0])
    pts = np.asarray(cut, dtype=np.float64).reshape(-1, 3)
    if len(pts) < 20:
        raise EegError("no midline (x = 0) profile on this head; is it in MNI space?")
    front = _profile(pts[pts[:, 1] > 0], axis=1, sign=1.0)
    back = _profile(pts[pts[:, 1] < 0], axis=1, sign=-1.0)
    # nasion: deepest point below the convex hull of the face profile, above the nose tip
    z, y = front[:, 0], front[:, 1]
    tip = int(np.argmax(y))
    hull = _upper_hull(z, y)
    depth = hull - y
    depth[: tip + 1] = -np.inf
    k = int(np.argmax(depth))
    if not np.isfinite(depth[k]) or depth[k] <= 0.5:
        raise EegError("no nasion (concavity between nose and forehead) on the midline profile.")
    nasion = np.array([0.0, y[k], z[k]])
    zb, yb = back[:, 0], back[:, 1]
    inion = np.array([0.0, float(np.interp(nasion[2], zb, yb)), nasion[2]])
    lpa = _tragus(mesh, nasion, inion, side=-1.0)
    rpa = _tragus(mesh, nasion, inion, side=1.0)
    xyz = np.array([nasion, inion, lpa, rpa])
    return Landmarks(np.round(xyz, 3), MNI_FRAME, "detected on the embedded MNI head")


def _profile(points: np.ndarray, *, axis: int, sign: float, step: float = 1.0) -> np.ndarray:
    """Outermost ``axis`` value (times ``sign``) per ``step`` mm of height, ``(k, 2)``."""
    bins = np.round(points[:, 2] / step).astype(int)
    rows = []
    for b in np.unique(bins):
        vals = points[bins == b, axis]
        rows.append((b * step, vals.max() if sign > 0 else vals.min()))
    return np.array(rows, dtype=np.float64)


def _upper_hull(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The upper convex hull of points (x sorted ascending) evaluated at each x."""
    hull: list[int] = []
    for i in range(len(x)):
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            cross = (x[b] - x[a]) * (y[i] - y[a]) - (y[b] - y[a]) * (x[i] - x[a])
            if cross >= 0:
                hull.pop()
            else:
                break
        hull.append(i)
    return np.interp(x, x[hull], y[hull])


def _tragus(
    mesh: trimesh.Trimesh, nasion: np.ndarray, inion: np.ndarray, *, side: float
) -> np.ndarray:
    """The skin crest in front of the ear canal on one side (x < 0: ``side`` = -1)."""
    import trimesh
    from scipy import ndimage

    length = nasion[1] - inion[1]
    y_lo, y_hi = inion[1] + 0.25 * length, inion[1] + 0.65 * length
    step = 2.0
    ys = np.arange(y_lo, y_hi + step, step)
    zs = np.arange(nasion[2] - 20.0, nasion[2] + 20.0 + step, step)
    height = np.full((len(zs), len(ys)), np.nan)
    for i, z in enumerate(zs):
        cut = trimesh.intersections.mesh_plane(mesh, [0.0, 0.0, 1.0], [0.0, 0.0, z])
        pts = np.asarray(cut, dtype=np.float64).reshape(-1, 3)
        pts = pts[side * pts[:, 0] > 0]
        if len(pts) == 0:
            continue
        cols = np.round((pts[:, 1] - y_lo) / step).astype(int)
        ok = (cols >= 0) & (cols < len(ys))
        for c in np.unique(cols[ok]):
            height[i, c] = np.max(side * pts[ok][cols[ok] == c, 0])
    if np.isnan(height).mean() > 0.5:
        raise EegError("the ear region is missing from this head surface; is it in MNI space?")
    filled = np.where(np.isnan(height), np.nanmax(height), height)
    size = int(round(24.0 / step)) | 1
    disc = (
        np.hypot(*np.mgrid[-(size // 2) : size // 2 + 1, -(size // 2) : size // 2 + 1]) <= size // 2
    )
    closed = ndimage.grey_closing(filled, footprint=disc)
    pit = np.unravel_index(int(np.argmax(closed - filled)), filled.shape)
    row = filled[pit[0]]
    col = pit[1]
    while col + 1 < len(row) and row[col + 1] >= row[col]:
        col += 1
    point = np.array([side * row[col], ys[col], zs[pit[0]]])
    closest, _, _ = _project(mesh, point[None])
    return closest[0]


def carry_landmarks(
    mni_to_subject: Any, landmarks_mni: Mapping[str, Sequence[float]] | None = None
) -> Landmarks:
    """Carry MNI landmarks into a patient's T1 frame (not yet projected onto the skin).

    Parameters
    ----------
    mni_to_subject : tmsplan.xfm.transforms.MniToSubject
        MNI -> T1 transform.
    landmarks_mni : dict, optional
        Landmark name -> MNI mm; default :data:`MNI_LANDMARKS`.

    Returns
    -------
    Landmarks
        In ``mni_to_subject.dst_frame``; :func:`cap_positions` projects them onto
        the patient's skin.
    """
    source = MNI_LANDMARKS if landmarks_mni is None else landmarks_mni
    xyz = np.array([source[n] for n in LANDMARK_NAMES], dtype=np.float64)
    moved = mni_to_subject.apply_points(Points(xyz, mni_to_subject.src_frame))
    return Landmarks(moved.xyz, moved.frame, "carried from MNI (MNI152NLin6Asym) by the transform")


_ALIASES = {
    "nasion": "nasion", "nas": "nasion", "nz": "nasion",
    "inion": "inion", "ini": "inion", "iz": "inion",
    "lpa": "lpa", "left": "lpa", "lpa_tragus": "lpa", "left_tragus": "lpa",
    "rpa": "rpa", "right": "rpa", "rpa_tragus": "rpa", "right_tragus": "rpa",
}  # fmt: skip


def read_landmarks(path: str | os.PathLike, *, frame: str) -> Landmarks:
    """Read the four landmarks from a TSV: a header ``name x y z`` and one row each.

    Names (case-insensitive): ``nasion`` (or ``nas``, ``nz``), ``inion`` (``iz``),
    ``lpa``, ``rpa``; coordinates RAS+ mm in the head's world ``frame``.

    Raises
    ------
    EegError
        Missing file, missing or duplicate landmarks, or non-numeric values.
    """
    path = Path(path)
    if not path.is_file():
        raise EegError(f"--landmarks: '{path}' does not exist; give a TSV with name x y z rows.")
    found: dict[str, list[float]] = {}
    with open(path, newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.reader(handle, delimiter="\t") if r and any(c.strip() for c in r)]
    if not rows or [c.strip().lower() for c in rows[0][:4]] != ["name", "x", "y", "z"]:
        raise EegError(
            f"--landmarks: '{path}' must start with the header 'name<TAB>x<TAB>y<TAB>z'."
        )
    for row in rows[1:]:
        name = _ALIASES.get(row[0].strip().lower())
        if name is None:
            continue
        if name in found:
            raise EegError(f"--landmarks: '{path}' gives {name} twice.")
        try:
            values = [float(v) for v in row[1:4]]
        except (ValueError, IndexError):
            raise EegError(f"--landmarks: row {row!r} in '{path}' needs three numbers.") from None
        if len(values) != 3 or not np.all(np.isfinite(values)):
            raise EegError(f"--landmarks: row {row!r} in '{path}' needs three finite numbers.")
        found[name] = values
    missing = [n for n in LANDMARK_NAMES if n not in found]
    if missing:
        raise EegError(f"--landmarks: '{path}' lacks {missing}; give nasion, inion, lpa and rpa.")
    xyz = np.array([found[n] for n in LANDMARK_NAMES])
    if xyz[3, 0] <= xyz[2, 0]:
        raise EegError(
            f"--landmarks: in '{path}' the RPA is not to the right of the LPA (x_rpa <= x_lpa "
            "in RAS+): are LPA and RPA swapped, or are the coordinates in LPS?"
        )
    return Landmarks(xyz, frame, f"user: {path}")
