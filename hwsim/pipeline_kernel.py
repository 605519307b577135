"""The memory pipeline's inner loops, compiled with numba: chunking a GEMM's folds, each chunking's pipeline
terms, the closed-form pipeline and the search over chunkings.

:mod:`hwsim.memory` holds the model, its rules and the simpy processes; these are the same rules as loops
over int64/float64 arrays, compiled because a sweep runs them millions of times (``cache=True``: compiled
once per machine, loaded in ~0.4 s by each new process). Times are cycles, sizes bytes.
"""

from __future__ import annotations

import numba
import numpy as np

DONE, ABORTED, DEADLOCK = 0, 1, 2
NO_LIMIT = 1 << 62

_jit = numba.njit(cache=True, nogil=True)


@_jit
def transfer_cycles(n_bytes: float, bw_bytes_per_cycle: float) -> int:
    """``max(1, ceil(bytes / bw))`` (the same rounding as :func:`hwsim.memory.transfer_cycles`)."""
    return max(1, int(np.ceil(n_bytes / bw_bytes_per_cycle - 1e-9)))


@_jit
def chunk_bounds(position, fold_weight, fold_input, tile_store, folds_per_chunk):
    """Chunks of ``folds_per_chunk`` folds of one output tile (fewer at a tile's end), from every fold's
    ``position`` in its tile: ``(first fold, weight + index bytes, streamed input bytes, starts a tile, store
    bytes)`` per chunk. ``tile_store`` holds each output tile's result bytes, stored after its last chunk."""
    n = len(position)
    count = 0
    for f in range(n):
        if position[f] % folds_per_chunk == 0:
            count += 1
    first = np.empty(count, np.int64)
    weight, inputs, store = np.zeros(count), np.zeros(count), np.zeros(count)
    starts_tile = np.empty(count, np.bool_)
    chunk = -1
    for f in range(n):
        if position[f] % folds_per_chunk == 0:
            chunk += 1
            first[chunk], starts_tile[chunk] = f, position[f] == 0
        weight[chunk] += fold_weight[f]
        inputs[chunk] += fold_input[f]
    tile = -1
    for chunk in range(count):
        tile += starts_tile[chunk]
        if chunk == count - 1 or starts_tile[chunk + 1]:
            store[chunk] = tile_store[tile]
    return first, weight, inputs, starts_tile, store


@_jit
def tile_waits(starts_tile, slots):
    """``(tile of every chunk, the store a tile's first chunk waits for)``: its output slot is the one of the
    tile ``slots`` tiles back (-1: none; a chunk that continues a tile waits for no store)."""
    count = len(starts_tile)
    tile_of_chunk, waits_store = np.empty(count, np.int64), np.empty(count, np.int64)
    tile = -1
    for chunk in range(count):
        tile += starts_tile[chunk]
        tile_of_chunk[chunk] = tile
        waits_store[chunk] = tile - slots if starts_tile[chunk] and tile >= slots else -1
    return tile_of_chunk, waits_store


@_jit
def chunk_terms(first_fold, starts_tile, gap, prep, busy, release, tail, slots):
    """Per chunk, from its first fold's stream start: the last fold's start offset, busy and release, the
    GEMM's remaining span (``tail - prep`` of the first fold); the first fold's gap and prep; its tile and the
    store a tile's first chunk waits for (``slots`` tiles back, -1: none). See ``memory._ChunkTerms``."""
    count, n_folds = len(first_fold), len(gap)
    last_offset, first_gap, first_prep = np.empty(count, np.int64), np.empty(count, np.int64), np.empty(count, np.int64)
    last_busy, last_release, to_end = np.empty(count, np.int64), np.empty(count, np.int64), np.empty(count, np.int64)
    for chunk in range(count):
        first = first_fold[chunk]
        last = first_fold[chunk + 1] - 1 if chunk + 1 < count else n_folds - 1
        offset = 0
        for f in range(first + 1, last + 1):
            offset += gap[f]
        last_offset[chunk], first_gap[chunk], first_prep[chunk] = offset, gap[first], prep[first]
        last_busy[chunk], last_release[chunk], to_end[chunk] = busy[last], release[last], tail[first] - prep[first]
    tile_of_chunk, waits_store = tile_waits(starts_tile, slots)
    return last_offset, first_gap, first_prep, last_busy, last_release, to_end, tile_of_chunk, waits_store


@_jit
def closed_form(early, late, gate, store, dep_store, dep_cycles, last_offset, first_gap, first_prep, last_busy,
                last_release, waits_store, to_end, slots, limit):  # fmt: skip
    """``memory._pipeline_closed_form``'s loop: ``(status, total, chunk starts, chunk done, load ends, store
    ends)``; status ABORTED once the total is sure to exceed ``limit``, DEADLOCK if nothing can move.

    The DMA, free at ``now``, stores the oldest finished tile whose results are done, else loads the next
    chunk's early part once its slot is released, else its late part once its dependency is met, else waits
    for the earliest of these. The array schedules chunk ``i`` as soon as its load (and, for a new tile, the
    store ``slots`` tiles back) has a completion time -- the schedule depends on nothing else, so it is
    extended after every DMA action.
    """
    n = len(store)
    empty = np.zeros(0, np.int64)
    array_limit = limit - store[n - 1]  # the last chunk ends the last tile: its store follows the last fold
    dma_left = early.sum() + late.sum() + store.sum()  # the DMA's work still to do: all after `now`
    store_chunks = np.flatnonzero(store > 0)
    n_stores = len(store_chunks)
    load_time, store_time = np.zeros(n, np.int64), np.zeros(n_stores, np.int64)
    start, done, release = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64)
    loaded = stored = scheduled = 0
    early_in = False  # the early part of chunk `loaded` is in
    now = previous = 0  # previous: stream start of the last scheduled chunk's last fold
    while True:
        # the array: schedule every chunk whose waits have completion times
        while scheduled < loaded:
            i = scheduled
            ready = load_time[i]
            tile_store = waits_store[i]
            if tile_store >= 0:
                if tile_store >= stored:
                    break
                ready = max(ready, store_time[tile_store])
            begin = ready + first_prep[i]
            if i > 0:
                begin = max(begin, previous + first_gap[i])
            if begin + to_end[i] > array_limit:
                return ABORTED, 0, empty, empty, empty, empty
            previous = begin + last_offset[i]
            start[i], done[i], release[i] = begin, previous + last_busy[i], previous + last_release[i]
            scheduled += 1
        # the DMA
        wake = -1
        if stored < n_stores:
            chunk = store_chunks[stored]
            if chunk < scheduled:
                if done[chunk] <= now:
                    now += store[chunk]
                    dma_left -= store[chunk]
                    store_time[stored] = now
                    stored += 1
                    continue
                wake = done[chunk]
        elif loaded == n:
            break
        if loaded < n:
            freed = loaded - slots
            if freed < 0 or (freed < scheduled and release[freed] <= now):
                entry = gate[loaded]
                if not early_in:
                    now += early[loaded]
                    dma_left -= early[loaded]
                    if entry < 0:  # nothing late: the chunk is in
                        load_time[loaded] = now
                        loaded += 1
                    else:
                        early_in = True
                    continue
                after = dep_store[entry]  # the dependency: that store plus the vector work after it
                if after < stored:
                    met = (store_time[after] if after >= 0 else 0) + dep_cycles[entry]
                    if met <= now:
                        now += late[loaded]
                        dma_left -= late[loaded]
                        load_time[loaded] = now
                        loaded += 1
                        early_in = False
                        continue
                    if wake < 0 or met < wake:
                        wake = met
            elif freed < scheduled and (wake < 0 or release[freed] < wake):
                wake = release[freed]
        if wake < 0:
            return DEADLOCK, 0, empty, empty, empty, empty
        if wake + dma_left > limit:
            return ABORTED, 0, empty, empty, empty, empty
        now = wake
    return DONE, max(now, done[n - 1]), start, done, load_time, store_time


@_jit
def _option_transfers(position, fold_weight, fold_input, tile_store, a_bytes, folds_per_chunk, keep_inputs, bw):
    """One chunking's ``(first fold, starts tile, load cycles, store cycles, loaded bytes)``."""
    first, weight, inputs, starts_tile, store_bytes = chunk_bounds(position, fold_weight, fold_input, tile_store,
                                                                   folds_per_chunk)  # fmt: skip
    if keep_inputs:
        inputs = np.zeros(len(first))
        inputs[0] = a_bytes
    count = len(first)
    load, store = np.empty(count, np.int64), np.zeros(count, np.int64)
    for chunk in range(count):
        load[chunk] = transfer_cycles(weight[chunk] + inputs[chunk], bw)
        if store_bytes[chunk] > 0:
            store[chunk] = transfer_cycles(store_bytes[chunk], bw)
    return first, starts_tile, load, store, weight.sum() + inputs.sum()


@_jit
def fastest(position, fold_weight, fold_input, tile_store, a_bytes, option_folds, option_keep, gap, prep, busy,
            release, tail, compute_cycles, bw, slots):  # fmt: skip
    """The chunking (of ``option_folds``/``option_keep``) with the fewest cycles on its own, of equals the
    fewest loaded bytes, then the first: ``(index, total, chunk starts, chunk done, first load, DMA busy)``.

    Each option's cycles are bounded below by the DMA's busy time, by its first load + ``compute_cycles`` +
    its last store, and by all its loads (in order) + the last chunk's own span + its store. Options run in
    the order of (bound, bytes, index) and only while they can still win; a run stops once it is sure to
    lose (``closed_form``'s limit): the minimum is exact.
    """
    k = len(option_folds)
    bounds, loaded = np.empty(k, np.int64), np.empty(k)
    for option in range(k):
        first, _, load, store, loaded[option] = _option_transfers(position, fold_weight, fold_input, tile_store,
                                                                  a_bytes, option_folds[option], option_keep[option],
                                                                  bw)  # fmt: skip
        stores, last_store = store.sum(), store[len(store) - 1]
        loads = load.sum()
        last_span = tail[first[len(first) - 1]]
        bounds[option] = max(load[0] + compute_cycles + last_store, loads + stores, loads + last_span + last_store)
    order = sorted([(bounds[option], loaded[option], option) for option in range(k)])
    best, best_total, best_bytes = -1, NO_LIMIT, 0.0
    best_start, best_done = np.zeros(0, np.int64), np.zeros(0, np.int64)
    best_first_load, best_dma = 0, 0
    for bound, option_bytes, option in order:
        # the key is (cycles, bytes): an option wins only with fewer cycles, or as many and fewer bytes
        limit = best_total if option_bytes < best_bytes else best_total - 1
        if bound > limit:
            continue
        first, starts_tile, load, store, _ = _option_transfers(
            position, fold_weight, fold_input, tile_store, a_bytes, option_folds[option], option_keep[option], bw)
        last_offset, first_gap, first_prep, last_busy, last_release, to_end, _, waits_store = chunk_terms(
            first, starts_tile, gap, prep, busy, release, tail, slots)  # fmt: skip
        count = len(first)
        no_dependency = np.full(1, -1, np.int64)
        status, total, start, done, _, _ = closed_form(load, np.zeros(count, np.int64), np.full(count, -1, np.int64),
                                                       store, no_dependency, np.zeros(1, np.int64), last_offset,
                                                       first_gap, first_prep, last_busy, last_release, waits_store,
                                                       to_end, slots, limit)  # fmt: skip
        if status == DEADLOCK:
            return -1, 0, start, done, 0, 0
        if status == DONE and total <= limit:
            best, best_total, best_bytes, best_start, best_done = option, total, option_bytes, start, done
            best_first_load, best_dma = load[0], load.sum() + store.sum()
    return best, best_total, best_start, best_done, best_first_load, best_dma
