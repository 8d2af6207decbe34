"""Depth-adjusted stimulation intensity from the motor threshold.

Design notes: ``docs/clinic.md``, section ``tmsplan.clinic.dose``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tmsplan.errors import TmsplanError

__all__ = [
    "DoseError",
    "STOKES_K",
    "HAND_KNOB_MNI",
    "Coil",
    "DEFAULT_COIL",
    "check_dose_inputs",
    "stokes_dose",
    "sphere_dose",
    "sphere_efield",
    "dose",
    "fit_local_radius",
]

STOKES_K = {"stokes2007": 2.8, "stokes2005": 3.0}
"""Slope of the linear depth correction, %MSO per mm."""
_STOKES_SOURCE = {
    "stokes2007": (
        "Stokes MG et al. (2007) Distance-adjusted motor threshold for transcranial magnetic "
        "stimulation. Clin Neurophysiol 118:1617-1625 (k = 2.8 %MSO/mm)"
    ),
    "stokes2005": (
        "Stokes MG et al. (2005) Simple metric for scaling motor threshold based on "
        "scalp-cortex distance: application to studies using transcranial magnetic "
        "stimulation. J Neurophysiol 94:4520-4527 (k = 3 %MSO/mm)"
    ),
}
_SPHERE_SOURCE = (
    "Heller L, van Hulsteyn DB (1992) Brain stimulation using electromagnetic sources: "
    "theoretical aspects. Biophys J 63:129-138 (closed-form E-field in a spherical "
    "conductor, independent of conductivity); coil dimensions close to the Magstim 70 mm "
    "coil (Thielscher A, Kammer T (2004) Clin Neurophysiol 115:1697-1708)"
)
HAND_KNOB_MNI = (-37.0, -21.0, 58.0)
"""Left motor hand knob (MNI152 mm) where the motor threshold is measured (the
cortex under the coil's hotspot for the right hand)."""
CAVEATS = (
    "An estimate for research planning, not a prescription: the depth correction accounts "
    "for scalp-to-cortex distance only (not gyral orientation, tissue conductivities or "
    "local excitability).",
    "Check the adjusted intensity against the safety guidelines for the protocol "
    "(Rossi et al. 2021) before use; a clinician decides.",
)


class DoseError(TmsplanError, ValueError):
    """Dose inputs (motor threshold, depths, method) are out of range."""


@dataclass(frozen=True)
class Coil:
    """A figure-8 coil as two wings of concentric circular turns.

    Attributes
    ----------
    name : str
    inner_radius_mm, outer_radius_mm : float
        Radii of the innermost and outermost turn of a wing.
    turns : int
        Turns per wing.
    winding_height_mm : float
        Windings above the scalp (coil-skin distance plus the casing).
    """

    name: str = "figure-8, 70 mm wings"
    inner_radius_mm: float = 28.0
    outer_radius_mm: float = 43.5
    turns: int = 9
    winding_height_mm: float = 6.0

    def dipoles(self, n_radial: int = 24, n_angular: int = 36) -> tuple[np.ndarray, np.ndarray]:
        """Dipoles filling the wings, coil frame (mm; coil z = into the head).

        A flat turn of radius rho equals a uniform sheet of magnetic dipoles over its
        disc; stacking the turns gives a sheet whose density at radius s is the
        number of turns enclosing s. Wing centres at ``x = +/- outer_radius_mm``,
        opposite currents.

        Returns
        -------
        positions : (k, 3) float
            Dipole positions, z = 0 (the winding plane).
        moments : (k, 3) float
            Moments (A mm^2 per ampere of coil current), along +/-z.
        """
        radii = np.linspace(self.inner_radius_mm, self.outer_radius_mm, self.turns)
        edges = np.linspace(0.0, self.outer_radius_mm, n_radial + 1)
        mid = 0.5 * (edges[1:] + edges[:-1])
        area = np.pi * (edges[1:] ** 2 - edges[:-1] ** 2) / n_angular
        weight = np.array([np.count_nonzero(radii >= s) for s in mid]) * area
        angles = (np.arange(n_angular) + 0.5) * 2 * np.pi / n_angular
        rr, aa = np.meshgrid(mid, angles, indexing="ij")
        ww = np.repeat(weight[:, None], n_angular, axis=1)
        local = np.stack([rr * np.cos(aa), rr * np.sin(aa), np.zeros_like(rr)], -1).reshape(-1, 3)
        ww = ww.ravel()
        positions, moments = [], []
        for sign in (1.0, -1.0):
            positions.append(local + [sign * self.outer_radius_mm, 0.0, 0.0])
            moments.append(np.outer(sign * ww, [0.0, 0.0, 1.0]))
        return np.vstack(positions), np.vstack(moments)


DEFAULT_COIL = Coil()


def _check_number(value: float, name: str, low: float, high: float, *, strict_low: bool) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DoseError(f"{name} must be a number, got {value!r}.") from None
    ok = (
        math.isfinite(number) and (number > low if strict_low else number >= low) and number <= high
    )
    if not ok:
        bound = f"greater than {low:g}" if strict_low else f"at least {low:g}"
        raise DoseError(f"{name} must be {bound} and at most {high:g}, got {value!r}.")
    return number


def check_dose_inputs(
    motor_threshold: float, target_depth_mm: float, motor_depth_mm: float
) -> tuple[float, float, float]:
    """Check the motor threshold (1-100 %MSO) and the depths (0-100 mm, exclusive of 0).

    Raises
    ------
    DoseError
        A value out of range, with the option name and the value given.
    """
    mt = _check_number(motor_threshold, "--motor-threshold (%MSO)", 1.0, 100.0, strict_low=False)
    td = _check_number(target_depth_mm, "--target-depth (mm)", 0.0, 100.0, strict_low=True)
    md = _check_number(motor_depth_mm, "--motor-depth (mm)", 0.0, 100.0, strict_low=True)
    return mt, td, md


def _result(method, mt, td, md, adjusted, source, formula, extra=None) -> dict:
    out = {
        "method": method,
        "motor_threshold_percent": round(mt, 2),
        "target_depth_mm": round(td, 2),
        "motor_depth_mm": round(md, 2),
        "adjusted_percent_mso": round(adjusted, 1),
        "achievable": bool(adjusted <= 100.0),
        "formula": formula,
        "source": source,
        "caveats": list(CAVEATS),
    }
    if adjusted > 100.0:
        out["caveats"].insert(
            0,
            f"the adjusted intensity ({adjusted:.1f} %MSO) exceeds what the stimulator can "
            "give: the target is NOT reachable at this intensity with this coil.",
        )
    elif adjusted < mt:
        out["caveats"].insert(
            0,
            "the adjusted intensity is below the motor threshold because the target lies "
            "shallower than the motor hotspot; many protocols never go below the threshold.",
        )
    if extra:
        out.update(extra)
    return out


def stokes_dose(
    motor_threshold: float,
    target_depth_mm: float,
    motor_depth_mm: float,
    *,
    variant: str = "stokes2007",
) -> dict:
    """Linear depth correction ``MT + k (D_target - D_motor)``.

    Parameters
    ----------
    motor_threshold : float
        Resting motor threshold, %MSO (1-100).
    target_depth_mm, motor_depth_mm : float
        Scalp-to-cortex distances at the target and at the motor hotspot (mm, > 0).
    variant : {"stokes2007", "stokes2005"}
        k = 2.8 or 3.0 %MSO/mm.

    Returns
    -------
    dict
        See :func:`dose`.

    Examples
    --------
    >>> stokes_dose(55, 22, 18)["adjusted_percent_mso"]
    66.2
    """
    if variant not in STOKES_K:
        raise DoseError(f"variant must be one of {sorted(STOKES_K)}, got {variant!r}.")
    mt, td, md = check_dose_inputs(motor_threshold, target_depth_mm, motor_depth_mm)
    k = STOKES_K[variant]
    adjusted = mt + k * (td - md)
    formula = f"MT + {k:g} x (D_target - D_motor) = {mt:g} + {k:g} x ({td:.1f} - {md:.1f})"
    return _result(
        "stokes", mt, td, md, adjusted, _STOKES_SOURCE[variant], formula, {"k_percent_per_mm": k}
    )


def sphere_efield(
    points: np.ndarray, dipole_positions: np.ndarray, moments: np.ndarray
) -> np.ndarray:
    """E-field inside a conducting sphere (centre at the origin) from magnetic dipoles outside.

    Heller & van Hulsteyn (1992): for a dipole ``m`` at ``r0`` and a point ``r``
    inside, with ``a = r0 - r``, ``F = |a| (|r0||a| + |r0|^2 - r0.r)`` and
    ``grad F`` taken with respect to ``r0``,
    ``E = -(mu0 / 4 pi F^2) (F r x dm/dt - (dm/dt . grad F) r x r0)``.
    The result does not depend on the conductivity and has no radial component.

    Parameters
    ----------
    points : (n, 3) float
        Field points, mm, inside the sphere.
    dipole_positions : (k, 3) float
        Dipole positions, mm, outside the sphere.
    moments : (k, 3) float
        Rate of change of the dipole moments (any consistent unit).

    Returns
    -------
    (n, 3) float
        E-field up to the constant ``mu0 / 4 pi`` (same unit for every call, so
        ratios are exact).
    """
    r = np.asarray(points, dtype=np.float64)[:, None, :]  # (n, 1, 3)
    r0 = np.asarray(dipole_positions, dtype=np.float64)[None, :, :]  # (1, k, 3)
    m = np.asarray(moments, dtype=np.float64)[None, :, :]
    a_vec = r0 - r
    a = np.linalg.norm(a_vec, axis=-1)
    r0n = np.linalg.norm(r0, axis=-1)
    r0_dot_r = np.sum(r0 * r, axis=-1)
    a_dot_r0 = np.sum(a_vec * r0, axis=-1)
    f = a * (r0n * a + r0n**2 - r0_dot_r)
    grad_f = (a**2 / r0n + a_dot_r0 / a + 2 * a + 2 * r0n)[..., None] * r0 - (
        a + 2 * r0n + a_dot_r0 / a
    )[..., None] * r
    m_dot_grad = np.sum(m * grad_f, axis=-1)
    term = f[..., None] * np.cross(r, m) - m_dot_grad[..., None] * np.cross(r, r0)
    return -np.sum(term / (f**2)[..., None], axis=1)


def _field_under_coil(depth_mm: float, radius_mm: float, coil: Coil) -> float:
    """|E| at ``depth_mm`` below the scalp under the centre of a tangential coil."""
    positions, moments = coil.dipoles()
    # coil frame: z into the head; put the coil over the sphere's north pole (+z world)
    world_pos = positions * [1.0, 1.0, -1.0] + [0.0, 0.0, radius_mm + coil.winding_height_mm]
    world_mom = moments * [1.0, 1.0, -1.0]
    point = np.array([[0.0, 0.0, radius_mm - depth_mm]])
    return float(np.linalg.norm(sphere_efield(point, world_pos, world_mom)[0]))


def sphere_dose(
    motor_threshold: float,
    target_depth_mm: float,
    motor_depth_mm: float,
    *,
    target_radius_mm: float = 85.0,
    motor_radius_mm: float = 85.0,
    coil: Coil = DEFAULT_COIL,
) -> dict:
    """``MT x E_motor / E_target`` from the field of a figure-8 coil in a sphere.

    Parameters
    ----------
    motor_threshold, target_depth_mm, motor_depth_mm : float
        As for :func:`stokes_dose`.
    target_radius_mm, motor_radius_mm : float
        Radius of the sphere fitted to the scalp at each site (mm, 40-200).
    coil : Coil
        The coil model.

    Returns
    -------
    dict
        See :func:`dose`; also ``e_ratio`` (E_motor / E_target), the radii and the coil.
    """
    mt, td, md = check_dose_inputs(motor_threshold, target_depth_mm, motor_depth_mm)
    rt = _check_number(target_radius_mm, "target sphere radius (mm)", 40.0, 200.0, strict_low=False)
    rm = _check_number(motor_radius_mm, "motor sphere radius (mm)", 40.0, 200.0, strict_low=False)
    if td >= rt or md >= rm:
        raise DoseError("a depth must be smaller than the radius of the sphere fitted to the head.")
    e_target = _field_under_coil(td, rt, coil)
    e_motor = _field_under_coil(md, rm, coil)
    ratio = e_motor / e_target
    adjusted = mt * ratio
    formula = f"MT x E_motor / E_target = {mt:g} x {ratio:.4f}"
    extra = {
        "e_ratio": round(ratio, 5),
        "target_sphere_radius_mm": round(rt, 1),
        "motor_sphere_radius_mm": round(rm, 1),
        "coil": {
            "name": coil.name,
            "inner_radius_mm": coil.inner_radius_mm,
            "outer_radius_mm": coil.outer_radius_mm,
            "turns_per_wing": coil.turns,
            "winding_height_mm": coil.winding_height_mm,
        },
    }
    return _result("sphere", mt, td, md, adjusted, _SPHERE_SOURCE, formula, extra)


def dose(
    motor_threshold: float,
    target_depth_mm: float,
    motor_depth_mm: float,
    *,
    method: str = "stokes",
    variant: str = "stokes2007",
    target_radius_mm: float = 85.0,
    motor_radius_mm: float = 85.0,
) -> dict:
    """Depth-adjusted intensity by the chosen method.

    Parameters
    ----------
    motor_threshold : float
        %MSO, 1-100.
    target_depth_mm, motor_depth_mm : float
        mm, > 0.
    method : {"stokes", "sphere"}
    variant : {"stokes2007", "stokes2005"}
        Slope of the ``stokes`` method.
    target_radius_mm, motor_radius_mm : float
        Local head radii for ``sphere``.

    Returns
    -------
    dict
        ``method``, ``motor_threshold_percent``, ``target_depth_mm``,
        ``motor_depth_mm``, ``adjusted_percent_mso``, ``achievable`` (False above
        100 %MSO), ``formula``, ``source``, ``caveats`` and method details.
    """
    if method == "stokes":
        return stokes_dose(motor_threshold, target_depth_mm, motor_depth_mm, variant=variant)
    if method == "sphere":
        return sphere_dose(
            motor_threshold,
            target_depth_mm,
            motor_depth_mm,
            target_radius_mm=target_radius_mm,
            motor_radius_mm=motor_radius_mm,
        )
    raise DoseError(f"--method must be 'stokes' or 'sphere', got {method!r}.")


def fit_local_radius(
    vertices: np.ndarray, centre: Sequence[float], *, within_mm: float = 40.0
) -> float:
    """Radius of the sphere fitted (least squares) to scalp vertices near a point.

    Parameters
    ----------
    vertices : (n, 3) float
        Scalp mesh vertices, mm.
    centre : (3,) float
        The scalp point (entry) the coil sits over.
    within_mm : float
        Vertices closer than this are used.

    Returns
    -------
    float
        Radius in mm, clipped to 40-200 mm.
    """
    v = np.asarray(vertices, dtype=np.float64)
    near = v[np.linalg.norm(v - np.asarray(centre, dtype=np.float64), axis=1) <= within_mm]
    if len(near) < 10:
        return 85.0
    # |x|^2 = 2 c.x + (r^2 - |c|^2): linear least squares in (c, k)
    a = np.hstack([2 * near, np.ones((len(near), 1))])
    b = np.sum(near**2, axis=1)
    sol, *_ = np.linalg.lstsq(a, b, rcond=None)
    radius = math.sqrt(max(sol[3] + float(sol[:3] @ sol[:3]), 1.0))
    return float(np.clip(radius, 40.0, 200.0))
