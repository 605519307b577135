"""``bsp pareto``: the non-dominated rows of a results table."""

from __future__ import annotations

import argparse
from pathlib import Path

EXAMPLE = """example:
  bsp pareto results/sweep.parquet --objectives accuracy:max,cycles:min,energy_pj:min \\
             --out results/front.csv --plot results/front.png
"""


def register(subparsers) -> None:
    p = subparsers.add_parser("pareto", help="Pareto front of a results table", epilog=EXAMPLE,
                              formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("results", help="results table (.parquet or .csv)")
    p.add_argument("--objectives", required=True, help="comma list of COLUMN:min|max")
    p.add_argument("--out", help="write the front (all columns) to this CSV/Parquet file")
    p.add_argument("--plot", help="scatter of the first two objectives with the front (PNG + SVG)")
    p.add_argument("--distinct", action="store_true", help="keep one of rows with identical objectives")
    p.set_defaults(run=run)


def read_table(path: str):
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"results: no file {path}")
    try:
        return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except (ValueError, OSError) as err:
        raise ValueError(f"results: cannot read {path} as a table ({err})") from None


def run(args) -> int:
    from analysis.pareto import pareto_front, parse_objectives
    from analysis.store import write_table_atomic

    table = read_table(args.results)
    objectives = parse_objectives(args.objectives)
    front = pareto_front(table, objectives, distinct=args.distinct)
    if args.out:
        write_table_atomic(front, args.out)
    if args.plot:
        from analysis.plots import pareto_scatter, save_figure

        names = list(objectives)
        if len(names) < 2:
            raise ValueError("--plot needs at least two objectives")
        x, y = names[0], names[1]
        if objectives[x] == "max":  # put the cost on x
            x, y = y, x
        save_figure(pareto_scatter(table, x=x, y=y, x_sense=objectives[x], y_sense=objectives[y]),
                    Path(args.plot).with_suffix(""))  # fmt: skip
    print(front.to_string(index=False, max_cols=12))
    print(f"{len(front)} of {len(table)} rows on the front")
    return 0
