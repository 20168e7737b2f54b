# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""What the reconstructor can sustain, and the ``rate_policy`` that keeps up with it.

- ``drop_oldest``: the requested stride; when inference falls behind the queue drops its oldest
  windows (counted): images come in bursts, each later than it need be.
- ``even``: the stride is stretched to what inference sustains, so windows reach the worker no
  faster than it finishes them: images are evenly spaced on the sensor clock, none dropped, and the
  worker (:class:`~stir_ros.runtime.inference_worker.SpacingHold`) publishes each a fixed delay
  after its window was complete, so they also leave evenly spaced, although each window takes its
  own time (what SLAM and visual odometry want).

The time per window is what the stream may be paced to: a window's own time divided by the
windows computed at once (``inference_streams``; the worker's ``on_timing``).

How ``even`` stays steady on a loaded CPU, where the measured time per window moves:

- the estimate is a high quantile (:data:`QUANTILE`) of the last :data:`SAMPLES` times per window,
  not their median: occasional slow windows fit in the period, a lone spike moves nothing; the
  worker's hold absorbs what the slower windows would do to the spacing, so the headroom above it
  is small (:data:`HEADROOM`);
- the stride is a multiple of the requested stride taken from a ladder of :data:`STEPS_PER_OCTAVE`
  steps per doubling (1, 2, ... 32, 34, 36, ... 64, 68, ...), so small changes of the
  estimate land on the same step; every step is a multiple of the requested stride and windows
  start at whole multiples of the stride in force (:class:`~stir_ros.core.stream.WindowCutter`), so
  every live image is one ``stir-ros bag reconstruct`` makes for the same window, and the grid does
  not drift;
- hysteresis: the stride is chosen with :data:`HEADROOM` over the estimate; it grows at once when
  its period no longer covers the median of the recent times (:data:`GROW_AT`), or the lower median of the latest
  :data:`LATEST` windows (a rising load is met within a few windows, in one step; a lone slow window
  moves nothing), and shrinks only when the sustained rate has risen by more than
  :data:`SHRINK_MARGIN` and :data:`DWELL` windows have been timed at the stride in force;
- a stride reached by shrinking that then had to grow is not shrunk back to for
  :data:`RETRY_WINDOWS` windows, twice as many after each further failure: on two cores the time
  per window depends on the stride itself (at a shorter period inference runs back to back and the
  driver preempts it), so the time measured at the longer stride promised a shorter one that was
  then too short again. Measured (BENCHMARKS.md, issue 29): 8,000 and 10,400 frames alternated
  every dozen windows in a 90 s run, 32 % of the images within 10 % of the mean spacing. A stride
  sized from the warm-up or grown to, then grown from, is not held back from: that is the stream
  starting (its first windows slower than the steady ones), not a failed retry. Held back, 7,200 ->
  12,000 -> 14,400 frames at start stayed at 14,400 for 100 windows where 10,400 was enough (46 %
  within 10 % in a 90 s run).

When inference keeps up, nothing is stretched and the two policies cut the same windows. Chosen by
measurement (BENCHMARKS.md, issue 29). Pure Python.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Iterable

__all__ = ["HEADROOM", "RATE_POLICIES", "RETRY_WINDOWS", "RatePacer", "ladder_step", "paced_stride", "quantile"]

#: ``rate_policy`` values; the first is the default.
RATE_POLICIES = ("even", "drop_oldest")
#: The period of a stretched stride covers this much more than the estimated time per window.
HEADROOM = 1.1
#: A stretched stride grows (to :data:`HEADROOM`) once its period covers less than this x the estimate.
GROW_AT = 1.0
#: The estimate: this quantile of the recent times per window.
QUANTILE = 0.75
#: Times per window kept for the estimate.
SAMPLES = 40
#: A stretched stride shrinks only when the estimate fell by this fraction (the sustainable rate rose by 1/(1-x)).
SHRINK_MARGIN = 0.2
#: Windows timed at the stride in force before it may shrink.
DWELL = 12
#: The stride also grows when most of the latest this many windows took longer than its period (a rising load).
LATEST = 8
#: Steps of the stride ladder per doubling (consecutive steps at most 1 + 1/STEPS_PER_OCTAVE apart).
STEPS_PER_OCTAVE = 16
#: Windows before a stride that had to grow may be shrunk back to (doubled at each further failure).
RETRY_WINDOWS = 100


def ladder_step(multiple: float) -> int:
    """The smallest step of the stride ladder (1, 2, ..., 16, 18, 20, ..., 32, 36, ...) at least ``multiple``."""
    k = max(1, math.ceil(multiple - 1e-9))
    if k <= 2 * STEPS_PER_OCTAVE:
        return k
    shift = k.bit_length() - STEPS_PER_OCTAVE.bit_length()  # k in [8, 16) * 2**shift
    return ((k + (1 << shift) - 1) >> shift) << shift  # k rounded up to a multiple of 2**shift


def paced_stride(requested: int, seconds_per_window: float, frame_rate_hz: float, headroom: float = HEADROOM) -> int:
    """The requested stride times the smallest ladder step whose period covers ``headroom`` x the time per window."""
    if requested < 1 or not frame_rate_hz > 0:
        raise ValueError(f"requested stride {requested} and frame rate {frame_rate_hz} must be positive")
    if not math.isfinite(seconds_per_window) or seconds_per_window <= 0:
        return requested
    return requested * ladder_step(seconds_per_window * headroom * frame_rate_hz / requested)


class RatePacer:
    """Measured seconds per window (warm-up, then each batch) and the stride of a ``rate_policy``."""

    def __init__(self, policy: str = RATE_POLICIES[0], samples: int = SAMPLES) -> None:
        if policy not in RATE_POLICIES:
            raise ValueError(f"rate_policy must be one of {', '.join(RATE_POLICIES)}, got {policy!r}")
        self.policy = policy
        self._times: deque[float] = deque(maxlen=samples)
        self._stride: int | None = None  # the stride in force (even), None: not decided yet
        self._since_change = 0  # windows timed since the stride in force was chosen
        self._windows = 0  # windows timed in all
        self._retry = RETRY_WINDOWS
        self._too_short: tuple[int, int] | None = None  # (the stride that had to grow, the window count until it is retried)
        self._shrunk = False  # the stride in force was reached by shrinking (a retry of a shorter period)

    def observe(self, seconds: float, windows: int = 1) -> None:
        """One forward pass of ``windows`` windows took ``seconds``."""
        if windows > 0 and math.isfinite(seconds) and seconds > 0:
            self._times.extend([seconds / windows] * min(windows, SAMPLES))  # each window of the batch counts
            self._since_change += windows
            self._windows += windows

    @property
    def seconds_per_window(self) -> float:
        """Median measured time per window (0: none measured yet)."""
        return statistics.median(self._times) if self._times else 0.0

    @property
    def planned_seconds(self) -> float:
        """The estimate ``even`` plans with: the :data:`QUANTILE` of the recent times per window (0: none yet)."""
        return quantile(self._times)

    def stride(self, requested: int, frame_rate_hz: float) -> int:
        """The stride to cut at: as requested (``drop_oldest``), or paced (``even``; grows at once, shrinks with hysteresis)."""
        if self.policy != "even" or not self._times:
            return requested
        planned = self.planned_seconds
        current = self._stride
        latest = sorted(list(self._times)[-LATEST:])
        # Too short once the typical window no longer fits: the median of the recent times, or the lower
        # median of the latest (most of them: a load that rose). The images are held to even spacing
        # (the worker), so the slower quarter of windows costs latency, not spacing, and moves nothing.
        rising = max(self.seconds_per_window, latest[(len(latest) - 1) // 2])
        if current is None or current % requested or paced_stride(requested, rising, frame_rate_hz, GROW_AT) > current:
            # First, a new request, or it cannot keep up: sized for the latest windows too (the load that rose).
            grown = paced_stride(requested, max(planned, quantile(latest)), frame_rate_hz)
            if current is not None and current % requested == 0 and grown > current:
                if self._shrunk:  # a retry of a shorter period proved too short
                    self._too_short, self._retry = (current, self._windows + self._retry), self._retry * 2
            elif current is not None and current % requested:  # a new request: what was too short is no longer known
                self._too_short, self._retry = None, RETRY_WINDOWS
            current, self._shrunk = grown, False
        elif self._since_change >= DWELL and paced_stride(requested, planned / (1 - SHRINK_MARGIN), frame_rate_hz) < current:
            shrunk = paced_stride(requested, planned, frame_rate_hz)  # sustained faster by the margin
            failed = self._too_short
            if failed is None or shrunk > failed[0] or self._windows >= failed[1]:
                current, self._shrunk = shrunk, True
        if current != self._stride:
            self._stride, self._since_change = current, 0
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
        stride = paced_stride(requested, self.planned_seconds, frame_rate_hz)
        if self.policy == "even":
            then = (f"rate_policy even: stride {stride} ({frame_rate_hz / stride:.3g} images/s, evenly spaced, one window "
                    f"in {stride // requested} of the requested grid)")  # fmt: skip
        else:
            then = "rate_policy drop_oldest: windows the queue cannot hold are dropped, oldest first"
        return (f"inference sustains about {can:.3g} images/s ({per * 1e3:.0f} ms per window); asked for {asked:.3g} "
                f"images/s (stride {requested} at {frame_rate_hz:g} Hz): NOT sustainable; {then}")  # fmt: skip


def quantile(times: Iterable[float], q: float = QUANTILE) -> float:
    """The ``q`` quantile of ``times`` (nearest rank above; 0 when empty); by default :data:`QUANTILE`."""
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0
