"""Obtain masks and accuracy for one pruning point, cached by a content hash.

Accuracy sources:

* ``train`` -- the full method: fine-tune with the method's regularizer -> hard prune -> masked retrain
  (:func:`pruning.train.run_pruning`), dev accuracy. Expensive; cached per point.
* ``proxy`` -- fine-tune the dense model once (cached), then per point a one-shot group-norm prune of the
  fine-tuned weights at the point's block/granularity/sparsity + ``recovery_steps`` masked retraining
  steps, dev accuracy. Regularized methods are pruned by group norm here (their regularizer is not run);
  the ``accuracy_source`` column says so.
* ``none`` -- hardware-only: one-shot group-norm prune of the pretrained weights, accuracy NaN. No training.
* ``table:PATH`` -- like ``none`` for the masks, accuracy looked up in a user CSV with columns
  ``block, granularity, target_sparsity, method, accuracy``. ``table:NAME`` names a table shipped in
  ``analysis/tables/`` (``table:minilm-sentiment``: accuracies measured with the full method by
  ``paper_figs.reproduce``; its ``source`` column says which run). Points the table lacks get NaN.

Every cache entry is a directory ``<cache>/<hash>/`` with ``block_masks.safetensors`` (absent for the
dense baseline) and ``point.json``, written last and atomically: an interrupted point is recomputed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.tables import accuracy_table_path
from bsp_common import strict_json
from bsp_common.claims import compute_once, describe_owner
from bsp_common.outputs import write_text_atomic
from bsp_common.safe_yaml import short_repr
from bsp_common.strict_json import content_hash
from pruning.masks import MASKS_FILENAME, save_masks
from pruning.models import model_fingerprint
from pruning.pruner import BlockPruner, PruneMethod, PruneSettings
from pruning.report import compression_summary

__all__ = ["PointCache", "content_hash", "model_fingerprint"]

_ADDED_FIELDS = {"distill_hidden_weight": 0.0}  # budget field -> the value that means "as before it existed"

log = logging.getLogger(__name__)

POINT_FILENAME = "point.json"


class PointCache:
    """Masks + accuracy per pruning point for one sweep space, under ``cache_dir``."""

    def __init__(self, space, cache_dir: str | Path, dataset=None) -> None:
        """``dataset``: the space's data set if the caller has loaded it already (else loaded when needed)."""
        self.space = space
        self.cache_dir = Path(cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.fingerprint = model_fingerprint(space.model)
        self.model_dir = Path(self.fingerprint["model_dir"])
        self._dataset = dataset
        self._table = None
        # a table source is keyed by its content, so editing the file re-reads it instead of reusing old points;
        # it is read (and checked) here, so a bad table is refused before any point is computed
        self._table_sha256 = None
        if space.accuracy.startswith("table:"):
            path = accuracy_table_path(space.accuracy)
            self._table_sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
            self._table = read_accuracy_table(path)

    # -- keys ------------------------------------------------------------------------------------
    @property
    def inputs_sha256(self) -> tuple[str, str | None]:
        """The content of the files behind every key: the model's weights and the accuracy table (if any)."""
        return self.fingerprint["sha256"], self._table_sha256

    def key(self, point: dict) -> str:
        budget = self.space.budget.__dict__ if self.space.accuracy in ("proxy", "train") else {}
        # budget fields added after points were first cached are left out at their neutral value, so those
        # points keep their keys
        budget = {k: v for k, v in budget.items() if _ADDED_FIELDS.get(k, object()) != v}
        identity = {"model": self.fingerprint["sha256"], "data": self.space.data, "accuracy": self.space.accuracy,
                    "budget": budget, "point": point}  # fmt: skip
        if self._table_sha256 is not None:
            identity["table_sha256"] = self._table_sha256
        return content_hash(identity)

    def get(self, point: dict) -> dict:
        """The cached record for ``point``, computing it if missing. Processes sharing ``cache_dir`` compute a
        point once: the first claims it (:func:`bsp_common.claims.compute_once`), the others wait for it."""
        entry = self.cache_dir / self.key(point)
        return compute_once(entry.with_name(f"{entry.name}.claim"), lambda: self.lookup(point),
                            lambda: self._compute_entry(point, entry),
                            on_wait=lambda owner: log.warning("pruning point %s: computed by %s; waiting for it",
                                                              entry.name, describe_owner(owner)))  # fmt: skip

    def lookup(self, point: dict) -> dict | None:
        """The cached record for ``point``, or ``None`` if it has not been computed -- or if the record is not a
        JSON object (damaged or edited: reported by file, and the point computed again)."""
        record_path = self.cache_dir / self.key(point) / POINT_FILENAME
        if not record_path.is_file():
            return None
        try:
            record = json.loads(record_path.read_bytes())
        except (ValueError, RecursionError) as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            record = err
        if not isinstance(record, dict):
            log.warning("cache record %s is not a JSON object (%s); the point is computed again", record_path,
                        short_repr(str(record))[1:-1])  # fmt: skip
            return None
        return record

    def _compute_entry(self, point: dict, entry: Path) -> None:
        entry.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        record = self._compute(point, entry)
        record.update(point, cache_key=entry.name, prune_wall_s=time.perf_counter() - start,
                      accuracy_source=self.space.accuracy.split(":")[0],
                      hf_config_dir=str(self._hf_dir(entry)))  # fmt: skip
        write_text_atomic(entry / POINT_FILENAME, strict_json.dumps(record, indent=2))

    def _hf_dir(self, entry: Path) -> Path:
        return entry / "model" if (entry / "model" / "config.json").is_file() else self.model_dir

    # -- sources ---------------------------------------------------------------------------------
    def _settings(self, point: dict) -> PruneSettings:
        method = PruneMethod.parse(point["method"])
        b = self.space.budget
        return PruneSettings(block=point["block"], granularity=point["granularity"], method=method,
                             target_sparsity=point["target_sparsity"], lam=b.lam, penalty_mode=b.penalty_mode,
                             reweight_interval_steps=b.reweight_interval_steps, score=b.score,
                             relative_norms=b.relative_norms)  # fmt: skip

    def _compute(self, point: dict, entry: Path) -> dict:
        source = self.space.accuracy
        if source == "train":
            return self._train(point, entry)
        if source == "proxy":
            return self._proxy(point, entry)
        return self._one_shot(point, entry, self.model_dir, accuracy=self._table_accuracy(point))

    def _data(self):
        from pruning.data import load_dataset

        if self._dataset is None:
            self._dataset = load_dataset(self.space.data, glue_dir=self.space.glue_dir)
        return self._dataset

    def _train(self, point: dict, entry: Path) -> dict:
        from pruning.io import read_run_record
        from pruning.train import run_pruning

        budget = self.space.budget
        if point["method"] == "dense":  # the dense fine-tune is the pruned runs' teacher: trained once for both
            extra = read_run_record(self._dense_finetuned())["extra"]
            return {"accuracy": extra["dev_accuracy"], "test_accuracy": extra["test_accuracy"], "masks_path": None,
                    **_compression({}, True)}  # fmt: skip
        result = run_pruning(self.model_dir, self._data(), self._settings(point), entry / "model",
                             budget.train_budget(), overwrite=True, cache_dir=self.cache_dir)  # fmt: skip
        return {"accuracy": result.dev_accuracy, "test_accuracy": result.test_accuracy,
                "masks_path": str(entry / "model" / MASKS_FILENAME), **_compression(result.summary, False)}  # fmt: skip

    def _dense_finetuned(self) -> Path:
        """The dense fine-tune of the space's budget (trained once, cached under ``cache_dir/teachers``): the
        ``train`` source's teacher, the ``proxy`` source's starting point and both sources' dense point."""
        from pruning.train import dense_teacher

        teachers = self.cache_dir / "teachers"
        return dense_teacher(self.model_dir, self._data(), self.space.budget.train_budget(), teachers)

    def _proxy(self, point: dict, entry: Path) -> dict:
        if point["method"] == "dense":  # the dense fine-tune is the same run as the train source's
            return self._train(point, entry)
        return self._one_shot(point, entry, self._dense_finetuned(), recover=True)

    def _one_shot(self, point: dict, entry: Path, model_dir: Path, accuracy: float = math.nan,
                  recover: bool = False) -> dict:  # fmt: skip
        if point["method"] == "dense":
            return {"accuracy": accuracy, "masks_path": None, **_compression({}, True)}
        from transformers import AutoModel

        from pruning.models import load_classifier, quiet_loading

        settings = self._settings(point).replace(method=_one_shot_method(point["method"]))
        if recover:
            model = load_classifier(model_dir, self._data().num_labels)
        else:
            with quiet_loading():  # the encoder alone: a classifier's head weights are unused on purpose
                model = AutoModel.from_pretrained(model_dir, local_files_only=True)
        pruner = BlockPruner(settings)
        pruner.prepare(model)
        pruner.prune()
        if recover:
            accuracy = self._recover_and_evaluate(model)
        masks = pruner.finalize()
        save_masks(masks, entry / MASKS_FILENAME)
        return {"accuracy": accuracy, "masks_path": str(entry / MASKS_FILENAME),
                **_compression(compression_summary(masks, model), False)}  # fmt: skip

    def _recover_and_evaluate(self, model) -> float:
        """``recovery_steps`` masked training steps (the pruning runs' Trainer setup), then dev accuracy."""
        from pruning.models import load_tokenizer
        from pruning.train import evaluate_accuracy, masked_trainer, tokenize_split

        b, data = self.space.budget, self._data()
        tokenizer = load_tokenizer(self.model_dir)
        train = tokenize_split(tokenizer, data.train.head(b.max_train_samples), b.max_seq_len)
        dev = tokenize_split(tokenizer, data.dev.head(b.max_eval_samples), b.max_seq_len)
        with tempfile.TemporaryDirectory(prefix="bsp-trainer-") as tmp:
            trainer = masked_trainer(model, tokenizer, train, b, tmp, max_steps=max(b.recovery_steps, 1))
            if b.recovery_steps > 0:
                trainer.train()
            return evaluate_accuracy(trainer, dev)

    def _table_accuracy(self, point: dict) -> float:
        source = self.space.accuracy
        if not source.startswith("table:"):
            return math.nan
        t = self._table
        match = t[(t["block"].astype(str) == point["block"]) & (t["granularity"].astype(str) == point["granularity"])
                  & ((t["target_sparsity"] - point["target_sparsity"]).abs() < 1e-9)
                  & (t["method"].astype(str) == point["method"])]  # fmt: skip
        return float(match["accuracy"].iloc[0]) if len(match) else math.nan


TABLE_KEYS = ("block", "granularity", "target_sparsity", "method")


def read_accuracy_table(path: str | Path) -> pd.DataFrame:
    """A user accuracy table (``accuracy: table:PATH``), checked: the key columns and ``accuracy`` present,
    accuracies and sparsities numbers in [0, 1], no key listed twice with different accuracies. Every error
    names the file, and the line and column of a bad cell."""
    path = Path(path)
    try:
        table = pd.read_csv(path)
    except (ValueError, OSError, UnicodeDecodeError) as err:
        raise ValueError(f"accuracy table {path}: not a readable CSV ({str(err)[:120]})") from None
    missing = {*TABLE_KEYS, "accuracy"} - set(table.columns)
    if missing:
        raise ValueError(f"accuracy table {path}: missing columns {sorted(missing)}")
    for column in ("target_sparsity", "accuracy"):
        values = pd.to_numeric(table[column], errors="coerce")
        bad = (values.isna() & table[column].notna()) | ~values.between(0, 1) & values.notna()
        if bad.any():
            row = int(bad.to_numpy().nonzero()[0][0])
            cell = table[column].iloc[row]
            cell = cell.item() if hasattr(cell, "item") else cell  # numpy scalars read as plain numbers
            raise ValueError(f"accuracy table {path}:{row + 2}: column {column!r} holds "
                             f"{short_repr(cell)}; it must be a number in [0, 1] (a fraction, "
                             "not a percentage)")  # fmt: skip
        table[column] = values
    try:  # the same spelling as the sweep's points (a table may use the old name of the default recipe)
        table["method"] = [m if m == "dense" else PruneMethod.parse(m).value for m in table["method"].astype(str)]
    except ValueError as err:
        raise ValueError(f"accuracy table {path}: column 'method': {err}") from None
    keys = table[list(TABLE_KEYS)].astype(str)
    conflicting = table.assign(_key=keys.agg("|".join, axis=1)).groupby("_key")["accuracy"].nunique(dropna=False) > 1
    if conflicting.any():
        key = conflicting[conflicting].index[0]
        lines = [int(i) + 2 for i in np.flatnonzero(keys.agg("|".join, axis=1) == key)]
        raise ValueError(f"accuracy table {path}: lines {lines} list the point {key.replace('|', ' ')} with "
                         "different accuracies; keep one")  # fmt: skip
    return table


def _one_shot_method(method: str) -> PruneMethod:
    """Regularized methods are selected by group norm when no regularized training runs."""
    parsed = PruneMethod.parse(method)
    return PruneMethod.SCORE if parsed.regularized else parsed


def _compression(summary: dict, dense: bool) -> dict:
    if dense:
        return {"sparsity": 0.0, "compression_rate": 1.0, "model_compression_rate": 1.0}
    return {"sparsity": summary["sparsity"], "compression_rate": summary["compression_rate"],
            "model_compression_rate": summary.get("model_compression_rate", math.nan)}  # fmt: skip
