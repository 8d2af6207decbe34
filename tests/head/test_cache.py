"""The Head: a T1's scalp surface computed once, cached on disk, reused across targets."""

import os
import shutil

import nibabel as nib
import numpy as np
import pytest
from _phantoms import rigid_scaling, synthetic_patient

import tmsplan.head.scalp
from tmsplan.cli import main
from tmsplan.coil.placement import ScalpProximity, nearest_surface_point
from tmsplan.errors import SpaceError
from tmsplan.head.cache import (
    HEAD_ALGORITHM_VERSION,
    Head,
    cache_folder,
    derived_once,
    load_head,
    registration_once,
)
from tmsplan.io.bundled import load_mni_head, mni_head_path
from tmsplan.pipeline.plan import plan_target
from tmsplan.spaces import MNI_FRAME

TARGETS_MNI = [
    (-38.0, 44.0, 26.0),
    (38.0, 44.0, 26.0),
    (-54.0, 2.0, 28.0),
    (0, 20, 60),
    (45, -60, 40),
]


@pytest.fixture
def count_scalps(monkeypatch):
    """Count calls of the scalp extraction (the expensive step a Head saves)."""
    calls = []
    original = tmsplan.head.scalp.scalp_surface

    def counting(*args, **kwargs):
        calls.append(kwargs.get("frame"))
        return original(*args, **kwargs)

    monkeypatch.setattr(tmsplan.head.scalp, "scalp_surface", counting)
    return calls


@pytest.fixture(scope="module")
def patient(tmp_path_factory):
    folder = tmp_path_factory.mktemp("headcache-patient")
    mni_to_t1 = rigid_scaling(angle_deg=-8.0, shift=(3.0, 5.0, -4.0))
    nib.save(synthetic_patient(load_mni_head(2), mni_to_t1, order="LAS"), folder / "t1.nii.gz")
    np.savetxt(folder / "mni_to_t1.txt", mni_to_t1)
    return folder, mni_to_t1


@pytest.mark.slow
def test_five_targets_on_one_head_build_the_scalp_once(
    patient, count_scalps, tmp_path, monkeypatch
):
    import tmsplan.xfm.transforms

    folder, mni_to_t1 = patient
    reads = []
    original = tmsplan.xfm.transforms.load_mni_to_subject

    def counting_reader(*args, **kwargs):
        if kwargs.get("check_fit", True):  # not the readings an ambiguous matrix file compares
            reads.append(args[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(tmsplan.xfm.transforms, "load_mni_to_subject", counting_reader)
    monkeypatch.setattr(tmsplan.head.cache, "_REGISTRATIONS", type(tmsplan.head.cache._MEMO)())
    head = load_head(folder / "t1.nii.gz", cache_dir=tmp_path)
    assert isinstance(head, Head) and head.frame == "T1w" and not head.from_cache
    plans = [
        plan_target(
            t1=folder / "t1.nii.gz",
            mni_to_t1=folder / "mni_to_t1.txt",
            target_mni=xyz,
            target_name=f"t{i}",
            head=head,
            snap_to_grey_matter=False,  # analytic positions: the carried points themselves
        )
        for i, xyz in enumerate(TARGETS_MNI)
    ]
    assert count_scalps == ["T1w"]  # one scalp for five plans
    assert len(reads) == 1  # and one reading (and fit check) of the transform
    for plan, xyz in zip(plans, TARGETS_MNI, strict=True):
        (target,) = plan.record["targets"]
        expected = (mni_to_t1 @ [*xyz, 1.0])[:3]
        np.testing.assert_allclose(target["cortical_mm"], expected, atol=1.0)
        assert plan.scalp is head.scalp
    # the same pose as a plan that extracts its own scalp (no Head given, no cache)
    alone = plan_target(
        t1=folder / "t1.nii.gz",
        mni_to_t1=folder / "mni_to_t1.txt",
        target_mni=TARGETS_MNI[0],
        target_name="t0",
        snap_to_grey_matter=False,
        head=load_head(folder / "t1.nii.gz", cache=False),
    )
    np.testing.assert_allclose(
        alone.record["targets"][0]["coil_matrix"],
        plans[0].record["targets"][0]["coil_matrix"],
        atol=1e-9,
    )


@pytest.mark.slow
def test_disk_cache_is_reused_keyed_and_checked(patient, count_scalps, tmp_path):
    folder, _ = patient
    t1 = folder / "t1.nii.gz"
    first = load_head(t1, cache_dir=tmp_path)
    (entry,) = (tmp_path / "heads").glob("*.npz")
    assert first.cache_path == entry and len(count_scalps) == 1
    # a fresh process would read it back: drop the in-process memory first
    tmsplan.head.cache._MEMO.clear()
    again = load_head(t1, cache_dir=tmp_path)
    assert again.from_cache and len(count_scalps) == 1
    np.testing.assert_array_equal(again.mesh.vertices, first.mesh.vertices)
    np.testing.assert_array_equal(again.mesh.faces, first.mesh.faces)
    np.testing.assert_array_equal(again.fov_boundary, first.fov_boundary)
    assert again.notes == first.notes and again.t1_sha256 == first.t1_sha256
    # another file (one byte of the header differs) is another entry
    other = tmp_path / "other.nii.gz"
    img = nib.load(t1)
    img.header["descrip"] = b"another scan"
    nib.save(img, other)
    load_head(other, cache_dir=tmp_path)
    assert len(list((tmp_path / "heads").glob("*.npz"))) == 2 and len(count_scalps) == 2


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["garbage", "truncated", "changed-vertices"])
def test_corrupt_cache_entry_is_rebuilt_not_trusted(patient, count_scalps, tmp_path, damage):
    folder, _ = patient
    first = load_head(folder / "t1.nii.gz", cache_dir=tmp_path)
    entry = first.cache_path
    if damage == "garbage":
        entry.write_bytes(b"not a zip file")
    elif damage == "truncated":
        entry.write_bytes(entry.read_bytes()[:5000])
    else:  # a valid npz whose vertices no longer match the stored checksum
        with np.load(entry) as stored:
            arrays = {key: stored[key] for key in stored.files}
        arrays["vertices"] = arrays["vertices"] + 0.5
        with open(entry, "wb") as handle:
            np.savez(handle, **arrays)
    tmsplan.head.cache._MEMO.clear()
    rebuilt = load_head(folder / "t1.nii.gz", cache_dir=tmp_path)
    assert not rebuilt.from_cache and len(count_scalps) == 2
    np.testing.assert_array_equal(rebuilt.mesh.vertices, first.mesh.vertices)
    tmsplan.head.cache._MEMO.clear()
    assert load_head(folder / "t1.nii.gz", cache_dir=tmp_path).from_cache  # rewritten whole


@pytest.mark.slow
def test_head_of_another_image_or_frame_is_refused(patient, tmp_path):
    folder, _ = patient
    mni_head = load_head(None, cache_dir=tmp_path)
    assert mni_head.frame == MNI_FRAME
    with pytest.raises(SpaceError, match="another image"):
        plan_target(
            t1=folder / "t1.nii.gz",
            mni_to_t1=folder / "mni_to_t1.txt",
            target_mni=TARGETS_MNI[0],
            head=load_head(mni_head_path(2), frame="T1w", cache_dir=tmp_path),
        )
    with pytest.raises(SpaceError, match="frame"):
        plan_target(target_mni=TARGETS_MNI[0], head=load_head(folder / "t1.nii.gz"))
    # an image given in memory: checked by grid and affine
    in_memory = nib.load(folder / "t1.nii.gz")
    in_memory = nib.Nifti1Image(np.asarray(in_memory.dataobj), in_memory.affine, in_memory.header)
    head = load_head(in_memory)
    assert head.t1_sha256 is None and head.cache_path is None
    with pytest.raises(SpaceError, match="grid or affine"):
        plan_target(
            t1=mni_head_path(2),
            target_t1=(0.0, 0.0, 40.0),
            head=head,
        )


def test_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("TMSPLAN_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_folder() == tmp_path / "home" / ".cache" / "tmsplan"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_folder() == tmp_path / "xdg" / "tmsplan"
    monkeypatch.setenv("TMSPLAN_CACHE_DIR", str(tmp_path / "mine"))
    assert cache_folder() == tmp_path / "mine"
    assert cache_folder(tmp_path / "given") == tmp_path / "given"
    assert isinstance(HEAD_ALGORITHM_VERSION, int)


@pytest.mark.slow
def test_cli_no_cache_writes_nothing_and_help_names_the_folder(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("TMSPLAN_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["--help"]) == 0
    assert str(tmp_path / "cache") in "".join(capsys.readouterr().out.split())  # lines wrap
    code = main(
        ["plan", "--target-mni", "-38", "44", "26", "--out", str(tmp_path / "p"), "--no-report"]
        + ["--no-cache"]
    )
    assert code == 0, capsys.readouterr().err
    assert not (tmp_path / "cache").exists()


@pytest.mark.slow
def test_proximity_matches_trimesh_closest_point_and_contains(tmp_path):
    head = load_head(mni_head_path(2), frame=MNI_FRAME, cache_dir=tmp_path)
    mesh, fov = head.mesh, head.fov_boundary
    assert fov.any()  # the neck floor: skin-only queries differ from all-surface ones
    skin = ~fov[mesh.faces].any(axis=1)
    proximity = ScalpProximity(mesh, fov)
    rng = np.random.default_rng(3)
    points = rng.uniform([-80, -110, -70], [80, 80, 90], size=(12, 3))
    points[0] = (0.0, -20.0, -75.0)  # near the neck floor
    for point in points:
        for mask, only in ((skin, True), (None, False)):
            expected, distance, _ = nearest_surface_point(mesh, point, face_mask=mask)
            got, got_distance, face = proximity.nearest(point, skin_only=only)
            np.testing.assert_allclose(got, expected, atol=1e-9)
            assert got_distance == pytest.approx(distance, abs=1e-9)
            assert mask is None or mask[face]
        assert proximity.contains(point) == bool(mesh.contains(point[None])[0])


def test_registration_is_computed_once_per_image(monkeypatch):
    import tmsplan.xfm.registration

    calls = []

    def fake_register(img, *, kind):
        calls.append(kind)
        return ("registration", kind)

    monkeypatch.setattr(tmsplan.xfm.registration, "register_mni_to_t1", fake_register)
    monkeypatch.setattr(tmsplan.head.cache, "_REGISTRATIONS", type(tmsplan.head.cache._MEMO)())
    img = nib.Nifti1Image(np.ones((4, 4, 4)), np.eye(4))
    first = registration_once(img, kind="affine")
    assert registration_once(img, kind="affine") is first and calls == ["affine"]
    registration_once(img, kind="nonlinear")
    moved = nib.Nifti1Image(np.asarray(img.dataobj), np.diag([2.0, 2.0, 2.0, 1.0]))
    registration_once(moved, kind="affine")
    assert calls == ["affine", "nonlinear", "affine"]


@pytest.mark.slow
def test_cache_survives_a_copied_file(patient, tmp_path, count_scalps):
    # the key is the file's content, not its path: a copy reuses the entry
    folder, _ = patient
    load_head(folder / "t1.nii.gz", cache_dir=tmp_path)
    copy = tmp_path / "copy.nii.gz"
    shutil.copy(folder / "t1.nii.gz", copy)
    tmsplan.head.cache._MEMO.clear()
    assert load_head(copy, cache_dir=tmp_path).from_cache and len(count_scalps) == 1


@pytest.mark.slow
def test_ray_crossings_match_trimesh(tmp_path):
    head = load_head(mni_head_path(2), frame=MNI_FRAME, cache_dir=tmp_path)
    mesh = head.mesh
    rng = np.random.default_rng(5)
    for vertex in rng.integers(0, len(mesh.vertices), size=40):
        start = mesh.vertices[vertex]
        for direction in (mesh.vertex_normals[vertex], -mesh.vertex_normals[vertex]):
            origin = start + direction
            found, _, _ = mesh.ray.intersects_location(origin[None], direction[None])
            expected = np.sort(np.linalg.norm(found.reshape(-1, 3) - origin, axis=1))
            got = np.sort(head.proximity.ray_crossings(origin, direction))
            np.testing.assert_allclose(got, expected, atol=1e-6)


@pytest.mark.slow
def test_derived_data_is_computed_once_and_kept_with_the_head(tmp_path, monkeypatch):
    import tmsplan.head.cache as headcache

    head = load_head(mni_head_path(2), frame=MNI_FRAME, cache_dir=tmp_path)
    calls = []

    def compute():
        calls.append(1)
        return {"xyz": [0.1 + 0.2, 1e-17, -3.0]}

    key = {"landmarks": [[1.0, 2.0, 3.0]]}
    first = derived_once(head, "test", key, compute)
    assert first == {"xyz": [0.1 + 0.2, 1e-17, -3.0]}  # floats round-trip exactly
    assert derived_once(head, "test", key, compute) is first and len(calls) == 1
    files = list((tmp_path / "heads").glob("*.test-*.json"))
    assert len(files) == 1 and files[0].name.startswith(head.cache_path.stem)
    # a new process: the head and its data come from the disk
    monkeypatch.setattr(headcache, "_MEMO", type(headcache._MEMO)())
    again = load_head(mni_head_path(2), frame=MNI_FRAME, cache_dir=tmp_path)
    assert again is not head and again.from_cache
    assert derived_once(again, "test", key, compute) == first and len(calls) == 1
    # another key is another entry; a damaged entry is recomputed, never used
    derived_once(again, "test", {"landmarks": [[1.0, 2.0, 3.5]]}, compute)
    assert len(calls) == 2
    files[0].write_text(files[0].read_text().replace("-3.0", "-4.0"))
    monkeypatch.setattr(headcache, "_MEMO", type(headcache._MEMO)())
    third = load_head(mni_head_path(2), frame=MNI_FRAME, cache_dir=tmp_path)
    assert derived_once(third, "test", key, compute) == first and len(calls) == 3
    # without a disk entry (--no-cache) the data lives in the head's memory only
    bare = load_head(mni_head_path(2), frame=MNI_FRAME, cache=False)
    derived_once(bare, "test", key, compute)
    assert len(calls) == 4 and len(list((tmp_path / "heads").glob("*.json"))) == 2


@pytest.mark.slow
def test_cached_positions_equal_positions_computed_on_the_surface(tmp_path):
    from tmsplan.clinic.eeg1020 import head_landmarks, head_positions
    from tmsplan.clinic.terms import head_cap_positions

    head = load_head(None, cache_dir=tmp_path)
    given = head_landmarks(head.scalp)
    cached, point = head_cap_positions(head.scalp, given, head=head)
    fresh = head_positions(head.scalp, system="10-10")
    assert cached.names == fresh.names and cached.notes == fresh.notes
    np.testing.assert_array_equal(cached.xyz, fresh.xyz)
    assert cached.tape_mm == fresh.tape_mm and cached.describe() == fresh.describe()
    assert point is not None and point.shape == (3,)
    assert list((tmp_path / "heads").glob("*.eeg1020-*.json"))


@pytest.mark.slow
def test_a_head_read_from_the_cache_keeps_what_the_entry_checks_need(tmp_path, monkeypatch):
    import tmsplan.head.cache as headcache

    built = load_head(mni_head_path(2), frame=MNI_FRAME, cache_dir=tmp_path)
    assert not built.from_cache and built.scalp.skin_level is not None
    monkeypatch.setattr(headcache, "_MEMO", type(headcache._MEMO)())
    read = load_head(mni_head_path(2), frame=MNI_FRAME, cache_dir=tmp_path)
    assert read.from_cache
    # the skin level makes the entry check look at the T1 itself; without it, it would not
    assert read.scalp.skin_level == built.scalp.skin_level
    assert read.scalp.genus == built.scalp.genus
    assert read.scalp.voxel_mm == pytest.approx(built.scalp.voxel_mm)
    assert read.scalp.voxel_mm == pytest.approx((2.0, 2.0, 2.0))
    # the T1's tissue voxels the outward-ray check samples come back bit for bit
    np.testing.assert_array_equal(read.skin_voxels.bits, built.skin_voxels.bits)
    assert read.skin_voxels.shape == built.skin_voxels.shape == (91, 109, 91)
    np.testing.assert_array_equal(read.skin_voxels.affine, built.skin_voxels.affine)


@pytest.mark.slow
def test_a_plan_on_a_cached_head_does_not_read_the_t1_voxels(tmp_path, monkeypatch):
    """The cache entry stands for the checked T1 (same file checksum): a plan on it checks
    the header and reads no voxel of the T1, and finds the same target and pose."""
    import tmsplan.head.cache as headcache

    t1 = tmp_path / "t1.nii.gz"
    shutil.copy(mni_head_path(2), t1)
    reads = []
    original = nib.arrayproxy.ArrayProxy._get_scaled

    def recording(self, *args, **kwargs):
        reads.append(os.fspath(getattr(self.file_like, "name", self.file_like)))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(nib.arrayproxy.ArrayProxy, "_get_scaled", recording)
    monkeypatch.setenv("TMSPLAN_CACHE_DIR", str(tmp_path / "cache"))
    kwargs = dict(t1=t1, target_t1=(-38.0, 44.0, 26.0))
    first = plan_target(**kwargs)
    assert str(t1) in reads  # building the head reads and checks the T1
    reads.clear()
    monkeypatch.setattr(headcache, "_MEMO", type(headcache._MEMO)())  # as in a new process
    second = plan_target(**kwargs)
    assert str(t1) not in reads
    assert second.record["warnings"] == first.record["warnings"]
    for key in ("cortical_mm", "scalp_mm", "coil_matrix", "entry_check"):
        assert second.record["targets"][0][key] == first.record["targets"][0][key]
    assert second.record["t1"] == first.record["t1"]
    # the plan's image still gives the voxels to whoever draws it
    assert second.t1_img.get_fdata().shape == (91, 109, 91)


@pytest.mark.slow
def test_a_plan_on_a_cached_head_imports_neither_trimesh_nor_scipy_nor_jsonschema(tmp_path):
    import subprocess
    import sys

    env = {**os.environ, "TMSPLAN_CACHE_DIR": str(tmp_path / "cache")}
    plan = ["plan", "--target-mni", "-38", "44", "26", "--no-report", "--formats", "none"]
    script = (
        "import sys; from tmsplan.cli import main; "
        f"code = main({plan!r} + ['--out', sys.argv[1]]); "
        "heavy = ('trimesh', 'networkx', 'scipy.spatial', 'scipy.ndimage', 'scipy.sparse', "
        "'jsonschema'); "
        "heavy = sorted(m for m in heavy if m in sys.modules); "
        "print(code, ','.join(heavy) or 'none')"
    )

    def run(out):
        done = subprocess.run(
            [sys.executable, "-c", script, str(out)], env=env, capture_output=True, text=True
        )
        return done.stdout.split()[-2:]

    assert run(tmp_path / "first")[0] == "0"  # builds the head: trimesh and scipy needed
    # the entry check, the 10-10 positions and the pose on a cached head need numpy only
    # (nibabel imports the bare scipy package itself); a valid record is checked against
    # the compiled schema, without jsonschema
    assert run(tmp_path / "second") == ["0", "none"]


@pytest.mark.slow
def test_the_mesh_of_a_cached_head_serves_every_mesh_operation(tmp_path, monkeypatch):
    import tmsplan.head.cache as headcache

    built = load_head(mni_head_path(2), frame=MNI_FRAME, cache_dir=tmp_path)
    monkeypatch.setattr(headcache, "_MEMO", type(headcache._MEMO)())
    read = load_head(mni_head_path(2), frame=MNI_FRAME, cache_dir=tmp_path)
    assert read.from_cache and read.scalp._built is None  # not built until asked for
    mesh = read.mesh
    np.testing.assert_array_equal(mesh.vertices, built.mesh.vertices)
    np.testing.assert_array_equal(mesh.faces, built.mesh.faces)
    assert read.mesh is mesh and mesh.is_watertight
    # the pictures decimate it (fast_simplification wants writable arrays)
    small = mesh.simplify_quadric_decimation(face_count=2000)
    assert 0 < len(small.faces) <= 2100
