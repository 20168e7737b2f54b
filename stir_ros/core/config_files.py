# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Where the package's config files live (``config/`` of the checkout or ``share/stir_ros/config``).

Pure Python: the ROS graph (:mod:`stir_ros.ros.graph`) and the ROS-free tools (the Fast DDS
profile of :mod:`stir_ros.runtime.dds_profile`) find their files through the folders here,
and a params file a user names by :func:`find_params_file`. ``AMENT_PREFIX_PATH`` is read as the
ament index reads it, so the core needs no ``ament_index_python`` (a ROS package, banned here).
"""

from __future__ import annotations

import os
from pathlib import Path

from stir_ros.core.errors import ConfigError

__all__ = ["PACKAGE", "config_dirs", "find_config", "find_params_file"]

#: The ROS package name (install spaces keep its files under ``share/stir_ros``).
PACKAGE = "stir_ros"


def config_dirs() -> list[Path]:
    """The package's config folders, in the order searched.

    ``share/stir_ros/config`` of every install space on ``AMENT_PREFIX_PATH`` (where colcon
    installs ``config/``, as ``ros2 launch`` finds it), then ``config/`` of the checkout.
    """
    dirs = [Path(prefix) / "share" / PACKAGE / "config"
            for prefix in filter(None, os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep))]  # fmt: skip
    return [*dirs, Path(__file__).resolve().parents[2] / "config"]


def find_config(name: str) -> Path:
    """Locate ``config/<name>`` in an install space (``share/stir_ros/config``) or the checkout."""
    dirs = config_dirs()
    for folder in dirs:
        if (folder / name).is_file():
            return folder / name
    raise ConfigError(f"config file {name!r} not found in {', '.join(map(str, dirs))}")


def find_params_file(given: str | os.PathLike[str]) -> Path:
    """The params file a user names (``stir-ros run CONFIG.yaml``, ``params_file:=``).

    The path as given if it exists (relative: to the current folder) or is absolute; else the
    package's file of that name, so that ``config/pipeline.yaml`` and ``pipeline.yaml`` mean
    ``share/stir_ros/config/pipeline.yaml`` from any folder, not only from the checkout's root.

    Raises:
        ConfigError: A relative path found neither in the current folder nor in :func:`config_dirs`.
    """
    path = Path(given)
    if path.exists() or path.is_absolute():
        return path
    parts = path.parts[1:] if len(path.parts) > 1 and path.parts[0] == "config" else path.parts
    dirs = config_dirs()
    for folder in dirs:
        if parts and folder.joinpath(*parts).is_file():
            return folder.joinpath(*parts)
    raise ConfigError(f"params file '{os.fspath(given)}' not found in the current folder ({Path.cwd()}) "
                      f"nor in the package's config folders: {', '.join(map(str, dirs))}")
