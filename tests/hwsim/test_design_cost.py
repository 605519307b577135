"""Area, static power, SRAM energy and node scaling (hwsim.tech, hwsim.area, hwsim.design_cost) against the
cited figures and hand-worked sums."""

import itertools

import numpy as np
import pandas as pd
import pytest
from helpers import small_config
from transformers import BertConfig

from analysis.pareto import default_objectives, pareto_front
from analysis.space import SweepSpace
from hwsim import build_workload, load_config, simulate
from hwsim.config import ConfigError, derive_config
from hwsim.design_cost import pinned_dependents
from hwsim.tech import area_scale, energy_scale

# Stillmaker & Baas factors from 45 nm as tabulated (area row; energy polynomials evaluated by hand below)
S_AND_B_AREA_FROM_45 = {130: 6.4, 90: 2.8, 65: 1.5, 32: 0.46, 20: 0.21, 16: 0.19, 14: 0.17, 10: 0.1, 7: 0.059}


@pytest.mark.parametrize(("node", "factor"), sorted(S_AND_B_AREA_FROM_45.items()))
def test_area_scaling_reproduces_the_papers_table(node, factor):
    assert area_scale(45, node) == pytest.approx(factor)
    assert area_scale(node, 45) == pytest.approx(1 / factor)


def test_energy_scaling_reproduces_the_cited_factors():
    # cost-anchors / Stillmaker & Baas: 45 -> 7 nm at 0.8 V: 0.094; 45 -> 16 nm at 0.8 V 0.174, at 0.9 V 0.187
    assert energy_scale(45, 7, 0.8, 0.8) == pytest.approx(0.094, abs=5e-4)
    assert energy_scale(45, 16, 0.8, 0.8) == pytest.approx(0.174, abs=5e-4)
    assert energy_scale(45, 16, 0.9, 0.9) == pytest.approx(0.187, abs=5e-4)
    # the 45 nm polynomial by hand: E(V) = 1.103 V² - 0.362 V + 0.2767
    by_hand = (1.103 * 0.7**2 - 0.362 * 0.7 + 0.2767) / (1.103 * 0.9**2 - 0.362 * 0.9 + 0.2767)
    assert energy_scale(45, 45, 0.9, 0.7) == pytest.approx(by_hand)


def test_untabulated_nodes_interpolate_between_their_neighbours():
    assert area_scale(45, 20) < area_scale(45, 28) < area_scale(45, 32)
    assert energy_scale(45, 20, 0.9, 0.9) < energy_scale(45, 28, 0.9, 0.9) < energy_scale(45, 32, 0.9, 0.9)
    assert area_scale(45, 28) == pytest.approx(0.37, abs=0.01)  # cost-anchors: 0.37 (log-linear)


def test_area_of_a_small_array_is_the_sum_of_its_cited_parts():
    """4x4 ws int8 (acc 32), no overlap, no pipeline, three 8 KiB buffers, at 40 nm (the figures' own node)."""
    config = derive_config(small_config(weight_bytes=8192, input_bytes=8192, output_bytes=8192),
                           {"technology.node_nm": 40.0})  # fmt: skip
    mult = 6350 * 8 * 8 / 32**2  # Aladdin 32x32 multiplier, quadratic in width
    pe = mult + 278 + (8 + 8 + 32) * 5.98  # adder 32 b; weight register, passing input and psum registers
    decoder = 495.5 + 71 + 2 * 16 * 5.98  # counter, comparator, two 16-bit metadata registers
    lanes = 4 * (6350 + 278 + 4 * 32 * 5.98)  # one lane per column
    sram = 3 * 60965.6  # CACTI 8 KiB at 40 nm
    cost = config.cost
    assert cost.area_mm2 == pytest.approx((16 * pe + decoder + lanes + sram) * 1e-6)
    assert cost.area_breakdown_mm2["mac"] == pytest.approx(16 * (mult + 278) * 1e-6)
    # leakage: 12.4 mW/mm² x every component's area at 40 nm (no scaling at the figures' own node)
    density = (80 + 2.4) * 1e-3 / ((6350 + 278) * 1e-6)
    assert cost.static_power_mw == pytest.approx(density * cost.area_mm2)


def test_shadow_registers_and_pipeline_stages_add_area():
    base = small_config()
    overlap = small_config(microarch={"fold_overlap": "full", "mult_stages": 2, "acc_stages": 1})
    extra = base.n_pes * (8 + 2 * 16) + 4 * 32  # shadow weight, two product registers per PE, edge registers
    added = overlap.cost.area_breakdown_mm2["pe_registers"] - base.cost.area_breakdown_mm2["pe_registers"]
    assert added == pytest.approx(extra * 5.98 * area_scale(40, 45) * 1e-6)


def test_static_power_and_lanes_follow_the_array_when_the_file_does_not_fix_them():
    small = derive_config("asic-32x32-int8", {"pe_array.rows": 32, "pe_array.cols": 32})
    large = derive_config("asic-32x32-int8", {"pe_array.rows": 128, "pe_array.cols": 128})
    assert large.cost.area_breakdown_mm2["mac"] == pytest.approx(16 * small.cost.area_breakdown_mm2["mac"])
    assert large.cost.static_power_mw / small.cost.static_power_mw == pytest.approx(
        large.cost.area_mm2 / small.cost.area_mm2)  # leakage is linear in area at one node
    assert (small.vector_lanes, large.vector_lanes) == (32, 128)
    pinned = derive_config("asic-32x32-int8", {"energy.static_power_mw": 30.0, "vector_unit.lanes": 16,
                                               "pe_array.cols": 64})  # fmt: skip
    assert pinned.cost.static_power_mw == 30.0 and not pinned.cost.static_power_derived
    assert pinned.vector_lanes == 16


def test_sram_energy_is_the_horowitz_fit_monotone_in_size():
    sizes = np.array([8192, 32768, 1 << 20])
    horowitz = np.array([10.0, 20.0, 100.0])
    slope, intercept = np.polyfit(np.log(sizes), np.log(horowitz), 1)  # independent least-squares fit

    def per_64bit(size):
        return derive_config("asic-32x32-int8", {"buffers.weight_bytes": int(size)}).cost.sram_pj_per_byte["weight"] * 8

    for size, published in zip(sizes, horowitz, strict=True):
        assert per_64bit(size) == pytest.approx(np.exp(intercept) * size**slope)
        assert per_64bit(size) == pytest.approx(published, rel=0.025)
    grid = [per_64bit(s) for s in np.geomspace(1024, 1 << 30, 25).astype(int)]
    assert all(b > a for a, b in itertools.pairwise(grid))  # no clamp at the table's ends


def test_a_smaller_node_scales_area_and_dynamic_energy_but_not_dram():
    at45 = load_config("asic-32x32-int8")
    at16 = derive_config(at45, {"technology.node_nm": 16.0})
    assert at16.cost.mac_pj == pytest.approx(at45.energy.mac_pj * energy_scale(45, 16, 0.9, 0.9))
    assert at16.cost.dram_pj_per_byte == at45.cost.dram_pj_per_byte == 2000 / 8
    assert at16.cost.area_mm2 == pytest.approx(at45.cost.area_mm2 * 0.19)
    assert at16.cost.sram_pj_per_byte["weight"] == pytest.approx(
        at45.cost.sram_pj_per_byte["weight"] * energy_scale(45, 16, 0.9, 0.9))


def test_a_voltage_frequency_curve_makes_a_clock_sweep_change_dynamic_energy():
    curve = {"technology.vf_curve_mhz_v": {500: 0.7, 1000: 0.9}}
    slow = derive_config("asic-32x32-int8", {**curve, "clock_mhz": 500})
    fast = derive_config("asic-32x32-int8", {**curve, "clock_mhz": 1000})
    e = lambda v: 1.103 * v**2 - 0.362 * v + 0.2767  # noqa: E731 -- the 45 nm polynomial
    assert (slow.cost.vdd_v, fast.cost.vdd_v) == (pytest.approx(0.7), pytest.approx(0.9))
    assert slow.cost.mac_pj / fast.cost.mac_pj == pytest.approx(e(0.7) / e(0.9))
    # leakage does not follow the supply (Accelergy's rule): same static power at both clocks
    assert slow.cost.static_power_mw == pytest.approx(fast.cost.static_power_mw)


@pytest.mark.parametrize(("overrides", "field", "words"), [
    ({"technology.vf_curve_mhz_v": {500: 0.7, 800: 0.8}}, "<top>", "outside the curve"),
    ({"technology.vdd_v": 0.8, "technology.vf_curve_mhz_v": {500: 0.7, 1000: 0.9}}, "technology", "not both"),
    ({"technology.node_nm": 5.0}, "technology.node_nm", "greater than or equal to 7"),
    ({"technology.vdd_v": 5.0}, "technology.vdd_v", "less than or equal to 2"),
    ({"dram.phy_area_mm2": -1.0}, "dram.phy_area_mm2", "greater than or equal to 0"),
])  # fmt: skip
def test_bad_technology_fields_are_named(overrides, field, words):
    with pytest.raises(ConfigError) as info:
        derive_config("asic-32x32-int8", overrides)
    messages = " ".join(f"{path}: {message}" for path, message in info.value.errors)
    assert words in messages and (field == "<top>" or field in messages), messages


def test_fpga_reports_resources_checked_against_the_device_not_area():
    config = load_config("fpga-zcu102")
    assert config.cost.area_mm2 is None
    resources = config.cost.fpga_resources
    assert resources["dsp"] == 32 * 64 // 2  # int8 packs two MACs per DSP48E2
    assert resources["lut"] == 32 * 64 * 60
    # weight register twice (weights overlap), input + psum passing, two product registers; one edge stage
    assert resources["ff"] == 32 * 64 * (8 * 2 + 8 + 32 + 2 * 16) + 64 * 32
    with pytest.raises(ConfigError) as info:
        derive_config(config, {"fpga.ff": resources["ff"] - 1})
    assert "fpga.ff" in dict(info.value.errors)


def test_simulated_totals_carry_the_cost_and_static_energy_is_power_times_latency():
    hf = BertConfig(hidden_size=64, num_hidden_layers=1, num_attention_heads=2, intermediate_size=128)
    workload = build_workload(hf, seq_len=16)
    for name in ("asic-32x32-int8", "fpga-zcu102"):
        config = load_config(name)
        totals = simulate(config, workload).totals
        assert totals["area_mm2"] == config.cost.area_mm2 and totals["tech_node_nm"] == config.cost.node_nm
        assert totals["energy_leakage_pj"] == pytest.approx(config.cost.static_power_mw * 1e-3 * totals["latency_s"]
                                                            * 1e12)  # fmt: skip
        assert (totals["fpga_dsp"] is None) == (config.kind == "asic")


def test_a_front_over_array_size_is_not_won_by_the_largest_array():
    hf = BertConfig(hidden_size=128, num_hidden_layers=1, num_attention_heads=2, intermediate_size=256)
    workload = build_workload(hf, seq_len=32)
    rows = []
    for side in (8, 16, 32, 64, 128):
        config = derive_config("asic-32x32-int8", {"pe_array.rows": side, "pe_array.cols": side})
        rows.append({"config": config.name, "side": side, **simulate(config, workload).totals})
    table = pd.DataFrame(rows)
    objectives, notes = default_objectives(table)
    assert objectives == {"latency_s": "min", "energy_pj": "min", "area_mm2": "min"} and not notes
    front = pareto_front(table, objectives)
    assert 8 in set(front["side"]) and len(front) > 1  # the smallest array wins on area
    assert table.loc[table["side"].idxmax(), "area_mm2"] == table["area_mm2"].max()


def test_mixed_asic_and_fpga_tables_leave_area_out_of_the_default_front_with_a_note():
    table = pd.DataFrame({"latency_s": [1.0, 2.0], "energy_pj": [2.0, 1.0], "area_mm2": [3.0, None]})
    objectives, notes = default_objectives(table)
    assert "area_mm2" not in objectives and "1 of 2 rows" in notes[0]


def test_a_sweep_varying_sizes_of_a_file_that_fixes_static_power_says_so(tmp_path):
    path = tmp_path / "pinned.yaml"
    path.write_text(derive_config("asic-32x32-int8", {"energy.static_power_mw": 30.0}, name="pinned").to_yaml())
    space = SweepSpace(configs=[str(path), "asic-16x16-int8"], accuracy="none",
                       hardware_axes={"pe_array.rows,pe_array.cols": [[16, 16], [64, 64]]})  # fmt: skip
    notes = space.pinned_dependents()
    assert len(notes) == 1 and "energy.static_power_mw is fixed at 30 by pinned" in notes[0]
    assert "pe_array.rows, pe_array.cols" in notes[0]
    assert pinned_dependents(load_config("fpga-zcu102"), ["pe_array.rows"]) == []  # the device's static power
    clock_only = SweepSpace(configs=[str(path)], accuracy="none", hardware_axes={"clock_mhz": [500]})
    assert clock_only.pinned_dependents() == []  # leakage does not depend on the clock


def test_logic_area_factor_scales_logic_not_sram_nor_leakage():
    base = load_config("asic-32x32-int8")
    placed = derive_config(base, {"technology.logic_area_factor": 2.3})
    for component, value in base.cost.area_breakdown_mm2.items():
        factor = 2.3 if component in ("mac", "pe_registers", "index_decoder", "vector_unit") else 1.0
        assert placed.cost.area_breakdown_mm2[component] == pytest.approx(value * factor)
    assert placed.cost.static_power_mw == pytest.approx(base.cost.static_power_mw)


def test_the_docs_validation_table_is_what_the_model_computes():
    from pathlib import Path

    from hwsim.cost_validation import validation_table

    page = (Path(__file__).parents[2] / "docs/guides/costs.md").read_text()
    block = page.split("<!-- cost-validation-table -->")[1].split("<!-- /cost-validation-table -->")[0]
    documented = [[cell.strip() for cell in line.strip("|").split("|")] for line in block.strip().splitlines()[2:]]
    table = validation_table()
    assert len(documented) == len(table)
    for (design, quantity, published, model, error), row in zip(documented, table.itertuples(), strict=True):
        assert (design, quantity) == (row.design, row.quantity)
        assert float(published) == pytest.approx(row.published, rel=5e-3)
        assert float(model) == pytest.approx(row.model, rel=5e-3)
        assert float(error.rstrip(" %")) == pytest.approx(100 * row.error, abs=0.5)
