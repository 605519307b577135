"""Block-structured pruning of HF transformer encoders (reweighted group Lasso and baselines)."""

from pruning.blocks import BlockSpec, Granularity, group_norms_sq, group_shape
from pruning.callback import BlockPruningCallback
from pruning.io import load_pruned, load_pruned_masks, save_pruned
from pruning.masking import attach_masks, make_permanent
from pruning.masks import BlockMask, load_masks, save_masks
from pruning.pruner import BlockPruner, PruneMethod, PruneScope, PruneSettings
from pruning.regularizers import GroupLasso, ReweightedGroupLasso
from pruning.report import compression_summary, layer_report

__all__ = [
    "BlockMask",
    "BlockPruner",
    "BlockPruningCallback",
    "BlockSpec",
    "Granularity",
    "GroupLasso",
    "PruneMethod",
    "PruneScope",
    "PruneSettings",
    "ReweightedGroupLasso",
    "attach_masks",
    "compression_summary",
    "group_norms_sq",
    "group_shape",
    "layer_report",
    "load_masks",
    "load_pruned",
    "load_pruned_masks",
    "make_permanent",
    "save_masks",
    "save_pruned",
]
