"""Pareto fronts over any number of objectives, plus 2-D hypervolume and knee point.

A row is *dominated* when another row is at least as good in every objective and strictly better in
one. Rows with identical objective values do not dominate each other, so duplicates on the front are all
kept (``distinct=True`` keeps the first of each). Rows with a missing objective value are never on the
front. Functions take a DataFrame and never change it.

>>> import pandas as pd
>>> df = pd.DataFrame({"accuracy": [0.9, 0.8, 0.85, 0.9], "cycles": [100, 50, 120, 100]})
>>> pareto_mask(df, {"accuracy": "max", "cycles": "min"}).tolist()
[True, True, False, True]
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from bsp_common.safe_yaml import short_repr

__all__ = ["FRONT_OBJECTIVES", "default_objectives", "hypervolume_2d", "knee_point", "pareto_front", "pareto_mask",
           "parse_objectives"]

# latency in seconds, not cycles: accelerators with different clocks meet on one front; area, so that a bigger
# array has to earn its silicon
FRONT_OBJECTIVES = {"accuracy": "max", "latency_s": "min", "energy_pj": "min", "area_mm2": "min"}
_EVERY_ROW = ("area_mm2",)  # objectives some designs lack by kind (FPGAs report resources): all rows or none


def default_objectives(table: pd.DataFrame) -> tuple[dict[str, str], list[str]]:
    """The :data:`FRONT_OBJECTIVES` ``table`` can rank, and a note per one left out.

    An objective is used when some row has it; ``area_mm2`` only when every row has it, since a row without a
    value is never on a front and FPGA rows report resources instead of area.

    >>> default_objectives(pd.DataFrame({"latency_s": [1.0, 2.0], "area_mm2": [3.0, None]}))
    ({'latency_s': 'min'}, ['area_mm2 left out of the front: 1 of 2 rows have no area (FPGA designs report resources)'])
    """
    objectives, notes = {}, []
    for name, sense in FRONT_OBJECTIVES.items():
        if name not in table or not table[name].notna().any():
            continue
        missing = int(table[name].isna().sum())
        if name in _EVERY_ROW and missing:
            notes.append(f"{name} left out of the front: {missing} of {len(table)} rows have no area (FPGA designs "
                         "report resources)")  # fmt: skip
            continue
        objectives[name] = sense
    return objectives, notes

SENSES = ("min", "max")


def parse_objectives(text: str | Mapping[str, str]) -> dict[str, str]:
    """``"accuracy:max,cycles:min"`` -> ``{"accuracy": "max", "cycles": "min"}`` (validated senses)."""
    if isinstance(text, Mapping):
        items = list(text.items())
    else:
        items = []
        for part in str(text).split(","):
            name, sep, sense = part.strip().rpartition(":")
            if not sep or not name:
                raise ValueError(f"objectives: {part.strip()!r} must look like NAME:min or NAME:max")
            items.append((name.strip(), sense.strip()))
    if not items:
        raise ValueError("objectives: give at least one NAME:min|max")
    names = [name for name, _ in items]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"objectives: {', '.join(map(repr, repeated))} given more than once; name each column once")
    for name, sense in items:
        if sense not in SENSES:
            raise ValueError(f"objectives: sense {sense!r} for {name!r} must be one of {', '.join(SENSES)}")
    return dict(items)


def _costs(df: pd.DataFrame, objectives: Mapping[str, str]) -> np.ndarray:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"table: expected a pandas DataFrame (e.g. pd.read_parquet('results/sweep.parquet')), "
                        f"got {type(df).__name__}")  # fmt: skip
    objectives = parse_objectives(objectives)
    missing = [name for name in objectives if name not in df.columns]
    if missing:
        raise ValueError(f"objectives: columns {missing} not in the table (columns: {list(df.columns)})")
    columns = []
    for name, sense in objectives.items():
        values = pd.to_numeric(df[name], errors="coerce")
        bad = values.isna() & df[name].notna()
        if bad.any():
            row = bad.to_numpy().nonzero()[0][0]
            value = short_repr(df[name].iloc[row])
            raise ValueError(f"objectives: column {name!r} holds a non-numeric value {value} in row {row} "
                             "(0-based, data rows); objective columns must be numbers or empty")  # fmt: skip
        if values.isna().all() and len(values):
            raise ValueError(f"objectives: column {name!r} has no numeric values")
        columns.append(values.to_numpy(dtype=float) * (-1.0 if sense == "max" else 1.0))
    return np.column_stack(columns) if columns else np.zeros((len(df), 0))


def _efficient(costs: np.ndarray) -> np.ndarray:
    """Boolean mask of non-dominated rows of a cost matrix (all objectives minimised).

    Successive culling: take the next surviving row, drop every row it dominates, continue. Each pass is
    vectorised; the loop runs once per surviving candidate (at most the front size plus one).
    """
    n = len(costs)
    if costs.shape[1] == 2:
        return _efficient_2d(costs)
    index = np.arange(n)
    remaining = costs
    position = 0
    while position < len(remaining):
        this = remaining[position]
        dominated = np.all(remaining >= this, axis=1) & np.any(remaining > this, axis=1)
        index, remaining = index[~dominated], remaining[~dominated]
        position = int(np.sum(~dominated[:position])) + 1
    mask = np.zeros(n, dtype=bool)
    mask[index] = True
    return mask


def _efficient_2d(costs: np.ndarray) -> np.ndarray:
    """:func:`_efficient` for two objectives in O(n log n): sorted by the first, a row is on the front iff it
    has the least second cost among the rows of equal first cost and that cost beats every row of a
    smaller first cost (ties on both are kept, as neither dominates the other)."""
    order = np.lexsort((costs[:, 1], costs[:, 0]))
    first, second = costs[order, 0], costs[order, 1]
    starts = np.flatnonzero(np.r_[True, first[1:] != first[:-1]])
    group_best = np.minimum.reduceat(second, starts)  # sorted within a group: its first row's cost
    before = np.r_[np.inf, np.minimum.accumulate(group_best)[:-1]]  # best of the strictly smaller first costs
    group_of = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(order)]))
    keep = (second == group_best[group_of]) & (group_best[group_of] < before[group_of])
    mask = np.zeros(len(costs), dtype=bool)
    mask[order[keep]] = True
    return mask


def pareto_mask(df: pd.DataFrame, objectives: Mapping[str, str] | str, distinct: bool = False) -> np.ndarray:
    """Boolean array, True for rows on the Pareto front of ``objectives`` (``{"col": "min"|"max"}``)."""
    costs = _costs(df, objectives)
    valid = ~np.isnan(costs).any(axis=1)
    mask = np.zeros(len(df), dtype=bool)
    if valid.any():
        sub = costs[valid]
        on_front = _efficient(sub)
        if distinct:
            _, first = np.unique(sub[on_front], axis=0, return_index=True)
            keep = np.zeros(on_front.sum(), dtype=bool)
            keep[first] = True
            on_front[np.flatnonzero(on_front)] = keep
        mask[np.flatnonzero(valid)] = on_front
    return mask


def pareto_front(df: pd.DataFrame, objectives: Mapping[str, str] | str, distinct: bool = False) -> pd.DataFrame:
    """The non-dominated rows (a copy, all columns), sorted by the first objective."""
    mask = pareto_mask(df, objectives, distinct)
    first, sense = next(iter(parse_objectives(objectives).items()))
    return df.loc[mask].sort_values(first, ascending=(sense == "min")).copy()


def hypervolume_2d(df: pd.DataFrame, objectives: Mapping[str, str] | str, reference: tuple[float, float]) -> float:
    """Area dominated by the front of two objectives and bounded by ``reference`` (in objective units).

    The reference point must be worse than every front point (e.g. accuracy 0, cycles max).
    """
    objectives = parse_objectives(objectives)
    if len(objectives) != 2:
        raise ValueError(f"hypervolume_2d: needs exactly two objectives, got {list(objectives)}")
    try:
        ref = np.asarray(reference, dtype=float)
    except (TypeError, ValueError):
        ref = np.full(0, np.nan)
    if ref.shape != (2,) or not np.isfinite(ref).all():
        raise ValueError(f"hypervolume_2d: reference must be two finite numbers (one per objective), "
                         f"got {reference!r}")  # fmt: skip
    signs = np.array([-1.0 if s == "max" else 1.0 for s in objectives.values()])
    costs = _costs(df, objectives)
    costs = costs[pareto_mask(df, objectives)]
    ref = ref * signs
    costs = costs[np.all(costs <= ref, axis=1)]
    if not len(costs):
        return 0.0
    costs = costs[np.lexsort((costs[:, 1], costs[:, 0]))]
    area, prev_y = 0.0, ref[1]
    for x, y in costs:
        if y < prev_y:
            area += (ref[0] - x) * (prev_y - y)
            prev_y = y
    return float(area)


def knee_point(df: pd.DataFrame, objectives: Mapping[str, str] | str):
    """Index label of the 2-D front's knee: farthest (normalised) from the line joining its extremes."""
    objectives = parse_objectives(objectives)
    if len(objectives) != 2:
        raise ValueError(f"knee_point: needs exactly two objectives, got {list(objectives)}")
    front = pareto_front(df, objectives)
    if not len(front):
        raise ValueError(f"knee_point: no row has a number in both {list(objectives)} (an empty table has no knee)")
    if len(front) <= 2:
        return front.index[0]
    costs = _costs(front, objectives)
    span = costs.max(axis=0) - costs.min(axis=0)
    norm = (costs - costs.min(axis=0)) / np.where(span > 0, span, 1.0)
    order = np.argsort(norm[:, 0])
    a, b = norm[order[0]], norm[order[-1]]
    direction = (b - a) / (np.linalg.norm(b - a) or 1.0)
    offsets = norm - a
    distance = np.abs(offsets[:, 0] * direction[1] - offsets[:, 1] * direction[0])
    return front.index[int(np.argmax(distance))]
