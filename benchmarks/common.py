"""Helpers shared by the benchmarks: JSON results and a timed, quiet sweep."""

from __future__ import annotations

import json
import time
from pathlib import Path

__all__ = ["timed_sweep", "write_results"]


def write_results(path: str | Path, results) -> Path:
    """Write a benchmark's results as indented JSON (the folder is created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2))
    return path


def timed_sweep(space, out_dir: str | Path, workers: int):
    """``(table, wall seconds)`` of a sweep with transformers' own progress output silenced."""
    from analysis.sweep import sweep
    from pruning.models import quiet_transformers

    quiet_transformers()
    start = time.perf_counter()
    table = sweep(space, out_dir=out_dir, workers=workers, progress=False)
    return table, time.perf_counter() - start
