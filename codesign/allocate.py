"""Multiple-choice knapsack: one candidate per layer, minimising a summed objective under a summed budget.

``solve_mckp`` is exact: dynamic programming over the Pareto set of (budget used, objective) states, layer
by layer -- a state another state beats in both is dropped, so the set stays small (for 36 layers x 8
candidates a few thousand states) and no discretisation error enters. ``greedy_mckp`` is the usual
baseline: from the lowest-budget choice of every layer, repeatedly take the upgrade with the best objective
saving per unit of budget that still fits.

>>> values = [np.array([10.0, 6.0, 3.0]), np.array([8.0, 4.0])]  # e.g. latency per candidate
>>> weights = [np.array([0.0, 1.0, 3.0]), np.array([0.0, 2.0])]  # e.g. loss increase per candidate
>>> solve_mckp(values, weights, capacity=3.0).choice
[1, 1]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Allocation", "greedy_mckp", "solve_mckp"]


@dataclass(frozen=True)
class Allocation:
    choice: list[int]  # candidate index per layer
    value: float  # summed objective
    weight: float  # summed budget use (exact weights, not the discretised ones)


def _check(values: Sequence[np.ndarray], weights: Sequence[np.ndarray], capacity: float) -> None:
    if len(values) != len(weights) or not values:
        raise ValueError("mckp: need one value and one weight array per layer, and at least one layer")
    for i, (v, w) in enumerate(zip(values, weights, strict=True)):
        if len(v) != len(w) or not len(v):
            raise ValueError(f"mckp: layer {i} has {len(v)} values and {len(w)} weights (need equal, non-zero)")
        if not (np.all(np.isfinite(v)) and np.all(np.isfinite(w))):
            raise ValueError(f"mckp: layer {i} has non-finite values or weights")
    if not (isinstance(capacity, int | float) and math.isfinite(capacity) and capacity >= 0):
        raise ValueError(f"budget: must be a finite number >= 0, got {capacity!r}")


def _result(choice: list[int], values, weights) -> Allocation:
    return Allocation(choice, float(sum(v[c] for v, c in zip(values, choice, strict=True))),
                      float(sum(w[c] for w, c in zip(weights, choice, strict=True))))  # fmt: skip


def solve_mckp(values: Sequence[np.ndarray], weights: Sequence[np.ndarray], capacity: float) -> Allocation:
    """Minimise ``sum values[l][c_l]`` subject to ``sum weights[l][c_l] <= capacity`` (exactly); negative
    weights count as 0 (a candidate estimated to *lower* the loss uses no budget). Raises when nothing fits."""
    _check(values, weights, capacity)
    weights = [np.maximum(np.asarray(w, dtype=np.float64), 0.0) for w in weights]
    state_w, state_v = np.zeros(1), np.zeros(1)
    parents, choices = [], []
    tolerance = 1e-12 * max(1.0, capacity)
    for v, w in zip(values, weights, strict=True):
        new_w = (state_w[:, None] + w[None, :]).ravel()
        new_v = (state_v[:, None] + np.asarray(v, dtype=np.float64)[None, :]).ravel()
        fits = np.flatnonzero(new_w <= capacity + tolerance)
        if not len(fits):
            need = sum(float(x.min()) for x in weights)
            raise ValueError(f"budget: {capacity:g} is below what every allocation needs (at least {need:g})")
        order = fits[np.lexsort((new_v[fits], new_w[fits]))]  # by weight, then value
        running = np.minimum.accumulate(new_v[order])
        keep = order[np.r_[True, new_v[order][1:] < running[:-1]]]  # strictly better than every lighter state
        parents.append(keep // len(w))
        choices.append(keep % len(w))
        state_w, state_v = new_w[keep], new_v[keep]
    state = int(np.argmin(state_v))
    choice = []
    for parent, chosen in zip(reversed(parents), reversed(choices), strict=True):
        choice.append(int(chosen[state]))
        state = int(parent[state])
    return _result(choice[::-1], values, weights)


def greedy_mckp(values: Sequence[np.ndarray], weights: Sequence[np.ndarray], capacity: float) -> Allocation:
    """Greedy baseline: start at each layer's lowest-weight candidate, take the best saving-per-budget
    upgrade that fits until none does."""
    _check(values, weights, capacity)
    weights = [np.maximum(w, 0) for w in weights]
    choice = [int(np.lexsort((v, w))[0]) for v, w in zip(values, weights, strict=True)]
    used = sum(float(w[c]) for w, c in zip(weights, choice, strict=True))
    if used > capacity + 1e-12:
        raise ValueError(f"budget: {capacity:g} is below what every allocation needs (at least {used:g})")
    while True:
        best, best_ratio = None, 0.0
        for layer, (v, w) in enumerate(zip(values, weights, strict=True)):
            c = choice[layer]
            for option in range(len(v)):
                saving, extra = v[c] - v[option], w[option] - w[c]
                if saving <= 0 or used + extra > capacity + 1e-12:
                    continue
                ratio = math.inf if extra <= 0 else saving / extra
                if ratio > best_ratio:
                    best, best_ratio = (layer, option, extra), ratio
        if best is None:
            return _result(choice, values, [np.asarray(w) for w in weights])
        layer, option, extra = best
        choice[layer] = option
        used += extra
