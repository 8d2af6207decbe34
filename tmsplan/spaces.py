"""Points, coil poses and transforms that carry the frame they live in.

Design notes: ``docs/transforms.md``, section ``tmsplan.spaces``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from nibabel.affines import apply_affine

from tmsplan.errors import PoseError, SpaceError

__all__ = [
    "MNI_FRAME",
    "SUBJECT_FRAME",
    "LPS_FROM_RAS",
    "Points",
    "CoilPoses",
    "Transform",
    "check_rigid",
    "as_points_array",
]

MNI_FRAME = "MNI152NLin6Asym"
"""Frame of the embedded MNI152 head and of tmsplan's ROI atlas."""

SUBJECT_FRAME = "T1w"
"""World (RAS+ mm) frame of the patient's T1 image."""

# RAS+ -> LPS+: negate x (right -> left) and y (anterior -> posterior); z unchanged.
# Its own inverse. Multiply on the LEFT of points/poses to change world frame.
LPS_FROM_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def as_points_array(xyz: np.ndarray, *, name: str = "points") -> np.ndarray:
    """Return ``xyz`` as a finite float64 ``(n, 3)`` array.

    Parameters
    ----------
    xyz : array_like, (3,) or (n, 3)
    name : str
        Used in the error message.

    Raises
    ------
    SpaceError
        Wrong shape or non-finite values.
    """
    try:
        arr = np.array(xyz, dtype=np.float64)
    except (TypeError, ValueError):
        raise SpaceError(f"{name}: expected numbers of shape (n, 3), got {xyz!r:.80}.") from None
    if arr.ndim == 1 and arr.shape[0] == 3:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise SpaceError(f"{name}: expected shape (n, 3), got {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise SpaceError(f"{name}: coordinates must be finite numbers, got {arr.tolist()}.")
    return arr


@dataclass(frozen=True)
class Points:
    """Points in a named world frame.

    Attributes
    ----------
    xyz : (n, 3) float64
        Coordinates in millimetres, RAS+.
    frame : str
        Frame name, e.g. ``"MNI152NLin6Asym"`` or ``"T1w"``.
    """

    xyz: np.ndarray
    frame: str

    def __post_init__(self) -> None:
        arr = as_points_array(self.xyz, name=f"points in {self.frame}")
        arr.setflags(write=False)
        object.__setattr__(self, "xyz", arr)
        if not self.frame:
            raise SpaceError("points need a frame name")

    def __len__(self) -> int:
        return int(self.xyz.shape[0])


def check_rigid(matrices: np.ndarray, *, name: str = "coil pose", atol: float = 1e-4) -> np.ndarray:
    """Check that 4x4 matrices are rigid transforms and return them as ``(n, 4, 4)``.

    Parameters
    ----------
    matrices : (4, 4) or (n, 4, 4) float
    name : str
        Used in error messages.
    atol : float
        Tolerance on ``R.T @ R - I`` and on the last row.

    Returns
    -------
    (n, 4, 4) float64

    Raises
    ------
    PoseError
        Not finite, last row not (0, 0, 0, 1), rotation not orthonormal (shear or
        scaling) or determinant -1 (a mirrored, i.e. left/right-flipped, pose).
    """
    try:
        arr = np.array(matrices, dtype=np.float64)
    except (TypeError, ValueError):
        raise PoseError(f"{name}: expected 4x4 numbers, got {matrices!r:.80}.") from None
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1:] != (4, 4):
        raise PoseError(f"{name}: expected shape (n, 4, 4), got {arr.shape}.")
    for i, mat in enumerate(arr):
        label = f"{name} #{i}" if arr.shape[0] > 1 else name
        if not np.all(np.isfinite(mat)):
            raise PoseError(f"{label}: contains NaN or infinite values.")
        if not np.allclose(mat[3], [0, 0, 0, 1], atol=atol):
            raise PoseError(f"{label}: last row must be (0, 0, 0, 1), got {mat[3].tolist()}.")
        rot = mat[:3, :3]
        err = np.abs(rot.T @ rot - np.eye(3)).max()
        if err > atol:
            raise PoseError(
                f"{label}: rotation part is not orthonormal (max |R^T R - I| = {err:.2g}); "
                "the matrix is sheared or scaled, not a rigid coil pose."
            )
        if np.linalg.det(rot) < 0:
            raise PoseError(
                f"{label}: rotation has determinant -1, a mirrored (left/right-flipped) "
                "frame; the axes are in the wrong convention."
            )
    return arr


@dataclass(frozen=True)
class CoilPoses:
    """Coil poses in a named world frame, canonical axes (see module docstring).

    Attributes
    ----------
    matrices : (n, 4, 4) float64
        Columns: coil x, coil y (handle), coil z (into the head), centre (mm).
    frame : str
        World frame of the centres and axes.
    """

    matrices: np.ndarray
    frame: str

    def __post_init__(self) -> None:
        arr = check_rigid(self.matrices, name=f"coil pose in {self.frame}")
        arr.setflags(write=False)
        object.__setattr__(self, "matrices", arr)

    def __len__(self) -> int:
        return int(self.matrices.shape[0])

    @property
    def centres(self) -> Points:
        """Coil centres, ``(n, 3)`` mm, in :attr:`frame`."""
        return Points(self.matrices[:, :3, 3], self.frame)


@dataclass(frozen=True)
class Transform:
    """An affine transform between two named frames, applied to points.

    ``Transform(src, dst, matrix)`` maps points given in ``src`` into ``dst``.
    Name variables by direction: ``mni_to_subject``.

    Attributes
    ----------
    src, dst : str
        Frame names.
    matrix : (4, 4) float64
        Homogeneous matrix acting on column vectors ``[x, y, z, 1]``.
    """

    src: str
    dst: str
    matrix: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        mat = np.array(self.matrix, dtype=np.float64)
        if mat.shape != (4, 4) or not np.all(np.isfinite(mat)):
            raise SpaceError(f"transform {self.src}->{self.dst}: need a finite 4x4 matrix.")
        mat.setflags(write=False)
        object.__setattr__(self, "matrix", mat)

    def inverse(self) -> Transform:
        """The transform from :attr:`dst` back to :attr:`src`."""
        return Transform(self.dst, self.src, np.linalg.inv(self.matrix))

    def compose(self, then: Transform) -> Transform:
        """Compose: this transform, then ``then`` (``then.src`` must equal ``self.dst``)."""
        if then.src != self.dst:
            raise SpaceError(
                f"cannot compose {self.src}->{self.dst} with {then.src}->{then.dst}: "
                f"frames {self.dst!r} and {then.src!r} differ."
            )
        return Transform(self.src, then.dst, then.matrix @ self.matrix)

    def apply(self, points: Points) -> Points:
        """Map points from :attr:`src` to :attr:`dst`.

        Raises
        ------
        SpaceError
            When the points are not in :attr:`src`.
        """
        if points.frame != self.src:
            raise SpaceError(
                f"points are in {points.frame!r} but the transform maps {self.src!r} -> "
                f"{self.dst!r}."
            )
        xyz = apply_affine(self.matrix, points.xyz)
        return Points(xyz, self.dst)
