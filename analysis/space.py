"""Sweep spaces: which pruning settings x accelerators x shapes to evaluate, from YAML or Python.

>>> space = SweepSpace(blocks=["16x16"], sparsities=[0.0, 0.5], configs=["asic-32x32-int8"])
>>> len(space.pruning_points()), len(space.hardware_points())
(2, 2)

YAML form (every key optional; unknown keys are errors)::

    model: minilm            # alias or local HF directory
    data: sentiment          # sentiment | bbc | glue:TASK (with glue_dir)
    accuracy: table:minilm-sentiment   # table:NAME|PATH.csv (measured accuracies) | proxy | train | none
    blocks: [8x8, 16x16, 32x32]
    granularities: [block]
    sparsities: [0.0, 0.5, 0.75, 0.9]
    methods: [score]
    configs: [asic-32x32-int8, fpga-zcu102]
    hardware_axes:           # optional: derive configs from each of `configs` (any dotted config field)
      clock_mhz: [500, 1000]                             # crossed with every other axis
      pe_array.rows,pe_array.cols: [[16, 16], [32, 32]]  # tied: one list of values per point
    seq_lens: [128]
    batches: [1]
    budget: {epochs: 1, max_train_samples: 1500, max_eval_samples: 500, recovery_steps: 10}

Sparsity 0 is the dense baseline: it is evaluated once (block/method/granularity do not apply).
"""

from __future__ import annotations

import itertools
import json
import logging
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from analysis.tables import accuracy_table_path, shipped_tables
from bsp_common.safe_yaml import load_yaml_file, short_repr
from hwsim.config import EXCLUSIVE_FIELD_PAIRS, ConfigError, derive_config, list_presets, load_config, parse_size_bytes
from hwsim.design_cost import pinned_dependents
from hwsim.workload import MAX_BATCH, MAX_SEQ_LEN
from pruning.settings import PENALTY_MODES, PruneMethod, ScoreKind, TrainBudget, check_sparsity
from pruning.spec import BlockSpec, Granularity

log = logging.getLogger(__name__)

__all__ = ["ACCURACY_NOTES", "AccuracySource", "SweepSpace", "load_space"]

ACCURACY_SOURCES = ("proxy", "train", "none")
ACCURACY_NOTES = {  # how each accuracy source is described wherever its numbers are shown
    "table": "table (measured with the full method, analysis/tables)",
    "proxy": "proxy (one-shot prune of a dense fine-tune + a few recovery steps; not the full method)",
    "train": "train (the full method at every point)",
    "none": "none (hardware only)",
}
MAX_RECOVERY_STEPS = 100_000


@dataclass(frozen=True)
class AccuracyBudget(TrainBudget):
    """Training budget behind a sweep's accuracy numbers: a :class:`pruning.settings.TrainBudget` (every field
    of one training run, schedule and distillation included) with sweep defaults (a few minutes on 2 CPU
    cores) plus the fields of the regularizer and of the ``proxy`` source."""

    epochs: float = 1.0  # dense fine-tune (proxy) or total prune run (train)
    max_train_samples: int | None = 1500  # training examples used (None: all)
    max_eval_samples: int | None = 500  # dev/test examples evaluated (None: all)
    recovery_steps: int = 10  # proxy: masked retraining steps after the one-shot prune
    lam: float = 1e-4  # train: regularization strength for regularized methods
    penalty_mode: str = "gradient"  # train: gradient | proximal (see pruning.PruneSettings)
    reweight_interval_steps: int | None = None  # train: None = once per epoch
    score: str = "taylor"  # train: group score (pruning.PruneSettings.score)
    relative_norms: bool = False  # train: reweighted alphas from layer-relative norms

    def __post_init__(self) -> None:
        try:
            super().__post_init__()
        except ValueError as err:
            raise ValueError(f"budget.{err}") from None
        if isinstance(self.recovery_steps, bool) or not isinstance(self.recovery_steps, int) or not (
            0 <= self.recovery_steps <= MAX_RECOVERY_STEPS
        ):
            raise ValueError(f"budget.recovery_steps: must be an integer in [0, {MAX_RECOVERY_STEPS}], "
                             f"got {self.recovery_steps!r}")  # fmt: skip
        if isinstance(self.lam, bool) or not isinstance(self.lam, int | float) or not 0 <= self.lam < math.inf:
            raise ValueError(f"budget.lam: must be a finite number >= 0, got {self.lam!r}")
        if self.penalty_mode not in PENALTY_MODES:
            raise ValueError(f"budget.penalty_mode: {self.penalty_mode!r} not one of {', '.join(PENALTY_MODES)}")
        ScoreKind.parse(self.score, field="budget.score")
        if not isinstance(self.relative_norms, bool):
            raise ValueError(f"budget.relative_norms: must be true or false, got {short_repr(self.relative_norms)}")
        interval = self.reweight_interval_steps
        if interval is not None and (isinstance(interval, bool) or not isinstance(interval, int) or interval <= 0):
            raise ValueError(f"budget.reweight_interval_steps: must be a positive integer or null, got {interval!r}")

    def train_budget(self, **overrides) -> TrainBudget:
        """The plain :class:`~pruning.settings.TrainBudget` of one training run (fields overridable)."""
        fields = {name: getattr(self, name) for name in TrainBudget.__dataclass_fields__}
        try:
            return TrainBudget(**{**fields, **overrides})
        except ValueError as err:
            raise ValueError(f"budget.{err}") from None


AccuracySource = str
_BUDGET_FIELDS = tuple(f.name for f in fields(AccuracyBudget))


@dataclass(frozen=True)
class SweepSpace:
    model: str = "minilm"  # alias (minilm) or a local HF model directory
    data: str = "sentiment"  # sentiment | bbc | glue:TASK
    glue_dir: str | None = None  # GLUE data directory for data: glue:TASK
    # The main job's default: accuracies measured with the full method (shipped table, instant) and live
    # hardware simulation; `proxy` (a short one-shot recovery) and `train` (the full method) run training.
    accuracy: AccuracySource = "table:minilm-sentiment"  # table:NAME|PATH.csv | proxy | train | none
    blocks: list[str] = field(default_factory=lambda: ["16x16", "32x32"])  # hardware blocks ROWSxCOLS
    granularities: list[str] = field(default_factory=lambda: ["block"])  # block | column | row
    sparsities: list[float] = field(default_factory=lambda: [0.0, 0.5, 0.75, 0.875])  # per layer; 0: dense
    # the default recipe (no regularizer; the shipped table measures it at every block): best in the studies
    methods: list[str] = field(default_factory=lambda: ["score"])  # score | reweighted | group-lasso | ...
    configs: list[str] = field(default_factory=lambda: ["asic-32x32-int8", "fpga-zcu102"])  # presets or YAML files
    hardware_axes: dict = field(default_factory=dict)  # dotted config field -> values; "a,b" keys tie fields
    seq_lens: list[int] = field(default_factory=lambda: [128])  # tokens per sequence
    batches: list[int] = field(default_factory=lambda: [1])  # sequences per inference
    budget: AccuracyBudget = field(default_factory=AccuracyBudget)  # training behind the accuracies (below)

    def __post_init__(self) -> None:
        for name in ("model", "data", "accuracy"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"sweep.{name}: expected a string, got {short_repr(getattr(self, name))}")
        if self.glue_dir is not None and not isinstance(self.glue_dir, str):
            raise ValueError(f"sweep.glue_dir: expected a path string, got {short_repr(self.glue_dir)}")
        for name in ("blocks", "granularities", "sparsities", "methods", "configs", "seq_lens", "batches"):
            value = getattr(self, name)
            if not isinstance(value, list | tuple) or not value:
                raise ValueError(f"sweep.{name}: must be a non-empty list, got {short_repr(value)}")
            object.__setattr__(self, name, list(value))
            if name not in ("sparsities", "seq_lens", "batches"):
                for item in value:
                    if not isinstance(item, str):
                        raise ValueError(f"sweep.{name}: entries must be strings, got {short_repr(item)}")
        for text in self.blocks:
            BlockSpec.parse(text)
        for text in self.granularities:
            Granularity.parse(text)
        for text in self.methods:
            PruneMethod.parse(text)
        for sparsity in self.sparsities:
            try:
                check_sparsity(sparsity)
            except ValueError as err:
                raise ValueError(f"sweep.sparsities: {err}") from None
        for name, upper in (("seq_lens", MAX_SEQ_LEN), ("batches", MAX_BATCH)):
            for value in getattr(self, name):
                if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= upper:
                    raise ValueError(f"sweep.{name}: entries must be integers in [1, {upper}], got {short_repr(value)}")
        presets = list_presets()
        for config in self.configs:
            if config not in presets and not Path(config).is_file():
                raise ValueError(f"sweep.configs: {short_repr(config)} is neither a preset ({', '.join(presets)}) "
                                 "nor a file")  # fmt: skip
        self._check_hardware_axes()
        if not (self.accuracy in ACCURACY_SOURCES or self.accuracy.startswith("table:")):
            raise ValueError(f"sweep.accuracy: {short_repr(self.accuracy)}; allowed: proxy, train, none, "
                             "table:NAME|PATH")  # fmt: skip
        if self.accuracy.startswith("table:"):
            accuracy_table_path(self.accuracy)  # a missing table is bad input, found before any work
        if isinstance(self.budget, dict):
            object.__setattr__(self, "budget", _from_dict(AccuracyBudget, self.budget, "sweep.budget"))
        if not isinstance(self.budget, AccuracyBudget):
            raise ValueError(f"sweep.budget: expected a mapping of budget fields ({', '.join(_BUDGET_FIELDS)}), "
                             f"got {short_repr(self.budget)}")  # fmt: skip

    def _check_hardware_axes(self) -> None:
        axes = self.hardware_axes
        if not isinstance(axes, dict):
            raise ValueError(f"sweep.hardware_axes: expected a mapping of config field paths to value lists, "
                             f"got {short_repr(axes)}")  # fmt: skip
        paths = [path for key in axes for path in str(key).split(",")]
        for pair in EXCLUSIVE_FIELD_PAIRS:
            if set(pair) <= set(paths):
                raise ValueError(f"sweep.hardware_axes: {pair[0]} and {pair[1]} exclude each other (a config gives "
                                 "one of them); make one of them the axis")  # fmt: skip
        repeated = sorted({path for path in paths if paths.count(path) > 1})
        if repeated:
            raise ValueError(f"sweep.hardware_axes: {', '.join(repeated)} is an axis more than once")
        for key, values in axes.items():
            paths = str(key).split(",")
            if not isinstance(values, list | tuple) or not values:
                raise ValueError(f"sweep.hardware_axes.{key}: must be a non-empty list, got {short_repr(values)}")
            for value in values:
                if len(paths) > 1 and (not isinstance(value, list | tuple) or len(value) != len(paths)):
                    raise ValueError(f"sweep.hardware_axes.{key}: tied axes take one list of {len(paths)} values "
                                     f"per point, got {short_repr(value)}")  # fmt: skip
                if any(isinstance(v, float) and not math.isfinite(v) for v in (value if len(paths) > 1 else [value])):
                    raise ValueError(f"sweep.hardware_axes.{key}: values must be finite numbers or sizes, got "
                                     f"{short_repr(value)}")  # fmt: skip
            seen: dict = {}
            for value in values:
                normal = _normal_axis_value(value)
                if normal in seen:
                    raise ValueError(f"sweep.hardware_axes.{key}: {short_repr(value)} repeats "
                                     f"{short_repr(seen[normal])} (the same value twice would give the same point "
                                     "twice); list each value once")  # fmt: skip
                seen[normal] = value
            for settings in _axis_settings(key, values):
                try:
                    derive_config(self.configs[0], settings)
                except ConfigError as err:  # a wrong path or value is bad input; values that do not fit together
                    wrong = [p for p, message in err.errors if message == "names no field of the config"]
                    if wrong:  # (an array over an FPGA's DSP budget) are a result: an infeasible row
                        raise ValueError(f"sweep.hardware_axes: {', '.join(wrong)} names no field of an accelerator "
                                         "config (see `bsp configs show NAME`)") from None  # fmt: skip
                    refused = [(p, message) for p, message in err.errors if p in err.value_paths and p in settings]
                    if refused:
                        path, message = refused[0]
                        where = f"{key}: {path}" if len(settings) > 1 else key
                        raise ValueError(f"sweep.hardware_axes.{where}: {message}") from None

    def pinned_dependents(self) -> list[str]:
        """A note per base config that fixes a figure the hardware axes would change (static power, vector
        lanes): :func:`hwsim.design_cost.pinned_dependents`."""
        varied = [path for key in self.hardware_axes for path in str(key).split(",")]
        if not varied:
            return []
        return [note for base in self.configs for note in pinned_dependents(load_config(base), varied)]

    def hardware_variants(self) -> list[dict]:
        """Config-field overrides of every hardware-axis combination (``[{}]`` without axes)."""
        expanded = [_axis_settings(key, values) for key, values in self.hardware_axes.items()]
        return [{k: v for part in combo for k, v in part.items()} for combo in itertools.product(*expanded)]

    def derived_configs(self) -> list[tuple[str, dict, object, str | None]]:
        """``(base config, overrides, config, None)`` for every config x hardware-axis combination, or
        ``(base, overrides, None, reason)`` when the combination cannot be built (e.g. an FPGA array over its
        DSP budget: a result, not an error)."""
        derived = []
        for base in self.configs:
            for overrides in self.hardware_variants():
                try:
                    derived.append((base, overrides, derive_config(base, overrides), None))
                except ConfigError as err:
                    reason = "; ".join(f"{path}: {message}" for path, message in err.errors)
                    derived.append((base, overrides, None, reason))
        return derived

    def pruning_points(self) -> list[dict]:
        """Distinct pruning settings; the dense baseline (sparsity 0) appears once."""
        points, seen = [], set()
        for block, granularity, sparsity, method in itertools.product(
            self.blocks, self.granularities, self.sparsities, self.methods
        ):
            if sparsity == 0:
                point = {"block": "dense", "granularity": "none", "target_sparsity": 0.0, "method": "dense"}
            else:
                method_enum = PruneMethod.parse(method)
                if method_enum in (PruneMethod.UNSTRUCTURED, PruneMethod.NM):
                    block, granularity = "1x1", "block"
                point = {"block": str(BlockSpec.parse(block)), "granularity": Granularity.parse(granularity).value,
                         "target_sparsity": float(sparsity), "method": method_enum.value}  # fmt: skip
            key = tuple(point.values())
            if key not in seen:
                seen.add(key)
                points.append(point)
        return points

    @property
    def n_points(self) -> int:
        """Number of hardware points, counted without building them (cheap on huge spaces)."""
        variants = 1
        for values in self.hardware_axes.values():
            variants *= len(values)
        return len(self.pruning_points()) * len(self.configs) * variants * len(self.seq_lens) * len(self.batches)

    def hardware_points(self) -> list[dict]:
        """Every pruning point x accelerator x hardware-axis combination x sequence length x batch.

        ``hw_overrides`` is the combination as a JSON object string (a table cell); each axis is a column too.
        """
        return [
            {**p, "config": c, "hw_overrides": json.dumps(h), **h, "seq_len": s, "batch": b}
            for p, c, h, s, b in itertools.product(self.pruning_points(), self.configs, self.hardware_variants(),
                                                   self.seq_lens, self.batches)
        ]  # fmt: skip

    def to_dict(self) -> dict:
        return asdict(self)


def _normal_axis_value(value):
    """What an axis value means, for finding repeats: 500 and 500.0 are one clock, "256 KiB" and 262144 one size."""
    if isinstance(value, list | tuple):
        return tuple(_normal_axis_value(v) for v in value)
    if isinstance(value, str):
        try:
            return float(parse_size_bytes(value))
        except ValueError:
            return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return json.dumps(value, sort_keys=True, default=str)


def _axis_settings(key: str, values: list) -> list[dict]:
    """One ``{config path: value}`` per value of a hardware axis; a key ``"a,b"`` ties paths (values are lists)."""
    paths = str(key).split(",")
    return [dict(zip(paths, value if len(paths) > 1 else [value], strict=True)) for value in values]


def _from_dict(cls, data: dict, where: str):
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping, got {type(data).__name__}")
    allowed = {f.name for f in fields(cls)}
    unknown = sorted(map(str, set(data) - allowed))
    if unknown:
        raise ValueError(f"{where}: unknown keys {short_repr(unknown)}; allowed: {sorted(allowed)}")
    return cls(**data)


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):  # a name too long, a NUL byte: no such file (the field's own check says why)
        return False


def _resolve_path(value, base: Path, field: str, path: Path):
    """A path written in the sweep file at ``path``: relative to the file's directory; a relative path found only
    from the working directory still works (the older rule), with a note."""
    if not isinstance(value, str) or not value or Path(value).is_absolute():
        return value
    beside = base / value
    if _exists(beside):
        return str(beside)
    if _exists(Path(value)):
        log.warning("sweep file %s: %s %r was found relative to the working directory; paths in a sweep file are "
                    "relative to the file (%s)", path, field, value, base)  # fmt: skip
    return value


def _paths_relative_to(data: dict, path: Path) -> dict:
    """``data`` with the file paths a sweep file names (configs, model, glue_dir, table:PATH) resolved against
    the file's directory; presets, model aliases and shipped tables stay names."""
    base = path.parent
    data = dict(data)
    presets = set(list_presets())
    if isinstance(data.get("configs"), list):
        data["configs"] = [_resolve_path(c, base, "configs entry", path) if isinstance(c, str) and c not in presets
                           else c for c in data["configs"]]  # fmt: skip
    if "model" in data:  # an alias ("minilm") is no path beside the file, so it stays a name
        data["model"] = _resolve_path(data["model"], base, "model", path)
    if "glue_dir" in data:
        data["glue_dir"] = _resolve_path(data["glue_dir"], base, "glue_dir", path)
    accuracy = data.get("accuracy")
    if isinstance(accuracy, str) and accuracy.startswith("table:") and accuracy[6:] not in shipped_tables():
        data["accuracy"] = "table:" + str(_resolve_path(accuracy[6:], base, "accuracy table", path))
    return data


def load_space(path: str | Path | dict | None = None) -> SweepSpace:
    """A :class:`SweepSpace` from YAML, or from a dict of its fields (``None``: the default main-job space).

    Paths in a sweep file (``configs`` files, ``model``, ``glue_dir``, ``accuracy: table:PATH``) are relative to
    the file's directory; one found only from the working directory is used with a warning (the older rule)."""
    if path is None:
        return SweepSpace()
    if isinstance(path, dict):
        return _from_dict(SweepSpace, path, "sweep")
    if not isinstance(path, str | Path):
        raise TypeError(f"sweep space: expected a SweepSpace, a dict of its fields or a YAML path, got "
                        f"{type(path).__name__}")  # fmt: skip
    path = Path(path)
    data = load_yaml_file(path, "sweep file")
    if data is None:  # an empty file: the default space, as with no file
        data = {}
    if isinstance(data, dict):
        data = _paths_relative_to(data, path)
    try:
        return _from_dict(SweepSpace, data, f"sweep file {path}")
    except ValueError as err:
        message = str(err)
        raise ValueError(message if message.startswith("sweep file") else f"sweep file {path}: {message}") from None
