"""Attach block masks to ``nn.Linear`` weights with ``torch.nn.utils.parametrize``.

While a mask is attached, every forward pass computes ``weight = original * mask``: the original
tensor is kept (and may be moved by the optimizer, e.g. by AdamW weight decay), but the weight the
model uses is exactly zero in pruned positions and gradients to pruned positions are zero.
:func:`make_permanent` removes the parametrizations and writes the masked values into the plain
``weight`` parameter, so ``save_pretrained`` stores ordinary tensors with exact zeros.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn
from torch.nn.utils import parametrize

from pruning.masks import BlockMask

__all__ = ["attach_masks", "make_permanent", "resolve_weight_owner"]


class _ElementMask(nn.Module):
    """Parametrization ``W -> W * mask`` with the dense mask as a (non-persistent) buffer."""

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * self.mask.to(weight.dtype)


def resolve_weight_owner(model: nn.Module, weight_name: str) -> nn.Linear:
    """The Linear module that owns ``"<module path>.weight"``; clear error if absent."""
    module_name, _, attr = weight_name.rpartition(".")
    if attr != "weight":
        raise ValueError(f"mask key {weight_name!r} must name a weight ('<module>.weight')")
    try:
        module = model.get_submodule(module_name)
    except AttributeError:
        raise ValueError(f"mask key {weight_name!r}: the model has no module {module_name!r}") from None
    if not isinstance(module, nn.Linear):
        raise ValueError(f"mask key {weight_name!r}: {module_name!r} is a {type(module).__name__}, not a Linear")
    return module


def attach_masks(model: nn.Module, masks: Mapping[str, BlockMask]) -> None:
    """Mask the weights of ``model`` in place (replacing any mask already attached).

    Every mask is checked against its layer before anything is changed, so on a bad mask the model
    is left as it was.
    """
    owners = {}
    for name, mask in masks.items():
        owner = resolve_weight_owner(model, name)
        mask.check_weight(name, tuple(owner.weight.shape))
        owners[name] = owner
    for name, mask in masks.items():
        owner = owners[name]
        dense = mask.dense().to(owner.weight.device)
        if parametrize.is_parametrized(owner, "weight"):
            owner.parametrizations.weight[0].mask = dense
        else:
            parametrize.register_parametrization(owner, "weight", _ElementMask(dense))


def make_permanent(model: nn.Module) -> None:
    """Remove every mask parametrization, leaving exact zeros in the plain weights (in place)."""
    for module in model.modules():
        if parametrize.is_parametrized(module, "weight") and any(
            isinstance(p, _ElementMask) for p in module.parametrizations.weight
        ):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
