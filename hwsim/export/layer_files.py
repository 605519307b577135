"""One exported layer's directory: index, weights, array memories, golden vectors, requantisation, fold table.

:func:`write_layer` writes the files of one layer into ``<export>/<layer dir>/`` and returns its manifest
entry; every file is listed through :class:`FileList` (path, kind, format, word layout, bytes, SHA-256).
The kinds and what each holds are described in ``manifest.schema.json`` (``$defs.kind``), which the
export's README is generated from.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hwsim.config import AcceleratorConfig
from hwsim.export.array_memories import INDEX_WORD_BITS, ArrayMemories, array_memories, array_memory_images, bcsr_index
from hwsim.export.formats import pack_words, write_c_header, write_coe, write_hex
from hwsim.export.golden import LayerGolden
from hwsim.export.quant import Quantized
from hwsim.mapping import FoldPlan, fold_lines, plan_folds
from hwsim.memory import best_chunks, fold_start_cycles, run_pipeline
from hwsim.timing import fold_timing
from hwsim.workload import Gemm

__all__ = ["TILE_COLUMNS", "FileList", "layer_dir_name", "write_layer"]

VALUE_DTYPES = {4: np.int8, 8: np.int8, 16: np.int16}  # numpy has no int4: 4-bit values in int8 (packed in .hex)
SHIFT_WORD_BITS = 8
MULTIPLIER_WORD_BITS = 32
MAX_GRID_LINES = 64  # block-grid lines per axis in the heatmap before they would hide the pattern

TILE_COLUMNS = {
    "fold": "fold number, in the order the array runs them",
    "tile": "hwsim's tile id of the fold (its N-tile for ws/os)",
    "n_first": "first output feature of the fold",
    "n_count": "output features of the fold",
    "k_indices": "the fold's reduction lines k (space-separated, uncompacted indices)",
    "m_first": "first token of the fold",
    "m_count": "tokens of the fold",
    "decode_blocks": "index entries decoded before the fold",
    "w_stream_line": "w_stream.hex line of the fold's first k (empty: no weight stream, or hwsim's compacted lines "
                     "differ from the block index's -- column/row granularity)",
    "x_stream_line": "x_stream.hex line of the fold's first input word (empty: no input stream -- is dataflow)",
    "prep_cycles": "index decode + weight preload cycles of the fold",
    "start_cycle": "cycle the fold's input stream starts (memory stalls and fold overlap included)",
    "stream_end_cycle": "cycle its stream ends",
    "end_cycle": "cycle its results are done",
}  # fmt: skip


def layer_dir_name(name: str) -> str:
    """The layer's subdirectory: the module name with dots as underscores."""
    return name.removesuffix(".weight").replace(".", "_")


@dataclass
class FileList:
    """Every file an export writes, as manifest entries (paths relative to ``root``)."""

    root: Path
    entries: list[dict] = field(default_factory=list)

    def add(self, path: Path, kind: str, layer: str, fmt: str, **meta) -> Path:
        data = path.read_bytes()
        self.entries.append({"path": path.relative_to(self.root).as_posix(), "kind": kind, "layer": layer,
                             "format": fmt, **meta, "bytes": len(data),
                             "sha256": hashlib.sha256(data).hexdigest()})  # fmt: skip
        return path


@dataclass(frozen=True)
class LayerInput:
    """What :func:`write_layer` needs of one layer (all numbers; no model)."""

    name: str
    mask: object  # pruning.BlockMask
    q: Quantized
    golden: LayerGolden
    x_float: np.ndarray
    y_float: np.ndarray
    bias: np.ndarray  # [N] float64, zeros without one
    has_bias: bool


def _bcsr(q: np.ndarray, keep: np.ndarray, block: tuple[int, int]):
    """BCSR of ``q`` over ``block`` tiles kept in ``keep``: row_ptr, col_idx, values ``[kept, br, bc]``."""
    br, bc = block
    rows, cols = keep.shape
    padded = np.zeros((rows * br, cols * bc), dtype=np.int64)
    padded[: q.shape[0], : q.shape[1]] = q
    tiles = padded.reshape(rows, br, cols, bc).transpose(0, 2, 1, 3)
    row_ptr, col_idx = bcsr_index(keep)
    return row_ptr, col_idx, tiles[np.nonzero(keep)]


def _bitmap_words(block_keep: np.ndarray) -> list[int]:
    return [sum(1 << int(c) for c in np.flatnonzero(row)) for row in block_keep]


def _stream_line(memories: ArrayMemories | None, cols: int, n_first: int, ks: np.ndarray) -> str:
    """The w_stream line of a fold's first k when the stream holds the fold's lines contiguously, else ''."""
    if memories is None or not len(ks):
        return ""
    tile = n_first // cols
    first, end = int(memories.tile_first_line[tile]), int(memories.tile_first_line[tile + 1])
    segment = memories.stream_k[first:end]
    at = int(np.searchsorted(segment, ks[0]))
    if segment[at : at + len(ks)].tolist() != ks.tolist():
        return ""
    return str(first + at)


def input_stream(x_q: np.ndarray, folds: list[dict], dataflow: str, rows: int) -> tuple[np.ndarray, list[int]]:
    """The words the array's row feeder takes, fold by fold (``rows`` lanes, lane ``i`` = PE row ``i``, unused
    lanes 0): ws -- one word per token ``m``, lane ``i`` = ``x[m, k_i]`` (the fold's ``i``-th line); os -- one
    word per reduction line ``k``, lane ``i`` = ``x[m_i, k]``. Returns ``[words, rows]`` and each fold's first word."""
    blocks, firsts, at = [], [], 0
    for lines in folds:
        gathered = x_q[lines["m"]][:, lines["k"]]
        if dataflow == "os":
            gathered = gathered.T
        block = np.zeros((gathered.shape[0], rows), dtype=np.int64)
        block[:, : gathered.shape[1]] = gathered
        blocks.append(block)
        firsts.append(at)
        at += len(block)
    return (np.concatenate(blocks) if blocks else np.zeros((0, rows), dtype=np.int64)), firsts


def _fold_table(path: Path, op: Gemm, config: AcceleratorConfig, plan: FoldPlan, folds: list[dict],
                memories: ArrayMemories | None, x_firsts: list[int] | None) -> None:  # fmt: skip
    """``tiles.csv``: the fold order (``folds``: each fold's ``fold_lines``) with the fast path's cycle
    stamps (``hwsim.timing``)."""
    timing = fold_timing(plan, config)
    chunks = best_chunks(plan, op, config)
    starts = fold_start_cycles(run_pipeline(chunks, timing, config), chunks, timing)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(list(TILE_COLUMNS))
        for i, lines in enumerate(folds):
            writer.writerow([i, int(plan.tile[i]), int(lines["n"][0]), len(lines["n"]),
                             " ".join(map(str, lines["k"].tolist())), int(lines["m"][0]), len(lines["m"]),
                             int(plan.index_blocks[i]),
                             _stream_line(memories, config.pe_array.cols, int(lines["n"][0]), lines["k"]),
                             "" if x_firsts is None else x_firsts[i],
                             int(timing.prep[i]), int(starts[i]), int(starts[i] + timing.stream[i]),
                             int(starts[i] + timing.busy[i])])  # fmt: skip


def _heatmap(path: Path, grid: np.ndarray, name: str, group: tuple[int, int], block: tuple[int, int]) -> None:
    """The keep pattern as a readable figure: black = kept group, axes in weight indices, block grid drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, cols = grid.shape[0] * group[0], grid.shape[1] * group[1]
    width = 8.0
    height = min(12.0, max(2.5, width * rows / max(cols, 1)))
    fig, ax = plt.subplots(figsize=(width, height))
    ax.imshow(grid, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest", aspect="auto",
              extent=(0, cols, rows, 0))  # fmt: skip
    for axis, size, length in ((ax.axvline, block[1], cols), (ax.axhline, block[0], rows)):
        if length // size <= MAX_GRID_LINES:
            for position in range(size, length, size):
                axis(position, color="tab:red", lw=0.4, alpha=0.6)
    ax.set_xlabel("input feature (in_features)")
    ax.set_ylabel("output feature (out_features)")
    ax.set_title(f"{name}: {grid.mean():.0%} of groups kept; {block[0]}x{block[1]} blocks", fontsize=9)
    fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)


def _value_bytes(count: int, bits: int) -> int:
    return -(-count * bits // 8)


def write_layer(files: FileList, layer: LayerInput, config: AcceleratorConfig, value_bits: int, word_bits: int,
                lane_order: str, scale_mode: str, psums: bool) -> dict:  # fmt: skip
    """Write ``layer``'s directory; returns its manifest entry (``scale_mode`` is recorded as given)."""
    from hwsim.simulate import simulate_gemm

    name, mask, q, golden = layer.name, layer.mask, layer.q, layer.golden
    directory = files.root / layer_dir_name(name)
    directory.mkdir()
    bits, acc_bits = value_bits, config.pe_array.acc_bits
    block = (mask.block.rows, mask.block.cols)
    N, K = mask.weight_shape
    dense_mask = mask.dense().numpy()
    kept_weights = q.values * dense_mask

    def npy(stem: str, kind: str, array: np.ndarray) -> None:
        np.save(directory / f"{stem}.npy", array)
        files.add(directory / f"{stem}.npy", kind, name, "npy", dtype=str(array.dtype), shape=list(array.shape))

    def memory(stem: str, kind: str, words: list[int], bits_per_word: int, comment: str, coe: bool = False,
               **meta) -> None:  # fmt: skip
        files.add(write_hex(directory / f"{stem}.hex", words, bits_per_word, f"{name} {comment}"), kind, name, "hex",
                  word_bits=bits_per_word, **meta)  # fmt: skip
        if coe:
            files.add(write_coe(directory / f"{stem}.coe", words, bits_per_word, f"{name} {comment}"), kind, name,
                      "coe", word_bits=bits_per_word, **meta)  # fmt: skip

    def values(stem: str, kind: str, array: np.ndarray, value_bits_: int, per_word_bits: int, comment: str,
               coe: bool = False, lanes: str = "lsb-first") -> None:  # fmt: skip
        words = pack_words(array.ravel(), value_bits_, per_word_bits, lanes)
        memory(stem, kind, words, per_word_bits, comment, coe, dtype=f"int{value_bits_}", count=int(array.size),
               value_bits=value_bits_, values_per_word=per_word_bits // value_bits_, lane_order=lanes)  # fmt: skip

    # ---- pattern and block index ----
    pattern = mask.group_mask.numpy().astype(np.uint8)
    npy("pattern", "pattern", pattern)
    _heatmap(directory / "pattern.png", pattern, name, mask.group_shape, block)
    files.add(directory / "pattern.png", "pattern-heatmap", name, "png")
    block_keep = mask.block_mask().numpy()
    row_ptr, col_idx, block_values = _bcsr(q.values, block_keep, block)
    npy("bcsr_row_ptr", "bcsr-row-ptr", row_ptr.astype(np.int32))
    npy("bcsr_col_idx", "bcsr-col-idx", col_idx.astype(np.int32))
    npy("bcsr_values", "bcsr-values", block_values.astype(VALUE_DTYPES[bits]))
    memories = array_memories(kept_weights, block_keep, block, config.pe_array.cols)
    images = array_memory_images(memories, golden.x_q, bits)
    for part, kind in (("row_ptr", "bcsr-row-ptr"), ("col_idx", "bcsr-col-idx")):
        words, width, comment = images[part]
        memory(part, kind, words, width, comment, coe=True, count=len(words))
    memory("block_bitmap", "block-bitmap", _bitmap_words(block_keep), block_keep.shape[1],
           f"one word per block row, bit c = block column c kept ({block_keep.shape[1]} block columns)", coe=True,
           count=block_keep.shape[0])  # fmt: skip

    # ---- weights ----
    values("weights", "weights", block_values, bits, word_bits,
           f"kept blocks' weights, block by block, row-major in a block, {word_bits // bits} per word, {lane_order}",
           coe=True, lanes=lane_order)  # fmt: skip
    stem_c, upper = layer_dir_name(name), layer_dir_name(name).upper()
    write_c_header(directory / "weights.h", f"BSP_{upper}_H", {
        f"{stem_c}_row_ptr": (row_ptr, 32), f"{stem_c}_col_idx": (col_idx, 32),
        f"{stem_c}_values": (block_values, bits),
    }, {f"{upper}_OUT_FEATURES": N, f"{upper}_IN_FEATURES": K, f"{upper}_BLOCK_ROWS": block[0],
        f"{upper}_BLOCK_COLS": block[1], f"{upper}_KEPT_BLOCKS": len(col_idx)})  # fmt: skip
    files.add(directory / "weights.h", "c-header", name, "c-header")
    npy("scales", "weight-scales", q.scales)
    npy("bias", "bias", np.asarray(layer.bias, dtype=np.float64))
    values("bias_int", "bias-int", golden.bias_int, acc_bits, acc_bits, "bias in accumulator units, one per word")

    # ---- golden vectors ----
    values("x", "golden-input", golden.x_q, bits, word_bits, f"x_q[m][k] row-major, {word_bits // bits} per word, "
           f"{lane_order}", lanes=lane_order)  # fmt: skip
    words, width, comment = images["x_values"]
    memory("x_values", "array-input", words, width, comment, dtype=f"int{bits}", count=int(golden.x_q.size),
           value_bits=bits, values_per_word=1)  # fmt: skip
    npy("x_float", "golden-x_float", layer.x_float)
    values("y_int", "golden-output-int", golden.y_int, acc_bits, acc_bits, "y_int[m][n] = x_q @ w_q.T, no bias")
    npy("y_float", "golden-y_float", layer.y_float)
    requant: dict = {}
    if golden.y_requant is not None:
        values("requant_multiplier", "requant-multiplier", golden.multiplier, MULTIPLIER_WORD_BITS,
               MULTIPLIER_WORD_BITS, "Q0.31 multiplier per output feature")  # fmt: skip
        values("requant_shift", "requant-shift", golden.shift, SHIFT_WORD_BITS, SHIFT_WORD_BITS,
               "shift per output feature (>0 left, <0 rounding right)")  # fmt: skip
        values("y_requant", "golden-output-requant", golden.y_requant, bits, bits,
               "y_requant[m][n] = requantise(y_int + bias_int), one per word")  # fmt: skip
    else:
        requant["requant"] = f"not written: acc_bits {acc_bits} > 32 (gemmlowp requantises int32 accumulators)"

    # ---- fold order, array memories, partial sums ----
    op = Gemm(name, M=golden.x_q.shape[0], K=K, N=N, mask=dense_mask, block=block)
    plan = plan_folds(op, config)
    streams = config.pe_array.dataflow.value in ("ws", "os")
    folds = [fold_lines(op, config, plan, i) for i in range(plan.n_folds)]
    x_firsts = None
    if streams:
        rows = config.pe_array.rows
        x_words, x_firsts = input_stream(golden.x_q, folds, config.pe_array.dataflow.value, rows)
        values("x_stream", "input-stream", x_words, bits, rows * bits,
               f"per fold (tiles.csv x_stream_line), the row feeder's words: {rows} lanes x int{bits}, lane i = PE "
               "row i, low bits first")  # fmt: skip
    _fold_table(directory / "tiles.csv", op, config, plan, folds, memories if streams else None, x_firsts)
    files.add(directory / "tiles.csv", "tile-stream", name, "csv")
    extra: dict = {}
    if psums:
        sums = [golden.x_q[lines["m"]][:, lines["k"]] @ kept_weights[lines["n"]][:, lines["k"]].T for lines in folds]
        flat = np.concatenate([s.ravel() for s in sums]) if sums else np.zeros(0, dtype=np.int64)
        values("psums", "golden-partial-sums", flat, acc_bits, acc_bits,
               "per fold (tiles.csv order), m-major over its tokens and output features: sum over its k "
               "lines")  # fmt: skip
        extra["psums"] = int(flat.size)
    if streams:
        words, width, comment = images["w_stream"]
        memory("w_stream", "weight-stream", words, width, comment, coe=True, dtype=f"int{bits}",
               count=int(memories.weight_stream.size), value_bits=bits, values_per_word=config.pe_array.cols,
               lane_order="lsb-first")  # fmt: skip
        shape = {"M": op.M, "K": K, "N": N, "BR": block[0], "BC": block[1], "NNZ": len(col_idx),
                 "WLINES": memories.lines, "VB": bits}  # fmt: skip
        # the array walks the block index: whole kept blocks, even where column/row pruning emptied lines of
        # them, so its cycles are hwsim's for the block-occupancy mask (tiles.csv keeps the compacted schedule)
        block_op = Gemm(name, M=op.M, K=K, N=N, mask=np.kron(block_keep, np.ones(block, dtype=bool))[:N, :K],
                        block=block)  # fmt: skip
        relative = {part: f"{layer_dir_name(name)}/{part}.hex" for part in ("row_ptr", "col_idx", "w_stream",
                                                                             "x_values", "y_int")}  # fmt: skip
        extra["array"] = {"dataflow": config.pe_array.dataflow.value, "rows": config.pe_array.rows,
                          "cols": config.pe_array.cols, "block": list(block), "kept_blocks": len(col_idx),
                          "stream_lines": memories.lines,
                          "compute_cycles": int(simulate_gemm(block_op, config)[0]["compute_cycles"]),
                          "parameters": shape, "files": relative}  # fmt: skip

    # ---- compacted form (column / row granularity) and storage ----
    index_bytes = INDEX_WORD_BITS // 8
    storage = {"dense_bytes": _value_bytes(N * K, bits),
               "bcsr_bytes": _value_bytes(block_values.size, bits) + index_bytes * (len(row_ptr) + len(col_idx)),
               "compact_bytes": None}  # fmt: skip
    if mask.granularity.value != "block":
        group = mask.group_shape
        g_row_ptr, g_col_idx, g_values = _bcsr(q.values, pattern.astype(bool), group)
        npy("group_row_ptr", "group-row-ptr", g_row_ptr.astype(np.int32))
        npy("group_col_idx", "group-col-idx", g_col_idx.astype(np.int32))
        npy("group_values", "group-values", g_values.astype(VALUE_DTYPES[bits]))
        storage["compact_bytes"] = (_value_bytes(g_values.size, bits)
                                    + index_bytes * (len(g_row_ptr) + len(g_col_idx)))  # fmt: skip
        storage["compact_note"] = (f"{mask.granularity.value} granularity: group_* hold each kept "
                                   f"{group[0]}x{group[1]} group with its index; the block index and weight stream "
                                   "keep whole blocks")  # fmt: skip
    return {"name": name, "dir": layer_dir_name(name), "weight_shape": [N, K], "block": str(mask.block),
            "granularity": mask.granularity.value, "group_shape": list(mask.group_shape),
            "scale_mode": scale_mode, "weight_scales": q.scales.tolist(), "input_scale": golden.input_scale,
            "output_scale": golden.output_scale, "has_bias": layer.has_bias, "kept_blocks": len(col_idx),
            "total_blocks": int(block_keep.size), "tokens": int(golden.x_q.shape[0]),
            "quant_error": golden.quant_error, "requant_error": golden.requant_error, "storage": storage,
            **requant, **extra}  # fmt: skip
