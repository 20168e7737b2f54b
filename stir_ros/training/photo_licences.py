# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The training photographs whose licences put no conditions on a model trained from them.

``stir-ros data --permissive`` writes ``CACHE/train_permissive/``: copies of the training
photographs under CC0, CC-BY (not -SA, -NC or -ND), Expat/MIT, BSD or the public domain, with their
own ``ATTRIBUTION.md`` and ``sources.json``. Train from it with ``--no-skimage`` (scikit-image's
photographs carry other licences) for weights free of the share-alike and GPL question
(``stir_ros/weights/MODEL_CARD.md``). The validation photographs stay as they are: they are never
trained on.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["PERMISSIVE_FOLDER", "is_permissive", "write_permissive"]

#: The folder of the cache that holds the permissive training photographs.
PERMISSIVE_FOLDER = "train_permissive"
#: SPDX-style identifiers (as Debian copyright files write them) that put no conditions on a trained model.
_PERMISSIVE = re.compile(r"(CC0-[0-9.]+|CC-BY-[0-9.]+|Expat|MIT|BSD-[0-9]-Clause|public-domain)", re.IGNORECASE)


def is_permissive(licence: str) -> bool:
    """Whether ``licence`` (one identifier, e.g. ``CC-BY-4.0``) is one of the permissive ones."""
    return _PERMISSIVE.fullmatch(licence.strip()) is not None


def write_permissive(
    cache: Path,
    records: list[dict[str, str]],
    fresh_folder: Callable[[Path], None],
    write_attribution: Callable[[Path, Any, list[str], list[str], list[list[str]]], None],
) -> list[dict[str, str]]:
    """Copy the permissive ones of the training ``records`` (``CACHE/train/NAME``) into ``CACHE/train_permissive``.

    ``fresh_folder`` and ``write_attribution`` are ``stir-ros data``'s own (the folder is its to
    rebuild only if it carries its marker). Returns the records copied.
    """
    out = cache / PERMISSIVE_FOLDER
    fresh_folder(out)
    kept = [r for r in records if is_permissive(r["licence"])]
    for record in kept:
        shutil.copy2(cache / "train" / record["name"], out / record["name"])
    intro = [
        "# Training photographs under permissive licences",
        "",
        "Made by `stir-ros data --permissive`: the training photographs of the cache whose licence",
        "is CC0, CC-BY, Expat/MIT, BSD or public domain; each keeps the licence of its original.",
    ]
    columns = ["image", "package", "version", "original file", "licence"]
    rows = [[r["name"], r["package"], r["version"], r["file"], r["licence"]] for r in kept]
    write_attribution(out, kept, intro, columns, rows)
    return kept
