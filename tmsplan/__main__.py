"""``python -m tmsplan`` and the ``tmsplan`` console script.

Kept tiny: an interrupt (Ctrl-C) while the command line is still being imported
ends in one line and exit code 130 too, never a traceback. After an interrupt
the process ends at once (``os._exit``), without the interpreter's teardown of
half-used native libraries (VTK), which is where a crash could still happen.
"""

import os
import signal
import sys

_LATE: list[int] = []  # SIGINTs after main() returned


def _late(signum, frame) -> None:
    _LATE.append(signum)


def run() -> int:
    """Import and run :func:`tmsplan.cli.main`; return (or exit with) its exit code."""
    try:
        from tmsplan.cli import main

        code = main()
    except KeyboardInterrupt:  # before main() took over
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        print("tmsplan: interrupted; nothing was written.", file=sys.stderr)
        code = 130
    signal.signal(signal.SIGINT, _late)
    try:
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        pass
    if _LATE and code == 0:  # Ctrl-C after the work was done: say so, never exit 0
        from tmsplan.cli import _interrupted_line

        print(_interrupted_line(), file=sys.stderr)
        code = 130
    if code == 130:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(run())
