"""Lazy package exports (PEP 562): ``from pkg import Name`` imports the defining module on first use only.

Keeps light entry points light: ``import hwsim`` or ``bsp --help`` must not pay for torch because a package
``__init__`` re-exports a torch-backed name.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable

__all__ = ["lazy_exports"]


class _LazyPackage(types.ModuleType):
    """A package whose exported names may share their submodule's name (``analysis.sweep`` the function, in
    ``analysis/sweep.py``): importing the submodule binds it on the package, which would hide the function
    for every later ``from analysis import sweep``; the function is bound instead. The submodule stays
    importable as ``from analysis.sweep import ...`` (``sys.modules``)."""

    def __setattr__(self, name: str, value) -> None:
        exports = self.__dict__.get("_lazy_exports", {})
        if isinstance(value, types.ModuleType) and exports.get(name) == value.__name__ == f"{self.__name__}.{name}":
            value = getattr(value, name)
        super().__setattr__(name, value)


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

    module = sys.modules.get(package)
    if module is not None and module.__dict__ is namespace:  # called from the package's own __init__
        namespace["_lazy_exports"] = exports
        module.__class__ = _LazyPackage
    return module_getattr, module_dir
