"""Fast path vs the per-cycle reference (cycles, in every microarchitecture mode), and the reference's
numbers vs torch."""

import numpy as np
import pytest
import torch
from helpers import expand_blocks, small_config

from hwsim.mapping import fold_lines, plan_folds, streamed_lines_per_tile
from hwsim.memory import best_chunks, fold_start_cycles, run_pipeline
from hwsim.reference import iter_folds, reference_gemm, step_output_stationary, step_stationary
from hwsim.simulate import simulate_gemm
from hwsim.timing import fold_timing
from hwsim.workload import Gemm

OVERLAPS, EDGES, DRAINS = ("none", "weights", "full"), ("live", "full"), ("rows", "columns")


def random_microarch(rng, dataflow: str) -> dict:
    micro = {"fold_overlap": str(rng.choice(OVERLAPS)), "edge_skew": str(rng.choice(EDGES)),
             "drain": str(rng.choice(DRAINS)), "mult_stages": int(rng.integers(0, 3)),
             "acc_stages": int(rng.integers(0, 3)), "drain_lines_per_cycle": int(rng.integers(1, 3)),
             "preload_rows_per_cycle": int(rng.integers(1, 4))}  # fmt: skip
    if rng.random() < 0.5:  # the controller mechanisms of public arrays: switch bubble, tile overhead, bank swaps
        micro.update(fold_switch_cycles=int(rng.integers(0, 3)), tile_overhead_cycles=int(rng.integers(0, 4)))
        if rng.random() < 0.5:
            micro.update(stream_bank_depth=int(rng.integers(1, 5)), stream_bank_swap_cycles=int(rng.integers(0, 3)))
        if dataflow != "os" and rng.random() < 0.5:
            micro.update(preload_order="wavefront", preload_rows_per_cycle=1)
    if dataflow == "os" and rng.random() < 0.4:  # a result port narrower than a drain beat
        micro["drain_words_per_cycle"] = int(rng.integers(1, 6))
    return micro


def random_case(seed):
    rng = np.random.default_rng(seed)
    M, K, N = (int(x) for x in rng.integers(1, 14, size=3))
    block = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
    mask = None
    if rng.random() < 0.8:
        block_keep = rng.random((-(-N // block[0]), -(-K // block[1]))) < rng.uniform(0.1, 0.9)
        mask = expand_blocks(block_keep, block, N, K)
        if rng.random() < 0.3:  # column-in-block granularity: columns vary inside a block row
            mask &= rng.random((N, K)) < 0.7
    dataflow = str(rng.choice(["ws", "os", "is"]))
    config = small_config(
        rows=int(rng.integers(1, 6)),
        cols=int(rng.integers(1, 6)),
        dataflow=dataflow,
        bw=float(rng.choice([0.5, 1.0, 3.0, 16.0])),
        double=bool(rng.random() < 0.6),
        skip=bool(rng.random() < 0.8),
        decode=int(rng.integers(0, 3)),
        weight_bytes=int(rng.choice([64, 256, 4096])),
        input_bytes=int(rng.choice([64, 512, 4096])),
        output_bytes=int(rng.choice([32, 128, 4096])),  # small ones force buffer-aware tiling
        microarch=random_microarch(rng, dataflow) if rng.random() < 0.85 else None,  # else the serial controller
    )
    op = Gemm("g", M=M, K=K, N=N, mask=mask, block=block)
    A = rng.integers(-8, 8, size=(M, K)).astype(np.float64)
    W = rng.integers(-8, 8, size=(N, K)).astype(np.float64)
    return op, A, W, config


@pytest.mark.parametrize("seed", range(150))
def test_fast_path_cycles_equal_reference_and_numbers_equal_torch(seed):
    op, A, W, config = random_case(seed)
    try:
        row, _ = simulate_gemm(op, config)
    except ValueError as err:
        assert "buffers." in str(err)  # a tile that cannot fit is reported, never mis-simulated
        pytest.skip("buffer too small for this random case")
    ref = reference_gemm(op, A, W, config)
    plan = plan_folds(op, config)
    timing = fold_timing(plan, config)
    micro = config.microarch
    # per-fold terms: the closed forms against what the grid stepped
    assert timing.prep.tolist() == [ph.prep for ph in ref.phases]
    assert timing.stream.tolist() == [ph.stream for ph in ref.phases]
    assert timing.latency.tolist() == [ph.fill + micro.mult_stages + micro.acc_stages for ph in ref.phases]
    assert timing.drain.tolist() == [ph.drain for ph in ref.phases]
    assert timing.port.tolist() == [ph.port for ph in ref.phases]
    # the whole timeline: gap formulas + simpy against the per-cycle controller and DMA
    assert row["compute_cycles"] == ref.compute_cycles
    assert row["cycles"] == ref.cycles
    chunks = best_chunks(plan, op, config)
    for trace in (False, True):  # the closed-form pipeline and the simpy processes
        pipeline = run_pipeline(chunks, timing, config, trace=trace)
        assert pipeline.cycles == ref.cycles
        assert fold_start_cycles(pipeline, chunks, timing).tolist() == ref.fold_starts
    masked = torch.tensor(W) * (torch.tensor(op.mask) if op.mask is not None else 1)
    expected = (torch.tensor(A) @ masked.T).numpy()
    np.testing.assert_array_equal(ref.out, expected)


def test_enough_random_cases_are_simulated_and_tiled_in_every_mode():
    simulated = tiled = 0
    modes = set()
    mechanisms = dict.fromkeys(("fold_switch_cycles", "tile_overhead_cycles", "stream_bank_swap_cycles",
                                "drain_words_per_cycle", "wavefront"), 0)  # fmt: skip
    for seed in range(150):
        op, _, _, config = random_case(seed)
        try:
            simulate_gemm(op, config)
            simulated += 1
        except ValueError:
            continue
        full = op.N if config.pe_array.dataflow.value == "is" else op.M
        tiled += streamed_lines_per_tile(op, config) < full
        micro = config.microarch
        modes.add((micro.fold_overlap.value, config.pe_array.dataflow.value, micro.edge_skew.value))
        for name in mechanisms:
            mechanisms[name] += bool(micro.preload_order.value == name or getattr(micro, name, None))
    assert simulated >= 120 and tiled >= 25, (simulated, tiled)
    assert min(mechanisms.values()) >= 8, mechanisms
    assert len(modes) == len(OVERLAPS) * 3 * len(EDGES), sorted(modes)  # every overlap x dataflow x edge combination


@pytest.mark.parametrize(("r", "c", "S", "p"), [(1, 1, 1, 1), (3, 2, 5, 2), (4, 4, 1, 3), (2, 5, 7, 1), (5, 3, 4, 5)])
def test_grid_stepping_matches_the_closed_form_terms(r, c, S, p):
    rng = np.random.default_rng(r * 100 + c * 10 + S)
    stationary, stream = rng.normal(size=(r, c)), rng.normal(size=(S, r))
    out, preload, passed = step_stationary(stationary, stream, preload_rows_per_cycle=p)
    np.testing.assert_allclose(out, stream @ stationary)
    assert (preload, passed) == (-(-r // p), S + r + c - 2)
    a, w = rng.normal(size=(r, S)), rng.normal(size=(c, S))
    for drain, lines in (("rows", r), ("columns", c)):
        out, compute, beats = step_output_stationary(a, w, drain=drain, lines_per_beat=p)
        np.testing.assert_allclose(out, a @ w.T)
        assert (compute, beats) == (S + r + c - 2, -(-lines // p))


def test_hand_worked_ws_example():
    """4x4 WS array, M=8 tokens, K=8, N=4, dense, serial controller: 2 K-folds of 4 (preload) + 8 + 4 + 4 - 2."""
    config = small_config(rows=4, cols=4, dataflow="ws", bw=1e6)
    timing = fold_timing(plan_folds(Gemm("g", M=8, K=8, N=4), config), config)
    assert (timing.prep + timing.busy).tolist() == [18, 18] and timing.compute_cycles == 36


def test_fully_pruned_tiles_are_skipped_and_partial_tiles_compacted():
    config = small_config(rows=4, cols=4, dataflow="ws", decode=0)
    mask = np.zeros((8, 8), dtype=bool)
    mask[:4, :2] = True  # N-tile 0 keeps two input columns, N-tile 1 keeps nothing
    plan = plan_folds(Gemm("g", M=5, K=8, N=8, mask=mask, block=(4, 2)), config)
    assert plan.n_folds == 1
    assert plan.rows.tolist() == [2] and plan.cols.tolist() == [4]
    dense = plan_folds(Gemm("g", M=5, K=8, N=8), config)
    assert dense.n_folds == 4
    no_skip_config = small_config(skip=False)
    no_skip = plan_folds(Gemm("g", M=5, K=8, N=8, mask=mask, block=(4, 2)), no_skip_config)
    assert fold_timing(no_skip, no_skip_config).compute_cycles == fold_timing(dense, config).compute_cycles
    assert no_skip.useful_macs == 5 * 8


@pytest.mark.parametrize("seed", range(150))
def test_plan_geometry_equals_the_reference_enumeration(seed):
    op, _, _, config = random_case(seed)
    try:
        plan = plan_folds(op, config)
    except ValueError:
        pytest.skip("buffer too small for this random case")
    folds = list(iter_folds(op, config))
    assert len(folds) == plan.n_folds
    for i, fold in enumerate(folds):
        lines = fold_lines(op, config, plan, i)
        assert lines["n"].tolist() == list(fold.n_rows), i
        assert lines["k"].tolist() == list(fold.k_cols), i
        assert lines["m"].tolist() == list(fold.m_rows), i
        assert plan.tile[i] == fold.tile and plan.index_blocks[i] == fold.decode_blocks
        assert plan.empty_tiles[i] == fold.empty_tiles


def _compute(op: Gemm, config) -> int:
    return fold_timing(plan_folds(op, config), config).compute_cycles


@pytest.mark.parametrize(("M", "folds"), [(8, 3), (4, 5), (2, 3)])
def test_a_switch_bubble_costs_one_cycle_per_fold_switch_unless_the_preload_hides_it(M, folds):
    """A TPU-like ws array that raises its switch one cycle before valid data: ``F - 1`` dead cycles a GEMM
    when the stream (M) covers the preload (R = 4), none when the preload is longer than stream + bubble."""
    micro = {"fold_overlap": "full", "edge_skew": "full"}
    op = Gemm("g", M=M, K=4 * folds, N=4)
    plain = small_config(rows=4, cols=4, decode=0, microarch=micro)
    bubble = small_config(rows=4, cols=4, decode=0, microarch={**micro, "fold_switch_cycles": 1})
    assert _compute(op, bubble) - _compute(op, plain) == ((folds - 1) if M >= 4 else 0)


@pytest.mark.parametrize("overlap", ["weights", "full"])
def test_a_wavefront_preload_hides_the_first_tiles_preload(overlap):
    """Rows written just ahead of the inputs: the stream starts with the preload, R cycles earlier a GEMM;
    later folds' preloads were hidden behind the shadow registers already (M >= R)."""
    op = Gemm("g", M=6, K=12, N=8)
    micro = {"fold_overlap": overlap, "edge_skew": "full"}
    serial = small_config(rows=4, cols=4, decode=0, microarch=micro)
    wavefront = small_config(rows=4, cols=4, decode=0, microarch={**micro, "preload_order": "wavefront"})
    assert _compute(op, serial) - _compute(op, wavefront) == 4


def test_a_serial_readout_and_banked_k_buffer_cost_what_the_counts_say():
    """An os tile drained one word per cycle takes m*n cycles; a K stream of 40 through 16-deep ping-pong
    banks with a 5-cycle swap takes 40 + 2*5; a tile overhead of 7 is paid once per fold (each os tile)."""
    micro = {"drain_words_per_cycle": 1, "stream_bank_depth": 16, "stream_bank_swap_cycles": 5,
             "tile_overhead_cycles": 7, "edge_skew": "live"}  # fmt: skip
    config = small_config(rows=4, cols=4, dataflow="os", decode=0, microarch=micro)
    timing = fold_timing(plan_folds(Gemm("g", M=6, K=40, N=3), config), config)
    assert timing.drain.tolist() == [4 * 3, 2 * 3]  # rows drain: m lines of n words, one word per cycle
    assert timing.stream.tolist() == [50, 50]
    assert timing.prep.tolist() == [7, 7]
    # serial controller: each fold is overhead + stream + skew (m + n - 2) + drain
    assert timing.compute_cycles == (7 + 50 + 5 + 12) + (7 + 50 + 3 + 6)


@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_empty_tiles_cost_one_index_read_each_before_the_next_live_tile(dataflow):
    """Four N-tiles of 4 features: tiles 0 and 2 keep nothing, tile 3 neither (trailing). The controller reads
    the index pointer of tiles 0 and 2 (one decode cycle each) before decoding tiles 1 and 3's blocks; the
    trailing empty tile costs nothing, since the pointer already equals the index's end."""
    config = small_config(rows=4, cols=4, dataflow=dataflow, decode=1)
    mask = np.zeros((16, 8), dtype=bool)
    mask[4:8, :4] = True  # tile 1: one 4x4 block
    op = Gemm("g", M=4, K=8, N=16, mask=mask, block=(4, 4))
    plan = plan_folds(op, config)
    assert plan.empty_tiles.tolist() == [1] and plan.index_blocks.tolist() == [1]
    assert plan.decode_cycles.tolist() == [2]
    mask[12:, 4:] = True  # tile 3 live too: tile 2 is passed over before it
    plan = plan_folds(Gemm("g", M=4, K=8, N=16, mask=mask, block=(4, 4)), config)
    assert plan.empty_tiles.tolist() == [1, 1] and plan.decode_cycles.tolist() == [2, 2]


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
def test_a_mask_that_keeps_every_block_runs_dense_where_the_controller_can_bypass_the_index(dataflow):
    """With ``sparse.dense_bypass`` a layer keeping every block costs what the unmasked layer costs (no decode,
    no index bytes); without it the controller still walks and fetches the index, so it costs more."""
    op = Gemm("g", M=9, K=12, N=10, mask=np.ones((10, 12), dtype=bool), block=(2, 3))
    dense = Gemm("g", M=9, K=12, N=10)
    walking = small_config(dataflow=dataflow, decode=2)
    bypass = small_config(dataflow=dataflow, decode=2, dense_bypass=True)
    assert simulate_gemm(op, bypass)[0]["cycles"] == simulate_gemm(dense, bypass)[0]["cycles"]
    assert simulate_gemm(op, walking)[0]["cycles"] > simulate_gemm(dense, walking)[0]["cycles"]
    pruned = Gemm("g", M=9, K=12, N=10, mask=np.kron(np.eye(5, 4, dtype=bool), np.ones((2, 3), bool)), block=(2, 3))
    assert simulate_gemm(pruned, bypass)[0]["cycles"] == simulate_gemm(pruned, walking)[0]["cycles"]
