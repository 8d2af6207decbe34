"""The ``tmsplan`` command: a thin layer over the public API (``main(argv) -> int``).

Parser in ``_parser``/``_options``, runners per command group, errors and Ctrl-C in ``_shell``.
"""

from tmsplan.cli._flags import flag_message as _flag_message  # noqa: F401 - tests, old name
from tmsplan.cli._parser import build_parser
from tmsplan.cli._plan import summary as _summary  # noqa: F401 - tests, old name
from tmsplan.cli._shell import _interrupted_line as _interrupted_line  # for tmsplan.__main__
from tmsplan.cli._shell import main

__all__ = ["main", "build_parser"]
