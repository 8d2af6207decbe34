"""``python -m tmsplan`` runs the command line."""

import sys

from tmsplan.cli import main

if __name__ == "__main__":
    sys.exit(main())
