"""HF ``Trainer`` integration: the paper's three phases in one training run.

1. regularized fine-tune: before every optimizer step the regularizer's gradient is added to the
   weights' ``.grad`` (after gradient clipping, so the penalty is not clipped away) -- or, with
   ``penalty_mode="proximal"``, a proximal step at the current learning rate follows it -- and the
   reweighted group Lasso's alphas are recomputed every ``reweight_interval_steps`` (default: once
   per epoch);
2. hard prune at ``prune_at_step`` (or ``prune_at_epoch``): masks attached as parametrizations;
3. masked retrain for the remaining steps: pruned weights stay exactly zero.

Use it with a plain ``Trainer`` (so ``torchrun``/accelerate multi-GPU works unchanged)::

    pruner = BlockPruner(settings)
    trainer = Trainer(model=model, args=args, train_dataset=ds,
                      callbacks=[BlockPruningCallback(pruner, prune_at_epoch=2)])
    trainer.train()
    masks = pruner.finalize()
"""

from __future__ import annotations

import logging
import math

from transformers import TrainerCallback

from pruning.pruner import BlockPruner

__all__ = ["BlockPruningCallback"]

log = logging.getLogger(__name__)


class BlockPruningCallback(TrainerCallback):
    """Drives a :class:`BlockPruner` from Trainer events; its schedule state is a small JSON dict."""

    def __init__(
        self, pruner: BlockPruner, prune_at_step: int | None = None, prune_at_epoch: float | None = None
    ) -> None:
        if (prune_at_step is None) == (prune_at_epoch is None):
            raise ValueError("BlockPruningCallback: pass exactly one of prune_at_step or prune_at_epoch")
        if prune_at_step is not None and (not isinstance(prune_at_step, int) or prune_at_step < 0):
            raise ValueError(f"prune_at_step: must be a non-negative integer, got {prune_at_step!r}")
        if prune_at_epoch is not None and not (isinstance(prune_at_epoch, int | float) and prune_at_epoch >= 0):
            raise ValueError(f"prune_at_epoch: must be a non-negative number, got {prune_at_epoch!r}")
        self.pruner = pruner
        self.prune_at_step = prune_at_step
        self.prune_at_epoch = prune_at_epoch
        self.reweight_interval_steps: int | None = pruner.settings.reweight_interval_steps
        self.pruned_at_step: int | None = None
        self.reweight_count = 0

    def state(self) -> dict:
        return {
            "prune_at_step": self.prune_at_step,
            "reweight_interval_steps": self.reweight_interval_steps,
            "pruned_at_step": self.pruned_at_step,
            "reweight_count": self.reweight_count,
        }

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if self.pruner.model is None:
            self.pruner.prepare(model)
        steps_per_epoch = max(1, math.ceil(state.max_steps / max(args.num_train_epochs, 1e-9)))
        if self.reweight_interval_steps is None:
            self.reweight_interval_steps = steps_per_epoch
        if self.prune_at_step is None:
            self.prune_at_step = round(self.prune_at_epoch * steps_per_epoch)
        if self.prune_at_step == 0 and self.pruned_at_step is None:
            self._prune(0)

    def _regularizing(self) -> bool:
        return self.pruned_at_step is None and self.pruner.regularizer is not None

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        if self._regularizing() and self.pruner.settings.penalty_mode == "gradient":
            self.pruner.regularizer.add_grad_()

    def on_optimizer_step(self, args, state, control, optimizer=None, **kwargs):
        if self._regularizing() and self.pruner.settings.penalty_mode == "proximal":
            self.pruner.regularizer.prox_(optimizer.param_groups[0]["lr"])

    def on_step_end(self, args, state, control, **kwargs):
        if self.pruned_at_step is not None:
            return
        step = state.global_step
        if step >= self.prune_at_step:
            self._prune(step)
        elif self.pruner.regularizer is not None and step % self.reweight_interval_steps == 0:
            self.pruner.regularizer.reweight()
            self.reweight_count += 1

    def on_train_end(self, args, state, control, **kwargs):
        if self.pruned_at_step is None:
            log.warning("training ended before prune step %s; pruning now", self.prune_at_step)
            self._prune(state.global_step)

    def _prune(self, step: int) -> None:
        self.pruner.prune()
        self.pruned_at_step = step
        log.info("hard-pruned %d layers at step %d", len(self.pruner.masks), step)
