"""tmsplan on real single-subject T1s from ../shared/real-heads (skipped when absent).

The scalp entry and depth are compared with an outer skin found independently in
the test: along rays from the target in every direction, the first crossing of
the head's intensity threshold met coming in from outside the head (a cavity wall
is never the first crossing from outside).
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from _paths import SHARED
from nibabel.affines import apply_affine
from scipy import ndimage
from skimage.filters import threshold_otsu

import tmsplan
from tmsplan.xfm.registration import register_mni_to_t1

HEADS = SHARED / "real-heads"
CHRIS = HEADS / "chris_t1.nii.gz"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHRIS.is_file(), reason="../shared/real-heads not available"),
]

TARGETS = {
    "frontal_pole": (-24.0, 64.0, 0.0),
    "orbitofrontal": (-40.0, 50.0, -10.0),
    "medial_prefrontal": (-10.0, 66.0, 10.0),
    "left_dlpfc": (-38.0, 44.0, 26.0),
    "hand_knob": (-37.0, -21.0, 58.0),
}


def _fibonacci_directions(n: int) -> np.ndarray:
    i = np.arange(n) + 0.5
    phi = np.arccos(1 - 2 * i / n)
    theta = np.pi * (1 + 5**0.5) * i
    return np.c_[np.cos(theta) * np.sin(phi), np.sin(theta) * np.sin(phi), np.cos(phi)]


def _independent_outer_skin_depth(img, target, n_rays=3000):
    """Distance from ``target`` to the outer skin along rays, found from outside inward."""
    data = ndimage.gaussian_filter(np.asarray(img.dataobj, dtype=np.float32), 1.0)
    level = 0.5 * threshold_otsu(data)
    inverse = np.linalg.inv(img.affine)
    steps = np.arange(150.0, 0.0, -0.25)  # from far outside inward
    best = np.inf
    for direction in _fibonacci_directions(n_rays):
        points = target + steps[:, None] * direction
        ijk = apply_affine(inverse, points)
        inside_box = np.all((ijk > -0.5) & (ijk < np.asarray(img.shape) - 0.5), axis=1)
        if not inside_box.any():
            continue
        values = ndimage.map_coordinates(data, ijk.T, order=1, mode="nearest")
        first_in_box = int(np.argmax(inside_box))
        if values[first_in_box] >= level:  # the ray enters through a cut of the field of view
            continue
        tissue = np.nonzero((values >= level) & inside_box)[0]
        if tissue.size:
            best = min(best, float(steps[tissue[0]]))
    return best


@pytest.fixture(scope="module")
def chris_plans():
    img = nib.load(CHRIS)
    registration = register_mni_to_t1(img, kind="affine")
    plans = {}
    for name, mni in TARGETS.items():
        plans[name] = tmsplan.plan_target(
            target_mni=mni,
            t1=img,
            mni_to_t1=registration.mni_to_subject,
            target_name=name,
        )
    return img, plans, registration.mni_to_subject


def test_scalp_is_one_closed_outer_skin_of_genus_zero(chris_plans):
    _, plans, _ = chris_plans
    scalp = plans["frontal_pole"].scalp
    assert scalp.mesh.is_watertight
    assert scalp.mesh.euler_number == 2 and scalp.genus == 0


@pytest.mark.parametrize("name", list(TARGETS))
def test_entries_on_the_outer_skin_at_true_depth(chris_plans, name):
    img, plans, _ = chris_plans
    target = plans[name].record["targets"][0]
    cortical = np.asarray(target["cortical_mm"])
    expected = _independent_outer_skin_depth(img, cortical)
    assert target["depth_mm"] == pytest.approx(expected, abs=3.0)
    assert 12.0 < target["depth_mm"] < 30.0  # adult frontal/motor targets: ~16-23 mm
    assert target["entry_check"]["on_outer_skin"] is True
    assert target["reachable"] is True
    assert target["cortical_mm"][0] < 0  # left targets stay left
    assert target["scalp_mm"][0] < 0


def test_hand_knob_carried_into_a_real_head_ends_in_grey_matter(chris_plans):
    _, plans, _ = chris_plans
    target = plans["hand_knob"].record["targets"][0]
    tissue = target["tissue"]
    assert tissue["at_target"] == "grey matter"
    assert tissue["given"] in ("grey matter", "white matter", "csf")
    assert tissue["moved_to_grey_matter_mm"] < 10.0
    assert target["cortical_mm"][0] < 0  # still the left hand knob
    assert tissue["method"]  # the method is stated in the record


def test_no_snap_keeps_the_carried_target_and_records_its_tissue(chris_plans):
    img, plans, xfm = chris_plans
    snapped = plans["hand_knob"]
    kept = tmsplan.plan_target(
        target_mni=TARGETS["hand_knob"],
        t1=img,
        mni_to_t1=xfm,
        target_name="hand_knob",
        snap_to_grey_matter=False,
    )
    tissue = kept.record["targets"][0]["tissue"]
    assert tissue["moved_to_grey_matter_mm"] == 0.0
    assert tissue["at_target"] == tissue["given"]
    moved = snapped.record["targets"][0]["tissue"]["moved_to_grey_matter_mm"]
    kept_xyz = kept.record["targets"][0]["cortical_mm"]
    gap = np.linalg.norm(np.subtract(kept_xyz, snapped.record["targets"][0]["cortical_mm"]))
    assert gap == pytest.approx(moved, abs=1e-3)
