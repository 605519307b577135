"""Block-structured pruning of HF transformer encoders (reweighted group Lasso and baselines).

Names are imported lazily (PEP 562), so ``import pruning.spec`` or ``pruning.layouts`` -- the torch-free
vocabulary that :mod:`hwsim` uses -- does not load torch or transformers.
"""

from __future__ import annotations

from bsp_common.lazy import lazy_exports

_EXPORTS = {
    "BlockSpec": "pruning.spec",
    "Granularity": "pruning.spec",
    "group_norms_sq": "pruning.blocks",
    "group_shape": "pruning.spec",
    "BlockPruningCallback": "pruning.callback",
    "load_pruned": "pruning.io",
    "load_pruned_masks": "pruning.io",
    "save_pruned": "pruning.io",
    "attach_masks": "pruning.masking",
    "make_permanent": "pruning.masking",
    "BlockMask": "pruning.masks",
    "load_masks": "pruning.masks",
    "save_masks": "pruning.masks",
    "BlockPruner": "pruning.pruner",
    "PruneMethod": "pruning.settings",
    "PruneScope": "pruning.settings",
    "PruneSettings": "pruning.settings",
    "GroupLasso": "pruning.regularizers",
    "ReweightedGroupLasso": "pruning.regularizers",
    "compression_summary": "pruning.report",
    "layer_report": "pruning.report",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
