# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The one way the package reads YAML: safe, and bounded in depth.

Every YAML file the tools and nodes read (a bag's ``metadata.yaml``, params files, camera
calibrations) may come from elsewhere. PyYAML's safe loader builds only plain data, but it
recurses once per nesting level, so a document nested a thousand levels deep ends in
``RecursionError``; an alias may also point back at its own node (``&a [*a]``), which loads as a
list that holds itself. :func:`load_yaml` refuses both with a :class:`ConfigError` before any
Python object is built.

The parse is libyaml's (PyYAML's ``CSafeLoader``) where PyYAML was built with it, as its wheels
are: a defect map's dark-rate table (0.7 MB of YAML at 250x400) reads in a seventh of the pure
Python loader's time. libyaml refuses more than 1000 levels of nesting itself; the depth limit
and the aliases are then checked on the composed nodes, before anything is constructed.
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


class _BoundedPyLoader(yaml.SafeLoader):
    """PyYAML's pure Python safe loader, refusing documents nested deeper than :data:`MAX_YAML_DEPTH`.

    The depth is counted while composing: the Python composer recurses once per level.
    """

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


if getattr(yaml, "__with_libyaml__", False):

    class _BoundedCLoader(yaml.CSafeLoader):
        """libyaml's safe loader; the composed document is checked before it is constructed."""

        def get_single_node(self) -> Any:
            node = super().get_single_node()
            if node is not None:
                _check_graph(node)
            return node

    _Loader: type = _BoundedCLoader
else:  # a PyYAML built without libyaml
    _Loader = _BoundedPyLoader


def _check_graph(root: Any) -> None:
    """Refuse a document nested past the limit, as written or through aliases, or a node that holds itself.

    Walked in document order, so a node is first met where it is written (an anchor comes before
    its aliases): its level there is its nesting as written. Scalars, a defect map's hundred
    thousand numbers, are looked at only for their level.
    """
    depth: dict[int, int] = {}  # node id -> levels it spans (itself and below), once known
    open_nodes: set[int] = set()
    stack: list[tuple[Any, bool, int, list[Any]]] = [(root, False, 1, [])]
    while stack:
        node, done, level, inner = stack.pop()
        key = id(node)
        if done:
            open_nodes.discard(key)
            children = _children(node)
            leaves = len(inner) < len(children)  # scalars span one level
            depth[key] = 1 + max([depth[id(c)] for c in inner] + [1] * leaves, default=0)
            if depth[key] > MAX_YAML_DEPTH:
                raise _TooDeep(f"nested more than {MAX_YAML_DEPTH} levels deep through aliases")
            continue
        if key in depth:
            continue
        if key in open_nodes:
            raise _TooDeep("an alias refers to a node that contains it (a recursive structure)")
        children = _children(node)
        if level + bool(children) > MAX_YAML_DEPTH:
            raise _TooDeep(f"nested more than {MAX_YAML_DEPTH} levels deep")
        inner = [c for c in children if not isinstance(c, yaml.ScalarNode)]
        open_nodes.add(key)
        stack.append((node, True, level, inner))
        for child in reversed(inner):  # popped first to last
            if id(child) in open_nodes:
                raise _TooDeep("an alias refers to a node that contains it (a recursive structure)")
            if id(child) not in depth:
                stack.append((child, False, level + 1, []))


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
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader's subclass
    except _TooDeep as err:
        raise ConfigError(f"{what} is refused: {err}") from None
    except yaml.YAMLError as err:
        if "maximum nesting depth" in str(err):  # libyaml's own limit (1000 levels)
            raise ConfigError(f"{what} is refused: nested more than {MAX_YAML_DEPTH} levels deep") from None
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
