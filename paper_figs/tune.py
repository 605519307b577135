"""Hyper-parameter study behind the defaults of ``paper_figs.reproduce``: lambda, epsilon, re-weighting interval
and the regularize/retrain split, for reweighted group Lasso against its baselines at one block size.

    python -m paper_figs.tune --workers 14           # the 228-run grid: ~8 min on one H200, ~13 h on 2 CPU cores
    python -m paper_figs.tune --quick                # tiny random BERT, seconds (what CI smoke-tests)

Every point is one ``pruning.run_pruning`` (regularized fine-tune -> hard prune -> masked retrain ->
dev/test accuracy) with the budget of :data:`BUDGET` except the fields the point overrides. Results are
appended to ``--out``/tune.jsonl (an :class:`analysis.store.ResultStore`) keyed by the point's settings, so
a rerun skips finished points (resume after interruption). ``tune.csv`` holds mean +- std over seeds per
configuration and compression rate, best first; ``tune_paired.csv`` the accuracy differences to one-shot
magnitude paired by seed (see :func:`paired_differences`).
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

from analysis.executor import TaskRunner, add_runner_arguments, runner_from_args
from analysis.store import ResultStore, write_table_atomic
from bsp_common.outputs import prepare_output_dir
from paper_figs.reproduce import FULL_BUDGET, STUDY_TRAIN_SAMPLES, _tiny_model, check_study_inputs
from pruning.pruner import PruneSettings
from pruning.train import TrainBudget

# The budget these studies ran with (~3 min per point on 2 cores), pinned so that stored points keep their
# meaning when library defaults change: the old reproduction budget, one-shot prune after 1 of 4 epochs and,
# for points that name no score, the magnitude score (see _STUDY_SETTINGS).
BUDGET = FULL_BUDGET.train_budget(max_train_samples=STUDY_TRAIN_SAMPLES, prune_at_epoch=1.0, schedule="oneshot",
                                  teacher="none", distill_alpha=0.0)  # fmt: skip
_STUDY_SETTINGS = {"score": "magnitude"}
RATES = (2, 3, 5)
SEEDS = (0, 1, 2)
BLOCK = "16x16"


_DENSE = {"name": "dense", "method": "score"}
_SETTINGS_KEYS = set(PruneSettings.__dataclass_fields__) - {"block", "method", "target_sparsity"}


def _configs() -> list[dict]:
    """Named method settings of the grid (lambda for a 16x16 group; proximal penalty unless named)."""
    configs = [{"name": "magnitude", "method": "score"}]
    configs += [{"name": f"group-lasso lam={lam:g}", "method": "group-lasso", "lam": lam, "penalty_mode": "proximal"}
                for lam in (2.0, 5.0, 20.0)]  # fmt: skip
    for lam, interval in itertools.product((0.5, 1.0, 2.0, 5.0, 20.0), (1, 10, 50)):
        configs.append({"name": f"reweighted lam={lam:g} every={interval}", "method": "reweighted", "lam": lam,
                        "penalty_mode": "proximal", "reweight_interval_steps": interval})  # fmt: skip
    for eps in (1e-2, 1e-1):
        configs.append({"name": f"reweighted lam=2 every=10 eps={eps:g}", "method": "reweighted", "lam": 2.0,
                        "eps": eps, "penalty_mode": "proximal", "reweight_interval_steps": 10})  # fmt: skip
    # a longer regularized phase (2 of 4 epochs) for the strongest candidates and the baseline
    for config in [c for c in configs if c["name"] in ("magnitude", "reweighted lam=2 every=10",
                                                       "reweighted lam=5 every=10", "group-lasso lam=5")]:  # fmt: skip
        configs.append({**config, "name": config["name"] + " prune@2", "prune_at_epoch": 2.0})
    return configs


def grid(rates=RATES, seeds=SEEDS, block: str = BLOCK) -> list[dict]:
    """Every point, seed-major (all configurations at seed 0 first, so a cut-short run still compares them);
    each seed also gets the dense fine-tune (rate 1) as the reference."""
    settings = [(_DENSE, 1), *itertools.product(_configs(), rates)]
    return [{**config, "block": block, "rate": rate, "seed": seed} for seed in seeds for config, rate in settings]


def point_key(point: dict) -> str:
    return json.dumps(point, sort_keys=True)


def _run_point(job: tuple[dict, str, str, TrainBudget, Path]) -> dict:
    """One run: point keys that name a ``PruneSettings`` field set the settings, ``TrainBudget`` fields the
    budget; ``"teacher": true`` distils from the dense fine-tune of the same budget and seed (cached), and
    ``"init_from_teacher": true`` also starts the run from it (the two-stage recipe)."""
    point, model, data, budget, cache_dir = job
    from pruning.models import quiet_transformers
    from pruning.train import run_pruning

    quiet_transformers()
    chosen = {**_STUDY_SETTINGS, **{k: v for k, v in point.items() if k in _SETTINGS_KEYS}}
    settings = PruneSettings(block=point["block"], method=point["method"], target_sparsity=1 - 1 / point["rate"],
                             **chosen)  # fmt: skip
    teacher = "two-stage" if point.get("init_from_teacher") else "distill" if point.get("teacher") else "none"
    fields = {k: v for k, v in point.items() if k in TrainBudget.__dataclass_fields__ and k != "teacher"}
    budget = replace(budget, teacher=teacher, **fields)
    out_dir = Path(tempfile.mkdtemp(prefix="tune-"))
    try:
        result = run_pruning(model, data, settings, out_dir, budget, cache_dir=cache_dir)
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    return {**point, "point_id": point_key(point), "dev_accuracy": result.dev_accuracy,
            "test_accuracy": result.test_accuracy, "compression_rate": result.summary["compression_rate"],
            "wall_s": result.wall_s}  # fmt: skip


def summarize(records: pd.DataFrame) -> pd.DataFrame:
    """Mean and std of dev/test accuracy over seeds per configuration and rate."""
    table = records.groupby(["name", "rate"]).agg(
        dev_mean=("dev_accuracy", "mean"), dev_std=("dev_accuracy", "std"),
        test_mean=("test_accuracy", "mean"), test_std=("test_accuracy", "std"), seeds=("seed", "nunique"),
    )  # fmt: skip
    return table.reset_index().sort_values(["rate", "dev_mean"], ascending=[True, False])


def paired_differences(records: pd.DataFrame, baseline: str = "magnitude") -> pd.DataFrame:
    """Accuracy minus the baseline's at the same rate and seed (same data order and head init), in points.

    Pairing by seed removes most of the seed-to-seed spread, which is larger than the method differences.
    Columns: mean dev difference per rate, the worst seed's dev difference per rate, and overall dev/test means.
    """
    pruned = records[records["rate"] > 1].set_index(["rate", "seed"])
    base = pruned[pruned["name"] == baseline]
    rows = []
    for name, group in pruned.groupby("name"):
        dev = (group["dev_accuracy"] - base["dev_accuracy"].reindex(group.index)) * 100
        test = (group["test_accuracy"] - base["test_accuracy"].reindex(group.index)) * 100
        row = {"name": name}
        for rate, values in dev.groupby(level="rate"):
            row[f"dev_{rate:g}x"], row[f"worst_dev_{rate:g}x"] = values.mean(), values.min()
        rows.append({**row, "dev_mean": dev.mean(), "test_mean": test.mean()})
    return pd.DataFrame(rows).sort_values("dev_mean", ascending=False)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--data", default="sentiment")
    parser.add_argument("--out", default=str(Path(__file__).parent / "out" / "tune"))
    add_runner_arguments(parser, "runs (local workers share a GPU if there is one)")
    parser.add_argument("--seeds", type=int, nargs="+", help=f"default {SEEDS} (--quick: 0)")
    parser.add_argument("--rates", type=float, nargs="+", help=f"default {RATES} (--quick: 2)")
    parser.add_argument("--only", nargs="+", help="run only the configurations of these exact names")
    parser.add_argument("--quick", action="store_true", help="tiny random BERT, 2 configurations, seconds")
    args = parser.parse_args(argv)
    try:
        runner = runner_from_args(args)
    except ValueError as err:
        parser.error(str(err))
    rates = args.rates or ((2,) if args.quick else RATES)
    if any(r <= 1 for r in rates):
        parser.error(f"--rates: compression rates must be > 1, got {rates}")
    # 2.0 -> 2: the rate is part of a point's key, and the default grid's rates are integers
    rates = tuple(int(r) if float(r).is_integer() else r for r in rates)
    seeds = tuple(args.seeds or ((0,) if args.quick else SEEDS))
    check_study_inputs(parser, None if args.quick else args.model, args.data)
    out = prepare_output_dir(args.out, "paper-tune")  # resumable
    budget, model, block = BUDGET, args.model, BLOCK
    if args.quick:
        model, block = str(_tiny_model(out / "cache")), "8x8"
        budget = replace(budget, epochs=2.0, max_train_samples=64, max_eval_samples=64)
    points = grid(rates, seeds, block)
    if args.quick:
        points = [p for p in points if p["name"] in ("magnitude", "reweighted lam=2 every=10")]
    if args.only:
        points = [p for p in points if p["name"] in args.only]
    run_study(points, model, args.data, budget, out, "tune", runner, baseline="magnitude")
    return 0


def run_study(points: list[dict], model: str, data: str, budget: TrainBudget, out: Path, stem: str,
              runner: TaskRunner | None = None, baseline: str = "magnitude") -> pd.DataFrame:  # fmt: skip
    """Run the points not yet in ``out/<stem>.jsonl`` (resumable) on ``runner``'s workers (default: here), then
    write ``<stem>.csv`` (mean +- std) and ``<stem>_paired.csv`` (differences to ``baseline`` paired by seed);
    returns every record."""
    store = ResultStore(out / f"{stem}.jsonl")
    done = store.done_ids()
    todo = [p for p in points if point_key(p) not in done]
    print(f"{len(points)} points, {len(points) - len(todo)} already done, {len(todo)} to run", file=sys.stderr)
    start = time.perf_counter()
    runner = runner or TaskRunner()
    for p in todo:
        runner.submit(_run_point, (p, model, data, budget, out / "cache"), key=p["name"], gpu=True)
    for i, (_, record, error) in enumerate(runner.results(), 1):
        if error is not None:
            raise error
        store.append(record)
        print(f"[{time.perf_counter() - start:6.0f}s] {i}/{len(todo)} {record['name']} {record['rate']}x "
              f"seed {record['seed']}: dev {record['dev_accuracy']:.4f}", file=sys.stderr)  # fmt: skip
    records = store.load()
    table = summarize(records)
    write_table_atomic(table, out / f"{stem}.csv")
    if (records["name"] == baseline).any():
        paired = paired_differences(records, baseline)
        write_table_atomic(paired, out / f"{stem}_paired.csv")
        print(paired.to_string(index=False, float_format=lambda v: f"{v:+.2f}"))
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return records


if __name__ == "__main__":
    sys.exit(main())
