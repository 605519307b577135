"""``bsp report``: a self-contained interactive HTML report of a sweep table."""

from __future__ import annotations

import argparse

EXAMPLE = """example:
  bsp report results/sweep.parquet --out results/report.html
"""


def register(subparsers) -> None:
    p = subparsers.add_parser("report", help="interactive HTML report of a sweep table (plotly, works offline)",
                              epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("results", help="sweep table (.parquet or .csv) written by bsp sweep, or its output directory")
    p.add_argument("--out", default="report.html", help="HTML file to write (default report.html)")
    p.add_argument("--detail", type=int, default=3, choices=range(0, 11), metavar="{0..10}",
                   help="front points that get per-layer and mask sections, re-simulated (default 3)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.set_defaults(run=run)


def run(args) -> int:
    from analysis.report import build_report

    print(build_report(args.results, args.out, detail=args.detail, overwrite=args.overwrite))
    return 0
