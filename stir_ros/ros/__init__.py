"""ROS 2 adapters: message conversions, the two nodes, the node graph and its runner.

Only :mod:`stir_ros.ros.conversions` and the node modules import rclpy and message types;
:mod:`stir_ros.ros.graph` is pure Python so that launch files and tests can call it anywhere.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["RateLimitedLog"]


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
        log(f"{message} ({skipped} similar message(s) suppressed)" if skipped else message)
        return True
