"""Buffer-aware tiling: a streamed dimension split to fit the buffers, checked against closed forms."""

import math

import numpy as np
import pytest
from helpers import small_config

from hwsim.config import derive_config
from hwsim.mapping import TilingError, plan_folds, streamed_lines_per_tile
from hwsim.simulate import simulate_gemm
from hwsim.workload import Gemm


def test_vit_sized_layer_on_128x128_ws_tiles_the_tokens_and_pays_the_weight_refetch():
    # the failing case: seq 197 on a 128x128 ws array with a 128 KiB output buffer (two 64 KiB slots)
    small = derive_config("asic-128x128-int8", {"buffers.output_bytes": 128 * 1024})
    large = derive_config("asic-128x128-int8", {"buffers.output_bytes": 4 * 1024 * 1024})
    op = Gemm("fc", M=197, K=768, N=768)
    lines = streamed_lines_per_tile(op, small)
    assert lines == 65536 // (128 * 4)  # one slot of 32-bit partial sums, 128 columns wide: 128 token rows
    tiled, _ = simulate_gemm(op, small)
    whole, _ = simulate_gemm(op, large)
    n_tiles, k_folds = 768 // 128, 768 // 128
    # closed form (TPU-like full overlap, hwsim.timing): every (N-tile, piece) pass runs the 6 K-folds streaming
    # the piece's rows; a fold costs max(stream, 128-row preload), fill/drain (128 + 128 - 2 + 2 stages) once
    preload, tail = 128, 128 + 128 - 2 + 2
    folds = n_tiles * k_folds
    assert tiled["compute_cycles"] == preload + (2 * folds - 1) * max(128, preload) + 69 + tail
    assert whole["compute_cycles"] == preload + (folds - 1) * max(197, preload) + 197 + tail
    # the second piece re-fetches every weight (int8: one byte each); inputs and outputs move once either way
    assert tiled["dram_bytes"] - whole["dram_bytes"] == pytest.approx(768 * 768)
    assert tiled["folds"] == 2 * whole["folds"]
    assert tiled["energy_dram_pj"] > whole["energy_dram_pj"]


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
def test_tiles_are_the_largest_that_fit_and_every_output_is_stored_once(dataflow):
    rng = np.random.default_rng(1)
    mask = np.kron(rng.random((5, 4)) < 0.6, np.ones((4, 4), dtype=bool)).astype(bool)  # N=20, K=16
    op = Gemm("g", M=23, K=16, N=20, mask=mask, block=(4, 4))
    config = small_config(rows=4, cols=4, dataflow=dataflow, output_bytes=2 * 4 * 4 * 6)  # slot: 6 lines of 4
    lines = streamed_lines_per_tile(op, config)
    assert lines == (4 if dataflow == "os" else 6)  # os keeps whole 4-row M-tiles
    plan = plan_folds(op, config)
    slot = config.buffers.output_bytes // 2
    assert plan.output_tile_elements.max() * 4 <= slot
    live_rows = mask.any(axis=1)
    if dataflow == "is":  # output tiles: (M-tile, N-piece) pairs whose piece keeps a weight row
        live_pieces = [p for p in range(0, 20, 6) if live_rows[p : p + 6].any()]
        expected = sum(min(4, 23 - m) * min(6, 20 - p) for m in range(0, 23, 4) for p in live_pieces)
    else:  # (N-tile, M-piece) pairs of N-tiles that keep something: every row of every live N-tile
        live_cols = sum(min(4, 20 - n) for n in range(0, 20, 4) if live_rows[n : n + 4].any())
        expected = 23 * live_cols
    assert int(plan.output_tile_elements.sum()) == expected
    assert len(plan.output_tile_elements) == plan.tile.max() + 1


@pytest.mark.parametrize(("dataflow", "field", "need"), [
    ("ws", "output_bytes", 2 * 4 * 4),  # one token row of 4 columns of 32-bit partial sums, per slot
    ("os", "output_bytes", 2 * 4 * 4),  # one drain beat: a row of 4 finished 32-bit results (rows drain)
    ("os-columns-2", "output_bytes", 2 * 2 * 4 * 4),  # two columns of 4 results per beat
    ("is", "output_bytes", 2 * 4 * 4),
])  # fmt: skip
def test_refuses_only_when_not_one_line_fits_and_names_the_smallest_buffer(dataflow, field, need):
    op = Gemm("g", M=12, K=8, N=12)
    micro = {"drain": "columns", "drain_lines_per_cycle": 2} if dataflow == "os-columns-2" else {}
    dataflow = dataflow.split("-")[0]
    too_small = small_config(rows=4, cols=4, dataflow=dataflow, output_bytes=need - 2, microarch=micro)
    message = rf"buffers\.{field}: {need - 2} bytes .* smallest size that works is {need}"
    with pytest.raises(TilingError, match=message) as info:
        plan_folds(op, too_small)
    assert (info.value.field, info.value.smallest_bytes) == (f"buffers.{field}", need)
    just_enough = small_config(rows=4, cols=4, dataflow=dataflow, output_bytes=need, microarch=micro)
    row, _ = simulate_gemm(op, just_enough)
    assert row["macs_issued"] == 12 * 8 * 12 and row["cycles"] > 0


def test_ws_inputs_that_do_not_stay_resident_are_tiled_to_the_input_slot():
    op = Gemm("g", M=40, K=8, N=4)
    config = small_config(rows=4, cols=4, dataflow="ws", input_bytes=2 * 4 * 10)  # A (320 B) not resident
    assert streamed_lines_per_tile(op, config) == 10  # 10 token rows x 4 active rows x 1 byte per slot
    plan = plan_folds(op, config)
    assert plan.input_bytes.max() <= config.buffers.input_bytes // 2
    assert plan.n_folds == math.ceil(40 / 10) * 2  # 4 pieces x 2 K-folds
