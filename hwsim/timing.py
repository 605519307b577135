"""Microarchitecture timing: how a real array sequences the folds of one GEMM (``config.microarch``).

Every fold ``f`` of a :class:`~hwsim.mapping.FoldPlan` (``r`` live rows, ``c`` live columns, stream
length ``S``, ``decode`` index-decode cycles) has five terms, in cycles. ``rho, gamma`` are the skew
geometry: the live ``r, c`` with ``edge_skew: live``, the full array ``R, C`` with ``edge_skew: full``
(fixed-length skew and drain chains: a partial edge tile costs as much as a whole one).

=========  =====================================================  =============================================
term       closed form                                            RTL structure it stands for
=========  =====================================================  =============================================
prep       ``decode + ceil(rho / preload_rows_per_cycle)``        index decoder, then the stationary tile (ws:
           (``os``: ``decode`` only -- nothing is preloaded)      weights, is: inputs) written row by row
stream     ``S``                                                  one streamed vector enters the array per cycle
latency    ``rho + gamma - 2 + mult_stages + acc_stages``         input skew + partial-sum chain (ws/is) or
                                                                  operand skew (os), plus MAC pipeline registers
drain      ``os``: ``ceil(lines / drain_lines_per_cycle)``,       shift-out of the finished accumulators;
           ``lines = rho`` (rows) or ``gamma`` (columns);         ws/is results leave the bottom edge as they
           ``ws``/``is``: 0                                       are computed
hold       ``os``: ``rho + gamma - 1``; ``ws``/``is``: 0          one result register per PE, written as the
                                                                  last wavefront passes (occupied that long)
=========  =====================================================  =============================================

A fold *starts* when its stream starts (``start_f``); it *completes* ``S + latency`` later (last result at
the edge, or os accumulators final) and is *done* after its drain. ``busy = S + latency + drain``.
The fold overlap mode fixes the gap between consecutive starts, ``start_f = start_{f-1} + gap_f``:

* ``none`` -- decode and preload wait for the previous fold to be done (the controller of SCALE-Sim-like
  models): ``gap_f = busy_{f-1} + prep_f``; a GEMM costs ``sum_f (prep_f + busy_f)``.
* ``weights`` -- shadow (double-buffered) stationary registers: the next fold's decode and preload run
  while the current fold streams (they start at ``start_{f-1}``), but its stream waits for the current
  fold to be done: ``gap_f = max(busy_{f-1}, prep_f)``.
* ``full`` -- additionally the next stream follows right behind the current one (operands carry their
  fold's register bank, so PEs switch tiles as the wavefront passes): ``gap_f = max(S_{f-1}, prep_f,
  S_{f-1} + latency_{f-1} + H_f - S_f - latency_f)``. The last term keeps results in order: a fold
  completes no earlier than ``H_f`` after the previous one, with ``H_f = 0`` for ws/is (results leave as
  computed) and ``H_f = max(drain_{f-1}, hold_f)`` for os (the shift-out chain holds one tile, and the
  new fold's first result register is written ``hold_f`` cycles before it completes).

The first fold starts after its prep: ``start_0 = prep_0``. A GEMM's array span without memory waits is::

    compute_cycles = prep_0 + sum_{f>0} gap_f + busy_last

With equal folds (``n`` folds, no decode, full edges) this is ``n (prep + busy)`` for ``none``,
``prep + (n-1) max(busy, prep) + busy`` for ``weights`` and ``prep + (n-1) max(S, prep, H) + busy`` for
``full``: the fill and drain are paid once per GEMM, and each fold costs its stream length or its preload,
whichever is longer (one weight row per cycle: a ws pass takes at least ``max(M, R)`` cycles).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.config import AcceleratorConfig, Dataflow, DrainOrder, EdgeSkew, FoldOverlap
from hwsim.mapping import FoldPlan

__all__ = ["FoldTiming", "fold_timing", "skew_geometry"]


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
    stream: np.ndarray
    latency: np.ndarray
    drain: np.ndarray
    gap: np.ndarray  # start_f - start_{f-1} when nothing external waits; gap[0] = prep[0]

    @property
    def n_folds(self) -> int:
        return len(self.stream)

    @property
    def busy(self) -> np.ndarray:
        """Cycles from a fold's stream start until it is done."""
        return self.stream + self.latency + self.drain

    @property
    def release(self) -> np.ndarray:
        """Cycles from a fold's stream start until its operands have left the buffers: the end of its
        stream when folds overlap, the end of the fold with ``none`` (that controller holds them)."""
        return self.busy if self.overlap is FoldOverlap.NONE else self.stream

    def starts(self) -> np.ndarray:
        """Stream start of every fold with no memory waits (cycles from the first prep)."""
        return np.cumsum(self.gap)

    @property
    def compute_cycles(self) -> int:
        """Array span of the GEMM with no memory waits: first prep to the last fold done."""
        if not self.n_folds:
            return 0
        return int(self.gap.sum() + self.busy[-1])


def fold_timing(plan: FoldPlan, config: AcceleratorConfig) -> FoldTiming:
    """Closed-form timing terms of every fold of ``plan`` on ``config`` (vectorised over folds)."""
    micro, dataflow = config.microarch, plan.dataflow
    rho, gamma = skew_geometry(plan, config)
    stationary = dataflow is not Dataflow.OS
    preload = -(-rho // micro.preload_rows_per_cycle) if stationary else np.zeros_like(rho)
    prep = plan.decode_cycles + preload
    stream = plan.stream
    latency = rho + gamma - 2 + micro.mult_stages + micro.acc_stages
    if stationary:
        drain = np.zeros_like(rho)
    else:
        lines = rho if micro.drain is DrainOrder.ROWS else gamma
        drain = -(-lines // micro.drain_lines_per_cycle)
    busy = stream + latency + drain
    gap = np.empty_like(prep)
    if len(gap):
        gap[0] = prep[0]
        if micro.fold_overlap is FoldOverlap.NONE:
            gap[1:] = busy[:-1] + prep[1:]
        elif micro.fold_overlap is FoldOverlap.WEIGHTS:
            gap[1:] = np.maximum(busy[:-1], prep[1:])
        else:
            # H_f: 0 for ws/is; os: the shift-out chain (drain_{f-1}) and the result registers (hold_f)
            hold = 0 if stationary else np.maximum(drain[:-1], rho[1:] + gamma[1:] - 1)
            in_order = stream[:-1] + latency[:-1] + hold - stream[1:] - latency[1:]
            gap[1:] = np.maximum(np.maximum(stream[:-1], prep[1:]), in_order)
    return FoldTiming(micro.fold_overlap, prep, stream, latency, drain, gap)
