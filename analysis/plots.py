"""Publication-style matplotlib figures from sweep tables and simulation results.

Every function returns the ``Figure``; :func:`save_figure` writes PNG (200 dpi) and SVG side by side.
Colours are the Okabe-Ito colour-blind-safe palette; axes carry units.

>>> from analysis.plots import pareto_scatter, save_figure            # doctest: +SKIP
>>> fig = pareto_scatter(table, x="cycles", y="accuracy")               # doctest: +SKIP
>>> save_figure(fig, "results/pareto")  # results/pareto.png + .svg     # doctest: +SKIP
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import matplotlib

if "ipykernel" not in sys.modules and "MPLBACKEND" not in os.environ:
    matplotlib.use("Agg")  # files only, no window; a notebook keeps its inline backend and shows the figures
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter, LogFormatterSciNotation, NullFormatter

from analysis.display import accelerator_labels
from analysis.pareto import pareto_mask
from bsp_common.units import format_energy_pj, format_seconds

__all__ = [
    "OKABE_ITO",
    "accuracy_vs_compression",
    "layer_breakdown",
    "layer_group_table",
    "majority_accuracy",
    "mask_heatmap",
    "metric_vs_block",
    "pareto_scatter",
    "save_figure",
]

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
LABELS = {
    "cycles": "latency (cycles)",
    "latency_s": "latency per inference",
    "energy_pj": "energy per inference",
    "accuracy": "dev accuracy",
    "compression_rate": "compression rate (x)",
    "utilization": "PE utilization",
    "area_mm2": "area (mm²)",
}

plt.rcParams.update({"figure.dpi": 100, "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False,
                     "axes.spines.right": False, "font.size": 10, "legend.frameon": False})  # fmt: skip


def save_figure(fig, stem: str | Path, formats: tuple[str, ...] = ("png", "svg")) -> list[Path]:
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = stem.with_suffix(f".{fmt}")
        fig.savefig(path, dpi=200 if fmt == "png" else None, bbox_inches="tight")
        paths.append(path)
    plt.close(fig)
    return paths


def _label(column: str) -> str:
    return LABELS.get(column, column)


def _unit_formatter(column: str) -> FuncFormatter | None:
    """Tick labels in engineering units (2 ms, 12 mJ) for columns in seconds or pJ; None for other columns."""
    if column.endswith("_s"):
        return FuncFormatter(lambda value, _: format_seconds(value))
    if column.endswith("_pj"):
        return FuncFormatter(lambda value, _: format_energy_pj(value))
    return None


def _series(df: pd.DataFrame, column: str) -> list:
    return sorted(df[column].dropna().unique(), key=str)


MAX_FRONT_LABELS = 12


def pareto_scatter(df: pd.DataFrame, x: str = "cycles", y: str = "accuracy", x_sense: str = "min",
                   y_sense: str = "max", label: str = "block", hue: str = "config", logx: bool = True,
                   title: str | None = None, chance: float | None = None):  # fmt: skip
    """All points (marker by ``label``, colour by ``hue``) with the 2-D front highlighted and labelled.

    The legend sits outside the axes (it never covers data); a log x axis that spans less than two decades
    labels its intermediate ticks too, so it never shows a single tick label.
    """
    data = df.dropna(subset=[x, y])
    data = data.assign(accelerator=accelerator_labels(data)) if "config" in data else data
    if hue == "config" and "config" in data and data["accelerator"].nunique() <= len(OKABE_ITO):
        hue = "accelerator"  # derived accelerators share the base name: their legend entries show the axis values
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    hues = _series(data, hue) if hue in data else [None]
    labels = _series(data, label) if label in data else [None]
    for i, h in enumerate(hues):
        for j, lab in enumerate(labels):
            sel = data
            if h is not None:
                sel = sel[sel[hue] == h]
            if lab is not None:
                sel = sel[sel[label] == lab]
            if len(sel):
                ax.scatter(sel[x], sel[y], s=28, color=OKABE_ITO[i % 8], marker=MARKERS[j % 8], alpha=0.75,
                           label=f"{h} / {lab}" if h is not None else str(lab))  # fmt: skip
    if chance is not None and np.isfinite(chance):  # an accuracy axis: what always guessing the majority gets
        ax.axhline(chance, color="grey", ls="--", lw=1, label=f"majority class ({chance:.3f})")
    front = data[pareto_mask(data, {x: x_sense, y: y_sense})].sort_values(x)
    ax.step(front[x], front[y], where="post", color="black", lw=1.2, label="Pareto front")
    # at most MAX_FRONT_LABELS labels, spread evenly along the front: more overlap unreadably (and a front of
    # thousands of points would take minutes to draw)
    labelled = front.iloc[np.unique(np.linspace(0, len(front) - 1, min(len(front), MAX_FRONT_LABELS)).round()
                                    .astype(int))] if len(front) else front  # fmt: skip
    # name the accelerator (with its axis values) where the front mixes several
    several = "accelerator" in front and front["accelerator"].nunique() > 1
    for k, (_, row) in enumerate(labelled.iterrows()):
        sparsity = row.get("target_sparsity", np.nan)
        text = f"{row.get(label, '')}" + (f" {sparsity:.0%}" if pd.notna(sparsity) else "")
        text = f"{text}\n{row['accelerator']}" if several else text
        # alternate above/below the step line: neighbours on a dense front would otherwise print over each other
        ax.annotate(text, (row[x], row[y]), textcoords="offset points", xytext=(4, 5 if k % 2 == 0 else -11),
                    fontsize=6.5)  # fmt: skip
    x_units, y_units = _unit_formatter(x), _unit_formatter(y)
    if logx:
        ax.set_xscale("log")
        low, high = ax.get_xlim()
        if np.log10(high / low) < 2:  # few decades: label 2, 3, 5 x 10^k too, or there may be one label
            ax.xaxis.set_minor_formatter(
                LogFormatterSciNotation(labelOnlyBase=False, minor_thresholds=(2, 0.5)) if x_units is None
                else FuncFormatter(lambda v, pos: x_units(v, pos) if f"{v:.1e}"[0] in "235" else ""))  # fmt: skip
            ax.tick_params(axis="x", which="minor", labelsize=7)
        else:
            ax.xaxis.set_minor_formatter(NullFormatter())  # labelled minor ticks collide over many decades
    if x_units is not None:
        ax.xaxis.set_major_formatter(x_units)
    if y_units is not None:
        ax.yaxis.set_major_formatter(y_units)
    ax.set_xlabel(_label(x))
    ax.set_ylabel(_label(y))
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return fig


def accuracy_vs_compression(df: pd.DataFrame, by: str = "block", accuracy: str = "accuracy", title: str | None = None):
    """The paper's main figure kind: accuracy against compression rate, one line per ``by`` value.

    Repeated runs of one setting (seeds, several accelerators) are averaged.
    """
    keys = [by, "granularity", "method", "target_sparsity"]
    data = (
        df.dropna(subset=[accuracy, "compression_rate"])
        .groupby(keys, as_index=False)[[accuracy, "compression_rate"]]
        .mean()
    )
    fig, ax = plt.subplots(figsize=(6.0, 4.2))
    dense = data[data["method"] == "dense"]
    for i, value in enumerate(v for v in _series(data, by) if v != "dense"):
        sel = data[data[by] == value].sort_values("compression_rate")
        sel = pd.concat([dense, sel]) if len(dense) else sel
        ax.plot(sel["compression_rate"], sel[accuracy], marker=MARKERS[i % 8], color=OKABE_ITO[i % 8], label=str(value))
    if len(dense):
        ax.axhline(float(dense[accuracy].mean()), color="grey", ls="--", lw=1, label="dense")
    ax.set_xlabel(_label("compression_rate"))
    ax.set_ylabel(_label(accuracy))
    ax.legend(title=title or by, fontsize=8)
    return fig


def metric_vs_block(df: pd.DataFrame, metric: str = "cycles", hue: str = "config", sparsity: float | None = None):
    """``metric`` against block size, one line per accelerator (at one target sparsity, default the largest)."""
    data = df[(df["block"] != "dense") & df[metric].notna()]
    sparsity = float(data["target_sparsity"].max()) if sparsity is None else sparsity
    data = data[np.isclose(data["target_sparsity"], sparsity)]
    if hue == "config" and "config" in data:  # one line per derived accelerator, not their mean
        data, hue = data.assign(accelerator=accelerator_labels(data)), "accelerator"
    blocks = sorted(data["block"].unique(), key=lambda b: [int(v) for v in str(b).split("x")])
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    for i, h in enumerate(_series(data, hue)):
        sel = data[data[hue] == h].groupby("block")[metric].mean().reindex(blocks)
        ax.plot(range(len(blocks)), sel.to_numpy(), marker=MARKERS[i % 8], color=OKABE_ITO[i % 8], label=str(h))
    ax.set_xticks(range(len(blocks)), blocks)
    ax.set_xlabel("block size (rows x cols)")
    ax.set_ylabel(_label(metric))
    if metric in ("cycles", "energy_pj", "latency_s"):
        ax.set_yscale("log")
    if _unit_formatter(metric) is not None:
        ax.yaxis.set_major_formatter(_unit_formatter(metric))
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_title(f"target sparsity {sparsity:.0%}", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the axes: many accelerators
    return fig


# op name suffix -> the group a layer plot stacks it in (one colour each, in this order)
OP_GROUPS = {"q": "Q/K/V projections", "k": "Q/K/V projections", "v": "Q/K/V projections",
             "scores": "attention products (QK^T, PV)", "context": "attention products (QK^T, PV)",
             "softmax": "softmax", "attn_out": "attention output", "ffn_in": "FFN", "ffn_out": "FFN", "gelu": "GELU",
             "attn_residual": "residual + LayerNorm", "attn_layernorm": "residual + LayerNorm",
             "ffn_residual": "residual + LayerNorm", "ffn_layernorm": "residual + LayerNorm"}  # fmt: skip


def layer_group_table(ops: pd.DataFrame, metric: str = "cycles") -> pd.DataFrame:
    """``metric`` (from ``SimResult.ops``) summed per encoder layer (rows) and op type (columns, stack order)."""
    data = ops.copy()
    data["group"] = data["op"].str.split(".").str[-1].map(OP_GROUPS).fillna("other")
    order = list(dict.fromkeys([*OP_GROUPS.values(), "other"]))
    table = data.pivot_table(index="layer", columns="group", values=metric, aggfunc="sum").fillna(0)
    return table[[g for g in order if g in table.columns]]


def majority_accuracy(table: pd.DataFrame) -> float | None:
    """The table's data set's majority-class dev accuracy (a chance line); None when it cannot be read."""
    from pruning.data import load_dataset

    try:
        return load_dataset(str(table["data"].iloc[0])).majority_accuracy()
    except (ValueError, OSError, KeyError, IndexError):  # e.g. glue:TASK without its directory: no line
        return None


def layer_breakdown(ops: pd.DataFrame, metric: str = "cycles"):
    """Per-layer stacked bars of ``metric`` (from ``SimResult.ops``), grouped by op type, one legend outside."""
    table = layer_group_table(ops, metric)
    fig, ax = plt.subplots(figsize=(7.0, 4.0))
    bottom = np.zeros(len(table))
    for i, group in enumerate(table.columns):
        ax.bar(table.index, table[group], bottom=bottom, color=OKABE_ITO[i % len(OKABE_ITO)], label=group)
        bottom += table[group].to_numpy()
    ax.set_xlabel("encoder layer")
    ax.set_ylabel(_label(metric))
    if _unit_formatter(metric) is not None:
        ax.yaxis.set_major_formatter(_unit_formatter(metric))
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles[::-1], labels[::-1], fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0),
              frameon=False)  # top of the stack first, beside the bars so it never covers them  # fmt: skip
    return fig


def mask_heatmap(group_mask, title: str = ""):
    """Kept (dark) / pruned (light) groups of one layer's block mask."""
    grid = np.asarray(group_mask, dtype=float)
    fig, ax = plt.subplots(figsize=(6.0, 6.0 * min(3.0, grid.shape[0] / max(grid.shape[1], 1))))
    ax.imshow(grid, cmap="Greys", interpolation="nearest", aspect="auto", vmin=0, vmax=1)
    ax.set_xlabel("group column (input features)")
    ax.set_ylabel("group row (output features)")
    ax.grid(False)
    ax.set_title(title or f"kept {grid.mean():.1%} of groups", fontsize=9)
    return fig
