"""Progress bars: one rule for every long command (sweeps, search, co-design).

>>> with progress_bar(True, total=3, desc="demo") as bar:  # a live bar on a terminal; none in a log file
...     for _ in range(3):
...         _ = bar.update()
"""

from __future__ import annotations

import sys

from tqdm import tqdm

__all__ = ["progress_bar"]


def progress_bar(enabled: bool, **options) -> tqdm:
    """A tqdm bar on stderr (``options`` as for tqdm) when ``enabled`` and stderr is a terminal; disabled
    otherwise -- redrawn and nested bars garble a log file, and the commands print their own summaries."""
    return tqdm(disable=None if enabled else True, file=sys.stderr, **options)
