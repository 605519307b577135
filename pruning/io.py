"""Save and load a pruned model: ``save_pretrained`` files + ``block_masks.safetensors`` + ``pruning_config.json``.

The directory is written to a temporary sibling and renamed at the end (:mod:`bsp_common.outputs`), so an
interrupted save never leaves a half-written model behind, and a directory bsp did not write is never replaced.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, PreTrainedModel

from bsp_common import strict_json
from bsp_common.outputs import atomic_output_dir
from bsp_common.safe_yaml import short_repr
from pruning.masking import attach_masks, resolve_weight_owner
from pruning.masks import MASKS_FILENAME, BlockMask, load_masks, save_masks
from pruning.models import quiet_loading
from pruning.pruner import PruneSettings
from pruning.report import compression_summary, layer_report
from pruning.spec import PRUNING_CONFIG_FILENAME

__all__ = ["OUTPUT_KIND", "PRUNING_CONFIG_FILENAME", "check_masks_against_weights", "load_pruned",
           "load_pruned_masks", "read_run_record", "save_pruned"]

OUTPUT_KIND = "pruned-model"  # the bsp output marker kind of a save_pruned directory


def save_pruned(
    out_dir: str | Path,
    model: PreTrainedModel,
    masks: Mapping[str, BlockMask],
    settings: PruneSettings,
    tokenizer=None,
    extra: Mapping | None = None,
    overwrite: bool = False,
    inputs: Iterable[str | Path] = (),
) -> Path:
    """Write the (finalized) model, its masks and a JSON record of settings and achieved sparsity.

    ``extra`` (e.g. accuracy, wall time) is stored under ``"extra"`` in ``pruning_config.json``.
    ``out_dir`` must be new, empty, or (with ``overwrite=True``) an earlier ``save_pruned`` output, which is
    then replaced atomically; it may not be one of ``inputs`` (see :mod:`bsp_common.outputs`).
    """
    out_dir = Path(out_dir)
    with atomic_output_dir(out_dir, OUTPUT_KIND, overwrite=overwrite, inputs=inputs) as tmp_dir:
        with quiet_loading():  # no "Writing model shards" bar amid the command's own output
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
        (tmp_dir / PRUNING_CONFIG_FILENAME).write_text(strict_json.dumps(record, indent=2))
    return out_dir


def _read_config(model_dir: Path):
    path = model_dir / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"model: {model_dir} has no config.json; is it a saved model directory?")
    try:
        json.loads(path.read_text(encoding="utf-8"))
        return AutoConfig.from_pretrained(model_dir, local_files_only=True)
    except (ValueError, OSError, UnicodeDecodeError, RecursionError) as err:  # RecursionError: nested thousands deep
        raise ValueError(f"model: {path} is not a readable model config ({short_repr(str(err))[1:-1]})") from None


def read_run_record(model_dir: str | Path) -> dict:
    """The ``pruning_config.json`` record of a saved run (settings, summary, ``extra`` with accuracies); ``{}``
    for a directory without one."""
    model_dir = Path(model_dir)
    path = model_dir / PRUNING_CONFIG_FILENAME
    if not path.is_file():
        return {}
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as err:
        raise ValueError(f"model: {path} is not valid JSON ({err})") from None
    if not isinstance(record, dict):
        raise ValueError(f"model: {path} must hold a JSON object, got {type(record).__name__}")
    return record


def check_masks_against_weights(masks: Mapping[str, BlockMask], weights: Mapping[str, torch.Tensor],
                                source: str) -> None:  # fmt: skip
    """Every mask must name a weight of its shape whose pruned positions are exactly zero."""
    for name, mask in masks.items():  # every shape first: a wrong model shows as such, not as stray weights
        if name not in weights:
            raise ValueError(f"masks: {name!r} is not a weight of {source}")
        mask.check_weight(name, tuple(weights[name].shape))
    for name, mask in masks.items():
        stray = int(torch.count_nonzero(weights[name].detach()[~mask.dense()]))
        if stray:
            raise ValueError(
                f"masks: {source} does not match its masks: {stray} weights of {name!r} in pruned positions are "
                "non-zero (weights changed after pruning, or masks from another model)"
            )


def load_pruned_masks(model_dir: str | Path) -> dict[str, BlockMask]:
    """The block masks of a :func:`save_pruned` directory, checked against its saved weights (no model built).

    A directory with a ``pruning_config.json`` but no mask file is an error; so are masks that do not fit
    the weights (see :func:`check_masks_against_weights`). Weights are read from ``model.safetensors``.
    """
    model_dir = Path(model_dir)
    if not (model_dir / MASKS_FILENAME).is_file():
        raise FileNotFoundError(f"masks: {model_dir} has no {MASKS_FILENAME}" + (
            f" although its {PRUNING_CONFIG_FILENAME} says it was pruned" if read_run_record(model_dir) else ""))
    masks = load_masks(model_dir)
    weights_path = model_dir / "model.safetensors"
    if not weights_path.is_file():
        raise FileNotFoundError(f"model: {model_dir} has no model.safetensors to check its masks against")
    try:
        with safe_open(str(weights_path), framework="pt") as handle:
            keys = set(handle.keys())
            weights = {name: handle.get_tensor(name) for name in masks if name in keys}
    except (SafetensorError, OSError) as err:
        raise ValueError(f"model: {weights_path} is not a readable safetensors file ({err})") from None
    check_masks_against_weights(masks, weights, str(weights_path))
    return masks


def load_pruned(model_dir: str | Path, attach: bool = True) -> tuple[PreTrainedModel, dict[str, BlockMask], dict]:
    """Load a directory written by :func:`save_pruned`.

    Returns ``(model, masks, pruning_record)``. With ``attach=True`` the masks are re-attached as
    parametrizations so further training keeps pruned weights at zero. A mask whose shape does not
    match its layer, or whose pruned positions hold non-zero weights, is an error; so are unreadable
    config, weight and record files (the message names the file).
    """
    model_dir = Path(model_dir)
    config = _read_config(model_dir)
    architectures = getattr(config, "architectures", None) or []
    loader = (
        AutoModelForSequenceClassification
        if any(a.endswith("ForSequenceClassification") for a in architectures)
        else AutoModel
    )
    try:
        with quiet_loading():  # the keys are checked against the masks below; no per-load bar in notebooks
            model = loader.from_pretrained(model_dir, local_files_only=True)
    except (OSError, ValueError, RuntimeError, SafetensorError) as err:  # e.g. a truncated model.safetensors
        raise ValueError(f"model: cannot load the weights in {model_dir} ({short_repr(str(err))[1:-1]})") from None
    masks = load_masks(model_dir / MASKS_FILENAME)
    weights = {name: resolve_weight_owner(model, name).weight for name in masks}
    check_masks_against_weights(masks, weights, str(model_dir))
    record = read_run_record(model_dir)
    if attach:
        attach_masks(model, masks)
    return model, masks, record
