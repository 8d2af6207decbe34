"""From a cortical target to a scalp entry point and a coil pose.

Design notes: ``docs/projection.md``, section ``tmsplan.coil.placement``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from tmsplan.errors import HeadSurfaceError, SpaceError
from tmsplan.spaces import CoilPoses, Points

if TYPE_CHECKING:  # trimesh (with scipy and networkx) is imported where it is used
    import trimesh

__all__ = [
    "DEFAULT_COIL_SKIN_DISTANCE_MM",
    "DEFAULT_HANDLE_ANGLE_DEG",
    "DEFAULT_MAX_DEPTH_MM",
    "DEFAULT_NORMAL_RADIUS_MM",
    "HANDLE_RULE",
    "CoilPlacement",
    "ScalpProximity",
    "nearest_surface_point",
    "scalp_normal",
    "handle_direction",
    "coil_matrix",
    "place_coil",
]

DEFAULT_COIL_SKIN_DISTANCE_MM = 4.0
"""Hair plus casing between skin and the coil's reference point (SimNIBS uses 4 mm)."""
DEFAULT_HANDLE_ANGLE_DEG = 45.0
DEFAULT_MAX_DEPTH_MM = 30.0
DEFAULT_NORMAL_RADIUS_MM = 12.0
DEFAULT_MIDLINE_MM = 5.0

HANDLE_RULE = (
    "handle in the scalp tangent plane, {angle:g} deg from the midsagittal plane, pointing "
    "backwards (posterior) and away from the midline; targets within {midline:g} mm of the "
    "midline: straight back; where that is along the scalp normal: straight down"
)

COIL_AXES = (
    "canonical (SimNIBS matsimnibs): columns x, y, z, centre; z points into the head along "
    "the inward scalp normal, y points along the handle, x = y cross z; world RAS+ mm"
)


def _unit(vec: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vec))
    if norm < 1e-12:
        raise SpaceError("cannot normalise a zero vector")
    return vec / norm


def nearest_surface_point(
    mesh: trimesh.Trimesh, point: np.ndarray, *, face_mask: np.ndarray | None = None
) -> tuple[np.ndarray, float, int]:
    """Closest point of a triangle mesh to a point.

    Parameters
    ----------
    mesh : trimesh.Trimesh
        Surface in the same frame as ``point`` (mm).
    point : (3,) float
    face_mask : (n_faces,) bool, optional
        Only these faces are candidates.

    Returns
    -------
    closest : (3,) float64
    distance : float
        mm.
    face : int
        Index of the face in ``mesh``.
    """
    import trimesh

    point = np.asarray(point, dtype=np.float64).reshape(1, 3)
    candidates = mesh
    face_ids = np.arange(len(mesh.faces))
    if face_mask is not None:
        face_ids = np.flatnonzero(face_mask)
        if face_ids.size == 0:
            raise HeadSurfaceError("the scalp surface has no skin faces to place a coil on.")
        candidates = mesh.submesh([face_ids], append=True, repair=False)
    closest, distance, face = trimesh.proximity.closest_point(candidates, point)
    return closest[0].astype(np.float64), float(distance[0]), int(face_ids[int(face[0])])


def _closest_on_triangles(triangles: np.ndarray, point: np.ndarray) -> np.ndarray:
    """Closest point of each triangle to ``point``.

    By the Voronoi regions of the vertices, edges and face (Ericson, Real-Time
    Collision Detection, 5.1.5).

    Parameters
    ----------
    triangles : (k, 3, 3) float
    point : (3,) float

    Returns
    -------
    (k, 3) float64
    """
    a, b, c = triangles[:, 0], triangles[:, 1], triangles[:, 2]
    ab, ac = b - a, c - a

    def dot(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        return np.einsum("ij,ij->i", u, v)

    ap, bp, cp = point - a, point - b, point - c
    d1, d2 = dot(ab, ap), dot(ac, ap)
    d3, d4 = dot(ab, bp), dot(ac, bp)
    d5, d6 = dot(ab, cp), dot(ac, cp)
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2
    with np.errstate(divide="ignore", invalid="ignore"):
        total = va + vb + vc
        out = a + ab * (vb / total)[:, None] + ac * (vc / total)[:, None]  # inside the face
        regions = [  # later regions take precedence, as in the book's order of tests
            (
                (va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0),
                b + (c - b) * ((d4 - d3) / ((d4 - d3) + (d5 - d6)))[:, None],
            ),
            ((vb <= 0) & (d2 >= 0) & (d6 <= 0), a + ac * (d2 / (d2 - d6))[:, None]),
            ((d6 >= 0) & (d5 <= d6), c),
            ((vc <= 0) & (d1 >= 0) & (d3 <= 0), a + ab * (d1 / (d1 - d3))[:, None]),
            ((d3 >= 0) & (d4 <= d3), b),
            ((d1 <= 0) & (d2 <= 0), a),
        ]
    for mask, value in regions:
        out[mask] = value[mask]
    return out


class ScalpProximity:
    """Nearest-point and inside queries on one scalp mesh, set up once and reused.

    :func:`nearest_surface_point` builds a search tree for every call; planning
    several targets on one head (:class:`tmsplan.head.cache.Head`) builds this once.
    The answers are the same: the exact closest point on the triangles (not the
    nearest vertex), found among the triangles that can hold it.

    Everything is computed from the vertex and face arrays with numpy (no
    search tree, no trimesh), so a cached head answers without importing them.

    Parameters
    ----------
    mesh : trimesh.Trimesh or tmsplan.head.scalp.ScalpSurface
        Closed scalp surface with outward-wound faces (world mm), or anything
        with its ``vertices`` and ``faces``; not modified.
    fov_boundary : (n_vertices,) bool, optional
        Vertices where the field of view cuts the head (not skin).
    """

    def __init__(self, mesh: Any, fov_boundary: np.ndarray | None = None) -> None:
        vertices = np.asarray(mesh.vertices, dtype=np.float64)
        faces = np.asarray(mesh.faces, dtype=np.int64)
        fov = np.zeros(len(vertices), dtype=bool)
        if fov_boundary is not None:
            fov = np.asarray(fov_boundary, dtype=bool).reshape(-1)
            if fov.shape != (len(vertices),):
                raise ValueError(
                    f"fov_boundary must have one flag per vertex ({len(vertices)}), "
                    f"got {fov.shape}."
                )
        self.mesh = mesh
        self.fov_boundary = fov
        self.skin_faces = ~fov[faces].any(axis=1) if fov.any() else None
        self._vertices = vertices
        self._triangles = vertices[faces]
        self._skin_vertices = None
        if self.skin_faces is not None:  # the sorted vertices of the skin faces
            used = np.zeros(len(vertices), dtype=bool)
            used[faces[self.skin_faces]] = True
            self._skin_vertices = np.flatnonzero(used)
        edges = self._triangles - self._triangles[:, [1, 2, 0]]
        longest = np.einsum("ijk,ijk->ij", edges, edges).max() if len(faces) else 0.0
        self._max_edge = float(np.sqrt(longest))
        self._faces = faces
        self._watertight: bool | None = None

    def describes(self, mesh: Any) -> bool:
        """Whether ``mesh`` (a trimesh or a ScalpSurface) is the surface set up here."""
        vertices, faces = np.asarray(mesh.vertices), np.asarray(mesh.faces)
        return (
            vertices.shape == self._vertices.shape
            and faces.shape == self._faces.shape
            and np.array_equal(faces, self._faces)
            and np.array_equal(vertices, self._vertices)
        )

    @property
    def watertight(self) -> bool:
        """Every edge is shared by exactly two faces (as ``trimesh.Trimesh.is_watertight``)."""
        if self._watertight is None:
            edges = np.sort(self._faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
            keys = np.sort(edges[:, 0] * len(self._vertices) + edges[:, 1])
            starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1], True])
            self._watertight = bool(len(self._faces) and np.all(np.diff(starts) == 2))
        return self._watertight

    def normal(
        self, point: np.ndarray, *, radius_mm: float, face_mask: np.ndarray | None = None
    ) -> np.ndarray:
        """Outward normal at ``point``: :func:`scalp_normal` on this surface.

        ``face_mask``, when given, must be :attr:`skin_faces` (the fallback for a
        point with no face near it is the nearest skin face).
        """
        point = np.asarray(point, dtype=np.float64).reshape(3)
        return _footprint_normal(
            self._triangles,
            point,
            radius_mm,
            face_mask,
            lambda: self.nearest(point, skin_only=face_mask is not None)[2],
        )

    def nearest(
        self, point: np.ndarray, *, skin_only: bool = False
    ) -> tuple[np.ndarray, float, int]:
        """Closest point of the surface (or of its skin faces only) to ``point``.

        Parameters
        ----------
        point : (3,) float
            World mm, in the mesh's frame.
        skin_only : bool
            Leave out faces touching the field-of-view cut.

        Returns
        -------
        closest : (3,) float64
        distance : float
            mm.
        face : int
            Index of the face in the mesh.
        """
        point = np.asarray(point, dtype=np.float64).reshape(3)
        allowed = self.skin_faces if skin_only else None
        if allowed is not None and not allowed.any():
            raise HeadSurfaceError("the scalp surface has no skin faces to place a coil on.")
        # one point against every vertex: a plain scan is faster than building a search tree
        squared = np.einsum("ij,ij->i", self._vertices - point, self._vertices - point)
        pool = squared if allowed is None else squared[self._skin_vertices]
        bound = float(np.sqrt(pool.min()))
        # a triangle with a point within `bound` has every vertex within bound + its edge
        reach = bound + self._max_edge + 1e-6
        near = np.flatnonzero(squared <= reach * reach)
        close = np.zeros(len(self._vertices), dtype=bool)
        close[near] = True
        candidates = np.flatnonzero(close[self._faces].any(axis=1))  # faces touching them
        if allowed is not None:
            candidates = candidates[allowed[candidates]]
        closest = _closest_on_triangles(self._triangles[candidates], point)
        distances = np.linalg.norm(closest - point, axis=1)
        best = int(np.argmin(distances))
        return closest[best].astype(np.float64), float(distances[best]), int(candidates[best])

    def ray_crossings(self, origin: np.ndarray, direction: np.ndarray) -> np.ndarray:
        """Distances along a ray to every triangle it crosses (Moller-Trumbore).

        Only the triangles that can meet the ray are tested (those with a vertex
        within the longest edge of its line), so no search tree is needed.

        Parameters
        ----------
        origin : (3,) float
            Start of the ray, world mm.
        direction : (3,) float
            Unit direction of the ray.

        Returns
        -------
        (k,) float64
            Distances (mm, >= 0) from ``origin`` to the crossings, unordered;
            empty when the ray meets no triangle.
        """
        origin = np.asarray(origin, dtype=np.float64).reshape(3)
        direction = np.asarray(direction, dtype=np.float64).reshape(3)
        rel = self._triangles[:, 0] - origin
        along = rel @ direction
        off = rel - along[:, None] * direction
        reach = self._max_edge
        near = (np.einsum("ij,ij->i", off, off) <= reach * reach) & (along >= -reach)
        tri = self._triangles[near]
        edge1, edge2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
        p = np.cross(direction, edge2)
        det = np.einsum("ij,ij->i", edge1, p)
        ok = np.abs(det) > 1e-12
        inv = np.zeros_like(det)
        inv[ok] = 1.0 / det[ok]
        s = origin - tri[:, 0]
        u = np.einsum("ij,ij->i", s, p) * inv
        q = np.cross(s, edge1)
        v = (q @ direction) * inv
        t = np.einsum("ij,ij->i", edge2, q) * inv
        eps = 1e-9
        hit = ok & (u >= -eps) & (v >= -eps) & (u + v <= 1.0 + eps) & (t >= 0.0)
        return t[hit]

    def contains(self, point: np.ndarray) -> bool:
        """Whether ``point`` lies inside the closed surface (generalised winding number).

        Parameters
        ----------
        point : (3,) float
            World mm.

        Returns
        -------
        bool
        """
        rel = self._triangles - np.asarray(point, dtype=np.float64).reshape(1, 1, 3)
        a, b, c = rel[:, 0], rel[:, 1], rel[:, 2]
        la, lb, lc = (np.linalg.norm(v, axis=1) for v in (a, b, c))
        det = np.einsum("ij,ij->i", a, np.cross(b, c))
        div = (
            la * lb * lc
            + np.einsum("ij,ij->i", a, b) * lc
            + np.einsum("ij,ij->i", a, c) * lb
            + np.einsum("ij,ij->i", b, c) * la
        )
        winding = float(np.sum(2.0 * np.arctan2(det, div)) / (4.0 * np.pi))
        return winding > 0.5


def scalp_normal(
    mesh: trimesh.Trimesh,
    point: np.ndarray,
    *,
    radius_mm: float = DEFAULT_NORMAL_RADIUS_MM,
    face_mask: np.ndarray | None = None,
) -> np.ndarray:
    """Outward scalp normal at ``point``, averaged over the coil footprint.

    Parameters
    ----------
    mesh : trimesh.Trimesh
        Closed scalp surface with outward-wound faces.
    point : (3,) float
        A point on the surface (mm).
    radius_mm : float
        Faces whose centroid lies within this distance contribute, weighted by area.
    face_mask : (n_faces,) bool, optional
        Faces allowed to contribute (skin only).

    Returns
    -------
    (3,) float64
        Unit outward normal.
    """
    point = np.asarray(point, dtype=np.float64).reshape(3)
    return _footprint_normal(
        np.asarray(mesh.triangles, dtype=np.float64),
        point,
        radius_mm,
        face_mask,
        lambda: nearest_surface_point(mesh, point, face_mask=face_mask)[2],
    )


def _footprint_normal(
    triangles: np.ndarray,
    point: np.ndarray,
    radius_mm: float,
    face_mask: np.ndarray | None,
    nearest_face: Callable[[], int],
) -> np.ndarray:
    """Area-weighted mean normal of the faces whose centroid is within ``radius_mm``."""
    near = np.linalg.norm(triangles.mean(axis=1) - point, axis=1) <= radius_mm
    if face_mask is not None:
        near &= face_mask
    if not near.any():
        near = np.zeros(len(triangles), dtype=bool)
        near[nearest_face()] = True
    tri = triangles[near]
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    length = np.linalg.norm(cross, axis=1)
    valid = length > 0  # degenerate faces have no normal (and no area)
    normals = cross[valid] / length[valid, None]
    return _unit((normals * (length[valid, None] / 2.0)).sum(axis=0))


def handle_direction(
    normal: np.ndarray,
    *,
    hemisphere_sign: float,
    posterior: np.ndarray = (0.0, -1.0, 0.0),
    right: np.ndarray = (1.0, 0.0, 0.0),
    inferior: np.ndarray = (0.0, 0.0, -1.0),
    angle_deg: float = DEFAULT_HANDLE_ANGLE_DEG,
) -> tuple[np.ndarray, str]:
    """Handle direction by the stated rule (see module docstring).

    Parameters
    ----------
    normal : (3,) float
        Outward scalp normal (unit).
    hemisphere_sign : float
        +1 for a right-hemisphere target, -1 for left, 0 on the midline.
    posterior, right, inferior : (3,) float
        Head directions in the world frame of ``normal`` (for MNI, the axes;
        for a patient, carried from MNI).
    angle_deg : float
        Angle from the midsagittal plane.

    Returns
    -------
    direction : (3,) float64
        Unit vector in the tangent plane.
    how : str
        ``"rule"``, ``"midline"`` or ``"inferior-fallback"``.
    """
    normal = _unit(np.asarray(normal, dtype=np.float64))
    posterior = _unit(np.asarray(posterior, dtype=np.float64))
    # "straight back" in the scalp's tangent plane
    back = posterior - np.dot(posterior, normal) * normal
    if np.linalg.norm(back) < 0.3:  # the scalp faces backwards: no usable "back"
        down = _unit(np.asarray(inferior, dtype=np.float64))
        return _unit(down - np.dot(down, normal) * normal), "inferior-fallback"
    back = _unit(back)
    if hemisphere_sign == 0:
        return back, "midline"
    # "away from the midline", also in the tangent plane and perpendicular to "back"
    away = np.cross(normal, back)
    lateral = np.sign(hemisphere_sign) * _unit(np.asarray(right, dtype=np.float64))
    if np.dot(away, lateral) < 0:
        away = -away
    angle = np.deg2rad(angle_deg)
    return _unit(np.cos(angle) * back + np.sin(angle) * away), "rule"


def coil_matrix(centre: np.ndarray, inward: np.ndarray, handle: np.ndarray) -> np.ndarray:
    """Canonical coil matrix from centre, inward axis and handle direction.

    Parameters
    ----------
    centre : (3,) float
        Coil reference point (mm).
    inward : (3,) float
        Coil z: into the head.
    handle : (3,) float
        Coil y before orthogonalisation against z.

    Returns
    -------
    (4, 4) float64
        Columns x = y cross z, y, z, centre; rotation orthonormal, det +1.
    """
    z = _unit(np.asarray(inward, dtype=np.float64))
    y = np.asarray(handle, dtype=np.float64)
    y = _unit(y - np.dot(y, z) * z)
    x = np.cross(y, z)
    mat = np.eye(4)
    mat[:3, 0], mat[:3, 1], mat[:3, 2], mat[:3, 3] = x, y, z, centre
    return mat


@dataclass(frozen=True)
class CoilPlacement:
    """Where and how to place the coil for one cortical target (one frame).

    Attributes
    ----------
    cortical : Points
        ``(1, 3)`` the cortical target.
    entry : Points
        ``(1, 3)`` scalp entry point (nearest skin point).
    normal : (3,) float64
        Outward scalp normal at the entry (averaged).
    handle : (3,) float64
        Unit handle direction (coil y).
    pose : CoilPoses
        ``(1, 4, 4)`` canonical coil pose.
    depth_mm : float
        Entry-to-target distance.
    coil_skin_distance_mm : float
    reachable : bool
    unreachable_reason : str or None
    handle_how : str
        ``"rule"``, ``"midline"`` or ``"inferior-fallback"``.
    normal_target_angle_deg : float
        Angle between coil z and the line from the coil centre to the target.
    """

    cortical: Points
    entry: Points
    normal: np.ndarray
    handle: np.ndarray
    pose: CoilPoses
    depth_mm: float
    coil_skin_distance_mm: float
    reachable: bool
    unreachable_reason: str | None
    handle_how: str
    normal_target_angle_deg: float


def place_coil(
    target: Points,
    scalp_mesh: trimesh.Trimesh | None,
    *,
    frame: str,
    fov_boundary: np.ndarray | None = None,
    hemisphere_sign: float,
    posterior: np.ndarray = (0.0, -1.0, 0.0),
    right: np.ndarray = (1.0, 0.0, 0.0),
    inferior: np.ndarray = (0.0, 0.0, -1.0),
    coil_skin_distance_mm: float = DEFAULT_COIL_SKIN_DISTANCE_MM,
    handle_angle_deg: float = DEFAULT_HANDLE_ANGLE_DEG,
    max_depth_mm: float = DEFAULT_MAX_DEPTH_MM,
    normal_radius_mm: float = DEFAULT_NORMAL_RADIUS_MM,
    coil_label: str = "a figure-8 coil",
    proximity: ScalpProximity | None = None,
) -> CoilPlacement:
    """Project a cortical target to the scalp and compute the coil pose.

    Parameters
    ----------
    target : Points
        ``(1, 3)`` cortical target in ``frame``.
    scalp_mesh : trimesh.Trimesh or None
        Closed outward scalp surface in ``frame`` (mm); None when ``proximity``
        is given (its surface is used).
    frame : str
        World frame of target and mesh; checked against ``target.frame``.
    fov_boundary : (n_vertices,) bool, optional
        Vertices where the field of view cuts the head (not skin).
    hemisphere_sign, posterior, right, inferior, handle_angle_deg
        See :func:`handle_direction`.
    coil_skin_distance_mm : float
        Offset of the coil centre from the skin along the normal.
    max_depth_mm : float
        Deeper targets are unreachable.
    normal_radius_mm : float
        Averaging radius of the scalp normal.
    coil_label : str
        How the reason for an unreachable target names the coil.
    proximity : ScalpProximity, optional
        Queries set up once for ``scalp_mesh`` and ``fov_boundary`` (same answers,
        faster when one head serves several targets).

    Returns
    -------
    CoilPlacement

    Raises
    ------
    SpaceError
        Target not in ``frame`` or not a single point.
    """
    if target.frame != frame:
        raise SpaceError(f"target is in {target.frame!r} but the scalp surface is in {frame!r}.")
    if len(target) != 1:
        raise SpaceError(f"place_coil takes one target, got {len(target)}.")
    if coil_skin_distance_mm < 0 or not np.isfinite(coil_skin_distance_mm):
        raise SpaceError(
            f"coil-skin distance must be a finite number >= 0 mm, got {coil_skin_distance_mm}."
        )
    point = target.xyz[0]
    if proximity is None:
        if scalp_mesh is None:
            raise ValueError("place_coil needs the scalp mesh or its proximity queries.")
        proximity = _OneOffProximity(scalp_mesh, fov_boundary)
    elif scalp_mesh is not None and (
        not proximity.describes(scalp_mesh)
        or not np.array_equal(
            proximity.fov_boundary,
            np.zeros(len(scalp_mesh.vertices), bool) if fov_boundary is None else fov_boundary,
        )
    ):
        raise ValueError("proximity was set up for another scalp mesh or other fov_boundary.")
    skin_faces = proximity.skin_faces
    entry, depth, _ = proximity.nearest(point, skin_only=True)
    reasons = []
    if skin_faces is not None:
        _, any_distance, any_face = proximity.nearest(point)
        if not skin_faces[any_face] and any_distance < depth - 1e-6:
            reasons.append(
                f"the nearest head surface ({any_distance:.1f} mm away) is where the image's "
                "field of view cuts the head (e.g. the neck), not scalp"
            )
    inside = proximity.contains(point) if proximity.watertight else True
    if not inside:
        reasons.append("the target lies outside the head surface")
    if depth > max_depth_mm:
        reasons.append(
            f"it is {depth:.1f} mm below the scalp, deeper than the {max_depth_mm:g} mm "
            f"{coil_label} can reach"
        )
    normal = proximity.normal(entry, radius_mm=normal_radius_mm, face_mask=skin_faces)
    handle, how = handle_direction(
        normal,
        hemisphere_sign=hemisphere_sign,
        posterior=posterior,
        right=right,
        inferior=inferior,
        angle_deg=handle_angle_deg,
    )
    centre = entry + coil_skin_distance_mm * normal
    matrix = coil_matrix(centre, -normal, handle)
    to_target = point - centre
    cos = np.dot(to_target, -normal) / max(np.linalg.norm(to_target), 1e-12)
    angle = float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))
    return CoilPlacement(
        cortical=target,
        entry=Points(entry, frame),
        normal=normal,
        handle=matrix[:3, 1].copy(),
        pose=CoilPoses(matrix, frame),
        depth_mm=depth,
        coil_skin_distance_mm=float(coil_skin_distance_mm),
        reachable=not reasons,
        unreachable_reason="; ".join(reasons) if reasons else None,
        handle_how=how,
        normal_target_angle_deg=angle,
    )


class _OneOffProximity:
    """The queries of :class:`ScalpProximity` for a single target (trimesh's own)."""

    def __init__(self, mesh: trimesh.Trimesh, fov_boundary: np.ndarray | None) -> None:
        self.mesh = mesh
        self.skin_faces = None
        if fov_boundary is not None and np.any(fov_boundary):
            self.skin_faces = ~np.asarray(fov_boundary, dtype=bool)[mesh.faces].any(axis=1)

    def nearest(self, point: np.ndarray, *, skin_only: bool = False):
        mask = self.skin_faces if skin_only else None
        return nearest_surface_point(self.mesh, point, face_mask=mask)

    @property
    def watertight(self) -> bool:
        return bool(self.mesh.is_watertight)

    def normal(
        self, point: np.ndarray, *, radius_mm: float, face_mask: np.ndarray | None = None
    ) -> np.ndarray:
        return scalp_normal(self.mesh, point, radius_mm=radius_mm, face_mask=face_mask)

    def contains(self, point: np.ndarray) -> bool:
        return bool(self.mesh.contains(np.asarray(point, dtype=np.float64).reshape(1, 3))[0])
