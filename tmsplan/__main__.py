"""``python -m tmsplan`` and the ``tmsplan`` console script.

Design notes: ``docs/README.md``, section ``tmsplan.__main__``.
"""

import os  # os, sys and _signal are loaded with the interpreter: importing them is instant
import sys

try:
    import _signal as _sig  # the C module behind 'signal' (which would import enum first)
except ImportError:  # pragma: no cover - not CPython
    import signal as _sig

_NOTHING = "tmsplan: interrupted; nothing was written."
_LATE: list[int] = []  # SIGINTs after main() returned


def _late(signum, frame) -> None:
    _LATE.append(signum)


def _interrupted_line() -> str:
    """The CLI's line (it knows what was written), or the plain one if it never loaded."""
    cli = sys.modules.get("tmsplan.cli")
    try:
        return cli._interrupted_line() if cli is not None else _NOTHING
    except Exception:  # noqa: BLE001 - a half-imported module: nothing was written
        return _NOTHING


def run() -> int:
    """Import and run :func:`tmsplan.cli.main`; return (or exit with) its exit code."""
    code = 130
    try:
        try:
            from tmsplan.cli import main

            code = main()
        finally:
            _sig.signal(_sig.SIGINT, _late)  # from here on, Ctrl-C is only recorded
    except KeyboardInterrupt:  # before main() took over, or just after it returned
        code = -1
    try:
        sys.stdout.flush()
    except (OSError, ValueError):  # a closed pipe or stream: nothing more to say there
        pass
    if code == -1 or (_LATE and code == 0):  # never exit 0 after a Ctrl-C
        print(_interrupted_line(), file=sys.stderr)
        code = 130
    if code == 130:
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(run())
