"""Lazy package exports (PEP 562): ``from pkg import Name`` imports the defining module on first use only.

Keeps light entry points light: ``import hwsim`` or ``bsp --help`` must not pay for torch because a package
``__init__`` re-exports a torch-backed name.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: dict[str, str], namespace: dict) -> tuple[Callable, Callable]:
    """``(__getattr__, __dir__)`` for a package whose names live in submodules: ``exports`` maps name -> module.

    >>> getattr_, dir_ = lazy_exports("pkg", {"dumps": "bsp_common.strict_json"}, {})
    >>> getattr_("dumps")({"x": float("nan")})
    '{"x": null}'
    """

    def module_getattr(name: str):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name]), name)
        namespace[name] = value  # later look-ups bypass __getattr__
        return value

    def module_dir() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return module_getattr, module_dir
