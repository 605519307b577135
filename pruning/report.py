"""Per-layer and whole-model pruning reports as pandas DataFrames.

Compression rate (DESIGN.md): weights in the pruned layers / non-zero weights in those layers.
The whole-model rate divides *all* model parameters by the parameters left after pruning.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from torch import nn

from pruning.masks import BlockMask

__all__ = ["compression_summary", "layer_report"]


def layer_report(masks: Mapping[str, BlockMask]) -> pd.DataFrame:
    """One row per masked weight: shape, block, groups, kept groups, sparsity, compression rate.

    >>> import torch
    >>> from pruning.blocks import BlockSpec, Granularity
    >>> mask = BlockMask(torch.tensor([[True, False], [False, False]]), BlockSpec(2, 2), Granularity.BLOCK, (4, 4))
    >>> layer_report({"fc.weight": mask})[["groups", "kept_groups", "sparsity", "compression_rate"]]
             groups  kept_groups  sparsity  compression_rate
    layer
    fc.weight       4            1      0.75               4.0
    """
    rows = []
    for name, mask in masks.items():
        kept = mask.n_kept_weights
        rows.append(
            {
                "layer": name,
                "out_features": mask.weight_shape[0],
                "in_features": mask.weight_shape[1],
                "block": str(mask.block),
                "granularity": mask.granularity.value,
                "groups": mask.group_mask.numel(),
                "kept_groups": int(mask.group_mask.sum()),
                "weights": mask.n_weights,
                "kept_weights": kept,
                "sparsity": mask.sparsity,
                "compression_rate": mask.n_weights / kept if kept else float("inf"),
            }
        )
    return pd.DataFrame(rows).set_index("layer")


def compression_summary(masks: Mapping[str, BlockMask], model: nn.Module | None = None) -> dict[str, float]:
    """Totals: pruned-layer sparsity and compression rate, and the whole-model rate if ``model`` is given."""
    weights = sum(m.n_weights for m in masks.values())
    kept = sum(m.n_kept_weights for m in masks.values())
    summary = {
        "pruned_layer_weights": weights,
        "pruned_layer_kept_weights": kept,
        "sparsity": 1.0 - kept / weights if weights else 0.0,
        "compression_rate": weights / kept if kept else float("inf"),
    }
    if model is not None:
        total = sum(p.numel() for p in model.parameters())
        summary["model_parameters"] = total
        summary["model_compression_rate"] = total / (total - (weights - kept))
    return summary
