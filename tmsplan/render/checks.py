"""Checks of a plan scene: the drawn pose against the scalp, and every layer present.

A picture that does not show what the record says must fail, not be written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import trimesh

from tmsplan.errors import RenderError
from tmsplan.io.record import target_pose
from tmsplan.render.meshes import _as_trimesh, _coil_is_stand_in, _roi_sphere, coil_meshes

if TYPE_CHECKING:  # pragma: no cover
    import pyvista as pv

__all__ = ["check_layers", "scene_geometry"]


def _signed_distance_outside(scalp: trimesh.Trimesh, points: np.ndarray) -> np.ndarray:
    """Distance of points to the scalp, positive outside (along the outward normals)."""
    closest, distance, triangle = trimesh.proximity.closest_point(scalp, points)
    normals = scalp.face_normals[triangle]
    side = np.sign(np.einsum("ij,ij->i", points - closest, normals))
    side[side == 0] = 1.0
    return side * distance


def scene_geometry(record: Mapping, scalp_mesh: Any) -> list[dict]:
    """The numbers each drawn target is built from, checked against the scalp.

    For every target of the record: how far the recorded scalp entry lies from
    the scalp mesh, whether coil z points into the head, whether the drawn
    handle runs along coil y, and whether the drawn coil stays outside the head.

    Parameters
    ----------
    record : dict
        Plan record (``target.json`` content).
    scalp_mesh : trimesh.Trimesh or pyvista.PolyData
        Scalp in ``record["space"]`` (RAS+ mm), outward face normals.

    Returns
    -------
    list of dict
        One per target: ``name``, ``entry_to_scalp_mm`` (float),
        ``coil_z_dot_outward`` (cosine of coil z with the outward scalp normal
        at the entry; -1 = straight in), ``handle_drawn`` ((3,) unit vector from
        the coil centre to the centre of the drawn handle, projected on the coil
        plane), ``handle_dot_y`` (its cosine with coil y),
        ``coil_clearance_mm`` (smallest distance of the drawn coil outside the
        scalp; negative = inside the head) and ``problems`` (list of str).
    """
    scalp = _as_trimesh(scalp_mesh)
    out = []
    for target in record["targets"]:
        name = str(target["name"])
        matrix = target_pose(target)
        entry = np.asarray(target["scalp_mm"], dtype=np.float64).reshape(1, 3)
        closest, distance, triangle = trimesh.proximity.closest_point(scalp, entry)
        outward = scalp.face_normals[triangle[0]]
        z_axis, y_axis = matrix[:3, 2], matrix[:3, 1]
        meshes = coil_meshes(matrix, stand_in=_coil_is_stand_in(record))
        handle_vec = np.asarray(meshes["handle"].center, dtype=np.float64) - matrix[:3, 3]
        handle_vec -= handle_vec.dot(z_axis) * z_axis
        handle_drawn = handle_vec / np.linalg.norm(handle_vec)
        body_points = np.asarray(meshes["body"].points, dtype=np.float64)
        clearance = float(_signed_distance_outside(scalp, body_points).min())
        info = {
            "name": name,
            "entry_to_scalp_mm": float(distance[0]),
            "coil_z_dot_outward": float(z_axis.dot(outward)),
            "handle_drawn": handle_drawn,
            "handle_dot_y": float(handle_drawn.dot(y_axis)),
            "coil_clearance_mm": clearance,
            "problems": [],
        }
        if info["entry_to_scalp_mm"] > 1.0:
            info["problems"].append(
                f"target {name!r}: the scalp entry is {info['entry_to_scalp_mm']:.1f} mm off "
                "the scalp surface drawn; the record and this head do not match."
            )
        if info["coil_z_dot_outward"] > -0.5:
            info["problems"].append(
                f"target {name!r}: coil z does not point into the head (cosine with the "
                f"outward scalp normal {info['coil_z_dot_outward']:+.2f}, expected near -1)."
            )
        if clearance < -2.0 and bool(target.get("reachable", True)):
            info["problems"].append(
                f"target {name!r}: the drawn coil reaches {-clearance:.1f} mm inside the scalp."
            )
        out.append(info)
    return out


def _expected_layers(
    record: Mapping, *, brain: bool, activation: bool, roi: bool, landmarks: bool
) -> list[str]:
    """Names of the actors a plan scene must hold, from what was asked for."""
    names = ["scalp"]
    names += ["brain"] if brain else []
    names += ["activation"] if activation else []
    names += ["roi"] if roi or _roi_sphere(record) is not None else []
    for i, target in enumerate(record["targets"]):
        names += [f"target-{i}", f"entry-{i}", f"depth-{i}"]
        if bool(target.get("reachable", True)):
            names += [f"coil-{i}", f"handle-{i}"]
    names += ["landmarks"] if landmarks else []
    return names


def check_layers(plotter: pv.Plotter, names: Sequence[str]) -> None:
    """Check that every named layer is in the scene, visible, with points to draw.

    A picture missing its brain or scalp must fail, not be written.

    Parameters
    ----------
    plotter : pyvista.Plotter
    names : sequence of str
        Actor names (as given to ``add_mesh(name=...)``).

    Raises
    ------
    RenderError
        A layer is missing, hidden or empty.
    """
    missing = []
    for name in names:
        actor = plotter.actors.get(name)
        mapper = getattr(actor, "mapper", None)
        data = getattr(mapper, "dataset", None) if mapper is not None else None
        if data is None or data.n_points == 0 or not actor.GetVisibility():
            missing.append(name)
    if missing:
        raise RenderError(
            f"the 3D scene lacks layer {', '.join(missing)} (not drawn, or with no points), "
            "so its pictures would be incomplete; nothing was written. Re-run; if it "
            "happens again, report it with the plan's target.json."
        )
