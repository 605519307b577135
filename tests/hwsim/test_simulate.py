import itertools
import json

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_config
from helpers import small_config
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim import Gemm, Workload, build_workload, load_config, simulate, simulate_gemm
from hwsim.mapping import plan_folds
from hwsim.memory import best_chunks


def test_energy_components_from_hand_counted_actions():
    """Dense 4x4 WS, M=4, K=4, N=4: one fold, every count worked out by hand."""
    config = small_config(rows=4, cols=4, dataflow="ws", bw=8.0, weight_bytes=8192, input_bytes=8192, output_bytes=8192)
    row, _ = simulate_gemm(Gemm("g", M=4, K=4, N=4), config)
    # the Horowitz fit (10.16 pJ per 64 bit at 8 KiB, see test_design_cost) per byte
    sram = config.cost.sram_pj_per_byte["weight"]
    assert sram == config.cost.sram_pj_per_byte["input"] == config.cost.sram_pj_per_byte["output"]
    assert sram == pytest.approx(10.16 / 8, rel=1e-3)
    assert row["macs_useful"] == row["macs_issued"] == 64
    assert row["energy_mac_pj"] == pytest.approx(64 * 0.3)
    assert row["energy_register_pj"] == pytest.approx(64 * 0.3)
    # weights: 16 B from DRAM into the buffer + 16 B into the array
    assert row["energy_weight_buffer_pj"] == pytest.approx(32 * sram)
    # inputs: 16 B resident load + 16 B streamed
    assert row["energy_input_buffer_pj"] == pytest.approx(32 * sram)
    # psums: 16 elements x 4 B x (read + write) + 16 B stored
    assert row["energy_output_buffer_pj"] == pytest.approx((128 + 16) * sram)
    assert row["dram_bytes"] == 48
    assert row["energy_dram_pj"] == pytest.approx(48 * 2000 / 8)
    # cycles: load 32 B at 8 B/cycle = 4, compute 4 + 8 + 4 - 2 = 14, store 16 B = 2
    assert row["cycles"] == 4 + 14 + 2
    assert (row["first_load_cycles"], row["compute_cycles"], row["stall_cycles"], row["last_store_cycles"]) == (
        4, 14, 0, 2)
    # static power x latency: mW x 1e-3 W/mW x 20 cycles / 1 GHz, in pJ
    assert row["energy_leakage_pj"] == pytest.approx(config.cost.static_power_mw * 1e-3 * 20 / 1e9 * 1e12)


def test_gating_vs_no_gating_energy_and_skipping_time():
    mask = np.zeros((8, 8), dtype=bool)
    mask[:, :4] = True
    mask[::2, 4:] = True  # half the rows keep the right half: union keeps all columns -> imbalance
    op = Gemm("g", M=8, K=8, N=8, mask=mask, block=(1, 4))
    gated, _ = simulate_gemm(op, small_config(rows=4, cols=8, decode=0))
    ungated, _ = simulate_gemm(op, small_config(rows=4, cols=8, decode=0, gate_zero_operands=False))
    assert gated["cycles"] == ungated["cycles"]
    assert gated["macs_issued"] == 8 * 8 * 8 and gated["macs_useful"] == 8 * 48
    assert ungated["energy_mac_pj"] == pytest.approx(512 * 0.3)
    assert gated["energy_mac_pj"] == pytest.approx(384 * 0.3)


def test_block_sparsity_reduces_cycles_and_utilization_shows_imbalance():
    config = load_config("asic-32x32-int8")
    rng = np.random.default_rng(0)
    dense = simulate_gemm(Gemm("g", M=128, K=768, N=768), config)[0]
    keep = rng.random((768 // 32, 768 // 32)) < 0.2
    block_mask = np.kron(keep, np.ones((32, 32), dtype=bool)).astype(bool)
    sparse = simulate_gemm(Gemm("g", M=128, K=768, N=768, mask=block_mask, block=(32, 32)), config)[0]
    assert sparse["cycles"] < 0.35 * dense["cycles"]
    keep_cols = rng.random((768 // 16, 768)) < 0.2  # 16-row column groups: each block row keeps other columns
    column_mask = np.repeat(keep_cols, 16, axis=0)
    imbalanced = simulate_gemm(Gemm("g", M=128, K=768, N=768, mask=column_mask, block=(16, 16)), config)[0]
    assert imbalanced["macs_issued"] > 1.5 * imbalanced["macs_useful"]  # unions of two block rows per tile


def test_double_buffering_hides_transfers():
    op = Gemm("g", M=16, K=64, N=64)
    single = simulate_gemm(op, small_config(rows=8, cols=8, bw=2.0, double=False))[0]
    double = simulate_gemm(op, small_config(rows=8, cols=8, bw=2.0, double=True))[0]
    assert single["compute_cycles"] == double["compute_cycles"]
    assert double["cycles"] < single["cycles"]
    assert single["stall_cycles"] > 0


def test_buffer_too_small_for_one_tile():
    with pytest.raises(ValueError, match=r"buffers.weight_bytes: .* cannot hold one fold's weights"):
        simulate_gemm(Gemm("g", M=4, K=64, N=64), small_config(rows=8, cols=8, weight_bytes=64))


def test_whole_model_totals_trace_and_ideal_bound(tmp_path):
    result = simulate("asic-16x16-int8", build_workload(tiny_config("bert"), seq_len=8), trace=True)
    ops, totals = result.ops, result.totals
    assert totals["cycles"] == ops["cycles"].sum()
    assert totals["cycles"] >= totals["ideal_cycles"]
    assert (ops["cycles"] >= ops["ideal_cycles"]).all()
    assert totals["latency_s"] == pytest.approx(totals["cycles"] / 1e9)
    assert totals["energy_pj"] == pytest.approx(ops["energy_pj"].sum())
    trace = json.loads(result.write_trace(tmp_path / "t.json").read_text())
    units = {e.get("cat") for e in trace["traceEvents"]}
    assert {"array", "dma", "vector"} <= units
    json.dumps(result.to_json_dict())


dims = st.integers(1, 24)


@settings(max_examples=60, deadline=None)
@given(
    M=dims,
    K=dims,
    N=dims,
    rows=st.integers(1, 8),
    cols=st.integers(1, 8),
    dataflow=st.sampled_from(["ws", "os", "is"]),
    density=st.floats(0, 1),
    seed=st.integers(0, 1000),
)
def test_simulate_gemm_never_crashes_and_respects_bounds(M, K, N, rows, cols, dataflow, density, seed):
    rng = np.random.default_rng(seed)
    mask = rng.random((N, K)) < density
    op = Gemm("g", M=M, K=K, N=N, mask=mask, block=(2, 2))
    config = small_config(
        rows=rows, cols=cols, dataflow=dataflow, weight_bytes=1 << 16, input_bytes=1 << 16, output_bytes=1 << 16
    )
    row, _ = simulate_gemm(op, config)
    assert row["macs_useful"] == M * int(mask.sum())
    assert row["macs_issued"] >= row["macs_useful"]
    assert row["cycles"] >= row["compute_cycles"] >= 0
    plan = plan_folds(op, config)
    chunks = best_chunks(plan, op, config)
    assert chunks.n_chunks <= plan.n_folds


def test_empty_workload():
    with pytest.raises(ValueError, match="no ops"):
        simulate("asic-16x16-int8", Workload(ops=()))


def test_timing_memo_gives_the_same_table_as_a_fresh_simulation():
    from hwsim.config import derive_config
    from hwsim.simulate import clear_timing_cache
    from hwsim.workload import Gemm, Workload

    rng = np.random.default_rng(3)
    mask = rng.random((48, 40)) < 0.5
    ops = (Gemm("a", M=20, K=40, N=48, mask=mask, block=(8, 8)), Gemm("b", M=20, K=40, N=48, mask=mask, block=(8, 8)),
           Gemm("c", M=20, K=40, N=48, mask=~mask, block=(8, 8)))  # fmt: skip
    workload = Workload(ops, batch=1, seq_len=20)
    base = derive_config("asic-16x16-int8", {"buffers.weight_bytes": 2048, "dram.bw_bytes_per_cycle": 2.0})
    clear_timing_cache()
    fresh = simulate(base, workload).ops
    assert clear_timing_cache() == 2  # "a" and "b" are the same GEMM: simulated once
    fresh = simulate(base, workload).ops
    memo = simulate(base, workload).ops
    pd.testing.assert_frame_equal(fresh, memo)
    faster = derive_config(base, {"clock_mhz": 2000.0, "energy.mac_pj": 1.0})  # timing unchanged, energy not
    clear_timing_cache()
    reference = simulate(faster, workload).ops
    simulate(base, workload)
    pd.testing.assert_frame_equal(simulate(faster, workload).ops, reference)
    assert (reference["cycles"] == fresh["cycles"]).all() and not (reference["energy_pj"] == fresh["energy_pj"]).all()


@pytest.mark.parametrize("change", [{"buffers.weight_bytes": 4096}, {"buffers.weight_bytes": 1536},
                                    {"buffers.output_bytes": 256}, {"buffers.input_bytes": 1536},
                                    {"sparse.metadata_bits_per_block": 0},
                                    {"sparse.skip_zero_blocks": False}])  # fmt: skip
def test_configs_sharing_a_fold_plan_simulate_as_if_alone(change):
    """A plan is shared by configs that read the same array, sparse settings and streamed lines (a weight
    buffer's size changes only which chunkings fit; a small output or input buffer changes the lines): each
    config, simulated after the other filled the caches, gives what it gives from empty caches."""
    from hwsim.config import derive_config
    from hwsim.simulate import clear_timing_cache
    from hwsim.workload import Gemm, Workload

    rng = np.random.default_rng(5)
    mask = rng.random((48, 40)) < 0.5
    workload = Workload((Gemm("a", M=36, K=40, N=48, mask=mask, block=(8, 8)), Gemm("b", M=36, K=48, N=40)),
                        batch=1, seq_len=36)  # fmt: skip
    base = derive_config("asic-16x16-int8", {"buffers.weight_bytes": 2048, "buffers.output_bytes": 4096,
                                             "buffers.input_bytes": 4096, "dram.bw_bytes_per_cycle": 2.0})  # fmt: skip
    configs = (base, derive_config(base, change))
    alone = []
    for config in configs:
        clear_timing_cache()
        alone.append(simulate(config, workload).ops)
    assert not alone[0].equals(alone[1])  # the change matters
    clear_timing_cache()
    for first, second in ((0, 1), (1, 0)):
        simulate(configs[first], workload)
        pd.testing.assert_frame_equal(simulate(configs[second], workload).ops, alone[second])


@pytest.mark.parametrize("overlap", ["none", "weights", "full"])
def test_pipeline_reports_fold_starts_consistent_with_its_trace(overlap):
    from hwsim.mapping import plan_folds
    from hwsim.memory import best_chunks, fold_start_cycles, run_pipeline
    from hwsim.timing import fold_timing

    rng = np.random.default_rng(5)
    op = Gemm("g", M=24, K=40, N=48, mask=rng.random((48, 40)) < 0.6, block=(8, 8))
    config = small_config(rows=8, cols=8, bw=2.0, weight_bytes=1024, input_bytes=2048, output_bytes=4096,
                          microarch={"fold_overlap": overlap})  # fmt: skip
    plan = plan_folds(op, config)
    chunks = best_chunks(plan, op, config)
    timing = fold_timing(plan, config)
    result = run_pipeline(chunks, timing, config, trace=True)
    starts = fold_start_cycles(result, chunks, timing)
    untraced = run_pipeline(chunks, timing, config)  # the closed form the sweeps use: same timeline, no records
    assert untraced.records == () and untraced.cycles == result.cycles
    assert fold_start_cycles(untraced, chunks, timing).tolist() == starts.tolist()
    assert np.all(np.diff(starts) >= timing.gap[1:])  # memory waits only ever delay a fold
    traced = [(start, end) for unit, _, start, end in result.events if unit == "array"]
    assert len(traced) == chunks.n_chunks > 1
    lasts = np.r_[chunks.first_fold[1:], plan.n_folds] - 1
    for (prep_start, done), first, last in zip(traced, chunks.first_fold, lasts, strict=True):
        assert prep_start <= starts[first] - timing.prep[first] + (0 if overlap == "none" else timing.prep[first])
        assert done == starts[last] + timing.busy[last]
    assert result.cycles == result.first_load_cycles + result.compute_cycles + result.stall_cycles + (
        result.last_store_cycles)
    assert all(b >= a for a, b in itertools.pairwise(start for start, _ in traced))
