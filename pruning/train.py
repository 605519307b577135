"""End-to-end pruning run on a text-classification task with a plain HF ``Trainer``.

``run_pruning`` = load model + data -> [fine-tune with the regularizer for ``prune_at_epoch`` epochs]
-> hard prune -> masked retrain for the rest of ``epochs`` -> evaluate dev/test -> ``save_pruned``.
Every method gets the same schedule and budget, so methods compare fairly.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from transformers import DataCollatorWithPadding, PrinterCallback, ProgressCallback, Trainer, TrainingArguments

from bsp_common.claims import compute_once, describe_owner
from bsp_common.outputs import check_output_dir
from bsp_common.strict_json import content_hash
from pruning.callback import BlockPruningCallback
from pruning.data import Split, TextDataset, load_dataset
from pruning.distill import DistillationModel
from pruning.io import OUTPUT_KIND, save_pruned
from pruning.masks import BlockMask
from pruning.models import load_classifier, load_tokenizer, model_fingerprint, resolve_model_path
from pruning.progress import TrainingProgress
from pruning.pruner import BlockPruner, PruneSettings
from pruning.report import compression_summary
from pruning.settings import PruneMethod, TeacherMode, TrainBudget

__all__ = ["TrainBudget", "check_run_output", "default_cache_dir", "dense_teacher", "evaluate_accuracy",
           "masked_trainer", "run_pruning", "teacher_cache_dir", "tokenize_split"]  # fmt: skip

log = logging.getLogger(__name__)


class _Encoded(torch.utils.data.Dataset):
    def __init__(self, encodings: dict, labels: list[int]) -> None:
        self.encodings, self.labels = encodings, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        item = {key: values[index] for key, values in self.encodings.items()}
        item["labels"] = self.labels[index]
        return item


def tokenize_split(tokenizer, split: Split, max_seq_len: int) -> torch.utils.data.Dataset:
    encodings = tokenizer(split.texts, split.text_pairs, truncation=True, max_length=max_seq_len)
    return _Encoded(dict(encodings), split.labels)


def masked_trainer(model, tokenizer, train_set: torch.utils.data.Dataset, budget: TrainBudget, work_dir: str,
                   callbacks: list | None = None, max_steps: int | None = None) -> Trainer:  # fmt: skip
    """The one Trainer setup behind every training run of the toolkit (pruning runs and the sweep's proxy
    recovery): ``budget``'s batch, learning rate, weight decay and seed, ``budget.epochs`` epochs (or
    ``max_steps`` optimizer steps), on the GPU when there is one. Nothing is saved or logged by the Trainer
    itself (scratch files go to ``work_dir``); progress comes from ``callbacks`` (e.g.
    :class:`pruning.progress.TrainingProgress`) instead of its raw log dicts and bar."""
    args = TrainingArguments(
        output_dir=work_dir,
        num_train_epochs=budget.epochs,
        max_steps=max_steps if max_steps is not None else -1,
        per_device_train_batch_size=budget.batch_size,
        per_device_eval_batch_size=max(64, budget.batch_size),
        learning_rate=budget.learning_rate,
        weight_decay=budget.weight_decay,
        seed=budget.seed,
        save_strategy="no",
        eval_strategy="no",
        report_to=[],
        logging_steps=50,
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
    )
    trainer = Trainer(model=model, args=args, train_dataset=train_set, data_collator=DataCollatorWithPadding(tokenizer),
                      callbacks=callbacks)  # fmt: skip
    for builtin in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(builtin)
    return trainer


def evaluate_accuracy(trainer: Trainer, dataset: torch.utils.data.Dataset) -> float:
    prediction = trainer.predict(dataset)
    logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
    return float((np.argmax(logits, axis=-1) == prediction.label_ids).mean())


@dataclass(frozen=True)
class PruneRunResult:
    out_dir: Path
    masks: dict[str, BlockMask]
    dev_accuracy: float
    test_accuracy: float
    summary: dict
    wall_s: float


def check_run_output(model: str | Path, out_dir: str | Path, overwrite: bool = False,
                     glue_dir: str | Path | None = None, teacher: str | Path | None = None) -> list[Path]:
    """Refuse an ``out_dir`` a pruning run may not write (before anything is loaded); returns the run's inputs.

    The inputs -- the model, the GLUE directory and the teacher -- may not be ``out_dir`` or lie inside it
    (see :func:`bsp_common.outputs.check_output_dir`).
    """
    inputs = [resolve_model_path(model)] + [Path(p) for p in (glue_dir, teacher) if p]
    check_output_dir(out_dir, OUTPUT_KIND, overwrite=overwrite, inputs=inputs)
    return inputs


def default_cache_dir() -> Path:
    """Where cached dense teachers live: ``$BSP_CACHE_DIR``, else ``~/.cache/bsp-codesign``."""
    return Path(os.environ.get("BSP_CACHE_DIR") or Path.home() / ".cache" / "bsp-codesign")


def teacher_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """``<cache_dir>/teachers`` (default :func:`default_cache_dir`), refused at once if a file is in the way."""
    root = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    where = "--cache-dir" if cache_dir else ("$BSP_CACHE_DIR" if os.environ.get("BSP_CACHE_DIR") else "the cache")
    for path in (root / "teachers", root, *root.parents):
        if path.exists():
            if not path.is_dir():
                raise ValueError(f"{where}: {path} is a file, not a directory; give a directory for cached "
                                 "teachers")  # fmt: skip
            break
    return root / "teachers"


def run_pruning(
    model: str | Path,
    data: str | TextDataset,
    settings: PruneSettings,
    out_dir: str | Path,
    budget: TrainBudget | None = None,
    glue_dir: str | Path | None = None,
    overwrite: bool = False,
    teacher: str | Path | None = None,
    progress: bool = True,
    cache_dir: str | Path | None = None,
) -> PruneRunResult:
    """Prune ``model`` on ``data`` with the budget's recipe -> evaluate -> save; returns the accuracies.

    The default recipe (``budget.teacher="two-stage"``): fine-tune ``model`` densely with the same budget (the
    teacher: :func:`dense_teacher`, cached under ``cache_dir``/teachers, default :func:`default_cache_dir`),
    start from it, ramp the sparsity while distilling from it, retrain with the masks. ``teacher`` names an
    existing fine-tuned classifier directory to use instead of training one. ``budget.teacher="none"`` prunes
    ``model`` itself without a teacher (the paper's setting). ``settings.target_sparsity == 0`` with
    ``method="score"`` is a dense fine-tune (no teacher).
    ``out_dir`` is checked before anything is loaded (see :func:`pruning.io.save_pruned` for what it may be);
    the Trainer's scratch files go to a temporary directory, never into ``out_dir``.
    ``progress`` shows steps, ETA, sparsity and loss on stderr (:class:`pruning.progress.TrainingProgress`).
    """
    budget = budget or TrainBudget()
    start = time.perf_counter()
    out_dir = Path(out_dir)
    mode = TeacherMode.parse(budget.teacher, field="teacher")
    dense = settings.target_sparsity == 0 and settings.method is PruneMethod.SCORE
    teacher_cache = teacher_cache_dir(cache_dir)
    derived = teacher is None and mode is not TeacherMode.NONE and not dense
    inputs = check_run_output(model, out_dir, overwrite, glue_dir, teacher_cache if derived else teacher)
    if teacher is not None and (mode is TeacherMode.NONE or dense):
        raise ValueError(f"teacher: {str(teacher)!r} given, but this run uses none (budget.teacher="
                         f"{mode.value!r}{', a dense run' if dense else ''}); set teacher='distill' or 'two-stage'")
    dataset = load_dataset(data, glue_dir=glue_dir) if isinstance(data, str) else data
    if mode is not TeacherMode.NONE and not dense:
        if teacher is None:
            teacher = dense_teacher(model, dataset, budget, teacher_cache, progress=progress)
        if mode is TeacherMode.TWO_STAGE:
            model = teacher
    else:
        teacher = None
    tokenizer = load_tokenizer(model)
    classifier = load_classifier(model, dataset.num_labels, seed=budget.seed)
    train_set = tokenize_split(tokenizer, dataset.train.head(budget.max_train_samples), budget.max_seq_len)
    dev_set = tokenize_split(tokenizer, dataset.dev.head(budget.max_eval_samples), budget.max_seq_len)
    test_set = tokenize_split(tokenizer, dataset.test.head(budget.max_eval_samples), budget.max_seq_len)
    pruner = BlockPruner(settings)
    pruner.prepare(classifier)
    callback = BlockPruningCallback(pruner, prune_at_epoch=budget.prune_epoch, schedule=budget.schedule,
                                    start_epoch=budget.prune_start_epoch,
                                    frequency_steps=budget.prune_frequency_steps)  # fmt: skip
    trained = classifier
    if teacher is not None and (budget.distill_alpha > 0 or budget.distill_hidden_weight > 0):
        trained = DistillationModel(classifier, load_classifier(teacher, dataset.num_labels), budget.distill_alpha,
                                    budget.distill_temperature, budget.distill_hidden_weight)  # fmt: skip
    target = (f"plan of {len(settings.layer_sparsity)} layers" if settings.layer_sparsity is not None
              else f"{settings.target_sparsity:.0%}")  # fmt: skip
    label = "dense fine-tune" if dense else f"prune {settings.block} {settings.method.value} {target}"
    with tempfile.TemporaryDirectory(prefix="bsp-trainer-") as work_dir:
        trainer = masked_trainer(trained, tokenizer, train_set, budget, work_dir,
                                 callbacks=[callback, TrainingProgress(label, callback, enabled=progress)])  # fmt: skip
        trainer.train()
        dev_accuracy = evaluate_accuracy(trainer, dev_set)
        test_accuracy = evaluate_accuracy(trainer, test_set)
    masks = pruner.finalize()
    wall_s = time.perf_counter() - start
    extra = {
        "data": dataset.name,
        "dev_accuracy": dev_accuracy,
        "test_accuracy": test_accuracy,
        "train_samples": len(train_set),
        "eval_samples": len(dev_set),
        "budget": budget.__dict__,
        "teacher_dir": str(teacher) if teacher is not None else None,
        "schedule": callback.state(),
        "wall_s": wall_s,
    }
    save_pruned(out_dir, classifier, masks, settings, tokenizer=tokenizer, extra=extra, overwrite=overwrite,
                inputs=inputs)
    log.info("pruned model written to %s (dev acc %.4f)", out_dir, dev_accuracy)
    return PruneRunResult(out_dir, masks, dev_accuracy, test_accuracy, compression_summary(masks, classifier), wall_s)


DENSE_SETTINGS = PruneSettings(method="score", target_sparsity=0.0, block="1x1")  # fine-tune only


def dense_teacher(model: str | Path, data: str | TextDataset, budget: TrainBudget, cache_dir: str | Path,
                  glue_dir: str | Path | None = None, progress: bool = True) -> Path:  # fmt: skip
    """A dense fine-tuned classifier of ``model`` on ``data`` (the distillation teacher), trained once and cached.

    The cache key is the model's content fingerprint (:func:`pruning.models.model_fingerprint`), the data set
    name and the budget's training fields (the schedule and distillation fields do not apply to a dense run).
    Returns the model directory.
    """
    dataset_name = data if isinstance(data, str) else data.name
    key = content_hash({"model": model_fingerprint(model)["sha256"], "data": dataset_name,
                        "budget": {k: v for k, v in budget.__dict__.items() if k not in _STUDENT_ONLY_FIELDS}})
    out_dir = Path(cache_dir) / f"dense-{key}"
    dense_budget = replace(budget, prune_at_epoch=budget.epochs, schedule="oneshot", prune_start_epoch=0.0,
                           teacher="none", distill_alpha=0.0, distill_hidden_weight=0.0)  # fmt: skip

    def train() -> None:
        log.info("training the dense teacher once (cached in %s)", out_dir)
        run_pruning(model, data, DENSE_SETTINGS, out_dir, dense_budget, glue_dir=glue_dir, overwrite=True,
                    progress=progress)  # fmt: skip

    # processes sharing the cache (sweep workers, seeds run side by side) train it once; the others wait
    return compute_once(out_dir.with_name(f"{out_dir.name}.claim"),
                        lambda: out_dir if (out_dir / "config.json").is_file() else None, train,
                        on_wait=lambda owner: log.warning("waiting for the dense teacher (%s) from %s", out_dir,
                                                          describe_owner(owner)))


_STUDENT_ONLY_FIELDS = ("prune_at_epoch", "schedule", "prune_start_epoch", "prune_frequency_steps", "teacher",
                        "distill_alpha", "distill_temperature", "distill_hidden_weight")  # fmt: skip
