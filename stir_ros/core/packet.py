# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""One SpikePacket's header, made once where the message arrives, and its check against the payload.

:class:`PacketHeader` holds the fields of a packet that the stream bookkeeping needs. It is built
once at the message boundary: :func:`packet_header` for a message object (rclpy's, or one read
from a bag with rosbags), :func:`stir_ros.core.spike_cdr.parse_spike_packet` for a serialised one;
from there the one object travels: :func:`validate_packet` checks it against the payload, the
:class:`~stir_ros.core.stream_monitor.StreamMonitor` classifies it, the defect tracker samples
its frames and the :class:`~stir_ros.core.stream.WindowCutter` keeps its frames.

ROS-free: a message is read through its attributes only.
"""

from __future__ import annotations

import array
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from stir_ros.core.errors import PacketError, SpikeFormatError
from stir_ros.core.limits import MAX_FRAME_RATE_HZ, MAX_FRAME_SIDE, MAX_PACKET_BYTES, MIN_FRAME_RATE_HZ
from stir_ros.core.packing import ENCODING_UNPACKED_U8, ENCODINGS, as_byte_array, payload_size

__all__ = ["PacketHeader", "packet_header", "packet_payload", "validate_packet"]


@dataclass(frozen=True)
class PacketHeader:
    """The header fields of a SpikePacket that stream bookkeeping needs (the message's names)."""

    seq: int
    first_frame_index: int
    num_frames: int
    height: int
    width: int
    encoding: str
    stamp_ns: int
    frame_rate_hz: float


def packet_header(msg: Any) -> PacketHeader:
    """The header fields of a SpikePacket, live (rclpy) or deserialised from a bag (rosbags)."""
    stamp = msg.header.stamp
    return PacketHeader(
        seq=int(msg.seq), first_frame_index=int(msg.first_frame_index), num_frames=int(msg.num_frames),
        height=int(msg.height), width=int(msg.width), encoding=str(msg.encoding),
        stamp_ns=int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec), frame_rate_hz=float(msg.frame_rate_hz),
    )  # fmt: skip


def packet_payload(msg: Any) -> np.ndarray:
    """The payload of a SpikePacket as a 1-D uint8 array sharing memory with the message (no copy).

    rclpy holds ``uint8[]`` fields as ``array.array('B')``, rosbags as a numpy array.
    """
    data = msg.data
    if isinstance(data, (array.array, bytes, bytearray, memoryview)):
        return np.frombuffer(data, np.uint8)
    return np.asarray(data, np.uint8).reshape(-1)


def _packet_error(kind: str, message: str) -> PacketError:
    err = PacketError(message)
    err.kind = kind  # type: ignore[attr-defined]
    return err


def validate_packet(data: Any, header: PacketHeader) -> np.ndarray:
    """Check a packet's header against its payload without allocating; return the payload view.

    Raises:
        PacketError: Unknown encoding, zero/absurd size (a side over ``MAX_FRAME_SIDE``, a payload
            over ``MAX_PACKET_BYTES``), ``num_frames`` 0, a frame rate outside
            ``MIN_FRAME_RATE_HZ..MAX_FRAME_RATE_HZ``, a payload length that disagrees with the
            header, or an ``unpacked_u8`` payload
            with values other than 0 and 1 (one pass over the bytes; ``vidar_bitpacked`` payloads
            cannot hold a bad value). The exception's ``kind`` attribute names the problem for
            counters: ``unknown_encoding``, ``bad_num_frames``, ``bad_frame_rate``, ``bad_size``,
            ``payload_length`` or ``bad_values``.
    """
    height, width, num_frames, encoding = header.height, header.width, header.num_frames, header.encoding
    frame_rate_hz = header.frame_rate_hz
    if encoding not in ENCODINGS:
        raise _packet_error("unknown_encoding", f"unknown encoding {encoding!r}; expected one of {ENCODINGS}")
    if isinstance(num_frames, bool) or not isinstance(num_frames, (int, np.integer)) or num_frames <= 0:
        raise _packet_error("bad_num_frames", f"num_frames must be a positive integer, got {num_frames!r}")
    if not (
        isinstance(frame_rate_hz, (int, float))
        and math.isfinite(frame_rate_hz)
        and MIN_FRAME_RATE_HZ <= frame_rate_hz <= MAX_FRAME_RATE_HZ
    ):
        raise _packet_error(
            "bad_frame_rate",
            f"frame_rate_hz must be a number in {MIN_FRAME_RATE_HZ:g}..{MAX_FRAME_RATE_HZ:g} Hz, got {frame_rate_hz!r}",
        )
    try:
        expected = payload_size(height, width, int(num_frames), encoding)
    except SpikeFormatError as err:
        raise _packet_error("bad_size", str(err)) from err
    if height > MAX_FRAME_SIDE or width > MAX_FRAME_SIDE:
        raise _packet_error(
            "bad_size", f"frame size {height}x{width} exceeds {MAX_FRAME_SIDE} pixels per side (no spike sensor is larger)"
        )
    if expected > MAX_PACKET_BYTES:
        raise _packet_error(
            "bad_size", f"packet of {num_frames} frames of {height}x{width} would be {expected} bytes; "
            f"the limit is {MAX_PACKET_BYTES} bytes per packet"
        )
    raw = as_byte_array(data, PacketError)
    if raw.size != expected:
        raise _packet_error(
            "payload_length",
            f"payload has {raw.size} bytes, expected {expected} for {num_frames} frames of "
            f"{height}x{width} in {encoding}",
        )
    # Checked here rather than when the window is decoded: there a bad packet would fail the whole
    # batch, good windows included.
    if encoding == ENCODING_UNPACKED_U8 and raw.size and int(raw.max()) > 1:
        raise _packet_error("bad_values", f"unpacked_u8 payload has values other than 0 and 1 (max {int(raw.max())})")
    return raw
