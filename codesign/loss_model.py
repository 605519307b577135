"""Retrained loss model: the accuracy a plan loses *after* pruning with retraining, from its per-layer sparsities.

The one-shot estimates (``taylor``, ``fisher``) rank what zeroing one layer does to the unpruned model, but
the pruning run retrains with distillation, which evens out per-layer damage; what it does not undo is
concentration -- a plan that prunes a few layers hard loses more than one that spreads the same weights.
This model is fitted to pruned-and-retrained plans:

    drop(plan) = slope * sum_l (n_l / N) * h_p(s_l),     h_p(s) = ((1 - s)^-p - 1) / p   (p = 0: -log(1 - s))

``n_l`` the layer's weights, ``N`` all planned layers' weights, ``s_l`` the layer's sparsity. ``h_p`` is 0
at ``s = 0`` and convex for ``p > -1``, so of all plans of one compression the uniform one loses least and
``p`` sets how fast concentration costs. The sum is over layers, so the knapsack
(:mod:`codesign.allocate`) uses it like any per-layer estimate, in accuracy (fraction) directly.

>>> model = RetrainedLossModel(power=1.0, slope=0.01)
>>> sizes = {"a": 100, "b": 100}
>>> round(model.predict_drop({"a": 0.5, "b": 0.5}, sizes), 6)  # uniform 2x: h_1(0.5) = 1
0.01
>>> round(model.predict_drop({"a": 0.75, "b": 0.25}, sizes), 6)  # same compression, concentrated
0.016667
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bsp_common import strict_json
from bsp_common.outputs import write_text_atomic

__all__ = ["RetrainedLossModel", "candidate_drops", "concentration_curve", "fit_retrained_loss", "load_loss_model"]

POWERS = tuple(np.round(np.arange(-0.5, 3.0001, 0.1), 2))  # the fit's grid for p (h_p convex for p > -1)


def concentration_curve(sparsity, power: float) -> np.ndarray:
    """``h_p(s) = ((1 - s)^-p - 1) / p`` (``-log(1 - s)`` at ``p = 0``) for sparsities in [0, 1)."""
    kept = 1.0 - np.asarray(sparsity, dtype=np.float64)
    return -np.log(kept) if abs(power) < 1e-12 else (kept**-power - 1.0) / power


def _check_layers(layers: Mapping[str, float], sizes: Mapping[str, int], where: str) -> None:
    missing = sorted(set(layers) - set(sizes))
    if missing:
        raise ValueError(f"{where}: layers {missing[:3]} have no size (sizes name {len(sizes)} layers)")
    bad = {k: v for k, v in layers.items() if not (isinstance(v, int | float) and 0 <= v < 1)}
    if bad:
        raise ValueError(f"{where}: sparsities must be in [0, 1), got {dict(list(bad.items())[:3])}")


def _weighted_curve(layers: Mapping[str, float], sizes: Mapping[str, int], power: float) -> float:
    names = list(layers)
    n = np.array([sizes[k] for k in names], dtype=np.float64)
    return float(n @ concentration_curve([layers[k] for k in names], power) / n.sum())


@dataclass(frozen=True)
class RetrainedLossModel:
    """``drop = slope * sum_l (n_l / N) h_p(s_l)``; ``fit`` holds the fit's diagnostics and provenance."""

    power: float
    slope: float  # accuracy drop (fraction) per unit of the size-weighted h_p
    fit: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        for name, value, ok, allowed in (("power", self.power, lambda v: v > -1, "> -1 (h_p convex)"),
                                         ("slope", self.slope, lambda v: v > 0, "> 0")):  # fmt: skip
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or not ok(
                    value):  # fmt: skip
                raise ValueError(f"loss model {name}: must be a finite number {allowed}, got {value!r}")

    def layer_drop(self, sparsity, layer_weights, total_weights: float) -> np.ndarray:
        """One layer's share of the predicted drop: ``slope * n_l / N * h_p(s)`` (element-wise)."""
        return self.slope * np.asarray(layer_weights, float) / total_weights * concentration_curve(sparsity,
                                                                                                     self.power)

    def predict_drop(self, layers: Mapping[str, float], sizes: Mapping[str, int]) -> float:
        """Predicted accuracy drop (fraction) from the unpruned model of a plan ``{layer: sparsity}``."""
        _check_layers(layers, sizes, "predict_drop")
        return self.slope * _weighted_curve(layers, sizes, self.power)

    def save(self, path: str | Path) -> Path:
        return write_text_atomic(Path(path), strict_json.dumps(asdict(self), indent=2) + "\n")


def load_loss_model(path: str | Path) -> RetrainedLossModel:
    """Read a model written by :meth:`RetrainedLossModel.save`; errors name the file and the field."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"loss model {path}: cannot read it as JSON ({err})") from None
    if not isinstance(record, dict) or not {"power", "slope"} <= set(record):
        raise ValueError(f"loss model {path}: needs 'power' and 'slope' (written by RetrainedLossModel.save)")
    try:
        return RetrainedLossModel(power=record["power"], slope=record["slope"], fit=record.get("fit") or {})
    except ValueError as err:
        raise ValueError(f"{str(err).replace('loss model', f'loss model {path}:', 1)}") from None


def candidate_drops(candidates: pd.DataFrame, model: RetrainedLossModel) -> pd.Series:
    """Each candidate's share of the predicted drop (``candidates.csv`` rows: config, block, layer, sparsity,
    kept_weights), with ``n_l`` its layer's weights and ``N`` all layers' weights of the same accelerator and
    block."""
    column = pd.Series(np.nan, index=candidates.index)
    for _, table in candidates.groupby(["config", "block"], sort=False):
        sizes = table.groupby("layer")["kept_weights"].transform("max")
        total = float(table.groupby("layer")["kept_weights"].max().sum())
        column[table.index] = model.layer_drop(table["sparsity"].to_numpy(float), sizes.to_numpy(float), total)
    return column


def _least_squares(curve: np.ndarray, accuracy: np.ndarray, groups: np.ndarray) -> tuple[float, dict, float]:
    """(slope, {group: intercept}, sse) of ``accuracy = intercept[group] - slope * curve``."""
    codes, inverse = np.unique(groups, return_inverse=True)
    design = np.column_stack([np.eye(len(codes))[inverse], -curve])
    coef, *_ = np.linalg.lstsq(design, accuracy, rcond=None)
    residual = accuracy - design @ coef
    return float(coef[-1]), dict(zip(codes, coef[:-1], strict=True)), float(residual @ residual)


def _fit_arrays(curves: dict, accuracy: np.ndarray, groups: np.ndarray, powers) -> tuple[float, float, dict, float]:
    """(power, slope, {group: intercept}, sse) with the least sse over the grid."""
    best = None
    for p in powers:
        slope, intercepts, sse = _least_squares(curves[p], accuracy, groups)
        if best is None or sse < best[3]:
            best = (float(p), slope, intercepts, sse)
    return best


def fit_retrained_loss(observations: pd.DataFrame, sizes: Mapping[str, int], powers=POWERS) -> tuple[
        RetrainedLossModel, pd.DataFrame]:  # fmt: skip
    """Fit the model to measured plans: ``observations`` has one row per pruned model with ``plan`` (a label),
    ``group`` (what shares an unpruned accuracy: seed, block, machine), ``accuracy`` (fraction) and ``layers``
    (``{layer: sparsity}`` or its JSON). Every group gets its own intercept, so accuracies are compared within
    a group only; ``power`` is the grid point with the least squared error, ``slope`` its least squares.

    Returns (model, per-plan table): mean measured and fitted accuracy change against the group intercept,
    and the leave-one-plan-out prediction (the model refitted without that plan's rows) -- the honest error.
    """
    missing = sorted({"plan", "group", "accuracy", "layers"} - set(observations.columns))
    if missing:
        raise ValueError(f"observations: missing columns {missing}")
    obs = observations.reset_index(drop=True)
    layers = [json.loads(v) if isinstance(v, str) else dict(v) for v in obs["layers"]]
    for i, plan in enumerate(layers):
        _check_layers(plan, sizes, f"observations row {i} ({obs['plan'][i]!r})")
    accuracy = obs["accuracy"].to_numpy(np.float64)
    groups = obs["group"].astype(str).to_numpy()
    if not np.all(np.isfinite(accuracy)):
        raise ValueError("observations: accuracy must be finite")
    if obs["plan"].nunique() < 3:
        raise ValueError(f"observations: need at least 3 distinct plans to fit slope and power, got "
                         f"{obs['plan'].nunique()}")  # fmt: skip
    curves = {p: np.array([_weighted_curve(plan, sizes, p) for plan in layers]) for p in powers}
    power, slope, intercepts, sse = _fit_arrays(curves, accuracy, groups, powers)
    if not slope > 0:
        raise ValueError(f"observations: accuracy does not fall as sparsity grows (fitted slope {slope:.3g}); "
                         "the model needs plans of different compression")  # fmt: skip
    rows = []
    for plan_label, index in obs.groupby("plan", sort=False).groups.items():
        index = np.asarray(index)
        keep = np.ones(len(obs), bool)
        keep[index] = False
        row = {"plan": plan_label, "observations": len(index),
               "measured_change": float(np.mean([accuracy[i] - intercepts[groups[i]] for i in index])),
               "fitted_change": float(-slope * curves[power][index].mean())}  # fmt: skip
        if len(np.unique(obs["plan"][keep])) >= 3 and set(groups[index]) <= set(groups[keep]):
            p_out, s_out, b_out, _ = _fit_arrays({p: c[keep] for p, c in curves.items()}, accuracy[keep],
                                                 groups[keep], powers)  # fmt: skip
            predicted = [b_out[groups[i]] - s_out * curves[p_out][i] for i in index]
            row["left_out_error"] = float(np.mean(np.array(predicted) - accuracy[index]))
            row["left_out_power"] = p_out
        rows.append(row)
    table = pd.DataFrame(rows)
    rmse = math.sqrt(sse / len(obs))
    fit = {"observations": len(obs), "plans": int(obs["plan"].nunique()), "groups": len(intercepts), "rmse": rmse}
    if "left_out_error" in table:
        fit["left_out_rmse"] = float(np.sqrt(np.nanmean(table["left_out_error"] ** 2)))
    return RetrainedLossModel(power=power, slope=slope, fit=fit), table
