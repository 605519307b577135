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

__all__ = ["layer_costs"]


def layer_costs(keep_masks: Mapping[tuple[str, float], np.ndarray], block: tuple[int, int],
                config: AcceleratorConfig | str, tokens: int, weight_bits: int = 8,
                act_bits: int = 8) -> pd.DataFrame:  # fmt: skip
    """Rows (layer, sparsity, cycles, latency_s, energy_pj, kept_weights) for every ``(layer, sparsity)`` key
    of ``keep_masks`` (dense bool keep-masks ``[out, in]``; an all-True mask is the dense layer)."""
    config = load_config(config)
    rows = []
    for (name, sparsity), mask in keep_masks.items():
        op = Gemm(name, M=tokens, K=mask.shape[1], N=mask.shape[0], mask=None if mask.all() else mask,
                  block=tuple(block), weight_bits=weight_bits, act_bits=act_bits)  # fmt: skip
        row, _ = simulate_gemm(op, config)
        energy = sum(v for k, v in row.items() if k.startswith("energy_") and k.endswith("_pj"))
        rows.append({"layer": name, "sparsity": float(sparsity), "cycles": int(row["cycles"]),
                     "latency_s": row["cycles"] / config.clock_hz, "energy_pj": float(energy),
                     "kept_weights": int(mask.sum())})  # fmt: skip
    return pd.DataFrame(rows)
