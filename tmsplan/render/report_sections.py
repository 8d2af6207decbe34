"""The report's HTML sections: each target, the sources, the clinic, the checklist.

Small pure functions from the record to HTML fragments (text escaped).
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tmsplan.io.record import target_pose
from tmsplan.render.report_checks import handle_angle, target_checks

__all__ = ["CHECKLIST", "clinic_section", "escape", "source_tables", "target_section"]

_TICK, _CROSS = "&#10003;", "&#10007;"


def escape(value: Any) -> str:
    """``str(value)`` escaped for HTML text and attribute values."""
    return html.escape(str(value), quote=True)


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.{digits}f}"
    if isinstance(value, (list, tuple, np.ndarray)):
        flat = np.asarray(value, dtype=object).ravel().tolist()
        if all(isinstance(v, (int, float, np.floating, np.integer)) for v in flat):
            return "(" + ", ".join(f"{float(v):.{digits}f}" for v in flat) + ")"
        return ", ".join(str(v) for v in flat)
    if isinstance(value, Mapping):
        return json.dumps(value, default=str)
    return str(value)


def _table(rows: Sequence[tuple[str, Any]], *, css: str = "kv") -> str:
    body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    return f'<table class="{css}">{body}</table>'


def target_section(record: Mapping, index: int, target: Mapping, geometry: Mapping | None) -> str:
    """One target's numbers and automatic checks (red when unreachable).

    Parameters
    ----------
    record : dict
        Plan record.
    index : int
        Position of ``target`` in ``record["targets"]``.
    target : dict
    geometry : dict or None
        See :func:`tmsplan.render.report_checks.target_checks`.
    """
    reachable = bool(target.get("reachable", True))
    angle, words = handle_angle(target)
    matrix = target_pose(target)
    rows: list[tuple[str, Any]] = [
        (f"cortical target ({record.get('space')}, RAS mm)", _fmt(target["cortical_mm"])),
        ("cortical target (MNI, mm)", _fmt(target.get("cortical_mni_mm"))),
        (f"scalp entry ({record.get('space')}, RAS mm)", _fmt(target["scalp_mm"])),
        ("depth, scalp entry to target (mm)", _fmt(target["depth_mm"])),
        ("coil-skin distance (mm)", _fmt(target["coil_skin_distance_mm"])),
        ("coil centre (RAS mm)", _fmt(matrix[:3, 3])),
        ("coil z, into the head", _fmt(matrix[:3, 2], 3)),
        ("handle direction (coil y)", _fmt(target["handle_direction"], 3)),
        ("handle", f"{angle:.1f} deg from straight back in the scalp plane; points {words}"),
    ]
    if target.get("handle_rule_applied"):
        rows.append(("handle rule applied", target["handle_rule_applied"]))
    for key in ("role", "rank", "why", "score", "value", "r", "z", "distance_to_roi_centre_mm"):
        if target.get(key) is not None:  # ranked candidates (tmsplan.pipeline.plan)
            rows.append((key.replace("_", " "), _fmt(target[key], 3)))
    rows.append(("reachable", "yes" if reachable else f"NO: {target.get('unreachable_reason')}"))
    checks = target_checks(record, target, geometry)
    check_html = "".join(
        f'<li class="{"ok" if ok else "bad"}">{_TICK if ok else _CROSS} {escape(text)}</li>'
        for text, ok in checks
    )
    css = "target" if reachable else "target unreachable"
    flag = "" if reachable else ' <span class="badge">UNREACHABLE</span>'
    return (
        f'<section class="{css}" id="target-{index}"><h3>Target {index + 1}: '
        f"{escape(target['name'])}{flag}</h3>{_table(rows)}"
        f'<h4>Automatic checks (aids, not a substitute for looking)</h4><ul class="checks">'
        f"{check_html}</ul></section>"
    )


def source_tables(record: Mapping) -> str:
    """Where the plan came from: ROI, activation, T1, parameters, strategy and coil."""
    roi = dict(record.get("roi") or {})
    first = ["id", "region", "hemisphere", "centre_mni", "radius_mm", "citation", "mask"]
    roi_rows = [(k, _fmt(roi[k])) for k in first if k in roi and roi[k] is not None]
    roi_rows += [(k, _fmt(v)) for k, v in roi.items() if k not in first and v is not None]
    act = dict(record.get("activation") or {})
    first = [
        "path",
        "threshold",
        "sign",
        "rule",
        "peak_value",
        "peak_mm",
        "cluster_size_voxels",
        "cluster_volume_mm3",
        "sha256",
    ]
    act_rows = [(k, _fmt(act[k], 2)) for k in first if k in act and act[k] is not None]
    act_rows += [(k, _fmt(v, 2)) for k, v in act.items() if k not in first and v is not None]
    params = record.get("parameters") or {}
    par_rows = [(k, _fmt(v, 2)) for k, v in params.items()]
    t1 = record.get("t1") or {}
    t1_rows = [(k, _fmt(t1.get(k))) for k in ("path", "sha256", "shape", "zooms") if k in t1]
    strategy = dict(record.get("strategy") or {})
    coil = dict(record.get("coil") or {})
    coil_keys = ("id", "name", "d_half_cm", "d_half_basis", "reach_mm", "reach_rule", "source")
    deep = (record.get("deep_target") or {}).get("text")
    extra = (
        '<div class="cols"><div><h3>Target strategy</h3>'
        f"{_table([(k, _fmt(v, 3)) for k, v in strategy.items() if v is not None])}</div>"
        f"<div><h3>Coil</h3>{_table([(k, _fmt(coil[k], 2)) for k in coil_keys if k in coil])}"
        + (f"<p><b>Deep target:</b> {escape(deep)}</p>" if deep else "")
        + "</div></div>"
        if strategy or coil
        else ""
    )
    return (
        "<h2>Sources</h2>"
        f'<div class="cols"><div><h3>ROI</h3>{_table(roi_rows)}</div>'
        f"<div><h3>Activation</h3>{_table(act_rows)}</div></div>"
        f'<div class="cols"><div><h3>Head image (T1)</h3>{_table(t1_rows)}</div>'
        f"<div><h3>Parameters</h3>{_table(par_rows)}</div></div>" + extra
    )


def clinic_section(record: Mapping) -> str:
    """10-20 positions, Beam F3 tape distances and the adjusted intensity (if planned)."""
    eeg, dose = record.get("eeg1020"), record.get("dose")
    if not eeg and not dose:
        return ""
    parts = ['<h2 id="clinic">Without a neuronavigator: EEG cap, tape and intensity</h2>']
    if eeg:
        target = eeg.get("target") or {}
        nearest = ", ".join(
            f"{n['name']} ({n['distance_mm']:.0f} mm)" for n in target.get("nearest", [])
        )
        tape = eeg.get("tape_mm", {})
        rows = [
            ("scalp entry in cap terms", target.get("text")),
            ("nearest cap positions", nearest),
            ("cap", f"{eeg.get('system')} positions on this head's scalp ({eeg.get('frame')})"),
            ("landmarks", eeg.get("landmarks_source")),
            ("nasion-inion over the vertex (cm)", _fmt(tape.get("nasion_inion", 0) / 10)),
            ("tragus-tragus over the vertex (cm)", _fmt(tape.get("tragus_tragus", 0) / 10)),
            ("circumference through Fpz, T7, Oz, T8 (cm)", _fmt(tape.get("circumference", 0) / 10)),
        ]
        beam = eeg.get("beam_f3") or {}
        if "x_cm" in beam:
            rows.append(
                (
                    "Beam F3 tape distances",
                    f"X = {beam['x_cm']:.1f} cm from the midline along the circumference "
                    f"(left), Y = {beam['y_cm']:.1f} cm from the vertex, with this head's own "
                    f"measures; on this scalp they land "
                    f"{beam.get('point_to_f3_mm', float('nan')):.0f} mm from F3 and "
                    f"{beam.get('point_to_target_mm', float('nan')):.0f} mm from this target's "
                    "scalp entry",
                )
            )
        parts.append(_table(rows))
        parts.append(
            "<p>The cap positions are measured along this head's scalp from its landmarks "
            "(percent divisions of the arcs, as the 10-20 standard defines them); they are "
            "drawn as grey labelled dots in the 3D pictures. The head's own tape measures "
            "differ from a tape on the patient by hair and skin; measure the patient.</p>"
        )
    if dose:
        rows = [
            ("motor threshold (%MSO)", _fmt(dose.get("motor_threshold_percent"))),
            ("target depth / motor hotspot depth (mm)",
             f"{_fmt(dose.get('target_depth_mm'))} / {_fmt(dose.get('motor_depth_mm'))}"),
        ]  # fmt: skip
        caveats: list[str] = [dose["depth_note"]] if dose.get("depth_note") else []
        for name, result in (dose.get("methods") or {}).items():
            flag = "" if result.get("achievable") else " NOT ACHIEVABLE (above 100 %MSO)"
            rows.append(
                (
                    f"adjusted intensity, {name}",
                    f"{result['adjusted_percent_mso']:.1f} %MSO{flag}: {result.get('formula')}",
                )
            )
            rows.append((f"source ({name})", result.get("source")))
            caveats += [c for c in result.get("caveats", []) if c not in caveats]
        parts.append(_table(rows))
        parts.append("<ul>" + "".join(f"<li>{escape(c)}</li>" for c in caveats) + "</ul>")
    return "".join(parts)


CHECKLIST = (
    "The green target lies on the orange activation cluster (3D views and slices).",
    "The target lies inside the cyan ROI outline.",
    "The target is on the intended hemisphere (check the L/R letters on every picture).",
    "The coil sits outside the head, tangent to the scalp, with its z axis pointing in "
    "(coil view: the target under the junction of the two wings).",
    "The handle points where the protocol says (coil view: handle up; see the handle angle).",
    "The depth is plausible for the coil and the intensity is adjusted for it.",
    "Every warning above is understood and acceptable.",
)
