"""TMS coil catalogue: which coils tmsplan knows, and how deep each one reaches.

Design notes: ``docs/targets.md``, section ``tmsplan.coil.catalogue``.
"""

from __future__ import annotations

import csv
import difflib
import functools
import io
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from tmsplan.errors import CoilError
from tmsplan.io.bundled import atlas_dir

__all__ = [
    "COILS_FILENAME",
    "DEFAULT_COIL",
    "SCALP_TO_CORTEX_MM",
    "REACH_RULE",
    "D_HALF_BASES",
    "Coil",
    "load_coils",
    "get_coil",
    "coil_ids",
    "reach_mm",
    "coils_reaching",
    "coil_description",
    "deep_target_verdict",
    "format_coil_table",
]

COILS_FILENAME = "coils.tsv"
"""Name of the coil table inside :func:`tmsplan.io.bundled.atlas_dir`."""

DEFAULT_COIL = "fig8_70"
"""The coil used when none is named: a 70 mm figure-8 coil."""

SCALP_TO_CORTEX_MM = 15.0
"""Assumed scalp-to-cortex distance (mm) added to ``d_1/2`` to get the reach from the scalp."""

REACH_RULE = (
    "reach from the scalp = {offset:g} mm scalp-to-cortex offset (assumed) + the coil's "
    "half-value depth d_1/2 (Deng et al. 2013: depth below the cortical surface of their "
    "spherical model where the E-field falls to half its maximum)"
)

D_HALF_BASES = ("paper_table", "paper_range_bound", "tmsplan_default")
"""Allowed ``d_half_basis`` values."""

GEOMETRIES = ("figure8", "standin")
"""``figure8``: drawn and posed as a flat figure-8; ``standin``: a labelled stand-in."""

_COLUMNS = (
    "id",
    "name",
    "kind",
    "field_pattern",
    "geometry",
    "d_half_cm",
    "d_half_basis",
    "s_half_cm2",
    "source",
    "reference",
    "used_in",
    "notes",
)
_REQUIRED_TEXT = ("name", "kind", "source", "reference")
_ID_PATTERN = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")


@dataclass(frozen=True)
class Coil:
    """One TMS coil of the catalogue.

    Attributes
    ----------
    id : str
        Lowercase id, e.g. ``"fig8_70"``, ``"h7"``.
    name : str
        Readable name.
    kind : str
        ``"figure8"``, ``"double_cone"``, ``"h_coil"``...
    field_pattern : str
        ``"figure-8"``, ``"H-coil"``...
    geometry : {"figure8", "standin"}
        How tmsplan draws it: a flat figure-8, or a labelled stand-in.
    d_half_cm : float
        Half-value depth d_1/2 in cm, below the cortical surface.
    d_half_basis : {"paper_table", "paper_range_bound", "tmsplan_default"}
        Where ``d_half_cm`` comes from.
    s_half_cm2 : float or None
        Tangential spread S_1/2 in cm^2, when verified.
    source : str
        Exactly where the depth figure comes from.
    reference : str
        Full reference.
    used_in : str
        Where the coil is used.
    notes : str
        Caveats (unverified values and why).
    """

    id: str
    name: str
    kind: str
    field_pattern: str
    geometry: str
    d_half_cm: float
    d_half_basis: str
    s_half_cm2: float | None
    source: str
    reference: str
    used_in: str = ""
    notes: str = ""

    @property
    def reach_mm(self) -> float:
        """Deepest reachable target below the scalp (mm), by :data:`REACH_RULE`."""
        return reach_mm(self)


def reach_mm(coil: Coil, *, scalp_to_cortex_mm: float = SCALP_TO_CORTEX_MM) -> float:
    """Reach of a coil from the scalp, in mm.

    Parameters
    ----------
    coil : Coil
    scalp_to_cortex_mm : float
        Scalp-to-cortex offset added to ``d_1/2`` (default
        :data:`SCALP_TO_CORTEX_MM`).

    Returns
    -------
    float
        ``scalp_to_cortex_mm + 10 * coil.d_half_cm``.
    """
    return round(float(scalp_to_cortex_mm) + 10.0 * float(coil.d_half_cm), 6)


def _number(text: str, *, where: str, column: str, optional: bool = False) -> float | None:
    text = text.strip()
    if not text:
        if optional:
            return None
        raise CoilError(f"{where}: column '{column}' is empty; it needs a number.")
    try:
        value = float(text)
    except ValueError:
        raise CoilError(f"{where}: column '{column}' must be a number, got {text!r}.") from None
    if not math.isfinite(value) or value <= 0:
        raise CoilError(f"{where}: column '{column}' must be a positive number, got {text!r}.")
    return value


def _parse_coils(text: str, *, source: str) -> tuple[Coil, ...]:
    reader = csv.reader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE)
    rows = [(n, r) for n, r in enumerate(reader, start=1) if r and any(c.strip() for c in r)]
    if not rows:
        raise CoilError(f"coil table {source} is empty; it needs a header and coil rows.")
    header = [h.strip() for h in rows[0][1]]
    missing = [c for c in _COLUMNS if c not in header]
    if missing:
        raise CoilError(f"coil table {source}: header lacks columns {missing}.")
    col = {name: header.index(name) for name in _COLUMNS}
    coils: list[Coil] = []
    seen: set[str] = set()
    for line, row in rows[1:]:
        where = f"coil table {source}, line {line}"
        if len(row) != len(header):
            raise CoilError(
                f"{where}: has {len(row)} tab-separated fields, the header has {len(header)}."
            )
        value = {name: row[i].strip() for name, i in col.items()}
        if not _ID_PATTERN.match(value["id"]):
            raise CoilError(f"{where}: id {value['id']!r} must be lowercase snake case.")
        if value["id"] in seen:
            raise CoilError(f"{where}: id {value['id']!r} is used twice; ids must be unique.")
        seen.add(value["id"])
        for name in _REQUIRED_TEXT:
            if not value[name]:
                raise CoilError(f"{where}: column '{name}' is empty; every coil must name it.")
        if value["geometry"] not in GEOMETRIES:
            raise CoilError(
                f"{where}: geometry must be one of {list(GEOMETRIES)}, got {value['geometry']!r}."
            )
        if value["d_half_basis"] not in D_HALF_BASES:
            raise CoilError(
                f"{where}: d_half_basis must be one of {list(D_HALF_BASES)}, "
                f"got {value['d_half_basis']!r}."
            )
        coils.append(
            Coil(
                id=value["id"],
                name=value["name"],
                kind=value["kind"],
                field_pattern=value["field_pattern"],
                geometry=value["geometry"],
                d_half_cm=float(_number(value["d_half_cm"], where=where, column="d_half_cm")),
                d_half_basis=value["d_half_basis"],
                s_half_cm2=_number(
                    value["s_half_cm2"], where=where, column="s_half_cm2", optional=True
                ),
                source=value["source"],
                reference=value["reference"],
                used_in=value["used_in"],
                notes=value["notes"],
            )
        )
    if not coils:
        raise CoilError(f"coil table {source} has a header but no coil rows.")
    return tuple(coils)


@functools.lru_cache(maxsize=1)
def _bundled_coils() -> tuple[Coil, ...]:
    return load_coils(atlas_dir() / COILS_FILENAME)


def load_coils(path: str | os.PathLike | None = None) -> tuple[Coil, ...]:
    """Read and check the coil table.

    Parameters
    ----------
    path : str or os.PathLike, optional
        A table in the same format; default: tmsplan's bundled ``coils.tsv``.

    Returns
    -------
    tuple of Coil
        In table order.

    Raises
    ------
    CoilError
        Missing, unreadable or invalid table (the message names the line).
    """
    if path is None:
        return _bundled_coils()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CoilError(f"cannot read the coil table '{path}' ({exc.strerror or exc}).") from None
    return _parse_coils(text, source=f"'{path}'")


def coil_ids() -> tuple[str, ...]:
    """Ids of the bundled coils, in table order."""
    return tuple(c.id for c in load_coils())


def get_coil(coil_id: str | Coil | None = None) -> Coil:
    """Return a bundled coil by id (default :data:`DEFAULT_COIL`).

    Parameters
    ----------
    coil_id : str or Coil, optional
        E.g. ``"h7"``; case and spaces are ignored. A :class:`Coil` is returned as is.

    Raises
    ------
    CoilError
        Unknown id; the message lists the valid ids.
    """
    if isinstance(coil_id, Coil):
        return coil_id
    key = DEFAULT_COIL if coil_id is None else str(coil_id).strip().lower()
    coils = load_coils()
    for coil in coils:
        if coil.id == key:
            return coil
    ids = [c.id for c in coils]
    close = difflib.get_close_matches(key, ids, n=2, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise CoilError(f"unknown coil {coil_id!r}.{hint} Valid coils: {', '.join(ids)}.")


def coils_reaching(depth_mm: float) -> list[Coil]:
    """Coils of the catalogue whose reach is at least ``depth_mm`` (shallowest reach first).

    Parameters
    ----------
    depth_mm : float
        Scalp-to-target distance in mm.

    Returns
    -------
    list of Coil
    """
    found = [c for c in load_coils() if c.reach_mm >= float(depth_mm)]
    return sorted(found, key=lambda c: (c.reach_mm, c.id))


def coil_description(coil: Coil) -> dict:
    """JSON-ready description of a coil for the record's ``"coil"`` key.

    Parameters
    ----------
    coil : Coil

    Returns
    -------
    dict
        ``id, name, kind, field_pattern, geometry, d_half_cm, d_half_basis,
        s_half_cm2, reach_mm, reach_rule, source, reference, notes, catalogue``.
    """
    return {
        "id": coil.id,
        "name": coil.name,
        "kind": coil.kind,
        "field_pattern": coil.field_pattern,
        "geometry": coil.geometry,
        "d_half_cm": coil.d_half_cm,
        "d_half_basis": coil.d_half_basis,
        "s_half_cm2": coil.s_half_cm2,
        "reach_mm": coil.reach_mm,
        "reach_rule": REACH_RULE.format(offset=SCALP_TO_CORTEX_MM),
        "source": coil.source,
        "reference": coil.reference,
        "notes": coil.notes,
        "catalogue": f"tmsplan {COILS_FILENAME}",
    }


def deep_target_verdict(
    depth_mm: float,
    coil: Coil,
    *,
    max_depth_mm: float | None = None,
    roi_id: str | None = None,
) -> dict:
    """What to do about a target deeper than the coil reaches.

    Parameters
    ----------
    depth_mm : float
        Scalp-to-target distance (mm).
    coil : Coil
        The coil of the plan.
    max_depth_mm : float, optional
        The reach actually used (``--max-depth``; default the coil's reach).
    roi_id : str, optional
        The deep ROI's atlas id, for the suggested connectivity command.

    Returns
    -------
    dict
        JSON-ready: ``depth_mm``, ``coil``, ``coil_reach_mm``,
        ``coils_that_reach`` (list of ``{id, name, reach_mm, d_half_basis}``),
        ``connectivity`` (what the connectivity strategy needs) and ``text``
        (one paragraph for the record's warnings and the report).
    """
    reach = coil.reach_mm if max_depth_mm is None else float(max_depth_mm)
    deeper = [c for c in coils_reaching(depth_mm) if c.id != coil.id]
    seed = roi_id or "DEEP_ROI"
    command = (
        f"tmsplan plan --rest BOLD.nii.gz [--confounds TSV] --seed-roi {seed} "
        "--roi CORTICAL_ROI --strategy connectivity --out DIR"
    )
    if deeper:
        names = ", ".join(f"{c.id} (reach {c.reach_mm:g} mm, {c.d_half_basis})" for c in deeper)
        coils_text = f"coils of the catalogue that would reach it: {names}"
        if any(c.d_half_basis == "paper_range_bound" for c in deeper):
            coils_text += (
                " (a paper_range_bound reach is the deepest d_1/2 of Deng et al. 2013's whole "
                "comparison, not that coil's own figure: an upper bound, likely optimistic)"
            )
    else:
        coils_text = "no coil of the catalogue reaches it (deepest reach " + (
            f"{max(c.reach_mm for c in load_coils()):g} mm)"
        )
    text = (
        f"the target is {depth_mm:.1f} mm below the scalp: NOT reachable with the {coil.name} "
        f"(reach {reach:g} mm); {coils_text}. Alternative: stimulate a reachable cortical "
        "site functionally coupled to this region (connectivity strategy), which needs the "
        f"participant's resting-state fMRI: {command}."
    )
    return {
        "depth_mm": round(float(depth_mm), 3),
        "coil": coil.id,
        "coil_reach_mm": reach,
        "coils_that_reach": [
            {"id": c.id, "name": c.name, "reach_mm": c.reach_mm, "d_half_basis": c.d_half_basis}
            for c in deeper
        ],
        "connectivity": {
            "needs": "resting-state fMRI (4-D BOLD in the ROI space, typically MNI)",
            "command": command,
        },
        "text": text,
    }


def format_coil_table(coils: tuple[Coil, ...] | list[Coil]) -> str:
    """Readable text table of coils (id, name, d_1/2, basis, reach).

    Parameters
    ----------
    coils : sequence of Coil

    Returns
    -------
    str
    """
    header = ("id", "name", "d_1/2", "basis", "reach")
    lines = [
        (c.id, c.name, f"{c.d_half_cm:g} cm", c.d_half_basis, f"{c.reach_mm:g} mm") for c in coils
    ]
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]
    out = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in lines]
    head = "  ".join(v.ljust(w) for v, w in zip(header, widths, strict=True)).rstrip()
    return "\n".join([head, *out, "", REACH_RULE.format(offset=SCALP_TO_CORTEX_MM) + "."])
