"""Torch-free layer layouts of encoder families: the module path of each role (Q, K, V, attention output,
FFN in, FFN out) inside layer ``i``. Used by :mod:`pruning.targets` to find Linear layers and by
:mod:`hwsim.workload` to match masks to GEMMs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["LAYOUTS", "ROLES", "EncoderLayout", "compile_pattern", "layout_for"]

ROLES = ("q", "k", "v", "attn_out", "ffn_in", "ffn_out")


@dataclass(frozen=True)
class EncoderLayout:
    """Module names inside layer ``i`` of an encoder: ``{layer_path}.{i}.{role_path}``."""

    layer_path: str
    role_paths: dict[str, str]

    def pattern(self, role: str | None = None) -> re.Pattern[str]:
        """Regex over qualified module names; group 1 is the layer index."""
        roles = [role] if role else list(self.role_paths)
        alternatives = "|".join(re.escape(self.role_paths[r]) for r in roles)
        return re.compile(rf"(?:^|.*\.){re.escape(self.layer_path)}\.(\d+)\.(?:{alternatives})$")


_BERT_LIKE = EncoderLayout(
    "encoder.layer",
    {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "attn_out": "attention.output.dense",
        "ffn_in": "intermediate.dense",
        "ffn_out": "output.dense",
    },
)
LAYOUTS: dict[str, EncoderLayout] = {
    "bert": _BERT_LIKE,
    "roberta": _BERT_LIKE,
    "xlm-roberta": _BERT_LIKE,
    "distilbert": EncoderLayout(
        "transformer.layer",
        {
            "q": "attention.q_lin",
            "k": "attention.k_lin",
            "v": "attention.v_lin",
            "attn_out": "attention.out_lin",
            "ffn_in": "ffn.lin1",
            "ffn_out": "ffn.lin2",
        },
    ),
}


def layout_for(model_type: str) -> EncoderLayout:
    try:
        return LAYOUTS[model_type]
    except KeyError:
        raise ValueError(
            f"model_type {model_type!r} has no built-in layer layout (known: {', '.join(sorted(LAYOUTS))}); "
            "pass targets=[regex, ...] naming the Linear modules to prune"
        ) from None


def compile_pattern(text: str, field: str) -> re.Pattern[str]:
    """``re.compile`` with an error that names the option the pattern came from."""
    try:
        return re.compile(text)
    except re.error as err:
        raise ValueError(f"{field}: {text!r} is not a valid regular expression ({err})") from None
