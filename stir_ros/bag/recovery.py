# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Reading the good parts of damaged storage files, for :class:`stir_ros.bag.reader.BagReader`.

- **sqlite3**: :class:`SqliteSalvage` opens a file that rosbags refuses (it counts every row on
  opening); :func:`sqlite_messages` reads the rows of any sqlite3 file in time order in batches,
  so that a damaged page costs only the rows stored on it.
- **mcap**: :func:`mcap_chunk_messages` reads an indexed file chunk by chunk and skips a chunk
  whose framing or checksum is wrong; :class:`McapScan` recovers a file without a usable index
  (the recorder was killed: no summary, no footer) by a linear scan of its records.

Problems are passed to a ``problem(kind, where, detail)`` callback and reading goes on; the kinds
are those of :class:`stir_ros.bag.model.BagProblem`.
"""

from __future__ import annotations

import heapq
import struct
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import apsw
from rosbags.interfaces import (
    Connection,
    ConnectionExtRosbag2,
    MessageDefinition,
    MessageDefinitionFormat,
    Qos,
)
from rosbags.rosbag2 import ReaderError
from rosbags.rosbag2.metadata import parse_qos

from stir_ros.bag.mcap_records import (
    MAGIC,
    MESSAGE_HEAD,
    Opcode,
    channel_metadata,
    chunk_messages,
    iter_records,
    read_chunk,
    read_record,
    read_string,
)
from stir_ros.core.errors import BagError

if TYPE_CHECKING:
    from rosbags.rosbag2.storage_mcap import ChunkInfo

__all__ = ["McapScan", "ProblemCallback", "SalvageTimes", "SqliteSalvage", "mcap_chunk_messages", "sqlite_messages"]

#: ``problem(kind, where, detail)``: reports a damaged part; reading goes on.
ProblemCallback = Callable[[str, Path | str, str], None]

# -- sqlite3 ---------------------------------------------------------------------------------

#: A batch of payloads fetched at once: at most this many bytes (as the index says) and rows.
_BATCH_BYTES = 8 << 20
_BATCH_ROWS = 256
#: Size assumed for a payload whose length could not be listed.
_UNKNOWN_SIZE = 1 << 20
#: Rows listed per query when the table is walked by row id.
_ID_BLOCK = 1024


@dataclass(frozen=True)
class SalvageTimes:
    """Start and end of a salvaged file, in the fields of rosbags' ``ReaderMetadata``: not known.

    ``end_time`` is exclusive as in rosbags, so (0, 0) is empty and the file does not move the
    bag's start and end times.
    """

    start_time: int = 0
    end_time: int = 0


class SqliteSalvage:
    """Stand-in for rosbags' ``Sqlite3Reader`` on a damaged file: topics, definitions, no counts."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.dbconn = apsw.Connection(f"file:{path}?immutable=1", flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)
        # A file cut short is smaller than its header says; SQLite refuses it unless told to
        # trust the file size (the connection stays read-only).
        self.dbconn.execute("PRAGMA writable_schema=ON")
        defs: dict[str, MessageDefinition] = {}
        try:
            for name, enc, text in self.dbconn.execute(
                    "SELECT topic_type, encoding, encoded_message_definition FROM message_definitions"):
                def_format = MessageDefinitionFormat.IDL if enc == "ros2idl" else MessageDefinitionFormat.MSG
                defs[name] = MessageDefinition(def_format, text)
        except apsw.Error:
            pass
        rows: Any  # apsw rows: (id, name, type, serialization format, qos, type hash)
        try:
            rows = self.dbconn.execute("SELECT id, name, type, serialization_format, offered_qos_profiles, "
                                       "type_description_hash FROM topics").fetchall()
        except apsw.Error:
            rows = [(*r, "") for r in self.dbconn.execute(
                "SELECT id, name, type, serialization_format, offered_qos_profiles FROM topics").fetchall()]
        self.connections = []
        for cid, name, msgtype, serialization, qos_text, digest in rows:
            try:
                qos = parse_qos(qos_text)
            except ReaderError:
                qos = []
            self.connections.append(Connection(cid, name, msgtype, defs.get(msgtype, MessageDefinition(
                MessageDefinitionFormat.NONE, "")), digest or "", 0, ConnectionExtRosbag2(serialization, qos), self))
        self.metadata = SalvageTimes()

    def close(self) -> None:
        self.dbconn.close()


def sqlite_messages(db: Any, path: Path, selected: dict[int, tuple[str, str]],
                    problem: ProblemCallback, start_ns: int | None = None) -> Iterator[tuple[int, int, bytes]]:
    """(topic id, time, data) of the selected topics of a sqlite3 file in time order, skipping rows that cannot be read.

    The (id, time, size) list comes through the timestamp index; if that fails the table is
    walked in blocks of row ids. Payloads are fetched in batches of a few megabytes, and a batch
    that fails is fetched row by row, so a damaged page costs only the rows stored on it.

    Args:
        db: The open apsw connection to the file.
        path: The file, for the problems reported.
        selected: Topic id -> (topic, type) of the topics to read.
        problem: Called for each damaged part.
        start_ns: Skip the messages before this time without reading them (a shard of ``bag reconstruct``).
    """
    ids = tuple(selected)
    marks = ",".join("?" * len(ids))
    try:
        rows = db.execute(f"SELECT id, timestamp, length(data) FROM messages WHERE topic_id IN ({marks}) "
                          "ORDER BY timestamp, id", ids).fetchall()
    except apsw.Error as err:
        try:
            # The timestamp index holds (time, row id) by itself: it may outlive the table's pages.
            rows = [(rid, ts, None) for rid, ts in db.execute(
                "SELECT id, timestamp FROM messages INDEXED BY timestamp_idx ORDER BY timestamp, id")]
            problem("bad_rows", path, f"message table damaged ({err}); listed the messages "
                    "through the timestamp index")
        except apsw.Error:
            rows = _sqlite_scan_ids(db, ids, marks, path, problem, err)
    if start_ns is not None:
        rows = [r for r in rows if r[1] >= start_ns]
    bad = 0
    i = 0
    while i < len(rows):
        j, size = i, 0
        while j < len(rows) and (j == i or (size < _BATCH_BYTES and j - i < _BATCH_ROWS)):
            size += rows[j][2] if rows[j][2] is not None else _UNKNOWN_SIZE
            j += 1
        batch = [r[0] for r in rows[i:j]]
        i = j
        try:
            got = {r[0]: r[1:] for r in db.execute(
                "SELECT id, topic_id, timestamp, data FROM messages WHERE id IN "
                f"({','.join('?' * len(batch))})", batch)}
        except apsw.Error:
            got = {}
            for rid in batch:
                try:
                    for row in db.execute("SELECT id, topic_id, timestamp, data FROM messages WHERE id = ?", (rid,)):
                        got[row[0]] = row[1:]
                except apsw.Error:
                    bad += 1
        for rid in batch:
            row = got.get(rid)
            if row is not None and row[0] in selected:
                yield row
    if bad:
        problem("bad_rows", path, f"{bad} messages unreadable (damaged database pages); skipped")


def _sqlite_scan_ids(db: Any, ids: tuple[int, ...], marks: str, path: Path,
                     problem: ProblemCallback, err: Exception) -> list[tuple[int, int, int]]:
    """(id, time, size) of the selected rows, listed by walking the table in blocks of row ids."""
    try:
        (max_id,) = next(iter(db.execute("SELECT max(id) FROM messages")))
    except (apsw.Error, StopIteration) as err2:
        problem("bad_file", path, f"cannot list messages ({err}; {err2}); skipped")
        return []
    rows: list[tuple[int, int, int]] = []
    lost_blocks = 0
    block = _ID_BLOCK
    for lo in range(0, (max_id or 0) + 1, block):
        try:
            rows += db.execute(f"SELECT id, timestamp, length(data) FROM messages WHERE id >= ? AND id < ? "
                               f"AND topic_id IN ({marks})", (lo, lo + block, *ids)).fetchall()
        except apsw.Error:
            lost_blocks += 1
    problem("bad_rows", path, f"timestamp index unreadable ({err}); walked the table"
            + (f", {lost_blocks} blocks of {block} rows unreadable" if lost_blocks else ""))
    rows.sort(key=lambda r: (r[1], r[0]))
    return rows


# -- mcap ------------------------------------------------------------------------------------


def mcap_chunk_messages(bio: BinaryIO, chunks: Sequence[ChunkInfo], path: Path, selected: dict[int, tuple[str, str]],
                        problem: ProblemCallback) -> Iterator[tuple[int, int, bytes]]:
    """(channel id, log time, data) of an indexed mcap file in time order; a chunk that cannot be read is skipped.

    Args:
        bio: The open file.
        chunks: Its chunk index (the Chunk Index records of its summary), not empty.
        path: The file, for the problems reported.
        selected: Channel id -> (topic, type) of the channels to read.
        problem: Called for each chunk skipped.
    """

    def chunk_source(order: int, chunk: ChunkInfo) -> Iterator[tuple[int, int, int, int, bytes]]:
        # First a sentinel at the chunk's start time, so that heapq.merge reads a chunk only
        # when its messages are due.
        yield chunk.message_start_time, -1, -1, -1, b""
        try:
            bio.seek(chunk.chunk_start_offset)
            _offset, op, body = read_record(bio)
            if op != Opcode.CHUNK:
                raise BagError(f"expected a chunk record, found opcode {op:#x}")
            _s, _e, records = read_chunk(body)
            msgs = chunk_messages(records, selected)
        except (BagError, struct.error, OSError, ValueError) as err:
            problem("bad_chunk", path,
                    f"chunk at byte {chunk.chunk_start_offset} (messages "
                    f"{chunk.message_start_time}..{chunk.message_end_time} ns) unreadable: {err}; skipped")
            return
        for log_time, index, cid, data in msgs:
            yield log_time, order, index, cid, data

    wanted = sorted(
        (c for c in chunks if not c.channel_count or any(c.channel_count.get(cid) for cid in selected)),
        key=lambda c: (c.message_start_time, c.chunk_start_offset),
    )
    sources = [chunk_source(i, c) for i, c in enumerate(wanted)]
    for log_time, _order, _index, cid, data in heapq.merge(*sources):
        if cid >= 0:
            yield cid, log_time, data


#: An mcap Schema's encoding -> rosbags' definition format.
_SCHEMA_FORMATS = {"ros2msg": MessageDefinitionFormat.MSG, "ros2idl": MessageDefinitionFormat.IDL}


class McapScan:
    """Linear scan of an mcap file without a usable index (cut short, or summary damaged).

    :meth:`scan` reads the schemas, channels and message counts and notes the readable chunks;
    :meth:`messages` then reads the messages of those chunks (and any outside chunks).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        # id -> (topic, msgtype, type hash, qos, msgdef)
        self.channels: dict[int, tuple[str, str, str, list[Qos], MessageDefinition]] = {}
        self.schemas: dict[int, tuple[str, str, str]] = {}  # id -> (name, encoding, text)
        self.counts: dict[int, int] = {}
        self.problems: list[str] = []
        self.bad_chunks = 0
        self.message_count = 0
        self.start_time = 2**63 - 1
        self.end_time = -1
        self._chunks: list[int] = []  # offsets of readable chunks, in file order
        self._data_start = 0

    def _records(self, bio: BinaryIO) -> Iterator[tuple[int, int, bytes]]:
        """(offset, opcode, body) of top-level records until the data section ends or is cut."""
        bio.seek(self._data_start)
        while True:
            try:
                offset, op, body = read_record(bio)
            except BagError:
                return  # the file ends inside this record (or its declared length runs past the end)
            if op in (Opcode.DATA_END, Opcode.FOOTER):
                return
            yield offset, op, body

    def _register(self, op: int, body: bytes | memoryview) -> None:
        """Note a Schema or Channel record."""
        bio = BytesIO(bytes(body))
        if op == Opcode.SCHEMA:
            (sid,) = struct.unpack("<H", bio.read(2))
            name, enc = read_string(bio), read_string(bio)
            self.schemas[sid] = (name, enc, read_string(bio))
        elif op == Opcode.CHANNEL:
            cid, sid = struct.unpack("<HH", bio.read(4))
            topic, _menc = read_string(bio), read_string(bio)
            (mlen,) = struct.unpack("<I", bio.read(4))
            meta = channel_metadata(bio.read(mlen))
            name, enc, text = self.schemas.get(sid, ("", "", ""))
            fmt = _SCHEMA_FORMATS.get(enc, MessageDefinitionFormat.NONE)
            try:
                qos = parse_qos(meta.get("offered_qos_profiles", ""))
            except ReaderError:
                qos = []
            self.channels[cid] = (topic, name, meta.get("topic_type_hash", ""), qos, MessageDefinition(fmt, text))

    def _count(self, cid: int, log_time: int) -> None:
        self.counts[cid] = self.counts.get(cid, 0) + 1
        self.message_count += 1
        self.start_time = min(self.start_time, log_time)
        self.end_time = max(self.end_time, log_time)

    def scan(self) -> None:
        """First pass: schemas, channels, counts and the readable chunks.

        Raises:
            BagError: If the file is not an mcap file.
        """
        with self.path.open("rb") as bio:
            if bio.read(len(MAGIC)) != MAGIC:
                raise BagError("not an mcap file (bad magic)")
            self._data_start = len(MAGIC)
            for offset, op, body in self._records(bio):
                try:
                    if op == Opcode.CHUNK:
                        _s, _e, records = read_chunk(body)
                        for inner_op, inner in iter_records(records):
                            if inner_op in (Opcode.SCHEMA, Opcode.CHANNEL):
                                self._register(inner_op, inner)
                            elif inner_op == Opcode.MESSAGE:
                                cid, _seq, log_time, _pub = MESSAGE_HEAD.unpack_from(inner, 0)
                                self._count(cid, log_time)
                        self._chunks.append(offset)
                    elif op in (Opcode.SCHEMA, Opcode.CHANNEL):
                        self._register(op, body)
                    elif op == Opcode.MESSAGE:
                        cid, _seq, log_time, _pub = MESSAGE_HEAD.unpack_from(body, 0)
                        self._count(cid, log_time)
                except (BagError, struct.error, UnicodeDecodeError) as err:
                    self.bad_chunks += op == Opcode.CHUNK
                    self.problems.append(f"record at byte {offset} (opcode {op:#x}) unreadable: {err}; skipped")

    def messages(self, selected: Collection[int]) -> Iterator[tuple[int, int, bytes]]:
        """Second pass: (channel id, log time, data) of the selected channels, in file order, chunks sorted inside."""
        chunk_offsets = set(self._chunks)
        with self.path.open("rb") as bio:
            for offset, op, body in self._records(bio):
                if op == Opcode.CHUNK and offset in chunk_offsets:
                    try:
                        _s, _e, records = read_chunk(body)
                        msgs = chunk_messages(records, selected)
                    except (BagError, struct.error):  # reported by scan()
                        continue
                    for log_time, _i, cid, data in msgs:
                        yield cid, log_time, data
                elif op == Opcode.MESSAGE and len(body) >= MESSAGE_HEAD.size:
                    cid, _seq, log_time, _pub = MESSAGE_HEAD.unpack_from(body, 0)
                    if cid in selected:
                        yield cid, log_time, bytes(body[MESSAGE_HEAD.size:])
