"""Whole workloads through one DMA and one array: prefetch across ops and the roofline columns, held to the
per-cycle reference (``reference_workload_cycles``), to hand-worked counts and to the serial per-op model."""

import numpy as np
import pytest
from helpers import expand_blocks, small_config
from test_reference_equivalence import random_microarch

from hwsim import load_config
from hwsim.mapping import plan_folds
from hwsim.memory import best_chunks, run_chain, run_pipeline
from hwsim.reference import reference_workload_cycles
from hwsim.simulate import simulate, simulate_gemm
from hwsim.timing import fold_timing
from hwsim.workload import Gemm, VectorOp, Workload


def random_workload(rng) -> Workload:
    ops = []
    for i in range(int(rng.integers(1, 5))):
        M, K, N = (int(x) for x in rng.integers(1, 11, size=3))
        block = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        mask = None
        if rng.random() < 0.6:
            keep = rng.random((-(-N // block[0]), -(-K // block[1]))) < rng.uniform(0.2, 0.9)
            mask = expand_blocks(keep, block, N, K)
        ops.append(Gemm(f"g{i}", M=M, K=K, N=N, mask=mask, block=block, repeat=int(rng.integers(1, 4))))
        if rng.random() < 0.5:
            ops.append(VectorOp(f"v{i}", str(rng.choice(["add", "gelu", "softmax"])), int(rng.integers(1, 60))))
    if rng.random() < 0.3:
        ops.insert(0, VectorOp("lead", "layernorm", int(rng.integers(1, 30))))
    return Workload(ops=tuple(ops))


def random_chain_case(seed: int):
    rng = np.random.default_rng(seed)
    workload = random_workload(rng)
    dataflow = str(rng.choice(["ws", "os", "is"]))
    micro = random_microarch(rng, dataflow) if rng.random() < 0.8 else {}
    config = small_config(
        rows=int(rng.integers(1, 5)), cols=int(rng.integers(1, 5)), dataflow=dataflow,
        bw=float(rng.choice([0.5, 1.0, 3.0, 16.0])), double=bool(rng.random() < 0.7), decode=int(rng.integers(0, 3)),
        weight_bytes=int(rng.choice([128, 512, 4096])), input_bytes=int(rng.choice([128, 512, 4096])),
        output_bytes=int(rng.choice([64, 256, 4096])),
        microarch={**micro, "prefetch_across_ops": bool(rng.random() < 0.65)},
    )  # fmt: skip
    return workload, config


@pytest.mark.parametrize("seed", range(60))
def test_whole_workload_cycles_equal_the_per_cycle_reference(seed):
    workload, config = random_chain_case(seed)
    try:
        fast = simulate(config, workload)
    except ValueError as err:
        assert "buffers." in str(err)
        pytest.skip("buffer too small for this random case")
    reference = reference_workload_cycles(workload, config)
    assert fast.totals["cycles"] == reference
    assert simulate(config, workload, trace=True).totals["cycles"] == reference  # the simpy processes
    assert fast.ops["cycles"].sum() == reference  # per-op attribution covers the timeline exactly
    assert (fast.ops[["first_load_cycles", "stall_cycles", "last_store_cycles"]] >= 0).all().all()


def test_enough_random_chains_are_simulated_with_and_without_prefetch():
    simulated = {False: 0, True: 0}
    for seed in range(60):
        workload, config = random_chain_case(seed)
        try:
            simulate(config, workload)
        except ValueError:
            continue
        simulated[config.microarch.prefetch_across_ops] += 1
    assert min(simulated.values()) >= 15, simulated


@pytest.mark.parametrize("seed", range(20))
def test_without_prefetch_a_chain_is_the_serial_sum_of_its_ops(seed):
    """The chain run without prefetch equals each GEMM run on its own from empty buffers, repeats one after
    another, plus the vector ops: the model every earlier number was published under."""
    workload, config = random_chain_case(seed)
    config = config.model_copy(update={"microarch": config.microarch.model_copy(
        update={"prefetch_across_ops": False})})  # fmt: skip
    try:
        serial = simulate(config, workload)
    except ValueError:
        pytest.skip("buffer too small for this random case")
    alone = [simulate_gemm(op, config)[0]["cycles"] for op in workload.gemms]
    vector = serial.ops.loc[serial.ops["kind"] != "gemm", "cycles"].sum()
    assert serial.totals["cycles"] == sum(alone) + vector
    chained = []
    for op in workload.gemms:
        plan = plan_folds(op, config)
        chunks = best_chunks(plan, op, config)
        if chunks.n_chunks:
            chained.append((chunks, fold_timing(plan, config), op.repeat))
    if chained:
        chain = run_chain(chained, [0] * len(chained), config)
        singles = [run_pipeline(chunks, timing, config).cycles * repeat for chunks, timing, repeat in chained]
        assert [gemm.cycles for gemm in chain.gemms] == singles


def test_prefetch_hides_the_next_weights_under_the_current_compute_hand_worked():
    """4x4 ws array, serial controller, 1 B/cycle, two dense GEMMs M=8, K=4, N=4 (int8, one fold each).

    Each: weights 16 B (16 cycles), inputs 32 B (32), compute prep 4 + stream 8 + latency 4+4-2 = 18, store of
    8x4 results 32. Serial: 2 x (48 + 18 + 32) = 196. Prefetch: the second GEMM's weights load at 48-64 while
    the first computes (48-66) and its store runs 66-98; the second's inputs wait for that store: 98-130,
    compute 130-148, store 148-180 -- 180 cycles, the weight transfer (16) saved.
    """
    ops = (Gemm("a", M=8, K=4, N=4), Gemm("b", M=8, K=4, N=4))
    workload = Workload(ops=ops)
    serial = small_config(bw=1.0, decode=0)
    prefetch = small_config(bw=1.0, decode=0, microarch={"prefetch_across_ops": True})
    assert simulate(serial, workload).totals["cycles"] == 196
    result = simulate(prefetch, workload)
    assert result.totals["cycles"] == 180 == reference_workload_cycles(workload, prefetch)
    # the second op runs from its inputs being ready (98) to its store (180); its weights are in the first's time
    assert result.ops["cycles"].tolist() == [98, 82]
    assert result.ops["first_load_cycles"].tolist() == [48, 32]


def test_repeats_share_their_dependency_with_prefetch():
    """Two independent repeats (heads) of the GEMM above: with prefetch the second's inputs need not wait for
    the first's store. DMA: weights 0-16, inputs 16-48, second weights 48-64, second inputs 64-96, then the
    stores 96-128 and 128-160 (the first's results, done at 66, wait for the busy DMA); the array runs the
    first 48-66 and the second 96-114. 160 cycles against 196 serially."""
    workload = Workload(ops=(Gemm("heads", M=8, K=4, N=4, repeat=2),))
    prefetch = small_config(bw=1.0, decode=0, microarch={"prefetch_across_ops": True})
    assert simulate(small_config(bw=1.0, decode=0), workload).totals["cycles"] == 196
    assert simulate(prefetch, workload).totals["cycles"] == 160 == reference_workload_cycles(workload, prefetch)


@pytest.mark.parametrize("seed", range(40))
def test_cycles_never_below_the_roofline_and_the_bound_names_the_larger_term(seed):
    workload, config = random_chain_case(seed)
    try:
        result = simulate(config, workload)
    except ValueError:
        pytest.skip("buffer too small for this random case")
    totals, ops = result.totals, result.ops
    dram = int(np.ceil(ops["dram_bytes"].sum() / config.dram_bytes_per_cycle - 1e-9))
    compute = int(ops["compute_cycles"].sum())
    assert totals["dram_roofline_cycles"] == dram and totals["roofline_cycles"] == max(dram, compute)
    assert totals["bound"] == ("dram" if dram > compute else "compute")
    assert totals["cycles"] >= totals["roofline_cycles"]
    if not config.microarch.prefetch_across_ops:  # serial ops: each op on its own is above its roofline too
        assert (ops["cycles"] >= ops["roofline_cycles"]).all()


def test_presets_whose_source_prefetches_turn_it_on():
    assert load_config("asic-128x128-int8").microarch.prefetch_across_ops  # TPUv1's weight FIFO
    assert load_config("asic-32x32-int8").microarch.prefetch_across_ops  # Gemmini's DMA queue
