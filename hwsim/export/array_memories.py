"""Array-native memories: what a ws/os systolic array loads with ``$readmemh``, in the order and width it
consumes it -- no unpacking, transposing or gathering left to the testbench.

For a layer ``W[N, K]`` (``out = x @ W.T``) on an array with ``C`` columns:

* **block index** -- BCSR over ``block`` (``br x bc``) blocks: ``row_ptr`` (block rows + 1 entries) and
  ``col_idx`` (one block column per kept block), one 32-bit word each. The array decodes the entries of
  the block rows an N-tile touches (one per cycle) into the set of kept block columns.
* **weight stream** -- per N-tile of ``C`` output features (in order), one word per reduction line ``k``
  in a kept block column of the tile (the union over its block rows, ascending, clipped to ``K``): ``C``
  lanes of ``value_bits``, lane ``j`` = ``W[n0 + j, k]`` in bits ``[j*value_bits +: value_bits]`` (lanes past
  ``N`` are 0). A ws array preloads these words as the rows of its stationary tile; an os array streams
  them into its columns. Pruned weights inside a kept block are 0.
* **inputs** -- ``x[m, k]`` one ``value_bits`` word each, row-major; the array gathers ``x[m, k]`` for
  the lines of a fold itself.
* **golden outputs** -- ``y[m, n] = sum_k x[m, k] W[n, k]`` one ``acc_bits`` word each, row-major.

The stream follows the block index, so an index-driven array streams whole kept block columns; with
``column``/``row`` granularity hwsim's compacted schedule (the element-level union) can be finer than
what a block index can drive.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwsim.export.formats import pack_words, write_hex

__all__ = ["ArrayMemories", "array_memories", "array_memory_images", "bcsr_index", "write_array_memories"]

INDEX_WORD_BITS = 32  # row_ptr / col_idx words


@dataclass(frozen=True)
class ArrayMemories:
    """One layer's array-native memories (integers, before formatting)."""

    row_ptr: np.ndarray  # [block rows + 1]
    col_idx: np.ndarray  # [kept blocks]
    weight_stream: np.ndarray  # [lines, C]: the words of the weight stream, lane by lane
    stream_k: np.ndarray  # [lines]: the reduction index k of each line
    tile_first_line: np.ndarray  # [N-tiles + 1]: where each N-tile's lines start in the stream

    @property
    def lines(self) -> int:
        return len(self.stream_k)


def bcsr_index(block_keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """BCSR ``(row_ptr, col_idx)`` of a ``[block rows, block cols]`` keep grid (int64; kept blocks row-major)."""
    row_ptr = np.concatenate([[0], np.cumsum(block_keep.sum(axis=1))]).astype(np.int64)
    return row_ptr, np.nonzero(block_keep)[1].astype(np.int64)


def array_memories(weights: np.ndarray, block_keep: np.ndarray, block: tuple[int, int], cols: int) -> ArrayMemories:
    """The block index and weight stream of integer ``weights[N, K]`` (zeros where pruned) for ``cols`` array
    columns; ``block_keep[block rows, block cols]`` says which ``block`` tiles are kept."""
    N, K = weights.shape
    br, bc = block
    if block_keep.shape != (-(-N // br), -(-K // bc)):
        raise ValueError(f"block_keep: shape {block_keep.shape} does not tile a {N}x{K} weight in {br}x{bc} blocks")
    row_ptr, col_idx = bcsr_index(block_keep)
    words, ks, firsts = [], [], [0]
    for n0 in range(0, N, cols):
        rows = block_keep[n0 // br : (min(N, n0 + cols) - 1) // br + 1].any(axis=0)  # kept block columns
        k_lines = np.flatnonzero(np.repeat(rows, bc)[:K])
        tile = np.zeros((len(k_lines), cols), dtype=np.int64)
        tile[:, : min(cols, N - n0)] = weights[n0 : n0 + cols, k_lines].T
        words.append(tile)
        ks.append(k_lines)
        firsts.append(firsts[-1] + len(k_lines))
    stream = np.concatenate(words) if words else np.zeros((0, cols), dtype=np.int64)
    return ArrayMemories(row_ptr, col_idx, stream, np.concatenate(ks).astype(np.int64) if ks else np.zeros(0, int),
                         np.asarray(firsts, dtype=np.int64))  # fmt: skip


def array_memory_images(memories: ArrayMemories, x: np.ndarray,
                        value_bits: int) -> dict[str, tuple[list[int], int, str]]:  # fmt: skip
    """The memory images ``{"row_ptr", "col_idx", "w_stream", "x_values"}`` as ``(words, word_bits, comment)``;
    ``x[M, K]`` is the integer input."""
    cols = memories.weight_stream.shape[1]
    stream_bits = cols * value_bits
    parts = {
        "row_ptr": (memories.row_ptr, INDEX_WORD_BITS, INDEX_WORD_BITS, "BCSR row pointers over block rows"),
        "col_idx": (memories.col_idx, INDEX_WORD_BITS, INDEX_WORD_BITS, "block column of every kept block"),
        "w_stream": (memories.weight_stream, value_bits, stream_bits,
                     f"weight stream: per N-tile, one word per kept line k; {cols} lanes x int{value_bits}, "
                     "lane j = W[n0 + j, k] in the low bits first"),
        "x_values": (x, value_bits, value_bits, f"x[m][k], int{value_bits}, one per word, row-major"),
    }  # fmt: skip
    return {name: (pack_words(np.asarray(values).ravel(), bits, word_bits), word_bits, comment)
            for name, (values, bits, word_bits, comment) in parts.items()}  # fmt: skip


def write_array_memories(directory: Path, memories: ArrayMemories, x: np.ndarray, value_bits: int) -> dict[str, Path]:
    """Write :func:`array_memory_images` as ``$readmemh`` files ``{name}.hex`` in ``directory``; returns
    ``{name: path}``."""
    directory = Path(directory)
    return {name: write_hex(directory / f"{name}.hex", words, word_bits, comment)
            for name, (words, word_bits, comment) in array_memory_images(memories, x, value_bits).items()}  # fmt: skip
