"""Layer hardware cost: cycles, latency and energy of one pruned layer's GEMM on an accelerator.

Each candidate (layer, sparsity) is simulated as the GEMM ``bsp simulate`` runs for that layer
(``M = batch * seq_len`` tokens, ``K = in_features``, ``N = out_features``, the hardware block for index
costs) with the keep-mask the pruning would produce -- the pattern matters, not only the count: block rows
that keep different columns cost union-many cycles on a skipping array. numpy and hwsim only.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from hwsim.config import AcceleratorConfig, load_config
from hwsim.simulate import simulate_gemm
from hwsim.workload import Gemm

__all__ = ["element_mask", "layer_costs"]


def element_mask(removed_groups: np.ndarray, gshape: tuple[int, int], weight_shape: tuple[int, int]) -> np.ndarray:
    """Dense keep-mask ``[out, in]`` from a bool grid of removed groups of shape ``gshape``."""
    keep = ~np.asarray(removed_groups, dtype=bool)
    dense = np.repeat(np.repeat(keep, gshape[0], axis=0), gshape[1], axis=1)
    return dense[: weight_shape[0], : weight_shape[1]]


def layer_costs(removed: Mapping[tuple[str, float], np.ndarray], shapes: Mapping[str, tuple[int, int]],
                gshape: tuple[int, int], block: tuple[int, int], config: AcceleratorConfig | str, tokens: int,
                weight_bits: int = 8, act_bits: int = 8) -> pd.DataFrame:  # fmt: skip
    """Rows (layer, sparsity, cycles, latency_s, energy_pj, kept_weights) for every ``(layer, sparsity)`` key
    of ``removed`` (bool grids of removed groups; an all-False grid is the dense layer)."""
    config = load_config(config)
    rows = []
    for (name, sparsity), grid in removed.items():
        shape = tuple(shapes[name])
        mask = element_mask(grid, gshape, shape)
        op = Gemm(name, M=tokens, K=shape[1], N=shape[0], mask=None if mask.all() else mask, block=tuple(block),
                  weight_bits=weight_bits, act_bits=act_bits)  # fmt: skip
        row, _ = simulate_gemm(op, config)
        energy = sum(v for k, v in row.items() if k.startswith("energy_") and k.endswith("_pj"))
        rows.append({"layer": name, "sparsity": float(sparsity), "cycles": int(row["cycles"]),
                     "latency_s": row["cycles"] / (config.clock_mhz * 1e6), "energy_pj": float(energy),
                     "kept_weights": int(mask.sum())})  # fmt: skip
    return pd.DataFrame(rows)
