import pytest

from tmsplan.errors import OutputExistsError
from tmsplan.outputs import staged_folder, write_text


def test_write_text_refuses_existing(tmp_path):
    path = write_text(tmp_path / "a.txt", "one\n")
    with pytest.raises(OutputExistsError, match="--force"):
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
