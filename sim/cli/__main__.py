"""``python -m sim.cli``: the ``umwelt`` command (as torchrun starts it)."""

import sys

from sim.cli import main

if __name__ == "__main__":
    sys.exit(main())
