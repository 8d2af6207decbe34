"""Only brain is a target: given coordinates outside the brain are refused or moved."""

from __future__ import annotations

import numpy as np
import pytest

import tmsplan
from tmsplan.errors import ActivationError
from tmsplan.pipeline.plan import GIVEN_TARGET_TOLERANCE_MM


@pytest.mark.slow
@pytest.mark.parametrize(
    ("xyz", "what"),
    [((0, 0, 95), "scalp"), ((0, 0, 85), "skull"), ((-75, 0, 10), "temporal muscle")],
)
def test_non_brain_coordinates_are_refused(xyz, what):
    with pytest.raises(ActivationError, match=r"mm outside the brain") as caught:
        tmsplan.plan_target(target_mni=xyz)
    message = str(caught.value)
    assert "nearest brain point" in message and "\n" not in message
    distance = float(message.split(" is ")[1].split(" mm")[0])
    assert distance > GIVEN_TARGET_TOLERANCE_MM


@pytest.mark.slow
def test_coordinate_just_outside_the_brain_is_moved_with_a_warning():
    plan = tmsplan.plan_target(target_mni=(-68, -20, 20))  # ~2-3 mm lateral of the brain
    target = plan.record["targets"][0]
    moved = target["given_target_moved_mm"]
    assert 0 < moved <= GIVEN_TARGET_TOLERANCE_MM
    assert any("outside the brain" in w and "moved" in w for w in plan.record["warnings"])
    assert np.linalg.norm(np.subtract(target["cortical_mm"], (-68, -20, 20))) == pytest.approx(
        moved, abs=1e-3
    )
    assert target["cortical_mm"][0] < 0  # still left


@pytest.mark.slow
def test_brain_coordinate_is_kept_and_checked():
    plan = tmsplan.plan_target(target_mni=(-38, 44, 26))
    target = plan.record["targets"][0]
    assert target["given_target_moved_mm"] == 0.0
    assert target["cortical_mm"] == [-38.0, 44.0, 26.0]
    check = target["entry_check"]
    assert check["on_outer_skin"] is True
    assert 6.0 <= check["scalp_brain_mm"] <= 40.0
