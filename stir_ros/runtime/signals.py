# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Stopping long-running processes cleanly on SIGINT and SIGTERM, between two pieces of work.

Python's default SIGINT handler raises KeyboardInterrupt in whatever the main thread runs at
that moment: in the middle of a bag write (a bag without metadata), or inside a subscription
callback, which rclpy's executor then logs as ``[FATAL] Exception in 'subscriptions' callback``
with an empty message (a saturated node is almost always inside a callback). Used by
``stir-ros bag play`` and ``bag record`` and by the nodes' ``main``; no ROS imports.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["install_stop_handlers"]


class _Interruptible(Protocol):
    interrupted: bool


def install_stop_handlers(stop: threading.Event, result: _Interruptible | None = None) -> Callable[[], None]:
    """Make SIGINT/SIGTERM set ``stop`` (and ``result.interrupted``, if given) instead of raising.

    The command then leaves its loop and closes the bag properly (a KeyboardInterrupt in the
    middle of a write would leave it without metadata). Only the main thread can install signal
    handlers; elsewhere (e.g. when called from a test's worker thread) nothing is installed.

    Returns:
        A function that restores the previous handlers.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum: int, frame: Any) -> None:
        del signum, frame
        if result is not None:
            result.interrupted = True
        stop.set()

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for s, h in old.items():
            signal.signal(s, h)

    return restore
