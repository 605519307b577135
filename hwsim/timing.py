"""Microarchitecture timing: how a real array sequences the folds of one GEMM (``config.microarch``).

Every fold ``f`` of a :class:`~hwsim.mapping.FoldPlan` (``r`` live rows, ``c`` live columns, ``S``
streamed elements, ``decode`` index-decode cycles) has these terms, in cycles. ``rho, gamma`` are the skew
geometry: the live ``r, c`` with ``edge_skew: live``, the full array ``R, C`` with ``edge_skew: full``
(fixed-length skew and drain chains: a partial edge tile costs as much as a whole one).

=========  =====================================================  =============================================
term       closed form                                            RTL structure it stands for
=========  =====================================================  =============================================
prep       ``decode + overhead + preload`` with                   controller cycles at a tile start, the index
           ``overhead = tile_overhead_cycles`` on a tile's first  decoder, then the stationary tile (ws:
           fold (os: every fold) and ``preload = ceil(rho /       weights, is: inputs) written row by row; a
           preload_rows_per_cycle)`` (``preload_order: serial``;  wavefront preload writes row ``i`` through
           0 for ``wavefront`` and for ``os``)                    skew registers as the inputs reach it
port       ``wavefront``: ``rho`` (the preload port is busy that  the row-write port of a wavefront preload
           long from the stream start); else 0
stream     ``S + swap * floor((S - 1) / depth)``                  one streamed vector enters per cycle; the
           (``stream_bank_depth``, ``stream_bank_swap_cycles``;   feeder pauses ``swap`` cycles whenever its
           ``S`` without a bank depth)                            ping-pong input bank of ``depth`` swaps
latency    ``rho + gamma - 2 + mult_stages + acc_stages``         input skew + partial-sum chain (ws/is) or
                                                                  operand skew (os), plus MAC pipeline registers
drain      ``os``: ``lines`` (``rho`` rows or ``gamma``           shift-out of the finished accumulators, a
           columns) in beats of ``L = drain_lines_per_cycle``    beat of ``L`` lines at a time through a result
           lines, each ``ceil(words / drain_words_per_cycle)``    port of ``drain_words_per_cycle`` words (one
           cycles (1 without a port width); ``ws``/``is``: 0      beat per cycle without one); ws/is results
                                                                  leave the bottom edge as they are computed
hold       ``os``: ``rho + gamma - 1``; ``ws``/``is``: 0          one result register per PE, written as the
                                                                  last wavefront passes (occupied that long)
=========  =====================================================  =============================================

A fold *starts* when its stream starts (``start_f``); it *completes* ``stream + latency`` later (last result
at the edge, or os accumulators final) and is *done* after its drain. ``busy = stream + latency + drain``.
The fold overlap mode fixes the gap between consecutive starts, ``start_f = start_{f-1} + gap_f``, and in
every mode the stream port needs ``b = fold_switch_cycles`` dead cycles between two folds' streams and a
wavefront preload port must be free (``switch_f = max(stream_{f-1} + b, port_{f-1})``):

* ``none`` -- decode and preload wait for the previous fold to be done (the controller of SCALE-Sim-like
  models): ``gap_f = max(busy_{f-1} + prep_f, switch_f)``; without a switch cost a GEMM costs
  ``sum_f (prep_f + busy_f)``.
* ``weights`` -- shadow (double-buffered) stationary registers: the next fold's decode and preload run
  while the current fold streams (they start at ``start_{f-1}``), but its stream waits for the current
  fold to be done: ``gap_f = max(busy_{f-1}, prep_f, switch_f)``.
* ``full`` -- additionally the next stream follows right behind the current one (operands carry their
  fold's register bank, so PEs switch tiles as the wavefront passes): ``gap_f = max(switch_f, prep_f,
  stream_{f-1} + latency_{f-1} + H_f - stream_f - latency_f)``. The last term keeps results in order: a
  fold completes no earlier than ``H_f`` after the previous one, with ``H_f = 0`` for ws/is (results leave
  as computed) and ``H_f = max(drain_{f-1}, hold_f)`` for os (the shift-out chain holds one tile, and the
  new fold's first result register is written ``hold_f`` cycles before it completes).

The first fold starts after its prep: ``start_0 = prep_0``. A GEMM's array span without memory waits is::

    compute_cycles = prep_0 + sum_{f>0} gap_f + busy_last

With equal folds (``n`` folds, no decode, full edges, no switch cost) this is ``n (prep + busy)`` for
``none``, ``prep + (n-1) max(busy, prep) + busy`` for ``weights`` and ``prep + (n-1) max(S, prep, H) + busy``
for ``full``: the fill and drain are paid once per GEMM, and each fold costs its stream length or its
preload, whichever is longer (one weight row per cycle: a ws pass takes at least ``max(M, R)`` cycles). A
wavefront preload takes the first fold's ``R`` cycles off that (``prep = 0``, ``port = R``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from hwsim.config import AcceleratorConfig, Dataflow, DrainOrder, EdgeSkew, FoldOverlap, Microarch, PreloadOrder
from hwsim.mapping import FoldPlan

__all__ = ["FoldTiming", "drain_cycles", "fold_timing", "skew_geometry", "stream_cycles", "tile_starts"]


def skew_geometry(plan: FoldPlan, config: AcceleratorConfig) -> tuple[np.ndarray, np.ndarray]:
    """``(rho, gamma)`` per fold: live rows/columns, or the full array with ``edge_skew: full``."""
    if config.microarch.edge_skew is EdgeSkew.FULL:
        return np.full(plan.n_folds, config.pe_array.rows, np.int64), np.full(plan.n_folds, config.pe_array.cols,
                                                                                np.int64)  # fmt: skip
    return plan.rows, plan.cols


@dataclass(frozen=True)
class FoldTiming:
    """Per-fold timing terms (cycles) and the gaps between fold starts; see the module docstring."""

    overlap: FoldOverlap
    prep: np.ndarray
    stream: np.ndarray  # stream-port cycles (elements plus bank-swap pauses)
    latency: np.ndarray
    drain: np.ndarray
    port: np.ndarray  # wavefront preload: cycles its row-write port is busy from the stream start (else 0)
    gap: np.ndarray  # start_f - start_{f-1} when nothing external waits; gap[0] = prep[0]

    @property
    def n_folds(self) -> int:
        return len(self.stream)

    @cached_property  # the pipeline terms read these once per chunking: computed once per GEMM
    def busy(self) -> np.ndarray:
        """Cycles from a fold's stream start until it is done."""
        return self.stream + self.latency + self.drain

    @cached_property
    def release(self) -> np.ndarray:
        """Cycles from a fold's stream start until its operands have left the buffers: the end of its
        stream (and of a wavefront preload) when folds overlap, the end of the fold with ``none`` (that
        controller holds them)."""
        return self.busy if self.overlap is FoldOverlap.NONE else np.maximum(self.stream, self.port)

    @cached_property
    def tail_cycles(self) -> np.ndarray:
        """Per fold: cycles from its prep start to the last fold done when nothing waits on memory from
        then on (``prep_f + sum_{g>f} gap_g + busy_last``): a lower bound on the rest of the GEMM."""
        if not self.n_folds:
            return np.zeros(0, dtype=np.int64)
        return self.prep + np.cumsum(self.gap[::-1])[::-1] - self.gap + self.busy[-1]

    def starts(self) -> np.ndarray:
        """Stream start of every fold with no memory waits (cycles from the first prep)."""
        return np.cumsum(self.gap)

    @cached_property
    def compute_cycles(self) -> int:
        """Array span of the GEMM with no memory waits: first prep to the last fold done."""
        if not self.n_folds:
            return 0
        return int(self.gap.sum() + self.busy[-1])


def stream_cycles(elements: np.ndarray, micro: Microarch) -> np.ndarray:
    """Stream-port cycles of folds streaming ``elements`` each: the elements plus a bank-swap pause after
    every ``stream_bank_depth`` of them but the last (``stream_bank_swap_cycles`` each)."""
    if micro.stream_bank_depth is None or not micro.stream_bank_swap_cycles:
        return elements
    return elements + micro.stream_bank_swap_cycles * ((elements - 1) // micro.stream_bank_depth)


def drain_cycles(lines: np.ndarray, line_words: np.ndarray, micro: Microarch) -> np.ndarray:
    """os shift-out: ``lines`` lines of ``line_words`` results leave in beats of ``drain_lines_per_cycle``
    lines, each beat taking ``ceil(words / drain_words_per_cycle)`` cycles (one without a port width)."""
    per_beat = micro.drain_lines_per_cycle
    full_beats, rest = lines // per_beat, lines % per_beat
    if micro.drain_words_per_cycle is None:
        return full_beats + (rest > 0)
    port = micro.drain_words_per_cycle
    return full_beats * -(-(per_beat * line_words) // port) + -(-(rest * line_words) // port)


def tile_starts(plan: FoldPlan) -> np.ndarray:
    """Folds that begin an array tile (and pay ``tile_overhead_cycles``): the first fold of every output
    tile for ws/is, every fold for os (each is its own M x N tile, accumulated and drained)."""
    if plan.dataflow is Dataflow.OS:
        return np.ones(plan.n_folds, dtype=bool)
    return plan.opens_tile


def fold_timing(plan: FoldPlan, config: AcceleratorConfig) -> FoldTiming:
    """Closed-form timing terms of every fold of ``plan`` on ``config`` (vectorised over folds)."""
    micro, dataflow = config.microarch, plan.dataflow
    rho, gamma = skew_geometry(plan, config)
    stationary = dataflow is not Dataflow.OS
    wavefront = stationary and micro.preload_order is PreloadOrder.WAVEFRONT
    preload = -(-rho // micro.preload_rows_per_cycle) if stationary else np.zeros_like(rho)
    prep = plan.decode_cycles + micro.tile_overhead_cycles * tile_starts(plan) + (0 if wavefront else preload)
    port = rho if wavefront else np.zeros_like(rho)
    stream = stream_cycles(plan.stream, micro)
    latency = rho + gamma - 2 + micro.mult_stages + micro.acc_stages
    if stationary:
        drain = np.zeros_like(rho)
    else:
        lines, words = (rho, gamma) if micro.drain is DrainOrder.ROWS else (gamma, rho)
        drain = drain_cycles(lines, words, micro)
    busy = stream + latency + drain
    gap = np.empty_like(prep)
    if len(gap):
        gap[0] = prep[0]
        switch = np.maximum(stream[:-1] + micro.fold_switch_cycles, port[:-1])
        if micro.fold_overlap is FoldOverlap.NONE:
            gap[1:] = np.maximum(busy[:-1] + prep[1:], switch)
        elif micro.fold_overlap is FoldOverlap.WEIGHTS:
            gap[1:] = np.maximum(np.maximum(busy[:-1], prep[1:]), switch)
        else:
            # H_f: 0 for ws/is; os: the shift-out chain (drain_{f-1}) and the result registers (hold_f)
            hold = 0 if stationary else np.maximum(drain[:-1], rho[1:] + gamma[1:] - 1)
            in_order = stream[:-1] + latency[:-1] + hold - stream[1:] - latency[1:]
            gap[1:] = np.maximum(np.maximum(switch, prep[1:]), in_order)
    return FoldTiming(micro.fold_overlap, prep, stream, latency, drain, port, gap)
