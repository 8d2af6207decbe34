import gzip

import nibabel as nib
import numpy as np
import pytest
from _phantoms import asymmetric_map, from_world, restore, sphere_mask

from tmsplan.errors import ImageError, SpaceError
from tmsplan.io.images import (
    check_img,
    file_sha256,
    nearest_voxel,
    resample_to_img,
    voxel_to_world,
    world_to_voxel,
)


def _img(data, affine=None):
    img = nib.Nifti1Image(
        np.asarray(data, dtype=np.float32), np.eye(4) if affine is None else affine
    )
    img.set_qform(img.affine, code=1)
    return img


def test_path_and_image_give_same_result(tmp_path):
    img = asymmetric_map()
    path = tmp_path / "map.nii.gz"
    nib.save(img, path)
    from_path = check_img(path, name="--activation")
    from_image = check_img(img, name="--activation")
    np.testing.assert_allclose(from_path.get_fdata(), from_image.get_fdata(), atol=1e-6)
    np.testing.assert_allclose(from_path.affine, img.affine)
    # idempotent
    again = check_img(from_path)
    np.testing.assert_array_equal(again.get_fdata(), from_path.get_fdata())


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match=r"--t1: file .* does not exist"):
        check_img(tmp_path / "nope.nii.gz", name="--t1")


def test_not_nifti(tmp_path):
    path = tmp_path / "map.txt"
    path.write_text("hello")
    with pytest.raises(ImageError, match="not a NIfTI image"):
        check_img(path, name="--activation")


def test_nifti_suffix_but_garbage(tmp_path):
    path = tmp_path / "map.nii"
    path.write_bytes(b"this is not an image at all" * 20)
    with pytest.raises(ImageError, match="cannot be read|truncated"):
        check_img(path, name="--activation")


def test_truncated_gzip(tmp_path):
    path = tmp_path / "map.nii.gz"
    nib.save(asymmetric_map(), path)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ImageError, match="truncated"):
        check_img(path, name="--activation")


def test_four_d_refused_but_singleton_accepted():
    data4 = np.random.default_rng(0).normal(size=(4, 4, 4, 3))
    with pytest.raises(ImageError, match=r"4-D .* a 3-D image is needed"):
        check_img(_img(data4), name="--activation")
    single = check_img(_img(np.ones((4, 4, 4, 1))), name="--activation")
    assert single.shape == (4, 4, 4)


def test_nan_handling():
    data = np.ones((4, 4, 4))
    data[0, 0, 0] = np.nan
    with pytest.raises(ImageError, match="1 NaN voxels"):
        check_img(_img(data), name="--t1")
    zeroed = check_img(_img(data), name="--activation", nan_policy="zero")
    assert zeroed.get_fdata()[0, 0, 0] == 0
    with pytest.raises(ImageError, match="only NaN"):
        check_img(_img(np.full((4, 4, 4), np.nan)), nan_policy="zero")
    inf = np.ones((4, 4, 4))
    inf[1, 1, 1] = np.inf
    with pytest.raises(ImageError, match="infinite"):
        check_img(_img(inf))


def test_all_zero():
    with pytest.raises(ImageError, match="all zeros"):
        check_img(_img(np.zeros((4, 4, 4))), name="--activation")
    assert check_img(_img(np.zeros((4, 4, 4))), require_signal=False).shape == (4, 4, 4)


def test_missing_sform_and_qform(tmp_path):
    img = nib.Nifti1Image(np.ones((4, 4, 4), np.float32), None)
    path = tmp_path / "nospace.nii"
    nib.save(img, path)
    with pytest.raises(ImageError, match="neither an sform nor a qform"):
        check_img(path, name="--t1")


def test_singular_affine():
    affine = np.eye(4)
    affine[2, 2] = 0
    img = nib.Nifti1Image(np.ones((4, 4, 4), np.float32), np.eye(4))
    img.set_sform(affine, code=1)
    with pytest.raises(ImageError, match="unusable affine"):
        check_img(img)


def test_voxel_world_round_trip():
    img = asymmetric_map()
    ijk = np.array([[0, 0, 0], [10, 20, 30], [39, 47, 39]], dtype=float)
    xyz = voxel_to_world(img.affine, ijk)
    np.testing.assert_allclose(world_to_voxel(img.affine, xyz), ijk, atol=1e-9)


@pytest.mark.parametrize("order", ["RAS", "LAS", "LPS"])
def test_restored_copies_describe_same_world(order):
    img = asymmetric_map()
    copy = check_img(restore(img, order))
    # value at world (-30, 10, 20) (left blob peak) is the same in every storage order
    for src in (img, copy):
        ijk = np.round(world_to_voxel(src.affine, [[-30, 10, 20]])[0]).astype(int)
        assert np.asarray(src.dataobj)[tuple(ijk)] == pytest.approx(8.0, abs=1e-3)


def test_resample_nearest_keeps_labels_and_world():
    ref = asymmetric_map()
    mask = sphere_mask((-30, 10, 20), 9.0, ref)
    las = restore(ref, "LAS")
    moved = resample_to_img(mask, las, interpolation="nearest")
    assert set(np.unique(moved.get_fdata())) <= {0.0, 1.0}
    ijk = np.argwhere(moved.get_fdata() > 0)
    centre = voxel_to_world(moved.affine, ijk).mean(axis=0)
    np.testing.assert_allclose(centre, [-30, 10, 20], atol=0.5)


def test_resample_refuses_disjoint_spaces():
    ref = asymmetric_map()
    far = ref.affine.copy()
    far[:3, 3] += 5000
    mask = sphere_mask((-30, 10, 20), 9.0, ref)
    target = from_world(lambda x, y, z: x * 0 + 1, shape=(10, 10, 10), affine=far)
    with pytest.raises(SpaceError, match="do not overlap"):
        resample_to_img(mask, target, interpolation="nearest")


def test_resample_requires_explicit_interpolation():
    ref = asymmetric_map()
    with pytest.raises(ValueError, match="interpolation"):
        resample_to_img(ref, ref, interpolation="cubic")  # type: ignore[arg-type]


def test_sha256(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"abc")
    assert file_sha256(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_gzip_module_used_for_truncation_detection():
    # a sanity check that the gzip error class exists in this Python (used by the gate)
    assert issubclass(gzip.BadGzipFile, OSError)


@pytest.mark.parametrize("oblique", [False, True])
def test_nearest_voxel_equals_a_search_of_the_whole_volume(oblique):
    from nibabel.affines import apply_affine

    rng = np.random.default_rng(4)
    data = np.zeros((40, 50, 30), dtype=np.uint8)
    data[10:18, 20:35, 5:12] = 1
    data[30, 3, 25] = 1  # a lone voxel far from the block
    affine = np.diag([1.5, 1.0, 2.0, 1.0])
    affine[:3, 3] = (-30.0, -25.0, -30.0)
    if oblique:  # rotated and sheared voxel axes
        turn = np.array([[0.8, -0.6, 0.1], [0.6, 0.8, 0.0], [0.0, 0.2, 1.0]])
        affine[:3, :3] = turn @ affine[:3, :3]
    world = apply_affine(affine, np.argwhere(data > 0))
    for point in rng.uniform(-80, 80, size=(40, 3)):
        got, distance = nearest_voxel(data, affine, point)
        squared = np.sum((world - point) ** 2, axis=1)
        best = int(np.argmin(squared))
        np.testing.assert_allclose(got, world[best], atol=1e-9)
        assert distance == pytest.approx(np.sqrt(squared[best]), abs=1e-9)
    inside = world[0]
    got, distance = nearest_voxel(data, affine, inside)
    assert distance == pytest.approx(0.0, abs=1e-9)
    assert nearest_voxel(data, affine, inside, above=1)[0] is None  # nothing above 1
    assert nearest_voxel(np.zeros_like(data), affine, inside) == (None, float("inf"))
