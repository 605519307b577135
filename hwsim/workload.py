"""Workload: the ordered ops of one encoder forward pass, with block masks on the weight GEMMs.

GEMM convention used everywhere in hwsim: ``out[M, N] = A[M, K] @ B[K, N]`` where for a Linear layer
``A`` is the activations (``M = batch * seq_len`` tokens, ``K = in_features``) and ``B = W.T`` with
``W[N, K] = W[out_features, in_features]``. A :class:`Gemm`'s ``mask`` is the dense element mask of
``W`` (``[N, K]``, True = kept); ``None`` means dense. Attention products are dense activation-activation
GEMMs repeated ``repeat = batch * heads`` times.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

import numpy as np

from bsp_common.checks import is_positive_pair
from pruning.layouts import ROLES, layout_for

if TYPE_CHECKING:  # masks are used through .dense(), .block and .weight_shape only: no torch import here
    from pruning.masks import BlockMask

__all__ = ["MAX_BATCH", "MAX_GEMM_DIM", "MAX_SEQ_LEN", "Gemm", "VectorKind", "VectorOp", "Workload", "build_workload",
           "read_hf_config"]


class VectorKind(enum.StrEnum):
    SOFTMAX = "softmax"
    GELU = "gelu"
    LAYERNORM = "layernorm"
    ADD = "add"


MAX_LAYERS = 10_000  # encoder layers in an HF config: ~100x the largest real encoder, seconds to simulate
MAX_GEMM_DIM = 1 << 24  # 16.7 M per dimension: far above any encoder; keeps M*K*N inside int64
MAX_SEQ_LEN = 1 << 16  # tokens per sequence; longer sequences are no encoder workload
MAX_BATCH = 1 << 12  # sequences per inference


@dataclass(frozen=True, eq=False)
class Gemm:
    """``out[M, N] = A[M, K] @ B[K, N]``, run ``repeat`` times; ``mask``: kept weights ``[N, K]`` or None."""

    name: str
    M: int
    K: int
    N: int
    layer: int = 0
    mask: np.ndarray | None = None
    block: tuple[int, int] = (1, 1)  # hardware block (rows over N, cols over K) of the mask, for index costs
    weight_bits: int = 8
    act_bits: int = 8
    repeat: int = 1
    b_is_weight: bool = True  # False for activation x activation (attention) products

    def __post_init__(self) -> None:
        for dim in ("M", "K", "N", "repeat"):
            value = getattr(self, dim)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or not 0 < value <= MAX_GEMM_DIM:
                raise ValueError(f"Gemm {self.name!r}: {dim} must be an integer in [1, {MAX_GEMM_DIM}], got {value!r}")
        for bits in ("weight_bits", "act_bits"):
            value = getattr(self, bits)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or not 1 <= value <= 64:
                raise ValueError(f"Gemm {self.name!r}: {bits} must be an integer in [1, 64], got {value!r}")
        block = self.block
        if not is_positive_pair(block):
            raise ValueError(f"Gemm {self.name!r}: block must be (rows, cols) of positive integers, e.g. (16, 16), "
                             f"got {block!r}")  # fmt: skip
        object.__setattr__(self, "block", (int(block[0]), int(block[1])))
        if self.mask is not None:
            mask = np.array(self.mask, dtype=bool)  # a private, read-only copy: the content key below stays true
            mask.setflags(write=False)
            if mask.shape != (self.N, self.K):
                raise ValueError(
                    f"Gemm {self.name!r}: mask shape {mask.shape} must equal the weight shape (N, K) = "
                    f"({self.N}, {self.K})"
                )
            object.__setattr__(self, "mask", mask)

    @functools.cached_property
    def content_key(self) -> tuple:
        """What the simulated timing of this GEMM depends on (shape, block, bits, kind, the mask's hash)."""
        mask = self.mask
        digest = None if mask is None else hashlib.blake2b(np.packbits(mask).tobytes(), digest_size=16).digest()
        return (self.M, self.K, self.N, self.block, self.weight_bits, self.act_bits, self.b_is_weight, digest)

    @functools.cached_property
    def kept_weights(self) -> int:
        """Weights the mask keeps (``N * K`` without a mask)."""
        return self.N * self.K if self.mask is None else int(self.mask.sum())

    @functools.cached_property
    def block_occupancy(self) -> np.ndarray | None:
        """Hardware blocks (``block``) that keep any weight, ``[ceil(N/rows), ceil(K/cols)]``; None without a mask."""
        from pruning.spec import block_occupancy

        if self.mask is None:
            return None
        occupancy = block_occupancy(self.mask, self.block)
        occupancy.setflags(write=False)  # shared by every plan of this GEMM
        return occupancy

    @property
    def macs(self) -> int:
        return self.M * self.K * self.N * self.repeat

    @property
    def nonzero_macs(self) -> int:
        nnz = self.N * self.K if self.mask is None else int(self.mask.sum())
        return self.M * nnz * self.repeat


@dataclass(frozen=True)
class VectorOp:
    name: str
    kind: VectorKind
    elements: int
    layer: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", VectorKind(self.kind))
        if not isinstance(self.elements, int) or self.elements <= 0:
            raise ValueError(f"VectorOp {self.name!r}: elements must be a positive integer, got {self.elements!r}")


@dataclass(frozen=True)
class Workload:
    ops: tuple[Gemm | VectorOp, ...]
    batch: int = 1
    seq_len: int = 128
    meta: dict = field(default_factory=dict)

    @property
    def gemms(self) -> list[Gemm]:
        return [op for op in self.ops if isinstance(op, Gemm)]


def named_model_configs() -> list[str]:
    """Names of the model configs shipped for offline workloads (``read_hf_config("bert-base-uncased")``): the
    published ``config.json`` of BERT-base/large, RoBERTa-base, DistilBERT and all-MiniLM-L6-v2 -- shapes only,
    no weights (simulate them dense, or with masks of your own)."""
    return sorted(p.name.removesuffix(".json") for p in _MODEL_CONFIGS.iterdir() if p.name.endswith(".json"))


_MODEL_CONFIGS = resources.files("hwsim") / "model_configs"


def read_hf_config(path: str | Path) -> SimpleNamespace:
    """The fields of a HF ``config.json`` (a file, or a directory holding one), or of a shipped model config by
    name (:func:`named_model_configs`; a path that exists wins), as attributes; json only.

    :func:`build_workload` needs the layer count, widths and ``model_type``; reading them with ``json``
    keeps ``bsp simulate --hf-config`` free of transformers.

    >>> read_hf_config("bert-base-uncased").num_hidden_layers
    12
    """
    if isinstance(path, str) and not Path(path).exists():
        named = {name.lower(): name for name in named_model_configs()}
        if path.lower() in named:
            return SimpleNamespace(**json.loads((_MODEL_CONFIGS / f"{named[path.lower()]}.json").read_text()))
        if not Path(path).suffix:  # a name rather than a file path: say which names there are
            raise FileNotFoundError(f"hf config: {path!r} is neither a file nor a shipped model config "
                                    f"({', '.join(named_model_configs())})")  # fmt: skip
    path = Path(path)
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"hf config: no file {path}")
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as err:  # RecursionError: nested thousands deep
        raise ValueError(f"hf config {path}: not a JSON object ({str(err)[:120]})") from None
    if not isinstance(data, dict):
        raise ValueError(f"hf config {path}: not a JSON object")
    return SimpleNamespace(**{str(k): v for k, v in data.items()})


def _config_dims(hf_config) -> tuple[int, int, int, int]:
    """(layers, hidden, heads, intermediate) for BERT/RoBERTa/DistilBERT-style configs."""
    names = [("num_hidden_layers", "n_layers"), ("hidden_size", "dim"), ("num_attention_heads", "n_heads"),
             ("intermediate_size", "hidden_dim")]  # fmt: skip
    values = []
    for options in names:
        value = next((getattr(hf_config, n) for n in options if hasattr(hf_config, n)), None)
        if value is None:
            raise ValueError(f"hf config: none of {options} found; is this a BERT-like encoder config?")
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_GEMM_DIM:
            raise ValueError(f"hf config: {options[0]} must be a positive integer, got {str(value)[:40]!r}")
        values.append(value)
    layers, hidden, heads, _ = values
    if layers > MAX_LAYERS:
        raise ValueError(f"hf config: num_hidden_layers must be at most {MAX_LAYERS:,} (the largest encoders have "
                         f"~100), got {layers:,}")  # fmt: skip
    if hidden % heads:
        raise ValueError(f"hf config: hidden_size {hidden} is not a multiple of num_attention_heads {heads} "
                         "(every head must have the same width); the model could not be built")  # fmt: skip
    return tuple(values)


def _mask_for(masks: Mapping[str, BlockMask], pattern, layer: int) -> BlockMask | None:
    for name, mask in masks.items():
        match = pattern.match(name.removesuffix(".weight"))
        if match and int(match.group(1)) == layer:
            return mask
    return None


def build_workload(
    hf_config,
    masks: Mapping[str, BlockMask] | None = None,
    batch: int = 1,
    seq_len: int = 128,
    weight_bits: int = 8,
    act_bits: int = 8,
) -> Workload:
    """Ops of one forward pass of the encoder stack (embeddings and classifier head excluded).

    Per layer: Q, K, V projections; scores ``Q K^T`` and context ``P V`` per head (dense, ``repeat =
    batch * heads``); softmax; attention output projection; residual add; LayerNorm; FFN in; GELU;
    FFN out; residual add; LayerNorm. Masks are matched to layers by the model family's layout.
    """
    for label, value, upper in (("batch", batch, MAX_BATCH), ("seq_len", seq_len, MAX_SEQ_LEN)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= upper:
            raise ValueError(f"{label}: must be an integer in 1..{upper}, got {value!r}")
    layers, hidden, heads, intermediate = _config_dims(hf_config)
    if masks is not None and not isinstance(masks, Mapping):
        raise TypeError(f"masks: expected a mapping of weight name -> BlockMask (pruning.load_masks reads a mask "
                        f"file), got {type(masks).__name__}")  # fmt: skip
    masks = dict(masks or {})
    # duck-typed: importing pruning.masks here would pull torch into every simulation
    wrong = [(name, mask) for name, mask in masks.items()
             if not all(hasattr(mask, attribute) for attribute in ("group_mask", "block", "dense"))]  # fmt: skip
    if wrong:
        name, mask = wrong[0]
        raise TypeError(f"masks[{name!r}]: expected a BlockMask (pruning.load_masks reads a mask file), got "
                        f"{type(mask).__name__} {str(mask)[:40]!r}")  # fmt: skip
    layout = layout_for(getattr(hf_config, "model_type", "bert")) if masks else None
    if masks:
        matched = {n for n in masks for r in ROLES if layout.pattern(r).match(n.removesuffix(".weight"))}
        unmatched = sorted(set(masks) - matched)
        if unmatched:
            raise ValueError(f"masks: {unmatched[:3]} match no Q/K/V/attn_out/ffn layer of this {hf_config.model_type}")
    tokens = batch * seq_len
    head_dim = hidden // heads
    shapes = {"q": (hidden, hidden), "k": (hidden, hidden), "v": (hidden, hidden), "attn_out": (hidden, hidden),
              "ffn_in": (intermediate, hidden), "ffn_out": (hidden, intermediate)}  # fmt: skip
    ops: list[Gemm | VectorOp] = []

    def linear(layer: int, role: str) -> Gemm:
        n_out, n_in = shapes[role]
        mask = _mask_for(masks, layout.pattern(role), layer) if masks else None
        if mask is not None and mask.weight_shape != (n_out, n_in):
            raise ValueError(
                f"mask for layer {layer} {role}: weight shape {mask.weight_shape} != model's ({n_out}, {n_in})"
            )
        return Gemm(
            f"layer{layer}.{role}", M=tokens, K=n_in, N=n_out, layer=layer,
            mask=None if mask is None else np.asarray(mask.dense()),
            block=(1, 1) if mask is None else (mask.block.rows, mask.block.cols),
            weight_bits=weight_bits, act_bits=act_bits,
        )  # fmt: skip

    for i in range(layers):
        ops += [linear(i, "q"), linear(i, "k"), linear(i, "v")]
        attention = {"weight_bits": act_bits, "act_bits": act_bits, "repeat": batch * heads, "b_is_weight": False}
        ops.append(Gemm(f"layer{i}.scores", M=seq_len, K=head_dim, N=seq_len, layer=i, **attention))
        ops.append(VectorOp(f"layer{i}.softmax", VectorKind.SOFTMAX, batch * heads * seq_len * seq_len, i))
        ops.append(Gemm(f"layer{i}.context", M=seq_len, K=seq_len, N=head_dim, layer=i, **attention))
        ops.append(linear(i, "attn_out"))
        ops.append(VectorOp(f"layer{i}.attn_residual", VectorKind.ADD, tokens * hidden, i))
        ops.append(VectorOp(f"layer{i}.attn_layernorm", VectorKind.LAYERNORM, tokens * hidden, i))
        ops.append(linear(i, "ffn_in"))
        ops.append(VectorOp(f"layer{i}.gelu", VectorKind.GELU, tokens * intermediate, i))
        ops.append(linear(i, "ffn_out"))
        ops.append(VectorOp(f"layer{i}.ffn_residual", VectorKind.ADD, tokens * hidden, i))
        ops.append(VectorOp(f"layer{i}.ffn_layernorm", VectorKind.LAYERNORM, tokens * hidden, i))
    meta = {"model_type": getattr(hf_config, "model_type", None), "layers": layers, "hidden": hidden}
    return Workload(tuple(ops), batch=batch, seq_len=seq_len, meta=meta)
