"""tmsplan's craving-ROI atlas: named spheres in MNI152NLin6Asym space, each with its source.

Design notes: ``docs/targets.md``, section ``tmsplan.target.atlas``.
"""

from __future__ import annotations

import csv
import difflib
import functools
import io
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.affines import apply_affine

from tmsplan.errors import RoiError, SpaceError
from tmsplan.io.bundled import atlas_dir
from tmsplan.io.images import ImageLike, check_img, img_on_grid, world_to_voxel
from tmsplan.spaces import MNI_FRAME, Points, as_points_array

__all__ = [
    "ATLAS_FILENAME",
    "HEMISPHERES",
    "SOURCE_KINDS",
    "MIDLINE_MAX_ABS_X_MM",
    "Roi",
    "load_rois",
    "get_roi",
    "roi_ids",
    "sphere_mask_img",
    "roi_mask_img",
    "format_roi_table",
    "roi_description",
    "roi_depths_mm",
    "reachability",
    "format_reachability_table",
]

ATLAS_FILENAME = "craving_rois.tsv"
"""Name of the ROI table inside :func:`tmsplan.io.bundled.atlas_dir`."""

HEMISPHERES = ("L", "R", "midline")
"""Allowed ``hemisphere`` values."""

SOURCE_KINDS = ("seed_table", "primary_paper", "tms_literature", "atlas_centroid", "roi_set")
"""Allowed ``source_kind`` values: where a row's coordinate comes from (``roi_set``: a
published coordinate ROI set shipped offline with nilearn, picked by a stated label rule)."""

MIDLINE_MAX_ABS_X_MM = 10.0
"""A ``midline`` ROI must have its centre within this distance of x = 0 (mm)."""

_COLUMNS = (
    "id",
    "drug",
    "population",
    "region",
    "hemisphere",
    "mni_x",
    "mni_y",
    "mni_z",
    "radius_mm",
    "definition",
    "citation",
    "reference",
    "coordinate_source",
    "source_kind",
    "peak_z",
    "cluster_volume_mm3",
    "notes",
)
_REQUIRED_TEXT = ("drug", "population", "region", "citation", "coordinate_source")
_ID_PATTERN = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
_DEFINITIONS = ("sphere",)
# Voxels whose centre is within radius + this tolerance are inside the sphere, so
# that voxel centres lying exactly on the surface are kept whatever the voxel
# order of the grid (floating-point round-off differs between RAS/LAS/LPS copies).
_SURFACE_TOL_MM = 1e-6


@dataclass(frozen=True)
class Roi:
    """One craving ROI: a sphere in MNI152NLin6Asym space and where it comes from.

    Attributes
    ----------
    id : str
        Lowercase snake id ``<drug>_<region>_<hemi>``, e.g. ``"cocaine_mfg_l"``.
    drug : str
        ``"cocaine"``, ``"heroin"`` or ``"methamphetamine"``.
    population : str
        Who the finding comes from (active users, abstinent, treatment-seeking, n).
    region : str
        Anatomical name of the region.
    hemisphere : {"L", "R", "midline"}
    centre_mni : (3,) float64
        Sphere centre, RAS+ millimetres in frame ``"MNI152NLin6Asym"`` (read-only).
    radius_mm : float
        Sphere radius in millimetres.
    citation : str
        Short citation of the study that motivates the region (``"Zhang et al. 2018"``).
    coordinate_source : str
        Exactly where the coordinate comes from (e.g. the seed review's Table 1 row).
    source_kind : {"seed_table", "primary_paper", "tms_literature", "atlas_centroid", "roi_set"}
    notes : str
        Caveats: discrepancies, stand-in coordinates and why.
    peak_z : float or None
        Peak z-score of the source cluster, when the source gives one.
    cluster_volume_mm3 : float or None
        Volume of the source cluster in mm^3, when the source gives one.
    definition : str
        Shape of the ROI; ``"sphere"``.
    reference : str
        Full reference(s), with DOI where known.
    """

    id: str
    drug: str
    population: str
    region: str
    hemisphere: str
    centre_mni: np.ndarray = field(repr=False)
    radius_mm: float
    citation: str
    coordinate_source: str
    source_kind: str
    notes: str = ""
    peak_z: float | None = None
    cluster_volume_mm3: float | None = None
    definition: str = "sphere"
    reference: str = ""

    def __post_init__(self) -> None:
        centre = np.array(self.centre_mni, dtype=np.float64).reshape(-1)
        if centre.shape != (3,) or not np.all(np.isfinite(centre)):
            raise RoiError(
                f"ROI {self.id!r}: centre_mni must be 3 finite numbers (x, y, z in mm), "
                f"got {np.asarray(self.centre_mni).tolist()}."
            )
        centre.setflags(write=False)
        object.__setattr__(self, "centre_mni", centre)
        radius = float(self.radius_mm)
        if not math.isfinite(radius) or radius <= 0:
            raise RoiError(f"ROI {self.id!r}: radius_mm must be a positive number, got {radius}.")
        object.__setattr__(self, "radius_mm", radius)

    @property
    def frame(self) -> str:
        """World frame of :attr:`centre_mni`: ``"MNI152NLin6Asym"``."""
        return MNI_FRAME

    @property
    def centre(self) -> Points:
        """Sphere centre as ``Points`` of shape ``(1, 3)`` in ``"MNI152NLin6Asym"`` (mm)."""
        return Points(self.centre_mni[None, :], MNI_FRAME)

    @property
    def cluster_equivalent_radius_mm(self) -> float | None:
        """Radius (mm) of a sphere with the source cluster's volume, or None without one."""
        if self.cluster_volume_mm3 is None:
            return None
        return float((3.0 * self.cluster_volume_mm3 / (4.0 * math.pi)) ** (1.0 / 3.0))


# --------------------------------------------------------------------------- reading


def _number(text: str, *, where: str, column: str, optional: bool = False) -> float | None:
    text = text.strip()
    if not text:
        if optional:
            return None
        raise RoiError(f"{where}: column '{column}' is empty; it needs a number.")
    try:
        value = float(text)
    except ValueError:
        raise RoiError(f"{where}: column '{column}' must be a number, got {text!r}.") from None
    if not math.isfinite(value):
        raise RoiError(f"{where}: column '{column}' must be finite, got {text!r}.")
    return value


def _check_hemisphere(roi_id: str, hemisphere: str, x: float, radius: float, where: str) -> None:
    if hemisphere not in HEMISPHERES:
        raise RoiError(
            f"{where}: hemisphere must be one of {list(HEMISPHERES)}, got {hemisphere!r}."
        )
    bad = (
        (hemisphere == "L" and not x < 0)
        or (hemisphere == "R" and not x > 0)
        or (hemisphere == "midline" and abs(x) > MIDLINE_MAX_ABS_X_MM)
    )
    if bad:
        rule = {
            "L": "x < 0 (left is negative x in RAS+ MNI)",
            "R": "x > 0 (right is positive x in RAS+ MNI)",
            "midline": f"|x| <= {MIDLINE_MAX_ABS_X_MM:g} mm",
        }[hemisphere]
        raise RoiError(
            f"{where}: ROI {roi_id!r} is labelled hemisphere {hemisphere!r} but its centre has "
            f"x = {x:g} mm; {hemisphere!r} needs {rule}. A left/right flip in the table? "
            "Fix the row."
        )
    if hemisphere in ("L", "R") and abs(x) <= radius:
        raise RoiError(
            f"{where}: ROI {roi_id!r} is a {hemisphere!r} ROI but its {radius:g} mm sphere around "
            f"x = {x:g} mm crosses the midline into the other hemisphere; use a radius below "
            f"{abs(x):g} mm."
        )


def _parse_rois(text: str, *, source: str) -> tuple[Roi, ...]:
    """Parse and check the ROI table's text; ``source`` names it in errors."""
    reader = csv.reader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE)
    rows = [
        (n, row) for n, row in enumerate(reader, start=1) if row and any(c.strip() for c in row)
    ]
    if not rows:
        raise RoiError(f"ROI table {source} is empty; it needs a header and at least one row.")
    header_line, header = rows[0]
    header = [h.strip() for h in header]
    missing = [c for c in _COLUMNS if c not in header]
    if missing:
        raise RoiError(
            f"ROI table {source}: header (line {header_line}) lacks columns {missing}; "
            f"expected the tab-separated columns {list(_COLUMNS)}."
        )
    col = {name: header.index(name) for name in _COLUMNS}
    rois: list[Roi] = []
    seen: dict[str, int] = {}
    for line, row in rows[1:]:
        where = f"ROI table {source}, line {line}"
        if len(row) != len(header):
            raise RoiError(
                f"{where}: has {len(row)} tab-separated fields, the header has {len(header)}; "
                "check for a missing or extra tab."
            )
        value = {name: row[i].strip() for name, i in col.items()}
        roi_id = value["id"]
        if not _ID_PATTERN.match(roi_id):
            raise RoiError(
                f"{where}: id {roi_id!r} must be lowercase snake case like 'cocaine_mfg_l'."
            )
        where = f"{where} (id {roi_id!r})"
        if roi_id in seen:
            raise RoiError(f"{where}: id already used on line {seen[roi_id]}; ids must be unique.")
        seen[roi_id] = line
        for name in _REQUIRED_TEXT:
            if not value[name]:
                raise RoiError(f"{where}: column '{name}' is empty; every ROI must name it.")
        if value["source_kind"] not in SOURCE_KINDS:
            raise RoiError(
                f"{where}: source_kind must be one of {list(SOURCE_KINDS)}, "
                f"got {value['source_kind']!r}."
            )
        if value["definition"] not in _DEFINITIONS:
            raise RoiError(
                f"{where}: definition must be one of {list(_DEFINITIONS)}, "
                f"got {value['definition']!r}."
            )
        xyz = [_number(value[c], where=where, column=c) for c in ("mni_x", "mni_y", "mni_z")]
        radius = _number(value["radius_mm"], where=where, column="radius_mm")
        if radius is None or radius <= 0:
            raise RoiError(f"{where}: radius_mm must be positive, got {value['radius_mm']!r}.")
        volume = _number(
            value["cluster_volume_mm3"], where=where, column="cluster_volume_mm3", optional=True
        )
        if volume is not None and volume <= 0:
            raise RoiError(f"{where}: cluster_volume_mm3 must be positive or empty.")
        _check_hemisphere(roi_id, value["hemisphere"], float(xyz[0]), float(radius), where)
        rois.append(
            Roi(
                id=roi_id,
                drug=value["drug"],
                population=value["population"],
                region=value["region"],
                hemisphere=value["hemisphere"],
                centre_mni=np.array(xyz, dtype=np.float64),
                radius_mm=radius,
                citation=value["citation"],
                coordinate_source=value["coordinate_source"],
                source_kind=value["source_kind"],
                notes=value["notes"],
                peak_z=_number(value["peak_z"], where=where, column="peak_z", optional=True),
                cluster_volume_mm3=volume,
                definition=value["definition"],
                reference=value["reference"],
            )
        )
    if not rois:
        raise RoiError(f"ROI table {source} has a header but no ROI rows.")
    return tuple(rois)


def _read_table(path: Path) -> tuple[Roi, ...]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RoiError(
            f"cannot read the ROI table '{path}' ({exc.strerror or exc}); reinstall tmsplan "
            "or check the path."
        ) from None
    return _parse_rois(text, source=f"'{path}'")


@functools.lru_cache(maxsize=1)
def _bundled_rois() -> tuple[Roi, ...]:
    return _read_table(atlas_dir() / ATLAS_FILENAME)


def load_rois(path: str | os.PathLike | None = None) -> tuple[Roi, ...]:
    """Read and check the craving-ROI table.

    Parameters
    ----------
    path : str or os.PathLike, optional
        A table in the same format; default: tmsplan's bundled
        ``craving_rois.tsv`` (read once, then cached).

    Returns
    -------
    tuple of Roi
        In table order.

    Raises
    ------
    RoiError
        The table is missing, unreadable or invalid (the message names the line).
    """
    if path is None:
        return _bundled_rois()
    return _read_table(Path(path))


def roi_ids() -> tuple[str, ...]:
    """Ids of the bundled ROIs, in table order."""
    return tuple(roi.id for roi in load_rois())


def get_roi(roi_id: str) -> Roi:
    """Return the bundled ROI with this id.

    Parameters
    ----------
    roi_id : str
        E.g. ``"cocaine_mfg_l"``; case and surrounding spaces are ignored.

    Raises
    ------
    RoiError
        Unknown id; the message lists the valid ids and the closest matches.
    """
    rois = load_rois()
    key = str(roi_id).strip().lower()
    for roi in rois:
        if roi.id == key:
            return roi
    ids = [roi.id for roi in rois]
    close = difflib.get_close_matches(key, ids, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise RoiError(
        f"unknown ROI id {roi_id!r}.{hint} Valid ids: {', '.join(ids)}. "
        "Run 'tmsplan rois' to list them with their regions and sources."
    )


# --------------------------------------------------------------------------- masks


def sphere_mask_img(
    centre_xyz: np.ndarray,
    radius_mm: float,
    reference: ImageLike,
    *,
    name: str = "reference image",
) -> nib.Nifti1Image:
    """Binary sphere on the voxel grid of a reference image.

    Voxel ``v`` is inside when its centre's world position ``A @ v`` is within
    ``radius_mm`` of ``centre_xyz``. The test is done in world millimetres, so the
    same world voxels are selected whatever the voxel order (RAS, LAS, LPS...),
    obliquity or anisotropy of the grid.

    Parameters
    ----------
    centre_xyz : (3,) or (1, 3) float
        Sphere centre, RAS+ mm, in the world frame of ``reference``.
    radius_mm : float
        Sphere radius in mm (> 0).
    reference : str, os.PathLike or nibabel image
        Image whose grid (shape, affine) the mask takes; its values are not used.
    name : str
        Name of ``reference`` in error messages.

    Returns
    -------
    nibabel.Nifti1Image
        uint8 data (1 inside, 0 outside), the reference's shape and affine.

    Raises
    ------
    RoiError
        Radius not a positive finite number, or a sphere inside the field of view
        that holds no voxel centre (radius small against the voxel size).
    SpaceError
        The sphere lies entirely outside the reference's field of view (the image
        is probably in another space).
    """
    centre = as_points_array(centre_xyz, name="sphere centre")
    if centre.shape[0] != 1:
        raise SpaceError(f"sphere centre: expected one point, got {centre.shape[0]}.")
    centre = centre[0]
    try:
        radius = float(radius_mm)
    except (TypeError, ValueError):
        raise RoiError(f"sphere radius must be a number in mm, got {radius_mm!r}.") from None
    if not math.isfinite(radius) or radius <= 0:
        raise RoiError(f"sphere radius must be a positive number of mm, got {radius_mm!r}.")
    ref = check_img(reference, name=name, nan_policy="zero", require_signal=False)
    shape = tuple(int(s) for s in ref.shape[:3])
    affine = np.asarray(ref.affine, dtype=np.float64)

    # Voxel-index bounding box of the sphere: map the corners of its world-space cube.
    offsets = np.array(
        [[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=np.float64
    )
    corners = world_to_voxel(affine, centre + (radius + _SURFACE_TOL_MM) * offsets)
    lo = np.maximum(np.floor(corners.min(axis=0)).astype(int), 0)
    hi = np.minimum(np.ceil(corners.max(axis=0)).astype(int), np.array(shape) - 1)
    data = np.zeros(shape, dtype=np.uint8)
    if np.all(lo <= hi):
        axes = [np.arange(a, b + 1) for a, b in zip(lo, hi, strict=True)]
        grids = np.meshgrid(*axes, indexing="ij")
        ijk = np.stack([g.ravel() for g in grids], axis=1)
        xyz = apply_affine(affine, ijk)
        inside = np.linalg.norm(xyz - centre, axis=1) <= radius + _SURFACE_TOL_MM
        sel = ijk[inside]
        data[sel[:, 0], sel[:, 1], sel[:, 2]] = 1
    if not data.any():
        centre_ijk = world_to_voxel(affine, centre)[0]
        centre_in_fov = bool(np.all((centre_ijk >= -0.5) & (centre_ijk <= np.array(shape) - 0.5)))
        if not centre_in_fov:
            world_min, world_max = _fov_bounds(affine, shape)
            raise SpaceError(
                f"the sphere at ({_fmt_xyz(centre)}) mm with radius {radius:g} mm lies outside "
                f"the field of view of {name} (world x {world_min[0]:.0f}..{world_max[0]:.0f}, "
                f"y {world_min[1]:.0f}..{world_max[1]:.0f}, "
                f"z {world_min[2]:.0f}..{world_max[2]:.0f} mm); the image is probably not in "
                "the ROI's space (MNI ROIs need an MNI-space image)."
            )
        zooms = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
        raise RoiError(
            f"the sphere at ({_fmt_xyz(centre)}) mm with radius {radius:g} mm contains no voxel "
            f"centre of {name} (voxel size {_fmt_xyz(zooms)} mm); use a radius of at least "
            "the voxel size."
        )
    out = img_on_grid(data, ref)
    out.set_data_dtype(np.uint8)
    return out


def _fov_bounds(affine: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    last = [n - 1 for n in shape[:3]]
    corners = np.array(
        [[i, j, k] for i in (0, last[0]) for j in (0, last[1]) for k in (0, last[2])],
        dtype=np.float64,
    )
    world = apply_affine(affine, corners)
    return world.min(axis=0), world.max(axis=0)


def roi_mask_img(
    roi: Roi, reference: ImageLike, *, radius_mm: float | None = None
) -> nib.Nifti1Image:
    """The ROI's sphere as a uint8 mask on a reference image's grid.

    Parameters
    ----------
    roi : Roi
        From :func:`get_roi` or :func:`load_rois`.
    reference : str, os.PathLike or nibabel image
        An image in MNI152NLin6Asym world space (e.g. a group activation map or
        the embedded head). To mask a subject image, carry ``roi.centre`` into
        the subject's frame first and call :func:`sphere_mask_img`.
    radius_mm : float, optional
        Override the ROI's radius (mm).

    Returns
    -------
    nibabel.Nifti1Image
        uint8, 1 inside the sphere, on the reference's grid.

    Raises
    ------
    SpaceError
        The sphere lies outside the reference's field of view.
    RoiError
        The sphere holds no voxel centre, or the radius is invalid.
    """
    if not isinstance(roi, Roi):
        raise RoiError(
            f"roi must be a tmsplan.target.atlas.Roi (use get_roi('cocaine_mfg_l')), "
            f"got {type(roi).__name__}."
        )
    radius = roi.radius_mm if radius_mm is None else radius_mm
    return sphere_mask_img(
        roi.centre_mni, radius, reference, name=f"the reference image for ROI {roi.id!r}"
    )


# --------------------------------------------------------------------------- text


def _fmt_num(value: float) -> str:
    text = f"{float(value):.1f}"
    return text[:-2] if text.endswith(".0") else text


def _fmt_xyz(xyz: np.ndarray) -> str:
    values = np.asarray(xyz, dtype=np.float64).reshape(-1)
    if np.all(values == np.round(values)):
        return ", ".join(f"{v:.0f}" for v in values)
    return ", ".join(f"{v:.1f}" for v in values)


def format_roi_table(rois: tuple[Roi, ...] | list[Roi]) -> str:
    """A readable, column-aligned text table of ROIs (for ``tmsplan rois``).

    Parameters
    ----------
    rois : sequence of Roi

    Returns
    -------
    str
        Header, one line per ROI (id, drug, region, hemisphere, MNI centre in mm,
        radius, source kind, short citation) and a footer naming the frame.
    """
    header = ("id", "drug", "region", "hemi", "MNI x, y, z (mm)", "radius", "source", "citation")
    lines = [
        (
            roi.id,
            roi.drug,
            roi.region,
            roi.hemisphere,
            _fmt_xyz(roi.centre_mni),
            f"{_fmt_num(roi.radius_mm)} mm",
            roi.source_kind,
            roi.citation,
        )
        for roi in rois
    ]
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]

    def render(row: tuple[str, ...]) -> str:
        return "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()

    out = [render(header), render(tuple("-" * w for w in widths))]
    out += [render(row) for row in lines]
    out.append("")
    out.append(
        f"Centres in {MNI_FRAME} (RAS+ mm), spheres. source: seed_table = the seed review's "
        "Table 1; tms_literature / atlas_centroid = stand-in coordinates, not from the review. "
        f"Sources, populations and caveats: README.md beside {ATLAS_FILENAME}."
    )
    return "\n".join(out)


def roi_description(roi: Roi) -> dict:
    """JSON-ready description of an ROI for the plan record's ``"roi"`` key.

    Parameters
    ----------
    roi : Roi

    Returns
    -------
    dict
        ``id, drug, population, region, hemisphere, frame, centre_mni_mm,
        radius_mm, definition, citation, reference, coordinate_source,
        source_kind, peak_z, cluster_volume_mm3, notes, atlas``.
    """
    return {
        "id": roi.id,
        "drug": roi.drug,
        "population": roi.population,
        "region": roi.region,
        "hemisphere": roi.hemisphere,
        "frame": MNI_FRAME,
        "centre_mni_mm": [float(v) for v in roi.centre_mni],
        "radius_mm": float(roi.radius_mm),
        "definition": roi.definition,
        "citation": roi.citation,
        "reference": roi.reference,
        "coordinate_source": roi.coordinate_source,
        "source_kind": roi.source_kind,
        "peak_z": None if roi.peak_z is None else float(roi.peak_z),
        "cluster_volume_mm3": (
            None if roi.cluster_volume_mm3 is None else float(roi.cluster_volume_mm3)
        ),
        "notes": roi.notes,
        "atlas": f"tmsplan {ATLAS_FILENAME}",
    }


# --------------------------------------------------------------------------- reach


@functools.lru_cache(maxsize=4)
def _depths(centres: tuple[tuple[float, float, float], ...]) -> tuple[float, ...]:
    from tmsplan.coil.placement import nearest_surface_point
    from tmsplan.head.scalp import scalp_surface
    from tmsplan.io.bundled import load_mni_head

    scalp = scalp_surface(load_mni_head(1), frame=MNI_FRAME, name="embedded MNI head")
    fov = np.asarray(scalp.fov_boundary, dtype=bool)
    skin = ~fov[scalp.mesh.faces].any(axis=1) if fov.any() else None
    return tuple(
        float(nearest_surface_point(scalp.mesh, np.asarray(c), face_mask=skin)[1]) for c in centres
    )


def roi_depths_mm(rois: tuple[Roi, ...] | list[Roi]) -> dict[str, float]:
    """Depth of each ROI centre below the scalp of the embedded MNI152NLin6Asym head.

    The depth is the distance from the centre to the nearest scalp point (the
    field-of-view cut at the neck is not scalp), the same rule a plan uses for
    its target.

    Parameters
    ----------
    rois : sequence of Roi

    Returns
    -------
    dict
        ROI id -> depth in mm (computed once per set of centres, then cached).
    """
    centres = tuple(tuple(float(v) for v in roi.centre_mni) for roi in rois)
    return {roi.id: depth for roi, depth in zip(rois, _depths(centres), strict=True)}


def reachability(rois: tuple[Roi, ...] | list[Roi], coils=None) -> list[dict]:
    """Which coils of the catalogue reach each ROI centre on the embedded head.

    Parameters
    ----------
    rois : sequence of Roi
    coils : sequence of tmsplan.coil.catalogue.Coil, optional
        Default: the whole catalogue.

    Returns
    -------
    list of dict
        Per ROI: ``id``, ``depth_mm`` (centre below the scalp),
        ``nearest_part_mm`` (depth minus radius) and ``reachable_with``
        (coil ids whose reach >= the centre's depth).
    """
    from tmsplan.coil.catalogue import load_coils

    coils = load_coils() if coils is None else coils
    depths = roi_depths_mm(rois)
    return [
        {
            "id": roi.id,
            "depth_mm": round(depths[roi.id], 1),
            "nearest_part_mm": round(max(0.0, depths[roi.id] - roi.radius_mm), 1),
            "reachable_with": [c.id for c in coils if c.reach_mm >= depths[roi.id]],
        }
        for roi in rois
    ]


def format_reachability_table(rois: tuple[Roi, ...] | list[Roi], coils=None) -> str:
    """Text table of ROIs with their depth and the coils that reach them (``tmsplan rois``).

    Parameters
    ----------
    rois : sequence of Roi
    coils : sequence of tmsplan.coil.catalogue.Coil, optional

    Returns
    -------
    str
    """
    from tmsplan.coil.catalogue import REACH_RULE, SCALP_TO_CORTEX_MM

    reach = {row["id"]: row for row in reachability(rois, coils)}
    header = ("id", "drug", "region", "hemi", "MNI x, y, z (mm)", "depth", "reached by")
    lines = [
        (
            roi.id,
            roi.drug,
            roi.region if len(roi.region) <= 40 else roi.region[:37] + "...",
            roi.hemisphere,
            _fmt_xyz(roi.centre_mni),
            f"{reach[roi.id]['depth_mm']:.1f} mm",
            ", ".join(reach[roi.id]["reachable_with"]) or "no coil",
        )
        for roi in rois
    ]
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]

    def render(row: tuple[str, ...]) -> str:
        return "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()

    out = [render(header), render(tuple("-" * w for w in widths)), *(render(r) for r in lines)]
    out += [
        "",
        "depth: ROI centre to the nearest scalp point of the embedded MNI152NLin6Asym head; "
        "a coil reaches an ROI when its reach >= that depth; "
        + REACH_RULE.format(offset=SCALP_TO_CORTEX_MM)
        + ". Sources: README.md beside "
        + ATLAS_FILENAME
        + "; coils: 'tmsplan coils'.",
    ]
    return "\n".join(out)
