# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""A serialised SpikePacket (CDR, as DDS carries it) read in place: header fields and a payload view.

Why: rclpy turns a received SpikePacket into Python in three copies of its payload (CDR into the C
message, the C array into a ``bytes``, the ``bytes`` into an ``array.array``) and two fresh
buffers. At 1000x1000 and 20 kHz that is 7.5 GB/s of copying on the receiving side alone
(BENCHMARKS.md, "Issue 14"). A raw subscription (``create_subscription(..., raw=True)``) hands
over the serialised message as one ``bytes``; :func:`parse_spike_packet` reads its header with
``struct`` and returns the payload as a read-only numpy view into it: one copy instead of three.

The layout is the message's fields in order (msg/SpikePacket.msg), encoded as CDR: a 4-byte
encapsulation header (its second byte: 0/1 = XCDR1 big/little endian, 6/7 = plain XCDR2 big/little
endian), then primitives aligned to their size (XCDR1) or to at most 4 bytes (XCDR2), relative to
the end of the encapsulation header; a string is a uint32 length that counts its NUL, then the
bytes and the NUL; a ``uint8[]`` is a uint32 count, then the bytes.

ROS-free: bytes in, numbers and a view out.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from stir_ros.core.errors import PacketError
from stir_ros.core.packet import PacketHeader

__all__ = ["ParsedPacket", "parse_spike_packet"]

#: Encapsulation identifier (second byte of the header) -> (byte order, largest alignment).
_ENCAPSULATIONS = {0: (">", 8), 1: ("<", 8), 6: (">", 4), 7: ("<", 4)}


@dataclass(frozen=True)
class ParsedPacket:
    """A SpikePacket read from its CDR bytes.

    Attributes:
        header: The fields stream bookkeeping needs.
        frame_id: ``header.frame_id``.
        payload: ``data`` as a read-only 1-D uint8 view into the serialised bytes (no copy).
    """

    header: PacketHeader
    frame_id: str
    payload: np.ndarray


class _Reader:
    __slots__ = ("buf", "pos", "order", "max_align")

    def __init__(self, buf: memoryview, order: str, max_align: int) -> None:
        self.buf, self.pos, self.order, self.max_align = buf, 4, order, max_align

    def _align(self, size: int) -> None:
        a = min(size, self.max_align)
        body = self.pos - 4  # alignment counts from the end of the encapsulation header
        self.pos += (-body) % a

    def unpack(self, fmt: str) -> tuple:
        size = struct.calcsize("<" + fmt[0])
        self._align(size)
        values = struct.unpack_from(self.order + fmt, self.buf, self.pos)
        self.pos += struct.calcsize(self.order + fmt)
        return values

    def string(self) -> str:
        (length,) = self.unpack("I")
        end = self.pos + length
        if length == 0 or end > len(self.buf):
            raise PacketError(f"string of {length} bytes at offset {self.pos} runs past the message")
        text = bytes(self.buf[self.pos : end - 1]).decode("utf-8", errors="replace")
        self.pos = end
        return text


def parse_spike_packet(data: bytes | bytearray | memoryview) -> ParsedPacket:
    """Read a serialised SpikePacket; the payload stays where it is.

    Raises:
        PacketError: Not a SpikePacket in a known CDR encapsulation, or truncated.
    """
    buf = memoryview(data).cast("B")
    if len(buf) < 4 or buf[0] != 0 or buf[1] not in _ENCAPSULATIONS:
        head = bytes(buf[:4]).hex()
        raise PacketError(f"not a CDR message in a known encapsulation (header {head!r})")
    order, max_align = _ENCAPSULATIONS[buf[1]]
    r = _Reader(buf, order, max_align)
    try:
        sec, nanosec = r.unpack("iI")
        frame_id = r.string()
        height, width = r.unpack("II")
        seq, first = r.unpack("QQ")
        (rate,) = r.unpack("d")
        (num_frames,) = r.unpack("I")
        encoding = r.string()
        (length,) = r.unpack("I")
    except struct.error as err:
        raise PacketError(f"truncated SpikePacket ({len(buf)} bytes): {err}") from err
    if r.pos + length > len(buf):
        raise PacketError(f"payload of {length} bytes runs past the message ({len(buf)} bytes)")
    payload = np.frombuffer(buf, np.uint8, count=length, offset=r.pos)
    header = PacketHeader(
        seq=seq, first_frame_index=first, num_frames=num_frames, height=height, width=width, encoding=encoding,
        stamp_ns=sec * 1_000_000_000 + nanosec, frame_rate_hz=rate,
    )  # fmt: skip
    return ParsedPacket(header, frame_id, payload)
