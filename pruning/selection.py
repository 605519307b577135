"""Hard pruning: choose which groups to keep from their scores (group norms).

* :func:`select_layer` -- prune the lowest-scoring groups of one matrix until the pruned *element*
  count is as close as possible to ``target_sparsity`` (exact to one group); ``balanced=True`` prunes
  the same number of groups in every row of the group grid, so every PE row gets the same work.
* :func:`select_global` -- one threshold over several matrices, groups ranked by RMS
  (``||W_g|| / sqrt(|g|)``) so groups of different sizes compare fairly; no layer beyond
  :data:`MAX_LAYER_SPARSITY`.
* :func:`nm_mask` -- N:M pruning along the input dimension (keep the N largest of every M weights).
"""

from __future__ import annotations

import math

import torch

from pruning.settings import check_sparsity

__all__ = ["check_sparsity", "nm_mask", "select_global", "select_layer"]


def _prune_count(sorted_sizes: torch.Tensor, target_elements: float) -> int:
    """Number k of lowest-score groups whose total size is closest to ``target_elements``."""
    cumulative = torch.cat([torch.zeros(1, dtype=torch.float64), sorted_sizes.double().cumsum(0)])
    return int((cumulative - target_elements).abs().argmin())


def select_layer(
    scores: torch.Tensor, sizes: torch.Tensor, target_sparsity: float, balanced: bool = False
) -> torch.Tensor:
    """Boolean keep-mask over the group grid of one matrix.

    Parameters
    ----------
    scores : group scores ``[n_group_rows, n_group_cols]``; lower is pruned first (ties: lower index first).
    sizes : number of real weights per group, same shape.
    target_sparsity : fraction of weights to prune, in [0, 1).
    balanced : prune ``round(target * n_group_cols)`` groups in every group row.
    """
    target_sparsity = check_sparsity(target_sparsity)
    if balanced:
        n_prune = round(target_sparsity * scores.shape[1])
        order = torch.argsort(scores, dim=1, stable=True)
        keep = torch.ones_like(scores, dtype=torch.bool)
        keep.scatter_(1, order[:, :n_prune], False)
        return keep
    flat_scores, flat_sizes = scores.flatten(), sizes.flatten()
    order = torch.argsort(flat_scores, stable=True)
    n_prune = _prune_count(flat_sizes[order], target_sparsity * float(flat_sizes.sum()))
    keep = torch.ones_like(flat_scores, dtype=torch.bool)
    keep[order[:n_prune]] = False
    return keep.reshape(scores.shape)


# global selection never prunes a layer beyond this (as Intel Neural Compressor's max_sparsity_ratio_per_op): a
# layer whose scores all fall below the global threshold -- e.g. small gradients late in a Taylor-scored ramp --
# would otherwise be emptied mid-training
MAX_LAYER_SPARSITY = 0.98


def select_global(
    scores: dict[str, torch.Tensor],
    sizes: dict[str, torch.Tensor],
    target_sparsity: float,
    max_layer_sparsity: float = MAX_LAYER_SPARSITY,
) -> dict[str, torch.Tensor]:
    """Keep-masks for several matrices from one global ranking of per-weight scores ``score_g / |g|``.

    For squared group norms this is the ranking by group RMS ``||W_g|| / sqrt(|g|)``, so groups of different
    sizes compare fairly; additive scores (Taylor, movement) are compared per weight the same way. Every layer
    keeps its best ``ceil((1 - max_layer_sparsity) * groups)`` groups (at least one) whatever the ranking; the
    global target is met from the other groups.
    """
    target_sparsity = check_sparsity(target_sparsity)
    if not 0 <= max_layer_sparsity < 1:
        raise ValueError(f"max_layer_sparsity: must be in [0, 1), got {max_layer_sparsity!r}")
    names = list(scores)
    ranked = []
    for name in names:
        per_weight = (scores[name] / sizes[name]).flatten().double()
        floor = max(1, math.ceil((1 - max_layer_sparsity) * per_weight.numel()))
        protected = torch.argsort(per_weight, descending=True, stable=True)[:floor]
        ranked.append(per_weight.index_fill(0, protected, math.inf))
    per_weight = torch.cat(ranked)
    all_sizes = torch.cat([sizes[n].flatten() for n in names])
    order = torch.argsort(per_weight, stable=True)
    n_prune = _prune_count(all_sizes[order], target_sparsity * float(all_sizes.sum()))
    n_prune = min(n_prune, int((per_weight < math.inf).sum()))  # a protected group is never pruned
    keep = torch.ones_like(per_weight, dtype=torch.bool)
    keep[order[:n_prune]] = False
    masks, start = {}, 0
    for name in names:
        count = scores[name].numel()
        masks[name] = keep[start : start + count].reshape(scores[name].shape)
        start += count
    return masks


def nm_mask(weight: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """Element keep-mask keeping the ``n`` largest-magnitude weights in every ``m`` along ``in_features``."""
    if not (isinstance(n, int) and isinstance(m, int) and 0 < n <= m):
        raise ValueError(f"nm: need integers 0 < N <= M, got N={n!r}, M={m!r}")
    out_features, in_features = weight.shape
    if in_features % m:
        raise ValueError(f"nm: in_features={in_features} is not a multiple of M={m}")
    groups = weight.detach().abs().reshape(out_features, in_features // m, m)
    keep_index = groups.topk(n, dim=2).indices
    keep = torch.zeros_like(groups, dtype=torch.bool)
    keep.scatter_(2, keep_index, True)
    return keep.reshape(out_features, in_features)
