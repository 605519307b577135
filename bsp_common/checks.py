"""Small argument checks shared by the public APIs (each caller words its own error)."""

from __future__ import annotations

import numbers

__all__ = ["is_positive_pair"]


def is_positive_pair(value) -> bool:
    """True for a 2-tuple/list of positive integers (Python or NumPy), e.g. a block ``(16, 16)`` or a shape.

    >>> is_positive_pair((16, 16)), is_positive_pair((0, 0)), is_positive_pair("16x16")
    (True, False, False)
    """
    return (isinstance(value, tuple | list) and len(value) == 2
            and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1 for v in value))  # fmt: skip
