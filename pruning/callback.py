"""HF ``Trainer`` integration: regularize, prune on a sparsity schedule, retrain with masks -- in one run.

Each optimizer step, in order:

1. the group scorer folds the step's gradients into its importance scores (``taylor``/``movement``);
2. regularized methods add the penalty's gradient to ``.grad`` (after gradient clipping), or with
   ``penalty_mode="proximal"`` apply its exact proximal step after the optimizer step; the reweighted group
   Lasso's alphas are recomputed every ``reweight_interval_steps`` (default: once per epoch);
3. at the schedule's update steps the masks are recomputed at the scheduled sparsity (monotone: a pruned
   group never returns) and attached as parametrizations; after the last update the target holds and
   training continues as masked retraining.

With the ``oneshot`` schedule (``prune_at_step``/``prune_at_epoch`` alone) this is the paper's recipe: the
penalty acts on every group until the single hard prune. With a gradual schedule (``cubic``,
``exponential``) the penalty is *focused* on the groups the next update will remove, so they shrink to ~0
before they are masked.

Use it with a plain ``Trainer`` (so ``torchrun``/accelerate multi-GPU works unchanged)::

    pruner = BlockPruner(settings)
    trainer = Trainer(model=model, args=args, train_dataset=ds,
                      callbacks=[BlockPruningCallback(pruner, prune_at_epoch=2, schedule="cubic")])
    trainer.train()                              # or trainer.train(resume_from_checkpoint=True)
    masks = pruner.finalize()

Checkpoints: every Trainer checkpoint also gets ``bsp_pruning_state.safetensors`` (masks, scores, regularizer
alphas and focus, schedule progress). A run resumed from ``<output_dir>/checkpoint-N`` restores it, attaches
the masks and reloads the masked weights (the Trainer's own load cannot: a masked weight is stored under its
parametrization's name), so it continues exactly where the interrupted run stopped.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from transformers import TrainerCallback

from pruning.pruner import BlockPruner
from pruning.schedule import ScheduleKind, SparsitySchedule

__all__ = ["STATE_FILENAME", "BlockPruningCallback"]

log = logging.getLogger(__name__)

DEFAULT_FREQUENCY_STEPS = 10  # mask updates of a gradual schedule, in optimizer steps
STATE_FILENAME = "bsp_pruning_state.safetensors"  # in each Trainer checkpoint directory
_RESUMED_FIELDS = ("pruned_at_step", "current_sparsity", "updates", "reweight_count")


class BlockPruningCallback(TrainerCallback):
    """Drives a :class:`BlockPruner` from Trainer events; its schedule state is a small JSON dict.

    Parameters
    ----------
    prune_at_step, prune_at_epoch : when the target sparsity is reached (exactly one of them).
    schedule : ``oneshot`` (default), ``cubic`` or ``exponential``.
    start_step, start_epoch : when a gradual schedule starts (default 0).
    frequency_steps : optimizer steps between mask updates of a gradual schedule.
    """

    def __init__(self, pruner: BlockPruner, prune_at_step: int | None = None, prune_at_epoch: float | None = None,
                 schedule: ScheduleKind | str = ScheduleKind.ONESHOT, start_step: int | None = None,
                 start_epoch: float | None = None, frequency_steps: int = DEFAULT_FREQUENCY_STEPS) -> None:  # fmt: skip
        if (prune_at_step is None) == (prune_at_epoch is None):
            raise ValueError("BlockPruningCallback: pass exactly one of prune_at_step or prune_at_epoch")
        for name, value in (("prune_at_step", prune_at_step), ("start_step", start_step)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ValueError(f"{name}: must be a non-negative integer, got {value!r}")
        for name, value in (("prune_at_epoch", prune_at_epoch), ("start_epoch", start_epoch)):
            if value is not None and not (isinstance(value, int | float) and 0 <= value < math.inf):
                raise ValueError(f"{name}: must be a non-negative number, got {value!r}")
        if isinstance(frequency_steps, bool) or not isinstance(frequency_steps, int) or frequency_steps < 1:
            raise ValueError(f"frequency_steps: must be a positive integer, got {frequency_steps!r}")
        self.pruner = pruner
        self.kind = ScheduleKind.parse(schedule, field="schedule")
        self.prune_at_step, self.prune_at_epoch = prune_at_step, prune_at_epoch
        self.start_step, self.start_epoch = start_step, start_epoch
        self.frequency_steps = frequency_steps
        self.schedule: SparsitySchedule | None = None
        self.reweight_interval_steps: int | None = pruner.settings.reweight_interval_steps
        self.pruned_at_step: int | None = None  # the step at which the target sparsity was reached
        self.current_sparsity = 0.0
        self.updates: list[tuple[int, float]] = []  # (step, scheduled sparsity) of every mask update
        self.reweight_count = 0

    def state(self) -> dict:
        return {
            "schedule": self.kind.value,
            "start_step": self.schedule.start_step if self.schedule else self.start_step,
            "prune_at_step": self.schedule.end_step if self.schedule else self.prune_at_step,
            "frequency_steps": self.frequency_steps,
            "reweight_interval_steps": self.reweight_interval_steps,
            "pruned_at_step": self.pruned_at_step,
            "mask_updates": len(self.updates),
            "reweight_count": self.reweight_count,
        }

    @property
    def _gradual(self) -> bool:
        return self.kind is not ScheduleKind.ONESHOT

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if self.pruner.model is None:
            self.pruner.prepare(model)
        if state.global_step > 0:  # resumed from a checkpoint (the Trainer restored global_step already)
            self._restore(Path(args.output_dir) / f"checkpoint-{state.global_step}", model)
        steps_per_epoch = max(1, math.ceil(state.max_steps / max(args.num_train_epochs, 1e-9)))
        if self.reweight_interval_steps is None:
            self.reweight_interval_steps = steps_per_epoch
        end = self.prune_at_step if self.prune_at_step is not None else round(self.prune_at_epoch * steps_per_epoch)
        start = self.start_step if self.start_step is not None else round((self.start_epoch or 0) * steps_per_epoch)
        self.schedule = SparsitySchedule(self.kind, start_step=min(start, end), end_step=end,
                                         frequency=self.frequency_steps)  # fmt: skip
        self._update_steps = set(self.schedule.update_steps())
        if state.global_step == 0 and 0 in self._update_steps and self.pruned_at_step is None:
            self._update(0)

    def _regularizing(self) -> bool:
        return self.pruned_at_step is None and self.pruner.regularizer is not None

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        if self.pruned_at_step is None:
            self.pruner.scorer.accumulate()  # the task gradients, before the penalty is added
        if self._regularizing() and self.pruner.settings.penalty_mode == "gradient":
            self.pruner.regularizer.add_grad_()

    def on_optimizer_step(self, args, state, control, optimizer=None, **kwargs):
        if self._regularizing() and self.pruner.settings.penalty_mode == "proximal":
            self.pruner.regularizer.prox_(optimizer.param_groups[0]["lr"])

    def on_step_end(self, args, state, control, **kwargs):
        if self.pruned_at_step is not None:
            return
        step = state.global_step
        if step in self._update_steps or step >= self.schedule.end_step:
            self._update(step)
        elif self.pruner.regularizer is not None and step % self.reweight_interval_steps == 0:
            self.pruner.regularizer.reweight()
            self.reweight_count += 1

    def on_save(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        checkpoint = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        tensors = {**self.pruner.state_dict(), **self.pruner.scorer.state_dict()}
        regularizer = self.pruner.regularizer
        if regularizer is not None and regularizer.focus is not None:
            tensors.update({f"focus.{name}": groups for name, groups in regularizer.focus.items()})
        progress = {name: getattr(self, name) for name in _RESUMED_FIELDS}
        progress["scorer_steps"] = self.pruner.scorer.steps
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(checkpoint / STATE_FILENAME),
                  metadata={"progress": json.dumps(progress)})  # fmt: skip

    def _restore(self, checkpoint: Path, model) -> None:
        """Continue from ``checkpoint``: schedule progress, scores, regularizer state, masks and masked weights."""
        path = checkpoint / STATE_FILENAME
        try:
            tensors = load_file(str(path))
        except (SafetensorError, OSError) as err:
            raise ValueError(f"resume: {path} is missing or unreadable ({err}); a pruning run resumes only from "
                             "a checkpoint its BlockPruningCallback saved, under the Trainer's output_dir") from None
        with safe_open(str(path), framework="pt") as handle:
            progress = json.loads((handle.metadata() or {})["progress"])
        for name in _RESUMED_FIELDS:
            setattr(self, name, progress[name])
        self.updates = [tuple(update) for update in self.updates]
        self.pruner.load_state_dict(tensors)  # attaches the masks
        self.pruner.scorer.load_state_dict(tensors)
        self.pruner.scorer.steps = progress["scorer_steps"]
        regularizer = self.pruner.regularizer
        if regularizer is not None:
            focus = {key.removeprefix("focus."): v for key, v in tensors.items() if key.startswith("focus.")}
            regularizer.focus_on(focus or None)
        weights_path = checkpoint / "model.safetensors"
        if self.pruner.masks and weights_path.is_file():
            # the Trainer loaded this file before the masks existed: masked weights did not match by name
            result = model.load_state_dict(load_file(str(weights_path)), strict=False)
            if result.unexpected_keys:
                raise ValueError(f"resume: {weights_path} holds weights the model lacks: {result.unexpected_keys[:3]}")
        log.info("resumed pruning state from %s (sparsity %.3f)", checkpoint, self.current_sparsity)

    def on_train_end(self, args, state, control, **kwargs):
        if self.pruned_at_step is None:
            log.warning("training ended before the target sparsity (step %s); pruning now", self.schedule.end_step)
            self._update(max(state.global_step, self.schedule.end_step))

    def _update(self, step: int) -> None:
        """Masks at the scheduled sparsity; a gradual schedule then focuses the penalty on the next victims."""
        target = self.pruner.settings.target_sparsity
        sparsity = self.schedule.sparsity_at(step, target)
        if sparsity > 0 or step >= self.schedule.end_step:
            self.pruner.prune(sparsity)
            self.current_sparsity = sparsity
            self.updates.append((step, sparsity))
        if step >= self.schedule.end_step:
            self.pruned_at_step = step
            log.info("target sparsity %.3f reached at step %d (%d mask updates)", target, step, len(self.updates))
            return
        regularizer = self.pruner.regularizer
        if regularizer is not None and self._gradual:
            upcoming = self.schedule.next_update(step)
            regularizer.focus_on(self.pruner.doomed_groups(self.schedule.sparsity_at(upcoming, target)))
            regularizer.reweight()
            self.reweight_count += 1
