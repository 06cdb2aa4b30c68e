"""Model registry: ``register_model`` (decorator on a builder), ``create_model``, ``list_models``."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable

from torch import nn

__all__ = ["create_model", "list_models", "register_model"]

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register a builder under its function name."""
    if fn.__name__ in _BUILDERS:
        raise ValueError(f"model {fn.__name__!r} is registered twice")
    _BUILDERS[fn.__name__] = fn
    return fn


def list_models(pattern: str = "*") -> list[str]:
    """Names of the registered networks matching a shell-style pattern, sorted."""
    return sorted(name for name in _BUILDERS if fnmatch.fnmatch(name, pattern))


def create_model(name: str, **kwargs) -> nn.Module:
    """Build a registered network by name; kwargs go to its builder (e.g. num_classes)."""
    if name not in _BUILDERS:
        raise ValueError(f"name: unknown model {name!r}; expected one of {list_models()}")
    return _BUILDERS[name](**kwargs)
