"""Training progress for people: a tqdm bar with ETA, the current sparsity and loss (stderr).

On a terminal it is a live bar; elsewhere (CI logs, pipes) one line every ~10 % of the steps, so long
runs are never silent. Replaces the Trainer's own printer of raw log dicts.
"""

from __future__ import annotations

import sys
import time

from tqdm.auto import tqdm
from transformers import TrainerCallback

__all__ = ["TrainingProgress"]

LINE_EVERY_FRACTION = 0.1  # without a terminal: one line per 10 % of the steps


class TrainingProgress(TrainerCallback):
    """Shows steps, ETA, scheduled sparsity (from a :class:`~pruning.callback.BlockPruningCallback`) and loss."""

    def __init__(self, label: str = "train", pruning=None, enabled: bool = True, stream=None) -> None:
        self.label, self.pruning, self.enabled = label, pruning, enabled
        self.stream = stream or sys.stderr
        self.bar = None
        self.loss: float | None = None
        self._next_line = 0
        self._start = 0.0

    def _interactive(self) -> bool:
        return self.enabled and hasattr(self.stream, "isatty") and self.stream.isatty()

    def on_train_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()
        self._next_line = 0
        if self._interactive():
            self.bar = tqdm(total=state.max_steps, desc=self.label, unit="step", file=self.stream, leave=False)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.loss = float(logs["loss"])

    def _status(self) -> dict:
        status = {}
        if self.pruning is not None:  # over the pruned layers: a plan's layers each ramp to their own target
            status["sparsity"] = f"{self.pruning.pruner.overall_sparsity(self.pruning.current_sparsity):.2f}"
        if self.loss is not None:
            status["loss"] = f"{self.loss:.3f}"
        return status

    def on_step_end(self, args, state, control, **kwargs):
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)
            self.bar.set_postfix(self._status(), refresh=False)
            return
        if state.global_step >= self._next_line or state.global_step == state.max_steps:
            elapsed = time.perf_counter() - self._start
            eta = elapsed / max(state.global_step, 1) * (state.max_steps - state.global_step)
            status = " ".join(f"{k} {v}" for k, v in self._status().items())
            print(f"{self.label}: step {state.global_step}/{state.max_steps} {status} "
                  f"({elapsed:.0f} s, ETA {eta:.0f} s)", file=self.stream, flush=True)  # fmt: skip
            self._next_line = state.global_step + max(1, round(state.max_steps * LINE_EVERY_FRACTION))

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
