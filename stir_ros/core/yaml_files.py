# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The one way the package reads YAML: safe, and bounded in depth.

Every YAML file the tools and nodes read (a bag's ``metadata.yaml``, params files, camera
calibrations) may come from elsewhere. PyYAML's safe loader builds only plain data, but it
recurses once per nesting level, so a document nested a thousand levels deep ends in
``RecursionError``; an alias may also point back at its own node (``&a [*a]``), which loads as a
list that holds itself. :func:`load_yaml` refuses both with a :class:`ConfigError` before any
Python object is built.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from stir_ros.core.errors import ConfigError

__all__ = ["MAX_YAML_DEPTH", "load_yaml", "parse_yaml"]

#: Deepest nesting of mappings and sequences accepted. The package's own files nest 6 levels
#: (a rosbag2 metadata.yaml's QoS durations); 64 leaves room and stays far from Python's recursion limit.
MAX_YAML_DEPTH = 64


class _TooDeep(Exception):
    pass


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing documents nested deeper than :data:`MAX_YAML_DEPTH`."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise _TooDeep(f"nested more than {MAX_YAML_DEPTH} levels deep")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self) -> Any:
        node = super().compose_document()
        _check_graph(node)
        return node


def _check_graph(root: Any) -> None:
    """Refuse aliases that make a node hold itself or nest past the limit (the parse only sees anchors)."""
    depth: dict[int, int] = {}  # node id -> depth below it, once known
    open_nodes: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        children = _children(node)
        if done:
            open_nodes.discard(key)
            depth[key] = 1 + max((depth[id(c)] for c in children), default=0)
            if depth[key] > MAX_YAML_DEPTH:
                raise _TooDeep(f"nested more than {MAX_YAML_DEPTH} levels deep through aliases")
            continue
        if key in depth:
            continue
        if key in open_nodes:
            raise _TooDeep("an alias refers to a node that contains it (a recursive structure)")
        open_nodes.add(key)
        stack.append((node, True))
        for child in children:
            if id(child) in open_nodes:
                raise _TooDeep("an alias refers to a node that contains it (a recursive structure)")
            if id(child) not in depth:
                stack.append((child, False))


def _children(node: Any) -> list[Any]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def parse_yaml(text: str, what: str) -> Any:
    """Parse YAML text as plain data (``None`` for an empty document).

    Args:
        text: The document.
        what: What it is, for the message, e.g. ``"params file 'x.yaml'"``.

    Raises:
        ConfigError: Not valid YAML, nested deeper than :data:`MAX_YAML_DEPTH`, or recursive.
    """
    try:
        return yaml.load(text, Loader=_BoundedLoader)  # noqa: S506 - a SafeLoader subclass
    except _TooDeep as err:
        raise ConfigError(f"{what} is refused: {err}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{what} is not valid YAML: {' '.join(str(err).split())}") from err
    except RecursionError:  # a last guard; the depth limit is meant to come first
        raise ConfigError(f"{what} is refused: nested too deep") from None


def load_yaml(path: str | os.PathLike[str], what: str) -> Any:
    """Read and parse a YAML file (see :func:`parse_yaml`).

    Raises:
        ConfigError: The file cannot be read, or :func:`parse_yaml` refuses it.
    """
    label = f"{what} '{os.fspath(path)}'"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read {label}: {err}") from err
    return parse_yaml(text, label)
