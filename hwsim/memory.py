"""On-chip buffers, DRAM transfers and double buffering, as an event-driven simpy model.

A GEMM's folds are grouped into **chunks**: consecutive folds of one output tile whose weight operands
fit one weight-buffer slot (and, when the activations do not stay resident, whose inputs fit one
input-buffer slot); how many folds a chunk takes, and whether A stays resident, is the mapper's choice
(:func:`chunk_options`, :func:`fastest_chunks`). Each chunk is one DMA load; each finished output tile is
one DMA store. GEMMs run back to back through the same DMA and buffers in :func:`run_chain`.

Processes and resources (one GEMM, times in cycles):

* ``DmaEngine`` -- one DRAM channel of ``bw_bytes_per_cycle``; a transfer of ``B`` bytes takes
  ``max(1, ceil(B / bw))`` cycles. When free it serves a ready store before a ready load, loads in order.
* ``ArrayUnit`` -- runs the folds with the gaps of :mod:`hwsim.timing`. A chunk's first fold may begin
  its prep only once the chunk's load is done; a chunk that starts a new output tile also waits until the
  store of the tile ``slots`` tiles back has drained. So ``start_f = max(start_{f-1} + gap_f,
  ready + prep_f)`` for a chunk's first fold (``ready``: when both waits are over) and
  ``start_{f-1} + gap_f`` for the others.
* Buffer slots: ``slots = 2`` with double buffering (load ``i+1`` overlaps compute ``i``), else 1: load
  ``i`` may start only after chunk ``i - slots`` has released its slot -- when its last fold's stream
  ends (``fold_overlap`` weights/full) or when that fold is done (``none``: the controller holds the
  operands until then). A tile's store is queued when its last fold is done.

Decisions at time ``t`` are taken after every completion at ``t`` (the DMA re-checks with ``timeout(0)``),
which is the rule the per-cycle reference applies cycle by cycle. Total cycles split into the first
load (before the array can start), the array's compute span, stalls (the array waiting on memory in
between) and the last store (after the array is done); with ample bandwidth and buffers the stalls are 0.

The simpy processes run when a trace is asked for; otherwise the same rules run as compiled loops
(:mod:`hwsim.pipeline_kernel`), and tests hold the two, and the per-cycle reference, to the same cycles.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import simpy

from hwsim.config import AcceleratorConfig, Dataflow, FoldOverlap
from hwsim.mapping import FoldPlan, TilingError, drained_line_elements
from hwsim.timing import FoldTiming, fold_timing
from hwsim.workload import Gemm

__all__ = ["ChainResult", "ChunkChoices", "ChunkPlan", "PipelineResult", "best_chunks", "chunk_options",
           "fastest_chunks", "fold_start_cycles", "make_chunks", "run_chain", "run_pipeline", "transfer_cycles"]


def transfer_cycles(n_bytes: np.ndarray | float, bw_bytes_per_cycle: float) -> np.ndarray:
    """DMA cycles for a transfer: ``max(1, ceil(bytes / bw))`` (a descriptor costs at least one cycle)."""
    return np.maximum(1, np.ceil(np.asarray(n_bytes, dtype=np.float64) / bw_bytes_per_cycle - 1e-9)).astype(np.int64)


@dataclass(frozen=True)
class ChunkPlan:
    """One entry per chunk: DMA load bytes, its folds, and the store that follows it."""

    load_bytes: np.ndarray  # weights + index metadata + inputs
    load_input_bytes: np.ndarray  # the inputs' part of load_bytes (the part an op's predecessor must write first)
    first_fold: np.ndarray  # index of the chunk's first fold (folds of chunk i: first_fold[i] .. first_fold[i+1])
    store_bytes: np.ndarray  # 0 where the chunk does not finish an output tile
    starts_tile: np.ndarray  # bool: first chunk of an output tile
    fold_chunk: np.ndarray  # chunk index of every fold
    dram_weight_bytes: float
    dram_input_bytes: float
    dram_output_bytes: float
    # (timing, slots) -> _ChunkTerms, shared by the chunkings with the same boundaries (see _ChunkBounds)
    _terms: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def n_chunks(self) -> int:
        return len(self.load_bytes)

    def terms(self, timing: FoldTiming, slots: int) -> _ChunkTerms:
        """Per-chunk timing terms for ``timing`` (kept: points that differ in bandwidth reuse them)."""
        known = self._terms.get((id(timing), slots))
        if known is None or known.timing is not timing:
            known = self._terms[(id(timing), slots)] = _ChunkTerms.of(self, timing, slots)
        return known


@dataclass(frozen=True)
class _ChunkTerms:
    """What the pipeline needs per chunk (int64 arrays): from the first fold's stream start, the last fold's
    start offset, busy and release, and the GEMM's remaining span with no memory waits (``to_end``); the first
    fold's gap and prep; the tile; the store a tile's first chunk waits for (``slots`` tiles back, -1: none);
    chunks starting a tile."""

    timing: FoldTiming
    last_offset: np.ndarray
    first_gap: np.ndarray
    first_prep: np.ndarray
    last_busy: np.ndarray
    last_release: np.ndarray
    to_end: np.ndarray
    tile_of_chunk: np.ndarray
    starts_tile: np.ndarray
    waits_store: np.ndarray

    @classmethod
    def of(cls, chunks: ChunkPlan, timing: FoldTiming, slots: int) -> _ChunkTerms:
        (last_offset, first_gap, first_prep, last_busy, last_release, to_end, tile_of_chunk,
         waits_store) = _kernel().chunk_terms(chunks.first_fold, chunks.starts_tile, timing.gap, timing.prep,
                                              timing.busy, timing.release, timing.tail_cycles, slots)  # fmt: skip
        return cls(timing, last_offset, first_gap, first_prep, last_busy, last_release, to_end, tile_of_chunk,
                   chunks.starts_tile, waits_store)  # fmt: skip

    @classmethod
    def chain(cls, parts: list[_ChunkTerms], slots: int, switch_cycles: int) -> _ChunkTerms:
        """The terms of GEMMs run one after another through the same buffers and array: tiles numbered across
        them (a GEMM's first tiles wait for the stores of the previous GEMM's last ones: the output slots), and
        a GEMM's first fold preps once the previous GEMM's last fold is done (one GEMM at a time in the array:
        the ``none`` gap, ``max(busy + prep, stream + switch, port)``, across the boundary)."""
        if len(parts) == 1:
            return parts[0]

        def joined(name: str) -> np.ndarray:
            return np.concatenate([getattr(part, name) for part in parts])

        starts_tile = joined("starts_tile")
        first_gap = joined("first_gap")
        chunk = 0
        for previous, part in itertools.pairwise(parts):
            chunk += len(previous.first_gap)
            last = previous.timing
            first_gap[chunk] = max(int(last.busy[-1]) + int(part.first_prep[0]), int(last.stream[-1]) + switch_cycles,
                                   int(last.port[-1]))  # fmt: skip
        tile_of_chunk, waits_store = _kernel().tile_waits(starts_tile, slots)
        return cls(parts[0].timing, joined("last_offset"), first_gap, joined("first_prep"), joined("last_busy"),
                   joined("last_release"), joined("to_end"), tile_of_chunk, starts_tile, waits_store)  # fmt: skip


@dataclass(frozen=True)
class _ChunkInputs:
    """What chunking one GEMM needs, computed once for all its chunk choices (bytes per fold and per tile)."""

    fold_weight: np.ndarray  # weights + index metadata fetched with each fold
    tile_starts: np.ndarray
    tile_lengths: np.ndarray
    tile_max_weight: np.ndarray
    tile_max_input: np.ndarray
    weight_slot: float
    input_slot: float
    inputs_fit: bool  # all of A fits one input slot (it may stay resident)
    position: np.ndarray  # every fold's index within its tile
    fold_input: np.ndarray  # each fold's streamed inputs (bytes)
    tile_store: np.ndarray  # each output tile's results (bytes), stored after its last chunk
    a_bytes: float  # all of A (loaded once when kept)

    @classmethod
    def of(cls, plan: FoldPlan, op: Gemm, config: AcceleratorConfig) -> _ChunkInputs:
        """Check that one fold fits each slot (else :class:`TilingError`) and collect the byte counts."""
        buffers = config.buffers
        slots = buffers.slots
        weight_slot, input_slot, output_slot = (buffers.weight_bytes // slots, buffers.input_bytes // slots,
                                                buffers.output_bytes // slots)  # fmt: skip
        abytes, accbytes = op.act_bits / 8, config.pe_array.acc_bits / 8
        # the index of a pass comes from DRAM with the pass's weights (not again when weights are reused)
        metadata_bytes = (
            np.where(plan.weight_dram_bytes > 0, plan.index_blocks, 0) * config.sparse.metadata_bits_per_block / 8
        )
        fold_weight = plan.weight_dram_bytes + metadata_bytes
        inputs_fit = op.M * op.K * abytes <= input_slot
        if plan.n_folds and fold_weight.max() > weight_slot:
            raise TilingError.for_slot(op, config, "weight_bytes", "one fold's weights", fold_weight.max())
        if plan.n_folds and not inputs_fit and plan.input_bytes.max() > input_slot:
            raise TilingError.for_slot(op, config, "input_bytes", "one fold's inputs", plan.input_bytes.max())
        tile_acc_bytes = plan.output_tile_elements * accbytes
        if plan.dataflow is Dataflow.OS:  # a tile bigger than a slot is stored as it drains (hwsim.mapping)
            tile_acc_bytes = np.minimum(tile_acc_bytes, drained_line_elements(op, config) * accbytes)
        if len(tile_acc_bytes) and tile_acc_bytes.max() > output_slot:
            raise TilingError.for_slot(op, config, "output_bytes", "one output tile's partial sums",
                                       tile_acc_bytes.max())  # fmt: skip
        tile_starts = np.flatnonzero(plan.opens_tile)
        tile_lengths = np.diff(np.append(tile_starts, plan.n_folds))
        reduce = np.maximum.reduceat if plan.n_folds else (lambda values, _: np.zeros(0))
        position = np.arange(plan.n_folds) - np.repeat(tile_starts, tile_lengths)
        return cls(fold_weight.astype(np.float64), tile_starts, tile_lengths, reduce(fold_weight, tile_starts),
                   reduce(plan.input_bytes, tile_starts), weight_slot, input_slot, inputs_fit, position,
                   plan.input_bytes.astype(np.float64), (plan.output_tile_elements * abytes).astype(np.float64),
                   op.M * op.K * abytes)  # fmt: skip

    def fits(self, folds_per_chunk: list[int], keep_inputs: bool) -> np.ndarray:
        """Per entry of ``folds_per_chunk``: whether chunks of that many folds of a tile (fewer at a tile's end)
        fit their slots."""
        if keep_inputs and not self.inputs_fit:
            return np.zeros(len(folds_per_chunk), dtype=bool)
        folds = np.minimum.outer(folds_per_chunk, self.tile_lengths)
        fits = (folds * self.tile_max_weight).max(axis=1, initial=0) <= self.weight_slot
        return fits if keep_inputs else fits & ((folds * self.tile_max_input).max(axis=1, initial=0) <= self.input_slot)


CHUNK_SPLITS = 2  # a tile loads whole or in 2 or 4 chunks; each finer choice multiplies the chunks a sweep simulates


def chunk_options(plan: FoldPlan, op: Gemm, config: AcceleratorConfig,
                  inputs: _ChunkInputs | None = None) -> list[tuple[int, bool]]:  # fmt: skip
    """The DMA chunkings a mapper may choose for ``op``, as ``(folds_per_chunk, keep_inputs)``, in a fixed
    order: chunks of ``ceil(L / 2^j)`` folds of one output tile (``L`` the longest tile, ``j = 0 ..
    CHUNK_SPLITS``), with all of A loaded once and kept (when it fits a slot) or streamed with the folds.
    Each choice's schedule depends on the op and the array only -- the buffers decide only whether it fits --
    so a larger buffer keeps every choice a smaller one had, and the best of them never gets slower
    (:func:`fastest_chunks`). Where a slot holds fewer than ``ceil(L / 4)`` folds, the one choice left is as
    many folds as fit (a larger buffer may then change it)."""
    inputs = inputs or _ChunkInputs.of(plan, op, config)
    longest = int(inputs.tile_lengths.max()) if plan.n_folds else 1
    ladder = sorted({-(-longest // (1 << j)) for j in range(CHUNK_SPLITS + 1)}, reverse=True)
    fit = {keep: inputs.fits(ladder, keep) for keep in (True, False)}
    options = [(folds, keep) for index, folds in enumerate(ladder) for keep in (True, False) if fit[keep][index]]
    if options:
        return options
    keep = inputs.inputs_fit  # nothing of the ladder fits: as many folds as fit every tile's slot
    smaller = list(range(ladder[-1] - 1, 0, -1))
    return [next((folds, keep) for folds, fit in zip(smaller, inputs.fits(smaller, keep), strict=True) if fit)]


def make_chunks(plan: FoldPlan, op: Gemm, config: AcceleratorConfig, folds_per_chunk: int,
                keep_inputs: bool) -> ChunkPlan:  # fmt: skip
    """Group folds into DMA chunks of ``folds_per_chunk`` folds of one output tile (fewer at a tile's end), with
    all of A loaded with the first chunk and kept (``keep_inputs``) or each fold's inputs loaded with its
    chunk; one of :func:`chunk_options`. Raises :class:`TilingError` when not even one fold fits a slot."""
    inputs = _ChunkInputs.of(plan, op, config)
    if not inputs.fits([folds_per_chunk], keep_inputs)[0]:
        kept = "kept" if keep_inputs else "streamed"
        raise ValueError(f"make_chunks: {folds_per_chunk} folds per chunk (inputs {kept}) do not fit the buffers "
                         f"of {config.name}; chunk_options() lists the ones that do")  # fmt: skip
    return _chunks(inputs, folds_per_chunk, keep_inputs, {})


@dataclass(frozen=True)
class _ChunkBounds:
    """What the chunkings of one chunk size share, whether A is kept or streamed: the chunk boundaries, bytes
    per chunk, the stores, and the pipeline terms (they depend on the boundaries only)."""

    first_fold: np.ndarray
    weight_bytes: np.ndarray
    streamed_input_bytes: np.ndarray
    starts_tile: np.ndarray
    store_bytes: np.ndarray
    fold_chunk: np.ndarray
    terms: dict = field(default_factory=dict)  # ChunkPlan._terms of every chunking with these boundaries

    @classmethod
    def of(cls, inputs: _ChunkInputs, folds_per_chunk: int) -> _ChunkBounds:
        first, weight, streamed, starts_tile, store = _kernel().chunk_bounds(
            inputs.position, inputs.fold_weight, inputs.fold_input, inputs.tile_store, folds_per_chunk)  # fmt: skip
        return cls(first, weight, streamed, starts_tile, store,
                   np.repeat(np.arange(len(first)), np.diff(np.append(first, len(inputs.position)))))  # fmt: skip


def _chunks(inputs: _ChunkInputs, folds_per_chunk: int, keep_inputs: bool,
            shared: dict[int, _ChunkBounds]) -> ChunkPlan:  # fmt: skip
    """One chunking; ``shared`` holds the boundaries already computed per chunk size (kept and streamed A)."""
    bounds = shared.get(folds_per_chunk)
    if bounds is None:
        bounds = shared[folds_per_chunk] = _ChunkBounds.of(inputs, folds_per_chunk)
    input_bytes = bounds.streamed_input_bytes
    if keep_inputs:
        input_bytes = np.zeros(len(bounds.first_fold))
        if len(input_bytes):
            input_bytes[0] = inputs.a_bytes
    return ChunkPlan(
        load_bytes=bounds.weight_bytes + input_bytes,
        load_input_bytes=input_bytes,
        first_fold=bounds.first_fold,
        store_bytes=bounds.store_bytes,
        starts_tile=bounds.starts_tile,
        fold_chunk=bounds.fold_chunk,
        dram_weight_bytes=float(bounds.weight_bytes.sum()),
        dram_input_bytes=float(input_bytes.sum()),
        dram_output_bytes=float(bounds.store_bytes.sum()),
        _terms=bounds.terms,
    )


@dataclass(frozen=True)
class PipelineResult:
    """One GEMM's timeline: ``cycles = first_load_cycles + compute_cycles + stall_cycles + last_store_cycles``.

    In a chain (:func:`run_chain`) the GEMM's cycles run from its dependency time (the previous GEMM's last
    store plus the vector ops between) to its own last store; loads it prefetched before then are not in them.
    """

    cycles: int
    compute_cycles: int  # the array's span with no memory waits (hwsim.timing)
    stall_cycles: int  # the array waiting on memory between its first prep and its last fold done
    first_load_cycles: int  # the first chunk's load, before anything can start
    last_store_cycles: int  # after the last fold is done: the final store(s)
    dma_busy_cycles: int
    records: tuple[tuple[str, str, int, int, int], ...]  # (unit, what, index, start, end): formatted by events
    chunk_start_cycles: tuple[int, ...] = ()  # stream start of every chunk's first fold (cycle)

    @classmethod
    def split(cls, cycles: int, compute_cycles: int, first_load_cycles: int, last_store_cycles: int,
              dma_busy_cycles: int, chunk_start_cycles: tuple[int, ...], records: tuple = ()) -> PipelineResult:
        """The result whose stalls are what the other terms leave of ``cycles``."""
        return cls(cycles, compute_cycles, cycles - compute_cycles - first_load_cycles - last_store_cycles,
                   first_load_cycles, last_store_cycles, dma_busy_cycles, records, chunk_start_cycles)  # fmt: skip

    @property
    def events(self) -> list[tuple[str, str, int, int]]:
        """``(unit, label, start, end)`` trace events (labels built on demand: sweeps never read them)."""
        return [(unit, f"{what} {index}", start, end) for unit, what, index, start, end in self.records]


def fold_start_cycles(pipeline: PipelineResult, chunks: ChunkPlan, timing: FoldTiming) -> np.ndarray:
    """Stream start of every fold (cycles): its chunk's first start plus the gaps inside the chunk."""
    if not timing.n_folds:
        return np.zeros(0, dtype=np.int64)
    gap_sums = np.cumsum(timing.gap)
    chunk_of = chunks.fold_chunk
    starts = np.asarray(pipeline.chunk_start_cycles, dtype=np.int64)[chunk_of]
    return starts + gap_sums - gap_sums[chunks.first_fold[chunk_of]]


@dataclass(frozen=True)
class _Transfers:
    """The DMA's work for GEMMs run back to back (*entries*), as lists or int64 arrays (cycles, indices).

    Chunk ``i`` loads as an *early* part (it may start once the chunk's buffer slot is free) followed by a
    *late* part that also waits for ``gate[i]``'s dependency time (-1: none). Entry ``e`` depends on the store
    ``dep_store[e]`` (-1: on nothing) plus ``dep_cycles[e]`` cycles of vector work after it.
    """

    early: list[int]
    late: list[int]
    gate: list[int]
    store: list[int]
    dep_store: list[int]
    dep_cycles: list[int]

    def as_lists(self) -> _Transfers:
        """The same work as plain lists of ints (for the simpy processes: their times stay Python ints)."""
        return _Transfers(*(np.asarray(values).tolist() for values in (self.early, self.late, self.gate, self.store,
                                                                        self.dep_store, self.dep_cycles)))  # fmt: skip

    def dependency(self, entry: int, store_time: list[int], stored: int) -> int | None:
        """When ``entry``'s dependency is met, or None while the store it waits for is still to come."""
        after = self.dep_store[entry]
        if after >= stored:
            return None
        return (store_time[after] if after >= 0 else 0) + self.dep_cycles[entry]


class _Pipeline:
    """simpy processes for GEMMs run back to back; see the module docstring for the rules."""

    def __init__(self, transfers: _Transfers, terms: _ChunkTerms, slots: int):
        self.env = simpy.Environment()
        self.transfers = transfers
        self.store = transfers.store
        self.starts_tile, self.slots = terms.starts_tile.tolist(), slots
        self.none = terms.timing.overlap is FoldOverlap.NONE
        self.last_offset, self.first_gap = terms.last_offset.tolist(), terms.first_gap.tolist()
        self.first_prep, self.last_busy = terms.first_prep.tolist(), terms.last_busy.tolist()
        self.last_release = terms.last_release.tolist()
        n = len(self.store)
        self.chunk_starts, self.chunk_done = [0] * n, [0] * n
        self.load_done = [self.env.event() for _ in range(n)]
        self.load_time = [0] * n
        self.compute_done = [self.env.event() for _ in range(n)]
        self.tile_of_chunk = terms.tile_of_chunk.tolist()
        n_tiles = self.tile_of_chunk[-1] + 1
        self.store_done = [self.env.event() for _ in range(n_tiles)]
        self.store_time = [0] * n_tiles
        self.stored = 0
        self.pending_stores: deque[tuple[int, int, int]] = deque()  # (results done at, tile, cycles)
        self.kick = self.env.event()
        self.records: list[tuple[str, str, int, int, int]] = []
        self.env.process(self._dma())
        self.env.process(self._array())

    def _wake_dma(self) -> None:
        if not self.kick.triggered:
            self.kick.succeed()

    def _dma(self):
        env, n, transfers = self.env, len(self.store), self.transfers
        next_load, early_in, stores_left = 0, False, len(self.store_done)
        while next_load < n or stores_left:
            yield env.timeout(0)  # decide only after every completion at this time
            slot_free = next_load < n and (
                next_load < self.slots or self.compute_done[next_load - self.slots].triggered
            )
            gate = transfers.gate[next_load] if slot_free else -1
            met = transfers.dependency(gate, self.store_time, self.stored) if gate >= 0 else 0
            if self.pending_stores and self.pending_stores[0][0] <= env.now:
                _, tile, cycles = self.pending_stores.popleft()
                start = env.now
                yield env.timeout(cycles)
                self.records.append(("dma", "store tile", tile, start, env.now))
                self.store_time[tile] = env.now
                self.stored += 1
                self.store_done[tile].succeed()
                stores_left -= 1
            elif slot_free and not early_in:
                start, early_in = env.now, True
                if transfers.early[next_load]:
                    yield env.timeout(transfers.early[next_load])
                    self.records.append(("dma", "load chunk" if gate < 0 else "load weights", next_load, start,
                                         env.now))  # fmt: skip
                if gate < 0:
                    next_load, early_in = self._loaded(next_load), False
            elif slot_free and met is not None and met <= env.now:
                start = env.now
                yield env.timeout(transfers.late[next_load])
                self.records.append(("dma", "load inputs" if transfers.early[next_load] else "load chunk",
                                     next_load, start, env.now))  # fmt: skip
                next_load, early_in = self._loaded(next_load), False
            else:
                self.kick = env.event()
                wake = [self.pending_stores[0][0]] if self.pending_stores else []  # results done later
                if met is not None and met > env.now:  # a dependency met later
                    wake.append(met)
                if wake:
                    env.timeout(min(wake) - env.now).callbacks.append(self._wake_dma_event)
                yield self.kick

    def _loaded(self, chunk: int) -> int:
        self.load_time[chunk] = self.env.now
        self.load_done[chunk].succeed()
        return chunk + 1

    def _wake_dma_event(self, _event) -> None:
        self._wake_dma()

    def _array(self):
        env, none = self.env, self.none
        tile, previous, previous_done = -1, None, 0  # the last fold scheduled: its stream start, its done
        for i in range(len(self.store)):
            waits = [self.load_done[i]]
            if self.starts_tile[i]:
                tile += 1
                if tile >= self.slots:
                    waits.append(self.store_done[tile - self.slots])
            yield waits[0] if len(waits) == 1 else simpy.AllOf(env, waits)
            # the waits may have ended before now (while the previous chunk ran): use when they ended
            ready = max(self.load_time[i], self.store_time[tile - self.slots] if len(waits) > 1 else 0)
            start = ready + self.first_prep[i]
            if previous is not None:
                start = max(start, previous + self.first_gap[i])
            self.chunk_starts[i] = start
            # the first fold's prep began when the chunk was ready and the prep unit was free (see hwsim.timing)
            prep_start = max(ready, previous_done if none or previous is None else previous)
            previous = last = start + self.last_offset[i]
            previous_done = done = self.chunk_done[i] = last + self.last_busy[i]
            yield env.timeout(last + self.last_release[i] - env.now)
            self.records.append(("array", "chunk", i, prep_start, done))
            if self.store[i] > 0:  # the DMA stores the tile once its results are done (done >= now)
                self.pending_stores.append((done, self.tile_of_chunk[i], self.store[i]))
            self.compute_done[i].succeed()
            self._wake_dma()


def _kernel():
    """:mod:`hwsim.pipeline_kernel`, imported on first use (numba loads only once a pipeline runs)."""
    from hwsim import pipeline_kernel

    return pipeline_kernel


def _pipeline_closed_form(transfers: _Transfers, terms: _ChunkTerms, slots: int):
    """The module docstring's rules decided in time order without an event queue (compiled:
    :func:`hwsim.pipeline_kernel.closed_form`): ``(total cycles, stream start of every chunk's first fold,
    when every chunk is done, when every chunk's load ended, when every store ended)`` (int64 arrays)."""
    kernel, as_array = _kernel(), np.asarray
    status, total, start, done, load_time, store_time = kernel.closed_form(
        as_array(transfers.early, np.int64), as_array(transfers.late, np.int64), as_array(transfers.gate, np.int64),
        as_array(transfers.store, np.int64), as_array(transfers.dep_store, np.int64),
        as_array(transfers.dep_cycles, np.int64), terms.last_offset, terms.first_gap, terms.first_prep,
        terms.last_busy, terms.last_release, terms.waits_store, terms.to_end, slots, kernel.NO_LIMIT)  # fmt: skip
    if status == kernel.DEADLOCK:
        raise RuntimeError("memory pipeline: the DMA and the array wait on each other (a model bug)")
    return int(total), start, done, load_time, store_time


def _run(transfers: _Transfers, terms: _ChunkTerms, slots: int, trace: bool):
    """``(total, chunk starts, chunk done, load ends, store ends, records)`` by the simpy processes (``trace``)
    or the closed form."""
    if not trace:
        total, *times = _pipeline_closed_form(transfers, terms, slots)
        return (total, *(values.tolist() for values in times), ())
    pipeline = _Pipeline(transfers.as_lists(), terms, slots)
    pipeline.env.run()
    return (int(pipeline.env.now), pipeline.chunk_starts, pipeline.chunk_done, pipeline.load_time,
            pipeline.store_time, tuple(pipeline.records))  # fmt: skip


def _load_store_cycles(chunks: ChunkPlan, bw: float) -> tuple[np.ndarray, np.ndarray]:
    load = transfer_cycles(chunks.load_bytes, bw)
    store = np.where(chunks.store_bytes > 0, transfer_cycles(chunks.store_bytes, bw), 0)
    return load, store


def _single_transfers(load: np.ndarray, store: np.ndarray) -> _Transfers:
    """One GEMM on its own: every chunk's load is early (nothing to wait for but its buffer slot)."""
    n = len(load)
    return _Transfers(load, np.zeros(n, np.int64), np.full(n, -1, np.int64), store, [-1], [0])


def run_pipeline(chunks: ChunkPlan, timing: FoldTiming, config: AcceleratorConfig,
                 trace: bool = False) -> PipelineResult:  # fmt: skip
    """Simulate DMA/array overlap for one GEMM on its own; see :class:`PipelineResult` for the cycle split.

    With ``trace`` the simpy processes run and record every transfer and chunk (``records``); without, the
    same rules are decided in time order directly (:func:`_pipeline_closed_form`, compiled, what sweeps use).
    Tests hold the two, and the per-cycle reference, to the same cycles.
    """
    if chunks.n_chunks == 0:
        return PipelineResult(0, 0, 0, 0, 0, 0, ())
    load, store = _load_store_cycles(chunks, config.dram_bytes_per_cycle)
    slots = config.buffers.slots
    total, starts, done, _, _, records = _run(_single_transfers(load, store), chunks.terms(timing, slots), slots,
                                              trace)  # fmt: skip
    return PipelineResult.split(total, timing.compute_cycles, int(load[0]), total - done[-1],
                                int(load.sum() + store.sum()), tuple(starts), records)  # fmt: skip


@dataclass(frozen=True)
class ChunkChoices:
    """The chunkings of :func:`chunk_options` for one GEMM (``options``, in that order), built on demand:
    the search (:func:`fastest_chunks`) runs on the per-fold bytes, and only the chunking it picks becomes a
    :class:`ChunkPlan`."""

    plan: FoldPlan
    inputs: _ChunkInputs
    options: tuple[tuple[int, bool], ...]
    _plans: dict = field(default_factory=dict, compare=False, repr=False)  # option -> ChunkPlan
    _bounds: dict = field(default_factory=dict, compare=False, repr=False)  # folds per chunk -> _ChunkBounds

    @classmethod
    def of(cls, plan: FoldPlan, op: Gemm, config: AcceleratorConfig) -> ChunkChoices:
        inputs = _ChunkInputs.of(plan, op, config)
        return cls(plan, inputs, tuple(chunk_options(plan, op, config, inputs)))

    def chunks(self, index: int) -> ChunkPlan:
        """The ChunkPlan of ``options[index]`` (kept: a sweep asks again at every bandwidth)."""
        option = self.options[index]
        built = self._plans.get(option)
        if built is None:
            built = self._plans[option] = _chunks(self.inputs, *option, self._bounds)
        return built

    def all_chunks(self) -> list[ChunkPlan]:
        return [self.chunks(index) for index in range(len(self.options))]


def fastest_chunks(choices: ChunkChoices, timing: FoldTiming,
                   config: AcceleratorConfig) -> tuple[ChunkPlan, PipelineResult]:  # fmt: skip
    """The chunking with the fewest cycles on its own (of equals, the fewest DRAM bytes loaded, then the
    first), and its pipeline.

    Each option's cycles are bounded below by the DMA's busy time, by its first load + ``compute_cycles`` +
    its last store, and by all its loads (the DMA loads in order) + the last chunk's own span + its store.
    Options run in the order of that bound; the search skips any whose bound exceeds the best count so far,
    and a run stops once it is sure to lose: the minimum is exact, and most options never run to the end
    (compiled: :func:`hwsim.pipeline_kernel.fastest`)."""
    if not choices.plan.n_folds:
        chunks = choices.chunks(0)
        return chunks, run_pipeline(chunks, timing, config)
    inputs, kernel = choices.inputs, _kernel()
    folds, keep = (np.array(values) for values in zip(*choices.options, strict=True))
    index, total, starts, done, first_load, dma = kernel.fastest(
        inputs.position, inputs.fold_weight, inputs.fold_input, inputs.tile_store, inputs.a_bytes, folds, keep,
        timing.gap, timing.prep, timing.busy, timing.release, timing.tail_cycles, timing.compute_cycles,
        config.dram_bytes_per_cycle, config.buffers.slots)  # fmt: skip
    if index < 0:
        raise RuntimeError("memory pipeline: the DMA and the array wait on each other (a model bug)")
    pipeline = PipelineResult.split(int(total), timing.compute_cycles, int(first_load), int(total - done[-1]),
                                    int(dma), tuple(starts.tolist()))  # fmt: skip
    return choices.chunks(int(index)), pipeline


def best_chunks(plan: FoldPlan, op: Gemm, config: AcceleratorConfig) -> ChunkPlan:
    """The DMA chunking the mapper runs ``op`` with: the fastest of :func:`chunk_options` at the config's
    bandwidth (what ``simulate``, the per-cycle reference and the export all use)."""
    return fastest_chunks(ChunkChoices.of(plan, op, config), fold_timing(plan, config), config)[0]


@dataclass(frozen=True)
class ChainResult:
    """GEMMs run back to back through one DMA and one array (:func:`run_chain`)."""

    cycles: int  # the last GEMM's last store
    gemms: tuple[PipelineResult, ...]  # per GEMM, all repeats: from its dependency time to its last store
    records: tuple[tuple[str, str, int, int, int], ...]  # (unit, what, chunk index in the chain, start, end)
    chunk_gemm: tuple[int, ...]  # the GEMM of every chunk of the chain
    chunk_offset: tuple[int, ...]  # the chunk's index within its repeat


def run_chain(gemms: list[tuple[ChunkPlan, FoldTiming, int]], cycles_before: list[int], config: AcceleratorConfig,
              trace: bool = False) -> ChainResult:  # fmt: skip
    """GEMMs ``(chunks, timing, repeat)`` one after another, each reading the previous one's results.

    GEMM ``g``'s *dependency time* is the previous GEMM's last store plus ``cycles_before[g]`` (vector work
    in between; from cycle 0 for the first). The inputs of each of its repeats (independent copies: heads,
    batch) load no earlier. With ``microarch.prefetch_across_ops`` a repeat's first chunk loads as two
    transfers -- weights and index as soon as a buffer slot is free (while earlier work still computes),
    then the inputs -- and later chunks follow as their slots free; without it the whole first chunk waits
    for the dependency, so the GEMMs run serially, each repeat costing what :func:`run_pipeline` says.
    Buffers, the DMA queue and the array carry over from one repeat and GEMM to the next. Every GEMM needs
    at least one chunk (the caller leaves out GEMMs without folds).
    """
    bw, slots = config.dram_bytes_per_cycle, config.buffers.slots
    prefetch = config.microarch.prefetch_across_ops
    early, late, gate, store, dep_store, dep_cycles = [], [], [], [], [], []
    chunk_gemm, chunk_offset, terms = [], [], []
    stores_so_far = 0
    for g, (chunks, timing, repeat) in enumerate(gemms):
        load, store_cycles = _load_store_cycles(chunks, bw)
        first = load.tolist()
        early_first, late_first = 0, first[0]
        if prefetch:
            weights = chunks.load_bytes[0] - chunks.load_input_bytes[0]
            early_first = int(transfer_cycles(weights, bw)) if weights > 0 else 0
            late_first = int(transfer_cycles(chunks.load_input_bytes[0], bw))
        n, part = len(first), chunks.terms(timing, slots)
        store_list = store_cycles.tolist()
        for group, copies in enumerate([repeat] if prefetch else [1] * repeat):  # prefetch: repeats share one
            dep_store.append(stores_so_far - 1)  # dependency; serially each waits for the one before
            dep_cycles.append(cycles_before[g] if group == 0 else 0)
            early += [early_first, *first[1:]] * copies
            late += ([late_first] + [0] * (n - 1)) * copies
            gate += ([len(dep_store) - 1] + [-1] * (n - 1)) * copies
            store += store_list * copies
            chunk_gemm += [g] * (n * copies)
            chunk_offset += list(range(n)) * copies
            terms += [part] * copies
            stores_so_far += copies * int(np.count_nonzero(chunks.store_bytes))
    transfers = _Transfers(early, late, gate, store, dep_store, dep_cycles)
    terms = _ChunkTerms.chain(terms, slots, config.microarch.fold_switch_cycles)
    tile_of = terms.tile_of_chunk  # a GEMM's last chunk ends its last tile: that tile's store ends the GEMM
    total, starts, done, load_time, store_time, records = _run(transfers, terms, slots, trace)
    results, first_chunk = [], 0
    for chunks, timing, repeat in gemms:
        chunk_range = slice(first_chunk, first_chunk + repeat * chunks.n_chunks)
        last_chunk = chunk_range.stop - 1
        begin = transfers.dependency(gate[first_chunk], store_time, len(store_time))
        end = store_time[tile_of[last_chunk]]
        dma = sum(early[chunk_range]) + sum(late[chunk_range]) + sum(store[chunk_range])
        results.append(PipelineResult.split(end - begin, timing.compute_cycles * repeat, load_time[first_chunk] - begin,
                                            end - done[last_chunk], dma, tuple(starts[chunk_range])))  # fmt: skip
        first_chunk = chunk_range.stop
    return ChainResult(total, tuple(results), records, tuple(chunk_gemm), tuple(chunk_offset))
