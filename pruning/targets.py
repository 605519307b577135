"""Which ``nn.Linear`` layers of an encoder are pruned, and what role each plays.

Per model family an :class:`EncoderLayout` names the module path of each role in one encoder layer
(Q, K, V, attention output, FFN in, FFN out). The default prune targets are exactly those six roles
of every layer; classifier, pooler and embeddings are never pruned by default. Any other model can be
pruned by passing regular expressions over module names (``targets=[r"layers\\.\\d+\\.mlp\\.fc\\d"]``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from torch import nn

__all__ = ["LAYOUTS", "ROLES", "EncoderLayout", "compile_pattern", "find_targets", "layout_for"]

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


def find_targets(model: nn.Module, targets: list[str] | tuple[str, ...] | None = None) -> dict[str, nn.Linear]:
    """Linear modules to prune, keyed by qualified module name, in model order.

    ``targets`` are regular expressions matched (``re.search``) against module names; ``None`` uses the
    built-in layout of ``model.config.model_type``. A pattern that matches no Linear is an error.
    """
    linears = {name: m for name, m in model.named_modules() if isinstance(m, nn.Linear)}
    if targets is None:
        model_type = getattr(getattr(model, "config", None), "model_type", None)
        patterns = [layout_for(str(model_type)).pattern()]
        found = {name: m for name, m in linears.items() if patterns[0].match(name)}
        if not found:
            raise ValueError(f"no prunable Linear layers found in this {model_type} model")
        return found
    found = {}
    for text in targets:
        pattern = compile_pattern(text, "targets")
        matched = {name: m for name, m in linears.items() if pattern.search(name)}
        if not matched:
            sample = ", ".join(list(linears)[:5])
            raise ValueError(f"targets: pattern {text!r} matches no Linear module (Linear modules include: {sample})")
        found.update(matched)
    return {name: linears[name] for name in linears if name in found}
