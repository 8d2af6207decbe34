"""The cohort summary of a batch: ``cohort.tsv``, ``cohort.png`` and ``cohort.html``.

Design notes: ``docs/batch.md``, section ``tmsplan.cohort.summary``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = [
    "COHORT_COLUMNS",
    "OUTLIER_DISTANCE_MM",
    "OUTLIER_MIN_ROWS",
    "group_distances",
    "cohort_table",
    "cohort_picture",
    "cohort_html",
]

OUTLIER_DISTANCE_MM = 15.0
"""A target farther than this from its group's mean MNI target is flagged an outlier."""
OUTLIER_MIN_ROWS = 3
"""Groups with fewer planned rows get no outlier flag (too few to say what is typical)."""

COHORT_COLUMNS = (
    "subject",
    "target",
    "status",
    "reason",
    "cortical_x",
    "cortical_y",
    "cortical_z",
    "scalp_x",
    "scalp_y",
    "scalp_z",
    "cortical_mni_x",
    "cortical_mni_y",
    "cortical_mni_z",
    "depth_mm",
    "reachable",
    "roi",
    "distance_from_mean_mm",
    "outlier",
    "space",
    "folder",
    "manifest_row",
)
"""Columns of ``cohort.tsv`` (one row per manifest row, in manifest order)."""


def group_distances(results: list[dict]) -> None:
    """Add ``distance_from_mean_mm`` and ``outlier`` to each result, in place (per target name).

    Parameters
    ----------
    results : list of dict
        Batch results; those with MNI coordinates are grouped by target name.
    """
    import numpy as np

    groups: dict[str, list[dict]] = {}
    for result in results:
        result["distance_from_mean_mm"] = None
        result["outlier"] = False
        summary = result.get("summary")
        if summary and summary.get("cortical_mni") is not None:
            groups.setdefault(summary["name"], []).append(result)
    for members in groups.values():
        points = np.asarray([m["summary"]["cortical_mni"] for m in members], dtype=np.float64)
        distances = np.linalg.norm(points - points.mean(axis=0), axis=1)
        for member, distance in zip(members, distances, strict=True):
            member["distance_from_mean_mm"] = round(float(distance), 3)
            member["outlier"] = bool(
                len(members) >= OUTLIER_MIN_ROWS and distance > OUTLIER_DISTANCE_MM
            )


def cohort_table(results: list[dict]) -> str:
    """The text of ``cohort.tsv``: a header of :data:`COHORT_COLUMNS`, one line per result.

    Parameters
    ----------
    results : list of dict
        Batch results in manifest order (see :func:`tmsplan.cohort.batch.plan_subject`),
        after :func:`group_distances`.

    Returns
    -------
    str
        Tab-separated text; empty cells where a value does not apply.
    """

    def number(value: Any) -> str:
        return "" if value is None else f"{float(value):.4f}".rstrip("0").rstrip(".")

    lines = ["\t".join(COHORT_COLUMNS)]
    for result in results:
        summary = result.get("summary") or {}
        cells = {
            "subject": result["subject"],
            "target": result["target"],
            "status": result["status"],
            "reason": " ".join(str(result.get("reason") or "").split()),
            "depth_mm": number(summary.get("depth_mm")),
            "reachable": "" if not summary else ("yes" if summary["reachable"] else "no"),
            "roi": summary.get("roi", ""),
            "distance_from_mean_mm": number(result.get("distance_from_mean_mm")),
            "outlier": "yes" if result.get("outlier") else ("no" if summary else ""),
            "space": summary.get("space", ""),
            "folder": result["folder"] if summary else "",
            "manifest_row": str(result["index"]),
        }
        for key in ("cortical", "scalp", "cortical_mni"):
            values = summary.get(key) or [None, None, None]
            for axis, value in zip("xyz", values, strict=True):
                cells[f"{key}_{axis}"] = number(value)
        lines.append("\t".join(cells[c].replace("\t", " ") for c in COHORT_COLUMNS))
    return "\n".join(lines) + "\n"


def cohort_picture(results: list[dict], out_png: Path) -> Path | None:
    """Draw all MNI targets on the embedded MNI head, outliers ringed in red (top view).

    Parameters
    ----------
    results : list of dict
        Batch results after :func:`group_distances`.
    out_png : pathlib.Path
        The PNG to write (replaced: it belongs to the batch).

    Returns
    -------
    pathlib.Path or None
        The PNG, or None when no row has MNI coordinates.
    """
    import numpy as np

    from tmsplan.head.cache import load_head
    from tmsplan.head.scalp import surface_from_mask
    from tmsplan.io.bundled import load_mni_brain_mask
    from tmsplan.io.outputs import write_bytes
    from tmsplan.render import group_plotter, set_view
    from tmsplan.render._vtk import png_bytes, pyvista
    from tmsplan.spaces import MNI_FRAME

    planned = [r for r in results if (r.get("summary") or {}).get("cortical_mni") is not None]
    if not planned:
        return None
    points = np.asarray([r["summary"]["cortical_mni"] for r in planned], dtype=np.float64)
    labels = [
        f"{r['subject']}:{r['target']}" + (" OUTLIER" if r["outlier"] else "") for r in planned
    ]
    head = load_head(None, frame=MNI_FRAME)
    # the 2 mm mask: the same picture at this size, in 1.8 s instead of 5.7 s (a fixed cost)
    brain = surface_from_mask(load_mni_brain_mask(2), frame=MNI_FRAME, target_faces=60000)
    plotter = group_plotter(points, labels, head.mesh, brain_mesh=brain)
    try:
        pv = pyvista()
        for i, result in enumerate(planned):
            if result["outlier"]:
                plotter.add_mesh(
                    pv.Sphere(radius=7.0, center=points[i]),
                    color=(0.9, 0.1, 0.1),
                    opacity=0.45,
                    name=f"outlier-{i}",
                )
        set_view(plotter, "top")
        image = np.asarray(plotter.screenshot(return_img=True))[..., :3].copy()
    finally:
        plotter.close()
    return write_bytes(out_png, png_bytes(image), overwrite=True)


def cohort_html(results: list[dict], picture: Path | None, out: Path) -> str:
    """A self-contained page: counts, the group picture (embedded) and the table.

    Parameters
    ----------
    results : list of dict
        Batch results after :func:`group_distances`.
    picture : pathlib.Path or None
        ``cohort.png``, embedded as data when given.
    out : pathlib.Path
        The batch's output folder (for links to each plan's ``report.html``).

    Returns
    -------
    str
        HTML text (no network access needed to open it).
    """
    import base64
    import html

    from tmsplan.io.record import DISCLAIMER

    counts = {s: sum(r["status"] == s for r in results) for s in ("ok", "skipped", "failed")}
    rows_html = []
    for result in results:
        summary = result.get("summary") or {}
        mni = summary.get("cortical_mni")
        report = out / result["folder"] / "report.html"
        link = (
            f'<a href="{html.escape(result["folder"])}/report.html">report</a>'
            if summary and report.is_file()
            else ""
        )
        style = (
            ' class="failed"'
            if result["status"] == "failed"
            else ' class="outlier"'
            if result.get("outlier")
            else ""
        )
        cells = [
            result["subject"],
            result["target"],
            result["status"],
            "" if mni is None else ", ".join(f"{v:.1f}" for v in mni),
            "" if not summary else f"{summary['depth_mm']:.1f}",
            "" if not summary else ("yes" if summary["reachable"] else "NO"),
            ""
            if result.get("distance_from_mean_mm") is None
            else f"{result['distance_from_mean_mm']:.1f}",
            "OUTLIER" if result.get("outlier") else "",
            result.get("reason") or "",
        ]
        tds = "".join(f"<td>{html.escape(str(c))}</td>" for c in cells)
        rows_html.append(f"<tr{style}>{tds}<td>{link}</td></tr>")
    image = ""
    if picture is not None and picture.is_file():
        data = base64.b64encode(picture.read_bytes()).decode()
        image = (
            f'<img alt="all targets on the MNI152 head (top view)" '
            f'src="data:image/png;base64,{data}">'
        )
    header = "".join(
        f"<th>{h}</th>"
        for h in (
            "subject",
            "target",
            "status",
            "cortical MNI (mm)",
            "depth (mm)",
            "reachable",
            "from group mean (mm)",
            "outlier",
            "reason",
            "",
        )
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>tmsplan cohort</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 3px 8px; }}
tr.failed td {{ background: #fde2e2; }} tr.outlier td {{ background: #fff3c4; }}
img {{ max-width: 800px; display: block; margin: 1em 0; }}
</style></head><body>
<h1>tmsplan cohort</h1>
<p>{counts["ok"]} planned, {counts["skipped"]} unchanged (skipped), {counts["failed"]} failed.
Outlier: more than {OUTLIER_DISTANCE_MM:g} mm from the mean MNI target of the rows with the
same target name (groups of at least {OUTLIER_MIN_ROWS}).</p>
{image}
<table><tr>{header}</tr>
{"".join(rows_html)}
</table>
<p><em>{html.escape(DISCLAIMER)}</em></p>
</body></html>
"""
