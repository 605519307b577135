"""Shared fixtures: tiny randomly initialised encoders built in code (no network)."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True, scope="session")
def _teacher_cache(tmp_path_factory):
    """Dense teachers that tests train go to a session temp directory, never the user's ~/.cache."""
    previous = os.environ.get("BSP_CACHE_DIR")
    os.environ["BSP_CACHE_DIR"] = str(tmp_path_factory.mktemp("bsp-cache"))
    yield
    if previous is None:
        os.environ.pop("BSP_CACHE_DIR", None)
    else:
        os.environ["BSP_CACHE_DIR"] = previous


def tiny_config(model_type: str = "bert", num_labels: int = 3, layers: int = 2):
    from transformers import BertConfig, DistilBertConfig, RobertaConfig

    common = {"vocab_size": 99, "num_labels": num_labels, "max_position_embeddings": 64}
    if model_type == "distilbert":
        return DistilBertConfig(dim=32, n_layers=layers, n_heads=2, hidden_dim=64, **common)
    cls = {"bert": BertConfig, "roberta": RobertaConfig}[model_type]
    return cls(hidden_size=32, num_hidden_layers=layers, num_attention_heads=2, intermediate_size=64, **common)


def tiny_classifier(model_type: str = "bert", seed: int = 0, **kwargs):
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_config(tiny_config(model_type, **kwargs))
    model.eval()
    return model


@pytest.fixture
def bert_tiny():
    return tiny_classifier("bert")


@pytest.fixture
def token_batch():
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(3, 99, (4, 12), generator=generator)
    return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}


def tiny_text_task(root):
    """A tiny BERT classifier with a word-level tokenizer, plus a GLUE SST-2 fixture, under ``root``.

    Returns ``(model_dir, glue_dir)``; ``bsp prune --data glue:sst-2 --glue-dir glue_dir`` trains on it in seconds.
    """
    from transformers import BertTokenizer

    words = ["good", "bad", "movie", "plot", "great", "awful", "fine", "dull"]
    root.mkdir(parents=True, exist_ok=True)
    vocab = root / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    model_dir = root / "tiny"
    tiny_classifier("bert", num_labels=2).save_pretrained(model_dir)
    BertTokenizer(str(vocab)).save_pretrained(model_dir)
    glue = root / "glue" / "SST-2"
    glue.mkdir(parents=True)
    rows = [("good movie", "1"), ("bad plot", "0"), ("great plot", "1"), ("awful movie", "0")] * 4
    for name, data in (("train.tsv", rows), ("dev.tsv", rows[:8])):
        (glue / name).write_text("sentence\tlabel\n" + "".join(f"{s}\t{y}\n" for s, y in data))
    return model_dir, root / "glue"
