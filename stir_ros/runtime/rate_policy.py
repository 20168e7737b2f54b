# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""What the reconstructor can sustain, and the ``rate_policy`` that keeps up with it.

- ``even`` (the default): the stride is stretched to a whole multiple of the requested stride that
  inference sustains (measured time per window, with :data:`HEADROOM`), so windows reach the worker
  no faster than it finishes them: images are evenly spaced on the sensor clock, none waits in the
  queue, each is as fresh as inference allows (what SLAM and visual odometry want). A multiple of the
  requested stride keeps the windows on the requested grid: every live image is byte-identical to
  the image ``stir-ros bag reconstruct`` (which has no time pressure and never stretches) makes for
  the same window. When inference keeps up, nothing is stretched and the two streams are the same.
- ``drop_oldest``: the requested stride; when inference falls behind the queue drops its oldest
  windows (counted): images come in bursts, each later than it need be.

Chosen by measurement (BENCHMARKS.md, issue 29). Pure Python.
"""

from __future__ import annotations

import math
import statistics
from collections import deque

__all__ = ["HEADROOM", "RATE_POLICIES", "RatePacer", "paced_stride"]

#: ``rate_policy`` values; the first is the default.
RATE_POLICIES = ("even", "drop_oldest")
#: Windows are cut this much slower than measured inference: room for the receiving thread and jitter.
HEADROOM = 1.25
#: A stretched stride shrinks only when this much shorter would still be sustained (no flapping).
_SHRINK = 0.8


def paced_stride(requested: int, seconds_per_window: float, frame_rate_hz: float, headroom: float = HEADROOM) -> int:
    """The smallest multiple of ``requested`` whose period covers ``headroom`` x the time per window."""
    if requested < 1 or not frame_rate_hz > 0:
        raise ValueError(f"requested stride {requested} and frame rate {frame_rate_hz} must be positive")
    if not math.isfinite(seconds_per_window) or seconds_per_window <= 0:
        return requested
    return requested * max(1, math.ceil(seconds_per_window * headroom * frame_rate_hz / requested - 1e-9))


class RatePacer:
    """Measured seconds per window (warm-up, then each batch) and the stride of a ``rate_policy``."""

    def __init__(self, policy: str = RATE_POLICIES[0], samples: int = 20) -> None:
        if policy not in RATE_POLICIES:
            raise ValueError(f"rate_policy must be one of {', '.join(RATE_POLICIES)}, got {policy!r}")
        self.policy = policy
        self._times: deque[float] = deque(maxlen=samples)
        self._stride: int | None = None  # the stride in force (even), None: not decided yet

    def observe(self, seconds: float, windows: int = 1) -> None:
        """One forward pass of ``windows`` windows took ``seconds``."""
        if windows > 0 and math.isfinite(seconds) and seconds > 0:
            self._times.append(seconds / windows)

    @property
    def seconds_per_window(self) -> float:
        """Median measured time per window (0: none measured yet)."""
        return statistics.median(self._times) if self._times else 0.0

    def stride(self, requested: int, frame_rate_hz: float) -> int:
        """The stride to cut at: as requested (``drop_oldest``), or paced (``even``; grows at once, shrinks with hysteresis)."""
        if self.policy != "even" or not self._times:
            return requested
        need = paced_stride(requested, self.seconds_per_window, frame_rate_hz)
        current = self._stride if self._stride is not None and self._stride % requested == 0 else requested
        if need > current:
            current = need
        elif need < current and paced_stride(requested, self.seconds_per_window / _SHRINK, frame_rate_hz) < current:
            current = need
        self._stride = current
        return current

    def statement(self, requested: int, frame_rate_hz: float) -> str:
        """The start-up line: the image rate inference sustains against the rate asked for, and the policy."""
        per = self.seconds_per_window
        asked = frame_rate_hz / requested
        if per <= 0:
            return f"asked for {asked:.3g} images/s (stride {requested}); inference time not measured yet"
        can = 1.0 / per
        if can >= asked * HEADROOM:
            return (f"inference sustains about {can:.3g} images/s ({per * 1e3:.0f} ms per window); asked for "
                    f"{asked:.3g} images/s (stride {requested} at {frame_rate_hz:g} Hz): sustainable")  # fmt: skip
        stride = paced_stride(requested, per, frame_rate_hz)
        if self.policy == "even":
            then = (f"rate_policy even: stride {stride} ({frame_rate_hz / stride:.3g} images/s, evenly spaced, one window "
                    f"in {stride // requested} of the requested grid)")  # fmt: skip
        else:
            then = "rate_policy drop_oldest: windows the queue cannot hold are dropped, oldest first"
        return (f"inference sustains about {can:.3g} images/s ({per * 1e3:.0f} ms per window); asked for {asked:.3g} "
                f"images/s (stride {requested} at {frame_rate_hz:g} Hz): NOT sustainable; {then}")  # fmt: skip
