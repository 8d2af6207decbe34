"""The plan report: one self-contained, offline ``report.html`` for the reviewing clinician.

Pictures inlined as ``data:`` URIs, the vtk.js 3D view in an ``<iframe srcdoc>``; no URL to load.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import warnings as _warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tmsplan import __version__
from tmsplan.errors import RecordError, TmsplanWarning
from tmsplan.io import interrupts
from tmsplan.io.images import ImageLike, check_img, file_sha256
from tmsplan.io.outputs import check_writable, write_bytes, write_files
from tmsplan.io.record import DISCLAIMER, check_record, target_pose
from tmsplan.render._vtk import png_bytes, read_png
from tmsplan.render.html import inert_urls

__all__ = [
    "REPORT_FILENAME",
    "MAX_REPORT_BYTES",
    "DISCLAIMER",
    "check_record_t1",
    "handle_angle",
    "write_report",
    "make_report",
]

REPORT_FILENAME = "report.html"
MAX_REPORT_BYTES = 3_000_000
"""Size budget of one plan's report (pictures are re-encoded smaller to fit)."""
PICTURE_DIRNAME = "pictures"
_SCENE_BUDGET = 1_800_000  # characters of the interactive view's HTML
_VIEW_CAPTIONS = {
    "left": "Left side of the head",
    "right": "Right side of the head",
    "top": "From above (nose up; patient's left on the left)",
    "front": "Facing the patient (patient's left on the right)",
    "back": "From behind (patient's left on the left)",
    "coil": "Down the coil axis from outside (handle up)",
    "slices": "T1 slices through the target (patient's left on the left)",
}
# (max picture side in px, palette colours) tried in turn until the report fits.
_ENCODINGS: tuple[tuple[int | None, int | None], ...] = (
    (None, None),
    (None, 256),
    (640, 256),
    (480, 128),
    (360, 64),
)


# --------------------------------------------------------------------------- checks


def check_record_t1(record: Mapping) -> list[str]:
    """Check that the T1 image a plan was made on is still there and unchanged.

    Parameters
    ----------
    record : dict
        Plan record; uses ``record["t1"]["path"]`` and ``["sha256"]``.

    Returns
    -------
    list of str
        Warnings (empty when all is well): the file's checksum differs from the
        one recorded, or no checksum was recorded.

    Raises
    ------
    RecordError
        The record names no T1 file, or the file does not exist.
    """
    t1 = record.get("t1") or {}
    path = t1.get("path")
    if not path:
        raise RecordError(
            "the plan record names no T1 image file (t1.path is empty), so its slices cannot "
            "be drawn; re-run 'tmsplan plan' with the T1 given as a file."
        )
    if not Path(path).is_file():
        raise RecordError(
            f"the T1 image this plan was made on, '{path}', does not exist (moved or "
            "deleted); put it back at that path, or re-run 'tmsplan plan' with its new location."
        )
    recorded = t1.get("sha256")
    if not recorded:
        return [
            f"the plan record holds no checksum of the T1 image '{path}', so it cannot be "
            "verified that the pictures show the image the plan was made on."
        ]
    actual = file_sha256(path)
    if actual != recorded:
        return [
            f"THE T1 IMAGE HAS CHANGED since the plan was made: '{path}' has sha256 "
            f"{actual[:12]}..., the plan recorded {recorded[:12]}...; the target may not fit "
            "this image. Re-run 'tmsplan plan' on the current image before using this plan."
        ]
    return []


def handle_angle(target: Mapping) -> tuple[float, str]:
    """Angle of the coil handle from "straight back", in the scalp tangent plane.

    Parameters
    ----------
    target : dict
        One record target (``coil_matrix``; ``scalp_normal`` when present,
        otherwise minus coil z is the outward normal).

    Returns
    -------
    angle_deg : float
        Unsigned angle in [0, 180] between the handle (coil y) and the
        posterior direction projected on the scalp tangent plane; NaN where
        the scalp faces straight back (no such projection).
    description : str
        The handle's main anatomical directions, e.g. ``"backwards, left, down"``.
    """
    matrix = target_pose(target)
    handle = matrix[:3, 1]
    normal = np.asarray(target.get("scalp_normal", -matrix[:3, 2]), dtype=np.float64)
    normal = normal / np.linalg.norm(normal)
    back = np.array([0.0, -1.0, 0.0])
    back = back - back.dot(normal) * normal
    if np.linalg.norm(back) < 1e-6:
        angle = float("nan")
    else:
        back = back / np.linalg.norm(back)
        angle = math.degrees(math.acos(float(np.clip(handle @ back, -1.0, 1.0))))
    words = []
    for axis, (positive, negative) in enumerate(
        (("right", "left"), ("forwards", "backwards"), ("up", "down"))
    ):
        if abs(handle[axis]) >= 0.3:
            words.append((abs(handle[axis]), positive if handle[axis] > 0 else negative))
    words.sort(reverse=True)
    return angle, ", ".join(word for _, word in words)


# --------------------------------------------------------------------------- html parts


def _e(value: Any) -> str:
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
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f'<table class="{css}">{body}</table>'


def _hemisphere_check(record: Mapping, target: Mapping) -> tuple[str, bool] | None:
    hemi = str((record.get("roi") or {}).get("hemisphere") or "")[:1].upper()
    mni = target.get("cortical_mni_mm")
    if hemi not in ("L", "R") or mni is None:
        return None
    x = float(mni[0])
    found = "left" if x < 0 else "right"
    wanted = "left" if hemi == "L" else "right"
    return (f"target x (MNI) = {x:.1f} mm: {found} hemisphere; ROI: {wanted}", found == wanted)


def _roi_check(record: Mapping, target: Mapping) -> tuple[str, bool] | None:
    roi = record.get("roi") or {}
    mni = target.get("cortical_mni_mm")
    if roi.get("centre_mni") is None or roi.get("radius_mm") is None or mni is None:
        return None
    distance = float(np.linalg.norm(np.subtract(mni, roi["centre_mni"])))
    radius = float(roi["radius_mm"])
    return (f"{distance:.1f} mm from the ROI centre (radius {radius:g} mm)", distance <= radius)


def _target_section(record: Mapping, index: int, target: Mapping, geometry: Mapping | None) -> str:
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
    checks = []
    for check in (_hemisphere_check(record, target), _roi_check(record, target)):
        if check is not None:
            text, ok = check
            checks.append((text, ok))
    if geometry is not None:
        checks.append(
            (
                f"scalp entry {geometry['entry_to_scalp_mm']:.2f} mm from the scalp surface drawn",
                geometry["entry_to_scalp_mm"] <= 1.0,
            )
        )
        checks.append(
            (
                f"coil z vs outward scalp normal: cosine {geometry['coil_z_dot_outward']:+.3f} "
                "(-1 = straight in)",
                geometry["coil_z_dot_outward"] <= -0.5,
            )
        )
        if reachable:
            checks.append(
                (
                    f"drawn coil clears the scalp by {geometry['coil_clearance_mm']:.1f} mm",
                    geometry["coil_clearance_mm"] >= -2.0,
                )
            )
    check_html = "".join(
        f'<li class="{"ok" if ok else "bad"}">{"&#10003;" if ok else "&#10007;"} {_e(text)}</li>'
        for text, ok in checks
    )
    css = "target" if reachable else "target unreachable"
    flag = "" if reachable else ' <span class="badge">UNREACHABLE</span>'
    return (
        f'<section class="{css}" id="target-{index}"><h3>Target {index + 1}: '
        f"{_e(target['name'])}{flag}</h3>{_table(rows)}"
        f'<h4>Automatic checks (aids, not a substitute for looking)</h4><ul class="checks">'
        f"{check_html}</ul></section>"
    )


def _source_tables(record: Mapping) -> str:
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
        + (f"<p><b>Deep target:</b> {_e(deep)}</p>" if deep else "")
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


def _clinic_section(record: Mapping) -> str:
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
        parts.append("<ul>" + "".join(f"<li>{_e(c)}</li>" for c in caveats) + "</ul>")
    return "".join(parts)


_CHECKLIST = (
    "The green target lies on the orange activation cluster (3D views and slices).",
    "The target lies inside the cyan ROI outline.",
    "The target is on the intended hemisphere (check the L/R letters on every picture).",
    "The coil sits outside the head, tangent to the scalp, with its z axis pointing in "
    "(coil view: the target under the junction of the two wings).",
    "The handle points where the protocol says (coil view: handle up; see the handle angle).",
    "The depth is plausible for the coil and the intensity is adjusted for it.",
    "Every warning above is understood and acceptable.",
)

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Arial,sans-serif;margin:0 auto;
max-width:1100px;padding:0 16px 40px;color:#111;background:#fff}
.disclaimer{background:#1d3557;color:#fff;padding:8px 12px;font-weight:600;margin:0 -16px}
.banner{background:#b00020;color:#fff;padding:10px 14px;margin:12px 0;border-radius:4px}
.banner h2{margin:0 0 6px;font-size:1.15em}.banner li{margin:3px 0}
.allclear{background:#e8f5e9;border:1px solid #2e7d32;padding:8px 12px;margin:12px 0}
table.kv{border-collapse:collapse;margin:4px 0 10px;font-size:.92em}
table.kv th{text-align:left;font-weight:600;padding:2px 12px 2px 0;vertical-align:top;
color:#333;white-space:nowrap}table.kv td{padding:2px 0;font-family:monospace}
section.target{border:1px solid #bbb;padding:4px 12px;margin:10px 0;border-radius:4px}
section.unreachable{border:3px solid #d00000;background:#fff0f0}
.unreachable h3{color:#d00000}.badge{background:#d00000;color:#fff;padding:1px 8px;
border-radius:3px;font-size:.85em}
ul.checks{list-style:none;padding-left:4px}li.ok{color:#1b5e20}li.bad{color:#c00000;
font-weight:700}
.cols{display:flex;gap:24px;flex-wrap:wrap}.cols>div{flex:1 1 420px}
figure{display:inline-block;margin:6px;vertical-align:top}figure img{max-width:100%;
border:1px solid #ccc}figcaption{font-size:.85em;color:#333}
.views figure{width:31%}.views figure img{width:100%}
#scene-frame{width:100%;height:640px;border:1px solid #888}
#scene-status{font-size:.85em;color:#555}
ol.checklist li{margin:4px 0}
"""

_STATUS_SCRIPT = """
(function(){
  function check(n){
    var s=document.getElementById('scene-status');
    try{
      var f=document.getElementById('scene-frame');
      var w=f.contentWindow, d=f.contentDocument;
      var c=d?d.querySelector('canvas'):null;
      var errs=(w&&w.__tmsplanErrors)?w.__tmsplanErrors:[];
      if(errs.length){s.setAttribute('data-state','error');
        s.textContent='3D view error: '+errs.join(' | ');return;}
      if(c&&c.width>0){s.setAttribute('data-state','ok');
        s.textContent='3D view loaded (drag to rotate, scroll to zoom).';return;}
    }catch(e){s.setAttribute('data-state','error');s.textContent='3D view error: '+e;return;}
    if(n>0){setTimeout(function(){check(n-1);},250);}
    else{s.setAttribute('data-state','missing');
      s.textContent='The 3D view did not start (WebGL may be off in this browser); '+
      'the pictures below show the same scene.';}
  }
  window.addEventListener('load',function(){check(60);});
})();
"""

_ERROR_HOOK = (
    "<script>window.__tmsplanErrors=[];window.addEventListener('error',function(e)"
    "{window.__tmsplanErrors.push(String(e.message||e));});</script>"
)


def _scene_iframe(scene_html: str) -> str:
    lower = scene_html.lower()
    head = lower.find("<head>")
    if head >= 0:
        cut = head + len("<head>")
        scene_html = scene_html[:cut] + _ERROR_HOOK + scene_html[cut:]
    else:
        scene_html = _ERROR_HOOK + scene_html
    return (
        '<iframe id="scene-frame" title="Interactive 3D view of the plan" '
        f'srcdoc="{html.escape(scene_html, quote=True)}"></iframe>'
    )


def _data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _encode_picture(data: bytes, encoding: tuple[int | None, int | None]) -> bytes:
    max_size, colors = encoding
    if max_size is None and colors is None:
        return data
    return png_bytes(read_png(data), max_size=max_size, colors=colors)


def _render_html(
    record: Mapping,
    pictures: Mapping[str, bytes],
    scene_html: str | None,
    warnings: Sequence[str],
    geometry: Sequence[Mapping] | None,
) -> str:
    subject = record.get("subject", "")
    targets = record["targets"]
    names = ", ".join(str(t["name"]) for t in targets)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>tmsplan report: {_e(subject)} {_e(names)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f'<p class="disclaimer" id="disclaimer">{_e(DISCLAIMER)}</p>',
        f"<h1>TMS target plan: {_e(subject)}</h1>",
        f"<p>Targets: <b>{_e(names)}</b>. Space: <b>{_e(record.get('space'))}</b> (RAS+ mm). "
        f"Made by tmsplan {_e(record.get('tmsplan_version'))}; report by tmsplan "
        f"{_e(__version__)}.</p>",
    ]
    if warnings:
        items = "".join(f"<li>{_e(w)}</li>" for w in warnings)
        parts.append(
            f'<div class="banner" id="warnings" role="alert"><h2>&#9888; {len(warnings)} '
            f"warning{'s' if len(warnings) != 1 else ''}: read before using this plan</h2>"
            f"<ul>{items}</ul></div>"
        )
    else:
        parts.append('<div class="allclear" id="warnings">No warnings were recorded.</div>')
    unreachable = [t for t in targets if not t.get("reachable", True)]
    if unreachable:
        listing = "; ".join(f"{t['name']}: {t.get('unreachable_reason')}" for t in unreachable)
        parts.append(
            f'<div class="banner" id="unreachable" role="alert"><h2>UNREACHABLE target'
            f"{'s' if len(unreachable) > 1 else ''}</h2><p>{_e(listing)}</p></div>"
        )
    parts.append("<h2>Targets</h2>")
    for i, target in enumerate(targets):
        geo = geometry[i] if geometry is not None and i < len(geometry) else None
        parts.append(_target_section(record, i, target, geo))
    parts.append('<h2>Reviewer checklist</h2><ol class="checklist">')
    parts += [f'<li><label><input type="checkbox"> {_e(item)}</label></li>' for item in _CHECKLIST]
    parts.append("</ol>")
    if scene_html:
        parts.append("<h2>Interactive 3D view</h2>")
        parts.append('<p id="scene-status" data-state="pending">3D view loading&hellip;</p>')
        parts.append(_scene_iframe(scene_html))
    views = [(k, v) for k, v in pictures.items() if k != "slices"]
    if views:
        parts.append('<h2>Pictures</h2><div class="views">')
        for name, data in views:
            caption = _VIEW_CAPTIONS.get(name, name)
            parts.append(
                f'<figure><img alt="{_e(caption)}" src="{_data_uri(data)}">'
                f"<figcaption>{_e(caption)}</figcaption></figure>"
            )
        parts.append("</div>")
    if "slices" in pictures:
        parts.append(
            f'<h2>Slices</h2><figure class="slices"><img alt="T1 slices" '
            f'src="{_data_uri(pictures["slices"])}"><figcaption>'
            f"{_e(_VIEW_CAPTIONS['slices'])}: crosshair and green dot at the target, activation "
            "above threshold in red-yellow, ROI outline in cyan.</figcaption></figure>"
        )
    parts.append(_clinic_section(record))
    parts.append(_source_tables(record))
    if scene_html:
        parts.append(f"<script>{_STATUS_SCRIPT}</script>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_report(
    record: Mapping,
    out_dir: str | os.PathLike,
    *,
    pictures: Mapping[str, str | os.PathLike],
    scene_html: str | None,
    warnings: Sequence[str] = (),
    geometry: Sequence[Mapping] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the self-contained ``report.html`` of a plan.

    Parameters
    ----------
    record : dict
        Plan record (checked with :func:`tmsplan.io.record.check_record`).
    out_dir : str or os.PathLike
        Folder; the report is ``<out_dir>/report.html``.
    pictures : dict of str to path
        PNG per view name (``left``, ``right``, ``top``, ``front``, ``back``,
        ``coil``, ``slices``); inlined as base64, re-encoded smaller when needed
        to keep the report within :data:`MAX_REPORT_BYTES`.
    scene_html : str or None
        A self-contained HTML document with the interactive 3D view (see
        :func:`tmsplan.render.html.scene_html`), embedded in an iframe; URLs
        it would load are made inert (:func:`tmsplan.render.html.inert_urls`).
    warnings : sequence of str
        Warnings found while making the report (e.g. from
        :func:`check_record_t1`), shown with the record's own warnings.
    geometry : list of dict, optional
        :func:`tmsplan.render.checks.scene_geometry` output, shown as checks.
    overwrite : bool, keyword-only

    Returns
    -------
    pathlib.Path
        The written ``report.html``.

    Warns
    -----
    TmsplanWarning
        The report exceeds :data:`MAX_REPORT_BYTES` even with the smallest pictures.
    """
    check_record(dict(record), source="record")
    path = check_writable(Path(out_dir) / REPORT_FILENAME, overwrite=overwrite)
    raw = {name: Path(p).read_bytes() for name, p in pictures.items()}
    data = _report_bytes(record, raw, scene_html, warnings, geometry)
    return write_bytes(path, data, overwrite=overwrite)


def _report_bytes(
    record: Mapping,
    pictures: Mapping[str, bytes],
    scene_html: str | None,
    warnings: Sequence[str],
    geometry: Sequence[Mapping] | None,
) -> bytes:
    """The report as UTF-8 bytes, pictures re-encoded smaller until it fits the budget.

    Warns
    -----
    TmsplanWarning
        The report is larger than :data:`MAX_REPORT_BYTES` even with the
        smallest pictures.
    """
    all_warnings = list(warnings) + [str(w) for w in record.get("warnings", [])]
    if geometry is not None:
        all_warnings += [p for g in geometry for p in g.get("problems", [])]
    if scene_html:  # whoever made it, the report loads nothing from the network
        scene_html = inert_urls(scene_html)
    data = b""
    for encoding in _ENCODINGS:
        encoded = {name: _encode_picture(raw, encoding) for name, raw in pictures.items()}
        data = _render_html(record, encoded, scene_html, all_warnings, geometry).encode("utf-8")
        if len(data) <= MAX_REPORT_BYTES:
            break
    else:
        _warnings.warn(
            f"the report is {len(data) / 1e6:.1f} MB even with the smallest pictures, over its "
            f"{MAX_REPORT_BYTES / 1e6:.1f} MB budget (a large interactive 3D view?); it is "
            "written anyway, but may be slow to open or to send.",
            TmsplanWarning,
            stacklevel=3,
        )
    return data


def make_report(
    record: Mapping,
    out_dir: str | os.PathLike,
    scalp_mesh: Any,
    *,
    t1_img: ImageLike | None = None,
    brain_mesh: Any = None,
    brain_img: ImageLike | None = None,
    activation_img: ImageLike | None = None,
    roi_img: ImageLike | None = None,
    landmarks: Mapping[str, Sequence[float]] | None = None,
    views: Sequence[str] = ("left", "right", "top", "front", "coil"),
    interactive: bool = True,
    overwrite: bool = False,
) -> Path:
    """Render the views, the slices and the interactive scene; write ``report.html``.

    Writes ``<out_dir>/pictures/<view>.png``, ``<out_dir>/pictures/slices.png``
    and ``<out_dir>/report.html``, each atomically, once every picture, the
    scene and the report are made (a failure on the way writes nothing). All
    layers are in ``record["space"]``.

    Parameters
    ----------
    record : dict
        Plan record.
    out_dir : str or os.PathLike
        Plan folder (created if needed).
    scalp_mesh : trimesh.Trimesh or pyvista.PolyData
        Scalp surface in the record's frame.
    t1_img : image, optional
        Head image for the slices; default: ``record["t1"]["path"]``, checked
        with :func:`check_record_t1` (missing file: error; changed file: red
        warning in the report).
    brain_mesh : mesh, optional
        Brain surface; or ``brain_img``, a brain mask whose 0.5 isosurface is drawn.
    activation_img, roi_img, landmarks
        See :func:`tmsplan.render.scene.plan_plotter`. Like every layer, they
        must be in the record's frame (``record["space"]``): the caller carries
        them there (as :func:`tmsplan.pipeline.plan.plan_target` does).
    views : sequence of str
        3D views to render.
    interactive : bool
        Embed the interactive 3D view.
    overwrite : bool, keyword-only

    Returns
    -------
    pathlib.Path
        ``<out_dir>/report.html``.

    Warns
    -----
    TmsplanWarning
        The report exceeds :data:`MAX_REPORT_BYTES` even with the smallest pictures.
    """
    from tmsplan.render.checks import scene_geometry
    from tmsplan.render.html import scene_html as make_scene_html
    from tmsplan.render.meshes import _decimated, isosurface_from_img
    from tmsplan.render.scene import render_view_images
    from tmsplan.render.slices import slices_png

    record = check_record(dict(record), source="record")
    out_dir = Path(out_dir)
    picture_dir = out_dir / PICTURE_DIRNAME
    names = [*views, "slices"]
    for name in names:
        check_writable(picture_dir / f"{name}.png", overwrite=overwrite)
    check_writable(out_dir / REPORT_FILENAME, overwrite=overwrite)

    warnings: list[str] = []
    if t1_img is None:
        warnings += check_record_t1(record)
        t1_img = record["t1"]["path"]
    t1 = check_img(t1_img, name="t1_img")
    if brain_mesh is None and brain_img is not None:
        # a 1 mm brain mask gives ~300k triangles; 60k look the same in the pictures
        brain_mesh = _decimated(
            isosurface_from_img(brain_img, 0.5, name="brain_img"), 60_000, name="brain_img"
        )
    if landmarks is None and (record.get("eeg1020") or {}).get("positions"):
        landmarks = _cap_landmarks(record)
    layers = {
        "brain_mesh": brain_mesh,
        "activation_img": activation_img,
        "roi_img": roi_img,
        "landmarks": landmarks,
    }
    # everything is made in memory first: a failure leaves no pictures without a report
    geometry = scene_geometry(record, scalp_mesh)
    images = render_view_images(record, scalp_mesh, views=views, **layers)
    pictures = {name: png_bytes(image) for name, image in images.items()}
    threshold = (record.get("activation") or {}).get("threshold")
    first = record["targets"][0] if record["targets"] else None
    if first is not None:
        pictures["slices"] = slices_png(
            t1,
            first["cortical_mm"],
            activation_img=activation_img,
            activation_threshold=threshold,
            roi_img=roi_img,
            title=str(first["name"]),
        )
    scene = None
    interrupts.checkpoint("scene")
    if interactive:
        # vtk.js alone is ~1.1 MB: coarser meshes until the 3D view leaves room for pictures
        for max_faces in (12_000, 6_000, 3_000):
            scene = make_scene_html(record, scalp_mesh, max_faces=max_faces, **layers)
            if len(scene) <= _SCENE_BUDGET:
                break
    report = _report_bytes(record, pictures, scene, warnings, geometry)
    files = [(picture_dir / f"{name}.png", data) for name, data in pictures.items()]
    files.append((out_dir / REPORT_FILENAME, report))
    return write_files(files, overwrite=overwrite)[-1]


_CAP_LABELS = (
    "Fpz", "Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7", "C3", "Cz", "C4", "T8",
    "P7", "P3", "Pz", "P4", "P8", "O1", "Oz", "O2", "FC5", "FC6", "AF3", "AF4",
)  # fmt: skip


def _cap_landmarks(record: Mapping) -> dict:
    """Cap positions to draw as labelled dots: the midline and the first target's side.

    Labels are drawn over everything, so the other side's would show through the head.
    """
    eeg = record["eeg1020"]
    positions = eeg["positions"]
    midline = float(np.mean([p[0] for n, p in positions.items() if n.lower().endswith("z")]))
    entry_x = record["targets"][0]["scalp_mm"][0] if record["targets"] else midline
    odd = entry_x < midline  # left of the midline in RAS+: odd numbers
    keep = {}
    for name in _CAP_LABELS:
        digits = "".join(c for c in name if c.isdigit())
        if name in positions and (not digits or (int(digits) % 2 == 1) == odd):
            keep[name] = positions[name]
    beam = eeg.get("beam_f3") or {}
    if odd and beam.get("point_mm"):
        keep["Beam F3"] = beam["point_mm"]
    return keep
