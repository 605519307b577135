"""``bsp`` entry point: subcommands registered from ``bsp_cli.commands``.

Errors go to stderr as one line; exit code 2 for bad input (a ``ValueError``/``OSError``/missing package
that names the field and value), 1 for an internal failure (its traceback only with ``-v``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Sequence

from bsp_cli.commands import codesign, configs, export, pareto, plot, prune, report, search, simulate, sweep
from bsp_common.safe_yaml import short_repr

__all__ = ["build_parser", "main"]

_COMMANDS = (prune, codesign, simulate, sweep, search, pareto, plot, report, export, configs)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bsp-codesign")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "(not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bsp", description="Block-structured pruning / accelerator co-design")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details to stderr")
    parser.add_argument("--version", action="version", version=f"bsp-codesign {_version()}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for command in _COMMANDS:
        command.register(subparsers)
    return parser


def _option_of(args, filename) -> str:
    """``"--hf-config: "`` when an OS error's file is the value of one of the command's options, else ``""``:
    the error line then says which input the system refused (a name too long, a directory given for a file)."""
    for dest, value in vars(args).items():
        if value is not None and str(value) == str(filename) and dest not in ("command", "run"):
            return f"{dest}: " if dest in ("results", "space", "target") else f"--{dest.replace('_', '-')}: "
    return ""


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    if not args.verbose:  # read by transformers when (and if) a command imports it: no import here
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        return int(args.run(args) or 0)
    except BrokenPipeError:  # the reader went away (`bsp ... | head`): nothing more to say, as other tools
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        return 0
    except (ValueError, OSError, ModuleNotFoundError, KeyError, UnicodeError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        if isinstance(err, OSError) and not isinstance(err, FileNotFoundError) and err.filename:
            message = f"{_option_of(args, err.filename)}{err.strerror or err}: {short_repr(str(err.filename))}"
        print(f"bsp {args.command}: error: {message}", file=sys.stderr)
        if args.verbose:
            traceback.print_exc()
        return 2
    except KeyboardInterrupt:
        print(f"bsp {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # an internal failure: one line, the traceback on request
        print(f"bsp {args.command}: internal error: {type(err).__name__}: {err} (run with -v for the traceback)",
              file=sys.stderr)  # fmt: skip
        if args.verbose:
            traceback.print_exc()
        return 1


if __name__ == "__main__":
    sys.exit(main())
