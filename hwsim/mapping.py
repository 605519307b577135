"""Map one GEMM onto the systolic array: the folds, what each streams, and their operand bytes.

Geometry per dataflow (``R x C`` array; GEMM ``out[M, N] = A[M, K] @ W[N, K].T``):

=========  ============  ============  =========  =========================================
dataflow   array rows    array cols    streamed   output tile (folds that write into it)
=========  ============  ============  =========  =========================================
``ws``     K (weights)   N             M          one N-tile, all its K-folds
``os``     M             N             K          one N-tile, all its M-tile folds
``is``     K (inputs)    M             N          one M-tile, all its K-folds
=========  ============  ============  =========  =========================================

**Cycles**: this module fixes the folds and what each one streams (rows ``r``, columns ``c``, stream
length ``S``, index decode); how many cycles they take -- preload, skew, pipeline, drain and how folds
overlap -- is the microarchitecture's business, in :mod:`hwsim.timing`.

**Zero-block skipping** (``sparse.skip_zero_blocks``): the index lists the kept blocks, and the array
runs a *compacted* schedule. For ``ws``/``os`` an N-tile only streams/loads the reduction indices ``k``
that some weight row of the tile keeps (the union over the tile's rows); for ``is`` a K-tile only streams
the weight rows ``n`` that keep something in it. Union members that a given row pruned still flow through
its PEs (gated: time spent, no energy when ``gate_zero_operands``): that is the load imbalance when block
rows keep different columns. Every pass over an output/K tile decodes one index entry per kept hardware
block it touches: ``index_decode_cycles_per_block`` cycles each, serial, before the pass's first fold
(``os``: before every fold, since each M-tile fold re-walks its N-tile's index). Finding the next live
tile is not free either: the controller reads the index pointer of every empty tile it passes (``ws``/``os``:
an N-tile whose block rows keep nothing; ``is``: a (weight-row piece, K-tile) pair with no kept row), one
read per empty tile at the decode cost, before the next live tile's decode (so it hides behind the previous
fold where prep overlaps). Empty tiles after the last live one cost nothing: the pointer already equals the
index's end. Without skipping the dense schedule runs and zeros are only gated.

**Buffer-aware tiling** (:func:`streamed_lines_per_tile`): an output tile's partial sums must fit one
output-buffer slot, and (``ws``) one fold's streamed inputs one input slot / (``is``) one fold's streamed
weights one weight slot. When they do not, the streamed dimension is split into the largest pieces that
fit -- ``ws``: M into row pieces, each a separate pass over all K-folds of the N-tile (weights and index
re-fetched per piece); ``os``: the N-strip's M-tiles into groups (weights re-fetched per group), down to
one M-tile stored beat by beat as it drains when not even one M-tile fits; ``is``: N into row pieces per
M-tile (inputs re-fetched per piece). Each piece is its own output tile (one store). Only when not even
one line (os: one drain beat) fits is the GEMM refused with a :class:`TilingError` naming the buffer and
the smallest size that works -- a sweep records such a point as infeasible by design.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from hwsim.config import AcceleratorConfig, Dataflow, PEArray, Sparse
from hwsim.workload import Gemm
from pruning.spec import any_per_row_tile

__all__ = ["FoldPlan", "TilingError", "drained_line_elements", "fold_lines", "fold_plan", "plan_folds",
           "streamed_lines_per_tile", "walks_index"]


@dataclass(frozen=True)
class FoldPlan:
    """Folds of one GEMM (one repeat) in execution order; arrays have one entry per fold."""

    dataflow: Dataflow
    stream: np.ndarray  # streamed length S
    rows: np.ndarray  # active array rows r
    cols: np.ndarray  # active array cols c
    decode_cycles: np.ndarray  # index reads before the fold (first fold of a pass only), in cycles
    index_blocks: np.ndarray  # kept blocks whose index entries the fold's pass reads (0 elsewhere)
    empty_tiles: np.ndarray  # empty tiles the controller passes over just before this fold
    tile: np.ndarray  # output tile id; folds of one tile are consecutive
    weight_bytes: np.ndarray  # weight operand bytes fed to the array by this fold
    weight_dram_bytes: np.ndarray  # weight bytes this fold must bring from DRAM (0 when reused on chip)
    input_bytes: np.ndarray  # activation operand bytes fed to the array by this fold
    psum_elements: np.ndarray  # partial sums read-modified-written by this fold
    output_tile_elements: np.ndarray  # per output tile: elements stored at its end
    useful_macs: int  # MACs with a non-zero weight (one repeat)
    # where each fold sits in the uncompacted GEMM (see fold_lines): first weight row n, first token m, and
    # the first reduction line -- ws: position in the N-tile's compacted k list; os: 0; is: first k
    n_first: np.ndarray
    m_first: np.ndarray
    k_first: np.ndarray

    @property
    def n_folds(self) -> int:
        return len(self.stream)

    # totals: cached, since a sweep reads them for every point that reuses the plan
    @functools.cached_property
    def issued_macs(self) -> int:
        """PE-cycles doing a MAC (useful or on a gated zero weight)."""
        return int(np.sum(self.stream.astype(np.int64) * self.rows * self.cols))

    @functools.cached_property
    def opens_tile(self) -> np.ndarray:
        """Per fold: whether it is the first fold of its output tile (``tile`` differs from the previous)."""
        return np.append(True, self.tile[1:] != self.tile[:-1])[: self.n_folds]

    @functools.cached_property
    def weight_bytes_total(self) -> float:
        return float(self.weight_bytes.sum())

    @functools.cached_property
    def input_bytes_total(self) -> float:
        return float(self.input_bytes.sum())

    @functools.cached_property
    def psum_elements_total(self) -> float:
        return float(self.psum_elements.sum())


def _tiles(length: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    starts = np.arange(0, length, size, dtype=np.int64)
    return starts, np.minimum(size, length - starts)


def _kept_blocks_in(block_mask: np.ndarray, block: tuple[int, int], n_starts, n_sizes, k_starts, k_sizes):
    """Kept hardware blocks touching each ``[n range] x [k range]`` (arrays broadcast), by 2-D prefix sums."""
    prefix = np.zeros((block_mask.shape[0] + 1, block_mask.shape[1] + 1), dtype=np.int64)
    prefix[1:, 1:] = np.cumsum(np.cumsum(block_mask, axis=0), axis=1)
    r0, r1 = n_starts // block[0], (n_starts + n_sizes - 1) // block[0] + 1
    c0, c1 = k_starts // block[1], (k_starts + k_sizes - 1) // block[1] + 1
    return prefix[r1, c1] - prefix[r0, c1] - prefix[r1, c0] + prefix[r0, c0]


class TilingError(ValueError):
    """A buffer slot cannot hold the smallest piece of a GEMM the mapping can stream.

    ``field`` names the buffer (``buffers.output_bytes``), ``smallest_bytes`` the smallest size (slots
    included) that works. A sweep records such a point as infeasible by design, not as a failure.
    """

    def __init__(self, message: str, field: str, smallest_bytes: int) -> None:
        super().__init__(message)
        self.field, self.smallest_bytes = field, smallest_bytes

    @classmethod
    def for_slot(cls, op: Gemm, config: AcceleratorConfig, field: str, what: str, bytes_needed: float) -> TilingError:
        """``buffers.<field>`` cannot hold ``what`` (``bytes_needed`` per slot) of ``op``."""
        buffers = config.buffers
        need = math.ceil(bytes_needed) * buffers.slots
        return cls(
            f"buffers.{field}: {getattr(buffers, field)} bytes cannot hold {what} ({bytes_needed:.0f} bytes) of op "
            f"{op.name!r} (M={op.M}, K={op.K}, N={op.N}) in a {'double-buffered ' if buffers.slots == 2 else ''}slot; "
            f"the smallest size that works is {need} bytes", f"buffers.{field}", need)  # fmt: skip


def drained_line_elements(op: Gemm, config: AcceleratorConfig) -> int:
    """``os``: results per drain beat -- a row of the tile (``drain: rows``) or a column (``columns``), times
    ``drain_lines_per_cycle``: what one output-buffer slot must hold when a tile is stored as it drains."""
    R, C = config.pe_array.rows, config.pe_array.cols
    micro = config.microarch
    line, lines = (min(op.N, C), min(op.M, R)) if micro.drain.value == "rows" else (min(op.M, R), min(op.N, C))
    return line * min(micro.drain_lines_per_cycle, lines)


def streamed_lines_per_tile(op: Gemm, config: AcceleratorConfig) -> int:
    """Streamed lines per output tile: ``ws``/``os`` M rows, ``is`` N rows (all of them when they fit).

    The largest count whose partial sums (``acc_bits`` per element) fit one output-buffer slot and, for
    ``ws``, whose streamed inputs of one fold fit one input slot (unless all of A stays resident) or, for
    ``is``, whose streamed weights of one fold fit one weight slot. ``os`` keeps its partial sums in the PEs:
    its output tiles are whole M-tiles (multiples of the array rows) whose drained results fit a slot, and
    when not even one M-tile fits, each fold's tile is stored as it drains, so a slot must hold one drain
    beat (:func:`drained_line_elements`). Raises :class:`TilingError` (naming the buffer and the smallest
    slot size that would work) when not even that fits.
    """
    R, C = config.pe_array.rows, config.pe_array.cols
    buffers, dataflow = config.buffers, config.pe_array.dataflow
    slots, acc_bytes = buffers.slots, config.pe_array.acc_bits / 8
    abytes, wbytes = op.act_bits / 8, op.weight_bits / 8
    if dataflow is Dataflow.OS:  # partial sums stay in the PEs; the slot holds drained results until stored
        slot, tile_rows = buffers.output_bytes // slots, min(R, op.M)
        fit = int(slot // (min(op.N, C) * acc_bytes))  # result rows of an N-strip that fit
        if fit >= op.M:
            return op.M
        if fit >= tile_rows:
            return fit - fit % tile_rows  # whole M-tiles
        beat = drained_line_elements(op, config) * acc_bytes
        if slot >= beat:
            return tile_rows  # one M-tile, stored beat by beat as it drains
        raise TilingError.for_slot(op, config, "output_bytes", "one drain beat", beat)
    if dataflow is Dataflow.IS:
        full = op.N
        limits = {"output_bytes": min(op.M, C) * acc_bytes, "weight_bytes": min(R, op.K) * wbytes}
    else:
        full = op.M
        limits = {"output_bytes": min(op.N, C) * acc_bytes}
        if op.M * op.K * abytes > buffers.input_bytes // slots:  # A not resident
            limits["input_bytes"] = min(R, op.K) * abytes
    lines = full
    for field, bytes_per_line in limits.items():
        fit = int(getattr(buffers, field) // slots // bytes_per_line)
        if fit < 1:
            raise TilingError.for_slot(op, config, field, "one streamed row", bytes_per_line)
        lines = min(lines, fit)
    return lines


def _empties_before(live: np.ndarray) -> np.ndarray:
    """For each position of a boolean sequence that is live: the dead positions since the previous live one."""
    positions = np.flatnonzero(live)
    gaps = np.diff(np.append(-1, positions)) - 1
    out = np.zeros(len(live), dtype=np.int64)
    out[positions] = gaps
    return out


def walks_index(op: Gemm, sparse: Sparse) -> bool:
    """Whether ``op`` runs the compacted, index-driven schedule: it has a mask, the array skips zero blocks
    (``config.sparse``), and -- with ``dense_bypass`` -- the mask does not keep every block (then the dense
    path runs)."""
    if not sparse.skip_zero_blocks or op.mask is None:
        return False
    return not (sparse.dense_bypass and bool(op.block_occupancy.all()))


def _union_counts(mask: np.ndarray, tile: int) -> np.ndarray:
    """For tiles of ``tile`` weight rows: how many reduction lines any row of the tile keeps."""
    return any_per_row_tile(mask, tile).sum(axis=1, dtype=np.int64)


def _expand(per_outer: np.ndarray, inner_total: np.ndarray, size: int):
    """Split each outer pass of ``inner_total`` reduction lines into folds of at most ``size`` lines.

    Returns (outer index per fold, lines per fold, position of the fold in its pass); passes with 0 lines
    vanish.
    """
    folds_per_outer = -(-inner_total // size)
    outer = np.repeat(per_outer, folds_per_outer)
    starts = np.cumsum(folds_per_outer) - folds_per_outer
    position = np.arange(len(outer)) - np.repeat(starts, folds_per_outer)
    lines = np.minimum(size, np.repeat(inner_total, folds_per_outer) - position * size)
    return outer, lines, position


def plan_folds(op: Gemm, config: AcceleratorConfig) -> FoldPlan:
    """Folds of ``op`` on ``config``'s array, vectorised over tiles (no per-fold Python loop)."""
    return fold_plan(op, config.pe_array, config.sparse, streamed_lines_per_tile(op, config))


def fold_plan(op: Gemm, pe_array: PEArray, sparse: Sparse, lines: int) -> FoldPlan:
    """:func:`plan_folds` from all it reads: the array, the sparse settings and the streamed lines per tile
    (the buffers' only say; configs that agree on these share the plan)."""
    R, C = pe_array.rows, pe_array.cols
    M, K, N = op.M, op.K, op.N
    skip = walks_index(op, sparse)
    decode_per_block = sparse.index_decode_cycles_per_block if skip else 0
    wbytes, abytes = op.weight_bits / 8, op.act_bits / 8
    useful = M * op.kept_weights
    dataflow = pe_array.dataflow
    block_mask = op.block_occupancy if skip else None

    def compaction(starts, sizes) -> tuple[np.ndarray, np.ndarray]:
        """Per N-tile of W: reduction lines it streams, and kept blocks it indexes."""
        if not skip:
            return np.full(len(starts), K), np.zeros(len(starts), dtype=np.int64)
        return (_union_counts(op.mask, C),
                _kept_blocks_in(block_mask, op.block, starts, sizes, 0, K))  # fmt: skip

    if dataflow in (Dataflow.WS, Dataflow.OS):
        n_starts, n_sizes = _tiles(N, C)
        k_eff, blocks = compaction(n_starts, n_sizes)
        empties = _empties_before(k_eff > 0)  # empty N-tiles read just before each live one
        if dataflow is Dataflow.WS:
            # one pass per (N-tile, M-piece): all K-folds of the N-tile, streaming the piece's rows
            piece_starts, piece_sizes = _tiles(M, lines)
            n_of_pass = np.repeat(np.arange(len(n_starts)), len(piece_sizes))
            piece_of_pass = np.tile(np.arange(len(piece_sizes)), len(n_starts))
            pass_id, rows, position = _expand(np.arange(len(n_of_pass)), k_eff[n_of_pass], R)
            first = position == 0
            n_index, piece = n_of_pass[pass_id], piece_of_pass[pass_id]
            n_first, m_first, k_first = n_starts[n_index], piece_starts[piece], position * R
            cols = n_sizes[n_index]
            stream = piece_sizes[piece]
            index_blocks = np.where(first, blocks[n_index], 0)
            empty_tiles = np.where(first & (piece == 0), empties[n_index], 0)
            weight_bytes = rows * cols * wbytes
            weight_dram = weight_bytes
            input_bytes = stream * rows * abytes
            psum = stream * cols
            live = k_eff[n_of_pass] > 0
            out_elements = piece_sizes[piece_of_pass[live]] * n_sizes[n_of_pass[live]]
            tile = np.cumsum(first) - 1
        else:  # OS: every (N-tile, M-tile) pair is one fold streaming the compacted K
            # output tile = a group of M-tiles of the N-tile's column strip (the whole strip when it fits);
            # its weights come from DRAM once per group and are re-streamed from the weight buffer for
            # every M-tile of the group.
            m_starts, m_sizes = _tiles(M, R)
            per_group = max(1, lines // R) if lines < M else len(m_starts)
            group_rows = np.add.reduceat(m_sizes, np.arange(0, len(m_starts), per_group))
            live = np.flatnonzero(k_eff > 0)
            n_index = np.repeat(live, len(m_starts))
            m_index = np.tile(np.arange(len(m_starts)), len(live))
            rows, cols, stream = m_sizes[m_index], n_sizes[n_index], k_eff[n_index]
            index_blocks = blocks[n_index]
            empty_tiles = np.where(m_index == 0, empties[n_index], 0)
            weight_bytes = cols * stream * wbytes
            weight_dram = np.where(m_index % per_group == 0, weight_bytes, 0)
            input_bytes = rows * stream * abytes
            psum = rows * cols
            out_elements = (n_sizes[live][:, None] * group_rows[None, :]).ravel()
            tile = np.repeat(np.arange(len(live)), len(m_starts)) * len(group_rows) + m_index // per_group
            n_first, m_first, k_first = n_starts[n_index], m_starts[m_index], np.zeros_like(m_index)
    else:  # IS: array rows <- K (stationary inputs), cols <- M, stream the weight rows n of one N-piece
        k_starts, k_sizes = _tiles(K, R)
        m_starts, m_sizes = _tiles(M, C)
        piece_starts, piece_sizes = _tiles(N, lines)
        if skip:  # (N-piece, K-tile): weight rows of the piece that keep something in the K-tile
            any_kept = np.logical_or.reduceat(op.mask, k_starts, axis=1)  # [N, K-tiles]
            n_eff = np.add.reduceat(any_kept.astype(np.int64), piece_starts, axis=0)
            # the first such row (N where none: those pairs run no fold)
            row_ids = np.where(any_kept, np.arange(N)[:, None], N)
            first_row = np.minimum.reduceat(row_ids, piece_starts, axis=0)
            blocks = _kept_blocks_in(block_mask, op.block, piece_starts[:, None], piece_sizes[:, None],
                                     k_starts[None, :], k_sizes[None, :])  # fmt: skip
        else:
            n_eff = np.repeat(piece_sizes[:, None], len(k_starts), axis=1)
            first_row = np.repeat(piece_starts[:, None], len(k_starts), axis=1)
            blocks = np.zeros_like(n_eff)
        piece_live, k_live = np.nonzero(n_eff > 0)  # row-major: pieces in order, K-tiles in order within
        empties = _empties_before((n_eff > 0).ravel())[piece_live * n_eff.shape[1] + k_live]  # each M-tile rescans
        live_pieces = np.unique(piece_live)
        m_index = np.repeat(np.arange(len(m_starts)), len(piece_live))
        piece = np.tile(piece_live, len(m_starts))
        k_index = np.tile(k_live, len(m_starts))
        rows, cols, stream = k_sizes[k_index], m_sizes[m_index], n_eff[piece, k_index]
        index_blocks = blocks[piece, k_index]
        empty_tiles = np.tile(empties, len(m_starts))
        weight_bytes = stream * rows * wbytes
        weight_dram = weight_bytes
        input_bytes = rows * cols * abytes
        psum = stream * cols
        tile = m_index * len(live_pieces) + np.searchsorted(live_pieces, piece)
        out_elements = (m_sizes[:, None] * piece_sizes[live_pieces][None, :]).ravel()
        n_first, m_first, k_first = first_row[piece, k_index], m_starts[m_index], k_starts[k_index]

    return FoldPlan(
        dataflow=dataflow,
        stream=np.asarray(stream, dtype=np.int64),
        rows=np.asarray(rows, dtype=np.int64),
        cols=np.asarray(cols, dtype=np.int64),
        decode_cycles=(np.asarray(index_blocks, dtype=np.int64) + empty_tiles) * decode_per_block,
        index_blocks=np.asarray(index_blocks, dtype=np.int64),
        empty_tiles=np.asarray(empty_tiles, dtype=np.int64),
        tile=np.asarray(tile, dtype=np.int64),
        weight_bytes=np.asarray(weight_bytes, dtype=np.float64),
        weight_dram_bytes=np.asarray(weight_dram, dtype=np.float64),
        input_bytes=np.asarray(input_bytes, dtype=np.float64),
        psum_elements=np.asarray(psum, dtype=np.int64),
        output_tile_elements=np.asarray(out_elements, dtype=np.int64),
        useful_macs=useful,
        n_first=np.asarray(n_first, dtype=np.int64),
        m_first=np.asarray(m_first, dtype=np.int64),
        k_first=np.asarray(k_first, dtype=np.int64),
    )


def fold_lines(op: Gemm, config: AcceleratorConfig, plan: FoldPlan, fold: int) -> dict[str, np.ndarray]:
    """The operand lines fold ``fold`` of ``plan`` touches, as index arrays into the uncompacted GEMM.

    ``n``: weight rows (output features), ``k``: reduction indices, ``m``: tokens. Rows skipped inside a
    compacted range (``is``: weight rows of the piece that keep nothing in the K-tile; ``ws``/``os``:
    reduction lines no row of the N-tile keeps) are left out, exactly as the array streams them.
    """
    skip = walks_index(op, config.sparse)
    n0, m0, k0 = int(plan.n_first[fold]), int(plan.m_first[fold]), int(plan.k_first[fold])
    rows, cols, stream = int(plan.rows[fold]), int(plan.cols[fold]), int(plan.stream[fold])
    if plan.dataflow is Dataflow.IS:
        k = np.arange(k0, k0 + rows)
        m = np.arange(m0, m0 + cols)
        if not skip:
            return {"n": np.arange(n0, n0 + stream), "k": k, "m": m}
        live = np.flatnonzero(op.mask[n0:, k0 : k0 + rows].any(axis=1)) + n0  # the piece's live rows from n0
        return {"n": live[:stream], "k": k, "m": m}
    n = np.arange(n0, n0 + cols)
    ks = np.flatnonzero(op.mask[n0 : n0 + cols].any(axis=0)) if skip else np.arange(op.K)
    if plan.dataflow is Dataflow.WS:
        return {"n": n, "k": ks[k0 : k0 + rows], "m": np.arange(m0, m0 + stream)}
    return {"n": n, "k": ks, "m": np.arange(m0, m0 + rows)}
