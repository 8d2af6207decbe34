"""tmsplan: plan TMS targets for drug-craving research.

Design notes: ``docs/README.md``, section ``tmsplan``.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_PUBLIC = {
    "plan_target": "tmsplan.pipeline.plan",
    "write_plan": "tmsplan.pipeline.plan",
    "Plan": "tmsplan.pipeline.plan",
    "Target": "tmsplan.pipeline",
    "read_peak_table": "tmsplan.target.activation",
    "map_from_peaks": "tmsplan.target.activation",
    "mni_map_from_peak_table": "tmsplan.target.activation",
    "select_target": "tmsplan.target.activation",
    "load_rois": "tmsplan.target.atlas",
    "get_roi": "tmsplan.target.atlas",
    "roi_mask_img": "tmsplan.target.atlas",
    "scalp_surface": "tmsplan.head.scalp",
    "Head": "tmsplan.head.cache",
    "load_head": "tmsplan.head.cache",
    "place_coil": "tmsplan.coil.placement",
    "check_img": "tmsplan.io.images",
    "Points": "tmsplan.spaces",
    "CoilPoses": "tmsplan.spaces",
    "Transform": "tmsplan.spaces",
    "read_record": "tmsplan.io.record",
    "write_record": "tmsplan.io.record",
    "validate_record": "tmsplan.io.record_checks",
    "export_record": "tmsplan.export",
    "export_all": "tmsplan.export",
    "read_export": "tmsplan.export",
    "register_mni_to_t1": "tmsplan.xfm.registration",
    "load_mni_to_subject": "tmsplan.xfm.transforms",
    "MniToSubject": "tmsplan.xfm.transforms",
    "report_record": "tmsplan.render.review",
    "view_record": "tmsplan.render.review",
    "group_picture": "tmsplan.render.review",
    "read_manifest": "tmsplan.cohort.manifest",
    "run_batch": "tmsplan.cohort.batch",
    "load_mni_head": "tmsplan.io.bundled",
    "load_mni_brain_mask": "tmsplan.io.bundled",
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
