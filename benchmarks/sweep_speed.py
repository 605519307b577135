"""Hardware-only sweep speed at two sizes, end to end, and the per-point simulation cost with and without
the timing/workload caches, measured in the same run.

    python -m benchmarks.sweep_speed [--workers 2] [--out benchmarks/out/sweep_speed.json]

The spaces, MiniLM with ``accuracy: none`` (one-shot block-norm masks of the pretrained weights):

* 1,020 points: 5 presets x 4 blocks (8x8..64x64) x 5 sparsities (0 % dense + 4 levels) x 4 sequence
  lengths (64..512) x 3 clock values.
* 14,760 points: the same with ten sparsities per block (0.05..0.95, plus the dense point) and the hardware
  axes of ``examples/sweep_hardware.yaml`` (3 clocks x 3 array shapes x 2 weight-buffer sizes).
* 10,200 points: the 1,020-point space over 5 clocks x 6 array shapes (8x8 .. 128x128) instead of 3 clocks.

Each runs in a fresh temporary ``--out`` (nothing cached), so the time includes the one-shot prunes, the
torch import of the pruning stage and the worker start-up. The last table replays simulation tasks of
the small space in this process with the caches cleared before every point and with them kept.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from analysis.space import SweepSpace
from analysis.sweep import pruned_workload, simulate_point
from benchmarks.common import timed_sweep, write_results
from hwsim.simulate import clear_timing_cache

PRESETS = ["asic-16x16-int8", "asic-32x32-int8", "asic-128x128-int8", "fpga-zcu102", "fpga-u200"]
SPACE = SweepSpace(model="minilm", accuracy="none", blocks=["8x8", "16x16", "32x32", "64x64"],
                   sparsities=[0.0, 0.5, 0.75, 0.875, 0.9375], configs=PRESETS, seq_lens=[64, 128, 256, 512],
                   hardware_axes={"clock_mhz": [200, 500, 1000]})  # fmt: skip
LARGE_SPACE = SweepSpace(model="minilm", accuracy="none", blocks=["8x8", "16x16", "32x32", "64x64"],
                         sparsities=[0.0, *(round(0.05 + 0.1 * i, 2) for i in range(10))], configs=PRESETS,
                         seq_lens=[64, 128, 256, 512],
                         hardware_axes={"clock_mhz": [200, 500, 1000],
                                        "pe_array.rows,pe_array.cols": [[16, 16], [32, 32], [64, 128]],
                                        "buffers.weight_bytes": ["128 KiB", "512 KiB"]})  # fmt: skip
# 10,200 points: the 1,020-point space's presets, blocks, sparsities and sequence lengths over array sizes and
# clocks (5 clocks x 6 shapes instead of its 3 clocks)
HARDWARE_SPACE = SweepSpace(model="minilm", accuracy="none", blocks=["8x8", "16x16", "32x32", "64x64"],
                            sparsities=[0.0, 0.5, 0.75, 0.875, 0.9375], configs=PRESETS, seq_lens=[64, 128, 256, 512],
                            hardware_axes={"clock_mhz": [200, 400, 600, 800, 1000],
                                           "pe_array.rows,pe_array.cols": [[8, 8], [16, 16], [32, 32], [64, 64],
                                                                           [64, 128], [128, 128]]})  # fmt: skip
SAMPLE = 60  # points replayed per cache setting


def _clear_caches() -> None:
    clear_timing_cache()
    pruned_workload.cache_clear()


def _size_row(table, sweep_s: float) -> dict:
    evaluated = int((table["feasible"] == True).sum())  # noqa: E712 -- NaN-safe
    return {"evaluated": evaluated, "failed": int(table["error"].notna().sum()), "sweep_s": sweep_s,
            "points_per_s": len(table) / sweep_s}  # fmt: skip


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/out/sweep_speed.json")
    args = parser.parse_args(argv)
    sizes = {}
    with tempfile.TemporaryDirectory(prefix="bsp-sweep-bench-") as tmp:
        table, sweep_s = timed_sweep(LARGE_SPACE, Path(tmp) / "large", args.workers)
        sizes[len(table)] = _size_row(table, sweep_s)
        table, sweep_s = timed_sweep(HARDWARE_SPACE, Path(tmp) / "hardware", args.workers)
        sizes[len(table)] = _size_row(table, sweep_s)
        table, sweep_s = timed_sweep(SPACE, Path(tmp) / "sweep", args.workers)
        sizes[len(table)] = _size_row(table, sweep_s)
        for points, row in sizes.items():
            print(f"sweep: {points} points in {row['sweep_s']:.1f} s with {args.workers} workers", file=sys.stderr)
        from pruning.models import resolve_model_path

        tasks = [row for row in table.to_dict("records") if row.get("feasible") is True]
        for task in tasks:  # stored paths are relative to --out, the model is stored by name
            task["masks_path"] = (str(Path(tmp) / "sweep" / task["masks_path"])
                                  if isinstance(task.get("masks_path"), str) else None)  # fmt: skip
            task["hf_config_dir"] = str(resolve_model_path("minilm"))
        sample = sorted(random.Random(0).sample(range(len(tasks)), min(SAMPLE, len(tasks))))
        ordered = [tasks[i] for i in sample]  # sweep order: neighbours share masks and shapes, as in a sweep
        timings = {}
        for label, clear in (("per point, no caches", True), ("cached", False)):
            _clear_caches()
            per_point = []
            for task in ordered:
                if clear:
                    _clear_caches()
                t = time.perf_counter()
                result = simulate_point(task)
                per_point.append(time.perf_counter() - t)
                assert result["error"] is None, result["error"]
            timings[label] = statistics.mean(per_point)
    rows = {"workers": args.workers, "sizes": sizes, "mean_s_per_point": timings,
            "cache_speedup": timings["per point, no caches"] / timings["cached"]}  # fmt: skip
    print(f"{'points':>8} {'evaluated':>9} {'workers':>7} {'sweep s':>8} {'points/s':>9} {'s per 10,000':>12}")
    for points, row in sizes.items():
        print(f"{points:>8,} {row['evaluated']:>9,} {args.workers:>7} {row['sweep_s']:>8.1f} "
              f"{row['points_per_s']:>9.1f} {10_000 / row['points_per_s']:>12.1f}")  # fmt: skip
    print(f"per-point simulation over {len(ordered)} sampled points (same run):")
    for label, value in timings.items():
        print(f"  {label:<22} {value * 1e3:8.1f} ms")
    print(f"  cache speed-up        {rows['cache_speedup']:8.1f}x")
    write_results(args.out, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
