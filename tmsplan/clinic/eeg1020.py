"""10-20 / 10-10 EEG positions on a head surface, measured along the scalp.

Design notes: ``docs/clinic.md``, section ``tmsplan.clinic.eeg1020``.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tmsplan.head.landmarks import (
    LANDMARK_NAMES,
    MNI_LANDMARKS,
    EegError,
    Landmarks,
    _check_mesh,
    _project,
    carry_landmarks,
    detect_mni_landmarks,
    read_landmarks,
)
from tmsplan.spaces import MNI_FRAME, as_points_array

if TYPE_CHECKING:  # trimesh (with scipy and networkx) is imported where it is used
    import trimesh

__all__ = [
    "LANDMARK_NAMES",
    "SYSTEMS",
    "MNI_LANDMARKS",
    "EegError",
    "Landmarks",
    "CapPositions",
    "detect_mni_landmarks",
    "carry_landmarks",
    "read_landmarks",
    "cap_positions",
    "head_landmarks",
    "head_positions",
    "beam_point",
    "target_in_cap",
    "write_positions",
    "read_positions",
]

SYSTEMS = ("10-20", "10-10")

_CZ_TOL_MM = 0.05
_CZ_MAX_ITER = 50
_PROJECTION_WARN_MM = 5.0
_PROJECTION_MAX_MM = 25.0

_LEFT_RING = ("Fp1", "AF7", "F7", "FT7", "T7", "TP7", "P7", "PO7", "O1")
_RIGHT_RING = ("Fp2", "AF8", "F8", "FT8", "T8", "TP8", "P8", "PO8", "O2")
_LEFT_LOW = ("AF9", "F9", "FT9")
_RIGHT_LOW = ("AF10", "F10", "FT10")
_MIDLINE = ("Fpz", "AFz", "Fz", "FCz", "Cz", "CPz", "Pz", "POz", "Oz")
# row: (left ring point, midline point, right ring point, names left of the midline
# from the ring inwards, names right of it from the ring inwards)
_ROWS = (
    ("AF7", "AFz", "AF8", ("AF3",), ("AF4",)),
    ("F7", "Fz", "F8", ("F5", "F3", "F1"), ("F6", "F4", "F2")),
    ("FT7", "FCz", "FT8", ("FC5", "FC3", "FC1"), ("FC6", "FC4", "FC2")),
    ("TP7", "CPz", "TP8", ("CP5", "CP3", "CP1"), ("CP6", "CP4", "CP2")),
    ("P7", "Pz", "P8", ("P5", "P3", "P1"), ("P6", "P4", "P2")),
    ("PO7", "POz", "PO8", ("PO3",), ("PO4",)),
)
SYSTEM_1020 = (
    "Fp1", "Fpz", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7", "C3", "Cz", "C4", "T8",
    "P7", "P3", "Pz", "P4", "P8", "O1", "Oz", "O2",
)  # fmt: skip
"""The 21 positions of the 10-20 system (modern names)."""


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class CapPositions:
    """10-20 / 10-10 positions on one head surface.

    Attributes
    ----------
    names : tuple of str
        Electrode names.
    xyz : (n, 3) float64
        Positions on the scalp, RAS+ mm in ``frame``.
    frame : str
    system : {"10-20", "10-10"}
    landmarks : Landmarks
        As projected onto the scalp.
    tape_mm : dict
        ``nasion_inion``, ``tragus_tragus`` (LPA-Cz-RPA), ``circumference``
        (Fpz-T7-Oz-T8 ring), measured on the mesh (mm).
    on_cut : tuple of str
        Positions lying on the field-of-view cut (not skin).
    notes : tuple of str
        What the user must know (landmark projection distances, Cz residual).
    method : str
        One-line description of the construction.
    """

    names: tuple[str, ...]
    xyz: np.ndarray
    frame: str
    system: str
    landmarks: Landmarks
    tape_mm: dict = field(default_factory=dict)
    on_cut: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    method: str = ""

    def position(self, name: str) -> np.ndarray:
        """The ``(3,)`` position of one electrode (case-insensitive name)."""
        lower = [n.lower() for n in self.names]
        if name.lower() not in lower:
            raise EegError(
                f"no position {name!r} in the {self.system} set; known: {list(self.names)}."
            )
        return self.xyz[lower.index(name.lower())]

    def as_dict(self) -> dict[str, list[float]]:
        """Name -> ``[x, y, z]`` (mm, rounded to 0.01)."""
        return {n: np.round(p, 2).tolist() for n, p in zip(self.names, self.xyz, strict=False)}

    def as_data(self) -> dict:
        """Everything that rebuilds these positions exactly (JSON-ready, not rounded).

        See :meth:`from_data`; the head cache keeps a head's positions this way.
        """
        return {
            "names": list(self.names),
            "xyz": np.asarray(self.xyz, dtype=np.float64).tolist(),
            "frame": self.frame,
            "system": self.system,
            "landmarks": {
                "xyz": self.landmarks.xyz.tolist(),
                "frame": self.landmarks.frame,
                "source": self.landmarks.source,
            },
            "tape_mm": {key: float(value) for key, value in self.tape_mm.items()},
            "on_cut": list(self.on_cut),
            "notes": list(self.notes),
            "method": self.method,
        }

    @classmethod
    def from_data(cls, data: dict) -> CapPositions:
        """The positions :meth:`as_data` described (floats round-trip exactly through JSON)."""
        marks = data["landmarks"]
        return cls(
            names=tuple(str(n) for n in data["names"]),
            xyz=np.asarray(data["xyz"], dtype=np.float64).reshape(-1, 3),
            frame=str(data["frame"]),
            system=str(data["system"]),
            landmarks=Landmarks(
                np.asarray(marks["xyz"], dtype=np.float64),
                str(marks["frame"]),
                str(marks["source"]),
            ),
            tape_mm={str(k): float(v) for k, v in data["tape_mm"].items()},
            on_cut=tuple(str(n) for n in data["on_cut"]),
            notes=tuple(str(n) for n in data["notes"]),
            method=str(data["method"]),
        )

    def describe(self) -> dict:
        """JSON-ready description (frame, system, landmarks, method, tape, positions)."""
        return {
            "frame": self.frame,
            "units": "mm",
            "system": self.system,
            "method": self.method,
            "landmarks": self.landmarks.as_dict(),
            "landmarks_source": self.landmarks.source,
            "tape_mm": {k: round(float(v), 1) for k, v in self.tape_mm.items()},
            "positions": self.as_dict(),
            "on_fov_cut": list(self.on_cut),
            "notes": list(self.notes),
        }


METHOD = (
    "geodesic arcs on the scalp mesh (plane cuts through landmark triples): Cz as the "
    "mid-point of both the nasion-inion and the LPA-RPA arc (iterated), percent divisions "
    "of the midline, coronal, circumference (Fpz-T7-Oz-T8) and row arcs"
)


# --------------------------------------------------------------------------- arcs


class _Arc:
    """A polyline on the mesh from ``start`` to ``end`` with cumulative arc length."""

    def __init__(self, points: np.ndarray) -> None:
        self.points = points
        steps = np.linalg.norm(np.diff(points, axis=0), axis=1)
        self.s = np.concatenate([[0.0], np.cumsum(steps)])

    @property
    def length(self) -> float:
        return float(self.s[-1])

    def at(self, s: np.ndarray | float) -> np.ndarray:
        """Points at arc lengths ``s`` (mm from the start), ``(k, 3)``."""
        s = np.clip(np.atleast_1d(np.asarray(s, dtype=np.float64)), 0.0, self.length)
        return np.stack([np.interp(s, self.s, self.points[:, i]) for i in range(3)], axis=1)

    def fraction(self, f: np.ndarray | float) -> np.ndarray:
        return self.at(np.asarray(f, dtype=np.float64) * self.length)

    def locate(self, point: np.ndarray) -> float:
        """Arc length of the polyline point nearest to ``point``."""
        return _locate(self.points, self.s, point)


def _locate(points: np.ndarray, s: np.ndarray, point: np.ndarray) -> float:
    a, b = points[:-1], points[1:]
    ab = b - a
    denom = np.einsum("ij,ij->i", ab, ab)
    t = np.where(denom > 0, np.einsum("ij,ij->i", point - a, ab) / np.where(denom > 0, denom, 1), 0)
    t = np.clip(t, 0.0, 1.0)
    nearest = a + t[:, None] * ab
    i = int(np.argmin(np.einsum("ij,ij->i", nearest - point, nearest - point)))
    return float(s[i] + t[i] * (s[i + 1] - s[i]))


def _loops(segments: np.ndarray) -> list[np.ndarray]:
    """Chain plane-cut segments ``(m, 2, 3)`` into closed polylines (first == last)."""
    from scipy.spatial import cKDTree

    ends = segments.reshape(-1, 3)
    tree = cKDTree(ends)
    pairs = tree.query_pairs(1e-6, output_type="ndarray")
    # union coincident end points
    parent = np.arange(len(ends))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in pairs:
        ri, rj = root(int(i)), root(int(j))
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    ids = np.array([root(i) for i in range(len(ends))]).reshape(-1, 2)
    neighbours: dict[int, list[int]] = {}
    for a, b in ids:
        if a == b:
            continue  # a segment of zero length (cut through a vertex)
        neighbours.setdefault(int(a), []).append(int(b))
        neighbours.setdefault(int(b), []).append(int(a))
    coords = {int(i): ends[k] for k, i in enumerate(ids.ravel())}
    seen: set[int] = set()
    loops = []
    for start in sorted(neighbours):
        if start in seen:
            continue
        chain = [start]
        seen.add(start)
        previous, current = None, start
        while True:
            options = [n for n in neighbours[current] if n != previous and n not in seen]
            if not options:
                break
            previous, current = current, options[0]
            chain.append(current)
            seen.add(current)
        closed = start in neighbours[current]
        if len(chain) >= 3 and closed:
            chain.append(chain[0])
            loops.append(np.array([coords[i] for i in chain]))
    return loops


def _arc(mesh: trimesh.Trimesh, start: np.ndarray, end: np.ndarray, via: np.ndarray) -> _Arc:
    """The arc on the mesh from ``start`` to ``end`` through ``via`` (one plane cut)."""
    import trimesh

    normal = np.cross(end - start, via - start)
    norm = np.linalg.norm(normal)
    if norm < 1e-6 * max(1.0, np.linalg.norm(end - start) ** 2):
        raise EegError(
            "three landmarks of an arc are in a line (or coincide); check the landmarks."
        )
    normal = normal / norm
    best, best_cost = None, np.inf
    # a plane exactly through mesh vertices can break a loop; then shift it by 1 micrometre
    for shift in (0.0, 1e-3, -1e-3):
        segments = trimesh.intersections.mesh_plane(mesh, normal, start + shift * normal)
        loops = _loops(np.asarray(segments, dtype=np.float64)) if len(segments) else []
        for loop in loops:
            cost = max(float(np.min(np.linalg.norm(loop - p, axis=1))) for p in (start, end, via))
            if cost < best_cost:
                best, best_cost = loop, cost
        if best is not None and best_cost <= 10.0:
            break
    if best is None or best_cost > 10.0:
        raise EegError(
            "the scalp surface has no closed curve through the landmarks; the landmarks may "
            "be off the head or the surface incomplete (check the frame of the landmarks)."
        )
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(best, axis=0), axis=1))])
    total = s[-1]
    s_a, s_b, s_v = (_locate(best, s, p) for p in (start, end, via))
    forward = (s_b - s_a) % total
    through_forward = (s_v - s_a) % total <= forward
    length = forward if through_forward else total - forward
    sign = 1.0 if through_forward else -1.0
    # the loop's own vertices between the two ends, plus the exact ends
    inner = (sign * (s - s_a)) % total
    keep = (inner > 0) & (inner < length)
    order = np.argsort(inner[keep])
    points = np.vstack([_point_at(best, s, s_a), best[keep][order], _point_at(best, s, s_b)])
    return _Arc(points)


def _point_at(loop: np.ndarray, s: np.ndarray, value: float) -> np.ndarray:
    return np.array([np.interp(value, s, loop[:, i]) for i in range(3)])


def _split(arc: _Arc, middle: np.ndarray, parts: int) -> tuple[np.ndarray, np.ndarray]:
    """Division points of both halves of ``arc`` at ``middle`` into ``parts`` equal parts.

    Returns the inner points of the first half (from the start) and of the second
    half (from the end), each ``(parts - 1, 3)``.
    """
    s_mid = arc.locate(middle)
    steps = np.arange(1, parts) / parts
    first = arc.at(steps * s_mid)
    second = arc.at(arc.length - steps * (arc.length - s_mid))
    return first, second


# --------------------------------------------------------------------------- positions


def _on_cut(
    mesh: trimesh.Trimesh, fov_boundary: np.ndarray | None, faces: np.ndarray
) -> np.ndarray:
    if fov_boundary is None:
        return np.zeros(len(faces), dtype=bool)
    flags = np.asarray(fov_boundary, dtype=bool)
    return flags[mesh.faces[faces]].any(axis=1)


def cap_positions(
    mesh: trimesh.Trimesh,
    landmarks: Landmarks,
    *,
    system: str = "10-10",
    fov_boundary: np.ndarray | None = None,
) -> CapPositions:
    """10-20 or 10-10 positions on a scalp mesh from four landmarks.

    Parameters
    ----------
    mesh : trimesh.Trimesh
        Closed scalp surface, vertices RAS+ mm in ``landmarks.frame``
        (:attr:`tmsplan.head.scalp.ScalpSurface.mesh`).
    landmarks : Landmarks
        Nasion, inion, LPA, RPA in the mesh's frame (projected onto it here).
    system : {"10-20", "10-10"}
    fov_boundary : (n_vertices,) bool, optional
        :attr:`tmsplan.head.scalp.ScalpSurface.fov_boundary`; positions on the cut are
        listed in ``on_cut``; landmarks on it are refused.

    Returns
    -------
    CapPositions

    Raises
    ------
    EegError
        Unknown system, landmarks far from the skin or on the field-of-view cut,
        or arcs that cannot be traced.
    """
    if system not in SYSTEMS:
        raise EegError(f"system must be one of {SYSTEMS}, got {system!r}.")
    mesh = _check_mesh(mesh)
    projected, distance, faces = _project(mesh, landmarks.xyz)
    notes = []
    for name, dist in zip(LANDMARK_NAMES, distance, strict=False):
        if dist > _PROJECTION_MAX_MM:
            raise EegError(
                f"landmark {name} lies {dist:.0f} mm from the scalp surface; it must be on the "
                f"skin of this head, in its frame ({landmarks.frame}). Check the landmarks."
            )
        if dist > _PROJECTION_WARN_MM:
            notes.append(f"landmark {name} was moved {dist:.1f} mm onto the scalp surface.")
    cut = _on_cut(mesh, fov_boundary, faces)
    if cut.any():
        bad = [n for n, c in zip(LANDMARK_NAMES, cut, strict=False) if c]
        raise EegError(
            f"landmark(s) {', '.join(bad)} fall on the field-of-view cut (face or neck cut "
            "off the image, or defaced): give the landmarks yourself (--landmarks TSV)."
        )
    nz, iz, lpa, rpa = projected
    centre = projected.mean(axis=0)
    up = np.cross(rpa - lpa, nz - iz)
    up /= np.linalg.norm(up)
    cz, residual = _find_cz(mesh, nz, iz, lpa, rpa, centre, up)
    if residual > 1.0:
        notes.append(f"Cz: the two arcs' mid-points differ by {residual:.1f} mm.")

    sagittal = _arc(mesh, nz, iz, cz)
    coronal = _arc(mesh, lpa, rpa, cz)
    pos: dict[str, np.ndarray] = {"Nz": nz, "Iz": iz}
    mid = sagittal.fraction(np.arange(1, 10) / 10.0)
    pos.update(zip(_MIDLINE, mid, strict=False))
    pos["Cz"] = cz
    cor = coronal.fraction(np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9, 1.0]))
    coronal_names = ("T9", "T7", "C5", "C3", "C1", "C2", "C4", "C6", "T8", "T10")
    pos.update(zip(coronal_names, cor, strict=True))

    for ring_names, side in ((_LEFT_RING, "T7"), (_RIGHT_RING, "T8")):
        ring = _arc(mesh, pos["Fpz"], pos["Oz"], pos[side])
        front, back = _split(ring, pos[side], 5)
        pos.update(zip(ring_names[:4], front, strict=False))
        pos.update(zip(ring_names[5:], back[::-1], strict=False))
        pos[ring_names[4]] = pos[side]
    left_half = _arc(mesh, pos["Fpz"], pos["Oz"], pos["T7"]).length
    right_half = _arc(mesh, pos["Fpz"], pos["Oz"], pos["T8"]).length
    if system == "10-10":
        for low_names, side in ((_LEFT_LOW, "T9"), (_RIGHT_LOW, "T10")):
            ring = _arc(mesh, nz, iz, pos[side])
            front, _ = _split(ring, pos[side], 5)
            pos.update(zip(low_names, front[1:], strict=False))
        for left, middle, right, left_names, right_names in _ROWS:
            row = _arc(mesh, pos[left], pos[right], pos[middle])
            first, second = _split(row, pos[middle], len(left_names) + 1)
            pos.update(zip(left_names, first, strict=False))
            pos.update(zip(right_names, second, strict=False))
        names = _ordered_1010()
    else:
        row_f = _arc(mesh, pos["F7"], pos["F8"], pos["Fz"])
        (pos["F3"],), (pos["F4"],) = _split(row_f, pos["Fz"], 2)
        row_p = _arc(mesh, pos["P7"], pos["P8"], pos["Pz"])
        (pos["P3"],), (pos["P4"],) = _split(row_p, pos["Pz"], 2)
        names = SYSTEM_1020
    xyz = np.array([pos[n] for n in names], dtype=np.float64)
    _, _, faces = _project(mesh, xyz)
    on_cut = tuple(n for n, c in zip(names, _on_cut(mesh, fov_boundary, faces), strict=False) if c)
    if on_cut:
        notes.append(
            f"positions {', '.join(on_cut)} fall on the field-of-view cut (not skin); "
            "do not use them."
        )
    tape = {
        "nasion_inion": sagittal.length,
        "tragus_tragus": coronal.length,
        "circumference": left_half + right_half,
    }
    return CapPositions(
        names=tuple(names),
        xyz=xyz,
        frame=landmarks.frame,
        system=system,
        landmarks=Landmarks(projected, landmarks.frame, landmarks.source),
        tape_mm=tape,
        on_cut=on_cut,
        notes=tuple(notes),
        method=METHOD,
    )


def _ordered_1010() -> tuple[str, ...]:
    rows = [
        ("Nz",),
        ("Fp1", "Fpz", "Fp2"),
        ("AF9", "AF7", "AF3", "AFz", "AF4", "AF8", "AF10"),
        ("F9", "F7", "F5", "F3", "F1", "Fz", "F2", "F4", "F6", "F8", "F10"),
        ("FT9", "FT7", "FC5", "FC3", "FC1", "FCz", "FC2", "FC4", "FC6", "FT8", "FT10"),
        ("T9", "T7", "C5", "C3", "C1", "Cz", "C2", "C4", "C6", "T8", "T10"),
        ("TP7", "CP5", "CP3", "CP1", "CPz", "CP2", "CP4", "CP6", "TP8"),
        ("P7", "P5", "P3", "P1", "Pz", "P2", "P4", "P6", "P8"),
        ("PO7", "PO3", "POz", "PO4", "PO8"),
        ("O1", "Oz", "O2"),
        ("Iz",),
    ]
    return tuple(n for row in rows for n in row)


def _find_cz(mesh, nz, iz, lpa, rpa, centre, up) -> tuple[np.ndarray, float]:
    """Cz as the common mid-point of the nasion-inion and LPA-RPA arcs (iterated)."""
    far = centre + 400.0 * up
    start, _, _ = _project(mesh, far[None])
    cz = start[0]
    residual = np.inf
    for _ in range(_CZ_MAX_ITER):
        mid_sag = _arc(mesh, nz, iz, cz).fraction(0.5)[0]
        new = _arc(mesh, lpa, rpa, mid_sag).fraction(0.5)[0]
        residual = float(np.linalg.norm(new - mid_sag))
        moved = float(np.linalg.norm(new - cz))
        cz = new
        if moved < _CZ_TOL_MM:
            break
    return cz, residual


# --------------------------------------------------------------------------- Beam F3


def beam_point(
    mesh: trimesh.Trimesh, positions: CapPositions, x_mm: float, y_mm: float
) -> np.ndarray:
    """Where the Beam F3 tape distances land on this head's scalp.

    X is walked from Fpz along the left half of the circumference ring (Fpz-T7-Oz);
    Y from Cz toward that point along the scalp (the cut by the plane through Cz, the
    point and the centre of the landmarks).

    Parameters
    ----------
    mesh : trimesh.Trimesh
        The scalp the positions were placed on.
    positions : CapPositions
    x_mm, y_mm : float
        Beam F3 distances in mm (:func:`tmsplan.clinic.beamf3.beam_f3` gives cm).

    Returns
    -------
    (3,) float64
        The point on the scalp, RAS+ mm in ``positions.frame``.
    """
    ring = _arc(mesh, positions.position("Fpz"), positions.position("Oz"), positions.position("T7"))
    point = ring.at(x_mm)[0]
    cz = positions.position("Cz")
    centre = positions.landmarks.xyz.mean(axis=0)
    middle = 0.5 * (cz + point)
    outward = (middle - centre) / np.linalg.norm(middle - centre)
    via, _, _ = _project(mesh, (middle + 30.0 * outward)[None])
    return _arc(mesh, cz, point, via[0]).at(y_mm)[0]


# --------------------------------------------------------------------------- the target


def target_in_cap(positions: CapPositions, point: Sequence[float], *, count: int = 3) -> dict:
    """The target's scalp entry in cap terms: nearest positions and the offset from the nearest.

    The offset is measured in the scalp's tangent plane at the nearest position,
    along the cap's own directions there: *anterior* toward the nasion (the
    nasion-inion direction projected into the tangent plane) and *lateral* away
    from the midline (perpendicular to it, toward the electrode's side; for a
    midline electrode: toward the target's side). For offsets of a few cm this
    is the distance along the scalp within a millimetre or two.

    Parameters
    ----------
    positions : CapPositions
    point : (3,) float
        Scalp entry, RAS+ mm in ``positions.frame``.
    count : int
        Number of nearest positions listed.

    Returns
    -------
    dict
        ``nearest`` (list of ``{name, distance_mm}``), ``reference``,
        ``anterior_mm``, ``lateral_mm``, ``lateral_side``, ``text``.
    """
    p = as_points_array(point, name="target point")[0]
    dist = np.linalg.norm(positions.xyz - p, axis=1)
    order = np.argsort(dist, kind="stable")[:count]
    ref_i = int(order[0])
    ref_name, ref = positions.names[ref_i], positions.xyz[ref_i]
    nz, iz, lpa, rpa = positions.landmarks.xyz
    centre = positions.landmarks.xyz.mean(axis=0)
    normal = ref - centre  # outward, approximately: the cap sits on a convex head
    normal /= np.linalg.norm(normal)
    anterior = (nz - iz) - np.dot(nz - iz, normal) * normal
    anterior /= np.linalg.norm(anterior)
    right = np.cross(anterior, normal)  # RAS+: anterior x up = right
    lateral_sign = np.sign(np.dot(ref - centre, rpa - lpa))
    if ref_name.lower().endswith("z") or lateral_sign == 0:
        lateral_sign = np.sign(np.dot(p - ref, right)) or 1.0
    lateral = lateral_sign * right
    offset = p - ref
    ant, lat = float(np.dot(offset, anterior)), float(np.dot(offset, lateral))
    side = "right" if lateral_sign > 0 else "left"
    words = [
        f"{abs(ant):.0f} mm {'anterior' if ant >= 0 else 'posterior'}",
        f"{abs(lat):.0f} mm {'lateral' if lat >= 0 else 'medial'}",
    ]
    if ref_name.lower().endswith("z"):
        words[1] = f"{abs(lat):.0f} mm to the {side}"
    return {
        "nearest": [
            {"name": positions.names[int(i)], "distance_mm": round(float(dist[int(i)]), 1)}
            for i in order
        ],
        "reference": ref_name,
        "anterior_mm": round(ant, 1),
        "lateral_mm": round(lat, 1),
        "lateral_side": side,
        "text": f"{words[0]}, {words[1]} of {ref_name}",
    }


# --------------------------------------------------------------------------- files


def write_positions(
    positions: CapPositions, path: str | os.PathLike, *, overwrite: bool = False
) -> tuple[Path, Path]:
    """Write ``name x y z`` TSV and a JSON sidecar (same stem), atomically.

    Returns
    -------
    (pathlib.Path, pathlib.Path)
        The TSV and the JSON.
    """
    from tmsplan.io.outputs import check_writable, write_text

    path = Path(path)
    sidecar = path.with_suffix(".json")
    check_writable(path, overwrite=overwrite)
    check_writable(sidecar, overwrite=overwrite)
    lines = ["name\tx\ty\tz"]
    lines += [
        f"{n}\t{x:.2f}\t{y:.2f}\t{z:.2f}"
        for n, (x, y, z) in zip(positions.names, positions.xyz, strict=True)
    ]
    meta = {k: v for k, v in positions.describe().items() if k != "positions"}
    meta["coordinates"] = f"RAS+ world millimetres of the head image ({positions.frame})"
    meta["columns"] = ["name", "x", "y", "z"]
    write_text(sidecar, json.dumps(meta, indent=2) + "\n", overwrite=overwrite)
    write_text(path, "\n".join(lines) + "\n", overwrite=overwrite)
    return path, sidecar


def read_positions(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a positions TSV written by :func:`write_positions`: name -> ``(3,)`` mm."""
    out = {}
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        for row in reader:
            out[row["name"]] = np.array([float(row[k]) for k in "xyz"])
    return out


def head_landmarks(
    scalp: Any,
    *,
    mni_to_subject: Any = None,
    landmarks: str | os.PathLike | Landmarks | None = None,
) -> Landmarks:
    """A head's four landmarks from the best source (not yet projected onto its skin).

    Parameters
    ----------
    scalp : tmsplan.head.scalp.ScalpSurface
        The head's scalp (its ``frame`` names the world frame).
    mni_to_subject : tmsplan.xfm.transforms.MniToSubject, optional
        For a patient's head: carries :data:`MNI_LANDMARKS` into it.
    landmarks : path or Landmarks, optional
        Landmarks given by the user (TSV ``name x y z`` in the head's frame);
        required when the head is defaced or there is no transform.

    Returns
    -------
    Landmarks

    Raises
    ------
    EegError
        No usable landmarks (defaced head or no transform without ``landmarks``),
        or landmarks in another frame.
    """
    frame = scalp.frame
    if isinstance(landmarks, Landmarks):
        given = landmarks
    elif landmarks is not None:
        given = read_landmarks(landmarks, frame=frame)
    elif frame == MNI_FRAME:
        xyz = np.array([MNI_LANDMARKS[n] for n in LANDMARK_NAMES])
        given = Landmarks(xyz, MNI_FRAME, "detected on the embedded MNI head (MNI_LANDMARKS)")
    elif scalp.defaced:
        raise EegError(
            "the head looks defaced (face removed), so the nasion cannot be found on it: give "
            "the landmarks yourself (--landmarks TSV with nasion, inion, lpa, rpa in the T1's "
            "world mm)."
        )
    elif mni_to_subject is not None:
        given = carry_landmarks(mni_to_subject)
    else:
        raise EegError(
            "10-20 positions on a patient's head need landmarks: an MNI->T1 transform "
            "(--mni-to-t1 XFM or --register) to carry them from MNI, or --landmarks TSV."
        )
    if given.frame != frame:
        raise EegError(f"landmarks are in {given.frame} but the head is in {frame}.")
    return given


def head_positions(
    scalp: Any,
    *,
    mni_to_subject: Any = None,
    landmarks: str | os.PathLike | Landmarks | None = None,
    system: str = "10-10",
) -> CapPositions:
    """Cap positions on a head's scalp surface, with landmarks from the best source.

    Parameters
    ----------
    scalp : tmsplan.head.ScalpSurface
        The head's scalp (its ``frame`` names the world frame).
    mni_to_subject, landmarks
        See :func:`head_landmarks`.
    system : {"10-20", "10-10"}

    Returns
    -------
    CapPositions

    Raises
    ------
    EegError
        No usable landmarks (defaced head or no transform without ``landmarks``),
        or the positions cannot be traced.
    """
    given = head_landmarks(scalp, mni_to_subject=mni_to_subject, landmarks=landmarks)
    return cap_positions(scalp.mesh, given, system=system, fov_boundary=scalp.fov_boundary)
