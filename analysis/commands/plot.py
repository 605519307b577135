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
    p.add_argument("results", help="sweep table (.parquet or .csv)")
    p.add_argument("--out", default="results/figs", help="figures directory: new, empty, or an earlier bsp plot "
                   "output, whose figures are replaced (PNG + SVG per figure)")
    p.set_defaults(run=run)


def run(args) -> int:
    from analysis.plots import accuracy_vs_compression, metric_vs_block, pareto_scatter, save_figure
    from analysis.store import read_table

    out = prepare_output_dir(args.out, "figures", inputs=[args.results])
    table = read_table(args.results)
    if "error" in table:
        table = table[table["error"].isna()]
    written = []
    has_accuracy = "accuracy" in table and table["accuracy"].notna().any()
    if has_accuracy:
        written += save_figure(pareto_scatter(table, x="cycles", y="accuracy"), out / "pareto_accuracy_cycles")
        written += save_figure(pareto_scatter(table, x="energy_pj", y="accuracy"), out / "pareto_accuracy_energy")
        written += save_figure(accuracy_vs_compression(table), out / "accuracy_vs_compression")
    for metric in ("cycles", "energy_pj", "utilization"):
        written += save_figure(metric_vs_block(table, metric), out / f"{metric}_vs_block")
    for path in written:
        print(path)
    return 0
