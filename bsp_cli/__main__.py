"""``python -m bsp_cli`` = ``bsp``."""

import sys

from bsp_cli.main import main

if __name__ == "__main__":  # importing this module (doctest collection, pdoc) must not run the CLI
    sys.exit(main())
