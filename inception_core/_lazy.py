"""Package attributes imported on first use (PEP 562), so that importing a package, and with it
``inception-core --help``, does not import torch."""

from __future__ import annotations

import importlib
import sys


def lazy_exports(package: str, exports: dict[str, str | None]):
    """``(__getattr__, __dir__)`` for ``package``'s namespace.

    Args:
        package: the package's ``__name__``.
        exports: public name -> the module that defines it; ``None`` when the name is a submodule of
            ``package``.
    """

    def __getattr__(name: str):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = exports[name]
        if module is None:
            return importlib.import_module(f"{package}.{name}")  # the import binds it on the package
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        namespace = vars(sys.modules[package])
        return sorted(set(namespace) | set(exports) | set(namespace.get("__all__", ())))

    return __getattr__, __dir__
