"""The pruning lifecycle: ``prepare`` -> (regularize) -> ``prune`` -> (masked retrain) -> ``finalize``.

>>> from transformers import BertConfig, BertModel
>>> model = BertModel(BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
...                              intermediate_size=64, vocab_size=50))
>>> pruner = BlockPruner(PruneSettings(block="8x8", method="score", target_sparsity=0.5))
>>> pruner.prepare(model)
>>> masks = pruner.prune()          # hard prune: masks attached as parametrizations
>>> masks = pruner.finalize()       # zeros made permanent, plain weights again
>>> round(masks["encoder.layer.0.intermediate.dense.weight"].sparsity, 2)
0.5

Subclassing is not needed for a new scoring rule: methods differ only in the regularizer used during
fine-tuning (:class:`PruneMethod`) and in how groups are selected, both decided by :class:`PruneSettings`.
"""

from __future__ import annotations

import logging
import math

import torch
from torch import nn

from pruning.blocks import group_sizes
from pruning.masking import attach_masks, make_permanent
from pruning.masks import BlockMask
from pruning.regularizers import GroupLasso, GroupRegularizer, ReweightedGroupLasso
from pruning.scores import GroupScorer
from pruning.selection import nm_mask, select_global, select_layer
from pruning.settings import PENALTY_MODES, PruneMethod, PruneScope, PruneSettings, check_sparsity
from pruning.targets import find_targets

__all__ = ["PENALTY_MODES", "BlockPruner", "PruneMethod", "PruneScope", "PruneSettings"]

log = logging.getLogger(__name__)

class BlockPruner:
    """Owns the masks of one model through the prune lifecycle.

    ``prepare`` resolves target layers and builds the regularizer; it does not change the model.
    ``prune`` computes masks from the current weights and attaches them (the model is changed in
    place: deep-copy it first if you need the dense original). ``finalize`` makes the zeros permanent.
    """

    def __init__(self, settings: PruneSettings) -> None:
        if not isinstance(settings, PruneSettings):
            raise TypeError(f"settings: expected a PruneSettings, e.g. PruneSettings(block='16x16', "
                            f"target_sparsity=0.5), got {type(settings).__name__}")  # fmt: skip
        self.settings = settings
        self.model: nn.Module | None = None
        self.layers: dict[str, nn.Linear] = {}
        self.regularizer: GroupRegularizer | None = None
        self.scorer: GroupScorer | None = None
        self.masks: dict[str, BlockMask] = {}

    @property
    def weight_names(self) -> list[str]:
        return [f"{name}.weight" for name in self.layers]

    def prepare(self, model: nn.Module) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model: expected a torch nn.Module (e.g. pruning.models.load_classifier(path, "
                            f"num_labels)), got {type(model).__name__}")  # fmt: skip
        settings = self.settings
        layers = find_targets(model, settings.targets)
        planned = dict(settings.layer_sparsity) if settings.layer_sparsity is not None else None
        if planned is not None:
            known = {f"{name}.weight" for name in layers}
            unknown = sorted(set(planned) - known)
            if unknown:
                raise ValueError(f"layer_sparsity: {unknown[:3]} are not prunable layers of this model; "
                                 f"known: {sorted(known)[:3]}... ({len(known)} layers)")  # fmt: skip
        for name, layer in layers.items():
            settings.block.check_fits(tuple(layer.weight.shape), name=f"{name}.weight")
            if settings.method is not PruneMethod.NM and settings.scope is PruneScope.LAYER:
                target = settings.target_sparsity if planned is None else planned.get(f"{name}.weight", 0.0)
                sizes = group_sizes(tuple(layer.weight.shape), settings.group_shape)
                _refuse_empty_layer(f"{name}.weight", sizes, target, certain_only=True)
        self.model, self.layers = model, layers
        weights = {f"{name}.weight": _original_weight(layer) for name, layer in layers.items()}
        if settings.method is PruneMethod.REWEIGHTED:
            self.regularizer = ReweightedGroupLasso(weights, settings.group_shape, settings.lam, settings.eps,
                                                    normalize=settings.relative_norms)  # fmt: skip
        elif settings.method is PruneMethod.GROUP_LASSO:
            self.regularizer = GroupLasso(weights, settings.group_shape, settings.lam)
        self.scorer = GroupScorer(settings.score, weights, settings.group_shape)
        log.info("prepared %d layers for %s pruning", len(layers), settings.method.value)

    def _require_prepared(self) -> None:
        if self.model is None:
            raise RuntimeError("BlockPruner: call prepare(model) first (the order is prepare -> prune/step -> "
                               "finalize)")

    @torch.no_grad()
    def compute_masks(self, sparsity: float | None = None) -> dict[str, BlockMask]:
        """Masks at ``sparsity`` (default: the target) from the current scores, without attaching them.

        Masks are monotone: a group pruned by an earlier :meth:`prune` stays pruned (its score counts as
        ``-inf`` and the new keep-mask is intersected with the old one).
        """
        self._require_prepared()
        settings = self.settings
        sparsity = settings.target_sparsity if sparsity is None else check_sparsity(sparsity)
        gshape = settings.group_shape
        # selected on the CPU: the group grid is small, and masks live on the CPU like the saved ones
        weights = {f"{n}.weight": _original_weight(layer).detach().float().cpu() for n, layer in self.layers.items()}
        if settings.method is PruneMethod.NM:
            n, m = settings.nm
            keep = {name: nm_mask(w, n, m) for name, w in weights.items()}
        else:
            scores = {name: self._score(name) for name in weights}
            sizes = {name: group_sizes(tuple(w.shape), gshape) for name, w in weights.items()}
            if settings.scope is PruneScope.GLOBAL:  # keeps a floor of groups in every layer: none is emptied
                keep = select_global(scores, sizes, sparsity)
            else:
                targets = self.layer_targets(sparsity)
                keep = {name: select_layer(scores[name], sizes[name], targets[name], settings.balanced)
                        for name in weights}  # fmt: skip
            keep = {name: kept & self.masks[name].group_mask if name in self.masks else kept
                    for name, kept in keep.items()}  # fmt: skip
            for name, kept in keep.items():
                if not bool(kept.any()):  # per-layer scope only (see above)
                    _refuse_empty_layer(name, sizes[name], targets[name], certain_only=False)
        return {
            name: BlockMask(keep[name], settings.block, settings.granularity, tuple(weights[name].shape))
            for name in weights
        }

    def layer_targets(self, sparsity: float) -> dict[str, float]:
        """Each layer's sparsity when the schedule stands at ``sparsity``: ``sparsity`` itself, or with
        ``settings.layer_sparsity`` (a plan) each layer's own target scaled by the schedule's progress
        ``sparsity / target_sparsity``; layers the plan does not name stay dense."""
        names = self.weight_names
        plan = self.settings.layer_sparsity
        if plan is None:
            return dict.fromkeys(names, sparsity)
        target = self.settings.target_sparsity
        progress = min(1.0, sparsity / target) if target > 0 else 1.0
        planned = dict(plan)
        return {name: planned.get(name, 0.0) * progress for name in names}

    def overall_sparsity(self, sparsity: float) -> float:
        """The pruned layers' weight-weighted sparsity when the schedule stands at ``sparsity`` (a plan's layers
        differ; without a plan it is ``sparsity``)."""
        if self.settings.layer_sparsity is None:
            return sparsity
        sizes = {f"{n}.weight": _original_weight(layer).numel() for n, layer in self.layers.items()}
        targets = self.layer_targets(sparsity)
        return sum(sizes[n] * targets[n] for n in sizes) / max(sum(sizes.values()), 1)

    def _score(self, name: str) -> torch.Tensor:
        score = self.scorer.score(name).float().clone()
        if name in self.masks:
            score[~self.masks[name].group_mask] = -math.inf  # already pruned: first in line, and stays pruned
        return score

    def prune(self, sparsity: float | None = None) -> dict[str, BlockMask]:
        """Prune to ``sparsity`` (default: the target): compute masks and attach them (model changed in place)."""
        self.masks = self.compute_masks(sparsity)
        attach_masks(self.model, self.masks)
        return self.masks

    @torch.no_grad()
    def doomed_groups(self, next_sparsity: float) -> dict[str, torch.Tensor]:
        """Groups kept now that a prune to ``next_sparsity`` would remove (per layer, group grid, bool)."""
        upcoming = self.compute_masks(next_sparsity)
        current = {name: self.masks[name].group_mask if name in self.masks else torch.ones_like(mask.group_mask)
                   for name, mask in upcoming.items()}  # fmt: skip
        return {name: current[name] & ~upcoming[name].group_mask for name in upcoming}

    def finalize(self) -> dict[str, BlockMask]:
        """Remove the parametrizations, leaving exact zeros; returns the masks."""
        self._require_prepared()
        if not self.masks:
            raise RuntimeError("BlockPruner: finalize() before prune(); nothing to make permanent")
        make_permanent(self.model)
        return self.masks

    def state_dict(self) -> dict[str, torch.Tensor]:
        state = {f"mask.{name}": m.group_mask for name, m in self.masks.items()}
        if self.regularizer is not None:
            state.update(self.regularizer.state_dict())
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self._require_prepared()
        if self.regularizer is not None:
            self.regularizer.load_state_dict(state)
        settings = self.settings
        masks = {}
        for name in self.weight_names:
            key = f"mask.{name}"
            if key in state:
                shape = tuple(_original_weight(self.layers[name.removesuffix(".weight")]).shape)
                masks[name] = BlockMask(state[key], settings.block, settings.granularity, shape)
        if masks:
            attach_masks(self.model, masks)
            self.masks = masks


def _refuse_empty_layer(name: str, sizes: torch.Tensor, target_sparsity: float, certain_only: bool) -> None:
    """Refuse a target that prunes every group of a layer (its compression rate would be infinite).

    The selection prunes the k lowest groups whose size sum is closest to the target element count, so a
    layer of ``n`` weights loses every group once ``2 * (n - target * n)`` is below the last group's size.
    With ``certain_only`` (before training, scores unknown) only a target that empties the layer for *any*
    score order is refused: the smallest group decides.
    """
    n_weights = int(sizes.sum())
    smallest = int(sizes.min())
    if certain_only and 2 * (n_weights - target_sparsity * n_weights) >= smallest:
        return
    limit = (n_weights - smallest) / n_weights
    raise ValueError(
        f"target_sparsity: {target_sparsity!r} prunes every group of {name!r} ({sizes.numel()} groups, "
        f"{n_weights} weights), which leaves the layer empty; use at most {limit:.6f} for this block size"
    )


def _original_weight(layer: nn.Linear) -> torch.Tensor:
    """The trainable tensor behind ``layer.weight`` (the parametrization's original if masked)."""
    if hasattr(layer, "parametrizations") and "weight" in layer.parametrizations:
        return layer.parametrizations.weight.original
    return layer.weight
