# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Health of a live spike stream, as ``stir-ros perf`` reports it (ROS-free).

Fed with the header of every packet (:class:`~stir_ros.core.packet.PacketHeader`), its payload's
size and the time it was received, :class:`StreamHealth`
measures over each reporting period:

- rates: packets/s, frames/s and payload MB/s (per second of receive time);
- loss: packets missing from ``seq`` (a gap of ``k`` is ``k`` lost packets), packets that arrive
  out of order or twice, and stream restarts (``seq`` back to 0);
- delay: how far the header stamp of each packet's *last* frame lies behind the receiving clock
  (transport plus driver latency when both clocks are the same);
- drift: the header clock against the sensor clock since the first packet,
  ``(stamp - stamp0) - (first_frame_index - index0) / frame_rate_hz``, in ms and in ppm of the
  elapsed time; a driver stamping nominal capture times has zero drift, a camera whose frame
  clock runs fast or slow against the host shows a steady slope.

A packet whose frame rate no sensor has (not finite, or outside the bounds of the driver's
``frame_rate_hz`` parameter, :mod:`stir_ros.core.limits`) is counted as ``rejected`` with its reason
and left out of everything else: its times would be meaningless (1e-300 Hz puts its last frame
at infinity).

All times are integer nanoseconds; nothing here reads a clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from stir_ros.core.limits import MAX_FRAME_RATE_HZ, MIN_FRAME_RATE_HZ
from stir_ros.core.packet import PacketHeader

__all__ = ["StreamHealth", "HealthReport", "implausible"]


@dataclass
class HealthReport:
    """One reporting period (``totals`` count since the start)."""

    period_s: float
    packets_per_s: float
    frames_per_s: float
    megabytes_per_s: float
    lost: int
    reordered: int
    restarts: int
    delay_ms_mean: float
    delay_ms_max: float
    drift_ms: float
    drift_ppm: float
    rejected: int = 0
    totals: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        """The one-line form ``stir-ros perf`` prints."""
        t = self.totals
        return (
            f"{self.packets_per_s:8.1f} pkt/s {self.frames_per_s:10.0f} frames/s {self.megabytes_per_s:8.2f} MB/s | "
            f"lost {self.lost} (total {t.get('lost', 0)}) reordered {self.reordered} restarts {self.restarts} | "
            f"delay {self.delay_ms_mean:.1f} ms (max {self.delay_ms_max:.1f}) | "
            f"drift {self.drift_ms:+.3f} ms ({self.drift_ppm:+.1f} ppm)"
            + (f" | rejected {self.rejected} (total {t.get('rejected', 0)})" if t.get("rejected") else "")
        )


class StreamHealth:
    """Accumulates packets and produces one :class:`HealthReport` per call to :meth:`report`."""

    def __init__(self) -> None:
        self.totals = {"packets": 0, "frames": 0, "bytes": 0, "lost": 0, "reordered": 0, "restarts": 0, "rejected": 0}
        #: Reason -> packets rejected for it, since the start.
        self.rejections: dict[str, int] = {}
        self._expected_seq: int | None = None
        self._origin: tuple[int, int, int] | None = None  # (stamp_ns, first_frame_index, receive_ns)
        self._last_drift_ms = 0.0
        self._last_drift_ppm = 0.0
        self._reset_period(None)

    def _reset_period(self, start_ns: int | None) -> None:
        self._period_start = start_ns
        self._period = {"packets": 0, "frames": 0, "bytes": 0, "lost": 0, "reordered": 0, "restarts": 0, "rejected": 0}
        self._delays: list[float] = []

    def add(self, packet: PacketHeader, receive_ns: int, payload_bytes: int) -> None:
        """Account for one received packet (its header, when it came, how large its payload was)."""
        if self._period_start is None:
            self._period_start = receive_ns
        p = self._period
        reason = implausible(packet)
        if reason:
            p["rejected"] += 1
            self.rejections[reason] = self.rejections.get(reason, 0) + 1
            return
        if self._expected_seq is not None and packet.seq != self._expected_seq:
            if packet.seq == 0 or packet.seq + 1000 < self._expected_seq:
                p["restarts"] += 1
                self._origin = None
            elif packet.seq > self._expected_seq:
                p["lost"] += packet.seq - self._expected_seq
            else:  # late or duplicate: does not move the expectation back
                p["reordered"] += 1
                self._count(packet, receive_ns, payload_bytes)
                return
        self._expected_seq = packet.seq + 1
        self._count(packet, receive_ns, payload_bytes)
        rate = packet.frame_rate_hz
        if self._origin is None:
            self._origin = (packet.stamp_ns, packet.first_frame_index, receive_ns)
        stamp0, index0, _ = self._origin
        sensor_ns = (packet.first_frame_index - index0) / rate * 1e9
        header_ns = packet.stamp_ns - stamp0
        self._last_drift_ms = (header_ns - sensor_ns) / 1e6
        self._last_drift_ppm = (header_ns - sensor_ns) / sensor_ns * 1e6 if sensor_ns > 0 else 0.0

    def _count(self, packet: PacketHeader, receive_ns: int, payload_bytes: int) -> None:
        p = self._period
        p["packets"] += 1
        p["frames"] += packet.num_frames
        p["bytes"] += payload_bytes
        last_frame_ns = packet.stamp_ns + (packet.num_frames - 1) / packet.frame_rate_hz * 1e9
        self._delays.append((receive_ns - last_frame_ns) / 1e6)

    def report(self, now_ns: int) -> HealthReport:
        """Close the current period at ``now_ns`` and start the next one."""
        start = self._period_start if self._period_start is not None else now_ns
        seconds = max((now_ns - start) / 1e9, 1e-9)
        p = self._period
        for key, value in p.items():
            self.totals[key] += value
        report = HealthReport(
            period_s=seconds,
            packets_per_s=p["packets"] / seconds,
            frames_per_s=p["frames"] / seconds,
            megabytes_per_s=p["bytes"] / seconds / 1e6,
            lost=p["lost"],
            reordered=p["reordered"],
            restarts=p["restarts"],
            delay_ms_mean=sum(self._delays) / len(self._delays) if self._delays else 0.0,
            delay_ms_max=max(self._delays) if self._delays else 0.0,
            drift_ms=self._last_drift_ms,
            drift_ppm=self._last_drift_ppm,
            rejected=p["rejected"],
            totals=dict(self.totals),
        )
        self._reset_period(now_ns)
        return report


def implausible(packet: PacketHeader) -> str:
    """Why ``packet`` cannot be measured (empty if it can): a frame rate no sensor has."""
    rate = packet.frame_rate_hz
    if not (math.isfinite(rate) and MIN_FRAME_RATE_HZ <= rate <= MAX_FRAME_RATE_HZ):
        return f"frame_rate_hz outside [{MIN_FRAME_RATE_HZ:g}, {MAX_FRAME_RATE_HZ:g}] Hz"
    return ""
