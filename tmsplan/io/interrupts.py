"""Ctrl-C (SIGINT) for the command line: never ignored, never half-written.

Design notes: ``docs/record.md``, section ``tmsplan.io.interrupts``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "install",
    "uninstall",
    "handler",
    "checkpoint",
    "deferred",
    "received",
    "note_written",
    "written",
]


class _State:
    """Interrupt bookkeeping of this process (one command-line run at a time)."""

    def __init__(self) -> None:
        self.received = 0  # SIGINTs since install()
        self.deferring = 0  # depth of deferred() sections
        self.written: list[Path] = []  # outputs completed (moved into place, replaced)
        self.previous: object = None  # handler before install()
        self.previous_hook: object = None  # sys.unraisablehook before install()
        self.installed = False


_state = _State()

_PAUSE_ENV = "TMSPLAN_TEST_PAUSE_AT"
"""Private test hook: ``"<stage> <seconds> <flag file>"``; see :func:`checkpoint`."""


def handler(signum: int, frame: object) -> None:
    """SIGINT handler: record the interrupt, then raise KeyboardInterrupt.

    Inside a :func:`deferred` section the interrupt is only recorded; the
    section raises it when it ends.
    """
    _state.received += 1
    if _state.deferring:
        return
    raise KeyboardInterrupt


def install() -> None:
    """Install :func:`handler` for SIGINT and forget earlier interrupts (main thread only)."""
    _state.received = 0
    _state.deferring = 0
    _state.written = []
    if threading.current_thread() is not threading.main_thread():
        return
    previous = signal.signal(signal.SIGINT, handler)
    if not _state.installed:
        _state.previous = previous
        _state.previous_hook = sys.unraisablehook
        sys.unraisablehook = _unraisable
        _state.installed = True


def uninstall() -> None:
    """Put back the SIGINT handler (and unraisable hook) from before :func:`install`."""
    if _state.installed and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _state.previous)  # type: ignore[arg-type]
        if sys.unraisablehook is _unraisable:
            sys.unraisablehook = _state.previous_hook  # type: ignore[assignment]
        _state.installed = False
        _state.received = 0


def _unraisable(unraisable: object) -> None:
    """Keep quiet about an interrupt raised where Python cannot propagate it."""
    if isinstance(getattr(unraisable, "exc_value", None), KeyboardInterrupt) and _state.received:
        return  # recorded: the next checkpoint raises it where it can propagate
    hook = _state.previous_hook or sys.__unraisablehook__
    hook(unraisable)  # type: ignore[operator]


def received() -> int:
    """Number of SIGINTs recorded since :func:`install` (0 when not installed)."""
    return _state.received


def checkpoint(stage: str) -> None:
    """A safe point between stages: raise KeyboardInterrupt if an interrupt was recorded.

    Parameters
    ----------
    stage : str
        Name of the stage about to start (used by the private test hook: when
        ``TMSPLAN_TEST_PAUSE_AT`` is ``"<stage> <seconds> <flag file>"`` and names
        this stage, the flag file is created and the run sleeps ``seconds``, so a
        test can send a signal at a known moment).

    Raises
    ------
    KeyboardInterrupt
        An interrupt was recorded (and swallowed somewhere) since :func:`install`.
    """
    if _state.installed and _state.received and not _state.deferring:
        raise KeyboardInterrupt
    hook = os.environ.get(_PAUSE_ENV)
    if hook:
        name, seconds, flag = (hook.split(" ", 2) + ["", ""])[:3]
        if name == stage and flag:
            Path(flag).write_text(stage)
            time.sleep(float(seconds or 0))


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """A section an interrupt must not cut in two (a commit, a clean-up).

    An interrupt that arrives inside is recorded and raised as
    KeyboardInterrupt when the section ends (unless another exception is
    already on its way out).
    """
    before = _state.received
    _state.deferring += 1
    try:
        yield
    finally:
        _state.deferring -= 1
    if _state.installed and not _state.deferring and _state.received > before:
        raise KeyboardInterrupt


def note_written(path: str | os.PathLike) -> None:
    """Record that an output is complete (so an interrupt message can say so)."""
    if _state.installed:
        _state.written.append(Path(path))


def written() -> list[Path]:
    """Outputs completed since :func:`install`, oldest first."""
    return list(_state.written)
