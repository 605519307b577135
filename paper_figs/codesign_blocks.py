"""Block *shape* chosen for the array: uniform plans of equal block area, square vs matched to the array.

    python -m paper_figs.codesign_blocks                # 32x32 vs 64x16 at 2x and 4x, seeds 0-2 (~1 h on 2 cores)
    python -m paper_figs.codesign_blocks --quick        # tiny random BERT, seconds (CI smoke test)

On a weight-stationary array an N-tile holds ``pe_array.cols`` weight rows and streams the union of the
reduction lines they keep (``hwsim.mapping``), so blocks whose height is the array's column count skip
without a union penalty: on ``fpga-zcu102`` (32x64) that is 64-row blocks, on ``asic-32x32-int8`` 32-row ones
(:func:`codesign.loop.matched_block`). Every block in ``--blocks`` is pruned uniformly at every ``--rates``
with the co-design study's recipe and budget for every seed, and each pruned model is simulated on every
``--configs``. Outputs in ``--out`` (default ``paper_figs/out/codesign-blocks``): ``results.jsonl``
(resumable, one row per model and accelerator), ``results.md`` (mean dev/test and latency per accelerator,
block and rate, and each block against the first one, paired by seed), ``fig_codesign_<config>.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd

from analysis.executor import add_runner_arguments, runner_from_args
from analysis.store import ResultStore
from bsp_common.outputs import prepare_output_dir, write_text_atomic
from paper_figs.codesign import _figures, _paired, _simulated, train_in_parallel
from paper_figs.reproduce import FULL_BUDGET, STUDY_TRAIN_SAMPLES, _mean_se, _tiny_model, check_study_inputs

OUT = Path(__file__).parent / "out"


def _summary(results: pd.DataFrame) -> str:
    lines = ["| config | plan | seeds | dev / test (mean ± s.e., points) | latency (ms) |", "|---|---|---|---|---|"]
    for (config, label), table in results.groupby(["config", "plan"], sort=False):
        lines.append(f"| {config} | {label} | {len(table)} | {_mean_se(table['dev_accuracy'] * 100)} / "
                     f"{_mean_se(table['test_accuracy'] * 100)} | {table['latency_s'].mean() * 1e3:.4f} |")
    return "\n".join(lines)


def _layer_names(model: str) -> list[str]:
    """The model's prunable weights, in model order."""
    from pruning.models import load_classifier
    from pruning.targets import find_targets

    return [f"{name}.weight" for name in find_targets(load_classifier(model, num_labels=2))]


def main(argv=None) -> int:
    from codesign.plan import CodesignPlan

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", nargs="+", default=["32x32", "64x16"], help="the first is the reference")
    parser.add_argument("--rates", type=float, nargs="+", default=[2.0, 4.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--configs", nargs="+", default=["fpga-zcu102", "asic-32x32-int8"])
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--quick", action="store_true", help="tiny random BERT, seconds")
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--data", default="sentiment")
    parser.add_argument("--out", default=str(OUT / "codesign-blocks"))
    add_runner_arguments(parser, "pruning runs")
    args = parser.parse_args(argv)
    try:
        runner = runner_from_args(args)
    except ValueError as err:
        parser.error(str(err))
    if any(r <= 1 for r in args.rates):
        parser.error(f"--rates: compression rates must be > 1, got {args.rates}")
    check_study_inputs(parser, None if args.quick else args.model, args.data)
    out = prepare_output_dir(args.out, "paper-codesign-blocks")
    budget = FULL_BUDGET.train_budget(max_train_samples=STUDY_TRAIN_SAMPLES)
    model, cache = args.model, OUT / "recipes" / "cache"
    if args.quick:
        model, cache = str(_tiny_model(out / "cache")), out / "cache"
        budget = replace(budget, epochs=2.0, max_train_samples=64, max_eval_samples=64)
        args.seeds, args.rates = args.seeds[:1], args.rates[:1]
    layers = _layer_names(model)
    store = ResultStore(out / "results.jsonl")
    done = store.done_ids()
    jobs, arms = {}, {}
    for seed in args.seeds:  # seed-major: a cut-short run has every arm at the first seeds
        for rate in args.rates:
            for block in args.blocks:
                label = f"uniform {block} {rate:g}x"
                plan = CodesignPlan(block=block, layers=dict.fromkeys(layers, round(1 - 1 / rate, 6)),
                                    config=args.configs[0], objective="uniform")  # fmt: skip
                ids = {c: json.dumps({"config": c, "plan": label, "seed": seed}, sort_keys=True) for c in args.configs}
                if all(i in done for i in ids.values()):
                    continue
                run_dir = out / "runs" / f"{label.replace(' ', '_')}-seed{seed}"
                jobs[label, seed] = {"plan": plan, "seed": seed, "model": model, "data": args.data, "budget": budget,
                                     "run_dir": run_dir, "cache_dir": cache, "seq_len": args.seq_len,
                                     "progress": not args.quick and not runner.parallel}  # fmt: skip
                arms[label, seed] = (block, plan, ids)
    for (label, seed), first in train_in_parallel(jobs, runner):
        block, plan, ids = arms[label, seed]
        trained = {k: first[k] for k in ("dev_accuracy", "test_accuracy", "compression_rate")}
        for config in args.configs:  # one pruned model, simulated on every accelerator
            row = first if config == args.configs[0] else {**trained, **_simulated(config, jobs[label, seed]["run_dir"],
                                                                                   args.seq_len)}  # fmt: skip
            if ids[config] not in done:
                store.append({"config": config, "plan": label, "block": block, "seed": seed, **row,
                              "layers": json.dumps(plan.layers), "point_id": ids[config], "error": None})
                done.add(ids[config])
    results = store.load()
    twins = {(c, f"uniform {b} {r:g}x"): f"uniform {args.blocks[0]} {r:g}x" for c in args.configs
             for b in args.blocks[1:] for r in args.rates}  # fmt: skip
    markdown = (f"Uniform plans, mean over seeds:\n\n{_summary(results)}\n\nAgainst {args.blocks[0]} at the same "
                f"rate, paired by seed:\n\n{_paired(results, twins, 'reference')}")
    write_text_atomic(out / "results.md", markdown + "\n")
    _figures(results, {}, out, kind_word=1, title="uniform plans by block shape")  # one point per block and rate
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
