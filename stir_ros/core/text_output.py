# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
r"""What the tools print and write: untrusted text escaped, JSON strict.

- :func:`printable`: a string from a message, a bag or a file (a ``frame_id``, an encoding, a
  topic name, an error that quotes one) as one line that is safe on a terminal: control
  characters (escape sequences, carriage return, newline), format characters (bidirectional
  overrides) and line separators are written as ``\x1b``, ``\n``, ``\u202e``; a backslash as
  ``\\``, so the escaped form is unambiguous.
- :func:`json_text` / :func:`write_json`: strict JSON (RFC 8259). Python's ``json`` writes
  ``NaN`` and ``Infinity``, which no other JSON reader accepts; here a non-finite number becomes
  ``null`` and anything else that is not JSON is an error.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from stir_ros.core.errors import ConfigError

__all__ = ["printable", "finite_json", "json_text", "write_json"]


def _escape(ch: str) -> str:
    if ch == "\\":
        return "\\\\"
    if ch.isprintable():
        return ch
    code = ord(ch)
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
    if ch in named:
        return named[ch]
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(value: object) -> str:
    """``str(value)`` as one terminal-safe line (see the module docstring)."""
    text = str(value)
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(_escape(ch) for ch in text)


def finite_json(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, +-inf) replaced by ``None``, tuples as lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_json(v) for v in value]
    return value


def json_text(value: Any, indent: int | None = 1) -> str:
    """Strict JSON text of ``value`` (non-finite numbers as ``null``), ending in a newline.

    Raises:
        TypeError / ValueError: ``value`` holds something JSON cannot represent.
    """
    return json.dumps(finite_json(value), indent=indent, allow_nan=False) + "\n"


def write_json(path: str | os.PathLike[str], value: Any, indent: int | None = 1) -> None:
    """Write :func:`json_text` of ``value`` to ``path`` (its folder is created).

    Raises:
        ConfigError: The file cannot be written (a folder of that name, no permission, ...).
    """
    text = json_text(value, indent)
    out = Path(path)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"cannot write the JSON file '{os.fspath(path)}': {err}") from err
