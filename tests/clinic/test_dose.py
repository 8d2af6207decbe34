"""Depth-adjusted intensity: Stokes' linear rule, the sphere model, Beam F3, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tmsplan.cli import main
from tmsplan.clinic.beamf3 import BeamError, beam_f3
from tmsplan.clinic.dose import (
    DEFAULT_COIL,
    DoseError,
    dose,
    fit_local_radius,
    sphere_dose,
    sphere_efield,
    stokes_dose,
)


def test_stokes_published_example():
    result = stokes_dose(55, 22, 18)
    assert result["adjusted_percent_mso"] == pytest.approx(66.2)
    assert result["achievable"] is True and "Stokes" in result["source"]
    assert stokes_dose(55, 22, 18, variant="stokes2005")["adjusted_percent_mso"] == 67.0
    high = stokes_dose(90, 30, 15)
    assert high["adjusted_percent_mso"] == pytest.approx(132.0)
    assert high["achievable"] is False and "NOT reachable" in high["caveats"][0]


@pytest.mark.parametrize(
    ("mt", "td", "md", "message"),
    [
        (0.5, 20, 18, "--motor-threshold"),
        (101, 20, 18, "--motor-threshold"),
        (float("nan"), 20, 18, "--motor-threshold"),
        (55, 0, 18, "--target-depth"),
        (55, -3, 18, "--target-depth"),
        (55, 20, 0, "--motor-depth"),
    ],
)
def test_bad_dose_inputs(mt, td, md, message):
    for method in ("stokes", "sphere"):
        with pytest.raises(DoseError, match=message) as info:
            dose(mt, td, md, method=method)
        assert "\n" not in str(info.value)


def test_sphere_limits():
    same = sphere_dose(55, 18, 18)
    assert same["adjusted_percent_mso"] == pytest.approx(55.0)
    assert same["e_ratio"] == pytest.approx(1.0)
    deeper = [sphere_dose(55, d, 18)["adjusted_percent_mso"] for d in (20, 24, 28)]
    assert 55 < deeper[0] < deeper[1] < deeper[2]
    assert sphere_dose(55, 14, 18)["adjusted_percent_mso"] < 55
    # close to Stokes' empirical slope for these depths (a check of scale, not of truth)
    assert abs(sphere_dose(55, 22, 18)["adjusted_percent_mso"] - 66.2) < 5


def test_sphere_efield_against_the_primary_field():
    """Independent check of the closed form: E has no radial part, and E minus the
    primary field -dA/dt of the dipoles (Biot-Savart vector potential) is curl-free."""
    rng = np.random.default_rng(3)
    dipoles = np.array([[10.0, 5.0, 100.0], [-20.0, 0.0, 96.0]])
    moments = rng.normal(size=(2, 3))

    def primary(p):
        d = p - dipoles
        return -np.sum(np.cross(moments, d) / np.linalg.norm(d, axis=1)[:, None] ** 3, axis=0)

    def secondary(p):
        return sphere_efield(p[None], dipoles, moments)[0] - primary(p)

    for point in (np.array([5.0, -3.0, 60.0]), np.array([20.0, 10.0, 40.0])):
        field = sphere_efield(point[None], dipoles, moments)[0]
        assert abs(field @ point) < 1e-9 * np.linalg.norm(field) * np.linalg.norm(point)
        h = 1e-3
        jac = np.column_stack(
            [(secondary(point + h * e) - secondary(point - h * e)) / (2 * h) for e in np.eye(3)]
        )
        curl = np.array([jac[2, 1] - jac[1, 2], jac[0, 2] - jac[2, 0], jac[1, 0] - jac[0, 1]])
        assert np.linalg.norm(curl) < 1e-6 * np.linalg.norm(jac)
        # and divergence-free (no charge inside): with E.r = 0 on the surface this makes
        # it the unique solution of the sphere's Neumann problem
        assert abs(np.trace(jac)) < 1e-6 * np.linalg.norm(jac)
        assert np.linalg.norm(primary(point)) > 0.1 * np.linalg.norm(field)


def test_coil_and_local_radius():
    positions, moments = DEFAULT_COIL.dipoles()
    assert np.isclose(moments[:, 2].sum(), 0.0)  # two wings, opposite currents
    assert positions[:, 0].min() < 0 < positions[:, 0].max()
    ico = np.random.default_rng(0).normal(size=(4000, 3))
    vertices = 80.0 * ico / np.linalg.norm(ico, axis=1)[:, None]
    assert fit_local_radius(vertices, [0, 0, 80]) == pytest.approx(80.0, rel=1e-6)


def test_beam_f3_calculator_values():
    # The Beam F3 calculator's construction re-derived as a line intersection in the
    # test (Cz at the origin, front = -y, left = +x): F3 = Fz->F7 line x C3->Fp1 line.
    ni, tt, circ = 36.0, 36.0, 57.0
    r1, r2 = 0.4 * ni, 0.4 * tt
    d = np.deg2rad
    fz = np.array([0.0, -r1 / 2])
    direction_f = np.array([1.0, (r2 * np.sin(d(324)) + r1 / 2) / r2])
    c3 = np.array([r2 / 2, 0.0])
    fp1 = r1 * np.array([np.cos(d(298)), np.sin(d(298))])
    s, _ = np.linalg.solve(np.column_stack([direction_f, c3 - fp1]), c3 - fz)
    f3 = fz + s * direction_f
    theta = np.degrees(np.arctan2(f3[1], f3[0]))
    result = beam_f3(ni, tt, circ)
    assert result["y_cm"] == pytest.approx(0.91 * np.linalg.norm(f3), abs=0.01)
    assert result["x_cm"] == pytest.approx(circ / 4 * (90 + theta) / 90, abs=0.01)
    # what these formulas give for this head; no published worked example or copy of
    # the live calculator was available offline to compare with (see the README)
    assert (round(result["x_cm"], 1), round(result["y_cm"], 1)) == (6.6, 9.5)
    # bigger heads: both distances grow
    bigger = beam_f3(40, 40, 62)
    assert bigger["x_cm"] > result["x_cm"] and bigger["y_cm"] > result["y_cm"]


@pytest.mark.parametrize(
    ("ni", "tt", "circ", "message"),
    [
        (0, 36, 57, "--nasion-inion must be a positive"),
        (36, -1, 57, "--tragus-tragus must be a positive"),
        (36, 36, 0, "--circumference must be a positive"),
        (60, 36, 57, "shorter than the circumference"),
        (360, 36, 57, "not a head measure"),
    ],
)
def test_beam_f3_bad_input(ni, tt, circ, message):
    with pytest.raises(BeamError, match=message):
        beam_f3(ni, tt, circ)


def test_cli_dose_and_beam(capsys):
    assert main(["dose", "--motor-threshold", "55", "--target-depth", "22",
                 "--motor-depth", "18", "--json"]) == 0  # fmt: skip
    result = json.loads(capsys.readouterr().out)
    for key in ("method", "motor_threshold_percent", "target_depth_mm", "motor_depth_mm",
                "adjusted_percent_mso", "achievable", "source"):  # fmt: skip
        assert key in result
    assert result["adjusted_percent_mso"] == 66.2
    assert main(["dose", "--motor-threshold", "55", "--target-depth", "22",
                 "--motor-depth", "18", "--method", "sphere"]) == 0  # fmt: skip
    assert "%MSO" in capsys.readouterr().out
    assert main(["dose", "--motor-threshold", "150", "--target-depth", "22",
                 "--motor-depth", "18"]) == 1  # fmt: skip
    err = capsys.readouterr().err
    assert err.startswith("tmsplan: error: --motor-threshold") and err.count("\n") == 1
    assert main(["beam-f3", "--nasion-inion", "36", "--tragus-tragus", "36",
                 "--circumference", "57"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "X = 6.6 cm" in out and "Y = 9.5 cm" in out and "Beam" in out
    assert main(["beam-f3", "--nasion-inion", "-2", "--tragus-tragus", "36",
                 "--circumference", "57"]) == 1  # fmt: skip
    assert "positive" in capsys.readouterr().err
