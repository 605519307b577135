"""Save and load a pruned model: ``save_pretrained`` files + ``block_masks.safetensors`` + ``pruning_config.json``.

The directory is written to a temporary sibling and renamed at the end, so an interrupted save never
leaves a half-written model behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, PreTrainedModel

from pruning.masking import attach_masks, resolve_weight_owner
from pruning.masks import MASKS_FILENAME, BlockMask, load_masks, save_masks
from pruning.pruner import PruneSettings
from pruning.report import compression_summary, layer_report

__all__ = ["PRUNING_CONFIG_FILENAME", "atomic_directory", "load_pruned", "save_pruned"]

PRUNING_CONFIG_FILENAME = "pruning_config.json"


@contextmanager
def atomic_directory(out_dir: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``out_dir`` to fill; on success it replaces ``out_dir``, on error it is removed."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        yield tmp_dir
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp_dir, out_dir)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise


def save_pruned(
    out_dir: str | Path,
    model: PreTrainedModel,
    masks: Mapping[str, BlockMask],
    settings: PruneSettings,
    tokenizer=None,
    extra: Mapping | None = None,
) -> Path:
    """Write the (finalized) model, its masks and a JSON record of settings and achieved sparsity.

    ``extra`` (e.g. accuracy, wall time) is stored under ``"extra"`` in ``pruning_config.json``.
    An existing ``out_dir`` is replaced.
    """
    out_dir = Path(out_dir)
    with atomic_directory(out_dir) as tmp_dir:
        model.save_pretrained(tmp_dir, safe_serialization=True)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp_dir)
        save_masks(dict(masks), tmp_dir / MASKS_FILENAME)
        report = layer_report(masks)
        record = {
            "settings": settings.to_json_dict(),
            "summary": compression_summary(masks, model),
            "layers": {
                name: {"sparsity": row.sparsity, "compression_rate": row.compression_rate}
                for name, row in report.iterrows()
            },
            "extra": dict(extra or {}),
        }
        (tmp_dir / PRUNING_CONFIG_FILENAME).write_text(json.dumps(record, indent=2, default=str))
    return out_dir


def load_pruned(model_dir: str | Path, attach: bool = True) -> tuple[PreTrainedModel, dict[str, BlockMask], dict]:
    """Load a directory written by :func:`save_pruned`.

    Returns ``(model, masks, pruning_record)``. With ``attach=True`` the masks are re-attached as
    parametrizations so further training keeps pruned weights at zero. A mask whose shape does not
    match its layer, or whose pruned positions hold non-zero weights, is an error.
    """
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"model: {model_dir} has no config.json; is it a saved model directory?")
    config = AutoConfig.from_pretrained(model_dir, local_files_only=True)
    architectures = getattr(config, "architectures", None) or []
    loader = (
        AutoModelForSequenceClassification
        if any(a.endswith("ForSequenceClassification") for a in architectures)
        else AutoModel
    )
    model = loader.from_pretrained(model_dir, local_files_only=True)
    masks = load_masks(model_dir / MASKS_FILENAME)
    weights = {name: resolve_weight_owner(model, name).weight for name in masks}
    for name, mask in masks.items():
        mask.check_weight(name, tuple(weights[name].shape))
    for name, mask in masks.items():
        weight = weights[name]
        stray = int(torch.count_nonzero(weight.detach()[~mask.dense()]))
        if stray:
            raise ValueError(
                f"mask for {name!r} does not belong to this model: {stray} weights in pruned positions are non-zero"
            )
    record_path = model_dir / PRUNING_CONFIG_FILENAME
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    if attach:
        attach_masks(model, masks)
    return model, masks, record
