# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""A serialised SpikePacket read in place (stir_ros.core.spike_cdr) against rclpy's own serialiser."""

from __future__ import annotations

import array

import numpy as np
import pytest

pytest.importorskip("rclpy")

from rclpy.serialization import serialize_message  # noqa: E402

from stir_ros.core.errors import PacketError  # noqa: E402
from stir_ros.core.spike_cdr import parse_spike_packet  # noqa: E402
from stir_ros.core.stream_processor import packet_header  # noqa: E402
from stir_ros.msg import SpikePacket  # noqa: E402


def _packet(frame_id: str, encoding: str, payload: bytes, **fields) -> SpikePacket:
    msg = SpikePacket(**fields, encoding=encoding)
    msg.header.frame_id = frame_id
    msg.header.stamp.sec, msg.header.stamp.nanosec = 1_700_000_123, 987_654_321
    msg.data = array.array("B", payload)
    return msg


@pytest.mark.parametrize("frame_id", ["", "a", "ab", "abc", "camera_optical_frame", "ünï"])
@pytest.mark.parametrize("encoding", ["vidar_bitpacked", "unpacked_u8", "x"])
def test_every_field_and_the_payload_as_rclpy_serialises_them(frame_id: str, encoding: str) -> None:
    payload = bytes(np.random.default_rng(len(frame_id)).integers(0, 256, 37, dtype=np.uint8))
    msg = _packet(frame_id, encoding, payload, height=3, width=5, seq=2**40 + 7, first_frame_index=2**33 + 9,
                  frame_rate_hz=40000.5, num_frames=4)
    raw = serialize_message(msg)
    got = parse_spike_packet(raw)
    assert got.header == packet_header(msg)
    assert got.frame_id == frame_id
    assert got.payload.tobytes() == payload and not got.payload.flags.writeable
    assert np.shares_memory(got.payload, np.frombuffer(raw, np.uint8))  # a view, not a copy


def test_an_empty_payload_and_damaged_bytes() -> None:
    raw = serialize_message(_packet("f", "vidar_bitpacked", b"", height=1, width=8, num_frames=1))
    assert parse_spike_packet(raw).payload.size == 0
    full = serialize_message(_packet("f", "vidar_bitpacked", b"\x01" * 10, height=1, width=8, num_frames=10))
    for bad in (b"", b"\x00\x01", b"\x01\x00\x00\x00" + full[4:], full[:-1], full[:30]):
        with pytest.raises(PacketError):
            parse_spike_packet(bad)


def _xcdr2_le(frame_id: bytes, encoding: bytes, payload: bytes) -> bytes:
    """A plain XCDR2 little-endian SpikePacket, built by hand: 8-byte fields aligned to 4."""
    body = bytearray()

    def align(n: int) -> None:
        body.extend(b"\0" * ((-len(body)) % n))

    def string(s: bytes) -> None:
        align(4)
        body.extend(len(s + b"\0").to_bytes(4, "little") + s + b"\0")

    body += (5).to_bytes(4, "little", signed=True) + (6).to_bytes(4, "little")
    string(frame_id)
    align(4)
    body += (2).to_bytes(4, "little") + (8).to_bytes(4, "little")  # height, width
    body += (11).to_bytes(8, "little") + (300).to_bytes(8, "little") + np.float64(20000.0).tobytes()
    body += (1).to_bytes(4, "little")
    string(encoding)
    align(4)
    body += len(payload).to_bytes(4, "little") + payload
    return b"\x00\x07\x00\x00" + bytes(body)


def test_plain_xcdr2_aligns_eight_byte_fields_to_four() -> None:
    got = parse_spike_packet(_xcdr2_le(b"abcde", b"vidar_bitpacked", b"\xaa\x55"))  # seq at 28: 4-aligned
    h = got.header
    assert (h.stamp_ns, h.height, h.width, h.seq, h.first_frame_index) == (5_000_000_006, 2, 8, 11, 300)
    assert (h.frame_rate_hz, h.num_frames, h.encoding, got.frame_id) == (20000.0, 1, "vidar_bitpacked", "abcde")
    assert got.payload.tobytes() == b"\xaa\x55"
