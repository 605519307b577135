"""``bsp pareto``: the non-dominated rows of a results table."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bsp_common.outputs import check_output_file

EXAMPLE = """example:
  bsp pareto results/sweep.parquet --objectives latency_s:min,area_mm2:min   # ASIC rows: silicon vs speed
  bsp pareto results/sweep.parquet --objectives accuracy:max,latency_s:min,energy_pj:min \\
             --out results/front.csv --plot results/front.png
(compare accelerators of different clocks on latency_s, not cycles)
"""


def register(subparsers) -> None:
    p = subparsers.add_parser("pareto", help="Pareto front of a results table", epilog=EXAMPLE,
                              formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("results", help="results table (.parquet or .csv), or a bsp sweep/search output directory")
    p.add_argument("--objectives", required=True, help="comma list of COLUMN:min|max")
    p.add_argument("--out", help="write the front (all columns) to this CSV/Parquet file")
    p.add_argument("--plot", help="scatter of the first two objectives with the front (PNG + SVG)")
    p.add_argument("--all-columns", action="store_true",
                   help="print every stored column as stored (default: the columns that tell the front's points "
                        "apart, in engineering units)")
    p.add_argument("--distinct", action="store_true", help="keep one of rows with identical objectives")
    p.add_argument("--overwrite", action="store_true", help="replace existing --out/--plot files")
    p.set_defaults(run=run)


def run(args) -> int:
    import pandas as pd

    from analysis.display import point_columns, readable_table
    from analysis.pareto import pareto_front, parse_objectives
    from analysis.store import read_table, write_table_atomic

    objectives = parse_objectives(args.objectives)
    if args.plot and len(objectives) < 2:
        raise ValueError("--plot needs at least two objectives")
    if args.out:
        check_output_file(args.out, overwrite=args.overwrite, option="--out", inputs=[args.results])
    if args.plot:
        check_output_file(args.plot, overwrite=args.overwrite, option="--plot", suffixes=(".png", ".svg"),
                          inputs=[args.results], others=[("--out", args.out)])  # fmt: skip
    table = read_table(args.results)
    front = pareto_front(table, objectives, distinct=args.distinct)
    if args.out:
        write_table_atomic(front, args.out)
    if args.plot:
        from analysis.plots import pareto_scatter, save_figure

        names = list(objectives)
        x, y = names[0], names[1]
        if objectives[x] == "max":  # put the cost on x
            x, y = y, x
        save_figure(pareto_scatter(table, x=x, y=y, x_sense=objectives[x], y_sense=objectives[y]),
                    Path(args.plot).with_suffix(""))  # fmt: skip
    if args.all_columns:  # every stored column, objectives first, as stored
        shown = front[list(objectives) + [c for c in front.columns if c not in objectives]]
    else:
        shown = readable_table(front[point_columns(front, objectives, among=table)])
    with pd.option_context("display.width", 10_000, "display.max_columns", None, "display.max_colwidth", 60):
        print(shown.to_string(index=False))
    print(f"{len(front)} of {len(table)} rows on the front")
    for name in objectives:  # a row without a value is on no front: say how many, never drop them silently
        missing = int(table[name].isna().sum())
        if missing:
            print(f"note: {missing} of {len(table)} rows have no {name} and are on no front", file=sys.stderr)
    return 0
