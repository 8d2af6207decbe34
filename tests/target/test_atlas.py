import json
import math
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

from tmsplan.errors import RoiError, SpaceError, TmsplanError
from tmsplan.io.bundled import atlas_dir, load_mni_brain_mask
from tmsplan.io.images import voxel_to_world, world_to_voxel
from tmsplan.spaces import MNI_FRAME, Points
from tmsplan.target import atlas
from tmsplan.target.atlas import (
    SOURCE_KINDS,
    Roi,
    format_roi_table,
    get_roi,
    load_rois,
    roi_description,
    roi_mask_img,
    sphere_mask_img,
)

REQUIRED_IDS = (
    "cocaine_mfg_l",
    "cocaine_mfg_r",
    "cocaine_ipc_l",
    "cocaine_ipc_r",
    "cocaine_visual_l",
    "cocaine_visual_r",
    "cocaine_hypothalamus",
    "heroin_dlpfc_l",
    "meth_vs_l",
    "meth_vs_r",
    "meth_mpfc",
)

# The spec: the seed review's Table 1 (cocaine > neutral images), transcribed by hand.
# id: (x, y, z, peak z, cluster volume mm^3)
SEED_TABLE_1 = {
    "cocaine_visual_l": (-39, -58, -14, 6.96, 19737),
    "cocaine_visual_r": (42, -82, -8, 6.80, 18036),
    "cocaine_ipc_l": (-30, -61, 55, 6.32, 7452),
    "cocaine_ipc_r": (33, -46, 49, 6.26, 4914),
    "cocaine_mfg_l": (-54, 2, 28, 5.39, 729),
    "cocaine_mfg_r": (51, 8, 25, 5.14, 540),
    "cocaine_hypothalamus": (3, -4, -14, 5.14, 675),
}


# --------------------------------------------------------------------------- builders

_HEADER = "\t".join(atlas._COLUMNS)


def _row(**overrides: object) -> str:
    values = {
        "id": "cocaine_test_l",
        "drug": "cocaine",
        "population": "test",
        "region": "test region",
        "hemisphere": "L",
        "mni_x": "-40",
        "mni_y": "10",
        "mni_z": "20",
        "radius_mm": "10",
        "definition": "sphere",
        "citation": "Doe et al. 2000",
        "reference": "Doe J. A test. 2000",
        "coordinate_source": "test table row 1",
        "source_kind": "primary_paper",
        "peak_z": "",
        "cluster_volume_mm3": "",
        "notes": "",
    }
    values.update({k: str(v) for k, v in overrides.items()})
    return "\t".join(values[c] for c in atlas._COLUMNS)


def _write_table(tmp_path, *rows: str, header: str = _HEADER):
    path = tmp_path / "rois.tsv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def _asymmetric_ras_img(shape=(23, 27, 19), zooms=(2.0, 2.5, 3.0), origin=(-21.0, -35.5, -26.0)):
    """Small RAS-stored grid: anisotropic voxels, origin off-centre, left half brighter."""
    affine = np.diag([*zooms, 1.0])
    affine[:3, 3] = origin
    rng = np.random.default_rng(0)
    data = rng.uniform(1.0, 2.0, size=shape)
    ijk = np.indices(shape).reshape(3, -1).T
    x = voxel_to_world(affine, ijk)[:, 0].reshape(shape)
    data[x < 0] += 5.0  # left != right
    return nib.Nifti1Image(data, affine)


def _flipped_copy(img: nib.Nifti1Image, axes: tuple[int, ...]) -> nib.Nifti1Image:
    """Same world content, stored with the given voxel axes reversed (RAS -> LAS / LPS)."""
    data = np.asarray(img.dataobj)
    affine = img.affine.copy()
    for ax in axes:
        n = data.shape[ax]
        data = np.flip(data, axis=ax)
        flip = np.eye(4)
        flip[ax, ax] = -1.0
        flip[ax, 3] = n - 1
        affine = affine @ flip
    return nib.Nifti1Image(np.ascontiguousarray(data), affine)


def _selected_world(mask_img: nib.Nifti1Image) -> set[tuple[float, float, float]]:
    """World positions (mm, rounded to 1 um) of the voxels a mask selects (axis-aligned grids)."""
    ijk = np.argwhere(np.asarray(mask_img.dataobj) > 0)
    xyz = voxel_to_world(mask_img.affine, ijk)
    return {tuple(p) for p in np.round(xyz, 3)}


def _brute_force_ijk(img: nib.Nifti1Image, centre, radius) -> set[tuple[int, int, int]]:
    ijk = np.indices(img.shape[:3]).reshape(3, -1).T
    xyz = voxel_to_world(img.affine, ijk)
    keep = np.linalg.norm(xyz - np.asarray(centre, dtype=float), axis=1) <= radius + 1e-6
    return {tuple(int(v) for v in p) for p in ijk[keep]}


def _brute_force_world(img: nib.Nifti1Image, centre, radius) -> set[tuple[float, float, float]]:
    ijk = np.array(sorted(_brute_force_ijk(img, centre, radius)))
    return {tuple(p) for p in np.round(voxel_to_world(img.affine, ijk), 3)}


def _selected_ijk(mask_img: nib.Nifti1Image) -> set[tuple[int, int, int]]:
    return {tuple(int(v) for v in p) for p in np.argwhere(np.asarray(mask_img.dataobj) > 0)}


def _mni_grid(zoom: float = 3.0) -> nib.Nifti1Image:
    """A coarse grid covering the MNI brain, RAS-stored."""
    shape = (61, 73, 61)
    affine = np.diag([zoom, zoom, zoom, 1.0])
    affine[:3, 3] = (-90.0, -126.0, -72.0)
    return nib.Nifti1Image(np.ones(shape), affine)


# --------------------------------------------------------------------------- the table


def test_bundled_table_loads_as_rois():
    rois = load_rois()
    assert len(rois) >= len(REQUIRED_IDS)
    assert all(isinstance(r, Roi) for r in rois)
    assert (atlas_dir() / atlas.ATLAS_FILENAME).is_file()
    assert load_rois() is rois  # cached


def test_required_ids_present_and_unique():
    ids = [r.id for r in load_rois()]
    assert len(ids) == len(set(ids))
    missing = set(REQUIRED_IDS) - set(ids)
    assert not missing


def test_every_row_names_its_sources():
    for roi in load_rois():
        assert roi.citation.strip(), roi.id
        assert roi.coordinate_source.strip(), roi.id
        assert roi.reference.strip(), roi.id
        assert roi.population.strip(), roi.id
        assert roi.source_kind in SOURCE_KINDS, roi.id
        assert roi.definition == "sphere"
        assert roi.radius_mm > 0


def test_hemisphere_agrees_with_sign_of_x_and_sphere_stays_on_its_side():
    for roi in load_rois():
        x = roi.centre_mni[0]
        if roi.hemisphere == "L":
            assert x < 0 and x + roi.radius_mm < 0, roi.id
            assert roi.id.endswith("_l"), roi.id
        elif roi.hemisphere == "R":
            assert x > 0 and x - roi.radius_mm > 0, roi.id
            assert roi.id.endswith("_r"), roi.id
        else:
            assert roi.hemisphere == "midline", roi.id
            assert abs(x) <= 10.0, roi.id


def test_cocaine_rows_equal_seed_table_1_exactly():
    for roi_id, (x, y, z, peak_z, volume) in SEED_TABLE_1.items():
        roi = get_roi(roi_id)
        assert roi.drug == "cocaine"
        assert roi.centre_mni.tolist() == [x, y, z]
        assert roi.peak_z == peak_z
        assert roi.cluster_volume_mm3 == volume
        assert roi.source_kind == "seed_table"
        assert "Table 1" in roi.coordinate_source
        assert roi.citation.startswith("Zhang et al. 2018")
        assert "23" in roi.population and "treatment-seeking" in roi.population
        # the caption/text discrepancy is recorded in every Table 1 row
        assert "Huang et al., 2018" in roi.notes and "Zhang et al. 2018" in roi.notes
    rows = [f"row {n}" for n in range(1, 8)]
    sources = [get_roi(i).coordinate_source for i in SEED_TABLE_1]
    assert all(r in s for r, s in zip(rows, sources, strict=True))


def test_rows_not_from_the_seed_say_so():
    for roi in load_rois():
        if roi.id in SEED_TABLE_1:
            continue
        assert roi.source_kind in (
            "tms_literature",
            "atlas_centroid",
            "primary_paper",
            "roi_set",
        ), roi.id
        assert roi.peak_z is None and roi.cluster_volume_mm3 is None
        assert "NOT from the seed review" in roi.notes, roi.id
    heroin = get_roi("heroin_dlpfc_l")
    assert heroin.centre_mni.tolist() == [-38.0, 44.0, 26.0]
    assert "Fox et al. 2012" in heroin.coordinate_source
    assert "10.1016/j.biopsych.2012.04.028" in heroin.reference
    assert heroin.population.startswith("abstinent")
    for roi_id in ("meth_vs_l", "meth_vs_r", "meth_mpfc"):
        roi = get_roi(roi_id)
        assert roi.source_kind == "atlas_centroid"
        assert "Harvard-Oxford" in roi.reference and "probability >= 25 %" in roi.coordinate_source
    assert "long-term abstinent" in get_roi("meth_mpfc").population


def test_every_centre_lies_in_the_embedded_mni_brain():
    mask = load_mni_brain_mask(2)
    data = np.asarray(mask.dataobj)
    for roi in load_rois():
        ijk = np.round(world_to_voxel(mask.affine, roi.centre_mni)).astype(int)[0]
        assert data[tuple(ijk)] > 0, roi.id


def test_roi_fields_centre_and_equivalent_radius():
    roi = get_roi("cocaine_mfg_l")
    assert roi.frame == MNI_FRAME == "MNI152NLin6Asym"
    assert isinstance(roi.centre, Points)
    assert roi.centre.frame == MNI_FRAME
    assert roi.centre.xyz.shape == (1, 3)
    assert roi.centre.xyz.dtype == np.float64
    assert roi.centre.xyz.tolist() == [[-54.0, 2.0, 28.0]]
    with pytest.raises(ValueError):
        roi.centre_mni[0] = 0.0  # read-only
    assert roi.cluster_equivalent_radius_mm == pytest.approx((3 * 729 / (4 * math.pi)) ** (1 / 3))
    assert get_roi("heroin_dlpfc_l").cluster_equivalent_radius_mm is None


def test_get_roi_ignores_case_and_spaces():
    assert get_roi("  Cocaine_MFG_L ").id == "cocaine_mfg_l"


def test_unknown_id_lists_valid_ids_and_the_command():
    with pytest.raises(RoiError) as info:
        get_roi("cocaine_mfg_left")
    message = str(info.value)
    assert "unknown ROI id 'cocaine_mfg_left'" in message
    assert "tmsplan rois" in message
    for roi_id in REQUIRED_IDS:
        assert roi_id in message
    assert "Did you mean 'cocaine_mfg_l'" in message
    assert isinstance(info.value, KeyError) and isinstance(info.value, TmsplanError)


def test_table_is_not_read_at_import():
    code = "import tmsplan.target.atlas as a; print(a._bundled_rois.cache_info().currsize)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0"


# --------------------------------------------------------------------------- broken tables


def test_custom_table_loads(tmp_path):
    path = _write_table(tmp_path, _row(), _row(id="cocaine_test_r", hemisphere="R", mni_x="40"))
    rois = load_rois(path)
    assert [r.id for r in rois] == ["cocaine_test_l", "cocaine_test_r"]
    assert rois[1].centre_mni.tolist() == [40.0, 10.0, 20.0]


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([_row(hemisphere="R")], "left/right flip"),
        ([_row(mni_x="-5", radius_mm="10")], "crosses the midline"),
        ([_row(hemisphere="midline", mni_x="-12")], "|x| <= 10 mm"),
        ([_row(hemisphere="left")], "hemisphere must be one of"),
        ([_row(), _row()], "ids must be unique"),
        ([_row(mni_y="nan")], "must be finite"),
        ([_row(mni_z="twenty")], "must be a number"),
        ([_row(radius_mm="0")], "radius_mm must be positive"),
        ([_row(citation="")], "column 'citation' is empty"),
        ([_row(coordinate_source="")], "column 'coordinate_source' is empty"),
        ([_row(source_kind="guess")], "source_kind must be one of"),
        ([_row(id="Cocaine MFG")], "lowercase snake case"),
        ([_row() + "\textra"], "tab-separated fields"),
        ([], "no ROI rows"),
    ],
)
def test_broken_table_fails_loudly(tmp_path, rows, expected):
    path = _write_table(tmp_path, *rows)
    with pytest.raises(RoiError) as info:
        load_rois(path)
    assert expected in str(info.value)
    assert str(path) in str(info.value)


def test_table_missing_a_column_fails(tmp_path):
    header = "\t".join(c for c in atlas._COLUMNS if c != "coordinate_source")
    path = _write_table(tmp_path, header=header)
    with pytest.raises(RoiError, match="lacks columns \\['coordinate_source'\\]"):
        load_rois(path)


def test_missing_table_file_fails(tmp_path):
    with pytest.raises(RoiError, match="cannot read the ROI table"):
        load_rois(tmp_path / "nope.tsv")


# --------------------------------------------------------------------------- masks


def test_sphere_mask_matches_brute_force_and_is_centred():
    ref = _asymmetric_ras_img()
    centre = voxel_to_world(ref.affine, [[11, 13, 9]])[0]  # on a voxel centre
    mask = sphere_mask_img(centre, 7.0, ref)
    assert mask.get_data_dtype() == np.uint8
    assert np.asarray(mask.dataobj).dtype == np.uint8
    assert mask.shape == ref.shape
    assert np.allclose(mask.affine, ref.affine)
    selected = _selected_world(mask)
    assert selected == _brute_force_world(ref, centre, 7.0)
    pts = np.array(sorted(selected))
    assert np.allclose(pts.mean(axis=0), centre, atol=1e-9)  # symmetric about its centre
    # along x (2 mm voxels) the sphere reaches the voxel 6 mm away, not the one 8 mm away
    assert (round(centre[0] + 6.0, 3), round(centre[1], 3), round(centre[2], 3)) in selected
    assert (round(centre[0] + 8.0, 3), round(centre[1], 3), round(centre[2], 3)) not in selected


@pytest.mark.parametrize("radius", [4.0, 6.0, 7.5])
def test_sphere_mask_same_world_voxels_for_ras_las_lps(radius):
    ras = _asymmetric_ras_img()
    las = _flipped_copy(ras, (0,))
    lps = _flipped_copy(ras, (0, 1))
    # the copies hold the same world content
    for copy in (las, lps):
        probe = voxel_to_world(ras.affine, [[3, 4, 5]])
        ijk = np.round(world_to_voxel(copy.affine, probe)).astype(int)[0]
        assert np.asarray(copy.dataobj)[tuple(ijk)] == np.asarray(ras.dataobj)[3, 4, 5]
    # off-grid, left of the midline; then on a voxel centre, where voxel centres lie
    # exactly on the sphere's surface (x +- 4 / 6 mm): kept in every storage order
    for centre in (np.array([-7.0, 0.25, 1.0]), np.array([-7.0, -0.5, 1.0])):
        sets = [_selected_world(sphere_mask_img(centre, radius, img)) for img in (ras, las, lps)]
        assert sets[0] == sets[1] == sets[2]
        assert sets[0] == _brute_force_world(ras, centre, radius)
        assert len(sets[0]) > 0
        xs = np.array(sorted(sets[0]))[:, 0]
        assert xs.min() >= centre[0] - radius - 1e-6 and xs.max() <= centre[0] + radius + 1e-6
    if radius in (4.0, 6.0):
        assert (-7.0 + radius, -0.5, 1.0) in sets[0]
        assert (-7.0 - radius, -0.5, 1.0) in sets[0]


def test_sphere_mask_on_an_oblique_grid():
    ras = _asymmetric_ras_img()
    angle = np.deg2rad(20.0)
    rot = np.array(
        [
            [np.cos(angle), -np.sin(angle), 0.0, 0.0],
            [np.sin(angle), np.cos(angle), 0.0, 0.0],
            [0.0, 0.0, 1.0, 0.0],
            [0.0, 0.0, 0.0, 1.0],
        ]
    )
    oblique = nib.Nifti1Image(np.asarray(ras.dataobj), rot @ ras.affine)
    centre = np.array([-3.0, 2.0, 1.5])
    mask = sphere_mask_img(centre, 6.0, oblique)
    selected = _selected_ijk(mask)
    assert selected == _brute_force_ijk(oblique, centre, 6.0)
    xyz = voxel_to_world(oblique.affine, np.array(sorted(selected)))
    assert np.linalg.norm(xyz - centre, axis=1).max() <= 6.0 + 1e-6
    # the grid is rotated: an axis-aligned reading of the same indices would differ
    assert selected != _brute_force_ijk(ras, centre, 6.0)


def test_sphere_mask_accepts_a_path_and_does_not_mutate(tmp_path):
    ref = _asymmetric_ras_img()
    before = np.asarray(ref.dataobj).copy()
    path = tmp_path / "ref.nii.gz"
    ref.to_filename(path)
    centre = np.array([1.0, 2.0, 3.0])
    from_path = sphere_mask_img(centre, 5.0, path)
    from_img = sphere_mask_img(centre, 5.0, ref)
    assert np.array_equal(np.asarray(from_path.dataobj), np.asarray(from_img.dataobj))
    assert np.array_equal(np.asarray(ref.dataobj), before)


@pytest.mark.parametrize("flip_axes", [(), (0,), (0, 1)])
def test_left_and_right_rois_select_their_own_side_only(flip_axes):
    grid = _flipped_copy(_mni_grid(), flip_axes)
    for roi in load_rois():
        mask = roi_mask_img(roi, grid)
        xyz = np.array(sorted(_selected_world(mask)))
        assert len(xyz) > 0, roi.id
        assert np.linalg.norm(xyz - roi.centre_mni, axis=1).max() <= roi.radius_mm + 1e-6
        if roi.hemisphere == "L":
            assert (xyz[:, 0] < 0).all(), roi.id
        elif roi.hemisphere == "R":
            assert (xyz[:, 0] > 0).all(), roi.id


def test_roi_mask_radius_override():
    grid = _mni_grid()
    roi = get_roi("cocaine_mfg_l")
    small = np.asarray(roi_mask_img(roi, grid, radius_mm=4.0).dataobj).sum()
    default = np.asarray(roi_mask_img(roi, grid).dataobj).sum()
    assert 0 < small < default


def test_mask_outside_field_of_view_is_an_error():
    ref = _asymmetric_ras_img()  # covers x -21..23, y -35.5..29.5, z -26..28
    with pytest.raises(SpaceError) as info:
        sphere_mask_img([80.0, 0.0, 0.0], 10.0, ref)
    assert "outside the field of view" in str(info.value)
    assert "not in the ROI's space" in str(info.value)
    with pytest.raises(SpaceError, match="outside the field of view"):
        roi_mask_img(get_roi("cocaine_visual_r"), ref)  # y = -82 lies behind this grid


def test_sphere_without_a_voxel_is_an_error():
    ref = _asymmetric_ras_img()
    between = voxel_to_world(ref.affine, [[5.5, 5.5, 5.5]])[0]
    with pytest.raises(RoiError, match="contains no voxel centre"):
        sphere_mask_img(between, 0.5, ref)


@pytest.mark.parametrize("radius", [0.0, -3.0, float("nan"), "ten"])
def test_bad_radius_is_an_error(radius):
    with pytest.raises(RoiError, match="radius"):
        sphere_mask_img([0.0, 0.0, 0.0], radius, _asymmetric_ras_img())


def test_roi_mask_needs_a_roi():
    with pytest.raises(RoiError, match="get_roi"):
        roi_mask_img("cocaine_mfg_l", _asymmetric_ras_img())


# --------------------------------------------------------------------------- text


def test_format_roi_table_is_aligned_and_complete():
    rois = load_rois()
    text = format_roi_table(rois)
    lines = text.splitlines()
    header, rule = lines[0], lines[1]
    body = lines[2 : 2 + len(rois)]
    assert header.startswith("id")
    column = header.index("MNI x, y, z (mm)")
    for roi, line in zip(rois, body, strict=True):
        assert line.startswith(roi.id + " ")
        assert line[column - 2 : column] == "  "
        assert roi.source_kind in line
    assert "-54, 2, 28" in text
    assert "-9.7, 11.9, -7.0" in text
    assert "Zhang et al. 2018" in text
    assert set(rule) <= {"-", " "}
    assert MNI_FRAME in text


def test_roi_description_is_json_ready():
    roi = get_roi("cocaine_hypothalamus")
    desc = roi_description(roi)
    again = json.loads(json.dumps(desc))
    assert again == desc
    assert desc["id"] == "cocaine_hypothalamus"
    assert desc["frame"] == "MNI152NLin6Asym"
    assert desc["centre_mni_mm"] == [3.0, -4.0, -14.0]
    assert desc["radius_mm"] == 10.0
    assert desc["peak_z"] == 5.14 and desc["cluster_volume_mm3"] == 675.0
    assert desc["citation"] == "Zhang et al. 2018"
    assert "Table 1 row 7" in desc["coordinate_source"]
    assert desc["source_kind"] == "seed_table"
    assert "doi:10.1111/adb.12682" in desc["reference"]
    assert roi_description(get_roi("heroin_dlpfc_l"))["peak_z"] is None
