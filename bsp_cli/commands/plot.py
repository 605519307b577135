"""``bsp plot``: the standard figures of a sweep table."""

from __future__ import annotations

import argparse

from bsp_common.outputs import prepare_output_dir

EXAMPLE = """example:
  bsp plot results/sweep.parquet --out results/figs
"""


def register(subparsers) -> None:
    p = subparsers.add_parser("plot", help="figures from a sweep table", epilog=EXAMPLE,
                              formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("results", help="sweep table (.parquet or .csv), or a bsp sweep output directory")
    p.add_argument("--out", default="results/figs", help="figures directory: new, empty, or an earlier bsp plot "
                   "output, whose figures are replaced (PNG + SVG per figure)")
    p.set_defaults(run=run)


def run(args) -> int:
    import sys

    from analysis.plots import accuracy_vs_compression, metric_vs_block, pareto_scatter, save_figure
    from analysis.store import read_table

    table = read_table(args.results)
    if "error" in table:
        table = table[table["error"].isna()]
    sweep_keys = ["block", "config", "target_sparsity"]
    figures = [  # (file stem, columns it needs, how to draw it)
        ("pareto_accuracy_cycles", ["cycles", "accuracy"], lambda: pareto_scatter(table, x="cycles", y="accuracy")),
        ("pareto_accuracy_energy", ["energy_pj", "accuracy"],
         lambda: pareto_scatter(table, x="energy_pj", y="accuracy")),
        ("accuracy_vs_compression", ["accuracy", "compression_rate", "block", "granularity", "method",
                                     "target_sparsity"], lambda: accuracy_vs_compression(table)),
        *[(f"{metric}_vs_block", [metric, *sweep_keys], lambda metric=metric: metric_vs_block(table, metric))
          for metric in ("cycles", "energy_pj", "utilization")],
    ]  # fmt: skip
    drawable, skipped = [], []
    for stem, needs, draw in figures:
        missing = [c for c in needs if c not in table or not table[c].notna().any()]
        if missing:
            skipped.append(f"skipped {stem}: the table has no values in {', '.join(missing)}")
        else:
            drawable.append((stem, draw))
    if not drawable:  # refuse before making --out: an empty figures folder and exit 0 would read as success
        raise ValueError(f"results: {args.results} has none of the columns any figure needs (a bsp sweep table "
                         "has cycles, energy_pj, accuracy, block, config, target_sparsity)")
    if skipped:
        print(*skipped, sep="\n", file=sys.stderr)
    out = prepare_output_dir(args.out, "figures", inputs=[args.results])
    written = [path for stem, draw in drawable for path in save_figure(draw(), out / stem)]
    for path in written:
        print(path)
    return 0
