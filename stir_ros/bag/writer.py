# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Writing rosbag2 files (sqlite3 and mcap) without a ROS runtime.

Built on ``rosbags``, with an addition that recordings from a robot need:

- **Bags are written as ROS 2 Jazzy's rosbag2 writes them**: metadata version 9, serialization
  format ``cdr``, type description hashes (RIHS01) in ``metadata.yaml``, in the sqlite3
  ``topics``/``message_definitions`` tables and in the mcap channel metadata (``topic_type_hash``),
  offered QoS profiles, message definitions in ``ros2msg`` text, mcap chunk CRCs. A writer is
  closed properly (index and ``metadata.yaml`` written) even when the code writing it fails, so
  what was written is kept; sqlite3 bags are committed every second so a crash loses at most
  that much.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import struct
import time
from binascii import crc32
from collections.abc import Iterable, Sequence
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rosbags.interfaces import (
    Connection,
    ConnectionExtRosbag2,
    MessageDefinition,
    MessageDefinitionFormat,
    Qos,
)
from rosbags.rosbag2 import Writer, WriterError
from rosbags.rosbag2.enums import CompressionMode, StoragePlugin
from rosbags.rosbag2.storage_mcap import Channel, McapWriter, write_channel, write_string
from rosbags.rosbag2.storage_sqlite3 import Sqlite3Writer

from stir_ros.bag.model import STORAGES, make_qos
from stir_ros.bag.types import get_typestore, message_definition, type_hash
from stir_ros.core.errors import BagError

if TYPE_CHECKING:
    from stir_ros.bag.reader import BagReader

__all__ = ["BagWriter", "copy_topics", "serialize"]


class _JazzyMcapWriter(McapWriter):
    """rosbags' mcap writer plus what rosbag2 (Jazzy) also writes: chunk CRCs, topic type hashes."""

    def add_connection(self, connection: Connection, offered_qos_profiles: str) -> None:
        # As rosbags does, with the channel metadata of rosbag2_storage_mcap:
        # "offered_qos_profiles" and "topic_type_hash".
        metadata = BytesIO()
        for key, value in (("offered_qos_profiles", offered_qos_profiles), ("topic_type_hash", connection.digest)):
            write_string(metadata, key)
            write_string(metadata, value)
        ext = connection.ext
        assert isinstance(ext, ConnectionExtRosbag2)
        self.channels.append(Channel(connection.id, connection.msgtype, connection.topic,
                                     ext.serialization_format, metadata.getvalue()))
        self.channel_stats[connection.id] = 0
        write_channel(self.chunk.bio, self.channels[-1], self.schemas)

    def close_chunk(self) -> None:
        crc = crc32(self.chunk.bio.getbuffer())
        chunk_start = self.bio.tell()
        super().close_chunk()
        end = self.bio.tell()
        # Chunk record: opcode(1) length(8) start(8) end(8) uncompressed size(8) crc(4).
        self.bio.seek(chunk_start + 9 + 24)
        self.bio.write(struct.pack("<I", crc))
        self.bio.seek(end)


class _CommittingSqlite3Writer(Sqlite3Writer):
    """rosbags' sqlite3 writer, committed every second (as rosbag2 commits in batches)."""

    commit_interval_s = 1.0

    def __init__(self, path: Path, compression: Any) -> None:  # noqa: D107
        if compression == CompressionMode.STORAGE:
            raise WriterError("the sqlite3 storage has no storage-side compression")
        # As rosbags does, but usable from a thread other than the one that opened the bag
        # (one thread at a time).
        self.path = path / f"{path.name}.db3"
        self.conn = sqlite3.connect(f"file:{self.path}", uri=True, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=MEMORY")  # rosbag2's default preset
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.executescript(self.SQLITE_SCHEMA)
        self.cursor = self.conn.cursor()
        self._last_commit = time.monotonic()

    def write(self, connection: Connection, timestamp: int, data: bytes | memoryview) -> None:
        super().write(connection, timestamp, data)
        now = time.monotonic()
        if now - self._last_commit > self.commit_interval_s:
            self.conn.commit()
            self._last_commit = now


class _JazzyWriter(Writer):
    STORAGE_PLUGINS = {StoragePlugin.SQLITE3: _CommittingSqlite3Writer, StoragePlugin.MCAP: _JazzyMcapWriter}


class BagWriter:
    """Writes a rosbag2 bag (sqlite3 or mcap) that ROS 2 Jazzy's rosbag2 reads.

    Always close it (or use it as a context manager): closing writes the index and
    ``metadata.yaml``, and happens even when the code inside the ``with`` block raised, so that
    what was written is kept.

    Example:
        >>> with BagWriter("out", "mcap") as bag:  # doctest: +SKIP
        ...     images = bag.add_topic("/image", "sensor_msgs/msg/Image")
        ...     bag.write_message(images, stamp_ns, msg)
    """

    def __init__(self, path: str | os.PathLike[str], storage: str = "sqlite3") -> None:
        if storage not in STORAGES:
            raise BagError(f"storage must be one of {STORAGES}, got {storage!r}")
        self.path = Path(path)
        self.storage = storage
        if self.path.exists():
            raise BagError(f"output bag '{self.path}' exists already; choose a new path")
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        self._writer = _JazzyWriter(self.path, version=9, storage_plugin=plugin)
        self._open = False
        self.message_count = 0

    def __enter__(self) -> BagWriter:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        """Create the bag directory and storage file."""
        try:
            self._writer.open()
        except (WriterError, OSError) as err:
            raise BagError(f"cannot create bag '{self.path}': {err}") from err
        self._open = True

    def set_custom_data(self, key: str, value: str) -> None:
        """Store a key/value pair in the bag's ``custom_data``."""
        self._writer.set_custom_data(key, value)

    def add_topic(
        self,
        topic: str,
        msgtype: str,
        qos: Sequence[Qos] | None = None,
        *,
        type_hash_: str | None = None,
        msgdef: MessageDefinition | None = None,
    ) -> Connection:
        """Add a topic; returns the connection to pass to :meth:`write`.

        Args:
            topic: Topic name.
            msgtype: ``pkg/msg/Name``.
            qos: Offered QoS profiles to store (default: one reliable, volatile, depth 100).
            type_hash_: RIHS01 hash; computed for known types when not given.
            msgdef: Message definition; generated for known types when not given (needed for
                types the bag tools do not know, e.g. when copying topics of another bag).
        """
        if msgdef is None or not msgdef.data or not type_hash_:
            try:
                enc, text = message_definition(msgtype)
                msgdef = msgdef if msgdef is not None and msgdef.data else MessageDefinition(
                    MessageDefinitionFormat.MSG if enc == "ros2msg" else MessageDefinitionFormat.IDL, text)
                type_hash_ = type_hash_ or type_hash(msgtype)
            except BagError:
                if msgdef is None or not msgdef.data:
                    raise
                type_hash_ = type_hash_ or _hash_from_msgdef(msgtype, msgdef)
        text = msgdef.data
        if msgdef.format == MessageDefinitionFormat.IDL and not text.startswith("=" * 80 + "\nIDL: "):
            text = "=" * 80 + f"\nIDL: {msgtype}\n" + text
        try:
            return self._writer.add_connection(
                topic, msgtype, msgdef=text, rihs01=type_hash_, serialization_format="cdr",
                offered_qos_profiles=list(qos) if qos is not None else [make_qos()],
            )
        except (WriterError, sqlite3.Error) as err:
            raise BagError(f"cannot add topic {topic} to '{self.path}': {err}") from err

    def write(self, connection: Connection, timestamp: int, data: bytes | memoryview) -> None:
        """Write serialized (CDR) message bytes recorded at ``timestamp`` (ns)."""
        try:
            self._writer.write(connection, int(timestamp), data)
        except (WriterError, OSError, sqlite3.Error) as err:
            raise BagError(f"cannot write to bag '{self.path}': {err}") from err
        self.message_count += 1

    def write_message(self, connection: Connection, timestamp: int, message: Any) -> None:
        """Serialize a message of a known type (rosbags message object) and write it."""
        self.write(connection, timestamp, serialize(message, connection.msgtype))

    def close(self) -> None:
        """Write the index and ``metadata.yaml``; safe to call twice."""
        if not self._open:
            return
        self._open = False
        try:
            self._writer.close()
        except Exception as err:
            with contextlib.suppress(Exception):
                self._writer.abort()
            raise BagError(f"cannot finish bag '{self.path}': {err}") from err


def serialize(message: Any, msgtype: str) -> bytes | memoryview:
    """CDR bytes of a rosbags message object, exactly as ROS 2 (Fast DDS) serializes it.

    rosbags ends the data at its last byte; Fast DDS pads the whole message with zero bytes to a
    multiple of 4. Padding the same way makes offline bags byte-identical to recordings of live
    topics (readers ignore the padding either way).
    """
    data = get_typestore().serialize_cdr(message, msgtype)
    pad = -len(data) % 4
    return bytes(data) + bytes(pad) if pad else data


def _hash_from_msgdef(msgtype: str, msgdef: MessageDefinition) -> str:
    """RIHS01 of a type known only from a bag's message definition text."""
    from rosbags.typesys import Stores, get_types_from_idl, get_types_from_msg
    from rosbags.typesys import get_typestore as rosbags_store

    store = rosbags_store(Stores.EMPTY)
    try:
        if msgdef.format == MessageDefinitionFormat.IDL:
            store.register(get_types_from_idl(msgdef.data))
        else:
            parts = msgdef.data.split("=" * 80 + "\n")
            types = get_types_from_msg(parts[0], msgtype)
            for part in parts[1:]:
                name, _, text = part.partition("\n")
                types.update(get_types_from_msg(text, name.removeprefix("MSG: ").strip()))
            store.register(types)
        return store.hash_rihs01(msgtype)
    except Exception as err:  # noqa: BLE001 - any parse failure means: hash unknown
        raise BagError(f"cannot compute the type hash of {msgtype} from its definition: {err}") from err


def copy_topics(source: BagReader, writer: BagWriter, topics: Iterable[str]) -> dict[str, Connection]:
    """Add ``topics`` of ``source`` to ``writer`` with their types, hashes, definitions and QoS."""
    conns = {}
    for name in topics:
        info = source.topics[name]
        conns[name] = writer.add_topic(name, info.msgtype, list(info.offered_qos_profiles) or None,
                                       type_hash_=info.type_hash or None, msgdef=info.msgdef)
    return conns
