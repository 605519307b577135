"""Memory-image formats RTL tools load: Verilog ``$readmemh`` hex, Xilinx ``.coe``, C headers.

Values are two's-complement ``value_bits`` integers packed ``word_bits // value_bits`` per memory word.
``lane_order="lsb-first"`` puts the first value in the least significant bits of a word
(``"msb-first"``: in the most significant bits). A last partial word is zero-padded. Each writer has a
parser, so tests (and users) can check a file round-trips exactly.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

__all__ = [
    "pack_words",
    "read_c_array",
    "read_coe",
    "read_hex",
    "read_hex_values",
    "unpack_words",
    "write_c_header",
    "write_coe",
    "write_hex",
]  # fmt: skip

LANE_ORDERS = ("lsb-first", "msb-first")


def _check(value_bits: int, word_bits: int, lane_order: str) -> int:
    if word_bits <= 0 or value_bits <= 0 or word_bits % value_bits:
        raise ValueError(f"word_bits: {word_bits} is not a positive multiple of value_bits={value_bits}")
    if lane_order not in LANE_ORDERS:
        raise ValueError(f"lane_order: {lane_order!r} not one of {LANE_ORDERS}")
    return word_bits // value_bits


def pack_words(values: np.ndarray, value_bits: int, word_bits: int, lane_order: str = "lsb-first") -> list[int]:
    """Pack signed integers into unsigned ``word_bits``-bit words."""
    per_word = _check(value_bits, word_bits, lane_order)
    flat = np.asarray(values, dtype=np.int64).ravel()
    lo, hi = -(2 ** (value_bits - 1)), 2 ** (value_bits - 1) - 1
    if flat.size and (flat.min() < lo or flat.max() > hi):
        raise ValueError(f"values outside the signed {value_bits}-bit range [{lo}, {hi}]")
    unsigned = (flat & ((1 << value_bits) - 1)).tolist()
    unsigned += [0] * (-len(unsigned) % per_word)
    words = []
    for start in range(0, len(unsigned), per_word):
        lanes = unsigned[start : start + per_word]
        if lane_order == "msb-first":
            lanes = lanes[::-1]
        words.append(sum(v << (i * value_bits) for i, v in enumerate(lanes)))
    return words


def unpack_words(words: list[int], count: int, value_bits: int, word_bits: int,
                 lane_order: str = "lsb-first") -> np.ndarray:  # fmt: skip
    """Inverse of :func:`pack_words`: the first ``count`` signed values."""
    per_word = _check(value_bits, word_bits, lane_order)
    mask, sign = (1 << value_bits) - 1, 1 << (value_bits - 1)
    values = []
    for word in words:
        lanes = [(word >> (i * value_bits)) & mask for i in range(per_word)]
        if lane_order == "msb-first":
            lanes = lanes[::-1]
        values.extend(v - (1 << value_bits) if v & sign else v for v in lanes)
    return np.asarray(values[:count], dtype=np.int64)


def _digits(word_bits: int) -> int:
    return -(-word_bits // 4)


def write_hex(path: Path, words: list[int], word_bits: int, comment: str = "") -> Path:
    """``$readmemh`` file: one word per line, fixed-width hex; ``//`` comment header."""
    lines = [f"// {line}" for line in comment.splitlines()] + [f"{w:0{_digits(word_bits)}x}" for w in words]
    path.write_text("\n".join(lines) + "\n")
    return path


def read_hex(path: Path) -> list[int]:
    words = []
    for line in Path(path).read_text().splitlines():
        text = line.split("//")[0].strip()
        if text:
            words.append(int(text, 16))
    return words


def read_hex_values(path: Path, value_bits: int) -> np.ndarray:
    """The signed values of a ``$readmemh`` file holding one ``value_bits`` value per word (int64)."""
    words = read_hex(path)
    return unpack_words(words, len(words), value_bits, value_bits)


def write_coe(path: Path, words: list[int], word_bits: int, comment: str = "") -> Path:
    """Xilinx block-memory ``.coe``: radix 16, comma-separated vector ended by ``;``."""
    lines = [f"; {line}" for line in comment.splitlines()]
    lines += ["memory_initialization_radix=16;", "memory_initialization_vector="]
    body = [f"{w:0{_digits(word_bits)}x}" for w in words] or ["0"]
    lines += [f"{w}," for w in body[:-1]] + [f"{body[-1]};"]
    path.write_text("\n".join(lines) + "\n")
    return path


def read_coe(path: Path) -> list[int]:
    text = "\n".join(line for line in Path(path).read_text().splitlines() if not line.lstrip().startswith(";"))
    match = re.search(r"memory_initialization_vector\s*=\s*(.*?);", text, re.S)
    if not match or "memory_initialization_radix=16" not in text.replace(" ", ""):
        raise ValueError(f"{path}: not a radix-16 .coe file")
    return [int(token, 16) for token in re.split(r"[,\s]+", match.group(1)) if token]


_C_TYPES = {8: "int8_t", 16: "int16_t", 32: "int32_t", 64: "int64_t"}


def write_c_header(path: Path, guard: str, arrays: dict[str, tuple[np.ndarray, int]], defines: dict[str, int]) -> Path:
    """A header with ``#define``s and ``static const intN_t name[] = {...};`` arrays (name -> (values, bits))."""
    lines = [f"#ifndef {guard}", f"#define {guard}", "#include <stdint.h>", ""]
    lines += [f"#define {name} {value}" for name, value in defines.items()] + [""]
    for name, (values, bits) in arrays.items():
        ctype = _C_TYPES[max(8, 1 << (bits - 1).bit_length())]
        flat = np.asarray(values, dtype=np.int64).ravel().tolist()
        rows = [", ".join(str(v) for v in flat[i : i + 16]) for i in range(0, len(flat), 16)] or ["0"]
        lines.append(f"static const {ctype} {name}[{max(len(flat), 1)}] = {{")
        lines += [f"    {row}," for row in rows]
        lines += ["};", ""]
    lines.append(f"#endif /* {guard} */")
    path.write_text("\n".join(lines) + "\n")
    return path


def read_c_array(path: Path, name: str) -> np.ndarray:
    """Values of one array written by :func:`write_c_header` (a parser for tests without a C compiler)."""
    match = re.search(rf"\b{re.escape(name)}\[\d+\]\s*=\s*\{{(.*?)\}};", Path(path).read_text(), re.S)
    if not match:
        raise ValueError(f"{path}: no array {name!r}")
    return np.asarray([int(t) for t in re.split(r"[,\s]+", match.group(1)) if t], dtype=np.int64)
