# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Where the shipped STIR weights live (a path only: no torch, usable by every layer)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["dark_weights_path", "default_weights_path"]


def default_weights_path(name: str = "stir_default.pt") -> Path:
    """Where the shipped STIR checkpoint lives (``stir_ros/weights/stir_default.pt``).

    The package may span a source checkout and a colcon install space; the first directory that
    holds the file wins, else the path in the first package directory is returned.
    """
    import stir_ros

    candidates = [Path(p) / "weights" / name for p in stir_ros.__path__]
    for path in candidates:
        if path.is_file():
            return path
    return candidates[0]


def dark_weights_path() -> Path:
    """Where the shipped dark-robust STIR checkpoint lives (``stir_ros/weights/stir_dark.pt``).

    The engine sends it the windows that hold dark-current spikes (:mod:`stir_ros.core.dark_events`).
    """
    return default_weights_path("stir_dark.pt")
