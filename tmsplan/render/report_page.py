"""The report page: its template and style, pictures inlined, the 3D view in an iframe.

The page is re-encoded with smaller pictures until it fits :data:`MAX_REPORT_BYTES`.
"""

from __future__ import annotations

import base64
import html
import warnings as _warnings
from collections.abc import Mapping, Sequence
from functools import partial

from tmsplan import __version__
from tmsplan.errors import TmsplanWarning
from tmsplan.io.record import DISCLAIMER
from tmsplan.render._vtk import map_threads, png_bytes, read_png
from tmsplan.render.html import inert_urls
from tmsplan.render.report_sections import (
    CHECKLIST,
    clinic_section,
    escape,
    source_tables,
    target_section,
)

__all__ = ["MAX_REPORT_BYTES", "page_html", "report_bytes"]

MAX_REPORT_BYTES = 3_000_000
"""Size budget of one plan's report (pictures are re-encoded smaller to fit)."""

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


def page_html(
    record: Mapping,
    pictures: Mapping[str, bytes],
    scene_html: str | None,
    warnings: Sequence[str],
    geometry: Sequence[Mapping] | None,
) -> str:
    """The whole report page as HTML text.

    Parameters
    ----------
    record : dict
        Plan record.
    pictures : dict of str to bytes
        PNG per view name (``slices`` for the T1 slices), inlined as they are.
    scene_html : str or None
        The interactive 3D view's page, embedded in an iframe.
    warnings : sequence of str
        All warnings to show in the red banner.
    geometry : list of dict or None
        :func:`tmsplan.render.checks.scene_geometry` output, one per target.
    """
    subject = record.get("subject", "")
    targets = record["targets"]
    names = ", ".join(str(t["name"]) for t in targets)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>tmsplan report: {escape(subject)} {escape(names)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f'<p class="disclaimer" id="disclaimer">{escape(DISCLAIMER)}</p>',
        f"<h1>TMS target plan: {escape(subject)}</h1>",
        f"<p>Targets: <b>{escape(names)}</b>. Space: <b>{escape(record.get('space'))}</b> "
        "(RAS+ mm). "
        f"Made by tmsplan {escape(record.get('tmsplan_version'))}; report by tmsplan "
        f"{escape(__version__)}.</p>",
    ]
    if warnings:
        items = "".join(f"<li>{escape(w)}</li>" for w in warnings)
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
            f"{'s' if len(unreachable) > 1 else ''}</h2><p>{escape(listing)}</p></div>"
        )
    parts.append("<h2>Targets</h2>")
    for i, target in enumerate(targets):
        geo = geometry[i] if geometry is not None and i < len(geometry) else None
        parts.append(target_section(record, i, target, geo))
    parts.append('<h2>Reviewer checklist</h2><ol class="checklist">')
    parts += [
        f'<li><label><input type="checkbox"> {escape(item)}</label></li>' for item in CHECKLIST
    ]
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
                f'<figure><img alt="{escape(caption)}" src="{_data_uri(data)}">'
                f"<figcaption>{escape(caption)}</figcaption></figure>"
            )
        parts.append("</div>")
    if "slices" in pictures:
        parts.append(
            f'<h2>Slices</h2><figure class="slices"><img alt="T1 slices" '
            f'src="{_data_uri(pictures["slices"])}"><figcaption>'
            f"{escape(_VIEW_CAPTIONS['slices'])}: crosshair and green dot at the target, "
            "activation above threshold in red-yellow, ROI outline in cyan.</figcaption></figure>"
        )
    parts.append(clinic_section(record))
    parts.append(source_tables(record))
    if scene_html:
        parts.append(f"<script>{_STATUS_SCRIPT}</script>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def report_bytes(
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
        encoded = map_threads(partial(_encode_picture, encoding=encoding), pictures)
        data = page_html(record, encoded, scene_html, all_warnings, geometry).encode("utf-8")
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
