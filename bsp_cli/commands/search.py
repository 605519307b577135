"""``bsp search``: multi-objective search (NSGA-II) over a sweep space too large to enumerate."""

from __future__ import annotations

import argparse

from bsp_cli.commands.options import bounded_int

EXAMPLE = """examples:
  bsp search examples/sweep_hardware.yaml --trials 40 --out results/search
  bsp search my_space.yaml --trials 200 --objectives accuracy:max,latency_s:min,energy_pj:min
Every evaluated point is also a sweep point in --out: a later `bsp sweep` of the space reuses it.
"""


def register(subparsers) -> None:
    p = subparsers.add_parser("search", help="NSGA-II search over a sweep space", epilog=EXAMPLE,
                              formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("space", nargs="?", help="sweep YAML (default: the built-in main-job space)")
    p.add_argument("--trials", type=bounded_int("--trials", 1, 100_000), default=50, help="trials (default 50)")
    p.add_argument("--objectives", default="latency_s:min,energy_pj:min",
                   help="comma list of COLUMN:min|max (default latency_s:min,energy_pj:min)")
    p.add_argument("--out", default="results/search", help="output directory (a bsp sweep directory, resumable)")
    p.add_argument("--seed", type=bounded_int("--seed", 0, 2**32 - 1), default=0)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def run(args) -> int:
    import pandas as pd

    from analysis.display import point_columns, readable_table
    from analysis.pareto import pareto_front, parse_objectives
    from analysis.search import SEARCH_FILENAME, search

    objectives = parse_objectives(args.objectives)
    table = search(args.space, args.trials, objectives, out_dir=args.out, seed=args.seed,
                   progress=not args.no_progress)  # fmt: skip
    print(f"{args.trials} trials: {len(table)} distinct feasible points -> {args.out}/{SEARCH_FILENAME}")
    if len(table):
        front = pareto_front(table, objectives)
        with pd.option_context("display.width", 200, "display.max_rows", 200):
            print(f"Pareto front of the evaluated points ({len(front)}):")
            print(readable_table(front[point_columns(front, objectives, among=table)]).to_string(index=False))
    return 0
