"""``bsp configs``: list, show and validate accelerator configs."""

from __future__ import annotations

import argparse
import sys

EXAMPLE = """examples:
  bsp configs list
  bsp configs show fpga-zcu102
  bsp configs show asic-128x128-int8 --annotated   # the file as written: sources and formulas in its comments
  bsp configs validate my_array.yaml
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "configs", help="list/show/validate accelerator configs", epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument("action", choices=["list", "show", "validate"])
    p.add_argument("target", nargs="?", help="preset name (show) or YAML path (validate)")
    p.add_argument("--annotated", action="store_true", help="show: the file as written, with the comments that "
                   "cite its sources (instead of every field resolved, defaults included)")
    p.set_defaults(run=run)


def run(args) -> int:
    from bsp_common.safe_yaml import read_text_file
    from hwsim.config import ConfigError, list_presets, load_config, preset_text
    from hwsim.design_cost import describe_cost

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
        config = load_config(args.target)  # validated first: an annotated file is shown only if it loads
        if args.annotated:
            text = preset_text(args.target) if args.target in list_presets() else read_text_file(args.target, "config")
            print(text, end="" if text.endswith("\n") else "\n")
        else:
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
