"""Atomic, no-clobber writing of files and output folders.

Nothing tmsplan writes is ever half-written: a file is written to a temporary
name in the same folder and renamed into place; an output folder is filled as a
hidden staging folder and renamed when complete. Existing outputs are replaced
only with ``overwrite=True`` (``--force`` on the command line).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tmsplan.errors import OutputExistsError

__all__ = [
    "write_text",
    "write_bytes",
    "staged_folder",
    "check_writable",
    "check_replaceable_folder",
]


def _default_mode(*, folder: bool = False) -> int:
    """Mode a plain ``open()``/``mkdir()`` gives (umask applied); mkstemp/mkdtemp use 0600/0700."""
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if folder else 0o666) & ~umask


def check_writable(path: str | os.PathLike, *, overwrite: bool) -> Path:
    """Refuse an existing output unless ``overwrite``; return the path.

    Raises
    ------
    OutputExistsError
        ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(
            f"output '{path}' already exists; choose another path or pass --force "
            "(overwrite=True) to replace it."
        )
    return path


def write_bytes(path: str | os.PathLike, data: bytes, *, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file + rename).

    Parameters
    ----------
    path : str or os.PathLike
    data : bytes
    overwrite : bool, keyword-only
        Replace an existing file.

    Returns
    -------
    pathlib.Path
        The written path.
    """
    path = check_writable(path, overwrite=overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _default_mode())
        if overwrite:
            os.replace(tmp, path)
        else:  # link fails if the file appeared meanwhile: never clobber without overwrite
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise OutputExistsError(
                    f"output '{path}' appeared while it was being written; nothing replaced."
                ) from None
            except OSError:  # no hard links here (e.g. FAT): check, then rename
                check_writable(path, overwrite=False)
                os.replace(tmp, path)
            else:
                os.unlink(tmp)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def write_text(
    path: str | os.PathLike, text: str, *, overwrite: bool = False, newline: str = "\n"
) -> Path:
    """Write UTF-8 text atomically; ``newline`` replaces every line ending.

    Parameters
    ----------
    path : str or os.PathLike
    text : str
    overwrite : bool, keyword-only
    newline : str
        Line ending written for each newline in ``text``.
    """
    if newline != "\n":
        text = text.replace("\n", newline)
    return write_bytes(path, text.encode("utf-8"), overwrite=overwrite)


def check_replaceable_folder(
    path: str | os.PathLike, *, overwrite: bool, marker: str | None = None
) -> Path:
    """Check that an output folder may be (re)created; return its resolved path.

    An existing folder is replaced only with ``overwrite`` and only when it is
    empty or holds ``marker`` (e.g. ``target.json``: a folder this tool wrote):
    ``--force`` must never delete a folder of someone's data.

    Raises
    ------
    OutputExistsError
        The folder exists without ``overwrite``, is not a folder, or is not one
        this tool wrote.
    """
    path = Path(path).resolve()
    if not path.exists():
        return path
    check_writable(path, overwrite=overwrite)
    if not path.is_dir():
        raise OutputExistsError(f"output '{path}' exists and is a file, not a folder.")
    if marker is not None and any(path.iterdir()) and not (path / marker).is_file():
        raise OutputExistsError(
            f"output folder '{path}' is not empty and holds no {marker}, so it was not "
            "written by tmsplan; it is not replaced even with --force. Choose a new folder."
        )
    if path == Path.cwd() or path in Path.cwd().parents:
        raise OutputExistsError(
            f"output folder '{path}' is the current folder or contains it; choose another."
        )
    return path


@contextlib.contextmanager
def staged_folder(
    path: str | os.PathLike, *, overwrite: bool = False, marker: str | None = None
) -> Iterator[Path]:
    """Fill an output folder out of sight and move it into place when complete.

    Yields a hidden staging folder beside ``path``. On normal exit the staging
    folder replaces ``path`` (the old one is removed only then, and only with
    ``overwrite``); on error it is deleted and ``path`` is left untouched.

    Parameters
    ----------
    path : str or os.PathLike
        The output folder.
    overwrite : bool, keyword-only
        Replace an existing folder (see :func:`check_replaceable_folder`).
    marker : str, optional
        File name that identifies a folder this tool wrote; a non-empty folder
        without it is never replaced.

    Raises
    ------
    OutputExistsError
        ``path`` may not be replaced (checked before any work).
    """
    path = check_replaceable_folder(path, overwrite=overwrite, marker=marker)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.staging.", dir=path.parent))
    os.chmod(staging, _default_mode(folder=True))
    old = None
    try:
        yield staging
        if path.exists():
            check_replaceable_folder(path, overwrite=overwrite, marker=marker)
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
            os.replace(path, old / "previous")
        os.replace(staging, path)
    except BaseException:
        if old is not None and (old / "previous").exists() and not path.exists():
            os.replace(old / "previous", path)
        shutil.rmtree(staging, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
