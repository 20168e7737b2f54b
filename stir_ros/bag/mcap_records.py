# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""MCAP records as the bag reader's recovery parsers decode them.

Layout of a record: opcode (1 byte), length (uint64), body. The opcodes and the bodies used here
are those of the MCAP specification (https://mcap.dev/spec); integers are little-endian, a string
is a uint32 length and UTF-8 bytes.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Callable, Collection, Iterator
from enum import IntEnum
from io import BytesIO
from typing import BinaryIO

try:
    from compression import zstd  # type: ignore[import-not-found]  # Python >= 3.14
except ImportError:
    from backports import zstd  # what rosbags uses before 3.14
from lz4.frame import LZ4FrameDecompressor  # type: ignore[import-untyped]
from rosbags.rosbag2 import ReaderError, storage_mcap

from stir_ros.core.errors import BagError
from stir_ros.core.limits import MAX_DECOMPRESSED_BYTES

__all__ = [
    "MAGIC", "MESSAGE_HEAD", "RECORD_HEAD", "Opcode", "bound_rosbags_chunks", "channel_metadata", "chunk_messages",
    "chunk_records", "decompress_bounded", "iter_records", "read_chunk", "read_record", "read_string",
]

#: The first (and last) 8 bytes of an MCAP file, major version 0.
MAGIC = b"\x89MCAP0\r\n"
#: Opcode and body length, at the start of every record.
RECORD_HEAD = struct.Struct("<BQ")
#: Channel id, sequence, log time, publish time: the start of a Message body, before the data.
MESSAGE_HEAD = struct.Struct("<HIQQ")
#: Start time, end time, uncompressed size, uncompressed CRC-32: the start of a Chunk body.
_CHUNK_HEAD = struct.Struct("<QQQI")


class Opcode(IntEnum):
    """MCAP record types (the spec's "Records" section)."""

    HEADER = 0x01
    FOOTER = 0x02
    SCHEMA = 0x03
    CHANNEL = 0x04
    MESSAGE = 0x05
    CHUNK = 0x06
    MESSAGE_INDEX = 0x07
    CHUNK_INDEX = 0x08
    ATTACHMENT = 0x09
    ATTACHMENT_INDEX = 0x0A
    STATISTICS = 0x0B
    METADATA = 0x0C
    METADATA_INDEX = 0x0D
    SUMMARY_OFFSET = 0x0E
    DATA_END = 0x0F


def read_record(bio: BinaryIO) -> tuple[int, int, bytes]:
    """Read the record at the position of ``bio`` (an open file): (offset, opcode, body).

    The body's declared length is checked against what is left of the file before anything is
    read, so a damaged or crafted length (2^40, 2^64 - 1) is an error, not an allocation.

    Raises:
        BagError: If the file ends inside the record header or body.
    """
    offset = bio.tell()
    head = bio.read(RECORD_HEAD.size)
    if len(head) != RECORD_HEAD.size:
        raise BagError(f"record header at byte {offset} cut short: {len(head)} of {RECORD_HEAD.size} bytes")
    op, length = RECORD_HEAD.unpack(head)
    left = os.fstat(bio.fileno()).st_size - bio.tell()
    if length > left:
        raise BagError(f"record at byte {offset} (opcode {op:#x}) declares {length} bytes, but only {left} "
                       "bytes of the file follow")
    body = bio.read(length)
    if len(body) != length:
        raise BagError(f"record at byte {offset} cut short: {len(body)} of {length} bytes")
    return offset, op, body


def read_string(bio: BinaryIO) -> str:
    """Read an MCAP string (uint32 length, UTF-8 bytes).

    Raises:
        BagError: If the string runs past the end of ``bio``.
    """
    head = bio.read(4)
    if len(head) != 4:
        raise BagError("truncated string")
    (n,) = struct.unpack("<I", head)
    data = bio.read(n)
    if len(data) != n:
        raise BagError("truncated string")
    return data.decode()


def channel_metadata(raw: bytes) -> dict[str, str]:
    """The key/value pairs of a Channel's metadata map; a damaged map gives the pairs before the damage."""
    out: dict[str, str] = {}
    bio = BytesIO(raw)
    try:
        while bio.tell() < len(raw):
            key = read_string(bio)
            out[key] = read_string(bio)
    except (struct.error, UnicodeDecodeError, BagError):
        pass
    return out


def decompress_bounded(data: bytes, compression: str, limit: int) -> bytes:
    """Decompress ``data`` (``zstd``, ``lz4`` or ``""`` for none; one frame or several) to at most ``limit`` bytes.

    The decompressors are asked for at most ``limit + 1`` bytes, so that a small input that
    would expand to gigabytes (a "zip bomb") costs ``limit`` bytes of memory, not the gigabytes.

    Raises:
        BagError: If the compression is unknown, the data is damaged or cut short, or it expands
            to more than ``limit`` bytes.
    """
    if compression not in ("", "zstd", "lz4"):
        raise BagError(f"unsupported compression {compression!r}; expected zstd, lz4 or none")
    if not compression:
        if len(data) > limit:
            raise BagError(f"{len(data)} bytes, more than the limit of {limit}")
        return data
    parts: list[bytes] = []
    total = 0
    rest = data
    while True:
        dec = zstd.ZstdDecompressor() if compression == "zstd" else LZ4FrameDecompressor()
        try:
            part = dec.decompress(rest, max_length=limit - total + 1)
        except (zstd.ZstdError, RuntimeError, EOFError) as err:  # lz4 raises RuntimeError on garbage
            raise BagError(f"cannot decompress ({compression}): {err}") from err
        total += len(part)
        if total > limit:
            raise BagError(f"{compression} data expands to more than {limit} bytes (the limit); refused")
        parts.append(part)
        if not dec.eof:
            raise BagError(f"{compression} data cut short: its frame does not end")
        rest = dec.unused_data
        if not rest:
            return parts[0] if len(parts) == 1 else b"".join(parts)


def chunk_records(data: bytes, compression: str, size: int) -> bytes:
    """The records of a chunk: its ``data`` decompressed to at most its declared ``size``.

    Raises:
        BagError: If ``size`` is over :data:`~stir_ros.core.limits.MAX_DECOMPRESSED_BYTES`
            (before anything is decompressed), or :func:`decompress_bounded` fails.
    """
    if size > MAX_DECOMPRESSED_BYTES:
        raise BagError(f"chunk declares {size} uncompressed bytes, more than the limit of "
                       f"{MAX_DECOMPRESSED_BYTES}; refused")
    try:
        return decompress_bounded(data, compression, size)
    except BagError as err:
        raise BagError(f"chunk of declared size {size}: {err}") from err


def bound_rosbags_chunks() -> None:
    """Make rosbags' own reads of mcap chunks unpack a chunk to at most its declared size.

    ``McapReader.open()`` scans the chunks of a file whose summary lacks an index or statistics,
    and ``messages()`` those of a file without chunk indexes; both decompress with rosbags'
    ``zstd.decompress`` / ``lz4.frame.decompress``, without bound, through its module table
    ``DECOMPRESSORS[compression](data, declared size)`` (rosbags 0.11.9; undocumented, like the
    attributes that ``stir_ros.bag.reader._rosbags_handles`` reads: test/test_bag_reader_bombs.py
    fails if it changes). The table's entries are replaced by :func:`chunk_records`, raising
    ReaderError as rosbags' own checks do. Called once, by :mod:`stir_ros.bag.reader`.
    """

    def bounded(compression: str) -> Callable[[bytes, int], bytes]:
        def records(data: bytes, size: int) -> bytes:
            try:
                return chunk_records(data, compression, size)
            except BagError as err:
                raise ReaderError(str(err)) from err
        return records

    for compression in ("zstd", "lz4"):
        storage_mcap.DECOMPRESSORS[compression] = bounded(compression)


def read_chunk(body: bytes | memoryview) -> tuple[int, int, bytes]:
    """Decode a Chunk record body; returns (start time, end time, uncompressed records).

    A chunk that declares more than :data:`~stir_ros.core.limits.MAX_DECOMPRESSED_BYTES`
    uncompressed bytes is refused before anything is decompressed, and one whose data expands
    past its declared size is refused as soon as it does.

    Raises:
        BagError: If the body is cut short, its compression is unknown, its declared size is over
            the limit, or its real size or CRC is wrong.
        struct.error: If the body is too short for its fixed fields.
    """
    start, end, size, crc = _CHUNK_HEAD.unpack_from(body, 0)
    pos = _CHUNK_HEAD.size
    (clen,) = struct.unpack_from("<I", body, pos)  # compression: a string
    compression = bytes(body[pos + 4:pos + 4 + clen]).decode()
    pos += 4 + clen
    (dlen,) = struct.unpack_from("<Q", body, pos)  # records: uint64 length, bytes
    data = bytes(body[pos + 8:pos + 8 + dlen])
    if len(data) != dlen:
        raise BagError(f"chunk data truncated: {len(data)} of {dlen} bytes")
    records = chunk_records(data, compression, size)
    if len(records) != size:
        raise BagError(f"Chunk size mismatch: declared {size} bytes, decompressed to {len(records)}")
    if crc and zlib.crc32(records) != crc:
        raise BagError(f"Chunk checksum mismatch: declared {crc:#010x}, computed {zlib.crc32(records):#010x}")
    return start, end, records


def iter_records(data: bytes | memoryview) -> Iterator[tuple[int, memoryview]]:
    """(opcode, body) of the records in ``data``.

    The opcode is an int (an unknown one is passed on, to be skipped by the caller).

    Raises:
        BagError: On bad framing (a record header or body that runs past the end).
    """
    view = memoryview(data)
    pos = 0
    head = RECORD_HEAD.size
    while pos < len(view):
        if pos + head > len(view):
            raise BagError(f"record header cut at offset {pos}")
        op, length = RECORD_HEAD.unpack_from(view, pos)
        if pos + head + length > len(view):
            raise BagError(f"record at offset {pos} runs past the end ({length} bytes)")
        yield op, view[pos + head:pos + head + length]
        pos += head + length


def chunk_messages(records: bytes, selected: Collection[int]) -> list[tuple[int, int, int, bytes]]:
    """Messages (log time, record index, channel, data) of selected channels in a chunk, sorted.

    Raises:
        BagError: On bad framing, or a Message record too short for its header.
    """
    out = []
    for index, (op, body) in enumerate(iter_records(records)):
        if op == Opcode.MESSAGE:
            if len(body) < MESSAGE_HEAD.size:
                raise BagError(f"message record of {len(body)} bytes is too short")
            cid, _seq, log_time, _pub = MESSAGE_HEAD.unpack_from(body, 0)
            if cid in selected:
                out.append((log_time, index, cid, bytes(body[MESSAGE_HEAD.size:])))
    out.sort(key=lambda m: (m[0], m[1]))
    return out
