"""Per-cycle reference model for small arrays: steps an explicit PE grid and an explicit DMA/array
pipeline one cycle at a time, and computes the numeric GEMM result in the array's own order.

It is deliberately written independently of the fast path (Python loops over tiles, blocks and cycles,
register-level operand movement) so that tests can hold the two to the same cycle count, and hold the
numbers it produces to a dense ``torch`` matmul with the masked weights. Only the grouping of folds into
DMA chunks and the byte counts of loads/stores are shared with the fast path (they are mapping choices,
not cycle arithmetic). Use it for arrays up to ~16x16 and GEMMs of a few thousand MACs.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from hwsim.config import AcceleratorConfig, Dataflow
from hwsim.mapping import plan_folds, streamed_lines_per_tile
from hwsim.memory import make_chunks, transfer_cycles
from hwsim.workload import Gemm

__all__ = [
    "FoldGeometry",
    "ReferenceResult",
    "iter_folds",
    "reference_gemm",
    "step_output_stationary",
    "step_stationary",
]


def step_stationary(stationary: np.ndarray, stream: np.ndarray) -> tuple[np.ndarray, int]:
    """WS/IS fold on an ``r x c`` grid: preload ``stationary[r, c]``, stream ``stream[S, r]`` from the left.

    Returns ``(out[S, c], cycles)`` with ``out = stream @ stationary``.
    """
    r, c = stationary.shape
    S = stream.shape[0]
    grid = np.zeros((r, c))
    cycles = 0
    for t in range(r):  # preload: rows shift down one per cycle, last row enters first
        grid[1:] = grid[:-1].copy()
        grid[0] = stationary[r - 1 - t]
        cycles += 1
    assert np.array_equal(grid, stationary)
    a_reg = np.zeros((r, c))
    a_valid = np.zeros((r, c), dtype=bool)
    p_reg = np.zeros((r, c))
    out = np.zeros((S, c))
    collected = 0
    t = 0
    while collected < S * c:
        new_a = np.zeros((r, c))
        new_valid = np.zeros((r, c), dtype=bool)
        new_a[:, 1:], new_valid[:, 1:] = a_reg[:, :-1], a_valid[:, :-1]
        for i in range(r):  # skewed feeder: row i gets stream element t - i
            s = t - i
            if 0 <= s < S:
                new_a[i, 0], new_valid[i, 0] = stream[s, i], True
        above = np.zeros((r, c))
        above[1:] = p_reg[:-1]
        new_p = above + np.where(new_valid, grid * new_a, 0.0)
        for j in range(c):  # bottom edge: the finished partial sum of element t - (r-1) - j
            s = t - (r - 1) - j
            if 0 <= s < S:
                out[s, j] = new_p[r - 1, j]
                collected += 1
        a_reg, a_valid, p_reg = new_a, new_valid, new_p
        t += 1
    return out, cycles + t


def step_output_stationary(a_tile: np.ndarray, w_tile: np.ndarray) -> tuple[np.ndarray, int]:
    """OS fold: ``a_tile[m, S]`` enters rows from the left, ``w_tile[c, S]`` enters columns from the top.

    Returns ``(out[m, c], cycles)`` with ``out = a_tile @ w_tile.T``, including the row-by-row drain.
    """
    m, S = a_tile.shape
    c = w_tile.shape[0]
    a_reg, b_reg = np.zeros((m, c)), np.zeros((m, c))
    a_valid, b_valid = np.zeros((m, c), dtype=bool), np.zeros((m, c), dtype=bool)
    acc = np.zeros((m, c))
    macs_left, t = m * c * S, 0
    while macs_left:
        new_a, new_b = np.zeros((m, c)), np.zeros((m, c))
        va, vb = np.zeros((m, c), dtype=bool), np.zeros((m, c), dtype=bool)
        new_a[:, 1:], va[:, 1:] = a_reg[:, :-1], a_valid[:, :-1]
        new_b[1:, :], vb[1:, :] = b_reg[:-1, :], b_valid[:-1, :]
        for i in range(m):
            if 0 <= t - i < S:
                new_a[i, 0], va[i, 0] = a_tile[i, t - i], True
        for j in range(c):
            if 0 <= t - j < S:
                new_b[0, j], vb[0, j] = w_tile[j, t - j], True
        both = va & vb
        acc += np.where(both, new_a * new_b, 0.0)
        macs_left -= int(both.sum())
        a_reg, b_reg, a_valid, b_valid = new_a, new_b, va, vb
        t += 1
    out = np.zeros((m, c))
    for step in range(m):  # drain: the bottom row leaves each cycle, the rest shift down
        out[m - 1 - step] = acc[m - 1]
        acc[1:] = acc[:-1].copy()
        t += 1
    return out, t


def _kept_blocks(mask: np.ndarray, block: tuple[int, int], n_range=None, k_range=None) -> int:
    """Kept hardware blocks in the block rows touching ``n_range`` (or block cols touching ``k_range``)."""
    br, bc = block
    N, K = mask.shape
    rows = range(math.ceil(N / br))
    cols = range(math.ceil(K / bc))
    if n_range is not None:
        rows = range(n_range[0] // br, (n_range[1] - 1) // br + 1)
    if k_range is not None:
        cols = range(k_range[0] // bc, (k_range[1] - 1) // bc + 1)
    return sum(1 for bi in rows for bj in cols if mask[bi * br : (bi + 1) * br, bj * bc : (bj + 1) * bc].any())


@dataclass(frozen=True)
class ReferenceResult:
    out: np.ndarray  # [M, N]
    fold_cycles: list[int]
    cycles: int
    compute_cycles: int


@dataclass(frozen=True)
class FoldGeometry:
    """Which operand lines one fold touches, in dataflow order (indices into the *uncompacted* GEMM).

    ``n_rows``: weight rows (output features); ``k_cols``: reduction indices; ``m_rows``: tokens;
    ``decode_blocks``: kept blocks whose index entries are decoded before this fold; ``tile``: output tile.
    """

    n_rows: tuple[int, ...]
    k_cols: tuple[int, ...]
    m_rows: tuple[int, ...]
    decode_blocks: int
    tile: int


def iter_folds(op: Gemm, config: AcceleratorConfig):
    """Folds of ``op`` in execution order, enumerated with explicit loops (see ``hwsim.mapping``).

    The streamed lines per output tile (buffer-aware tiling) are the mapping's choice,
    :func:`hwsim.mapping.streamed_lines_per_tile`; the loops over pieces are written out here.
    """
    R, C = config.pe_array.rows, config.pe_array.cols
    M, K, N = op.M, op.K, op.N
    skip = config.sparse.skip_zero_blocks and op.mask is not None
    mask = op.mask if op.mask is not None else np.ones((N, K), dtype=bool)
    dataflow = config.pe_array.dataflow
    lines = streamed_lines_per_tile(op, config)
    tile = -1
    if dataflow in (Dataflow.WS, Dataflow.OS):
        for n0 in range(0, N, C):
            n_rows = tuple(range(n0, min(N, n0 + C)))
            ks = [k for k in range(K) if mask[n_rows[0] : n_rows[-1] + 1, k].any()] if skip else list(range(K))
            blocks = _kept_blocks(mask, op.block, n_range=(n0, n_rows[-1] + 1)) if skip else 0
            if not ks:
                continue
            if dataflow is Dataflow.WS:
                for p0 in range(0, M, lines):  # one pass over the K-folds per piece of M rows
                    tile += 1
                    m_rows = tuple(range(p0, min(M, p0 + lines)))
                    for f, k0 in enumerate(range(0, len(ks), R)):
                        yield FoldGeometry(n_rows, tuple(ks[k0 : k0 + R]), m_rows, blocks if f == 0 else 0, tile)
            else:
                for m0 in range(0, M, R):
                    if m0 % max(lines, R) == 0:  # a new group of M-tiles: a new output tile
                        tile += 1
                    yield FoldGeometry(n_rows, tuple(ks), tuple(range(m0, min(M, m0 + R))), blocks, tile)
    else:
        for m0 in range(0, M, C):
            m_rows = tuple(range(m0, min(M, m0 + C)))
            for p0 in range(0, N, lines):
                piece = range(p0, min(N, p0 + lines))
                started = False
                for k0 in range(0, K, R):
                    k_cols = tuple(range(k0, min(K, k0 + R)))
                    ns = [n for n in piece if mask[n, k0 : k_cols[-1] + 1].any()] if skip else list(piece)
                    if not ns:
                        continue
                    if not started:
                        tile, started = tile + 1, True
                    blocks = _kept_blocks(mask, op.block, n_range=(p0, piece[-1] + 1),
                                          k_range=(k0, k_cols[-1] + 1)) if skip else 0  # fmt: skip
                    yield FoldGeometry(tuple(ns), k_cols, m_rows, blocks, tile)


def _folds(op: Gemm, A: np.ndarray, W: np.ndarray, config: AcceleratorConfig):
    """Step every fold on the PE grid: returns (Y[M, N], cycles per fold)."""
    decode = config.sparse.index_decode_cycles_per_block if config.sparse.skip_zero_blocks else 0
    Y = np.zeros((op.M, op.N))
    fold_cycles = []
    for fold in iter_folds(op, config):
        n, k, m = list(fold.n_rows), list(fold.k_cols), list(fold.m_rows)
        dataflow = config.pe_array.dataflow
        if dataflow is Dataflow.WS:
            out, cycles = step_stationary(W[n][:, k].T, A[m][:, k])
            Y[np.ix_(m, n)] += out
        elif dataflow is Dataflow.OS:
            out, cycles = step_output_stationary(A[m][:, k], W[n][:, k])
            Y[np.ix_(m, n)] += out
        else:
            out, cycles = step_stationary(A[m][:, k].T, W[n][:, k])
            Y[np.ix_(m, n)] += out.T
        fold_cycles.append(cycles + decode * fold.decode_blocks)
    return Y, fold_cycles


def _step_pipeline(load, compute, store, starts_tile, slots: int) -> int:
    """Cycle-by-cycle DMA/array pipeline with the rules of ``hwsim.memory``; returns total cycles."""
    n = len(load)
    tile_of = np.cumsum(starts_tile) - 1
    n_tiles = int(np.sum(starts_tile))
    load_done, compute_done = [None] * n, [None] * n
    store_done = [None] * n_tiles
    stores: deque[tuple[int, int]] = deque()
    dma = None  # (kind, index, end)
    array = None  # (index, end)
    next_load = next_compute = 0
    t = 0
    while True:
        if dma is not None and dma[2] == t:
            if dma[0] == "load":
                load_done[dma[1]] = t
            else:
                store_done[dma[1]] = t
            dma = None
        if array is not None and array[1] == t:
            i = array[0]
            compute_done[i] = t
            if store[i] > 0:
                stores.append((int(tile_of[i]), int(store[i])))
            array = None
        if array is None and next_compute < n and load_done[next_compute] is not None:
            i = next_compute
            tile = int(tile_of[i])
            if not starts_tile[i] or tile < slots or store_done[tile - slots] is not None:
                array = (i, t + int(compute[i]))
                next_compute += 1
        if dma is None:
            if stores:
                tile, cycles = stores.popleft()
                dma = ("store", tile, t + cycles)
            elif next_load < n and (next_load < slots or compute_done[next_load - slots] is not None):
                dma = ("load", next_load, t + int(load[next_load]))
                next_load += 1
        if dma is None and array is None and next_compute == n and not stores and next_load == n:
            return t
        t += 1


def reference_gemm(op: Gemm, A: np.ndarray, W: np.ndarray, config: AcceleratorConfig) -> ReferenceResult:
    """Cycle-exact run of one repeat of ``op`` with operands ``A[M, K]`` and ``W[N, K]`` (mask applied)."""
    if A.shape != (op.M, op.K) or W.shape != (op.N, op.K):
        raise ValueError(f"reference_gemm: A must be {(op.M, op.K)} and W {(op.N, op.K)}, got {A.shape}, {W.shape}")
    W = W * op.mask if op.mask is not None else W
    Y, fold_cycles = _folds(op, A, W, config)
    plan = plan_folds(op, config)
    if plan.n_folds != len(fold_cycles):
        raise AssertionError(f"fold count differs: reference {len(fold_cycles)}, mapping {plan.n_folds}")
    chunks = make_chunks(plan, op, config)
    compute = np.zeros(chunks.n_chunks, dtype=np.int64)
    np.add.at(compute, chunks.fold_chunk, np.asarray(fold_cycles, dtype=np.int64))
    bw = config.dram_bytes_per_cycle
    load = transfer_cycles(chunks.load_bytes, bw)
    store = np.where(chunks.store_bytes > 0, transfer_cycles(chunks.store_bytes, bw), 0)
    total = _step_pipeline(load, compute, store, chunks.starts_tile, config.buffers.slots) if chunks.n_chunks else 0
    return ReferenceResult(Y, fold_cycles, total, int(compute.sum()))
