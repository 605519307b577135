"""One module per ``bsp`` subcommand; each exposes ``register(subparsers)``."""
