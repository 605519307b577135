"""Pareto-front speed on random tables, and the group-norm partition on a BERT-base FFN matrix.

    python -m benchmarks.pareto_speed [--out benchmarks/out/pareto_speed.json]

Prints a table and writes JSON (medians of 3 runs). The Pareto rows compare the vectorised culling in
``analysis.pareto`` with a plain O(n^2) NumPy dominance check on the same data (only up to 10^4 rows,
where it is still affordable); ratios from one run are what to compare across machines.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from analysis.pareto import pareto_mask
from pruning.blocks import BlockSpec, Granularity, group_norms_sq, group_shape


def median_time(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def quadratic_mask(costs: np.ndarray) -> np.ndarray:
    """O(n^2) reference: row i is dominated if any row is <= everywhere and < somewhere."""
    mask = np.ones(len(costs), dtype=bool)
    for i in range(len(costs)):
        dominated = np.all(costs <= costs[i], axis=1) & np.any(costs < costs[i], axis=1)
        mask[i] = not dominated.any()
    return mask


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="benchmarks/out/pareto_speed.json")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    rows = []
    for n in (10**3, 10**4, 10**5):
        for k in (2, 3):
            # a realistic sweep: accuracy rises with cycles and energy (noisy), so fronts are small
            cycles = rng.lognormal(14, 1, n)
            energy = cycles * rng.lognormal(0, 0.3, n)
            accuracy = 0.9 - 0.2 / np.log(cycles) * 10 + rng.normal(0, 0.01, n)
            df = pd.DataFrame({"accuracy": accuracy, "cycles": cycles, "energy_pj": energy})
            objectives = dict(list({"accuracy": "max", "cycles": "min", "energy_pj": "min"}.items())[:k])
            seconds = median_time(lambda df=df, o=objectives: pareto_mask(df, o))
            front = int(pareto_mask(df, objectives).sum())
            row = {"kind": "pareto", "rows": n, "objectives": k, "front": front, "wall_s": seconds}
            if n <= 10**4:
                costs = np.column_stack([-accuracy, cycles, energy])[:, :k]
                row["quadratic_wall_s"] = median_time(lambda c=costs: quadratic_mask(c), repeats=1)
                row["speedup"] = row["quadratic_wall_s"] / seconds
            rows.append(row)
    weight = torch.randn(3072, 768)
    for granularity in Granularity:
        gshape = group_shape(BlockSpec(16, 16), granularity)
        seconds = median_time(lambda g=gshape: group_norms_sq(weight, g), repeats=5)
        rows.append({"kind": "group_norms 3072x768 16x16", "granularity": granularity.value, "wall_s": seconds})
    for row in rows:
        print("  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
