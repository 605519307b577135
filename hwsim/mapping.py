"""Map one GEMM onto the systolic array: the folds, their closed-form cycles, and their operand bytes.

Geometry per dataflow (``R x C`` array; GEMM ``out[M, N] = A[M, K] @ W[N, K].T``):

=========  ============  ============  =========  =========================================
dataflow   array rows    array cols    streamed   output tile (folds that write into it)
=========  ============  ============  =========  =========================================
``ws``     K (weights)   N             M          one N-tile, all its K-folds
``os``     M             N             K          one N-tile, all its M-tile folds
``is``     K (inputs)    M             N          one M-tile, all its K-folds
=========  ============  ============  =========  =========================================

**Cycles of one fold** with ``r`` active rows, ``c`` active columns and a stream of length ``S``::

    cycles = S + 2 r + c - 2 (+ index decode)

Derivation (operands are skewed so that PE ``(i, j)`` meets stream element ``s`` at cycle ``s + i + j``):
* ``ws``/``is``: ``r`` cycles to shift the stationary tile into the rows (preload), then the last
  stream element ``S - 1`` reaches the last PE ``(r-1, c-1)`` at cycle ``S - 1 + r - 1 + c - 1`` and its
  result leaves the bottom edge at the end of that cycle: ``r + (S + r + c - 2)``.
* ``os``: the last MAC happens at cycle ``S - 1 + r - 1 + c - 1`` (fill + steady state), then the ``r``
  rows of finished outputs drain one row per cycle: ``(S + r + c - 2) + r``.

**Zero-block skipping** (``sparse.skip_zero_blocks``): the index lists the kept blocks, and the array
runs a *compacted* schedule. For ``ws``/``os`` an N-tile only streams/loads the reduction indices ``k``
that some weight row of the tile keeps (the union over the tile's rows); for ``is`` a K-tile only streams
the weight rows ``n`` that keep something in it. Union members that a given row pruned still flow through
its PEs (gated: time spent, no energy when ``gate_zero_operands``): that is the load imbalance when block
rows keep different columns. Every pass over an output/K tile decodes one index entry per kept hardware
block it touches: ``index_decode_cycles_per_block`` cycles each, serial, before the pass's first fold.
Without skipping the dense schedule runs and zeros are only gated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.config import AcceleratorConfig, Dataflow
from hwsim.workload import Gemm
from pruning.spec import block_occupancy

__all__ = ["FoldPlan", "fold_cycles", "plan_folds"]


def fold_cycles(stream: np.ndarray | int, rows: np.ndarray | int, cols: np.ndarray | int):
    """Closed-form cycles of one fold (without index decode); see the module docstring."""
    return stream + 2 * rows + cols - 2


@dataclass(frozen=True)
class FoldPlan:
    """Folds of one GEMM (one repeat) in execution order; arrays have one entry per fold."""

    dataflow: Dataflow
    stream: np.ndarray  # streamed length S
    rows: np.ndarray  # active array rows r
    cols: np.ndarray  # active array cols c
    decode_cycles: np.ndarray  # index decode before the fold (first fold of a pass only)
    index_blocks: np.ndarray  # kept blocks whose index entries the fold's pass reads (0 elsewhere)
    tile: np.ndarray  # output tile id; folds of one tile are consecutive
    weight_bytes: np.ndarray  # weight operand bytes fed to the array by this fold
    weight_dram_bytes: np.ndarray  # weight bytes this fold must bring from DRAM (0 when reused on chip)
    input_bytes: np.ndarray  # activation operand bytes fed to the array by this fold
    psum_elements: np.ndarray  # partial sums read-modified-written by this fold
    output_tile_elements: np.ndarray  # per output tile: elements stored at its end
    useful_macs: int  # MACs with a non-zero weight (one repeat)

    @property
    def n_folds(self) -> int:
        return len(self.stream)

    @property
    def compute_cycles(self) -> np.ndarray:
        return fold_cycles(self.stream, self.rows, self.cols) + self.decode_cycles

    @property
    def issued_macs(self) -> int:
        """PE-cycles doing a MAC (useful or on a gated zero weight)."""
        return int(np.sum(self.stream.astype(np.int64) * self.rows * self.cols))


def _tiles(length: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    starts = np.arange(0, length, size, dtype=np.int64)
    return starts, np.minimum(size, length - starts)


def _kept_blocks_per_tile(block_mask: np.ndarray, starts, sizes, block: int, axis: int) -> np.ndarray:
    """Kept hardware blocks in the block rows (axis 0) / cols (axis 1) that each tile intersects."""
    per_line = block_mask.sum(axis=1 - axis).astype(np.int64)
    cumulative = np.concatenate([[0], np.cumsum(per_line)])
    first = starts // block
    last = (starts + sizes - 1) // block
    return cumulative[last + 1] - cumulative[first]


def _union_counts(mask: np.ndarray, starts, sizes, axis: int) -> np.ndarray:
    """For tiles along ``axis`` of ``mask``: how many lines of the other axis any row of the tile keeps."""
    any_kept = np.logical_or.reduceat(mask, starts, axis=axis)
    return any_kept.sum(axis=1 - axis).astype(np.int64)


def _expand(per_outer: np.ndarray, inner_total: np.ndarray, size: int):
    """Split each outer pass of ``inner_total`` reduction lines into folds of at most ``size`` lines.

    Returns (outer index per fold, lines per fold, first-fold flags); passes with 0 lines vanish.
    """
    folds_per_outer = -(-inner_total // size)
    outer = np.repeat(per_outer, folds_per_outer)
    starts = np.cumsum(folds_per_outer) - folds_per_outer
    position = np.arange(len(outer)) - np.repeat(starts, folds_per_outer)
    lines = np.minimum(size, np.repeat(inner_total, folds_per_outer) - position * size)
    return outer, lines, position == 0


def plan_folds(op: Gemm, config: AcceleratorConfig) -> FoldPlan:
    """Folds of ``op`` on ``config``'s array, vectorised over tiles (no per-fold Python loop)."""
    R, C = config.pe_array.rows, config.pe_array.cols
    M, K, N = op.M, op.K, op.N
    skip = config.sparse.skip_zero_blocks and op.mask is not None
    decode_per_block = config.sparse.index_decode_cycles_per_block if skip else 0
    wbytes, abytes = op.weight_bits / 8, op.act_bits / 8
    useful = M * (N * K if op.mask is None else int(op.mask.sum()))
    dataflow = config.pe_array.dataflow
    block_mask = block_occupancy(op.mask, op.block) if skip else None

    def compaction(starts, sizes, axis: int, full: int) -> tuple[np.ndarray, np.ndarray]:
        """Per tile along ``axis`` of W: lines of the other axis it streams, and kept blocks it indexes."""
        if not skip:
            return np.full(len(starts), full), np.zeros(len(starts), dtype=np.int64)
        return (_union_counts(op.mask, starts, sizes, axis=axis),
                _kept_blocks_per_tile(block_mask, starts, sizes, op.block[axis], axis=axis))  # fmt: skip

    if dataflow in (Dataflow.WS, Dataflow.OS):
        n_starts, n_sizes = _tiles(N, C)
        k_eff, blocks = compaction(n_starts, n_sizes, axis=0, full=K)
        if dataflow is Dataflow.WS:
            tile_id, rows, first = _expand(np.arange(len(n_starts)), k_eff, R)
            cols = n_sizes[tile_id]
            stream = np.full(len(rows), M, dtype=np.int64)
            index_blocks = np.where(first, blocks[tile_id], 0)
            weight_bytes = rows * cols * wbytes
            weight_dram = weight_bytes
            input_bytes = stream * rows * abytes
            psum = stream * cols
            live = k_eff > 0
            out_elements = M * n_sizes[live]
            tile = np.cumsum(first) - 1
        else:  # OS: every (N-tile, M-tile) pair is one fold streaming the compacted K
            # output tile = the N-tile's whole column strip; its weights come from DRAM once and are
            # re-streamed from the weight buffer for every M-tile.
            m_starts, m_sizes = _tiles(M, R)
            live = np.flatnonzero(k_eff > 0)
            n_index = np.repeat(live, len(m_starts))
            m_index = np.tile(np.arange(len(m_starts)), len(live))
            rows, cols, stream = m_sizes[m_index], n_sizes[n_index], k_eff[n_index]
            index_blocks = blocks[n_index]
            weight_bytes = cols * stream * wbytes
            weight_dram = np.where(m_index == 0, weight_bytes, 0)
            input_bytes = rows * stream * abytes
            psum = rows * cols
            out_elements = M * n_sizes[live]
            tile = np.repeat(np.arange(len(live)), len(m_starts))
    else:  # IS: array rows <- K (stationary inputs), cols <- M, stream the weight rows n
        k_starts, k_sizes = _tiles(K, R)
        m_starts, m_sizes = _tiles(M, C)
        n_eff, blocks = compaction(k_starts, k_sizes, axis=1, full=N)
        live = np.flatnonzero(n_eff > 0)
        m_index = np.repeat(np.arange(len(m_starts)), len(live))
        k_index = np.tile(live, len(m_starts))
        rows, cols, stream = k_sizes[k_index], m_sizes[m_index], n_eff[k_index]
        index_blocks = blocks[k_index]
        weight_bytes = stream * rows * wbytes
        weight_dram = weight_bytes
        input_bytes = rows * cols * abytes
        psum = stream * cols
        tile = m_index if len(live) else np.zeros(0, dtype=np.int64)
        out_elements = N * m_sizes if len(live) else np.zeros(0, dtype=np.int64)

    return FoldPlan(
        dataflow=dataflow,
        stream=np.asarray(stream, dtype=np.int64),
        rows=np.asarray(rows, dtype=np.int64),
        cols=np.asarray(cols, dtype=np.int64),
        decode_cycles=np.asarray(index_blocks, dtype=np.int64) * decode_per_block,
        index_blocks=np.asarray(index_blocks, dtype=np.int64),
        tile=np.asarray(tile, dtype=np.int64),
        weight_bytes=np.asarray(weight_bytes, dtype=np.float64),
        weight_dram_bytes=np.asarray(weight_dram, dtype=np.float64),
        input_bytes=np.asarray(input_bytes, dtype=np.float64),
        psum_elements=np.asarray(psum, dtype=np.int64),
        output_tile_elements=np.asarray(out_elements, dtype=np.int64),
        useful_macs=useful,
    )
