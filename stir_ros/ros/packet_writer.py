# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""SpikePackets from a spike source, in one reused message (the driver's conversion to messages)."""

from __future__ import annotations

import array
import copy
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from stir_ros.core.packing import ENCODING_VIDAR_BITPACKED, decode_payload, encode_frames, payload_size
from stir_ros.core.sources import DatSource, SimSource, SpikeSource
from stir_ros.runtime.throughput import probe
from stir_ros.msg import SpikePacket
from stir_ros.ros.driver_settings import DriverSettings

__all__ = ["PacketWriter"]


class PacketWriter:
    """SpikePackets from a source, built in one reused message around one reused payload buffer.

    ``publish()`` converts and serialises the message before it returns, so the same message and
    buffer serve every packet: no per-packet allocation (a fresh 12.5 MB buffer is a fresh set of
    page faults), and a source with ``read_into`` (:class:`DatSource`) writes its frames straight
    into the buffer: one copy from the file to the message instead of two.
    """

    def __init__(self, source: SpikeSource, settings: DriverSettings) -> None:
        self.source, self.encoding = source, settings.encoding
        h, w = source.height, source.width
        self.frame_bytes = payload_size(h, w, 1, settings.encoding)
        self.msg = SpikePacket()
        self.msg.header.frame_id = settings.frame_id
        self.msg.height, self.msg.width = h, w
        self.msg.frame_rate_hz = float(source.frame_rate_hz)
        self.msg.encoding = settings.encoding
        self._attach(array.array("B", bytes(settings.frames_per_packet * self.frame_bytes)))
        self.direct = callable(getattr(source, "read_into", None)) and settings.encoding == ENCODING_VIDAR_BITPACKED

    def _attach(self, data: array.array) -> None:
        """Make ``data`` the message's payload and the buffer frames are written into.

        The generated setter keeps an ``array.array`` as it is only with ``ROS_PYTHON_CHECK_FIELDS=1``
        and copies it otherwise, so the buffer is whatever the message holds after the assignment.
        """
        self.msg.data = data
        self.buffer = self.msg.data
        self.view = np.frombuffer(self.buffer, np.uint8)

    def read(self, want: int) -> SpikePacket | None:
        """Read up to ``want`` frames into the message (header stamps and counters not set)."""
        if self.msg.data is not self.buffer:  # the previous packet was a short one
            self._attach(self.buffer)
        payload = None
        if self.direct:
            n = self.source.read_into(self.view, want)  # type: ignore[attr-defined]  # self.direct: it has one
            if n is None:
                return None
        else:
            block = self.source.read(want)
            if block is None:
                return None
            n, payload = block.num_frames, block.data
            if block.encoding != self.encoding:
                frames = decode_payload(payload, self.source.height, self.source.width, n, block.encoding)
                payload = encode_frames(frames, self.encoding)
        nbytes = n * self.frame_bytes
        if nbytes == len(self.buffer):
            if payload is not None:
                np.copyto(self.view, np.asarray(payload, np.uint8).reshape(-1))
        else:  # a short packet (the last one, or a source that returned fewer frames): a buffer of its own
            data = array.array("B")
            data.frombytes(np.ascontiguousarray(self.view[:nbytes] if payload is None else payload, np.uint8).data)
            self.msg.data = data
        self.msg.num_frames = n
        return self.msg

    def probe(self, publish: Callable[[SpikePacket], Any] | None = None) -> tuple[float, str]:
        """Frames/s of this writer's work, measured without consuming the stream.

        A :class:`DatSource` is read (and put back where it was) and the message handed to
        ``publish`` (a publisher on a topic nobody reads: rclpy's conversion and Fast DDS's
        serialisation, as for every packet; without one, ``serialize_message``, which costs
        more), as the publishing thread does per packet. A :class:`SimSource` is simulated on a
        copy (the stream's own frames stay as they would have been), in the process's CPU time
        (torch may simulate on several threads): the simulator is usually what limits a
        simulated mode. For any other source only the message path is timed, and the source's
        own speed shows while streaming (``publish_busy``).
        """
        if publish is None:
            from rclpy.serialization import serialize_message

            publish = serialize_message
        send: Callable[[SpikePacket], Any] = publish
        want = len(self.buffer) // self.frame_bytes
        self.msg.num_frames = want
        source = self.source
        if self.direct and isinstance(source, DatSource):
            saved = (source.position, source.frames_read)

            def work() -> int:
                n = source.read_into(self.view, want) or 0
                send(self.msg)
                return n

            try:
                return probe(work), "read + publish (CPU time, measured at start)"
            finally:
                source.position, source.frames_read = saved
        if isinstance(source, SimSource):
            twin = copy.deepcopy(source)
            twin.max_frames = 0  # endless: the stream's own source keeps its end

            def simulate_and_publish() -> int:
                msg = self.read(want)  # from the copy, converted as every packet is
                assert msg is not None  # an endless simulation
                send(msg)
                return int(msg.num_frames)

            self.source = twin
            try:
                measured = probe(simulate_and_publish, min_calls=1, clock=time.process_time)
            finally:
                self.source = source
            return measured, "simulate + publish (CPU time, measured at start)"
        scratch = np.zeros_like(self.view)

        def copy_and_publish() -> int:
            np.copyto(self.view, scratch)
            send(self.msg)
            return want

        return probe(copy_and_publish), "copy + publish, source not included (CPU time, measured at start)"

