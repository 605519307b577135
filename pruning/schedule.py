"""Sparsity schedules: how much of the target sparsity is applied at each training step.

* ``oneshot`` -- nothing until ``end_step``, the full target from then on (hard prune + masked retrain).
* ``cubic`` -- Zhu & Gupta (2017), *To prune, or not to prune*:
  ``s_t = s_f + (s_i - s_f) * (1 - p)^3`` with progress ``p = (t - start) / (end - start)``: fast pruning
  while the network has redundancy, slow near the target.
* ``exponential`` -- the kept fraction shrinks by a constant factor per step:
  ``1 - s_t = (1 - s_i) * ((1 - s_f) / (1 - s_i))^p``.

Masks are recomputed at ``start``, every ``frequency`` steps after it, and at ``end``; between updates
the sparsity is that of the last update (masks held). After ``end`` the target holds.

>>> s = SparsitySchedule("cubic", start_step=0, end_step=100, frequency=10)
>>> [round(s.sparsity_at(t, 0.5), 4) for t in (0, 10, 50, 100, 200)]
[0.0, 0.1355, 0.4375, 0.5, 0.5]
>>> s.update_steps()[:3], s.update_steps()[-1]
([0, 10, 20], 100)
"""

from __future__ import annotations

from dataclasses import dataclass

from pruning.settings import ScheduleKind

__all__ = ["ScheduleKind", "SparsitySchedule"]


@dataclass(frozen=True)
class SparsitySchedule:
    """Sparsity ramp between ``start_step`` and ``end_step`` (optimizer steps), masks updated every ``frequency``."""

    kind: ScheduleKind | str = ScheduleKind.CUBIC
    start_step: int = 0
    end_step: int = 0
    frequency: int = 10
    initial_sparsity: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", ScheduleKind.parse(self.kind, field="schedule"))
        for name in ("start_step", "end_step", "frequency"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (1 if name == "frequency" else 0):
                raise ValueError(f"schedule.{name}: must be a {'positive' if name == 'frequency' else 'non-negative'} "
                                 f"integer, got {value!r}")  # fmt: skip
        if self.end_step < self.start_step:
            raise ValueError(f"schedule: end_step {self.end_step} is before start_step {self.start_step}")
        if not (isinstance(self.initial_sparsity, int | float) and 0 <= self.initial_sparsity < 1):
            raise ValueError(f"schedule.initial_sparsity: must be in [0, 1), got {self.initial_sparsity!r}")
        if self.kind is ScheduleKind.ONESHOT:
            object.__setattr__(self, "start_step", self.end_step)

    def update_steps(self) -> list[int]:
        """Steps at which masks are (re)computed, in order; always ends with ``end_step``."""
        steps = list(range(self.start_step, self.end_step, self.frequency))
        return [*steps, self.end_step]

    def sparsity_at(self, step: int, final_sparsity: float) -> float:
        """Scheduled sparsity of the masks computed at ``step`` (exact at the update steps)."""
        if step >= self.end_step:
            return float(final_sparsity)
        if step < self.start_step or self.kind is ScheduleKind.ONESHOT:
            return 0.0
        initial = min(self.initial_sparsity, final_sparsity)
        progress = (step - self.start_step) / (self.end_step - self.start_step)
        if self.kind is ScheduleKind.CUBIC:
            return final_sparsity + (initial - final_sparsity) * (1.0 - progress) ** 3
        return 1.0 - (1.0 - initial) * ((1.0 - final_sparsity) / (1.0 - initial)) ** progress

    def next_update(self, step: int) -> int | None:
        """The first update step after ``step`` (``None`` when the ramp is over)."""
        return next((s for s in self.update_steps() if s > step), None)
