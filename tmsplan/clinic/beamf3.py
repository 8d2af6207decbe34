"""The Beam F3 method: find F3 (left DLPFC) with a tape measure.

Design notes: ``docs/clinic.md``, section ``tmsplan.clinic.beamf3``.
"""

from __future__ import annotations

import math

from tmsplan.errors import TmsplanError

__all__ = ["BeamError", "beam_f3", "BEAM_SOURCE", "HOW_TO_MEASURE"]

BEAM_SOURCE = (
    "Beam W, Borckardt JJ, Reeves ST, George MS (2009) An efficient and accurate new method "
    "for locating the F3 position for prefrontal TMS applications. Brain Stimul 2:50-54; "
    "formulas of the Beam F3 web calculator"
)
HOW_TO_MEASURE = (
    "Measure (cm): nasion-inion over the vertex; tragus-tragus over the vertex; head "
    "circumference around the head through the points 10 % of the nasion-inion distance "
    "above the nasion and above the inion. Mark the vertex (Cz) at the crossing of the "
    "mid-points of the first two. Then measure X from the midline point above the nasion "
    "(Fpz) along the circumference line to the LEFT, mark that point, and measure Y from the "
    "vertex toward it: F3 is at Y from the vertex on that line."
)


class BeamError(TmsplanError, ValueError):
    """The head measurements cannot give Beam F3 distances."""


def _check(nasion_inion_cm: float, tragus_tragus_cm: float, circumference_cm: float) -> tuple:
    values = []
    for name, value in (
        ("--nasion-inion", nasion_inion_cm),
        ("--tragus-tragus", tragus_tragus_cm),
        ("--circumference", circumference_cm),
    ):
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise BeamError(f"{name} must be a length in cm, got {value!r}.") from None
        if not math.isfinite(number) or number <= 0:
            raise BeamError(f"{name} must be a positive length in cm, got {value!r}.")
        if number > 120:
            raise BeamError(f"{name} = {number:g} cm is not a head measure; give centimetres.")
        values.append(number)
    ni, tt, circ = values
    if ni >= circ or tt >= circ:
        raise BeamError(
            f"the nasion-inion ({ni:g} cm) and tragus-tragus ({tt:g} cm) arcs are half-way "
            f"round the head and must be shorter than the circumference ({circ:g} cm); check "
            "the measurements (all in cm)."
        )
    return ni, tt, circ


def beam_f3(nasion_inion_cm: float, tragus_tragus_cm: float, circumference_cm: float) -> dict:
    """Beam F3 tape distances from three head measurements.

    Parameters
    ----------
    nasion_inion_cm, tragus_tragus_cm, circumference_cm : float
        Tape measures in cm (positive; both arcs shorter than the circumference).

    Returns
    -------
    dict
        ``x_cm`` (from the midline along the circumference, to the left),
        ``y_cm`` (from the vertex toward that point), the inputs, ``how``
        and ``source``.

    Raises
    ------
    BeamError
        Non-positive or implausible measures.
    """
    ni, tt, circ = _check(nasion_inion_cm, tragus_tragus_cm, circumference_cm)
    r1, r2 = 0.4 * ni, 0.4 * tt
    fz = (0.0, -r1 / 2.0)
    slope_f = (r2 * math.sin(math.radians(324.0)) + r1 / 2.0) / r2
    c3 = (r2 / 2.0, 0.0)
    fp1 = (r1 * math.cos(math.radians(298.0)), r1 * math.sin(math.radians(298.0)))
    slope_c = (fp1[1] - c3[1]) / (fp1[0] - c3[0])
    # slope_f * x + fz_y = slope_c * (x - c3_x)
    x = (slope_c * c3[0] + fz[1]) / (slope_c - slope_f)
    y = slope_f * x + fz[1]
    theta = math.degrees(math.atan(y / x))
    y_cm = 0.91 * math.hypot(x, y)
    x_cm = circ / 4.0 * (90.0 + theta) / 90.0
    return {
        "nasion_inion_cm": round(ni, 2),
        "tragus_tragus_cm": round(tt, 2),
        "circumference_cm": round(circ, 2),
        "x_cm": round(x_cm, 2),
        "y_cm": round(y_cm, 2),
        "how": HOW_TO_MEASURE,
        "source": BEAM_SOURCE,
    }
