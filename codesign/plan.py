"""A co-design plan: one block size for the accelerator and one sparsity per prunable layer, as YAML.

>>> plan = CodesignPlan(block="16x16", layers={"encoder.layer.0.output.dense.weight": 0.75}, config="asic-32x32-int8")
>>> CodesignPlan.from_yaml(plan.to_yaml()) == plan
True
>>> plan.check_against({"encoder.layer.0.output.dense.weight": (384, 1536)})
>>> plan.check_against({"encoder.layer.0.output.dense.weight": (8, 1536)})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: plan layers['encoder.layer.0.output.dense.weight']: block 16x16 does not fit ... of shape 8x1536: ...
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bsp_common.outputs import write_text_atomic
from bsp_common.safe_yaml import load_yaml_file, load_yaml_text, short_repr
from pruning.settings import PruneSettings, check_layer_sparsity
from pruning.spec import BlockSpec, Granularity

__all__ = ["CodesignPlan", "load_plan"]

_FIELDS = ("block", "granularity", "layers", "config", "objective", "constraint", "predicted")


@dataclass(frozen=True)
class CodesignPlan:
    """Per-layer sparsities (weight name -> fraction pruned) at one block size and granularity.

    ``predicted`` holds the allocation's own estimates (totals and per layer), for the report only.
    """

    block: str
    layers: dict[str, float]
    granularity: str = "block"
    config: str = ""
    objective: str = ""
    constraint: str = ""
    predicted: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "block", str(BlockSpec.parse(self.block)))
        except ValueError as err:
            raise ValueError(f"plan block: {err}") from None
        object.__setattr__(self, "granularity", Granularity.parse(self.granularity, field="plan granularity").value)
        if not isinstance(self.layers, dict) or not self.layers:
            raise ValueError(f"plan layers: must be a non-empty mapping of weight name -> sparsity, got "
                             f"{short_repr(self.layers)}")  # fmt: skip
        object.__setattr__(self, "layers", check_layer_sparsity(self.layers, "plan layers"))

    def check_against(self, weight_shapes: dict[str, tuple[int, int]]) -> None:
        """Refuse a plan that does not match a model: unknown layers, a block that does not fit a weight."""
        unknown = sorted(set(self.layers) - set(weight_shapes))
        if unknown:
            raise ValueError(f"plan layers: {unknown[:3]} are not prunable layers of this model "
                             f"({len(weight_shapes)} layers, e.g. {sorted(weight_shapes)[:2]})")  # fmt: skip
        block = BlockSpec.parse(self.block)
        for name in self.layers:
            try:
                block.check_fits(tuple(weight_shapes[name]), name=name)
            except ValueError as err:
                raise ValueError(f"plan layers[{name!r}]: {err}") from None

    def kept_fraction(self, weight_shapes: dict[str, tuple[int, int]]) -> float:
        """Kept weights of the planned layers over their total (1 / compression rate)."""
        sizes = {name: math.prod(weight_shapes[name]) for name in self.layers}
        return sum(sizes[n] * (1 - s) for n, s in self.layers.items()) / sum(sizes.values())

    def prune_settings(self, **overrides) -> PruneSettings:
        """:class:`PruneSettings` that prune every planned layer to its own sparsity (the schedule ends at the
        largest); other settings (method, score, ...) from ``overrides``."""
        return PruneSettings(block=self.block, granularity=self.granularity,
                             target_sparsity=max(self.layers.values()), layer_sparsity=self.layers,
                             **overrides)  # fmt: skip

    def to_yaml(self) -> str:
        record = {"block": self.block, "granularity": self.granularity, "config": self.config,
                  "objective": self.objective, "constraint": self.constraint,
                  "layers": {k: round(v, 6) for k, v in self.layers.items()}, "predicted": self.predicted}  # fmt: skip
        return "# bsp codesign plan: run it with  bsp prune --plan THIS_FILE ...\n" + yaml.safe_dump(
            record, sort_keys=False)  # fmt: skip

    def save(self, path: str | Path) -> Path:
        return write_text_atomic(Path(path), self.to_yaml())

    @classmethod
    def from_yaml(cls, text: str, source: str = "plan") -> CodesignPlan:
        record = load_yaml_text(text, source)
        if not isinstance(record, dict):
            raise ValueError(f"{source}: must be a mapping with keys {list(_FIELDS)}")
        unknown = sorted(set(record) - set(_FIELDS))
        if unknown:
            raise ValueError(f"{source}: unknown keys {unknown}; allowed: {list(_FIELDS)}")
        if "block" not in record or "layers" not in record:
            raise ValueError(f"{source}: needs 'block' and 'layers'")
        return cls(**{k: v if v is not None else "" for k, v in record.items()})


def load_plan(path: str | Path) -> CodesignPlan:
    """Read a plan file written by :meth:`CodesignPlan.save` (or by hand); errors name the file and field."""
    record = load_yaml_file(path, "plan")
    try:
        return CodesignPlan.from_yaml(yaml.safe_dump(record), source=f"plan {path}")
    except ValueError as err:
        message = str(err)
        raise ValueError(message if message.startswith("plan ") else f"plan {path}: {message}") from None
