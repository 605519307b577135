"""Symmetric integer quantization of weights and activations for RTL export.

``scale_mode="tensor"``: one scale ``max|W| / qmax`` for the whole matrix. ``"block-row"``: one scale per
block row (``block.rows`` output features). ``frac_bits=F``: fixed point with scale ``2**-F`` for every
value; values beyond the integer range saturate and are *counted* -- the exporter refuses them unless asked.
``qmax = 2**(bits-1) - 1`` (symmetric: ``-qmax..qmax``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Quantized", "quantize"]

SUPPORTED_BITS = (4, 8, 16)
SCALE_MODES = ("tensor", "block-row")


@dataclass(frozen=True)
class Quantized:
    values: np.ndarray  # int64 array, same shape as the input
    scales: np.ndarray  # float64: one per tensor ([1]) or per block row ([n_block_rows])
    row_group: int  # rows sharing one scale
    bits: int
    saturated: int  # values clipped to +-qmax

    def dequantize(self) -> np.ndarray:
        per_row = np.repeat(self.scales, self.row_group)[: self.values.shape[0]]
        return self.values * per_row[:, None]


def quantize(x: np.ndarray, bits: int = 8, scale_mode: str = "tensor", block_rows: int = 1,
             frac_bits: int | None = None) -> Quantized:  # fmt: skip
    """Quantize a 2-D float array to signed ``bits``-bit integers (round half to even)."""
    if bits not in SUPPORTED_BITS:
        raise ValueError(f"value_bits: {bits!r} not supported; allowed: {SUPPORTED_BITS}")
    if scale_mode not in SCALE_MODES:
        raise ValueError(f"scale: {scale_mode!r} not one of {SCALE_MODES}")
    x = np.asarray(x, dtype=np.float64)
    qmax = 2 ** (bits - 1) - 1
    row_group = x.shape[0] if scale_mode == "tensor" else block_rows
    n_groups = -(-x.shape[0] // row_group)
    if frac_bits is not None:
        scales = np.full(n_groups, 2.0**-frac_bits)
    else:
        padded = np.zeros((n_groups * row_group, x.shape[1]))
        padded[: x.shape[0]] = np.abs(x)
        peaks = padded.reshape(n_groups, -1).max(axis=1)
        scales = np.where(peaks > 0, peaks / qmax, 1.0)
    per_row = np.repeat(scales, row_group)[: x.shape[0]]
    raw = np.rint(x / per_row[:, None])
    saturated = int(np.count_nonzero(np.abs(raw) > qmax))
    return Quantized(np.clip(raw, -qmax, qmax).astype(np.int64), scales, row_group, bits, saturated)
