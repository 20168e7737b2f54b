# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Exception types raised by the ROS-free core.

Every error says what was wrong and what was expected; nodes catch these at the callback
boundary, log once per kind, count them and keep running.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from contextlib import contextmanager

__all__ = [
    "StirRosError",
    "SpikeFormatError",
    "DatFileError",
    "PacketError",
    "CheckpointError",
    "ConfigError",
    "BagError",
    "BackendUnavailableError",
    "check_choice",
    "ros_arguments_checked",
]


class StirRosError(Exception):
    """Base class of every error raised by stir_ros."""


class SpikeFormatError(StirRosError, ValueError):
    """Spike data has the wrong shape, size, dtype or encoding."""


class DatFileError(StirRosError, OSError):
    """A Vidar ``.dat`` file cannot be read as the requested frame size."""


class PacketError(SpikeFormatError):
    """A SpikePacket's fields disagree with its payload or are out of range."""


class CheckpointError(StirRosError):
    """A weights file is missing, corrupt, unsafe or for another architecture."""


class ConfigError(StirRosError, ValueError):
    """A configuration value or parameter is invalid."""


class BagError(StirRosError):
    """A rosbag2 file cannot be read or written as requested."""


class BackendUnavailableError(ConfigError):
    """An inference backend (OpenVINO, ...) or a package it needs is not installed on this machine."""


def check_choice(name: str, value: object, choices: Collection[str]) -> None:
    """Raise :class:`ConfigError` unless ``value`` is one of ``choices`` (the message names them all)."""
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")


#: rclpy's exceptions for a command line it refuses.
_RCLPY_REFUSALS = frozenset({"RCLError", "UnknownROSArgsError"})


@contextmanager
def ros_arguments_checked() -> Iterator[None]:
    """Around ``rclpy.init``: its refusal of the command line becomes a :class:`ConfigError`.

    rclpy raises ``RCLError`` or ``UnknownROSArgsError`` (both ``RuntimeError``) for a malformed
    ``--ros-args`` (a ``-p`` without ``name:=value``, a broken ``-r`` remap, an unknown flag) or an
    invalid ``ROS_DOMAIN_ID``; the entry points print a ``ConfigError`` as one line, not a traceback.
    Other errors (e.g. rclpy initialised twice by the calling program) pass through as they are.
    """
    try:
        yield
    except RuntimeError as err:
        if type(err).__name__ not in _RCLPY_REFUSALS:  # matched by name: the core does not import rclpy
            raise
        reason = re.sub(r", at \S+:\d+", "", str(err))  # rcl's source locations say nothing to a user
        raise ConfigError(f"rclpy refused the command line ({type(err).__name__}: {reason}); "
                          "expected --ros-args followed by rules such as -p name:=value, -r from:=to, "
                          "--params-file FILE") from err
