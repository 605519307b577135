"""More resources never make a GEMM slower: the mapper picks the fastest DMA chunking among choices whose
schedules do not depend on the buffer sizes (``hwsim.memory.chunk_options``), so a larger buffer keeps every
choice a smaller one had -- wherever a slot holds at least a quarter of a tile's folds (below that the one
choice left is as many folds as fit) and the buffer-aware tiling keeps its pieces (a ws input slot that holds
more rows of a non-resident A lengthens them; that choice is not searched). Property tests over random GEMMs
and configs, the search held to brute force."""

import numpy as np
import pytest
from helpers import expand_blocks, small_config

from hwsim.config import derive_config
from hwsim.mapping import TilingError, plan_folds, streamed_lines_per_tile
from hwsim.memory import CHUNK_SPLITS, ChunkChoices, chunk_options, fastest_chunks, make_chunks, run_pipeline
from hwsim.simulate import simulate_gemm
from hwsim.timing import fold_timing
from hwsim.workload import Gemm

PRESETS = ["asic-16x16-int8", "asic-32x32-int8", "asic-128x128-int8", "fpga-zcu102", "fpga-u200"]
CASES = 800


def _cycles(op: Gemm, config) -> int | None:
    try:
        return simulate_gemm(op, config)[0]["cycles"]
    except TilingError:
        return None


def _random_case(seed: int):
    """A block-pruned GEMM on a preset-derived config with random dataflow, overlap, buffers and bandwidth."""
    rng = np.random.default_rng(seed)
    M, K, N = (int(rng.choice([16, 32, 64, 96, 128, 256, 384])) for _ in range(3))
    b = int(rng.choice([4, 8, 16, 32]))
    keep = rng.random((-(-N // b), -(-K // b))) >= rng.uniform(0, 0.85)
    dataflow = str(rng.choice(["ws", "os", "is"]))
    base = {"pe_array.dataflow": dataflow, "microarch.fold_overlap": str(rng.choice(["none", "weights", "full"])),
            "buffers.double_buffering": bool(rng.random() < 0.8),
            **{f"buffers.{name}": int(rng.choice([2, 4, 8, 16, 32, 64])) * 1024
               for name in ("weight_bytes", "input_bytes", "output_bytes")},
            "dram.bw_bytes_per_cycle": float(rng.choice([1, 4, 8, 16, 32]))}  # fmt: skip
    if dataflow == "os":
        base["microarch.preload_order"] = "serial"
    return rng, keep, b, (M, K, N), PRESETS[seed % len(PRESETS)], base


def _op(keep: np.ndarray, b: int, shape: tuple[int, int, int]) -> Gemm:
    M, K, N = shape
    return Gemm("g", M=M, K=K, N=N, mask=expand_blocks(keep, (b, b), N, K), block=(b, b))


def _chooses(op: Gemm, config) -> bool:
    """Whether the mapper has its choices here (a slot holds at least ``ceil(L / 2^CHUNK_SPLITS)`` folds)."""
    plan = plan_folds(op, config)
    if not plan.n_folds:
        return True
    longest = int(np.diff(np.append(np.flatnonzero(plan.opens_tile), plan.n_folds)).max())
    return chunk_options(plan, op, config)[-1][0] >= -(-longest // (1 << CHUNK_SPLITS))


@pytest.mark.parametrize("chunk", range(4))
def test_more_buffer_bandwidth_fewer_index_bits_or_more_pruning_never_cost_cycles(chunk):
    """800 random cases (200 per test; >= 500 of them fit their buffers), each changed one resource at a
    time: weight or input buffer x4, DRAM bandwidth x4, metadata bits 16 -> 0, one more block pruned. Cycles
    never rise (where the module docstring's exceptions do not apply: counted, at most half the cases), and
    never fall below ``max(compute_cycles, DRAM bytes / bandwidth)``."""
    compared = fallback = retiled = 0
    for seed in range(chunk, CASES, 4):
        rng, keep, b, shape, preset, base = _random_case(seed)
        op = _op(keep, b, shape)
        config = derive_config(preset, base)
        try:
            row = simulate_gemm(op, config)[0]
        except TilingError:
            continue
        cycles = row["cycles"]
        assert cycles >= max(row["compute_cycles"], np.ceil(row["dram_bytes"] / config.dram_bytes_per_cycle - 1e-9))
        more = {"weight buffer": {"buffers.weight_bytes": base["buffers.weight_bytes"] * 4},
                "input buffer": {"buffers.input_bytes": base["buffers.input_bytes"] * 4},
                "bandwidth": {"dram.bw_bytes_per_cycle": base["dram.bw_bytes_per_cycle"] * 4},
                "no index bits": {"sparse.metadata_bits_per_block": 0}}  # fmt: skip
        for what, change in more.items():
            changed_config = derive_config(preset, {**base, **change})
            if what != "bandwidth" and not _chooses(op, config):
                fallback += 1  # the slot holds under a quarter of a tile: no choice to keep (the docstring)
                continue
            if streamed_lines_per_tile(op, changed_config) != streamed_lines_per_tile(op, config):
                retiled += 1  # a ws input slot that now holds more rows of A: longer pieces, not searched yet
                continue
            changed = _cycles(op, changed_config)
            assert changed is not None and changed <= cycles, (seed, what, cycles, changed)
        kept = np.argwhere(keep)
        if len(kept) > 1:
            pruned = keep.copy()
            pruned[tuple(kept[rng.integers(len(kept))])] = False
            changed = _cycles(_op(pruned, b, shape), config)
            assert changed is not None and changed <= cycles, (seed, "one more block pruned", cycles, changed)
        compared += 1
    assert compared >= 125 and fallback + retiled <= compared, (compared, fallback, retiled)  # the rest do not fit


@pytest.mark.parametrize("seed", range(40))
def test_the_search_finds_the_brute_force_minimum(seed):
    """The bounded search (``fastest_chunks``, compiled) returns the fewest cycles of all chunkings, each built
    as a ChunkPlan and run on its own, of equals the fewest bytes loaded; and the pipeline it reports is the
    one its chunking runs on its own."""
    _, keep, b, shape, preset, base = _random_case(seed)
    op, config = _op(keep, b, shape), derive_config(preset, base)
    try:
        plan = plan_folds(op, config)
        choices = ChunkChoices.of(plan, op, config)
    except TilingError:
        pytest.skip("buffer too small for this random case")
    timing = fold_timing(plan, config)

    def key(chunks, cycles):
        return cycles, chunks.dram_weight_bytes + chunks.dram_input_bytes

    brute = min(key(chunks, run_pipeline(chunks, timing, config).cycles) for chunks in choices.all_chunks())
    chosen, pipeline = fastest_chunks(choices, timing, config)
    assert key(chosen, pipeline.cycles) == brute
    assert pipeline == run_pipeline(chosen, timing, config)


def test_a_larger_buffer_keeps_every_chunking_a_smaller_one_had():
    """4x4 ws, M = 64, K = 96: 24 folds per output tile, each streaming 256 bytes of A (64 rows x 4); A is
    6 KiB. 2 KiB slots (4 KiB buffers) hold 6 folds' inputs, 4 KiB slots 12, 8 KiB slots whole tiles or all
    of A (kept). Below a quarter tile only "as many folds as fit" is left."""
    op = Gemm("g", M=64, K=96, N=64)

    def options(size: int) -> set:
        config = small_config(weight_bytes=size, input_bytes=size)
        return set(chunk_options(plan_folds(op, config), op, config))

    assert options(4096) == {(6, False)}
    assert options(4096) < options(8192) == {(12, False), (6, False)}
    assert options(8192) < options(16384) == {(folds, keep) for folds in (24, 12, 6) for keep in (True, False)}
    assert options(1024) == {(2, False)}  # the fallback: 2 of 24 folds fit, below the ladder's quarter tile
    small = small_config(weight_bytes=4096, input_bytes=4096)
    with pytest.raises(ValueError, match="folds per chunk"):
        make_chunks(plan_folds(op, small), op, small, 12, False)


def test_the_issue_example_a_bigger_weight_buffer_is_no_longer_slower():
    """MiniLM-sized 128x768x384 at 50 % (16x16 blocks) on the 32x32 ws preset: a 16 -> 32 KiB weight buffer
    cost 31,047 -> 31,832 cycles with the greedy chunking (the first chunk grew and nothing overlapped it)."""
    rng = np.random.default_rng(0)
    keep = rng.random((384 // 16, 768 // 16)) < 0.5
    op = _op(keep, 16, (128, 768, 384))
    cycles = [_cycles(op, derive_config("asic-32x32-int8", {"buffers.weight_bytes": kib * 1024}))
              for kib in (16, 32, 64)]  # fmt: skip
    assert cycles[0] >= cycles[1] >= cycles[2]
