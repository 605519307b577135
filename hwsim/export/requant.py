"""Integer requantisation of accumulator outputs, bit-exact with gemmlowp / TensorFlow Lite.

A layer's int32 accumulator ``acc[m, n] = sum_k x_q[m, k] w_q[n, k] + bias_q[n]`` is brought to the output's
integer scale with one real multiplier per output channel, ``s_x * s_w[n] / s_y``, represented as a Q0.31
``multiplier`` in ``[2**30, 2**31)`` and a power-of-two ``shift`` (``real ~= multiplier * 2**(shift - 31)``;
``shift > 0`` shifts left first, ``shift < 0`` rounds right after). This is TFLite's ``QuantizeMultiplier`` and
``MultiplyByQuantizedMultiplier`` (``SaturatingRoundingDoublingHighMul`` then ``RoundingDivideByPOT``), so an
RTL output stage written to that spec reproduces the golden requantised outputs bit for bit. Outputs are
symmetric (zero point 0) and clamped to the signed ``bits`` range.

>>> multiplier, shift = quantize_multiplier(np.array([0.25]))
>>> int(multiplier[0]), int(shift[0])
(1073741824, -1)
>>> requantize(np.array([[100, -7]]), multiplier, shift, bits=8).tolist()
[[25, -2]]
"""

from __future__ import annotations

import numpy as np

__all__ = ["multiply_by_quantized_multiplier", "quantize_multiplier", "requantize"]

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def quantize_multiplier(real: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(multiplier, shift)`` (int64 arrays) of non-negative real multipliers, as TFLite's ``QuantizeMultiplier``."""
    real = np.asarray(real, dtype=np.float64)
    if not np.all(np.isfinite(real)) or np.any(real < 0):
        raise ValueError("requantisation: real multipliers must be finite and >= 0")
    fraction, shift = np.frexp(real)  # real = fraction * 2**shift, fraction in [0.5, 1)
    # TFLite uses std::round (half away from zero); the value is positive, so floor(v + 0.5)
    multiplier = np.floor(fraction * 2.0**31 + 0.5).astype(np.int64)
    carry = multiplier == 2**31
    multiplier = np.where(carry, multiplier // 2, multiplier)
    shift = shift.astype(np.int64) + carry
    underflow = shift < -31
    return np.where(underflow, 0, multiplier), np.where(underflow, 0, shift)


def _rounding_doubling_high_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    product = a * b  # |a|, |b| < 2**31: fits int64
    nudge = np.where(product >= 0, 1 << 30, 1 - (1 << 30))
    total = product + nudge
    high = np.where(total >= 0, total >> 31, -((-total) >> 31))  # C division truncates toward zero
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, high)


def _rounding_divide_by_pot(x: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def multiply_by_quantized_multiplier(x: np.ndarray, multiplier: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """TFLite's ``MultiplyByQuantizedMultiplier`` on int32 values ``x`` (broadcast over the last axis)."""
    x = np.asarray(x, dtype=np.int64)
    left, right = np.maximum(shift, 0), np.maximum(-shift, 0)
    shifted = np.clip(x << left, INT32_MIN, INT32_MAX)  # TFLite's int32 shift would wrap; saturate instead
    return _rounding_divide_by_pot(_rounding_doubling_high_mul(shifted, multiplier), right)


def requantize(acc: np.ndarray, multiplier: np.ndarray, shift: np.ndarray, bits: int) -> np.ndarray:
    """``acc[..., n]`` (int32 range) scaled per channel ``n`` and clamped to signed ``bits`` (int64 result)."""
    acc = np.asarray(acc, dtype=np.int64)
    if acc.size and (acc.min() < INT32_MIN or acc.max() > INT32_MAX):
        raise ValueError("requantisation: accumulator values outside the int32 range")
    scaled = multiply_by_quantized_multiplier(acc, np.asarray(multiplier), np.asarray(shift))
    return np.clip(scaled, -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
