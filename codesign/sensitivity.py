"""Layer sensitivity: what pruning one layer to a candidate sparsity costs in loss.

Two estimates from a few batches of gradients, and one measurement:

* ``taylor`` -- first order: removing the group set ``S`` changes the loss by ``dL ~ -sum_{i in S} g_i w_i``
  (exact when the loss is linear in the layer's weights);
* ``fisher`` -- second order with the empirical Fisher as the Hessian: ``dL ~ 1/2 E_b[(sum_{i in S} g_{b,i}
  w_i)^2]`` over batches ``b`` (what post-training pruning methods use; never negative);
* :func:`measured_sensitivity` -- zero the groups, optionally recover for a few masked optimizer steps (the
  pruned groups held at zero, every other parameter trained), evaluate the loss, the KL divergence from the
  unpruned predictions and the accuracy on held-out batches, restore every parameter.

Which groups go at a sparsity is decided as the pruning run decides it: lowest first by the group's
``sum |W * grad|`` (the ``taylor`` score; ``magnitude`` uses ``||W_g||^2``). Everything works on any
``nn.Module`` and a ``loss_fn(model, batch) -> scalar``; :func:`classifier_loss` is the HF one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import contextmanager

import numpy as np
import pandas as pd
import torch
from torch import nn

from pruning.blocks import expand_group_mask, group_sizes, group_sums
from pruning.selection import select_layer

__all__ = ["LayerGradients", "classifier_loss", "collect_gradients", "estimate_sensitivity", "measured_sensitivity",
           "removed_groups"]  # fmt: skip

LossFn = Callable[[nn.Module, object], torch.Tensor]


def classifier_loss(model: nn.Module, batch: dict) -> torch.Tensor:
    """The HF classifier's own loss on a batch that carries ``labels``."""
    return model(**batch).loss


class LayerGradients:
    """Per-batch group sums of ``W * grad`` and of ``|W * grad|`` for each watched weight."""

    def __init__(self, gshape: tuple[int, int]) -> None:
        self.gshape = gshape
        self.signed: dict[str, list[torch.Tensor]] = {}
        self.absolute: dict[str, list[torch.Tensor]] = {}
        self.weights: dict[str, torch.Tensor] = {}

    def add(self, name: str, weight: torch.Tensor, grad: torch.Tensor) -> None:
        product = (weight.detach().double() * grad.detach().double()).cpu()
        self.signed.setdefault(name, []).append(group_sums(product, self.gshape))
        self.absolute.setdefault(name, []).append(group_sums(product.abs(), self.gshape))
        self.weights[name] = weight.detach().cpu()

    def score(self, name: str, kind: str = "taylor") -> torch.Tensor:
        """Group scores for selection (lower goes first): mean ``sum |W * grad|`` or ``||W_g||^2``."""
        if kind == "magnitude":
            return group_sums(self.weights[name].double() ** 2, self.gshape)
        return torch.stack(self.absolute[name]).mean(dim=0)


def collect_gradients(model: nn.Module, weights: Mapping[str, torch.Tensor], batches: Iterable, loss_fn: LossFn,
                      gshape: tuple[int, int]) -> LayerGradients:  # fmt: skip
    """Gradients of ``loss_fn`` on each batch, folded into group sums (the model is left unchanged)."""
    gradients = LayerGradients(gshape)
    was_training = model.training
    model.eval()  # no dropout: the estimate is of the deterministic loss the evaluation sees
    try:
        for batch in batches:
            model.zero_grad(set_to_none=True)
            loss_fn(model, batch).backward()
            for name, weight in weights.items():
                if weight.grad is not None:
                    gradients.add(name, weight, weight.grad)
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return gradients


def removed_groups(scores: torch.Tensor, weight_shape: tuple[int, int], gshape: tuple[int, int],
                   sparsity: float) -> torch.Tensor:  # fmt: skip
    """Bool group grid of what a layer-scope prune to ``sparsity`` removes (lowest scores first)."""
    return ~select_layer(scores.float(), group_sizes(weight_shape, gshape), sparsity)


def estimate_sensitivity(gradients: LayerGradients, sparsities: Sequence[float], score: str = "taylor") -> pd.DataFrame:
    """Rows (layer, sparsity, taylor, fisher): estimated loss increase of pruning that layer alone."""
    rows = []
    for name, per_batch in gradients.signed.items():
        signed = torch.stack(per_batch)  # [batches, group rows, group cols]
        scores = gradients.score(name, score)
        shape = tuple(gradients.weights[name].shape)
        for sparsity in sparsities:
            removed = removed_groups(scores, shape, gradients.gshape, sparsity) if sparsity > 0 else None
            if removed is None or not removed.any():
                rows.append({"layer": name, "sparsity": float(sparsity), "taylor": 0.0, "fisher": 0.0})
                continue
            per_batch_change = -(signed * removed).sum(dim=(1, 2))  # first-order dL of each batch
            rows.append({"layer": name, "sparsity": float(sparsity), "taylor": float(per_batch_change.mean()),
                         "fisher": float(0.5 * (per_batch_change**2).mean())})  # fmt: skip
    return pd.DataFrame(rows)


@torch.no_grad()
def _evaluate(model: nn.Module, batches: Sequence, loss_fn: LossFn) -> tuple[float, float, list[torch.Tensor]]:
    """(mean loss, accuracy, log-probabilities per batch) over ``batches``; accuracy needs ``labels`` and the
    log-probabilities an HF output with ``logits`` (NaN / empty otherwise)."""
    losses, log_probs, correct, total = [], [], 0, 0
    for batch in batches:
        out = model(**batch) if isinstance(batch, Mapping) else None  # a collator's BatchEncoding too
        losses.append(float(loss_fn(model, batch)) if out is None else float(out.loss))
        if out is not None:
            log_probs.append(torch.log_softmax(out.logits.double(), dim=-1))
            if "labels" in batch:
                correct += int((out.logits.argmax(dim=-1) == batch["labels"]).sum())
                total += len(batch["labels"])
    return float(np.mean(losses)), correct / total if total else float("nan"), log_probs


def _mean_kl(reference: list[torch.Tensor], other: list[torch.Tensor]) -> float:
    """Mean over examples of KL(reference || other), from per-batch log-probabilities (NaN without them)."""
    if not reference:
        return float("nan")
    p, q = torch.cat(reference), torch.cat(other)
    return float((p.exp() * (p - q)).sum(dim=-1).mean())


@contextmanager
def _parameters_restored(params: Iterable[torch.Tensor]):
    """Put ``params`` back to their values at entry on exit (the measurements prune and train in place)."""
    saved = {p: p.detach().clone() for p in params}
    try:
        yield
    finally:
        with torch.no_grad():
            for param, original in saved.items():
                param.copy_(original)


def _recover(model: nn.Module, zeroed: Mapping[torch.Tensor, torch.Tensor], batches: Sequence, loss_fn: LossFn,
             steps: int, lr: float) -> None:
    """``steps`` Adam steps on ``batches`` (cycled) over every parameter, the ``zeroed`` elements (weight -> bool
    mask) kept at exactly zero: their gradients are cleared before each step, so Adam never moves them. In eval
    mode (no dropout): deterministic, so a candidate and the unpruned control see the same updates' noise."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr)
    model.eval()
    for step in range(steps):
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model, batches[step % len(batches)]).backward()
        for weight, mask in zeroed.items():
            if weight.grad is not None:
                weight.grad.masked_fill_(mask, 0.0)
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def measured_sensitivity(model: nn.Module, weights: Mapping[str, torch.Tensor], gradients: LayerGradients,
                         candidates: Sequence[tuple[str, float]] | Sequence[Mapping[str, float]], batches: Sequence,
                         loss_fn: LossFn = classifier_loss, score: str = "taylor", recovery_batches: Sequence = (),
                         recovery_steps: int = 0, recovery_lr: float = 1e-4) -> pd.DataFrame:  # fmt: skip
    """Rows (layer, sparsity, measured_loss, measured_kl, measured_accuracy_drop): each candidate pruned (the
    same groups the estimate removes), evaluated on ``batches``, then the weights restored.

    ``measured_kl`` is the mean KL divergence of the pruned model's predictions from the unpruned model's on the
    same inputs: the damage without the label noise that ``measured_loss`` (the change of the labelled loss)
    carries, and the quantity the ``fisher`` estimate approximates for small changes (NaN unless ``batches``
    are HF batches whose outputs have ``logits``).

    A candidate is ``(layer, sparsity)`` -- that layer alone -- or a mapping ``{layer: sparsity}`` pruned all
    at once (its row's ``layer`` is ``"<n layers>"`` and ``sparsity`` their mean).

    ``recovery_steps > 0``: after zeroing, that many Adam steps (``recovery_lr``, no weight decay) of
    ``loss_fn`` on ``recovery_batches`` train every parameter with the pruned groups held at zero -- the
    damage a short masked retraining leaves, closer to what a pruning run ends with than the one-shot damage.
    The reference is then the unpruned model after the same steps (a control: the steps alone move the
    predictions), so every column measures what the pruning adds.
    """
    if recovery_steps and not recovery_batches:
        raise ValueError("recovery_batches: needed when recovery_steps > 0")
    was_training = model.training
    model.eval()
    try:
        with _parameters_restored(model.parameters() if recovery_steps else ()):
            if recovery_steps:  # the control: the unpruned model after the same recovery steps
                _recover(model, {}, recovery_batches, loss_fn, recovery_steps, recovery_lr)
            base_loss, base_accuracy, base_log_probs = _evaluate(model, batches, loss_fn)
        rows = []
        for candidate in candidates:
            chosen = dict([candidate]) if isinstance(candidate, tuple) else dict(candidate)
            # recovery trains every parameter, so all of them are restored afterwards
            zeroed = {}
            with _parameters_restored(model.parameters() if recovery_steps else [weights[n] for n in chosen]):
                for name, sparsity in chosen.items():
                    weight, shape = weights[name], tuple(weights[name].shape)
                    removed = removed_groups(gradients.score(name, score), shape, gradients.gshape, sparsity)
                    zeroed[weight] = expand_group_mask(removed, gradients.gshape, shape).to(weight.device)
                    with torch.no_grad():
                        weight.masked_fill_(zeroed[weight], 0.0)
                if recovery_steps:
                    _recover(model, zeroed, recovery_batches, loss_fn, recovery_steps, recovery_lr)
                loss, accuracy, log_probs = _evaluate(model, batches, loss_fn)
            label = next(iter(chosen)) if isinstance(candidate, tuple) else f"<{len(chosen)} layers>"
            rows.append({"layer": label, "sparsity": float(np.mean(list(chosen.values()))),
                         "measured_loss": loss - base_loss, "measured_kl": _mean_kl(base_log_probs, log_probs),
                         "measured_accuracy_drop": base_accuracy - accuracy})  # fmt: skip
    finally:
        model.train(was_training)
    return pd.DataFrame(rows)
