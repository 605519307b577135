"""Microarchitecture timing (hwsim.timing) against independent truth: RTL measurements of public
systolic-array designs, the serial model's own closed form, and hand-derived equal-fold closed forms."""

import numpy as np
import pytest
from helpers import small_config

from hwsim.config import ConfigError, config_from_dict, derive_config, load_config
from hwsim.mapping import plan_folds
from hwsim.simulate import simulate, simulate_gemm
from hwsim.timing import fold_timing
from hwsim.workload import Gemm, Workload

# Cycle counts measured in Verilator/Icarus on two public systolic-array RTL designs (issue 23): an os array
# with an AXI-Stream interface, 2 MAC pipeline stages, a shift-out chain draining column by column and
# fixed-length skew chains; and a ws array loading a whole weight tile per cycle through skew registers,
# one pipeline register. Each line: array, dataflow, GEMM M, K, N, microarch terms, measured RTL cycles.
OS_RTL = {"fold_overlap": "full", "mult_stages": 1, "acc_stages": 1, "drain": "columns", "edge_skew": "full"}
RTL_MEASUREMENTS = [
    ((8, 8), "os", (16, 32, 16), OS_RTL, 152),
    ((8, 8), "os", (64, 64, 64), OS_RTL, 4120),
    ((4, 8), "os", (4, 16, 8), OS_RTL, 36),
    ((8, 4), "os", (8, 16, 4), OS_RTL, 32),
    ((8, 8), "ws", (64, 64, 64), {"fold_overlap": "full", "mult_stages": 1, "edge_skew": "full",
                                  "preload_rows_per_cycle": 8}, 4112),
    ((4, 4), "ws", (10, 13, 11), {"fold_overlap": "full", "mult_stages": 1, "edge_skew": "full",
                                  "preload_rows_per_cycle": 4}, 128),
]  # fmt: skip


@pytest.mark.parametrize(("array", "dataflow", "gemm", "microarch", "measured"), RTL_MEASUREMENTS)
def test_terms_reproduce_rtl_measurements_of_public_designs(array, dataflow, gemm, microarch, measured):
    M, K, N = gemm
    config = small_config(rows=array[0], cols=array[1], dataflow=dataflow, bw=1e6, weight_bytes=1 << 20,
                          input_bytes=1 << 20, output_bytes=1 << 20, microarch=microarch)  # fmt: skip
    row, _ = simulate_gemm(Gemm("g", M=M, K=K, N=N), config)
    assert row["compute_cycles"] == measured
    assert row["stall_cycles"] == 0  # ample memory: nothing but the named first load and last store
    assert row["cycles"] == measured + row["first_load_cycles"] + row["last_store_cycles"]


@pytest.mark.parametrize("seed", range(20))
def test_serial_controller_is_the_earlier_closed_form(seed):
    """``none`` with live edges, no pipeline and one preload row per cycle: every fold costs
    ``S + 2 r + c - 2`` plus its index decode, folds back to back (the model before microarch terms)."""
    rng = np.random.default_rng(seed)
    M, K, N = (int(x) for x in rng.integers(1, 40, size=3))
    config = small_config(rows=int(rng.integers(1, 9)), cols=int(rng.integers(1, 9)),
                          dataflow=str(rng.choice(["ws", "os", "is"])), weight_bytes=1 << 16, input_bytes=1 << 16,
                          output_bytes=1 << 16)  # fmt: skip
    mask = rng.random((N, K)) < 0.5
    plan = plan_folds(Gemm("g", M=M, K=K, N=N, mask=mask, block=(1, 1)), config)
    expected = plan.stream + 2 * plan.rows + plan.cols - 2 + plan.decode_cycles
    assert fold_timing(plan, config).compute_cycles == int(expected.sum())


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
@pytest.mark.parametrize("overlap", ["none", "weights", "full"])
@pytest.mark.parametrize("stream", [3, 40])  # shorter and longer than the preload / hold
def test_equal_folds_follow_the_documented_closed_forms(dataflow, overlap, stream):
    R, C, folds_k, folds_n, mult, acc = 6, 5, 3, 2, 2, 1
    M, K, N = {"ws": (stream, R * folds_k, C * folds_n), "os": (R * folds_k, stream, C * folds_n),
               "is": (C * folds_n, R * folds_k, stream)}[dataflow]  # fmt: skip
    config = small_config(rows=R, cols=C, dataflow=dataflow, weight_bytes=1 << 16, input_bytes=1 << 16,
                          output_bytes=1 << 16, skip=False,
                          microarch={"fold_overlap": overlap, "mult_stages": mult, "acc_stages": acc,
                                     "edge_skew": "full", "drain": "columns"})  # fmt: skip
    n = folds_k * folds_n
    prep = R if dataflow != "os" else 0
    drain = C if dataflow == "os" else 0
    busy = stream + R + C - 2 + mult + acc + drain
    hold = max(drain, R + C - 1) if dataflow == "os" else 0
    expected = {"none": n * (prep + busy), "weights": prep + (n - 1) * max(busy, prep) + busy,
                "full": prep + (n - 1) * max(stream, prep, hold) + busy}[overlap]  # fmt: skip
    assert fold_timing(plan_folds(Gemm("g", M=M, K=K, N=N), config), config).compute_cycles == expected


def test_overlap_never_costs_cycles_and_full_edges_never_save_them():
    rng = np.random.default_rng(3)
    for _ in range(40):
        M, K, N = (int(x) for x in rng.integers(1, 50, size=3))
        base = {"rows": int(rng.integers(2, 9)), "cols": int(rng.integers(2, 9)),
                "dataflow": str(rng.choice(["ws", "os", "is"])), "weight_bytes": 1 << 16, "input_bytes": 1 << 16,
                "output_bytes": 1 << 16}  # fmt: skip
        op = Gemm("g", M=M, K=K, N=N, mask=rng.random((N, K)) < 0.6, block=(1, 1))

        def compute(op=op, base=base, **micro):
            config = small_config(**base, microarch=micro)
            return fold_timing(plan_folds(op, config), config).compute_cycles

        assert compute(fold_overlap="none") >= compute(fold_overlap="weights") >= compute(fold_overlap="full")
        for mode in ("none", "weights", "full"):
            assert compute(fold_overlap=mode, edge_skew="full") >= compute(fold_overlap=mode, edge_skew="live")


def test_tpu_like_preset_charges_a_128_token_fold_about_128_cycles():
    """The issue's BERT-base case: seq 128 on the TPU-like preset, full overlap as TPUv1's weight FIFO."""
    config = load_config("asic-128x128-int8")
    serial = derive_config(config, {"microarch.fold_overlap": "none"})
    op = Gemm("q", M=128, K=768, N=768)
    overlapped, _ = simulate_gemm(op, config)
    old, _ = simulate_gemm(op, serial)
    folds = (768 // 128) ** 2
    assert overlapped["compute_cycles"] == 128 + (folds - 1) * 128 + 128 + (128 + 128 - 2 + 2)
    assert old["compute_cycles"] == folds * (128 + 128 + 128 + 128 - 2 + 2)
    utilization = overlapped["macs_useful"] / (overlapped["compute_cycles"] * config.n_pes)
    assert utilization > 0.85 > 0.3 > old["macs_useful"] / (old["compute_cycles"] * config.n_pes)


def test_ample_memory_has_no_stalls_only_named_first_load_and_last_store():
    config = small_config(rows=8, cols=8, bw=65536.0, weight_bytes=64 << 20, input_bytes=64 << 20,
                          output_bytes=64 << 20, microarch={"fold_overlap": "full"})  # fmt: skip
    row, _ = simulate_gemm(Gemm("g", M=64, K=64, N=64), config)
    assert row["stall_cycles"] == 0 and row["first_load_cycles"] == 1 and row["last_store_cycles"] == 1
    assert row["cycles"] == row["compute_cycles"] + 2


def test_static_energy_is_power_times_latency_and_clock_moves_gb_per_s_stalls():
    from transformers import BertConfig

    from hwsim.workload import build_workload

    hf = BertConfig(hidden_size=64, num_hidden_layers=1, num_attention_heads=2, intermediate_size=128)
    workload = build_workload(hf, seq_len=32)
    slow = derive_config("fpga-zcu102", {"clock_mhz": 100.0, "dram.bw_gb_per_s": 0.8})  # 8 B/cycle
    fast = derive_config("fpga-zcu102", {"clock_mhz": 400.0, "dram.bw_gb_per_s": 0.8})  # 2 B/cycle
    slow_result, fast_result = simulate(slow, workload), simulate(fast, workload)
    for result, config in ((slow_result, slow), (fast_result, fast)):
        latency_s = result.totals["latency_s"]
        assert result.totals["energy_leakage_pj"] == pytest.approx(config.cost.static_power_mw * 1e-3 * latency_s
                                                                   * 1e12)  # fmt: skip
    # off-chip DRAM in GB/s: a faster clock gets fewer bytes per cycle, so more stall cycles
    assert fast.dram_bytes_per_cycle == slow.dram_bytes_per_cycle / 4
    assert fast_result.totals["stall_cycles"] > slow_result.totals["stall_cycles"] > 0
    assert fast_result.totals["compute_cycles"] == slow_result.totals["compute_cycles"]
    assert fast_result.totals["energy_leakage_pj"] < slow_result.totals["energy_leakage_pj"]


def test_per_cycle_leakage_is_refused_with_the_conversion():
    data = load_config("asic-32x32-int8").model_dump(mode="json", exclude_none=True)
    data["energy"]["leakage_pj_per_cycle"] = 30.72
    with pytest.raises(ConfigError) as info:
        config_from_dict(data)
    errors = dict(info.value.errors)
    assert "static_power_mw" in errors["energy.leakage_pj_per_cycle"]
    assert "30.72 mW" in errors["energy.leakage_pj_per_cycle"]  # 30.72 pJ x 1000 MHz / 1000


@pytest.mark.parametrize(("field", "value", "allowed"), [
    ("microarch.fold_overlap", "sometimes", "'none', 'weights' or 'full'"),
    ("microarch.drain", "diagonal", "'rows' or 'columns'"),
    ("microarch.edge_skew", "half", "'live' or 'full'"),
    ("microarch.mult_stages", -1, "greater than or equal to 0"),
    ("microarch.preload_rows_per_cycle", 0, "greater than or equal to 1"),
    ("microarch.drain_lines_per_cycle", 1.5, "valid integer"),
])  # fmt: skip
def test_bad_microarch_fields_are_named_with_what_is_allowed(field, value, allowed):
    with pytest.raises(ConfigError) as info:
        derive_config("asic-32x32-int8", {field: value})
    message = dict(info.value.errors)[field]
    assert allowed in message and str(value) in message


def test_every_preset_states_its_microarchitecture():
    from hwsim.config import list_presets

    for name in list_presets():
        text = (load_config.__globals__["_presets_dir"]() / f"{name}.yaml").read_text()
        assert "microarch:" in text and "fold_overlap:" in text and "node_nm:" in text, name
        block = text.split("microarch:")[1].split("vector_unit:")[0]
        assert block.count("#") >= 3, f"{name}: the microarch section should say what it models and why"


def test_workload_totals_add_up():
    config = load_config("asic-16x16-int8")
    workload = Workload([Gemm("a", M=40, K=96, N=80), Gemm("b", M=40, K=80, N=96)])
    totals = simulate(config, workload).totals
    assert totals["cycles"] == (totals["compute_cycles"] + totals["stall_cycles"] + totals["first_load_cycles"]
                                + totals["last_store_cycles"])  # fmt: skip
