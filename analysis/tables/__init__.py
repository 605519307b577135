"""Accuracy tables shipped with the package: ``accuracy: table:NAME`` in a sweep (see :mod:`analysis.accuracy`).

``minilm-sentiment.csv``: MiniLM on ``sentiment``, dev/test accuracy of every pruning point of the default
``paper_figs.reproduce`` run (default recipe, 3,200 tweets, seed 0): a copy of its ``accuracy_table.csv``;
the ``source`` column names the run. Method ``magnitude`` (the recipe without a regularizer) has every
block; ``reweighted`` and ``group-lasso`` only 16x16 at 2x and 4x.
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
