"""The ``bsp`` command line: one thin adapter module per subcommand over the pruning, hwsim and analysis APIs.

Every command validates its options and outputs before any model or data is loaded; bad input exits 2 with
one line naming the field, the value and what is allowed, internal failures exit 1.
"""

from bsp_cli.main import build_parser, main

__all__ = ["build_parser", "main"]
