"""How close ``bsp search`` (NSGA-II) gets to the exhaustive front with 10 % of the evaluations.

    python -m benchmarks.search_quality [--seeds 3] [--out benchmarks/out/search_quality.json]

The space (hardware-only, MiniLM, enumerable): 4 blocks x 6 sparsities + dense on 3 ASIC presets x 3 clocks
x 4 tied array sizes = 900 points. The exhaustive sweep is run once; the search then runs with
``trials = 10 %`` of the points in the same directory (its evaluations are lookups there, so this measures
quality, not time), and random sampling of the same number of points is the baseline. Quality is the
hypervolume of the (latency_s, energy_pj) front relative to the exhaustive front's, with one reference point
(1.1 x the worst value of each objective over the whole space).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from analysis.pareto import hypervolume_2d
from analysis.search import search
from analysis.space import SweepSpace
from benchmarks.common import timed_sweep, write_results

OBJECTIVES = {"latency_s": "min", "energy_pj": "min"}
SPACE = SweepSpace(model="minilm", accuracy="none", blocks=["8x8", "16x16", "32x32", "64x64"],
                   sparsities=[0.0, 0.25, 0.5, 0.625, 0.75, 0.875, 0.9375],
                   configs=["asic-16x16-int8", "asic-32x32-int8", "asic-128x128-int8"], seq_lens=[128],
                   hardware_axes={"clock_mhz": [200, 500, 1000],
                                  "pe_array.rows,pe_array.cols": [[16, 16], [32, 32], [64, 64], [128, 128]]},
                   )  # fmt: skip


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/out/search_quality.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bsp-search-bench-") as tmp:
        full, sweep_s = timed_sweep(SPACE, Path(tmp) / "s", args.workers)
        full = full[full["feasible"].eq(True)]
        reference = tuple(1.1 * float(full[name].max()) for name in OBJECTIVES)
        exhaustive = hypervolume_2d(full, OBJECTIVES, reference)
        trials = max(1, round(0.1 * SPACE.n_points))
        rows = []
        for seed in range(args.seeds):
            found = search(SPACE, trials, OBJECTIVES, out_dir=Path(tmp) / "s", seed=seed, progress=False)
            sample = full.sample(n=trials, random_state=seed)
            rows.append({"seed": seed, "search": hypervolume_2d(found, OBJECTIVES, reference) / exhaustive,
                         "random": hypervolume_2d(sample, OBJECTIVES, reference) / exhaustive,
                         "distinct_points": len(found)})  # fmt: skip
    result = {"points": SPACE.n_points, "trials": trials, "exhaustive_sweep_s": sweep_s, "runs": rows,
              "search_mean": statistics.mean(r["search"] for r in rows),
              "random_mean": statistics.mean(r["random"] for r in rows)}  # fmt: skip
    print(f"space {SPACE.n_points} points (exhaustive sweep {sweep_s:.1f} s); {trials} trials per search")
    print(f"{'seed':>4} {'search HV ratio':>16} {'random HV ratio':>16} {'distinct':>9}")
    for r in rows:
        print(f"{r['seed']:>4} {r['search']:>16.4f} {r['random']:>16.4f} {r['distinct_points']:>9}")
    print(f"mean {result['search_mean']:>16.4f} {result['random_mean']:>16.4f}")
    write_results(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
