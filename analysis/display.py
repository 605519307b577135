"""How sweep points are named and shown to people: accelerator labels that carry the hardware-axis values,
and result tables in engineering units (the stored tables keep their SI columns).

>>> row = {"config": "asic-32x32-int8", "hw_overrides": '{"pe_array.rows": 64, "pe_array.cols": 128, '
...        '"clock_mhz": 500, "buffers.weight_bytes": "512 KiB"}'}
>>> accelerator_label(row)
'asic-32x32-int8 64x128 500 MHz weight 512 KiB'
>>> readable_table(pd.DataFrame({"latency_s": [0.00206], "energy_pj": [1.211e10], "cycles": [2064048]}))
  latency   energy     cycles
0 2.06 ms  12.1 mJ  2,064,048
"""

from __future__ import annotations

import json

import pandas as pd

from bsp_common.units import format_bytes, readable_value
from hwsim.config import parse_size_bytes

__all__ = ["IDENTITY_COLUMNS", "accelerator_label", "accelerator_labels", "point_columns", "readable_table"]

# what tells two points of a sweep apart, in the order people read it (hardware-axis columns follow "config")
IDENTITY_COLUMNS = ("config", "block", "granularity", "method", "target_sparsity", "compression_rate", "seq_len",
                    "batch")  # fmt: skip
_RENAMED = {"latency_s": "latency", "energy_pj": "energy"}


def _axis_text(key: str, value, overrides: dict) -> str | None:
    if key == "pe_array.cols" and "pe_array.rows" in overrides:
        return None  # shown with the rows
    if key == "pe_array.rows":
        return f"{value}x{overrides.get('pe_array.cols', '?')}"
    if key == "clock_mhz":
        return f"{value:g} MHz" if isinstance(value, int | float) else f"{value} MHz"
    if key.endswith("_bytes"):
        try:
            size = format_bytes(parse_size_bytes(value))
        except ValueError:  # shown as given; the sweep reports the bad value itself
            size = value
        return f"{key.split('.')[-1].removesuffix('_bytes')} {size}"
    if key.endswith("bw_gb_per_s"):
        return f"DRAM {value:g} GB/s" if isinstance(value, int | float) else f"DRAM {value} GB/s"
    return f"{key.split('.')[-1]}={value}"


def accelerator_label(point) -> str:
    """The config's name plus its hardware-axis values (``hw_overrides``), e.g. ``asic-32x32-int8 64x128 500
    MHz``: unique per derived accelerator, where the base name alone is shared by all of them."""
    overrides = point.get("hw_overrides") if hasattr(point, "get") else None
    overrides = json.loads(overrides) if isinstance(overrides, str) and overrides else {}
    parts = [str(point.get("config", ""))]
    parts += [text for key, value in overrides.items() if (text := _axis_text(key, value, overrides)) is not None]
    return " ".join(parts)


def accelerator_labels(table: pd.DataFrame) -> pd.Series:
    """:func:`accelerator_label` of every row (the config column where there are no hardware axes)."""
    if "hw_overrides" not in table or not table["hw_overrides"].fillna("{}").ne("{}").any():
        return table["config"].astype(str) if "config" in table else pd.Series("", index=table.index)
    return pd.Series([accelerator_label(row) for _, row in table.iterrows()], index=table.index)


def point_columns(table: pd.DataFrame, objectives=(), among: pd.DataFrame | None = None) -> list[str]:
    """The identity columns (accelerator, hardware axes, pruning point) that vary across ``among`` (default
    ``table``; pass the whole results table when ``table`` is its front, so a one-row front still says which
    block and sparsity won), then ``objectives``: what a printed front needs, not every stored column."""
    among = table if among is None else among
    axes = list(dict.fromkeys(k for text in among.get("hw_overrides", pd.Series(dtype=str)).dropna().unique()
                              for k in json.loads(text or "{}")))  # fmt: skip
    identity = ["config", *axes, *IDENTITY_COLUMNS[1:]]
    varies = {c for c in identity if c in among and among[c].nunique(dropna=False) > 1}
    shown = [c for c in identity if c in table and (c == "config" or c in varies)]
    if "accuracy" in table and "accuracy" not in objectives and table["accuracy"].notna().any():
        shown.append("accuracy")
    return [*shown, *(c for c in objectives if c in table and c not in shown)]


def readable_table(table: pd.DataFrame) -> pd.DataFrame:
    """A copy for printing: seconds, pJ and bytes in engineering units (``latency_s`` shown as ``latency``,
    ``energy_pj`` as ``energy``), counts with thousands separators, other numbers to 3 significant digits."""
    shown = pd.DataFrame(index=table.index)
    for column in table.columns:
        values = table[column]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            values = values.map(lambda v, c=column: readable_value(c, v))
        shown[_RENAMED.get(column, column.removesuffix("_bytes") if column.endswith("_bytes") else column)] = values
    return shown
