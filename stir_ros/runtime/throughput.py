# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Can the driver sustain its sensor mode? Required against measured throughput, in words.

A spike camera does not wait: at 1000x1000 and 20 kHz it delivers 2.5 GB/s of packed spikes, and a
driver that cannot publish that fast loses frames in the camera's own buffer. The driver states,
at start and in /diagnostics, whether the configured mode can be sustained:

- at start, :func:`probe` times the driver's own per-packet work (read from the source into the
  message buffer, serialise) for a few packets, in CPU time, and :func:`verdict` compares the
  frames/s it reaches with ``frame_rate_hz``, the packet size with the shared-memory segment and
  with the packet size measured best for the mode (:func:`recommended_frames_per_packet`);
- while streaming, :class:`PublishMeter` measures the frames/s actually published and the share of
  real time the publishing thread is busy (reading and publishing, not waiting): above 100 % the
  mode cannot be sustained whatever the probe said (the machine may be loaded, the transport slow).

ROS-free: the callables passed to :func:`probe` do the ROS work.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "HEADROOM", "PACKET_BYTES_TARGET", "ModeVerdict", "PublishMeter", "probe", "recommended_frames_per_packet", "verdict",
]  # fmt: skip

#: The driver's work must leave this share of real time free: the rest of the path (the DDS
#: hand-over, the reconstructor, the machine's other work) runs on the same cores.
HEADROOM = 0.8
#: Packet size the frames per packet are chosen for: measured in bench/bench_stages.py and
#: bench/bench_transport.py (BENCHMARKS.md, "Issue 14"). Per frame, serialising, deserialising
#: and copying a 2.5 MB packet cost a third less than a 12.5 MB one (it stays in the core's 2 MB
#: L2 and the last-level cache, and its buffers are reused instead of freshly page-faulted), and
#: six of them fit the 16 MB shared-memory segment; below about 1 MB the per-packet cost of
#: rclpy and DDS (some 50-100 us each side) grows instead.
PACKET_BYTES_TARGET = 2_500_000
#: At most this many frames per packet (the 250x400 default, measured loss-free at 40 kHz).
MAX_RECOMMENDED_FRAMES = 100


def recommended_frames_per_packet(height: int, width: int) -> int:
    """Frames per packet for a sensor mode: about :data:`PACKET_BYTES_TARGET`, at most 100.

    250x400: 100 (1.25 MB); 1000x1000: 20 (2.5 MB); 2000x1000: 10 (2.5 MB).
    """
    frame_bytes = (height * width + 7) // 8
    return max(1, min(MAX_RECOMMENDED_FRAMES, PACKET_BYTES_TARGET // max(frame_bytes, 1)))


@dataclass(frozen=True)
class ModeVerdict:
    """The statement about one sensor mode.

    Attributes:
        sustainable: The measured throughput covers the required one with :data:`HEADROOM` to
            spare and the packet fits the shared-memory segment.
        required_fps: Frames per second the mode produces.
        measured_fps: Frames per second the measured work reaches (0: not measured).
        text: One line for the log and /diagnostics.
    """

    sustainable: bool
    required_fps: float
    measured_fps: float
    text: str

    @property
    def too_slow(self) -> bool:
        """The measured work does not reach the required frames/s with :data:`HEADROOM` (or was not measured)."""
        return _too_slow(self.measured_fps, self.required_fps)


def _too_slow(measured_fps: float, required_fps: float) -> bool:
    return measured_fps <= 0 or measured_fps * HEADROOM < required_fps


def verdict(
    height: int,
    width: int,
    frame_rate_hz: float,
    frames_per_packet: int,
    measured_fps: float,
    what: str,
    segment_bytes: int | None = None,
) -> ModeVerdict:
    """State whether ``measured_fps`` sustains ``frame_rate_hz`` frames of ``height`` x ``width``.

    Args:
        height: Frame height.
        width: Frame width.
        frame_rate_hz: The sensor's frame rate (required frames/s).
        frames_per_packet: Frames per packet (the packet size, against the segment).
        measured_fps: Frames per second the measured work reaches.
        what: What was measured, for the text (``"read + publish (CPU time, measured at start)"``).
        segment_bytes: The Fast DDS shared-memory segment, if known: a packet larger than half of
            it cannot be double-buffered, and the stream then waits on the reader.
    """
    frame_bytes = (height * width + 7) // 8
    packet_bytes = frames_per_packet * frame_bytes
    need = f"{height}x{width} at {frame_rate_hz:g} Hz needs {frame_rate_hz * frame_bytes / 1e9:.2f} GB/s"
    ratio = measured_fps / frame_rate_hz if frame_rate_hz > 0 else 0.0
    problems = []
    if measured_fps <= 0:
        problems.append(f"{what}: not measured")
    elif _too_slow(measured_fps, frame_rate_hz):
        problems.append(
            f"{what} reaches {measured_fps:,.0f} frames/s, {100 * ratio:.0f} % of the {frame_rate_hz:,.0f} required "
            f"(at most {100 * HEADROOM:.0f} % of real time may be spent there)"
        )
    best = recommended_frames_per_packet(height, width)
    advice = ""
    if frames_per_packet > 2 * best:
        advice = (f"; frames_per_packet {frames_per_packet} makes {packet_bytes / 1e6:.1f} MB packets, "
                  f"{best} ({best * frame_bytes / 1e6:.2g} MB) is the measured choice for this mode")  # fmt: skip
    if segment_bytes and 2 * packet_bytes > segment_bytes:
        problems.append(
            f"a packet of {packet_bytes / 1e6:.2f} MB does not fit twice into the {segment_bytes / 2**20:g} MB "
            "shared-memory segment: lower frames_per_packet or raise the segment (config/fastdds_spike_stream.xml)"
        )
    if problems:
        return ModeVerdict(False, frame_rate_hz, measured_fps, f"NOT sustainable: {need}; " + "; ".join(problems) + advice)
    text = (f"sustainable: {need}; {what} reaches {measured_fps:,.0f} frames/s "
            f"({ratio:.1f}x the {frame_rate_hz:,.0f} required){advice}")  # fmt: skip
    return ModeVerdict(True, frame_rate_hz, measured_fps, text)


def probe(
    work: Callable[[], int],
    min_seconds: float = 0.2,
    min_calls: int = 3,
    max_calls: int = 50,
    clock: Callable[[], float] = time.thread_time,
) -> float:
    """Frames per second of ``work`` (a callable returning the frames it handled) on one core.

    Calls it at least ``min_calls`` times and until ``min_seconds`` of wall time have passed (at
    most ``max_calls``); the first call is not timed (it allocates and warms caches). The time is
    CPU time (user + system, page faults included; by default the calling thread's,
    ``time.process_time`` for work that runs on several threads), not wall time: what the work
    costs, not how busy the machine happens to be at start; :class:`PublishMeter` measures the
    wall-clock share while streaming.
    """
    work()
    frames, calls = 0, 0
    start, cpu0 = time.perf_counter(), clock()
    while calls < min_calls or (time.perf_counter() - start < min_seconds and calls < max_calls):
        frames += work()
        calls += 1
    cpu = clock() - cpu0
    return frames / cpu if cpu > 0 else 0.0


class PublishMeter:
    """Frames published and time spent working, per reporting period.

    Call :meth:`add` after every packet with the seconds its read and publish took; :meth:`take`
    returns ``(frames_per_s, busy)`` since the previous call: ``busy`` is the share of the period
    the publishing thread worked (1.0: it never waited, and cannot keep up).
    """

    def __init__(self) -> None:
        self._frames = 0
        self._busy_s = 0.0
        self._since = time.monotonic()

    def add(self, frames: int, busy_s: float) -> None:
        self._frames += frames
        self._busy_s += busy_s

    def take(self) -> tuple[float, float]:
        now = time.monotonic()
        period = max(now - self._since, 1e-9)
        result = (self._frames / period, self._busy_s / period)
        self._frames, self._busy_s, self._since = 0, 0.0, now
        return result
