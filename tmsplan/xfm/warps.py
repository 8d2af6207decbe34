"""Point mappings built from steps: 4x4 affines and dense displacement fields.

Design notes: ``docs/transforms.md``, section ``tmsplan.xfm.warps``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from nibabel.affines import apply_affine

from tmsplan.errors import FormatError, RegistrationError
from tmsplan.io.images import world_to_voxel

__all__ = [
    "DisplacementField",
    "Step",
    "map_steps",
    "linear_part",
    "outside_fields",
    "check_head_affine",
]


@dataclass(frozen=True, eq=False)
class DisplacementField:
    """A dense displacement field acting on points: ``y = x + d(x)``.

    Evaluated as ITK's ``DisplacementFieldTransform`` does: trilinear
    interpolation of the vectors, identity outside the field's grid.

    Attributes
    ----------
    vectors : (X, Y, Z, 3) float64
        Displacements in RAS+ millimetres.
    affine : (4, 4) float64
        Voxel-to-world (RAS+ mm) matrix of the field's grid.
    """

    vectors: np.ndarray = field(repr=False)
    affine: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        vec = np.array(self.vectors, dtype=np.float64)
        aff = np.array(self.affine, dtype=np.float64)
        if vec.ndim != 4 or vec.shape[3] != 3 or aff.shape != (4, 4):
            raise FormatError(
                f"displacement field: expected vectors of shape (X, Y, Z, 3) and a 4x4 "
                f"affine, got {vec.shape} and {aff.shape}."
            )
        if not (np.all(np.isfinite(vec)) and np.all(np.isfinite(aff))):
            raise FormatError("displacement field: contains NaN or infinite values.")
        vec.setflags(write=False)
        aff.setflags(write=False)
        object.__setattr__(self, "vectors", vec)
        object.__setattr__(self, "affine", aff)

    @property
    def shape(self) -> tuple[int, int, int]:
        """Grid shape ``(X, Y, Z)``."""
        return tuple(int(s) for s in self.vectors.shape[:3])

    def inside(self, xyz: np.ndarray) -> np.ndarray:
        """``(n,)`` bool: which RAS+ points ``(n, 3)`` lie within the field's grid."""
        ijk = world_to_voxel(self.affine, xyz)
        upper = np.array(self.shape) - 0.5
        return np.all((ijk >= -0.5) & (ijk <= upper), axis=1)

    def map(self, xyz: np.ndarray) -> np.ndarray:
        """Displace RAS+ points ``(n, 3)`` mm; points outside the grid are unchanged."""
        # Hand-written on purpose: it reproduces ITK's DisplacementFieldTransform exactly
        # (edge rule, identity outside), so points match antsApplyTransformsToPoints.
        from scipy import ndimage

        xyz = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
        ijk = world_to_voxel(self.affine, xyz)
        disp = np.stack(
            [
                ndimage.map_coordinates(
                    self.vectors[..., c], ijk.T, order=1, mode="nearest", prefilter=False
                )
                for c in range(3)
            ],
            axis=1,
        )
        disp[~self.inside(xyz)] = 0.0
        return xyz + disp


Step = np.ndarray | DisplacementField
"""One step of a point mapping: a ``(4, 4)`` RAS+ mm matrix or a field."""


def map_steps(steps: tuple[Step, ...], xyz: np.ndarray) -> np.ndarray:
    """Carry points through a chain of steps, in order.

    Parameters
    ----------
    steps : tuple of (4, 4) float64 arrays and DisplacementField
        Applied first to last; matrices act on column vectors ``[x, y, z, 1]``.
    xyz : (n, 3) float
        RAS+ mm points (any shape reshapable to ``(n, 3)``).

    Returns
    -------
    (n, 3) float64
        The mapped points, RAS+ mm. The input is not modified.
    """
    out = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
    for step in steps:
        if isinstance(step, DisplacementField):
            out = step.map(out)
        else:
            out = apply_affine(step, out)
    return out


def linear_part(steps: tuple[Step, ...]) -> np.ndarray:
    """Product of the affine steps, fields left out (exact when there are none).

    Parameters
    ----------
    steps : tuple of (4, 4) float64 arrays and DisplacementField
        Applied first to last.

    Returns
    -------
    (4, 4) float64
        ``steps[-1] @ ... @ steps[0]`` over the matrices only, RAS+ mm.
    """
    total = np.eye(4)
    for step in steps:
        if not isinstance(step, DisplacementField):
            total = step @ total
    return total


def outside_fields(steps: tuple[Step, ...], xyz: np.ndarray) -> np.ndarray:
    """Which points leave the grid of a field on the way through ``steps``.

    Parameters
    ----------
    steps : tuple of (4, 4) float64 arrays and DisplacementField
        Applied first to last.
    xyz : (n, 3) float
        RAS+ mm points at the start of the chain.

    Returns
    -------
    (n,) bool
        True where a point lies outside the grid of any field it meets.
    """
    out = np.zeros(len(xyz), dtype=bool)
    cur = np.asarray(xyz, dtype=np.float64)
    for step in steps:
        if isinstance(step, DisplacementField):
            out |= ~step.inside(cur)
            cur = step.map(cur)
        else:
            cur = apply_affine(step, cur)
    return out


def check_head_affine(matrix: np.ndarray, what: str) -> None:
    """Refuse mirrored, singular or non-millimetre head-to-head matrices.

    Parameters
    ----------
    matrix : (4, 4) float
        RAS+ mm affine mapping MNI points to T1 points.
    what : str
        Names the matrix or its file in messages.

    Raises
    ------
    FormatError
        Not a finite 4x4 matrix, or its last row is not ``(0, 0, 0, 1)``.
    RegistrationError
        Determinant <= 0 (mirrors left and right) or singular values outside
        0.4-2.5 (voxel units or not a head-to-head mapping).
    """
    if matrix.shape != (4, 4) or not np.all(np.isfinite(matrix)):
        raise FormatError(f"{what}: the transform matrix is not a finite 4x4 matrix.")
    if not np.allclose(matrix[3], [0, 0, 0, 1], atol=1e-6):
        raise FormatError(
            f"{what}: the last row of the matrix must be (0, 0, 0, 1), got {matrix[3].tolist()}."
        )
    det = float(np.linalg.det(matrix[:3, :3]))
    if det <= 0:
        raise RegistrationError(
            f"{what}: the transform mirrors the head (determinant {det:.3g} <= 0), which "
            "would swap left and right; an MNI -> T1 transform never does. Check how the "
            "file was made (e.g. an LPS/RAS mix-up) and give a proper transform."
        )
    scales = np.linalg.svd(matrix[:3, :3], compute_uv=False)
    if scales.max() > 2.5 or scales.min() < 0.4:
        raise RegistrationError(
            f"{what}: the transform scales by {scales.min():.2f}-{scales.max():.2f}, "
            "not a head-to-head mapping in millimetres (expected 0.4-2.5); it may be in "
            "voxel units (an FSL matrix given as kind='affine'?) or for another purpose."
        )
