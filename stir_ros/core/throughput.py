"""Can the driver sustain its sensor mode? Required against measured throughput, in words.

A spike camera does not wait: at 1000x1000 and 20 kHz it delivers 2.5 GB/s of packed spikes, and a
driver that cannot publish that fast loses frames in the camera's own buffer. The driver states,
at start and in /diagnostics, whether the configured mode can be sustained:

- at start, :func:`probe` times the driver's own per-packet work (read from the source into the
  message buffer, serialise) for a few packets and :func:`verdict` compares the frames/s it
  reaches with ``frame_rate_hz``, and the packet size with the shared-memory segment;
- while streaming, :class:`PublishMeter` measures the frames/s actually published and the share of
  real time the publishing thread is busy (reading and publishing, not waiting): above 100 % the
  mode cannot be sustained whatever the probe said (the machine may be loaded, the transport slow).

ROS-free: the callables passed to :func:`probe` do the ROS work.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["HEADROOM", "ModeVerdict", "PublishMeter", "probe", "verdict"]

#: The driver's work must leave this share of real time free: the rest of the path (the DDS
#: hand-over, the reconstructor, the machine's other work) runs on the same cores.
HEADROOM = 0.8


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
        what: What was measured, for the text (``"read + serialise, measured at start"``).
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
    elif ratio * HEADROOM < 1.0:
        problems.append(
            f"{what} reaches {measured_fps:,.0f} frames/s, {100 * ratio:.0f} % of the {frame_rate_hz:,.0f} required "
            f"(at most {100 * HEADROOM:.0f} % of real time may be spent there)"
        )
    if segment_bytes and 2 * packet_bytes > segment_bytes:
        problems.append(
            f"a packet of {packet_bytes / 1e6:.2f} MB does not fit twice into the {segment_bytes / 2**20:g} MB "
            "shared-memory segment: lower frames_per_packet or raise the segment (config/fastdds_spike_stream.xml)"
        )
    if problems:
        return ModeVerdict(False, frame_rate_hz, measured_fps, f"NOT sustainable: {need}; " + "; ".join(problems))
    text = (f"sustainable: {need}; {what} reaches {measured_fps:,.0f} frames/s "
            f"({ratio:.1f}x the {frame_rate_hz:,.0f} required)")  # fmt: skip
    return ModeVerdict(True, frame_rate_hz, measured_fps, text)


def probe(work: Callable[[], int], min_seconds: float = 0.2, min_calls: int = 3, max_calls: int = 50) -> float:
    """Frames per second of ``work`` (a callable returning the frames it handled), timed.

    Calls it at least ``min_calls`` times and until ``min_seconds`` have passed (at most
    ``max_calls``); the first call is not timed (it allocates and warms caches).
    """
    work()
    frames, calls = 0, 0
    start = time.perf_counter()
    while calls < min_calls or (time.perf_counter() - start < min_seconds and calls < max_calls):
        frames += work()
        calls += 1
    elapsed = time.perf_counter() - start
    return frames / elapsed if elapsed > 0 else 0.0


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
