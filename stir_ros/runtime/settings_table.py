# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Settings dataclasses whose defaults come from the parameter table, written there once.

:func:`defaults_from_table` fills in a settings class's defaults from the parameter table
(:mod:`stir_ros.runtime.parameters`: the values the node declares) and refuses a class whose fields
are not exactly the table's parameters; :func:`check_bounds` checks every number of a settings
object against :data:`stir_ros.core.limits.PARAMETER_BOUNDS`. Pure Python.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import fields
from typing import Any, TypeVar

from stir_ros.core.limits import check_parameter
from stir_ros.runtime.parameters import ParamSpec

__all__ = ["check_bounds", "defaults_from_table"]

T = TypeVar("T", bound=type)

#: The annotation each parameter type reads as (``from __future__ import annotations``: strings).
_TYPE_NAMES = {bool: "bool", int: "int", float: "float", str: "str"}


def defaults_from_table(specs: Sequence[ParamSpec]) -> Callable[[T], T]:
    """Class decorator, applied below ``@dataclass``: each annotated field gets its table default.

    Raises:
        TypeError: If the class's fields are not the table's parameters, or a field's annotation
            is not its default's type (when the class is defined, so at import).
    """
    table = {spec.name: spec.default for spec in specs}

    def fill(cls: T) -> T:
        annotations = dict(cls.__dict__.get("__annotations__", {}))
        missing, extra = sorted(set(table) - set(annotations)), sorted(set(annotations) - set(table))
        if missing or extra:
            raise TypeError(f"{cls.__name__} must have the table's parameters as fields: missing {missing}, extra {extra}")
        for name, default in table.items():
            expected = _TYPE_NAMES[type(default)]
            if str(annotations[name]) != expected:
                raise TypeError(f"{cls.__name__}.{name} is annotated {annotations[name]}; its default "
                                f"{default!r} is {expected}")  # fmt: skip
            setattr(cls, name, default)
        return cls

    return fill


def check_bounds(settings: Any, node: str) -> None:
    """Raise ConfigError for the first number of ``settings`` outside its parameter's bound."""
    for f in fields(settings):
        check_parameter(node, f.name, getattr(settings, f.name))
