# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""``rate_policy`` on the live path, on a simulated clock: the spacing, latency and grid of the images.

The real :class:`StreamProcessor` (paced by a real :class:`RatePacer`) cuts the windows of a stream
whose packets arrive in real time; a simulated worker serves them one at a time from a queue of 4
(oldest dropped) in batches of up to 4, as the node's defaults, with deterministic per-window times drawn from a seeded generator:
jitter, occasional slow windows, load changes. No wall clock is read: nothing here is timed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import numpy as np
import pytest

from stir_ros.core.defects import DefectTracker
from stir_ros.runtime.inference_worker import SpacingHold
from stir_ros.runtime.rate_policy import HEADROOM, RatePacer
from stir_ros.core.stream import PacketHeader, Window
from stir_ros.core.stream_processor import StreamProcessor

RATE, REQUESTED, WINDOW, PACKET, QUEUE, BATCH = 20000.0, 200, 41, 100, 4, 4


class SimulatedLivePath:
    """Packets every ``PACKET / RATE`` seconds of simulated time, windows queued, one worker serving them.

    Images are published as the node's worker does: in order, and under ``even`` held until
    :class:`~stir_ros.runtime.inference_worker.SpacingHold` after their window was complete.
    """

    def __init__(self, policy: str, seconds_per_window: Callable[[float], float], warmup_s: float) -> None:
        self.pacer = RatePacer(policy)
        self.pacer.observe(warmup_s)  # the node times one window at warm-up
        self.proc = StreamProcessor(WINDOW, REQUESTED, defects=DefectTracker("none"))
        self.proc.pace = self.pacer.stride
        self.took = seconds_per_window  # time of a window started at that simulated time
        self.queue: deque[tuple[float, Window]] = deque()
        self.busy: tuple[float, float, list[tuple[float, Window]]] | None = None  # (finish, took, batch)
        self.free_at = 0.0
        self.published: list[tuple[float, Window]] = []  # (simulated time, window)
        self.hold = SpacingHold()  # window complete -> image ready, seconds
        self.dropped = 0
        self._payload = np.zeros(PACKET * 2 * 2, np.uint8)

    def _serve(self, now: float) -> None:
        while True:
            if self.busy is not None:
                finish, took, batch = self.busy
                if finish > now:
                    return
                self.pacer.observe(took, len(batch))  # the worker's on_timing, when the batch is done
                for complete, _ in batch:
                    self.hold.ready(finish - complete)
                for complete, window in batch:
                    at = max(finish, complete + self.hold.next(complete)) if self.pacer.policy == "even" else finish
                    self.published.append((max(at, self.published[-1][0]) if self.published else at, window))
                self.busy, self.free_at = None, finish
            if not self.queue:
                return
            start = max(self.free_at, self.queue[0][0])
            batch = [self.queue.popleft() for _ in range(min(BATCH, len(self.queue)))]  # oldest first, as the node
            took = self.took(start) * len(batch)
            self.busy = (start + took, took, batch)

    def run(self, seconds: float) -> SimulatedLivePath:
        for seq in range(int(seconds * RATE) // PACKET):
            first = seq * PACKET
            now = (first + PACKET) / RATE  # the packet leaves when its last frame is captured
            self._serve(now)
            header = PacketHeader(seq, first, PACKET, 2, 2, "unpacked_u8", round(first * 1e9 / RATE), RATE)
            for window in self.proc.push(header, self._payload).windows:
                if len(self.queue) >= QUEUE:
                    self.queue.popleft()
                    self.dropped += 1
                self.queue.append((now, window))
        self._serve(float("inf"))
        return self

    def after(self, t: float, until: float = float("inf")) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Publish times (s), window starts (frames) and latencies (s, centre frame -> published) in ``[t, until)``."""
        rows = [(p, w.first_frame_index, p - w.centre_stamp_ns / 1e9) for p, w in self.published if t <= p < until]
        return tuple(np.array(c) for c in zip(*rows))  # type: ignore[return-value]


def jittery(base: Callable[[float], float], seed: int, spread: float = 0.15, slow: float = 0.05) -> Callable[[float], float]:
    """``base(t)`` times a uniform jitter of +-``spread``; a share ``slow`` of windows take 1.8x."""
    rng = np.random.default_rng(seed)
    return lambda t: base(t) * rng.uniform(1 - spread, 1 + spread) * (1.8 if rng.random() < slow else 1.0)


@pytest.mark.parametrize("seed", range(1, 7))
def test_even_keeps_one_grid_under_jittery_time_per_window(seed):
    # 0.3 s per window +-15 %, one window in 20 at 1.8x; warm-up timed 0.25 s on a quiet process.
    sim = SimulatedLivePath("even", jittery(lambda t: 0.3, seed=seed), warmup_s=0.25).run(180)
    published, starts, latency = sim.after(20.0)  # the estimate settled
    strides = set(np.diff(starts).tolist())
    assert len(strides) == 1, f"the stride moved under jitter alone: {sorted(strides)}"
    stride = strides.pop()
    # On the requested grid, and covering the mean time per window (0.312 s) with a margin: no queue builds.
    assert stride % REQUESTED == 0 and stride / RATE >= 0.312 * 1.05, stride
    # No drift: image i is the window at grid point k0 + i (none skipped), across 160 s of stream.
    np.testing.assert_array_equal(starts, starts[0] + stride * np.arange(len(starts)))
    assert starts[0] % stride == 0
    assert sim.dropped == 0
    # Fresh: nothing waits behind a queue; p50 below two window-times.
    assert np.median(latency) < 2 * 0.3, np.median(latency)
    # Held to a fixed delay after each window, the images leave on the stride's period; only the few
    # slower than the hold (one in 20 here) move two gaps, and a burst of them a few more.
    gaps = np.diff(published)
    assert np.mean(np.abs(gaps - stride / RATE) <= 0.1 * stride / RATE) >= 0.9, gaps


def test_drop_oldest_under_the_same_load_bursts_and_lags():
    sim = SimulatedLivePath("drop_oldest", jittery(lambda t: 0.3, seed=1), warmup_s=0.25).run(60)
    published, starts, latency = sim.after(10.0)
    assert sim.dropped > 1000  # 100 windows/s cut, about 3 served
    assert np.median(latency) > 2 * 0.3  # every image waited behind a full queue
    assert len(set(np.diff(starts).tolist())) > 3  # the images' windows are irregularly spaced


def test_even_adapts_when_the_load_truly_changes():
    phases = [(0.0, 0.3), (90.0, 0.6), (180.0, 0.15)]  # seconds per window from that time on

    def base(t: float) -> float:
        return [s for start, s in phases if t >= start][-1]

    sim = SimulatedLivePath("even", jittery(base, seed=2), warmup_s=0.3).run(270)
    seen = []
    for (start, per), end in zip(phases, [p[0] for p in phases[1:]] + [270.0]):
        _, starts, latency = sim.after(start + 40.0, end)  # 40 s to settle after the change (about 40 windows)
        strides = set(np.diff(starts).tolist())
        assert len(strides) == 1, (per, sorted(strides))
        stride = strides.pop()
        # Sustained (the mean time per window is 1.04x per) and not wasteful.
        assert per * 1.04 * 1.05 <= stride / RATE <= per * 1.15 * HEADROOM * 1.4, (per, stride)
        assert np.median(latency) < 2 * per, (per, np.median(latency))
        seen.append(stride)
    assert seen[0] < seen[1] and seen[2] < seen[0], seen  # grew with the load, shrank when it went
    assert sim.dropped <= 2 * QUEUE  # a few, only while the doubled load was being recognised


def test_a_lone_slow_window_does_not_move_the_stride():
    pacer = RatePacer("even")
    for _ in range(40):
        pacer.observe(0.3)
    before = pacer.stride(REQUESTED, RATE)
    pacer.observe(0.9)  # one window 3x slower (another process took the core)
    assert pacer.stride(REQUESTED, RATE) == before
    for _ in range(12):  # the load stays: most of the latest windows at 0.9 s
        pacer.observe(0.9)
    assert pacer.stride(REQUESTED, RATE) > before


def test_a_stride_whose_time_depends_on_it_does_not_oscillate():
    # On two cores the time per window depends on the stride itself: back to back (a short period) the
    # driver preempts inference, with idle time between windows it does not. Measured: 8,000 and 10,400
    # frames alternated every dozen windows. Here 0.28 s per window at strides of 10,000 frames or more,
    # 0.42 s below: the time measured at the long stride promises a short one that is too short again.
    sim = SimulatedLivePath("even", lambda t: 0.0, warmup_s=0.3)
    sim.took = lambda t: 0.28 if (sim.pacer._stride or 0) >= 10000 else 0.42
    sim.run(240)
    _, starts, latency = sim.after(30.0)
    strides = np.diff(starts)
    changes = int(np.count_nonzero(np.diff(strides)))
    # A retry of the shorter strides after RETRY_WINDOWS, then after twice as many (about 50 s and 100 s
    # here), each moves it two or three times; without the backoff it moved every dozen windows (105 times).
    assert changes <= 8, (changes, sorted(set(strides.tolist())))
    # Where it stays, its period covers the time a window takes at it: 0.42 s below 10,000 frames.
    steady = np.bincount(strides).argmax()
    assert np.mean(strides == steady) > 0.9 and steady / RATE >= (0.28 if steady >= 10000 else 0.42) * 1.05
    assert np.median(latency) < 2 * 0.42


def test_a_slow_start_of_the_stream_is_not_taken_for_a_stride_that_proved_too_short():
    # The stream starting (first packets, caches, the driver's own start) makes the first windows
    # slower than the steady state, in two steps here (0.45 s, then 0.6 s for 7 s): the stride grows twice.
    # Measured (issue 29): 7,200 -> 12,000 -> 14,400 frames at start, then 14,400 for 100 windows
    # before it came down to the 10,400 that the steady 0.4 s needed: 46 % of the images within +-10 %.
    # A stride reached by growing and then grown from was a sizing of the time, not a stride that
    # failed on a retry: only a stride reached by shrinking is held back from (the oscillation above).
    sim = SimulatedLivePath("even", lambda t: 0.45 if t < 3.0 else 0.6 if t < 10.0 else 0.4, warmup_s=0.3).run(120)
    _, starts, latency = sim.after(50.0)  # 40 s of steady windows, well past DWELL and SAMPLES' turnover
    strides = set(np.diff(starts).tolist())
    assert strides == {REQUESTED * 44}, sorted(strides)  # 0.4 s x HEADROOM: 8,800 frames, the steady need
    assert np.median(latency) < 2 * 0.4
