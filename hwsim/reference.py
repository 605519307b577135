"""Per-cycle reference model for small arrays: steps an explicit PE grid and an explicit controller and
DMA one cycle at a time, and computes the numeric GEMM result in the array's own order.

It is deliberately written independently of the fast path (Python loops over tiles, blocks and cycles,
register-level operand movement, and the fold-overlap rules stated as resource conditions checked every
cycle rather than as the gap formulas of :mod:`hwsim.timing`), so that tests can hold the two to the same
cycle count, and hold the numbers it produces to a dense ``torch`` matmul with the masked weights. Shared
with the fast path are its mapping choices, not cycle arithmetic: the buffer-aware tiling
(``streamed_lines_per_tile``; the folds themselves are enumerated here, and their count is checked against
:func:`plan_folds`), the grouping of folds into DMA chunks (:func:`best_chunks`, which takes the fast path's
plan and runs its pipeline on each option) and the byte counts of loads/stores (``transfer_cycles``). The
simulate guide's "What is independent of what" table says what each check therefore proves. Use it for
arrays up to ~16x16 and GEMMs of a few thousand MACs.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, replace

import numpy as np

from hwsim.config import AcceleratorConfig, Dataflow, DrainOrder, EdgeSkew, FoldOverlap, PreloadOrder
from hwsim.mapping import plan_folds, streamed_lines_per_tile, walks_index
from hwsim.memory import best_chunks, transfer_cycles
from hwsim.workload import Gemm, Workload

__all__ = [
    "FoldGeometry",
    "FoldPhases",
    "ReferenceResult",
    "drain_beats",
    "feed_cycles",
    "iter_folds",
    "reference_gemm",
    "reference_workload_cycles",
    "step_output_stationary",
    "step_stationary",
]


def feed_cycles(S: int, bank_depth: int | None = None, swap_cycles: int = 0) -> list[int]:
    """Cycle (from the stream start) at which each of ``S`` streamed elements enters the feeder: one per cycle,
    with a ``swap_cycles`` pause whenever ``bank_depth`` elements of the ping-pong input bank are used up."""
    t, times = 0, []
    for s in range(S):
        if s and bank_depth is not None and s % bank_depth == 0:
            t += swap_cycles  # the feeder idles while the other bank becomes readable
        times.append(t)
        t += 1
    return times


def step_stationary(stationary: np.ndarray, stream: np.ndarray, preload_rows_per_cycle: int = 1,
                    feed: list[int] | None = None, wavefront: bool = False):  # fmt: skip
    """WS/IS fold on an ``r x c`` grid: preload ``stationary[r, c]``, stream ``stream[S, r]`` from the left.

    Returns ``(out[S, c], preload_cycles, pass_cycles)`` with ``out = stream @ stationary``: the preload
    shifts ``preload_rows_per_cycle`` rows down per cycle; the pass runs from the first stream element
    entering (at the cycles ``feed``, default one per cycle) until the last result leaves the bottom edge.
    With ``wavefront`` no cycle is spent before the stream (``preload_cycles`` 0): row ``i``'s weights are
    written at cycle ``i`` of the pass and reach column ``j`` at cycle ``i + j``, exactly when the input
    wavefront does; every MAC checks that its weight has arrived.
    """
    r, c = stationary.shape
    S = stream.shape[0]
    feed = list(range(S)) if feed is None else feed
    element_at = {t0: s for s, t0 in enumerate(feed)}
    grid = np.zeros((r, c))
    preload = 0
    if wavefront:
        grid = stationary.copy()
    else:
        loaded = 0
        while loaded < r:  # rows shift down, the last row enters first, p rows per cycle
            step = min(preload_rows_per_cycle, r - loaded)
            grid[step:] = grid[:-step].copy() if step < r else grid[:0]
            grid[:step] = stationary[r - loaded - step : r - loaded]
            loaded += step
            preload += 1
        assert np.array_equal(grid, stationary)
    arrival = np.add.outer(np.arange(r), np.arange(c)) if wavefront else np.full((r, c), -1)
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
        for i in range(r):  # skewed feeder: row i gets the element fed i cycles ago
            s = element_at.get(t - i)
            if s is not None:
                new_a[i, 0], new_valid[i, 0] = stream[s, i], True
        if np.any(new_valid & (arrival > t)):
            raise AssertionError(f"cycle {t}: an input reached a PE before its wavefront-loaded weight")
        above = np.zeros((r, c))
        above[1:] = p_reg[:-1]
        new_p = above + np.where(new_valid, grid * new_a, 0.0)
        for j in range(c):  # bottom edge: the finished partial sum of the element fed (r-1) + j cycles ago
            s = element_at.get(t - (r - 1) - j)
            if s is not None:
                out[s, j] = new_p[r - 1, j]
                collected += 1
        a_reg, a_valid, p_reg = new_a, new_valid, new_p
        t += 1
    return out, preload, t


def drain_beats(lines: int, line_words: int, lines_per_beat: int = 1, words_per_cycle: int | None = None) -> int:
    """Cycles to shift ``lines`` accumulator lines of ``line_words`` results out, one beat of up to
    ``lines_per_beat`` lines at a time, the result port taking ``words_per_cycle`` words of the edge beat per
    cycle (a whole beat without one); counted word by word."""
    cycles = left = 0
    while left < lines:
        beat_words = min(lines_per_beat, lines - left) * line_words
        while beat_words > 0:  # the port reads the edge beat; the chain shifts once it is empty
            beat_words -= beat_words if words_per_cycle is None else min(words_per_cycle, beat_words)
            cycles += 1
        left += lines_per_beat
    return cycles


def step_output_stationary(a_tile: np.ndarray, w_tile: np.ndarray, drain: DrainOrder = DrainOrder.ROWS,
                           lines_per_beat: int = 1, feed: list[int] | None = None,
                           words_per_cycle: int | None = None):  # fmt: skip
    """OS fold: ``a_tile[m, S]`` enters rows from the left, ``w_tile[c, S]`` enters columns from the top
    (element ``s`` at the cycle ``feed[s]``, default ``s``).

    Returns ``(out[m, c], compute_cycles, drain_cycles)`` with ``out = a_tile @ w_tile.T``: the cycles until
    the last MAC, then the shift-out that moves ``lines_per_beat`` rows (down) or columns (right) of
    accumulators out of the array per beat through a port of ``words_per_cycle`` words (:func:`drain_beats`).
    """
    m, S = a_tile.shape
    c = w_tile.shape[0]
    feed = list(range(S)) if feed is None else feed
    element_at = {t0: s for s, t0 in enumerate(feed)}
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
            s = element_at.get(t - i)
            if s is not None:
                new_a[i, 0], va[i, 0] = a_tile[i, s], True
        for j in range(c):
            s = element_at.get(t - j)
            if s is not None:
                new_b[0, j], vb[0, j] = w_tile[j, s], True
        both = va & vb
        acc += np.where(both, new_a * new_b, 0.0)
        macs_left -= int(both.sum())
        a_reg, b_reg, a_valid, b_valid = new_a, new_b, va, vb
        t += 1
    rows = DrainOrder(drain) is DrainOrder.ROWS
    chain = acc if rows else acc.T  # drain toward the bottom (rows) or the right (columns)
    lines = chain.shape[0]
    drained = np.zeros_like(chain)
    left = 0
    while left < lines:  # each beat: the last lines leave, the rest shift toward the edge
        step = min(lines_per_beat, lines - left)
        drained[lines - left - step : lines - left] = chain[lines - step :]
        chain = np.concatenate([np.zeros((step, chain.shape[1])), chain[: lines - step]])
        left += step
    out = drained if rows else drained.T
    return out, t, drain_beats(lines, chain.shape[1], lines_per_beat, words_per_cycle)


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
    phases: list[FoldPhases]  # per fold, from the grid
    fold_starts: list[int]  # stream start of every fold (cycle)
    cycles: int
    compute_cycles: int  # the same folds with every memory wait removed


@dataclass(frozen=True)
class FoldPhases:
    """One fold's phases as stepped on the grid (cycles): ``prep`` (decode + preload) before the stream,
    ``stream`` cycles of the stream port (elements and bank-swap pauses), ``fill`` from the stream's end to
    the last result at the edge (os: last MAC), ``drain`` shift-out cycles (os), ``port`` cycles a wavefront
    preload holds its row-write port from the stream start."""

    prep: int
    stream: int
    fill: int
    drain: int
    port: int = 0


@dataclass(frozen=True)
class FoldGeometry:
    """Which operand lines one fold touches, in dataflow order (indices into the *uncompacted* GEMM).

    ``n_rows``: weight rows (output features); ``k_cols``: reduction indices; ``m_rows``: tokens;
    ``decode_blocks``: kept blocks whose index entries are decoded before this fold; ``tile``: output tile;
    ``empty_tiles``: empty tiles whose index pointer the controller reads just before this fold.
    """

    n_rows: tuple[int, ...]
    k_cols: tuple[int, ...]
    m_rows: tuple[int, ...]
    decode_blocks: int
    tile: int
    empty_tiles: int = 0


def iter_folds(op: Gemm, config: AcceleratorConfig):
    """Folds of ``op`` in execution order, enumerated with explicit loops (see ``hwsim.mapping``).

    The streamed lines per output tile (buffer-aware tiling) are the mapping's choice,
    :func:`hwsim.mapping.streamed_lines_per_tile`; the loops over pieces are written out here.
    """
    R, C = config.pe_array.rows, config.pe_array.cols
    M, K, N = op.M, op.K, op.N
    skip = walks_index(op, config.sparse)
    mask = op.mask if op.mask is not None else np.ones((N, K), dtype=bool)
    dataflow = config.pe_array.dataflow
    lines = streamed_lines_per_tile(op, config)
    tile = -1
    if dataflow in (Dataflow.WS, Dataflow.OS):
        empties = 0  # empty N-tiles passed since the last live one
        for n0 in range(0, N, C):
            n_rows = tuple(range(n0, min(N, n0 + C)))
            ks = [k for k in range(K) if mask[n_rows[0] : n_rows[-1] + 1, k].any()] if skip else list(range(K))
            blocks = _kept_blocks(mask, op.block, n_range=(n0, n_rows[-1] + 1)) if skip else 0
            if not ks:
                empties += 1
                continue
            if dataflow is Dataflow.WS:
                for p0 in range(0, M, lines):  # one pass over the K-folds per piece of M rows
                    tile += 1
                    m_rows = tuple(range(p0, min(M, p0 + lines)))
                    for f, k0 in enumerate(range(0, len(ks), R)):
                        yield FoldGeometry(n_rows, tuple(ks[k0 : k0 + R]), m_rows, blocks if f == 0 else 0, tile,
                                           empties if f == 0 and p0 == 0 else 0)  # fmt: skip
            else:
                for m0 in range(0, M, R):
                    if m0 % max(lines, R) == 0:  # a new group of M-tiles: a new output tile
                        tile += 1
                    yield FoldGeometry(n_rows, tuple(ks), tuple(range(m0, min(M, m0 + R))), blocks, tile,
                                       empties if m0 == 0 else 0)  # fmt: skip
            empties = 0
    else:
        for m0 in range(0, M, C):
            m_rows = tuple(range(m0, min(M, m0 + C)))
            empties = 0  # each M-tile walks the (piece, K-tile) pairs again
            for p0 in range(0, N, lines):
                piece = range(p0, min(N, p0 + lines))
                started = False
                for k0 in range(0, K, R):
                    k_cols = tuple(range(k0, min(K, k0 + R)))
                    ns = [n for n in piece if mask[n, k0 : k_cols[-1] + 1].any()] if skip else list(piece)
                    if not ns:
                        empties += 1
                        continue
                    if not started:
                        tile, started = tile + 1, True
                    blocks = _kept_blocks(mask, op.block, n_range=(p0, piece[-1] + 1),
                                          k_range=(k0, k_cols[-1] + 1)) if skip else 0  # fmt: skip
                    yield FoldGeometry(tuple(ns), k_cols, m_rows, blocks, tile, empties)
                    empties = 0


def _pad(tile: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    padded = np.zeros(shape)
    padded[: tile.shape[0], : tile.shape[1]] = tile
    return padded


def _folds(op: Gemm, A: np.ndarray, W: np.ndarray, config: AcceleratorConfig):
    """Step every fold on the PE grid: returns (Y[M, N], phases per fold).

    With ``edge_skew: full`` a partial tile is zero-padded to the whole ``R x C`` grid, so it pays the
    fixed chains; the padded lines contribute zeros. A fold that begins an array tile (os: every fold;
    ws/is: the first of an output tile) first spends ``tile_overhead_cycles`` in the controller.
    """
    decode = config.sparse.index_decode_cycles_per_block if config.sparse.skip_zero_blocks else 0
    micro, dataflow = config.microarch, config.pe_array.dataflow
    R, C = config.pe_array.rows, config.pe_array.cols
    full = micro.edge_skew is EdgeSkew.FULL
    wavefront = micro.preload_order is PreloadOrder.WAVEFRONT
    Y = np.zeros((op.M, op.N))
    phases = []
    previous_tile = None
    for fold in iter_folds(op, config):
        n, k, m = list(fold.n_rows), list(fold.k_cols), list(fold.m_rows)
        new_tile = dataflow is Dataflow.OS or fold.tile != previous_tile
        previous_tile = fold.tile
        controller = decode * (fold.decode_blocks + fold.empty_tiles) + (micro.tile_overhead_cycles if new_tile else 0)
        if dataflow is Dataflow.OS:
            a_tile, w_tile = A[m][:, k], W[n][:, k]
            if full:
                a_tile, w_tile = _pad(a_tile, (R, len(k))), _pad(w_tile, (C, len(k)))
            feed = feed_cycles(len(k), micro.stream_bank_depth, micro.stream_bank_swap_cycles)
            out, compute, drain = step_output_stationary(a_tile, w_tile, micro.drain, micro.drain_lines_per_cycle,
                                                         feed, micro.drain_words_per_cycle)  # fmt: skip
            Y[np.ix_(m, n)] += out[: len(m), : len(n)]
            phases.append(FoldPhases(controller, feed[-1] + 1, compute - feed[-1] - 1, drain))
            continue
        if dataflow is Dataflow.WS:
            stationary, stream = W[n][:, k].T, A[m][:, k]  # [k, n], [m, k]
        else:
            stationary, stream = A[m][:, k].T, W[n][:, k]  # [k, m], [n, k]
        if full:
            stationary, stream = _pad(stationary, (R, C)), _pad(stream, (stream.shape[0], R))
        feed = feed_cycles(stream.shape[0], micro.stream_bank_depth, micro.stream_bank_swap_cycles)
        out, preload, passed = step_stationary(stationary, stream, micro.preload_rows_per_cycle, feed, wavefront)
        if dataflow is Dataflow.WS:
            Y[np.ix_(m, n)] += out[:, : len(n)]
        else:
            Y[np.ix_(m, n)] += out[:, : len(m)].T
        S = feed[-1] + 1
        port = stationary.shape[0] if wavefront else 0  # one row per cycle from the stream start
        phases.append(FoldPhases(controller + preload, S, passed - S, 0, port))
    return Y, phases


class _Controller:
    """The array's fold sequencer, one cycle at a time, with the overlap rules as resource conditions.

    A fold's *prep* (index decode + preload) needs the prep unit: with ``none`` the previous fold must be
    done; with ``weights``/``full`` the shadow registers are free once the previous fold has started to
    stream. Its *stream* needs the stream port (the previous stream ended), its prep done, and: with
    ``none``/``weights`` the previous fold done; with ``full`` its results must not overtake: ws/is -- it
    completes no earlier than the previous fold; os -- the shift-out chain has drained the previous tile
    when this one is copied in, and this fold's first result register (PE 0,0) is written no earlier
    than the previous tile's copy.
    """

    def __init__(self, phases: list[FoldPhases], config: AcceleratorConfig, gemm_starts: frozenset[int] = frozenset()):
        micro = config.microarch
        self.gemm_starts = gemm_starts  # first folds of a GEMM: the array holds one GEMM at a time
        self.mode, self.os = micro.fold_overlap, config.pe_array.dataflow is Dataflow.OS
        self.mult, self.acc = micro.mult_stages, micro.acc_stages
        self.switch = micro.fold_switch_cycles
        self.phases = phases
        n = len(phases)
        self.prep_end: list[int | None] = [None] * n
        self.start: list[int | None] = [None] * n
        self.next_prep = self.next_stream = 0

    def copy_time(self, f: int) -> int:
        """os: when fold ``f``'s accumulators are complete and copied into the shift-out chain."""
        ph = self.phases[f]
        return self.start[f] + ph.stream + ph.fill + self.mult

    def complete(self, f: int) -> int:
        ph = self.phases[f]
        return self.start[f] + ph.stream + ph.fill + self.mult + self.acc

    def done(self, f: int) -> int:
        return self.complete(f) + self.phases[f].drain

    def release(self, f: int) -> int:
        """When fold ``f``'s operands have left the buffers (a wavefront preload reads them while it runs)."""
        if self.mode is FoldOverlap.NONE:
            return self.done(f)
        return self.start[f] + max(self.phases[f].stream, self.phases[f].port)

    def step(self, t: int, ready) -> None:
        """Start every prep and stream that may start at cycle ``t``; ``ready(f)`` says whether memory
        allows fold ``f``'s prep (its chunk loaded, its output slot free)."""
        changed = True
        while changed:
            changed = False
            f = self.next_prep
            if f < len(self.phases) and ready(f):
                drained = self.mode is FoldOverlap.NONE or f in self.gemm_starts
                previous_free = f == 0 or (
                    self.start[f - 1] is not None and (self.done(f - 1) <= t if drained else self.start[f - 1] <= t))
                if previous_free:
                    self.prep_end[f] = t + self.phases[f].prep
                    self.next_prep += 1
                    changed = True
            f = self.next_stream
            if f < self.next_prep and self.prep_end[f] <= t and self._may_stream(f, t):
                self.start[f] = t
                self.next_stream += 1
                changed = True

    def _may_stream(self, f: int, t: int) -> bool:
        if f == 0:
            return True
        previous = f - 1
        if t < self.start[previous] + self.phases[previous].stream + self.switch:  # the stream port (and bubble)
            return False
        if t < self.start[previous] + self.phases[previous].port:  # a wavefront preload still writing rows
            return False
        if self.mode is not FoldOverlap.FULL or f in self.gemm_starts:
            return self.done(previous) <= t
        ph = self.phases[f]
        if not self.os:
            return t + ph.stream + ph.fill + self.mult + self.acc >= self.complete(previous)
        copy = t + ph.stream + ph.fill + self.mult
        first_result_write = t + ph.stream - 1 + self.mult
        return copy >= self.copy_time(previous) + self.phases[previous].drain and (
            first_result_write >= self.copy_time(previous))


@dataclass
class _Gemm:
    """One GEMM (one repeat) of a chain, as the reference's DMA and controller see it."""

    phases: list[FoldPhases]
    fold_chunk: np.ndarray
    early: list[int]  # per chunk: DMA cycles once its slot is free
    late: list[int]  # per chunk: DMA cycles once, in addition, the GEMM's inputs are ready (first chunk only)
    store: list[int]
    starts_tile: np.ndarray
    op: int  # which op of the chain (repeats of one op share their dependency)


def _chain_gemm(op: Gemm, config: AcceleratorConfig, index: int, prefetch: bool,
                A: np.ndarray | None = None, W: np.ndarray | None = None):  # fmt: skip
    """``(Y, _Gemm)`` of one repeat of ``op``: the first chunk's load is gated by the op's inputs -- whole, or
    (``prefetch``) its inputs only, the weights and index loading as one transfer before them."""
    A = np.zeros((op.M, op.K)) if A is None else A
    W = np.zeros((op.N, op.K)) if W is None else W
    Y, phases = _folds(op, A, W, config)
    plan = plan_folds(op, config)
    if plan.n_folds != len(phases):
        raise AssertionError(f"fold count differs: reference {len(phases)}, mapping {plan.n_folds}")
    chunks = best_chunks(plan, op, config)
    bw = config.dram_bytes_per_cycle
    load = [int(c) for c in transfer_cycles(chunks.load_bytes, bw)]
    store = [int(c) if b > 0 else 0 for c, b in zip(transfer_cycles(chunks.store_bytes, bw), chunks.store_bytes,
                                                    strict=True)]  # fmt: skip
    early, late = load, [0] * len(load)
    if len(load) and index >= 0:  # the inputs wait for the op's predecessor
        inputs = float(chunks.load_input_bytes[0])
        weights = float(chunks.load_bytes[0]) - inputs
        if prefetch:
            early[0] = int(transfer_cycles(weights, bw)) if weights > 0 else 0
            late[0] = int(transfer_cycles(inputs, bw))
        else:
            early[0], late[0] = 0, load[0]
    return Y, _Gemm(phases, chunks.fold_chunk, early, late, store, chunks.starts_tile, index)


def _step_pipeline(gemms: list[_Gemm], dep_cycles: list[int], config: AcceleratorConfig) -> tuple[int, list[int]]:
    """Cycle-by-cycle controller + DMA with the rules of ``hwsim.memory`` for GEMMs run back to back (one
    chunk sequence, one buffer, one store queue); returns (cycles, fold starts).

    A chunk with a ``late`` part loads it only once its op's inputs are ready: the last store of the op before
    it (every repeat of it) plus ``dep_cycles[op]``. GEMMs of op -1 have no such gate.
    """
    slots = config.buffers.slots
    phases = [ph for g in gemms for ph in g.phases]
    chunk_base = np.cumsum([0] + [len(g.early) for g in gemms])
    fold_chunk = np.concatenate([g.fold_chunk + base for g, base in zip(gemms, chunk_base[:-1], strict=True)])
    early = [c for g in gemms for c in g.early]
    late = [c for g in gemms for c in g.late]
    store = [c for g in gemms for c in g.store]
    starts_tile = np.concatenate([g.starts_tile for g in gemms])
    gated_op = [g.op if k == 0 else -1 for g in gemms for k in range(len(g.early))]  # -1: not gated
    n = len(early)
    tile_of = np.cumsum(starts_tile) - 1
    op_of_tile = np.concatenate([np.full(int(np.sum(g.starts_tile)), g.op) for g in gemms]).tolist()
    first_fold = {int(c): f for f, c in reversed(list(enumerate(fold_chunk)))}
    last_fold = {int(c): f for f, c in enumerate(fold_chunk)}
    load_done, store_done = [None] * n, [None] * len(op_of_tile)
    released = [False] * n
    stored = [False] * n  # a chunk's tile store queued
    stores: deque[tuple[int, int]] = deque()
    gemm_starts = frozenset(np.cumsum([0] + [len(g.phases) for g in gemms[:-1]]).tolist())
    array = _Controller(phases, config, gemm_starts)
    dma = None  # (kind, index, end)
    next_load, early_in = 0, False
    t = 0

    def inputs_ready(op: int) -> int | None:
        """When op ``op``'s inputs are ready: its predecessor's last store plus the vector work in between."""
        earlier = [tile for tile, o in enumerate(op_of_tile) if o < op]
        if not earlier:
            return dep_cycles[op]
        last = store_done[earlier[-1]]
        return None if last is None else last + dep_cycles[op]

    def ready(f: int) -> bool:
        chunk = int(fold_chunk[f])
        if first_fold[chunk] != f:
            return True
        if load_done[chunk] is None:
            return False
        tile = int(tile_of[chunk])
        return not starts_tile[chunk] or tile < slots or store_done[tile - slots] is not None

    while True:
        if dma is not None and dma[2] == t:
            kind, index = dma[0], dma[1]
            if kind == "store":
                store_done[index] = t
            elif kind == "early" and gated_op[index] >= 0:
                early_in = True
            else:
                load_done[index], next_load, early_in = t, next_load + 1, False
            dma = None
        for chunk in range(n):  # completions of the array at t: slots released, finished tiles queued
            last = last_fold[chunk]
            if array.start[last] is None:
                continue
            if not released[chunk] and array.release(last) <= t:
                released[chunk] = True
            if not stored[chunk] and array.done(last) <= t:
                stored[chunk] = True
                if store[chunk] > 0:
                    stores.append((int(tile_of[chunk]), int(store[chunk])))
        array.step(t, ready)
        if dma is None:
            if stores:
                tile, cycles = stores.popleft()
                dma = ("store", tile, t + cycles)
            elif next_load < n and (next_load < slots or released[next_load - slots]):
                op = gated_op[next_load]
                if not early_in and early[next_load]:
                    dma = ("early", next_load, t + early[next_load])
                elif op >= 0:
                    early_in = True  # nothing early to load: straight to the gated part
                    met = inputs_ready(op)
                    if met is not None and met <= t:
                        dma = ("late", next_load, t + late[next_load])
        if dma is None and all(stored) and not stores and next_load == n:
            return t, list(array.start)
        t += 1


def reference_gemm(op: Gemm, A: np.ndarray, W: np.ndarray, config: AcceleratorConfig) -> ReferenceResult:
    """Cycle-exact run of one repeat of ``op`` with operands ``A[M, K]`` and ``W[N, K]`` (mask applied)."""
    if A.shape != (op.M, op.K) or W.shape != (op.N, op.K):
        raise ValueError(f"reference_gemm: A must be {(op.M, op.K)} and W {(op.N, op.K)}, got {A.shape}, {W.shape}")
    W = W * op.mask if op.mask is not None else W
    Y, gemm = _chain_gemm(op, config, -1, False, A, W)
    if not gemm.phases:
        return ReferenceResult(Y, [], [], 0, 0)
    total, starts = _step_pipeline([gemm], [0], config)
    # the same folds with memory that is never late: the array's own span
    phases = gemm.phases
    ideal, t = _Controller(phases, config), 0
    while ideal.next_stream < len(phases):
        ideal.step(t, lambda f: True)
        t += 1
    return ReferenceResult(Y, phases, starts, total, ideal.done(len(phases) - 1))


def reference_workload_cycles(workload: Workload, config: AcceleratorConfig) -> int:
    """Cycle-exact total of a whole workload: every repeat of every GEMM stepped through one DMA, one buffer
    and one controller (``microarch.prefetch_across_ops`` decides whether a GEMM's weights may load before
    its inputs are ready), vector ops as ``ceil(elements x cycles_per_element / lanes)`` on the vector unit
    between them, read from the config here rather than taken from the fast path."""
    prefetch = config.microarch.prefetch_across_ops
    gemms, dep_cycles, vector, n_ops = [], [], 0, 0
    for op in workload.ops:
        if not isinstance(op, Gemm):
            per_element = config.vector_unit.cycles_per_element[op.kind.value]
            vector += math.ceil(op.elements * per_element / config.vector_lanes)
            continue
        gemm = _chain_gemm(op, config, n_ops, prefetch)[1]  # the grid is stepped once per op, not per repeat
        if not gemm.phases:
            continue
        for copy in range(op.repeat):  # serial: every repeat waits for the one before; prefetch: for the op before
            if copy == 0 or not prefetch:
                gemms.append(replace(gemm, op=n_ops))
                dep_cycles.append(vector if copy == 0 else 0)
                n_ops += 1
            else:
                gemms.append(gemms[-1])
        vector = 0
    total = _step_pipeline(gemms, dep_cycles, config)[0] if gemms else 0
    return total + vector
