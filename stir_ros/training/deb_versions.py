# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Debian version numbers: which of the downloaded ``.deb`` files of a package is the newest.

``stir-ros data`` keeps the packages it downloads; after an update two versions may lie side by
side, and their file names sort as text (``pkg_1.10-1`` before ``pkg_1.9-1``). The order here is
Debian's (deb-version(7)): the epoch as a number, then the upstream version and the revision,
each compared in alternating runs of non-digits (letters before other characters, ``~`` before
everything, even the end) and digits (as numbers). Pure Python, so it runs where dpkg does not.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote

from stir_ros.core.errors import ConfigError

__all__ = ["compare_versions", "deb_version", "newest_deb"]

_RUNS = re.compile(r"([^0-9]*)([0-9]*)")


def _char_order(c: str) -> int:
    """A non-digit's place: ``~`` first, then the end of the run (0), letters, then anything else."""
    if c == "~":
        return -1
    if c.isascii() and c.isalpha():
        return ord(c)
    return ord(c) + 256


def _runs(part: str) -> list[tuple[tuple[int, ...], int]]:
    """``part`` as (non-digit run, number) pairs; each run's key ends with the end's place, 0."""
    return [(tuple(map(_char_order, text)) + (0,), int(digits or 0)) for text, digits in _RUNS.findall(part)]


def _compare_part(a: str, b: str) -> int:
    runs_a, runs_b = _runs(a), _runs(b)
    end = ((0,), 0)  # a string that has ended compares as an empty run and the number 0
    for i in range(max(len(runs_a), len(runs_b))):
        x = runs_a[i] if i < len(runs_a) else end
        y = runs_b[i] if i < len(runs_b) else end
        if x != y:
            return -1 if x < y else 1
    return 0


def _split(version: str) -> tuple[int, str, str]:
    """``[epoch:]upstream[-revision]`` as ``(epoch, upstream, revision)``."""
    epoch, _, rest = version.partition(":") if ":" in version else ("0", "", version)
    if not epoch.isdigit() or not epoch.isascii():
        raise ConfigError(f"Debian version {version!r}: the epoch before ':' must be a number")
    upstream, _, revision = rest.rpartition("-") if "-" in rest else (rest, "", "")
    return int(epoch), upstream, revision


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as Debian version ``a`` is older than, the same as or newer than ``b``.

    Raises:
        ConfigError: An epoch that is not a number.
    """
    (epoch_a, up_a, rev_a), (epoch_b, up_b, rev_b) = _split(a), _split(b)
    if epoch_a != epoch_b:
        return -1 if epoch_a < epoch_b else 1
    return _compare_part(up_a, up_b) or _compare_part(rev_a, rev_b)


def deb_version(file_name: str) -> str:
    """The version in a .deb's name ``PACKAGE_VERSION_ARCH.deb`` (``%3a``, as apt-get download writes it, is ``:``).

    Raises:
        ConfigError: A name not of that form.
    """
    parts = file_name.removesuffix(".deb").split("_")
    version = unquote(parts[1]) if len(parts) == 3 and file_name.endswith(".deb") else ""
    try:
        valid = bool(version) and all(parts) and _split(version) is not None
    except ConfigError:
        valid = False
    if not valid:
        raise ConfigError(f"'{file_name}' is not named PACKAGE_VERSION_ARCH.deb; move it out of the cache")
    return version


def newest_deb(paths: Iterable[Path]) -> tuple[Path, str]:
    """The .deb of the newest Debian version among ``paths``, and that version.

    Raises:
        ConfigError: No paths, or a file name not of the form ``PACKAGE_VERSION_ARCH.deb``.
    """
    versions = [(path, deb_version(path.name)) for path in paths]
    if not versions:
        raise ConfigError("no .deb files to choose from")
    key = functools.cmp_to_key(compare_versions)
    return max(versions, key=lambda item: key(item[1]))
