"""Accuracy tables shipped with the package: ``accuracy: table:NAME`` in a sweep (see :mod:`analysis.accuracy`).

``minilm-sentiment.csv``: MiniLM on ``sentiment``, dev/test accuracy of every pruning point of a
``paper_figs.reproduce`` run (full method); its ``source`` column names the run. Regenerate it from a new
run's ``results.csv`` by keeping one row per (block, granularity, target_sparsity, method).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["accuracy_table_path", "shipped_tables"]


def shipped_tables() -> list[str]:
    """Names of the accuracy tables shipped with the package (``accuracy: table:NAME``)."""
    return sorted(p.name.removesuffix(".csv") for p in resources.files("analysis.tables").iterdir()
                  if p.name.endswith(".csv"))  # fmt: skip


def accuracy_table_path(source: str) -> Path:
    """The CSV behind ``table:NAME`` (shipped) or ``table:PATH``; a clear error when there is none."""
    name = source.split(":", 1)[1]
    if name in shipped_tables():
        return Path(str(resources.files("analysis.tables") / f"{name}.csv"))
    path = Path(name)
    if not path.is_file():
        raise FileNotFoundError(f"sweep.accuracy: no accuracy table {name!r} (shipped: {', '.join(shipped_tables())}; "
                                "or a CSV path)")  # fmt: skip
    return path
