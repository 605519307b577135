"""Which ``nn.Linear`` layers of an encoder are pruned, and what role each plays.

Per model family an :class:`EncoderLayout` names the module path of each role in one encoder layer
(Q, K, V, attention output, FFN in, FFN out). The default prune targets are exactly those six roles
of every layer; classifier, pooler and embeddings are never pruned by default. Any other model can be
pruned by passing regular expressions over module names (``targets=[r"layers\\.\\d+\\.mlp\\.fc\\d"]``).
"""

from __future__ import annotations

from torch import nn

from pruning.layouts import LAYOUTS, ROLES, EncoderLayout, compile_pattern, layout_for

__all__ = ["LAYOUTS", "ROLES", "EncoderLayout", "compile_pattern", "find_targets", "layout_for"]


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
