"""The planning steps :func:`tmsplan.pipeline.plan.plan_target` composes, callable alone.

head space -> choose target -> carry -> finalise -> place coil -> record.
"""

from tmsplan.pipeline.choose import (
    GIVEN_TARGET_TOLERANCE_MM,
    CarriedTarget,
    RoiOnMap,
    carry_target,
    check_inputs,
    check_strategy,
    choose_target,
    connectivity_choice,
    depth_function,
    finalise_target,
    grey_matter_target,
    roi_on_map,
    threshold_for,
)
from tmsplan.pipeline.place import (
    CoilSettings,
    Placed,
    candidate_frame,
    clinic_positions,
    coil_settings,
    place_candidates,
    place_target,
)
from tmsplan.pipeline.result import (
    DISCLAIMER,
    Target,
    activation_entry,
    build_record,
    image_entry,
    picture_layers,
    plan_mode,
    strategy_description,
    thresholding_entry,
)
from tmsplan.pipeline.space import (
    HeadSpace,
    head_directions,
    head_for,
    load_activation,
    resolve_head_space,
)

__all__ = [
    "DISCLAIMER",
    "GIVEN_TARGET_TOLERANCE_MM",
    "CarriedTarget",
    "CoilSettings",
    "HeadSpace",
    "Placed",
    "RoiOnMap",
    "Target",
    "activation_entry",
    "build_record",
    "candidate_frame",
    "carry_target",
    "check_inputs",
    "check_strategy",
    "choose_target",
    "clinic_positions",
    "coil_settings",
    "connectivity_choice",
    "depth_function",
    "finalise_target",
    "grey_matter_target",
    "head_directions",
    "head_for",
    "image_entry",
    "load_activation",
    "place_candidates",
    "picture_layers",
    "place_target",
    "plan_mode",
    "resolve_head_space",
    "roi_on_map",
    "strategy_description",
    "threshold_for",
    "thresholding_entry",
]
