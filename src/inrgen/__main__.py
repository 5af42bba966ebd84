"""``python -m inrgen``: the same command line as the ``inrgen`` console script."""

import sys

from inrgen.cli import main

__all__: list[str] = []

if __name__ == "__main__":
    sys.exit(main())
