# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""One packet stream, packets in and windows out: the path shared by the live node and ``bag reconstruct``.

:class:`StreamProcessor` does, for each packet, what both the ``spike_reconstructor`` node and
the offline ``bag reconstruct`` do, in one place so that they cannot drift apart (their images
are compared byte for byte by ``test/test_bag_live_vs_offline.py``):

1. validate the header against the payload (:func:`~stir_ros.core.packet.validate_packet`) and
   the window it would make against ``max_window_bytes``: a bad packet is *rejected*;
2. let the :class:`~stir_ros.core.stream_monitor.StreamMonitor` classify it: a duplicate or late packet
   is *dropped*, a lost packet, restart, size/encoding/rate change, frame gap or stamp going
   backwards resets the window buffer;
3. let the :class:`~stir_ros.core.defects.DefectTracker` count the spikes of the frames it samples
   (a fixed sensor-clock schedule, counted from the packed payload: no window is decoded for it)
   and, every so many sampled frames, replace its defect map;
4. (re)create the :class:`~stir_ros.core.stream.WindowCutter` when the window length or stride
   changed, or reset it, and push the frames: the windows they complete come back, each
   carrying the defect repair in force now (applied when its frames are decoded, DESIGN.md §8).

What happens around it (logging, queueing, publishing, writing a bag) stays with the caller. The
header of a message, live (rclpy) or read from a bag (rosbags), is made once, where the message
arrives (:func:`~stir_ros.core.packet.packet_header`, re-exported here for the bag tools, or
:func:`~stir_ros.core.spike_cdr.parse_spike_packet`), and that one object is passed on.

ROS-free: no rclpy here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from stir_ros.core.defects import DefectTracker
from stir_ros.core.errors import PacketError
from stir_ros.core.limits import MAX_WINDOW_BYTES
from stir_ros.core.packet import PacketHeader, packet_header, packet_payload, validate_packet
from stir_ros.core.packing import decode_payload
from stir_ros.core.stream import Window, WindowCutter, stride_for_rate
from stir_ros.core.stream_monitor import StreamMonitor

__all__ = [
    "REJECTED", "DROPPED", "IDLE", "ACCEPTED", "PacketOutcome", "StreamProcessor", "packet_header", "packet_payload",
]  # fmt: skip

#: :attr:`PacketOutcome.status` values.
REJECTED = "rejected"  # the header or payload is invalid: nothing counted but :attr:`StreamProcessor.rejected`
DROPPED = "dropped"  # a duplicate or late (reordered) packet
IDLE = "idle"  # accepted and counted, but the caller is idle: no window is cut
ACCEPTED = "accepted"  # pushed to the window cutter (its windows may be none)


class PacketOutcome(NamedTuple):
    """What :meth:`StreamProcessor.push` did with one packet (a tuple: one per packet, made cheaply).

    Attributes:
        header: The packet's header.
        status: ``"rejected"``, ``"dropped"``, ``"idle"`` or ``"accepted"`` (see the constants).
        windows: The windows the packet completed, oldest first (only when accepted).
        event: The monitor's event (``None`` for an ordinary packet, ``"start"``, ``"gap"``,
            ``"duplicate"``, ...; see :class:`~stir_ros.core.stream_monitor.PacketCheck`); ``None`` when
            rejected.
        message: The monitor's explanation of the event, or the rejection's.
        error: Why the packet was rejected (its ``kind`` attribute names the problem).
    """

    header: PacketHeader
    status: str
    windows: Sequence[Window] = ()
    event: str | None = None
    message: str = ""
    error: PacketError | None = None

    @property
    def notable_event(self) -> str | None:
        """The event if it is worth reporting (not ``None``, not the stream's ``"start"``)."""
        return None if self.event in (None, "start") else self.event


class StreamProcessor:
    """Packet headers and payloads of one stream in, windows out, with the stream's counters.

    Args:
        window_length: Frames per window.
        stride_frames: Frames between windows (when ``output_rate_hz`` is 0).
        output_rate_hz: If > 0, the stride is ``round(frame_rate_hz / output_rate_hz)`` of each packet.
        decode: Decode each accepted payload on arrival (``True``: once, however many windows
            share its frames; what the bag tool does), or keep it encoded and decode when a window
            is stacked (``False``: windows dropped later cost nothing; what the node does).
        max_window_bytes: Reject packets whose window (``window_length x height x width`` bytes)
            would be larger; ``None`` for no limit.
        defects: The stream's defect map (estimated, from a file, or off); ``None``: the default
            :class:`~stir_ros.core.defects.DefectTracker` (estimated online).

    The window length and stride may change between packets (:meth:`set_windows`): the next
    accepted packet then starts a new cutter. Counters: :attr:`monitor` (packets and frames
    accepted, lost packets, duplicates, ...), :attr:`rejected` (by kind), :attr:`events` (by
    event, ``start`` not counted), :attr:`buffer_resets` and :attr:`windows_cut`.
    """

    def __init__(
        self,
        window_length: int,
        stride_frames: int,
        output_rate_hz: float = 0.0,
        *,
        decode: bool = False,
        max_window_bytes: int | None = MAX_WINDOW_BYTES,
        defects: DefectTracker | None = None,
    ) -> None:
        self.decode = decode
        self.defects = DefectTracker() if defects is None else defects
        self.max_window_bytes = max_window_bytes
        self.set_windows(window_length, stride_frames, output_rate_hz)
        self.monitor = StreamMonitor()
        self.cutter: WindowCutter | None = None  # made by the first accepted packet
        self.rejected: Counter[str] = Counter()
        self.events: dict[str, int] = {}
        self.buffer_resets = 0  # a reset of the cutter a packet asked for (lost packets, restart, ...)
        self.windows_cut = 0
        self.windows_repaired = 0  # windows cut with defective pixels to repair

    #: ``pace(requested_stride, frame_rate_hz) -> stride`` (the node's ``rate_policy``); None: as requested.
    pace: Callable[[int, float], int] | None = None

    def set_windows(self, window_length: int, stride_frames: int, output_rate_hz: float = 0.0) -> None:
        """Window length and stride for the packets to come."""
        self.window_length, self.stride_frames, self.output_rate_hz = window_length, stride_frames, output_rate_hz

    def requested_stride(self, frame_rate_hz: float) -> int:
        """Frames between windows asked for (``stride_frames`` or ``output_rate_hz``) at ``frame_rate_hz``."""
        if self.output_rate_hz > 0:
            return stride_for_rate(frame_rate_hz, self.output_rate_hz)
        return self.stride_frames

    def stride_for(self, frame_rate_hz: float) -> int:
        """Frames between windows for a stream at ``frame_rate_hz``: the requested stride, stretched by :attr:`pace`."""
        stride = self.requested_stride(frame_rate_hz)
        return stride if self.pace is None else self.pace(stride, frame_rate_hz)

    @property
    def packets(self) -> int:
        """Packets accepted (not rejected or dropped), idle ones included."""
        return self.monitor.packets

    @property
    def frames(self) -> int:
        """Frames of the accepted packets."""
        return self.monitor.frames

    def counters(self) -> dict[str, int]:
        """The monitor's counters, then ``rejected``, ``buffer_resets`` and ``windows_cut``."""
        return {**self.monitor.counters(), "rejected": sum(self.rejected.values()),
                "buffer_resets": self.buffer_resets, "windows_cut": self.windows_cut,
                "windows_repaired": self.windows_repaired}  # fmt: skip

    def clear_buffer(self) -> None:
        """Drop the buffered frames; cutting starts afresh with the next accepted packet."""
        self.cutter = None

    def reset(self) -> None:
        """Forget the stream (the next packet is a start) and the buffered frames; counters are kept."""
        self.cutter = None
        self.monitor.reset()

    def push(self, header: PacketHeader, payload: Any, *, idle: Callable[[], bool] | None = None) -> PacketOutcome:
        """Take one packet; return what was done with it and the windows it completed.

        Args:
            header: The packet's header (:func:`packet_header`).
            payload: Its payload (bytes-like, ``array.array('B')`` or uint8 array); kept by
                reference, not copied.
            idle: Asked once a packet is accepted: if it answers ``True`` the packet is counted
                but no window is cut (the node's ``lazy`` mode with nobody subscribed).
        """
        try:
            raw = validate_packet(payload, header)
            self._check_window_size(header)
        except PacketError as err:
            self.rejected[getattr(err, "kind", "invalid")] += 1
            return PacketOutcome(header, REJECTED, message=str(err), error=err)
        check = self.monitor.check(header)
        if check.event not in (None, "start"):
            self.events[check.event] = self.events.get(check.event, 0) + 1
        if check.action == "drop":
            return PacketOutcome(header, DROPPED, event=check.event, message=check.message)
        # Before the idle check: the maps do not depend on whether anybody watched.
        self.defects.observe(raw, header)
        if idle is not None and idle():
            return PacketOutcome(header, IDLE, event=check.event, message=check.message)
        stride = self.stride_for(header.frame_rate_hz)
        cutter = self.cutter
        if cutter is None or (cutter.stride_frames, cutter.window_length) != (stride, self.window_length):
            cutter = self.cutter = WindowCutter(self.window_length, stride)
        elif check.action == "reset":
            self.buffer_resets += 1
            cutter.reset()
        cutter.repair = self.defects.repair
        if self.decode:
            frames = decode_payload(raw, header.height, header.width, header.num_frames, header.encoding)
            windows = cutter.push(frames, header.first_frame_index, header.stamp_ns, header.frame_rate_hz)
        else:
            windows = cutter.push_checked(raw, header)
        self.windows_cut += len(windows)
        if cutter.repair is not None:
            self.windows_repaired += len(windows)
        return PacketOutcome(header, ACCEPTED, windows, check.event, check.message)

    def _check_window_size(self, header: PacketHeader) -> None:
        size = self.window_length * header.height * header.width
        if self.max_window_bytes is not None and size > self.max_window_bytes:
            err = PacketError(
                f"a window of {self.window_length} frames of {header.height}x{header.width} would take {size} "
                f"bytes, more than the limit of {self.max_window_bytes}"
            )
            err.kind = "window_too_large"  # type: ignore[attr-defined]
            raise err
