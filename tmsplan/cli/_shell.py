"""``main``: parse, check before work, run a command; errors and Ctrl-C in one line."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from tmsplan.cli._batch import run_batch
from tmsplan.cli._clinic import run_beam_f3, run_dose, run_eeg1020
from tmsplan.cli._flags import flag_message, print_warnings
from tmsplan.cli._options import format_names, resolve_defaults
from tmsplan.cli._parser import build_parser
from tmsplan.cli._plan import run_demo, run_plan
from tmsplan.cli._review import (
    run_coils,
    run_export,
    run_group,
    run_report,
    run_rois,
    run_validate,
    run_view,
)
from tmsplan.errors import FormatError, TmsplanError
from tmsplan.io import interrupts

_COMMANDS = {
    "eeg1020": run_eeg1020,
    "beam-f3": run_beam_f3,
    "dose": run_dose,
    "batch": run_batch,
    "group": run_group,
    "plan": run_plan,
    "demo": run_demo,
    "rois": run_rois,
    "coils": run_coils,
    "export": run_export,
    "validate": run_validate,
    "report": run_report,
    "view": run_view,
}


def _check_formats(text: str) -> None:
    names = format_names(text)
    if not names:
        return
    from tmsplan.export import FORMATS

    unknown = [name for name in names if name not in FORMATS]
    if unknown:
        raise FormatError(
            f"--formats: unknown format {', '.join(map(repr, unknown))}; valid formats are "
            f"{', '.join(FORMATS)}, or 'all' or 'none'."
        )


def _check_before_work(args: argparse.Namespace) -> None:
    """Cheap checks of where and what to write, before anything is planned or imported."""
    from tmsplan.io.outputs import check_output_location

    if isinstance(getattr(args, "out", None), Path):  # plan folders are staged beside --out
        check_output_location(args.out, staged=args.command in ("plan", "demo"))
    if isinstance(getattr(args, "formats", None), str):
        _check_formats(args.formats)


def _interrupted_line() -> str:
    done = interrupts.written()
    if not done:
        return "tmsplan: interrupted; nothing was written."
    names = ", ".join(f"'{path}'" for path in done[:3]) + (" …" if len(done) > 3 else "")
    return f"tmsplan: interrupted; only {names} had been written in full, nothing else."


def _interrupted() -> int:
    """Say in one line that the run was interrupted, and what (if anything) it wrote."""
    import threading

    if threading.current_thread() is threading.main_thread():  # a second Ctrl-C: ignored
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    print(_interrupted_line(), file=sys.stderr)
    return 130


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``tmsplan`` command line.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 1 on a planning error, 2 on a usage error, 130 when
        interrupted (Ctrl-C).
    """
    interrupts.install()
    debug = False
    try:
        interrupts.checkpoint("start")
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help, --version, or a one-line usage error
            return exc.code if isinstance(exc.code, int) else 2 if exc.code else 0
        debug = args.debug
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _check_before_work(args)
            interrupts.checkpoint("checked")
            resolve_defaults(args)
            code = _COMMANDS[args.command](args)
            interrupts.checkpoint("done")  # an interrupt some library swallowed ends here
        print_warnings(caught)
        return code
    except KeyboardInterrupt:
        return _interrupted()
    except TmsplanError as exc:
        if interrupts.received():  # an interrupt a library swallowed broke its result
            return _interrupted()
        if debug:
            raise
        print(f"tmsplan: error: {flag_message(str(exc))}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # e.g. 'tmsplan rois | head': the reader stopped reading
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes at exit
        return 0
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback
        if interrupts.received():
            return _interrupted()
        if debug:
            raise
        print(
            f"tmsplan: internal error ({type(exc).__name__}: {exc}); no plan folder was "
            "completed. Re-run with --debug and report it.",
            file=sys.stderr,
        )
        return 1
    finally:
        interrupts.uninstall()
