"""``bsp report``: one self-contained interactive HTML page (plotly) from a sweep's results table.

Sections: the Pareto front (latency in seconds when the table has it, accuracy or energy on the other axis;
one trace per accelerator x block -- click a legend entry to hide it, double-click to isolate it; hover shows
every column of the point), accuracy vs compression per block, and for a few selected front points (the
knee and the two ends) the per-layer cycle and energy breakdown -- re-simulated from the point's own masks
and accelerator -- and the block masks of its first encoder layer.

The page embeds plotly.js (no network needed to open it) and records on ``<body>`` what it drew
(``data-plots``, ``data-traces``, ``data-errors``), which the tests read back from headless Chromium.

>>> import pandas as pd
>>> table = pd.DataFrame({"config": ["a", "a", "b"], "block": ["16x16"] * 3, "latency_s": [1e-3, 2e-3, 4e-4],
...                       "energy_pj": [5.0, 3.0, 9.0]})
>>> fig = pareto_figure(table, x="latency_s", y="energy_pj", y_sense="min")
>>> [trace.name for trace in fig.data]
['a / 16x16', 'b / 16x16', 'Pareto front']
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.display import accelerator_label, accelerator_labels
from analysis.pareto import FRONT_OBJECTIVES, knee_point, pareto_mask
from analysis.plots import LABELS, OKABE_ITO, layer_group_table, majority_accuracy
from analysis.space import ACCURACY_NOTES
from analysis.store import read_table, table_file
from bsp_common.outputs import check_output_file, write_text_atomic

__all__ = ["accuracy_figure", "build_report", "detail_points", "pareto_figure", "point_heading"]

MARKERS = ["circle", "square", "triangle-up", "diamond", "triangle-down", "cross", "x", "star"]
_STATUS_SCRIPT = """<script>
window.__reportErrors = [];
window.addEventListener("error", function (e) { window.__reportErrors.push(String(e.message)); });
window.addEventListener("load", function () {
  setTimeout(function () {
    var plots = document.querySelectorAll(".js-plotly-plot"), traces = 0, drawn = 0;
    plots.forEach(function (gd) {
      traces += (gd.data || []).length;
      if (gd._fullLayout && gd.querySelector(".main-svg")) { drawn += 1; }
    });
    document.body.dataset.plots = String(drawn);
    document.body.dataset.traces = String(traces);
    document.body.dataset.errors = JSON.stringify(window.__reportErrors);
  }, 0);
});
</script>"""


def _hover(table: pd.DataFrame) -> list[str]:
    """Every column of every row, one ``name: value`` line each (the hover text)."""
    columns = list(table.columns)
    return ["<br>".join(f"{c}: {html.escape(_short(v))}" for c, v in zip(columns, row, strict=True))
            for row in table.itertuples(index=False)]  # fmt: skip


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def pareto_figure(table: pd.DataFrame, x: str, y: str, x_sense: str = "min", y_sense: str = "max",
                  title: str = "", chance: float | None = None):  # fmt: skip
    """Interactive front: one trace per ``config / block`` (legend-toggled), the front as a step line."""
    import plotly.graph_objects as go

    data = table.dropna(subset=[x, y])
    if "config" in data:  # derived accelerators share the base name: traces carry their axis values (up to 8)
        labels = accelerator_labels(data)
        data = data.assign(config=labels) if labels.nunique() <= len(OKABE_ITO) else data
    fig = go.Figure()
    configs = list(dict.fromkeys(data["config"])) if "config" in data else [None]
    blocks = list(dict.fromkeys(data["block"])) if "block" in data else [None]
    scale_x, scale_y = _axis_scale(x), _axis_scale(y)
    for i, config in enumerate(configs):
        for j, block in enumerate(blocks):
            sel = data[((data["config"] == config) if config is not None else True)
                       & ((data["block"] == block) if block is not None else True)]  # fmt: skip
            if not len(sel):
                continue
            fig.add_scatter(x=sel[x] * scale_x[0], y=sel[y] * scale_y[0], mode="markers", name=f"{config} / {block}",
                            legendgroup=str(config), hovertext=_hover(sel), hoverinfo="text",
                            marker={"color": OKABE_ITO[i % 8], "symbol": MARKERS[j % 8], "size": 8, "opacity": 0.8})
    front = data[pareto_mask(data, {x: x_sense, y: y_sense})].sort_values(x)
    fig.add_scatter(x=front[x] * scale_x[0], y=front[y] * scale_y[0], mode="lines", name="Pareto front",
                    line={"color": "black", "shape": "hv", "width": 1.5}, hoverinfo="skip")  # fmt: skip
    if chance is not None and np.isfinite(chance):
        fig.add_hline(y=chance, line_dash="dash", line_color="grey", annotation_text=f"majority class ({chance:.3f})")
    spans_decades = len(data) and data[x].min() > 0 and data[x].max() / data[x].min() > 10
    fig.update_layout(title=title, xaxis_title=LABELS.get(x, x), yaxis_title=LABELS.get(y, y),
                      xaxis_type="log" if spans_decades else "linear", legend_title_text="accelerator / block",
                      template="plotly_white", height=520)  # fmt: skip
    fig.update_xaxes(**scale_x[1])
    fig.update_yaxes(**scale_y[1])
    return fig


def _axis_scale(column: str) -> tuple[float, dict]:
    """(factor, axis settings) that show a seconds or pJ column with SI prefixes (2 ms, 12 mJ) on a plotly axis."""
    if column.endswith("_s"):
        return 1.0, {"tickformat": "~s", "ticksuffix": "s"}
    if column.endswith("_pj"):
        return 1e-12, {"tickformat": "~s", "ticksuffix": "J"}
    return 1.0, {}


def accuracy_figure(table: pd.DataFrame):
    """Accuracy against compression rate, one line per block x granularity x method (mean over accelerators)."""
    import plotly.graph_objects as go

    keys = [k for k in ("block", "granularity", "method") if k in table]
    data = table.dropna(subset=["accuracy", "compression_rate"]).groupby([*keys, "target_sparsity"], as_index=False)[
        ["accuracy", "compression_rate"]].mean()  # fmt: skip
    fig = go.Figure()
    for i, (key, sel) in enumerate(data.groupby(keys)):
        sel = sel.sort_values("compression_rate")
        fig.add_scatter(x=sel["compression_rate"], y=sel["accuracy"], mode="lines+markers",
                        name=" ".join(map(str, key if isinstance(key, tuple) else (key,))),
                        marker={"color": OKABE_ITO[i % 8]}, line={"color": OKABE_ITO[i % 8]})  # fmt: skip
    fig.update_layout(title="Accuracy vs compression of the pruned layers", xaxis_title="compression rate (x)",
                      yaxis_title="dev accuracy", template="plotly_white", height=420)  # fmt: skip
    return fig


def detail_points(table: pd.DataFrame, x: str, y: str, x_sense: str, y_sense: str, limit: int = 3) -> pd.DataFrame:
    """Front points worth a closer look: the knee, then the fastest and the best-``y`` ends (distinct)."""
    data = table.dropna(subset=[x, y])
    objectives = {x: x_sense, y: y_sense}
    front = data[pareto_mask(data, objectives)]
    if not len(front):
        return front
    picks = [knee_point(front, objectives), front[x].idxmin() if x_sense == "min" else front[x].idxmax(),
             front[y].idxmax() if y_sense == "max" else front[y].idxmin()]  # fmt: skip
    return front.loc[list(dict.fromkeys(picks))[:limit]]


def _resolve(value, base: Path, column: str = "hf_config_dir") -> str | None:
    """A stored path (relative to the table's directory) or, for the model column, a model name, as something
    loadable; a mask file that is not where the table says is named as such."""
    if not isinstance(value, str) or not value:
        return None
    path = base / value
    if path.exists():
        return str(path)
    if column == "masks_path":
        raise FileNotFoundError(f"results: masks_path {value!r} is not under {base} (the table's directory): the "
                                "masks live in the sweep directory's cache -- report the table where the sweep "
                                "wrote it (or the sweep directory), or use --detail 0")  # fmt: skip
    from pruning.models import resolve_model_path

    return str(resolve_model_path(value))


def _whole(point: pd.Series, column: str, default=None) -> int:
    """A shape column of a table row as a positive int; a clear error naming the row otherwise."""
    value = point.get(column, default)
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not (math.isfinite(number) and number.is_integer() and number >= 1):
        raise ValueError(f"results row {point.name}: column {column!r} must be a positive whole number to simulate "
                         f"the point again, got {value!r}")  # fmt: skip
    return int(number)


def _point_figures(point: pd.Series, base: Path) -> tuple[str, list]:
    """Per-layer cycles/energy of ``point`` (re-simulated) and its first layer's block masks."""
    from plotly.subplots import make_subplots

    from analysis.sweep import pruned_workload
    from hwsim import simulate
    from hwsim.config import derive_config

    masks_path = _resolve(point.get("masks_path"), base, "masks_path")
    workload = pruned_workload(_resolve(point["hf_config_dir"], base), masks_path, _whole(point, "batch", 1),
                               _whole(point, "seq_len"))  # fmt: skip
    config = derive_config(point["config"], json.loads(point.get("hw_overrides") or "{}"))
    ops = simulate(config, workload).ops
    name = point_heading(point)
    bars = make_subplots(rows=1, cols=2, subplot_titles=("cycles per layer", "energy per layer"))
    for column, metric in ((1, "cycles"), (2, "energy_pj")):
        groups = layer_group_table(ops, metric)
        scale, axis = _axis_scale(metric)
        for i, group in enumerate(groups.columns):
            bars.add_bar(x=groups.index, y=groups[group] * scale, name=group, legendgroup=group,
                         showlegend=column == 1, marker_color=OKABE_ITO[i % 8], row=1, col=column)  # fmt: skip
        bars.update_yaxes(row=1, col=column, **axis)
    bars.update_layout(barmode="stack", title=f"{name}: per-layer breakdown", template="plotly_white", height=380)
    bars.update_xaxes(title_text="encoder layer")
    figures = [bars]
    if masks_path:
        from pruning.masks import load_masks

        first = {k: m for k, m in load_masks(masks_path).items() if ".0." in k}
        if first:
            titles = [k.split(".0.", 1)[1].removesuffix(".weight") for k in first]
            heat = make_subplots(rows=1, cols=len(first), subplot_titles=titles)
            for i, (key, mask) in enumerate(first.items(), start=1):
                grid = mask.group_mask.numpy().astype(float)
                heat.add_heatmap(z=grid, colorscale=[[0, "#f0f0f0"], [1, "#202020"]], showscale=False, zmin=0,
                                 zmax=1, name=key, row=1, col=i)  # fmt: skip
                heat.update_yaxes(autorange="reversed", row=1, col=i)
            heat.update_layout(title=f"{name}: kept groups of layer 0 (dark = kept)", template="plotly_white",
                               height=360)  # fmt: skip
            figures.append(heat)
    return name, figures


def point_heading(point) -> str:
    """What a front point's sections are headed with: its accelerator with the hardware-axis values, block,
    granularity and method where they are not the defaults, sparsity, and the shape when not batch 1.

    >>> point_heading(pd.Series({"config": "asic-32x32-int8", "hw_overrides": '{"pe_array.rows": 64, '
    ...                          '"pe_array.cols": 128}', "block": "16x16", "granularity": "block",
    ...                          "method": "score", "target_sparsity": 0.75, "seq_len": 128, "batch": 1}))
    'asic-32x32-int8 64x128 / 16x16 75% (seq 128)'
    """
    parts = [str(point.get("block", ""))]
    parts += [str(point[k]) for k, default in (("granularity", "block"), ("method", "score"))
              if k in point and pd.notna(point[k]) and point[k] not in (default, "none", "dense")]  # fmt: skip
    sparsity = point.get("target_sparsity", 0)
    shape = f"seq {point['seq_len']}" if "seq_len" in point and pd.notna(point["seq_len"]) else ""
    if "batch" in point and pd.notna(point["batch"]) and point["batch"] != 1:
        shape += f", batch {point['batch']}"
    return (f"{accelerator_label(point)} / {' '.join(parts)} {sparsity:.0%}" + (f" ({shape})" if shape else ""))


def build_report(results: str | Path, out: str | Path, detail: int = 3, overwrite: bool = False) -> Path:
    """Write the interactive report of a results table (``.parquet``/``.csv``, or the sweep directory holding it)
    to ``out`` (an ``.html`` file).

    ``detail`` front points get the per-layer and mask sections (0: none; they re-simulate and need the
    masks the sweep cached). An existing ``out`` is replaced only with ``overwrite`` (atomically), and never
    when it is the results table itself.
    """
    import plotly.io as pio

    results, out = table_file(results), Path(out)
    if out.expanduser().resolve() == results.expanduser().resolve():
        raise ValueError(f"--out: {str(out)!r} is the results table itself; give another file name")
    check_output_file(out, overwrite=overwrite)
    table = read_table(results)
    if "error" in table:
        table = table[table["error"].isna()]
    if "feasible" in table:
        table = table[table["feasible"] != False]  # noqa: E712 -- NaN-safe
    x = next((c for c in ("latency_s", "cycles") if c in table and table[c].notna().any()), None)
    if x is None or not len(table):
        raise ValueError(f"results: {results} has no evaluated points with latency_s or cycles to report")
    y = next(c for c in ("accuracy", "energy_pj", "cycles") if c in table and table[c].notna().any() and c != x)
    y_sense = FRONT_OBJECTIVES.get(y, "min")
    source = ", ".join(table["accuracy_source"].dropna().unique()) if "accuracy_source" in table else "none"
    plotted = int(table[[x, y]].notna().all(axis=1).sum())  # the page counts what it draws
    unplotted = f" ({len(table) - plotted} without {y}, not plotted)" if plotted < len(table) else ""
    subtitle = (f"{table['model'].iloc[0]} on {table['data'].iloc[0]}; " if "model" in table else "") + (
        f"{plotted} points{unplotted}; accuracy: {ACCURACY_NOTES.get(source, source)}")  # fmt: skip
    chance = majority_accuracy(table) if y == "accuracy" else None
    figures = [("Pareto front", pareto_figure(table, x, y, y_sense=y_sense, title=subtitle, chance=chance))]
    if "area_mm2" in table and table["area_mm2"].notna().any() and x != "area_mm2":
        asic = table[table["area_mm2"].notna()]  # FPGA rows report resources, not area
        figures.append(("Latency vs area (ASIC designs)",
                        pareto_figure(asic, x, "area_mm2", y_sense="min", title=f"{len(asic)} ASIC points")))
    if y == "accuracy" and "compression_rate" in table:
        figures.append(("Accuracy vs compression", accuracy_figure(table)))
    if detail > 0 and "hf_config_dir" in table:
        seen: dict[str, int] = {}
        for _, point in detail_points(table, x, y, "min", y_sense, detail).iterrows():
            name, point_figures = _point_figures(point, results.parent)
            seen[name] = seen.get(name, 0) + 1  # points that differ only in a column the heading omits
            name = name if seen[name] == 1 else f"{name} (#{seen[name]})"
            kinds = ("per-layer cycles and energy", "kept groups of layer 0")
            figures += [(f"Front point: {name}: {kind}", fig) for kind, fig in zip(kinds, point_figures, strict=False)]
    parts = []
    for i, (heading, fig) in enumerate(figures):
        div = pio.to_html(fig, full_html=False, include_plotlyjs="inline" if i == 0 else False,
                          config={"responsive": True, "displaylogo": False})  # fmt: skip
        parts.append(f"<h2>{html.escape(heading)}</h2>\n{div}")
    page = (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>bsp report: {html.escape(results.name)}"
            f"</title>\n<style>body{{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}}</style>"
            f"\n{_STATUS_SCRIPT}</head>\n<body>\n<h1>Design-space report</h1>\n<p>{html.escape(subtitle)}; "
            f"table: {html.escape(str(results))}</p>\n" + "\n".join(parts) + "\n</body></html>\n")  # fmt: skip
    write_text_atomic(out, page)
    return out
