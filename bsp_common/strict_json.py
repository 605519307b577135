"""JSON that is always JSON: non-finite floats become ``null`` and ``NaN``/``Infinity`` are never written.

>>> dumps({"rate": float("inf"), "acc": float("nan"), "n": 3})
'{"rate": null, "acc": null, "n": 3}'
"""

from __future__ import annotations

import hashlib
import json
import math

__all__ = ["content_hash", "dumps", "json_safe"]


def json_safe(value):
    """A copy of ``value`` with NumPy scalars as Python numbers, paths as strings, non-finite floats as None."""
    if value is None or isinstance(value, bool | int | str):  # the common case first: results stores write many
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        value = value.item()  # numpy / torch scalars
        if value is None or isinstance(value, bool | int | str | float):
            return json_safe(value)
    return str(value)  # paths and anything else


def dumps(value, **kwargs) -> str:
    """``json.dumps`` of :func:`json_safe` ``(value)``, with ``allow_nan=False`` as a guarantee."""
    return json.dumps(json_safe(value), allow_nan=False, **kwargs)


def content_hash(record) -> str:
    """A short, stable identity of a JSON-able record (sorted keys; 16 hex digits of SHA-256)."""
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()[:16]
