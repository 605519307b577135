import numpy as np
import pandas as pd
import pytest
from conftest import tiny_config

from analysis.plots import (
    accuracy_vs_compression,
    layer_breakdown,
    mask_heatmap,
    metric_vs_block,
    pareto_scatter,
    save_figure,
)
from hwsim import build_workload, simulate


@pytest.fixture
def table():
    rows = [{"block": "dense", "granularity": "none", "method": "dense", "target_sparsity": 0.0, "config": c,
             "accuracy": 0.8, "compression_rate": 1.0, "cycles": 1000.0, "energy_pj": 5e6, "utilization": 0.5}
            for c in ("a", "b")]  # fmt: skip
    for block in ("8x8", "16x16"):
        for sparsity in (0.5, 0.75):
            for config in ("a", "b"):
                rows.append({"block": block, "granularity": "block", "method": "magnitude", "config": config,
                             "target_sparsity": sparsity, "accuracy": 0.8 - sparsity / 5,
                             "compression_rate": 1 / (1 - sparsity), "cycles": 1000 * (1 - sparsity),
                             "energy_pj": 5e6 * (1 - sparsity), "utilization": 0.4})  # fmt: skip
    return pd.DataFrame(rows)


def test_figures_have_units_and_are_written(table, tmp_path):
    figures = {
        "pareto": pareto_scatter(table, x="cycles", y="accuracy"),
        "acc": accuracy_vs_compression(table),
        "cycles": metric_vs_block(table, "cycles"),
        "util": metric_vs_block(table, "utilization"),
        "heat": mask_heatmap(np.eye(8, dtype=bool)),
        "layers": layer_breakdown(simulate("asic-16x16-int8", build_workload(tiny_config(), seq_len=8)).ops),
    }
    for name, fig in figures.items():
        ax = fig.axes[0]
        assert ax.get_xlabel() and ax.get_ylabel()
        paths = save_figure(fig, tmp_path / name)
        assert [p.suffix for p in paths] == [".png", ".svg"]
        assert all(p.stat().st_size > 1000 for p in paths)
    assert figures["pareto"].axes[0].get_xlabel() == "latency (cycles)"
    # accuracy vs compression: one line per block size, each starting at the dense point
    lines = [line for line in figures["acc"].axes[0].get_lines() if line.get_label() in ("8x8", "16x16")]
    assert len(lines) == 2
    assert all(line.get_xdata()[0] == 1.0 for line in lines)


def test_majority_line_on_accuracy_plots():
    from pruning.data import Split, TextDataset

    data = TextDataset("toy", ["a", "b"], Split(["x"], [0]), Split(["p", "q", "r"], [1, 0, 1]), Split(["s"], [0]))
    assert data.majority_accuracy() == pytest.approx(2 / 3)
    table = pd.DataFrame({"latency_s": [1e-3, 2e-3], "accuracy": [0.6, 0.7], "config": ["a", "a"],
                          "block": ["16x16", "dense"], "target_sparsity": [0.5, 0.0]})  # fmt: skip
    fig = pareto_scatter(table, x="latency_s", y="accuracy", chance=2 / 3)
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert "majority class (0.667)" in labels


def test_a_front_of_thousands_gets_a_dozen_labels_spread_along_it():
    import numpy as np
    import pandas as pd

    from analysis.plots import MAX_FRONT_LABELS, pareto_scatter

    x = np.arange(1.0, 5001.0)
    table = pd.DataFrame({"latency_s": x, "energy_pj": x[::-1].copy(), "block": "16x16", "config": "a"})
    fig = pareto_scatter(table, x="latency_s", y="energy_pj", x_sense="min", y_sense="min")
    labels = [t for t in fig.axes[0].texts]
    assert len(labels) == MAX_FRONT_LABELS
    xs = sorted(t.xy[0] for t in labels)
    assert xs[0] == 1.0 and xs[-1] == 5000.0  # both ends of the front are labelled
