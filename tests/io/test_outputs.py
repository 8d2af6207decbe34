import pytest

from tmsplan.errors import OutputExistsError
from tmsplan.io.outputs import staged_folder, write_text


def test_write_text_refuses_existing(tmp_path):
    path = write_text(tmp_path / "a.txt", "one\n")
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        write_text(path, "two\n")
    assert path.read_text() == "one\n"
    write_text(path, "two\n", overwrite=True)
    assert path.read_text() == "two\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]  # no temp files left


def test_write_text_crlf(tmp_path):
    path = write_text(tmp_path / "b.txt", "x\ny\n", newline="\r\n")
    assert path.read_bytes() == b"x\r\ny\r\n"


def test_staged_folder_is_atomic(tmp_path):
    out = tmp_path / "plan"
    with pytest.raises(RuntimeError):
        with staged_folder(out) as staging:
            (staging / "half.txt").write_text("half")
            raise RuntimeError("boom")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []
    with staged_folder(out) as staging:
        (staging / "target.json").write_text("{}")
    assert (out / "target.json").exists()


def test_staged_folder_no_clobber_and_force(tmp_path):
    out = tmp_path / "plan"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(OutputExistsError):
        with staged_folder(out):
            pass
    assert (out / "old.txt").exists()
    with pytest.raises(RuntimeError):
        with staged_folder(out, overwrite=True) as staging:
            (staging / "new.txt").write_text("new")
            raise RuntimeError("failed half way")
    assert (out / "old.txt").exists()  # a failed --force run keeps the old folder
    with staged_folder(out, overwrite=True) as staging:
        (staging / "new.txt").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan"]


def test_force_never_replaces_a_folder_tmsplan_did_not_write(tmp_path):
    data = tmp_path / "patient_data"
    data.mkdir()
    (data / "T1.nii.gz").write_bytes(b"precious")
    with pytest.raises(OutputExistsError, match="not written by tmsplan"):
        with staged_folder(data, overwrite=True, marker="target.json"):
            pass
    assert (data / "T1.nii.gz").read_bytes() == b"precious"
    # a previous plan folder (holding the marker) is replaced with --force
    plan = tmp_path / "plan"
    plan.mkdir()
    (plan / "target.json").write_text("{}")
    with staged_folder(plan, overwrite=True, marker="target.json") as staging:
        (staging / "target.json").write_text('{"new": 1}')
    assert (plan / "target.json").read_text() == '{"new": 1}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["patient_data", "plan"]


def test_current_folder_is_never_replaced(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "target.json").write_text("{}")
    with pytest.raises(OutputExistsError, match="current folder"):
        with staged_folder(".", overwrite=True, marker="target.json"):
            pass
    assert (tmp_path / "target.json").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["target.json"]


def test_output_location_is_probed_where_entries_are_created(tmp_path):
    from tmsplan.errors import OutputError
    from tmsplan.io.outputs import check_output_location

    folder = tmp_path / "existing"
    folder.mkdir()
    assert check_output_location(folder / "new" / "deeper") == folder / "new" / "deeper"
    assert check_output_location(folder) == folder  # written into
    assert check_output_location(folder, staged=True) == folder  # staged beside it
    (tmp_path / "afile").write_text("x")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        check_output_location(tmp_path / "afile" / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "existing"]  # no probe left
    assert list(folder.iterdir()) == []
