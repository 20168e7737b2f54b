# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The reconstructor's input side, on the executor thread: packets and camera_info in, windows queued.

A part of :class:`stir_ros.ros.reconstructor_node.ReconstructorWork` (a mixin: ``self`` is the
node). A packet arrives serialised (the raw subscription), is read in place
(:mod:`stir_ros.core.spike_cdr`) or converted (:mod:`stir_ros.ros.conversions`) into one
:class:`~stir_ros.core.packet.PacketHeader` and its payload, and handed to the stream processor
(the path ``bag reconstruct`` takes too); the windows it completes go to the inference worker.
"""

from __future__ import annotations

import math
import time

from sensor_msgs.msg import CameraInfo

from stir_ros.core.imaging import image_frame_id
from stir_ros.core.errors import PacketError
from stir_ros.core.limits import MAX_FRAME_ID_CHARS, MAX_MESSAGE_OVERHEAD_BYTES
from stir_ros.core.spike_cdr import parse_spike_packet
from stir_ros.core.stream_processor import DROPPED, IDLE, REJECTED
from stir_ros.msg import SpikePacket
from stir_ros.ros import emit
from stir_ros.ros.conversions import packet_header, packet_payload

__all__ = ["ReconstructorInput"]


class ReconstructorInput:
    """Packets and camera_info in (executor thread), windows to the worker; ``lazy``'s idle switch."""

    _last_packet: float | None  # time.monotonic() of the last packet, good or bad
    _frame_size: tuple[int, int] | None  # the latest packet's (height, width)

    def has_subscribers(self) -> bool:
        """Whether anything subscribes to an image output (image, camera_info, image/compressed)."""
        pubs = [self.image_pub, self.info_pub, self.compressed_pub]
        return any(p is not None and p.get_subscription_count() > 0 for p in pubs)

    def _idle_now(self) -> bool:
        """With ``lazy``: whether to skip reconstruction for lack of subscribers.

        Going idle empties the window buffer and the queue (nothing is decoded or reconstructed for
        nobody); when a subscriber appears, cutting starts afresh at the next window of the frame grid.
        """
        idle = self.settings.lazy and not self.has_subscribers()
        if idle != self.idle:
            self.idle = idle
            if idle:
                self.worker.clear()
                self.stream.clear_buffer()
            why = "an image output has a subscriber" if self.settings.lazy else "lazy is off"
            emit(self.get_logger().info, "no subscribers to the images: idle (lazy), counting packets only" if idle
                 else f"{why}: reconstructing")  # fmt: skip
        return idle


    def _on_camera_info(self, msg: CameraInfo) -> None:
        """Keep the camera's calibration if it is usable: finite numbers, K/R/P of their sizes."""
        try:
            numbers = [*msg.d, *msg.k, *msg.r, *msg.p]
            if not all(math.isfinite(float(v)) for v in numbers) or len(msg.d) > 64:
                raise ValueError("non-finite numbers or more than 64 distortion coefficients")
        except (TypeError, ValueError) as err:
            self.bad_packets["camera_info"] += 1
            self._warn("bad:camera_info", f"ignored a camera_info: {err}")
            return
        self.camera_info = msg

    def _on_spikes(self, msg: SpikePacket | bytes) -> None:
        """A packet from the (raw) subscription, serialised; or a SpikePacket (tests call this too)."""
        received = time.monotonic()
        self._last_packet = received
        try:
            with self._state_lock:
                if not self.active:  # delivered after deactivate or cleanup: nothing to hand it to
                    self.late_callbacks += 1
                    return
                self._handle_packet(msg, received)
        except Exception as err:  # noqa: BLE001 - a bad packet must never stop the node
            self.errors["packet_handling"] += 1
            self._error("packet_handling", f"unexpected error handling a packet: {err!r}")

    def _handle_packet(self, msg: SpikePacket | bytes, received: float) -> None:
        settings, engine = self.settings, self.engine
        self.stream.set_windows(engine.window_length, settings.stride_frames, settings.output_rate_hz)
        if isinstance(msg, (bytes, bytearray, memoryview)):
            try:
                parsed = parse_spike_packet(msg)
            except PacketError as err:
                self.bad_packets["malformed"] += 1
                self._warn("bad:malformed", f"rejected a packet that does not parse: {err}")
                return
            header, payload, msg_frame_id = parsed.header, parsed.payload, parsed.frame_id
            if len(msg) - payload.nbytes > MAX_MESSAGE_OVERHEAD_BYTES:
                payload = payload.copy()  # a view would keep the whole message alive while the window waits
        else:
            header, payload, msg_frame_id = packet_header(msg), packet_payload(msg), msg.header.frame_id
        if len(msg_frame_id) > MAX_FRAME_ID_CHARS or len(header.encoding) > MAX_FRAME_ID_CHARS:
            self.bad_packets["string_too_long"] += 1
            self._warn("bad:string_too_long", f"rejected packet seq {header.seq}: frame_id of {len(msg_frame_id)} and "
                       f"encoding of {len(header.encoding)} characters, at most {MAX_FRAME_ID_CHARS} each")  # fmt: skip
            return
        out = self.stream.push(header, payload, idle=self._idle_now)
        header = out.header
        if out.status == REJECTED:
            kind = getattr(out.error, "kind", "invalid")
            self.bad_packets[kind] += 1
            self._warn(f"bad:{kind}", f"rejected packet seq {header.seq}: {out.error}")
            return
        self._packet_span_s = header.num_frames / header.frame_rate_hz
        self._frame_rate_hz = header.frame_rate_hz
        self._frame_size = (header.height, header.width)  # a new engine of a parameter change is warmed up at it
        self._state_sustainable()
        if out.status == DROPPED:
            self._warn(out.event or "drop", out.message)
            return
        if out.status == IDLE:
            return  # counted by the monitor; no window is cut, decoded or queued
        if out.notable_event is not None:
            self._warn(out.notable_event, out.message)
        if not out.windows:
            return
        frame_id = image_frame_id(settings.frame_id, msg_frame_id)
        if self.worker.submit(out.windows, received, frame_id, settings.queue_size):
            period_s = self.stream.stride_for(header.frame_rate_hz) / header.frame_rate_hz
            kind, message = self.worker.drop_cause(period_s, settings.queue_size)
            self._warn(f"windows_dropped_{kind}", message)

    def _state_sustainable(self) -> None:
        """Once the warm-up has timed a window: log what is sustainable.

        Called when the warm-up ends (the worker thread), at each packet and at the diagnostics timer,
        whichever first knows both the time per window and the stream's frame rate.
        """
        rate = self._frame_rate_hz
        if self._statement_due and self.pacer.seconds_per_window and rate > 0:  # once, like the driver's line
            what, self._statement_due = self._statement_due, ""
            emit(self.get_logger().info, f"{what}: {self.pacer.statement(self.stream.requested_stride(rate), rate)}")
