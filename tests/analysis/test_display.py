"""People-facing numbers and names: engineering units, accelerator labels with their hardware-axis values,
plot ticks and legends, report headings and the CLI's printed fronts (hand-worked values throughout)."""

import json

import pandas as pd
import pytest

from analysis.display import accelerator_label, accelerator_labels, point_columns, readable_table
from analysis.plots import metric_vs_block, pareto_scatter
from analysis.report import point_heading
from bsp_common.units import format_bytes, format_energy_pj, format_seconds, readable_value


@pytest.mark.parametrize(("value", "text"), [(0.00206, "2.06 ms"), (4e-6, "4 µs"), (1.5, "1.5 s"), (999e-6, "999 µs"),
                                             (0.0, "0 s"), (2.5e-9, "2.5 ns")])  # fmt: skip
def test_seconds_take_the_prefix_that_leaves_one_to_999(value, text):
    assert format_seconds(value) == text


def test_energy_in_pj_is_shown_in_joules_and_sizes_in_binary_units():
    assert format_energy_pj(1.211e10) == "12.1 mJ"  # 1e9 pJ = 1 mJ
    assert format_energy_pj(5e6) == "5 µJ" and format_energy_pj(750) == "750 pJ"
    assert format_bytes(1536) == "1.5 KiB" and format_bytes(3 * 2**20) == "3 MiB" and format_bytes(100) == "100 B"
    assert readable_value("dram_bytes", 2**30) == "1 GiB" and readable_value("cycles", 2064048) == "2,064,048"
    assert readable_value("accuracy", float("nan")) == "" and readable_value("config", "a") == "a"


def _hw_table():
    rows = []
    for (rows_, cols), clock in [((32, 32), 500), ((64, 128), 500), ((32, 32), 1000), ((64, 128), 1000)]:
        overrides = {"clock_mhz": clock, "pe_array.rows": rows_, "pe_array.cols": cols}
        for block in ("16x16", "32x32"):
            cycles = 1e6 * 32 / rows_ * (1.2 if block == "16x16" else 1.0)
            rows.append({"config": "asic-32x32-int8", "hw_overrides": json.dumps(overrides), **overrides,
                         "block": block, "granularity": "block", "method": "score", "target_sparsity": 0.5,
                         "seq_len": 128, "batch": 1, "cycles": cycles, "latency_s": cycles / (clock * 1e6),
                         "energy_pj": 1e10 * rows_ / 32})  # fmt: skip
    return pd.DataFrame(rows)


def test_accelerator_labels_tell_derived_configs_apart():
    table = _hw_table()
    labels = accelerator_labels(table)
    assert labels.nunique() == 4  # one base name, four derived accelerators
    assert labels.iloc[2] == "asic-32x32-int8 500 MHz 64x128"
    assert accelerator_label({"config": "fpga-zcu102", "hw_overrides": '{"buffers.weight_bytes": "128 KiB"}'}) == \
        "fpga-zcu102 weight 128 KiB"
    plain = pd.DataFrame({"config": ["a", "b"], "hw_overrides": ["{}", "{}"]})
    assert list(accelerator_labels(plain)) == ["a", "b"]


def test_printed_fronts_show_the_columns_that_vary_in_engineering_units():
    table = _hw_table()
    columns = point_columns(table, ["latency_s", "energy_pj"])
    # the axes and the block vary; granularity, method, sparsity, seq_len and batch do not
    assert columns == ["config", "clock_mhz", "pe_array.rows", "pe_array.cols", "block", "latency_s", "energy_pj"]
    shown = readable_table(table[columns])
    assert list(shown.columns) == [*columns[:-2], "latency", "energy"]
    assert shown["latency"].iloc[0] == "2.4 ms"  # 1.2e6 cycles at 500 MHz
    assert shown["energy"].iloc[2] == "20 mJ"  # 2e10 pJ
    one_row_front = table.iloc[[1]]  # alone, nothing varies; across the whole table the axes and block do
    assert point_columns(one_row_front, ["latency_s"]) == ["config", "latency_s"]
    assert point_columns(one_row_front, ["latency_s"], among=table) == [*columns[:-1]]


def test_plots_colour_each_derived_accelerator_and_label_ticks_with_units():
    table = _hw_table()
    fig = pareto_scatter(table, x="latency_s", y="energy_pj", y_sense="min")
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "asic-32x32-int8 1000 MHz 64x128 / 32x32" in legend and len(legend) == 8 + 1  # 4 x 2 + the front
    fig.canvas.draw()
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels() + fig.axes[0].get_yticklabels() if t.get_text()]
    assert any(t.endswith(" ms") or t.endswith(" µs") for t in ticks) and any(t.endswith("mJ") for t in ticks)
    lines = metric_vs_block(table, "cycles", sparsity=0.5).axes[0].get_lines()
    # one line per derived accelerator; before, the four were averaged into one line per base config
    assert len(lines) == 4
    by_label = {line.get_label(): list(line.get_ydata()) for line in lines}
    assert by_label["asic-32x32-int8 500 MHz 64x128"] == [0.6e6, 0.5e6]  # 16x16, 32x32


def test_report_headings_name_the_accelerator_and_differ_per_point():
    table = _hw_table()
    headings = {point_heading(row) for _, row in table.iterrows()}
    assert len(headings) == len(table)
    assert point_heading(table.iloc[3]) == "asic-32x32-int8 500 MHz 64x128 / 32x32 50% (seq 128)"
