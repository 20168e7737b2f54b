# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""A serialised SpikePacket read in place (stir_ros.core.spike_cdr) against rclpy's own serialiser."""

from __future__ import annotations

import array
import struct

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


#: (byte order, largest alignment) -> the encapsulation identifier (second header byte).
_ENCAPSULATION_IDS = {("big", 8): 0, ("little", 8): 1, ("big", 4): 6, ("little", 4): 7}


def _hand_cdr(frame_id: bytes, encoding: bytes, payload: bytes, *, order: str = "little", max_align: int = 4,
              stamp: tuple[int, int] = (5, 6), size: tuple[int, int] = (2, 8), seq: int = 11, first: int = 300,
              rate: float = 20000.0, num_frames: int = 1) -> bytes:
    """A SpikePacket in CDR built by hand (XCDR1: ``max_align`` 8, plain XCDR2: 4) in either byte order."""
    body = bytearray()
    fmt = "<" if order == "little" else ">"

    def put(code: str, value) -> None:
        n = struct.calcsize(code)
        body.extend(b"\0" * ((-len(body)) % min(n, max_align)))
        body.extend(struct.pack(fmt + code, value))

    def string(s: bytes) -> None:
        put("I", len(s) + 1)
        body.extend(s + b"\0")

    put("i", stamp[0]), put("I", stamp[1])
    string(frame_id)
    put("I", size[0]), put("I", size[1])
    put("Q", seq), put("Q", first), put("d", rate), put("I", num_frames)
    string(encoding)
    put("I", len(payload))
    body.extend(payload)
    return bytes([0, _ENCAPSULATION_IDS[order, max_align], 0, 0]) + bytes(body)


def _xcdr2_le(frame_id: bytes, encoding: bytes, payload: bytes) -> bytes:
    """A plain XCDR2 little-endian SpikePacket, built by hand: 8-byte fields aligned to 4."""
    return _hand_cdr(frame_id, encoding, payload, order="little", max_align=4)


@pytest.mark.parametrize("max_align", [8, 4])  # XCDR1, plain XCDR2
@pytest.mark.parametrize("frame_id", [b"", b"abc", b"camera_optical_frame"])
def test_big_endian_packet_parses_as_its_little_endian_twin(max_align: int, frame_id: bytes) -> None:
    """Every field differs when read in the wrong byte order: seq, first frame, rate, sizes, lengths."""
    payload = bytes(range(1, 38))
    fields = dict(stamp=(1_700_000_123, 987_654_321), size=(3, 5), seq=2**40 + 7, first=2**33 + 9, rate=40000.5,
                  num_frames=4)
    big = _hand_cdr(frame_id, b"vidar_bitpacked", payload, order="big", max_align=max_align, **fields)
    little = _hand_cdr(frame_id, b"vidar_bitpacked", payload, order="little", max_align=max_align, **fields)
    msg = _packet(frame_id.decode(), "vidar_bitpacked", payload, height=3, width=5, seq=2**40 + 7,
                  first_frame_index=2**33 + 9, frame_rate_hz=40000.5, num_frames=4)
    if max_align == 8:  # the hand-built little-endian XCDR1 is what rclpy sends (its padding bytes are not zeroed)
        assert len(little) == len(serialize_message(msg))
    assert big != little
    got, want = parse_spike_packet(big), parse_spike_packet(little)
    assert got.header == want.header == packet_header(msg) and got.frame_id == want.frame_id == frame_id.decode()
    assert got.payload.tobytes() == want.payload.tobytes() == payload
    assert (got.header.seq, got.header.first_frame_index, got.header.frame_rate_hz) == (2**40 + 7, 2**33 + 9, 40000.5)
    assert got.header.stamp_ns == 1_700_000_123_987_654_321


def test_plain_xcdr2_aligns_eight_byte_fields_to_four() -> None:
    got = parse_spike_packet(_xcdr2_le(b"abcde", b"vidar_bitpacked", b"\xaa\x55"))  # seq at 28: 4-aligned
    h = got.header
    assert (h.stamp_ns, h.height, h.width, h.seq, h.first_frame_index) == (5_000_000_006, 2, 8, 11, 300)
    assert (h.frame_rate_hz, h.num_frames, h.encoding, got.frame_id) == (20000.0, 1, "vidar_bitpacked", "abcde")
    assert got.payload.tobytes() == b"\xaa\x55"
