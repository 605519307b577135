"""Requantisation against a scalar transcription of TensorFlow Lite's reference kernels and exact rationals."""

from fractions import Fraction

import numpy as np
import pytest

from hwsim.export.requant import multiply_by_quantized_multiplier, quantize_multiplier, requantize


def tflite_multiply(x: int, multiplier: int, shift: int) -> int:
    """tensorflow/lite/kernels/internal/common.h, MultiplyByQuantizedMultiplier, on Python ints (line by line)."""
    left, right = max(shift, 0), max(-shift, 0)
    a = x * (1 << left)
    if a == multiplier == -(2**31):
        high = 2**31 - 1
    else:
        ab = a * multiplier
        nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
        total = ab + nudge
        high = abs(total) // 2**31 * (1 if total >= 0 else -1)  # int64 division truncates toward zero
    mask = (1 << right) - 1
    remainder = high & mask
    threshold = (mask >> 1) + (1 if high < 0 else 0)
    return (high >> right) + (1 if remainder > threshold else 0)


def test_hand_worked_values():
    multiplier, shift = quantize_multiplier(np.array([0.5, 0.25, 1.5, 0.0]))
    assert multiplier.tolist() == [2**30, 2**30, 3 * 2**29, 0] and shift.tolist() == [0, -1, 1, 0]
    # 0.25 * 10 = 2.5 rounds away from zero; 0.25 * -10 = -2.5 too; 1.5 * 3 = 4.5 -> 5
    assert requantize(np.array([[10, -10, 3, 99]]), multiplier[[1, 1, 2, 3]], shift[[1, 1, 2, 3]], 8).tolist() == [
        [3, -3, 5, 0]
    ]
    clamped = requantize(np.array([[1000, -1000]]), np.array([2**30, 2**30]), np.array([0, 0]), 8)
    assert clamped.tolist() == [[127, -128]]


@pytest.mark.parametrize("seed", range(4))
def test_equals_the_scalar_reference_and_the_exact_product_to_one_unit(seed):
    rng = np.random.default_rng(seed)
    real = np.exp(rng.uniform(np.log(1e-6), np.log(4.0), size=64))
    multiplier, shift = quantize_multiplier(real)
    for r, m, s in zip(real, multiplier, shift, strict=True):
        exact = Fraction(int(m)) * Fraction(2) ** (int(s) - 31)
        assert abs(exact - Fraction(r)) <= Fraction(r) * Fraction(1, 2**30)  # Q0.31 keeps 31 bits
    x = rng.integers(-(2**24), 2**24, size=(50, 64))
    x[0, :4] = [0, -1, 2**31 - 1 >> 8, -(2**31) >> 8]
    got = multiply_by_quantized_multiplier(x, multiplier, shift)
    for i, j in np.ndindex(x.shape):
        expected = tflite_multiply(int(x[i, j]), int(multiplier[j]), int(shift[j]))
        assert got[i, j] == expected
        exact = Fraction(int(x[i, j])) * Fraction(int(multiplier[j])) * Fraction(2) ** (int(shift[j]) - 31)
        assert abs(Fraction(expected) - exact) <= 1


def test_bad_values_are_refused():
    with pytest.raises(ValueError, match="finite and >= 0"):
        quantize_multiplier(np.array([-0.5]))
    with pytest.raises(ValueError, match="outside the int32 range"):
        requantize(np.array([2**31]), np.array([2**30]), np.array([0]), 8)
