# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Where the package's config files live (``config/`` of the checkout or ``share/stir_ros/config``).

Pure Python: the ROS graph (:mod:`stir_ros.ros.graph`) and the ROS-free tools (the Fast DDS
profile of :mod:`stir_ros.runtime.dds_profile`) find their files through the one function here.
"""

from __future__ import annotations

import os
from pathlib import Path

from stir_ros.core.errors import ConfigError

__all__ = ["PACKAGE", "find_config"]

#: The ROS package name (install spaces keep its files under ``share/stir_ros``).
PACKAGE = "stir_ros"


def find_config(name: str) -> Path:
    """Locate ``config/<name>`` in an install space (``share/stir_ros/config``) or the checkout."""
    candidates = []
    for prefix in filter(None, os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)):
        candidates.append(Path(prefix) / "share" / PACKAGE / "config" / name)
    candidates.append(Path(__file__).resolve().parents[2] / "config" / name)
    for path in candidates:
        if path.is_file():
            return path
    raise ConfigError(f"config file {name!r} not found in {', '.join(str(c.parent) for c in candidates)}")
