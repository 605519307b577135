"""Pruning-heavy sweep throughput: the same 8 trained points with 1 and with N local workers, in one run.

    python -m benchmarks.parallel_pruning [--workers 2] [--out benchmarks/out/parallel_pruning.json]
    python -m benchmarks.parallel_pruning --gpus auto          # one worker per visible GPU (a GPU machine)

The space: a tiny random BERT (2 layers, hidden 64, the MiniLM tokenizer; ``paper_figs.reproduce --quick``'s
model) on the shipped sentiment corpus, ``accuracy: train`` with the paper's setting (``teacher: none``, so
no point waits for a shared dense teacher), blocks 4x4 and 8x8 at sparsities 0.25..0.875: 8 trained points,
each a full prune-and-retrain run, on one accelerator. Every run starts from an empty ``--out`` (nothing
cached) and includes the workers' start-up. The speed-up is the ratio of the two wall times.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from analysis.executor import gpu_list
from analysis.space import AccuracyBudget, SweepSpace
from benchmarks.common import write_results

BUDGET = AccuracyBudget(epochs=6.0, max_train_samples=2048, max_eval_samples=256, max_seq_len=32, batch_size=8,
                        learning_rate=1e-3, teacher="none", seed=0)  # fmt: skip


def space(model_dir: Path) -> SweepSpace:
    return SweepSpace(model=str(model_dir), data="sentiment", accuracy="train", blocks=["4x4", "8x8"],
                      sparsities=[0.25, 0.5, 0.75, 0.875], methods=["score"], configs=["asic-16x16-int8"],
                      seq_lens=[32], budget=BUDGET)  # fmt: skip


def timed(model_dir: Path, out: Path, **runner) -> tuple[float, object]:
    from analysis.sweep import sweep

    start = time.perf_counter()
    table = sweep(space(model_dir), out_dir=out, progress=False, **runner)
    return time.perf_counter() - start, table


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--gpus", type=gpu_list, help="also time one worker per GPU ('auto' or ids)")
    parser.add_argument("--out", default="benchmarks/out/parallel_pruning.json")
    args = parser.parse_args(argv)
    from paper_figs.reproduce import _tiny_model
    from pruning.models import quiet_transformers

    quiet_transformers()
    with tempfile.TemporaryDirectory(prefix="bsp-parallel-bench-") as tmp:
        model_dir = _tiny_model(Path(tmp))
        runs = {"1 worker": {"workers": 1}, f"{args.workers} workers": {"workers": args.workers}}
        if args.gpus:
            runs["one per GPU"] = {"gpus": args.gpus}
        rows, tables = {}, {}
        for label, runner in runs.items():
            wall_s, tables[label] = timed(model_dir, Path(tmp) / label.replace(" ", "-"), **runner)
            points = int(tables[label]["accuracy"].notna().sum())
            rows[label] = {"wall_s": wall_s, "points": points, "points_per_min": points / wall_s * 60}
            print(f"{label}: {points} points in {wall_s:.1f} s", file=sys.stderr)
        baseline = rows["1 worker"]["wall_s"]
        for row in rows.values():
            row["speedup"] = baseline / row["wall_s"]
        reference = tables["1 worker"].set_index("point_id")["accuracy"].sort_index()
        # workers train with cores/workers threads, the serial run with all cores: float sums in another order
        # can flip a prediction late in training, so the accuracies are compared, not assumed equal
        differences = [(t.set_index("point_id")["accuracy"].sort_index() - reference).abs() for t in tables.values()]
        max_difference = float(max(d.max() for d in differences))
        differing = int(sum((d > 0).sum() for d in differences))
    print(f"{'run':<14} {'points':>6} {'wall s':>8} {'points/min':>11} {'speed-up':>9}")
    for label, row in rows.items():
        print(f"{label:<14} {row['points']:>6} {row['wall_s']:>8.1f} {row['points_per_min']:>11.1f} "
              f"{row['speedup']:>8.2f}x")  # fmt: skip
    print(f"dev accuracy against the 1-worker run: {differing} points differ, by at most {max_difference:.4f}")
    write_results(args.out, {"runs": rows, "points_differing": differing, "max_accuracy_difference": max_difference,
                             "budget": BUDGET.__dict__})  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
