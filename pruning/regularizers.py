"""Group-sparsity regularizers over the blocks of several weight matrices.

* :class:`ReweightedGroupLasso` -- the paper's penalty ``lam * sum_g alpha_g * ||W_g||_F^2`` with
  ``alpha_g = 1 / (||W_g||_F^2 + eps)`` held constant between calls to :meth:`reweight`. Between
  re-weightings each group sees a quadratic pull of strength ``lam * alpha_g``, so groups that are
  already small are pushed much harder than large ones (a log-penalty majorization).
* :class:`GroupLasso` -- the plain baseline ``lam * sum_g ||W_g||_F`` (no reweighting).

Both share one shape: a per-group coefficient ``c_g`` such that ``d penalty / d W = c_g * W`` on the
elements of group ``g``. :meth:`GroupRegularizer.add_grad_` adds that analytic gradient to ``.grad``
without building a graph (used by the Trainer callback); :meth:`GroupRegularizer.penalty` returns the
differentiable scalar for plain PyTorch loops (``loss = task_loss + reg.penalty()``).
:meth:`GroupRegularizer.prox_` instead applies the penalty as a proximal step after the optimizer step
(decoupled from Adam's per-weight normalisation, as AdamW decouples weight decay): the exact proximal
operator of ``step * penalty`` scales every group by a factor in [0, 1].

:meth:`GroupRegularizer.focus_on` restricts the penalty to chosen groups (the others are neither
penalised nor shrunk): a gradual sparsity schedule focuses it on the groups its next mask update will remove,
so they are driven to ~0 *before* they are masked and the update removes almost nothing the network still
uses. With ``normalize=True`` the reweighted alphas use group norms relative to the layer's mean group norm
at construction, so one ``lam`` acts alike on every layer shape and group size.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping

import torch

from pruning.blocks import expand_group_mask, group_grid_shape, group_norms_sq
from pruning.settings import DEFAULT_EPS

__all__ = ["DEFAULT_EPS", "GroupLasso", "GroupRegularizer", "ReweightedGroupLasso"]



class GroupRegularizer(abc.ABC):
    """Penalty over the groups of ``weights`` (name -> parameter ``W[out, in]``), group shape ``gshape``."""

    def __init__(self, weights: Mapping[str, torch.Tensor], gshape: tuple[int, int], lam: float) -> None:
        if not weights:
            raise ValueError("regularizer: no weights to regularize")
        if not (isinstance(lam, int | float) and lam >= 0):
            raise ValueError(f"lam: must be a non-negative number, got {lam!r}")
        self.weights = dict(weights)
        self.gshape = gshape
        self.lam = float(lam)
        self.focus: dict[str, torch.Tensor] | None = None

    def focus_on(self, groups: Mapping[str, torch.Tensor] | None) -> None:
        """Penalise only ``groups`` (name -> bool group grid; missing layers: none); ``None``: every group."""
        if groups is None:
            self.focus = None
            return
        focus = {}
        for name, w in self.weights.items():
            shape = group_grid_shape(tuple(w.shape), self.gshape)
            mask = groups.get(name)
            mask = torch.zeros(shape, dtype=torch.bool) if mask is None else mask.to(torch.bool)
            if tuple(mask.shape) != shape:
                raise ValueError(f"focus for {name!r}: group grid {tuple(mask.shape)} != {shape}")
            focus[name] = mask
        self.focus = focus

    def _focused(self, name: str, values: torch.Tensor, neutral: float) -> torch.Tensor:
        if self.focus is None:
            return values
        return torch.where(self.focus[name].to(values.device), values, neutral)

    @abc.abstractmethod
    def _group_penalty(self, name: str, norms_sq: torch.Tensor) -> torch.Tensor:
        """Per-group penalty (without ``lam``) from squared group norms; differentiable."""

    @abc.abstractmethod
    def _group_coefficients(self, name: str, norms_sq: torch.Tensor) -> torch.Tensor:
        """``c_g`` (without ``lam``) such that ``d penalty_g / d W = c_g * W`` inside group g."""

    def penalty(self) -> torch.Tensor:
        """Total penalty ``lam * sum over layers and groups``; differentiable w.r.t. the weights."""
        total = sum(self._focused(name, self._group_penalty(name, group_norms_sq(w, self.gshape)), 0.0).sum()
                    for name, w in self.weights.items())  # fmt: skip
        return self.lam * total

    @torch.no_grad()
    def add_grad_(self) -> None:
        """Add the penalty's gradient to each weight's ``.grad`` in place (allocating it if None)."""
        for name, w in self.weights.items():
            coefficients = self._focused(name, self._group_coefficients(name, group_norms_sq(w, self.gshape)), 0.0)
            grad = self.lam * expand_group_mask(coefficients, self.gshape, tuple(w.shape)) * w
            if w.grad is None:
                w.grad = grad
            else:
                w.grad.add_(grad)

    @abc.abstractmethod
    def _prox_factor(self, name: str, norms_sq: torch.Tensor, step: float) -> torch.Tensor:
        """Per-group factor of the proximal operator of ``step * lam * penalty_g``."""

    @torch.no_grad()
    def prox_(self, step: float) -> None:
        """Replace each weight by ``prox_{step * penalty}(W)`` in place (``step`` = learning rate)."""
        for name, w in self.weights.items():
            factor = self._focused(name, self._prox_factor(name, group_norms_sq(w, self.gshape), float(step)), 1.0)
            w.mul_(expand_group_mask(factor, self.gshape, tuple(w.shape)).to(w.dtype))

    def reweight(self) -> None:  # noqa: B027 -- optional hook, plain group Lasso has no weights to update
        """Recompute the per-group weights from the current norms (no-op for plain group Lasso)."""

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        del state


class GroupLasso(GroupRegularizer):
    """Plain group Lasso ``lam * sum_g ||W_g||_F`` (the gradient at a zero group is taken as 0)."""

    def _group_penalty(self, name: str, norms_sq: torch.Tensor) -> torch.Tensor:
        # sqrt has an infinite derivative at 0; where a group is exactly zero use the subgradient 0.
        positive = norms_sq > 0
        return torch.where(positive, norms_sq.clamp_min(torch.finfo(norms_sq.dtype).tiny).sqrt(), 0.0)

    def _group_coefficients(self, name: str, norms_sq: torch.Tensor) -> torch.Tensor:
        positive = norms_sq > 0
        return torch.where(positive, norms_sq.clamp_min(torch.finfo(norms_sq.dtype).tiny).rsqrt(), 0.0)

    def _prox_factor(self, name: str, norms_sq: torch.Tensor, step: float) -> torch.Tensor:
        # group soft-threshold: max(0, 1 - step * lam / ||W_g||)
        norms = norms_sq.sqrt()
        return torch.where(norms > 0, (1 - step * self.lam / norms.clamp_min(1e-30)).clamp_min(0.0), 0.0)


class ReweightedGroupLasso(GroupRegularizer):
    """Reweighted group Lasso ``lam * sum_g alpha_g ||W_g||_F^2``, ``alpha_g = 1/(||W_g||^2 + eps)``.

    ``alpha`` is computed from the weights at construction and again at every :meth:`reweight`. With
    ``normalize=True``, ``alpha_g = 1 / (||W_g||^2 / m + eps)`` where ``m`` is the layer's mean squared group
    norm at construction (dimensionless, the same scale for every layer).
    """

    def __init__(self, weights: Mapping[str, torch.Tensor], gshape: tuple[int, int], lam: float,
                 eps: float = DEFAULT_EPS, normalize: bool = False) -> None:  # fmt: skip
        super().__init__(weights, gshape, lam)
        if not (isinstance(eps, int | float) and eps > 0):
            raise ValueError(f"eps: must be a positive number, got {eps!r}")
        self.eps = float(eps)
        self.scales = {name: float(group_norms_sq(w.detach().float(), gshape).mean()) if normalize else 1.0
                       for name, w in self.weights.items()}  # fmt: skip
        self.alphas: dict[str, torch.Tensor] = {}
        self.reweight()

    @torch.no_grad()
    def reweight(self) -> None:
        self.alphas = {
            name: 1.0 / (group_norms_sq(w.detach(), self.gshape) / max(self.scales[name], 1e-30) + self.eps)
            for name, w in self.weights.items()
        }

    def _alpha(self, name: str, like: torch.Tensor) -> torch.Tensor:
        """``alpha`` of one layer on ``like``'s device (the model may move, e.g. to the GPU, after construction)."""
        alpha = self.alphas[name]
        if alpha.device != like.device:
            alpha = self.alphas[name] = alpha.to(like.device)
        return alpha

    def _group_penalty(self, name: str, norms_sq: torch.Tensor) -> torch.Tensor:
        return self._alpha(name, norms_sq) * norms_sq

    def _group_coefficients(self, name: str, norms_sq: torch.Tensor) -> torch.Tensor:
        return 2.0 * self._alpha(name, norms_sq)

    def _prox_factor(self, name: str, norms_sq: torch.Tensor, step: float) -> torch.Tensor:
        # argmin_V 0.5 ||V - W||^2 + step * lam * alpha ||V||^2  =  W / (1 + 2 step lam alpha)
        return 1.0 / (1.0 + 2.0 * step * self.lam * self._alpha(name, norms_sq))

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {f"alpha.{name}": alpha.clone() for name, alpha in self.alphas.items()}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        for name in self.weights:
            key = f"alpha.{name}"
            if key not in state:
                raise ValueError(f"regularizer state: missing {key!r}")
            self.alphas[name] = state[key].clone()
