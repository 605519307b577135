"""``bsp configs``: list, show and validate accelerator configs."""

from __future__ import annotations

import argparse
import sys

EXAMPLE = """examples:
  bsp configs list
  bsp configs show fpga-zcu102
  bsp configs validate my_array.yaml
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "configs", help="list/show/validate accelerator configs", epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument("action", choices=["list", "show", "validate"])
    p.add_argument("target", nargs="?", help="preset name (show) or YAML path (validate)")
    p.set_defaults(run=run)


def run(args) -> int:
    from hwsim.config import ConfigError, list_presets, load_config

    if args.action == "list":
        if args.target:
            raise ValueError(f"configs list: takes no name (got {args.target!r}); `bsp configs show NAME` shows one")
        for name in list_presets():
            config = load_config(name)
            array = config.pe_array
            print(f"{name:20s} {config.kind:5s} {array.rows}x{array.cols} {array.dataflow.value} "
                  f"{config.clock_mhz:g} MHz")  # fmt: skip
        return 0
    if not args.target:
        raise ValueError(f"configs {args.action}: give a preset name or YAML path")
    if args.action == "show":
        from hwsim.design_cost import describe_cost

        config = load_config(args.target)
        print(config.to_yaml(), end="")
        print(f"# derived (hwsim.design_cost): {describe_cost(config)}")
        return 0
    try:
        config = load_config(args.target)
    except ConfigError as err:
        print(f"{args.target}: {len(err.errors)} problem(s)", file=sys.stderr)
        for path, message in err.errors:
            print(f"  {path}: {message}", file=sys.stderr)
        return 2
    print(f"{args.target}: valid ({config.name})")
    return 0
