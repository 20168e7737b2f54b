# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Is this packet the next one of its stream? Sequence numbers, frame indices, sizes and stamps.

:class:`StreamMonitor` looks at packet headers (:class:`~stir_ros.core.packet.PacketHeader`:
``seq``, frame index, size, encoding, stamp) and says whether to accept a packet, accept it after
resetting the window buffer, or drop it; it counts lost packets, duplicates, reordering, restarts
and stamps going backwards. ROS-free.
"""

from __future__ import annotations

from dataclasses import dataclass

from stir_ros.core.packet import PacketHeader

__all__ = ["PacketCheck", "StreamMonitor"]


@dataclass(frozen=True)
class PacketCheck:
    """What to do with a packet.

    Attributes:
        action: ``"accept"``, ``"reset"`` (reset the window buffer, then accept) or ``"drop"``.
        event: ``None`` for an ordinary packet, else one of ``"start"``, ``"gap"``, ``"restart"``,
            ``"duplicate"``, ``"reordered"``, ``"frame_gap"``, ``"size_change"``,
            ``"encoding_change"``, ``"rate_change"``, ``"stamp_backwards"``.
        lost_packets: Packets this one shows to be lost (``seq`` gap).
        message: Human-readable explanation for the log.
    """

    action: str
    event: str | None = None
    lost_packets: int = 0
    message: str = ""


class StreamMonitor:
    """Follows ``seq``, frame index, size, encoding, rate and stamp of one packet stream.

    Rules (the first that applies wins):

    - first packet: accept (event ``start``);
    - ``seq`` equal to the last one, same first frame: duplicate, drop;
    - ``seq`` 0, more than ``reorder_window`` behind, or behind with a stamp later than the last
      packet's (a restarted publisher whose first packets were missed): restarted; reset;
    - ``seq`` behind by at most ``reorder_window``, stamp not later: a late (reordered) packet, drop;
    - ``seq`` ahead of the expected one: ``seq - expected`` packets lost; reset;
    - size, encoding or frame rate changed: reset;
    - first frame not following the previous packet: frames lost; reset;
    - stamp earlier than the previous packet's: reset (windows must not straddle a clock jump).

    Counters are plain attributes so that the node can publish them as diagnostics.
    """

    def __init__(self, reorder_window: int = 64) -> None:
        self.reorder_window = int(reorder_window)
        self.packets = 0  # accepted
        self.frames = 0  # accepted
        self.lost_packets = 0
        self.duplicates = 0
        self.reordered = 0
        self.restarts = 0
        self.frame_gaps = 0
        self.size_changes = 0
        self.encoding_changes = 0
        self.rate_changes = 0
        self.stamps_backwards = 0
        self._last: PacketHeader | None = None

    def reset(self) -> None:
        """Forget the stream (the next packet is a start); counters are kept."""
        self._last = None

    def check(self, header: PacketHeader) -> PacketCheck:
        """Classify ``header`` and update the state and counters."""
        last = self._last
        if last is None:
            return self._accept(header, "reset", "start", 0, "stream started")
        expected = last.seq + 1
        if header.seq == last.seq and header.first_frame_index == last.first_frame_index:
            self.duplicates += 1
            return PacketCheck("drop", "duplicate", 0, f"duplicate packet seq {header.seq} dropped")
        if header.seq < expected:
            behind = expected - header.seq
            # A late packet is older than the last one; a restarted driver stamps with a newer clock.
            if header.seq == 0 or behind > self.reorder_window or header.stamp_ns > last.stamp_ns:
                self.restarts += 1
                msg = f"stream restarted: seq {header.seq} after {last.seq}; buffer reset"
                return self._accept(header, "reset", "restart", 0, msg)
            self.reordered += 1
            msg = f"late packet seq {header.seq} (expected {expected}) dropped"
            return PacketCheck("drop", "reordered", 0, msg)
        if header.seq > expected:
            lost = header.seq - expected
            self.lost_packets += lost
            msg = f"{lost} packet(s) lost (seq {last.seq} -> {header.seq}); buffer reset"
            return self._accept(header, "reset", "gap", lost, msg)
        if (header.height, header.width) != (last.height, last.width):
            self.size_changes += 1
            msg = f"frame size changed {last.height}x{last.width} -> {header.height}x{header.width}; buffer reset"
            return self._accept(header, "reset", "size_change", 0, msg)
        if header.encoding != last.encoding:
            self.encoding_changes += 1
            msg = f"encoding changed {last.encoding!r} -> {header.encoding!r}; buffer reset"
            return self._accept(header, "reset", "encoding_change", 0, msg)
        if header.frame_rate_hz != last.frame_rate_hz:
            self.rate_changes += 1
            msg = f"frame rate changed {last.frame_rate_hz} -> {header.frame_rate_hz} Hz; buffer reset"
            return self._accept(header, "reset", "rate_change", 0, msg)
        if header.first_frame_index != last.first_frame_index + last.num_frames:
            self.frame_gaps += 1
            msg = (
                f"frame index jumped from {last.first_frame_index + last.num_frames} to "
                f"{header.first_frame_index} with consecutive seq; buffer reset"
            )
            return self._accept(header, "reset", "frame_gap", 0, msg)
        if header.stamp_ns < last.stamp_ns:
            self.stamps_backwards += 1
            msg = f"stamp went backwards by {(last.stamp_ns - header.stamp_ns) / 1e6:.3f} ms; buffer reset"
            return self._accept(header, "reset", "stamp_backwards", 0, msg)
        return self._accept(header, "accept", None, 0, "")

    def _accept(self, header: PacketHeader, action: str, event: str | None, lost: int, msg: str) -> PacketCheck:
        self._last = header
        self.packets += 1
        self.frames += header.num_frames
        return PacketCheck(action, event, lost, msg)

    def counters(self) -> dict[str, int]:
        """All counters by name."""
        names = (
            "packets", "frames", "lost_packets", "duplicates", "reordered", "restarts", "frame_gaps",
            "size_changes", "encoding_changes", "rate_changes", "stamps_backwards",
        )  # fmt: skip
        return {n: int(getattr(self, n)) for n in names}
