# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Keeping a tool's output apart from its inputs.

Every command that writes calls :func:`check_output_apart` before it opens anything for writing:
an output that is an input (the same path, a link to it, a hard link), or that lies inside an
input folder (a bag is a folder), would overwrite or change what the tool is still reading. A
tool that fills or replaces a whole output folder also refuses an input inside that folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote, urlparse

from stir_ros.core.errors import ConfigError

__all__ = ["check_output_apart", "make_output_folder", "path_of_url"]

PathLike = str | os.PathLike[str]


def _resolved(path: PathLike) -> Path:
    """Absolute, with every link and ``..`` resolved as far as the path exists."""
    return Path(os.path.abspath(Path(path).expanduser())).resolve(strict=False)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist
        return False


def check_output_apart(
    output: PathLike | None,
    inputs: Iterable[PathLike | None],
    *,
    what: str = "output",
    folder: bool = False,
) -> None:
    """Refuse an output that is one of the inputs or lies inside one.

    Links are resolved and hard links recognised, so ``out -> in`` is refused as ``in`` is.

    Args:
        output: The file or folder the tool will write (``None``: nothing to check).
        inputs: The files and folders it reads (``None`` entries are skipped).
        what: How the output is named in the message, e.g. ``"--json file"``.
        folder: The tool writes files of its own naming into the output folder (or replaces
            it), so an input inside that folder is refused too.

    Raises:
        ConfigError: With one line naming the output, the input and what to do.
    """
    if output is None:
        return
    out = _resolved(output)
    for given in inputs:
        if given is None or os.fspath(given) == "":
            continue
        src = _resolved(given)
        if out == src or _same_file(out, src):
            relation = "is the input"
        elif out.is_relative_to(src):
            relation = "lies inside the input"
        elif folder and src.is_relative_to(out):
            relation = "is a folder that holds the input"
        else:
            continue
        raise ConfigError(f"{what} '{os.fspath(output)}' {relation} '{os.fspath(given)}'; writing it would destroy "
                          "the input: choose an output outside every input")


def make_output_folder(path: PathLike, what: str = "output folder") -> Path:
    """Create the folder ``path`` (and its parents) if needed; returns it.

    Raises:
        ConfigError: It cannot be created, e.g. because a file has that name.
    """
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"cannot create {what} '{os.fspath(path)}': {err}") from err
    return folder


def path_of_url(url: str, what: str) -> Path:
    """The local file of a ``file://`` URL or a plain path, ``~`` expanded (no shell expands a params file's).

    ``what``: the parameter, for the message. ``package://`` needs the ament index: the ROS layer
    resolves it (``stir_ros.ros.conversions.url_to_path``) and hands a path down.

    Raises:
        ConfigError: Another scheme.
    """
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path)).expanduser()
    if "://" in url:
        raise ConfigError(f"{what} {url!r}: only file:// URLs and paths are read here (package:// by the nodes)")
    return Path(url).expanduser()
