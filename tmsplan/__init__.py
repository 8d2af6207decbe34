"""tmsplan: plan TMS targets for drug-craving research.

Activation map x craving ROI -> cortical target -> scalp entry -> coil pose ->
neuronavigator files, with 3D pictures and an offline report. Research planning
aid (geometry, not an E-field model); a clinician reviews every target.

The public API is small and imported lazily (``import tmsplan`` is cheap):

>>> import tmsplan
>>> plan = tmsplan.plan_target("map.nii.gz", roi="cocaine_mfg_l")  # doctest: +SKIP
>>> tmsplan.write_plan(plan, "out/")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_PUBLIC = {
    "plan_target": "tmsplan.plan",
    "write_plan": "tmsplan.plan",
    "Plan": "tmsplan.plan",
    "Target": "tmsplan.pipeline",
    "read_peak_table": "tmsplan.activation",
    "map_from_peaks": "tmsplan.activation",
    "mni_map_from_peak_table": "tmsplan.activation",
    "select_target": "tmsplan.activation",
    "load_rois": "tmsplan.atlas",
    "get_roi": "tmsplan.atlas",
    "roi_mask_img": "tmsplan.atlas",
    "scalp_surface": "tmsplan.head",
    "place_coil": "tmsplan.projection",
    "check_img": "tmsplan.images",
    "Points": "tmsplan.spaces",
    "CoilPoses": "tmsplan.spaces",
    "Transform": "tmsplan.spaces",
    "read_record": "tmsplan.record",
    "write_record": "tmsplan.record",
    "validate_record": "tmsplan.record_checks",
    "export_record": "tmsplan.export",
    "export_all": "tmsplan.export",
    "read_export": "tmsplan.export",
    "register_mni_to_t1": "tmsplan.registration",
    "load_mni_to_subject": "tmsplan.transforms",
    "MniToSubject": "tmsplan.transforms",
    "report_record": "tmsplan.review",
    "view_record": "tmsplan.review",
    "group_picture": "tmsplan.review",
    "load_mni_head": "tmsplan.bundled",
    "load_mni_brain_mask": "tmsplan.bundled",
    # errors users catch, and the warnings tmsplan issues
    "TmsplanError": "tmsplan.errors",
    "ImageError": "tmsplan.errors",
    "SpaceError": "tmsplan.errors",
    "RoiError": "tmsplan.errors",
    "ActivationError": "tmsplan.errors",
    "EmptyIntersectionError": "tmsplan.errors",
    "HeadSurfaceError": "tmsplan.errors",
    "UnreachableTargetError": "tmsplan.errors",
    "PoseError": "tmsplan.errors",
    "FormatError": "tmsplan.errors",
    "OutputExistsError": "tmsplan.errors",
    "OutputError": "tmsplan.errors",
    "RegistrationError": "tmsplan.errors",
    "RecordError": "tmsplan.errors",
    "RenderError": "tmsplan.errors",
    "TmsplanWarning": "tmsplan.errors",
    "PlanWarning": "tmsplan.errors",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> object:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'tmsplan' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)
