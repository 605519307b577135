"""``bsp sweep``: run or resume a design-space sweep; writes the table, a Pareto plot and a summary."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analysis.executor import gpu_list
from bsp_cli.commands.options import bounded_int

EXAMPLE = """examples:
  bsp sweep                                   # default: MiniLM, 2 block sizes x 4 sparsities, 2 presets
  bsp sweep my_space.yaml --out results/big --workers 2          # pruning and simulation on 2 local processes
  bsp sweep my_space.yaml --out results/big --gpus auto          # one worker per visible GPU
  bsp sweep my_space.yaml --out /shared/big --dask-scheduler tcp://scheduler-host:8786
Re-running the same command resumes: finished points are kept, missing ones are computed. Several
`bsp sweep` processes (on one host or many, --out on shared storage) may work on one space at once:
each pruning point is claimed before it is trained, so none is trained twice.
"""


def register(subparsers) -> None:
    p = subparsers.add_parser("sweep", help="design-space sweep", epilog=EXAMPLE,
                              formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("space", nargs="?", help="sweep YAML (default: the built-in main-job space)")
    p.add_argument("--out", default="results", help="output directory: new, empty, or an earlier sweep's, "
                   "which is resumed (default results/)")
    p.add_argument("--workers", type=bounded_int("--workers", 1, 256), default=1,
                   help="local worker processes for pruning and simulation (default 1: this process)")
    p.add_argument("--gpus", type=gpu_list, help="'auto' (every visible CUDA device) or ids like 0,1: one worker "
                   "per GPU, each seeing only its own; with --dask-scheduler, pruning tasks ask for the worker "
                   "resource GPU=1")
    p.add_argument("--yes", action="store_true", help="run a space larger than the point limit (20,000)")
    p.add_argument("--dask-scheduler", help="address of a Dask scheduler, e.g. tcp://host:8786")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(run=run)


def run(args) -> int:
    import pandas as pd

    from analysis.display import point_columns, readable_table
    from analysis.pareto import default_objectives, pareto_front
    from analysis.plots import majority_accuracy, pareto_scatter, save_figure
    from analysis.space import ACCURACY_NOTES
    from analysis.sweep import MAX_POINTS, RESULTS_FILENAME, sweep

    table = sweep(args.space, out_dir=args.out, workers=args.workers, dask_scheduler=args.dask_scheduler,
                  progress=not args.no_progress, max_points=None if args.yes else MAX_POINTS,
                  gpus=args.gpus)  # fmt: skip
    out = Path(args.out)
    ok = table[table["error"].isna()] if "error" in table else table
    failed = len(table) - len(ok)
    infeasible = int((ok["feasible"] == False).sum()) if "feasible" in ok else 0  # noqa: E712 -- NaN-safe
    ok = ok[ok["feasible"] != False] if "feasible" in ok else ok  # noqa: E712
    objectives, notes = default_objectives(ok)
    now = table.attrs.get("evaluated_now", len(table))
    without = table.attrs.get("without_accuracy", 0)
    print(f"{len(table)} points: {len(ok)} evaluated" + (f" ({without} without accuracy)" if without else "")
          + f", {infeasible} infeasible by design, {failed} failed; "
          f"{now} computed in this run ({table.attrs.get('pruned_now', 0)} pruning points), "
          f"{len(table) - now} stored before (by earlier runs or another process) -> "
          f"{out / RESULTS_FILENAME}")  # fmt: skip
    if len(ok) and "latency_s" in objectives:
        y = "accuracy" if "accuracy" in objectives else "energy_pj"
        sources = ok["accuracy_source"].dropna().unique() if "accuracy_source" in ok else []
        source = ", ".join(sources) or "none"
        title = f"{ok['model'].iloc[0]} on {ok['data'].iloc[0]}; accuracy: {source}" if "model" in ok else None
        chance = majority_accuracy(ok) if y == "accuracy" else None
        save_figure(pareto_scatter(ok, x="latency_s", y=y, y_sense=objectives[y], title=title, chance=chance),
                    out / "pareto")  # fmt: skip
        asic = ok[ok["area_mm2"].notna()] if "area_mm2" in ok else ok.iloc[:0]
        if len(asic):  # what each design costs in silicon (FPGA rows report resources instead)
            save_figure(pareto_scatter(asic, x="latency_s", y="area_mm2", y_sense="min",
                                       title="ASIC designs: latency vs area"), out / "pareto_area")  # fmt: skip
        front = pareto_front(ok, objectives)
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
        shown = [*objectives, *(c for c in ("cycles", "utilization", "area_mm2") if c in front and c not in objectives)]
        columns = point_columns(front, shown, among=ok)
        with pd.option_context("display.width", 200, "display.max_rows", 100):
            print(f"Pareto front ({', '.join(f'{k}:{v}' for k, v in objectives.items())}), {len(front)} points; "
                  f"accuracy source: {ACCURACY_NOTES.get(source, source)}")  # fmt: skip
            print(readable_table(front[columns]).to_string(index=False))
        print(f"plot: {out / 'pareto.png'}" + (f", {out / 'pareto_area.png'}" if len(asic) else ""))
    return 0 if not failed else 1
