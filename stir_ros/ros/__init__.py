# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""ROS 2 adapters: message conversions, the two nodes, the node graph and its runner.

Only :mod:`stir_ros.ros.conversions`, the node modules and their parts import rclpy and message
types; :mod:`stir_ros.ros.graph` is pure Python so that launch files and tests can call it
anywhere, and so are :mod:`stir_ros.ros.driver_settings` and :mod:`stir_ros.ros.device_memory`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

__all__ = ["RateLimitedLog", "emit"]


class RateLimitedLog:
    """Log each kind of problem at most once per ``period_s``, saying how many were suppressed.

    rclpy's ``throttle_duration_sec`` throttles per call site, so two different problems logged
    from one place would hide each other; this keys the throttle on a kind string instead.
    """

    def __init__(self, period_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.period_s = float(period_s)
        self._clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def __call__(self, log: Callable[[str], object], kind: str, message: str) -> bool:
        """Call ``log(message)`` unless ``kind`` was logged less than ``period_s`` ago.

        Returns:
            Whether the message was logged.
        """
        now = self._clock()
        last = self._last.get(kind)
        if last is not None and now - last < self.period_s:
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            return False
        skipped = self._suppressed.pop(kind, 0)
        self._last[kind] = now
        emit(log, f"{message} ({skipped} similar message(s) suppressed)" if skipped else message)
        return True


def emit(log: Callable[[str], object], message: str) -> None:
    """Call ``log(message)`` so that it can never raise.

    rclpy remembers one severity per call site (file, function, line) and raises ``ValueError:
    Logger severity cannot be changed between calls`` when one line logs a warning and later an
    error. ``log`` is usually a bound method of an rclpy logger (``logger.warning``): each severity
    is then called from a line of its own here. Anything that still goes wrong (a logger whose
    context is gone at shutdown) falls back to stderr rather than raising into a callback.
    """
    try:
        logger, name = getattr(log, "__self__", None), getattr(log, "__name__", "")
        if logger is None or not hasattr(logger, "get_child"):  # not an rclpy logger
            log(message)
        elif name == "debug":
            logger.debug(message)
        elif name == "info":
            logger.info(message)
        elif name in ("warning", "warn"):
            logger.warning(message)
        elif name == "error":
            logger.error(message)
        else:
            logger.fatal(message)
    except Exception:  # noqa: BLE001 - logging must never take a callback or thread down
        try:
            print(message, file=sys.stderr, flush=True)
        except Exception:  # noqa: BLE001, S110 - stderr closed: nothing left to tell
            pass
