"""Atomic, no-clobber writing of files and output folders.

Design notes: ``docs/record.md``, section ``tmsplan.io.outputs``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

from tmsplan.errors import OutputError, OutputExistsError, TmsplanWarning
from tmsplan.io import interrupts

__all__ = [
    "write_text",
    "write_bytes",
    "write_files",
    "staged_folder",
    "check_writable",
    "check_replaceable_folder",
    "check_output_location",
    "remove_dead_leftovers",
]

_HIDDEN = re.compile(
    r"^\.(?P<name>.+?)\.(?:(?P<kind>staging|old|probe)\.)?(?P<pid>\d+)@(?P<host>[A-Za-z0-9-]+)"
    r"\.[a-z0-9_]+(?P<tmp>\.tmp)?$"
)
"""A hidden staging folder, moved-aside folder, probe or temporary file of a run."""

_cleaned: set[Path] = set()  # folders already cleaned by this process


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"


def _owner() -> str:
    """``<pid>@<host>``: which process a hidden name belongs to."""
    return f"{os.getpid()}@{_host()}"


def _is_dead(pid: int, host: str) -> bool:
    """True only when the process is certainly gone (same host, no such pid)."""
    if host != _host() or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (OSError, OverflowError):  # another user's live process; no such pid number
        return False
    return False


def remove_dead_leftovers(folder: str | os.PathLike) -> list[str]:
    """Remove what runs killed half-way left in ``folder``; return one note per item.

    Only hidden staging folders, moved-aside folders, probes and temporary files
    named by a process that no longer runs on this host are touched. A folder or
    file an interrupted ``--force`` run had moved aside is put back when its place
    is still empty (and removed when the new version took it). A
    :class:`~tmsplan.errors.TmsplanWarning` (one line) says what was done.

    Parameters
    ----------
    folder : str or os.PathLike

    Returns
    -------
    list of str
        What was removed or restored.
    """
    folder = Path(folder)
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    notes: list[str] = []
    pids: set[int] = set()
    for entry in entries:
        match = _HIDDEN.match(entry.name)
        if match is None or not (match["kind"] or match["tmp"]):
            continue
        if not _is_dead(int(match["pid"]), match["host"]):
            continue
        path = Path(entry.path)
        if match["kind"] == "old":
            previous, place = path / "previous", folder / match["name"]
            if previous.is_dir() and not place.exists():
                with contextlib.suppress(OSError):
                    os.replace(previous, place)
                    notes.append(f"restored '{place.name}', which it had moved aside")
            elif entry.is_file(follow_symlinks=False) and not place.exists():
                with contextlib.suppress(OSError):
                    os.replace(path, place)  # the previous version of one file of a set
                    notes.append(f"restored '{place.name}', which it had moved aside")
                    pids.add(int(match["pid"]))
                    continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                path.unlink()
        if not path.exists():
            notes.append(f"removed its unfinished {entry.name}")
            pids.add(int(match["pid"]))
    if notes:
        warnings.warn(
            f"in '{folder}', a run killed half-way (pid {', '.join(map(str, sorted(pids)))}) "
            f"left hidden outputs: {'; '.join(notes)}.",
            TmsplanWarning,
            stacklevel=3,
        )
    return notes


def _clean_once(folder: Path) -> None:
    key = folder.resolve()
    if key not in _cleaned:
        _cleaned.add(key)
        remove_dead_leftovers(key)


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
            f"output '{path}' already exists; choose another path or pass overwrite=True "
            "to replace it."
        )
    return path


def _stage(path: Path, data: bytes) -> str:
    """Write ``data`` to a hidden temporary file beside ``path`` (flushed to disk); its name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _clean_once(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_owner()}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _default_mode())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp


def _commit(tmp: str, path: Path, *, overwrite: bool) -> None:
    """Move a staged file into place (never over an existing file without ``overwrite``)."""
    if overwrite:
        os.replace(tmp, path)
        return
    try:  # link fails if the file appeared meanwhile: never clobber without overwrite
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
    return write_files([(path, data)], overwrite=overwrite)[0]


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


def write_files(
    files: Sequence[tuple[str | os.PathLike, bytes | str]], *, overwrite: bool = False
) -> list[Path]:
    """Write several files at once: all of them or none (old versions kept on failure).

    Every path is checked first; every file is then written to a hidden
    temporary name beside its place, and only when all are on disk are they
    renamed into place, together, in a section an interrupt cannot cut. When a
    write or a rename fails, the renamed files are put back (with
    ``overwrite``, the previous versions return), and the files and folders
    this call created are removed. A run killed outright leaves only hidden
    files: temporary ones, which the next run removes, and previous versions
    moved aside, which it puts back where no new version took their place
    (:func:`remove_dead_leftovers`): killed during the renames themselves, the
    set may be part new and part old, but no file is lost.
    For a whole output folder, see :func:`staged_folder`.

    Parameters
    ----------
    files : sequence of (path, bytes or str)
        What to write where; text is written as UTF-8.
    overwrite : bool, keyword-only
        Replace existing files.

    Returns
    -------
    list of pathlib.Path
        The written paths, in the order given.

    Raises
    ------
    OutputExistsError
        A path exists and ``overwrite`` is False (nothing written).
    """
    items = [
        (Path(path), data.encode("utf-8") if isinstance(data, str) else data)
        for path, data in files
    ]
    for path, _ in items:
        check_writable(path, overwrite=overwrite)
    folders = {parent for path, _ in items for parent in (path, *path.parents)}
    new_folders = sorted((f for f in folders if not f.exists()), key=lambda f: -len(f.parts))
    staged: list[tuple[str, Path]] = []
    moved: list[tuple[Path, str | None, bool]] = []  # (file, its previous version, placed)
    try:
        for path, data in items:
            staged.append((_stage(path, data), path))
        interrupts.checkpoint("commit files")
        with interrupts.deferred():
            try:
                for tmp, path in staged:
                    aside = None
                    if path.exists():
                        check_writable(path, overwrite=overwrite)
                        fd, aside = tempfile.mkstemp(  # a kill now: the next run puts it back
                            prefix=f".{path.name}.old.{_owner()}.", dir=path.parent
                        )
                        os.close(fd)
                        try:
                            os.replace(path, aside)  # kept until every file is in place
                        except BaseException:
                            os.unlink(aside)
                            raise
                    moved.append((path, aside, False))
                    _commit(tmp, path, overwrite=overwrite)
                    moved[-1] = (path, aside, True)
            except BaseException:
                for path, aside, placed in reversed(moved):
                    with contextlib.suppress(OSError):
                        if aside is not None:
                            os.replace(aside, path)
                        elif placed:
                            path.unlink()
                raise
            for path, aside, _ in moved:
                if aside is not None:
                    with contextlib.suppress(OSError):
                        os.unlink(aside)
                    interrupts.note_written(path)
    except BaseException:
        with interrupts.deferred():
            for tmp, _ in staged:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            for folder in new_folders:  # deepest first; only the empty ones go
                with contextlib.suppress(OSError):
                    folder.rmdir()
        raise
    return [path for path, _ in items]


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
            "written by tmsplan; it is not replaced even with overwrite=True. Choose a new "
            "folder."
        )
    if path == Path.cwd() or path in Path.cwd().parents:
        raise OutputExistsError(
            f"output folder '{path}' is the current folder or contains it; choose another."
        )
    return path


def check_output_location(path: str | os.PathLike, *, staged: bool = False) -> Path:
    """Check that an output (file or folder) can be created at ``path``; return it resolved.

    Cheap and done before any work: the folder where entries will be created
    must be one in which this process can create them (tried for real with an
    empty hidden folder, removed at once, so read-only file systems, ``/proc``
    and missing permissions are all caught). That folder is ``path`` itself when
    it is an existing folder written into, otherwise the nearest existing folder
    above it.

    Parameters
    ----------
    path : str or os.PathLike
    staged : bool, keyword-only
        ``path`` is a folder filled beside itself and moved into place
        (:func:`staged_folder`), so its parent is where entries are created even
        when ``path`` exists.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    OutputError
        ``path`` cannot be created or written.
    """
    path = Path(path).resolve()
    above = path if (path.is_dir() and not staged) else path.parent
    while not above.exists() and above != above.parent:
        above = above.parent
    if not above.is_dir():
        raise OutputError(
            f"output '{path}' cannot be created: '{above}' is a file, not a folder; "
            "choose another path."
        )
    try:
        with interrupts.deferred():
            probe = tempfile.mkdtemp(prefix=f".{path.name}.probe.{_owner()}.", dir=above)
            os.rmdir(probe)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise OutputError(
            f"output '{path}' cannot be created: cannot write in '{above}' ({reason}); "
            "choose a folder you can write to."
        ) from None
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
    _clean_once(path.parent)
    staging = old = None
    try:
        with interrupts.deferred():  # never a staging folder that nobody removes
            staging = Path(
                tempfile.mkdtemp(prefix=f".{path.name}.staging.{_owner()}.", dir=path.parent)
            )
        os.chmod(staging, _default_mode(folder=True))
        interrupts.checkpoint("staging")
        yield staging
        interrupts.checkpoint("commit")  # an interrupt swallowed on the way stops here
        with interrupts.deferred():
            if path.exists():
                check_replaceable_folder(path, overwrite=overwrite, marker=marker)
                old = Path(
                    tempfile.mkdtemp(prefix=f".{path.name}.old.{_owner()}.", dir=path.parent)
                )
                os.replace(path, old / "previous")
            os.replace(staging, path)
            interrupts.note_written(path)
    except BaseException:
        with interrupts.deferred():
            if old is not None and (old / "previous").exists() and not path.exists():
                os.replace(old / "previous", path)
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
