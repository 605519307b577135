"""Numbers for people: engineering prefixes (µs, mJ) and binary sizes (MiB), three significant digits.

Tables and files keep SI base units in their column names (``latency_s``, ``energy_pj``, ``dram_bytes``);
these functions are for what is printed or drawn.

>>> format_seconds(0.00206), format_seconds(4e-6), format_energy_pj(1.211e10), format_bytes(3 * 2**20)
('2.06 ms', '4 µs', '12.1 mJ', '3 MiB')
>>> readable_value("latency_s", 0.000734), readable_value("cycles", 2064048), readable_value("accuracy", 0.7512)
('734 µs', '2,064,048', '0.751')
"""

from __future__ import annotations

import math
import numbers

__all__ = ["format_bytes", "format_energy_pj", "format_seconds", "format_si", "readable_value"]

_PREFIXES = [(1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"), (1e-12, "p")]


def format_si(value: float, unit: str, digits: int = 3) -> str:
    """``value`` (in ``unit``) with the engineering prefix that leaves 1 to 999 in front: 0.00206 s -> 2.06 ms."""
    if value is None or not math.isfinite(value):
        return "n/a" if value is None or math.isnan(value) else f"{value} {unit}"
    if value == 0:
        return f"0 {unit}"
    magnitude = abs(value)
    scale, prefix = next(((s, p) for s, p in _PREFIXES if magnitude >= s * 0.9995), _PREFIXES[-1])
    return f"{value / scale:.{digits}g} {prefix}{unit}"


def format_seconds(seconds: float) -> str:
    return format_si(seconds, "s")


def format_energy_pj(energy_pj: float) -> str:
    """Energy given in pJ, shown in J with a prefix (1e9 pJ = 1 mJ)."""
    return format_si(energy_pj * 1e-12, "J") if energy_pj is not None else "n/a"


def format_bytes(size_bytes: float) -> str:
    """Binary sizes: 1536 -> 1.5 KiB."""
    if size_bytes is None or not math.isfinite(size_bytes):
        return "n/a"
    for shift, unit in ((40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")):
        if abs(size_bytes) >= 1 << shift:
            return f"{size_bytes / (1 << shift):.3g} {unit}"
    return f"{size_bytes:g} B"


def readable_value(column: str, value) -> str:
    """One table cell as people read it, by what its column name says it holds."""
    missing = value is None or (isinstance(value, float) and math.isnan(value))
    if missing or isinstance(value, bool) or not isinstance(value, numbers.Real):
        return "" if missing else str(value)
    if column.endswith("_s"):
        return format_seconds(value)
    if column.endswith("_pj"):
        return format_energy_pj(value)
    if column.endswith("_bytes"):
        return format_bytes(value)
    if "cycles" in column or column.startswith("macs") or (float(value).is_integer() and abs(value) >= 10_000):
        return f"{int(value):,}"
    return f"{value:.3g}"
