"""Group importance scores: which groups a hard prune or a schedule step removes first (lowest first).

* ``magnitude`` -- ``||W_g||^2`` of the current weights (the paper's criterion).
* ``taylor`` -- first-order Taylor / SNIP-momentum: an exponential moving average over training steps of
  ``sum_{i in g} |W_i * dL/dW_i|``, the first-order estimate of the loss change when the group is removed
  (Molchanov et al. 2019; Intel Neural Compressor's ``snip_momentum``).
* ``movement`` -- movement pruning (Sanh et al. 2020): ``-sum_steps sum_{i in g} W_i * dL/dW_i``, large for
  groups that training moves away from zero.

Gradient-based scores accumulate in :meth:`GroupScorer.accumulate`, called once per optimizer step while the
gradients are on the weights (before the regularizer adds its own gradient). Until a first gradient has
been seen they fall back to magnitude, so a prune at step 0 still works.

>>> w = torch.nn.Parameter(torch.tensor([[1.0, -2.0], [3.0, 0.5]]))
>>> w.grad = torch.tensor([[0.5, 0.5], [-1.0, 2.0]])
>>> scorer = GroupScorer("taylor", {"w": w}, (1, 2), momentum=0.0)
>>> scorer.accumulate()
>>> scorer.score("w").flatten().tolist()
[1.5, 4.0]
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from pruning.blocks import group_norms_sq, group_sums
from pruning.settings import ScoreKind

__all__ = ["DEFAULT_MOMENTUM", "GroupScorer", "ScoreKind"]

DEFAULT_MOMENTUM = 0.9  # EMA factor of the taylor score per step (INC's snip_momentum uses 0.9 too)


class GroupScorer:
    """Per-group scores of ``weights`` (name -> parameter ``W[out, in]``) for group shape ``gshape``."""

    def __init__(self, kind: ScoreKind | str, weights: Mapping[str, torch.Tensor], gshape: tuple[int, int],
                 momentum: float = DEFAULT_MOMENTUM) -> None:  # fmt: skip
        self.kind = ScoreKind.parse(kind, field="score")
        if not (isinstance(momentum, int | float) and 0 <= momentum < 1):
            raise ValueError(f"score momentum: must be in [0, 1), got {momentum!r}")
        self.weights = dict(weights)
        self.gshape = gshape
        self.momentum = float(momentum)
        self.accumulated: dict[str, torch.Tensor] = {}
        self.steps = 0

    @torch.no_grad()
    def accumulate(self) -> None:
        """Fold the current gradients into the running scores (no-op for ``magnitude``)."""
        if self.kind is ScoreKind.MAGNITUDE:
            return
        for name, w in self.weights.items():
            if w.grad is None:
                continue
            product = w.detach().float() * w.grad.detach().float()
            if self.kind is ScoreKind.TAYLOR:
                step = group_sums(product.abs(), self.gshape)
                previous = self.accumulated.get(name)
                self.accumulated[name] = step if previous is None else self.momentum * previous.to(step.device) + (
                    1 - self.momentum) * step  # fmt: skip
            else:
                step = -group_sums(product, self.gshape)
                previous = self.accumulated.get(name)
                self.accumulated[name] = step if previous is None else previous.to(step.device) + step
        self.steps += 1

    @torch.no_grad()
    def score(self, name: str) -> torch.Tensor:
        """Scores over the group grid of ``name`` (float32, on the CPU); lower is pruned first."""
        if self.kind is ScoreKind.MAGNITUDE or name not in self.accumulated:
            return group_norms_sq(self.weights[name].detach().float(), self.gshape).cpu()
        return self.accumulated[name].cpu()

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {f"score.{name}": value.clone() for name, value in self.accumulated.items()}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        self.accumulated = {key.removeprefix("score."): value.clone() for key, value in state.items()
                            if key.startswith("score.")}  # fmt: skip
