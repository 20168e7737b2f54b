# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Explicit model registry: names map to factory functions; configs are plain dicts.

A model config is ``{"type": <registered name>, **kwargs}``, e.g. ``{"type": "stir",
"window_length": 41}`` or ``{"type": "stir_61"}``. Factories register themselves with
``@register_model`` in the module that defines them; ``stir_ros.models`` imports those modules.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from torch import nn

from stir_ros.core.errors import ConfigError

__all__ = ["register_model", "build_model", "list_models", "count_parameters"]

_Factory = TypeVar("_Factory", bound=Callable[..., nn.Module])
_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: _Factory) -> _Factory:
    """Decorator: register ``fn`` under its ``__name__``; a name can be registered once."""
    name = fn.__name__
    if name in _REGISTRY and _REGISTRY[name] is not fn:
        raise ValueError(f"model {name!r} is already registered")
    _REGISTRY[name] = fn
    return fn


def list_models() -> list[str]:
    """Registered model names, sorted."""
    return sorted(_REGISTRY)


def build_model(config: Mapping[str, Any]) -> nn.Module:
    """Build a model from ``{"type": name, **kwargs}``.

    Raises:
        ConfigError: The type is missing or unknown, or the factory rejects the kwargs.
    """
    if not isinstance(config, Mapping) or "type" not in config:
        raise ConfigError(f"model config must be a mapping with a 'type' key, got {config!r}")
    kwargs = dict(config)
    name = kwargs.pop("type")
    factory = _REGISTRY.get(name)
    if factory is None:
        raise ConfigError(f"unknown model type {name!r}; registered: {', '.join(list_models())}")
    try:
        return factory(**kwargs)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"cannot build model {name!r} from {dict(config)!r}: {err}") from err


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements (buffers such as batch-norm statistics excluded)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
