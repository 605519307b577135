"""One layer's golden integer vectors and their error against the float model.

From the layer's quantised weights ``w_q`` (scale ``s_w`` per row group), its float input ``x`` and output
``y`` (bias included) and float bias ``b``:

* ``x_q`` -- the input quantised per tensor (``s_x``, symmetric);
* ``y_int = x_q @ w_q.T`` -- the accumulator, no bias: what an array writes;
* ``bias_int[n] = round(b[n] / (s_x * s_w[n]))`` -- the bias in accumulator units;
* ``y_requant`` -- ``y_int + bias_int`` requantised per channel to ``bits`` with the output scale
  ``s_y = max|y| / qmax`` (:mod:`hwsim.export.requant`), when the accumulator is at most 32 bits;
* ``quant_error = ||(y_int + bias_int) s_x s_w - y|| / ||y||`` and ``requant_error = ||y_requant s_y - y|| / ||y||``
  (Frobenius norms): what the integer path loses against the float layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.export.quant import Quantized, quantize
from hwsim.export.requant import quantize_multiplier, requantize

__all__ = ["LayerGolden", "layer_golden"]

REQUANT_ACC_BITS = 32  # gemmlowp/TFLite requantise int32 accumulators


@dataclass(frozen=True)
class LayerGolden:
    x_q: np.ndarray  # [M, K] int64
    input_scale: float
    y_int: np.ndarray  # [M, N] int64, no bias
    bias_int: np.ndarray  # [N] int64
    output_scale: float
    multiplier: np.ndarray | None  # [N] int64 Q0.31, None when acc_bits > 32
    shift: np.ndarray | None  # [N] int64
    y_requant: np.ndarray | None  # [M, N] int64
    quant_error: float
    requant_error: float | None


def _relative_error(approx: np.ndarray, exact: np.ndarray) -> float:
    norm = float(np.linalg.norm(exact))
    return float(np.linalg.norm(approx - exact)) / norm if norm > 0 else float(np.linalg.norm(approx))


def _check_range(name: str, what: str, values: np.ndarray, acc_bits: int) -> None:
    limit = 2 ** (acc_bits - 1)
    overflow = int(np.count_nonzero((values >= limit) | (values < -limit)))
    if overflow:
        raise ValueError(f"{name}: {overflow} {what} overflow the {acc_bits}-bit accumulator (pe_array.acc_bits)")


def layer_golden(name: str, q: Quantized, x_float: np.ndarray, y_float: np.ndarray, bias: np.ndarray,
                 acc_bits: int) -> LayerGolden:  # fmt: skip
    """Golden vectors of layer ``name`` (named in errors); ``bias`` is ``[N]`` (zeros for none)."""
    bits = q.bits
    xq = quantize(x_float, bits, "tensor")
    s_x = float(xq.scales[0])
    s_w = np.repeat(q.scales, q.row_group)[: q.values.shape[0]]  # [N]
    y_int = xq.values @ q.values.T
    _check_range(name, "golden outputs", y_int, acc_bits)
    bias_int = np.rint(np.asarray(bias, dtype=np.float64) / (s_x * s_w)).astype(np.int64)
    _check_range(name, "golden outputs with the bias", y_int + bias_int, acc_bits)
    quant_error = _relative_error((y_int + bias_int) * s_x * s_w, y_float)
    if acc_bits > REQUANT_ACC_BITS:
        return LayerGolden(xq.values, s_x, y_int, bias_int, 0.0, None, None, None, quant_error, None)
    peak = float(np.abs(y_float).max())
    s_y = peak / (2 ** (bits - 1) - 1) if peak > 0 else 1.0
    multiplier, shift = quantize_multiplier(s_x * s_w / s_y)
    y_requant = requantize(y_int + bias_int, multiplier, shift, bits)
    return LayerGolden(xq.values, s_x, y_int, bias_int, s_y, multiplier, shift, y_requant, quant_error,
                       _relative_error(y_requant * s_y, y_float))  # fmt: skip
