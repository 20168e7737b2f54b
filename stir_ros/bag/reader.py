# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Reading rosbag2 files (sqlite3 and mcap) without a ROS runtime.

Built on ``rosbags``, with an addition that recordings from a robot need:

- **Damaged bags are read as far as they are good.** A file of a split bag that is missing, an
  mcap chunk whose checksum or framing is wrong, an mcap file cut short (the recorder was
  killed: no index, no footer), a sqlite3 file whose pages are unreadable: each is reported once
  as a :class:`BagProblem` and reading goes on with the next good chunk, file or row. The parsers
  that do this are in :mod:`stir_ros.bag.recovery` (and :mod:`stir_ros.bag.mcap_records`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import apsw
from rosbags.interfaces import (
    ConnectionExtRosbag2,
    MessageDefinition,
    MessageDefinitionFormat,
    Qos,
)
from rosbags.rosbag2 import ReaderError
from rosbags.rosbag2.storage_mcap import McapReader
from rosbags.rosbag2.storage_sqlite3 import Sqlite3Reader

from stir_ros.bag.mcap_records import bound_rosbags_chunks, channel_metadata, decompress_bounded, zstd
from stir_ros.bag.metadata import BagMetadata, read_metadata
from stir_ros.bag.model import BagMessage, BagProblem, TopicInfo
from stir_ros.bag.recovery import McapScan, SqliteSalvage, mcap_chunk_messages, sqlite_messages
from stir_ros.bag.types import SPIKE_PACKET, get_typestore, type_hash
from stir_ros.core import limits
from stir_ros.core.errors import BagError

if TYPE_CHECKING:
    from rosbags.rosbag2.storage_mcap import ChunkInfo

__all__ = ["BagReader", "check_spike_topic", "spike_frame_size"]


@dataclass(frozen=True)
class _Handles:
    """What reading a storage file needs beyond the reader protocol of rosbags' plugins."""

    dbconn: Any = None  # sqlite3: the open apsw connection
    bio: BinaryIO | None = None  # mcap: the open file
    chunks: Sequence[ChunkInfo] = ()  # mcap: the chunk index
    channel_metadata: Mapping[int, bytes] = field(default_factory=dict)  # mcap: channel id -> raw metadata map


def _rosbags_handles(plugin: Sqlite3Reader | McapReader) -> _Handles:
    """The attributes of an open rosbags storage plugin that are not part of its reader protocol.

    rosbags (0.11.9, pinned in requirements/) has a public reader API: the storage plugins'
    ``connections``, ``metadata``, ``messages()`` and ``close()``, which its ``Reader`` wraps. It
    has none for what reading a damaged bag needs:

    - sqlite3: the database connection, to read row by row so that a damaged page costs only its
      rows (rosbags' ``messages()`` stops at the first error);
    - mcap: the open file and the chunk index, to read chunk by chunk and skip a chunk that fails
      its checksum (rosbags' ``messages()`` stops there too); and the channels' metadata maps,
      which hold rosbag2's ``topic_type_hash`` (rosbags leaves ``Connection.digest`` empty).

    These are undocumented attributes that a rosbags release may rename; this function is the
    only place that reads them (test/test_bag_reader_recovery.py and test/test_bag_reconstruct.py
    fail if they change).
    """
    if isinstance(plugin, Sqlite3Reader):
        return _Handles(dbconn=plugin.dbconn)
    return _Handles(bio=plugin.bio, chunks=plugin.chunks,
                    channel_metadata={cid: ch.metadata for cid, ch in plugin.channels.items()})


bound_rosbags_chunks()  # rosbags' own chunk reads, in McapReader.open() and .messages()


@dataclass
class _Storage:
    """One storage file of a bag, opened with a rosbags plugin or recovered by a scan."""

    path: Path
    kind: str  # sqlite3 | mcap | mcap-scan
    plugin: Any = None  # rosbags' Sqlite3Reader or McapReader, SqliteSalvage or McapScan
    handles: _Handles = field(default_factory=_Handles)
    # storage connection id -> (topic, msgtype)
    channels: dict[int, tuple[str, str]] = field(default_factory=dict)


class BagReader:
    """Reads a rosbag2 bag (directory, ``.db3`` or ``.mcap`` file) in time order.

    Problems with parts of the bag are collected in :attr:`problems` and passed to
    ``on_problem`` as they are met; reading goes on with what is good.

    Example:
        >>> with BagReader("run1") as bag:  # doctest: +SKIP
        ...     for msg in bag.messages(["/spikes"]):
        ...         packet = bag.deserialize(msg)
    """

    def __init__(self, path: str | os.PathLike[str], on_problem: Callable[[BagProblem], None] | None = None) -> None:
        self.path = Path(path)
        self.on_problem = on_problem
        self.problems: list[BagProblem] = []
        self.storage_id = ""
        self.topics: dict[str, TopicInfo] = {}
        self.message_count = 0
        self.start_time = 0
        self.end_time = 0
        self.custom_data: dict[str, str] = {}
        self._storages: list[_Storage] = []
        self._message_compression = False
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None

    # -- opening ---------------------------------------------------------------------------

    def __enter__(self) -> BagReader:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _problem(self, kind: str, where: Path | str, detail: str) -> None:
        problem = BagProblem(kind, str(where), detail)
        self.problems.append(problem)
        if self.on_problem is not None:
            self.on_problem(problem)

    def open(self) -> None:
        """Open the bag and read its metadata and indexes.

        Raises:
            BagError: If the path is not a bag, or no part of it can be read.
        """
        if not self.path.exists():
            raise BagError(f"bag '{self.path}' does not exist")
        meta: BagMetadata | None = None
        if self.path.is_dir():
            files, meta = self._files_of_directory()
        elif self.path.suffix in (".db3", ".mcap"):
            files = [self.path]
        else:
            raise BagError(f"'{self.path}' is not a rosbag2 bag: expected a directory, a .db3 or an .mcap file")
        for path in files:
            self._open_storage(path)
        if not self._storages:
            raise BagError(f"bag '{self.path}' has no readable storage file" + self._problem_summary())
        if not self.storage_id:
            kinds = {"mcap" if s.kind.startswith("mcap") else "sqlite3" for s in self._storages}
            self.storage_id = kinds.pop() if len(kinds) == 1 else ""
        self._collect_topics(meta)

    def _problem_summary(self) -> str:
        return "".join(f"; {p}" for p in self.problems)

    def _files_of_directory(self) -> tuple[list[Path], BagMetadata | None]:
        meta_path = self.path / "metadata.yaml"
        if not meta_path.exists():
            files = sorted(p for p in self.path.iterdir() if p.suffix in (".db3", ".mcap"))
            if not files:
                raise BagError(f"'{self.path}' is not a rosbag2 bag: no metadata.yaml and no .db3/.mcap file")
            self._problem("no_metadata", meta_path,
                          "missing (was the recorder stopped abruptly?); reading the storage files found")
            return files, None
        try:
            meta = read_metadata(meta_path)
        except BagError as err:
            raise BagError(f"cannot read the metadata of bag '{self.path}': {err}") from err
        self.storage_id = meta.storage_id
        if meta.version > 9:
            raise BagError(f"bag '{self.path}' has metadata version {meta.version}; versions up to 9 are supported")
        mode, fmt = meta.compression_mode, meta.compression_format
        if mode not in ("", "none") and fmt != "zstd":
            raise BagError(f"bag '{self.path}' uses compression format {fmt!r}; only zstd is supported")
        self._message_compression = mode == "message"
        self.custom_data = dict(meta.custom_data)
        files = []
        for name in meta.file_names:
            path = self.path / name
            if not path.exists():
                self._problem("missing_file", path, "listed in metadata.yaml but missing; skipped")
                continue
            if not path.is_file():
                self._problem("bad_file", path, "listed in metadata.yaml but not a file; skipped")
                continue
            if mode == "file":
                unpacked = self._decompress_file(path)
                if unpacked is None:
                    continue
                path = unpacked
            files.append(path)
        return files, meta

    def _decompress_file(self, path: Path) -> Path | None:
        """Unpack a file of a ``compression_mode: file`` bag into the temporary directory.

        Its unpacked size is known only at the end, so each block is written only while the
        file system keeps :data:`~stir_ros.core.limits.MIN_FREE_DISK_BYTES` free after it: a
        crafted file that expands without end is stopped and deleted, not left to fill the disk.
        """
        if self._tmpdir is None:
            self._tmpdir = tempfile.TemporaryDirectory(prefix="stir_ros_bag_")
        out = Path(self._tmpdir.name) / path.stem  # "x.mcap.zstd" -> "x.mcap"
        try:
            with path.open("rb") as src, zstd.open(src, "rb") as infile, out.open("wb") as dst:
                while block := infile.read(1 << 20):
                    free = shutil.disk_usage(out.parent).free
                    if free - len(block) < limits.MIN_FREE_DISK_BYTES:
                        raise BagError(f"stopped after {dst.tell()} bytes: the next MiB would leave less than "
                                       f"{limits.MIN_FREE_DISK_BYTES} bytes free on the file system of the "
                                       f"temporary directory {out.parent}")
                    dst.write(block)
        except (OSError, EOFError, zstd.ZstdError, BagError) as err:
            out.unlink(missing_ok=True)
            self._problem("bad_file", path, f"cannot decompress: {err}; skipped")
            return None
        return out

    def _open_storage(self, path: Path) -> None:
        if path.suffix == ".db3":
            db = Sqlite3Reader(path)
            plugin: Sqlite3Reader | SqliteSalvage = db
            try:
                db.open()
            except (ReaderError, apsw.Error) as err:
                # rosbags counts every row on opening; a damaged file may still have readable
                # tables and rows, which the row-by-row read of recovery.sqlite_messages can salvage.
                try:
                    salvage = SqliteSalvage(path)
                except (apsw.Error, KeyError, ValueError) as err2:
                    self._problem("bad_file", path, f"cannot open as sqlite3: {err}; {err2}; skipped")
                    return
                plugin, handles = salvage, _Handles(dbconn=salvage.dbconn)
                self._problem("bad_file", path, f"damaged sqlite3 file ({err}); reading the rows that can be read")
            else:
                handles = _rosbags_handles(db)
            storage = _Storage(path, "sqlite3", plugin, handles)
            storage.channels = {c.id: (c.topic, c.msgtype) for c in plugin.connections}
            self._storages.append(storage)
            return
        mcap = McapReader(path)
        try:
            mcap.open()
        except Exception as err:  # noqa: BLE001 - any failure of the indexed read: try a scan
            # No valid footer/summary: recover what a linear scan finds.
            scan = McapScan(path)
            try:
                scan.scan()
            except BagError as scan_err:
                self._problem("bad_file", path, f"cannot read as mcap: {err}; {scan_err}; skipped")
                return
            self._problem("truncated", path, f"no valid index ({err}); recovered {scan.message_count} "
                          f"messages by scanning" + (f", {scan.bad_chunks} chunks unreadable" if scan.bad_chunks else ""))
            for chunk_problem in scan.problems:
                self._problem("bad_chunk", path, chunk_problem)
            storage = _Storage(path, "mcap-scan", scan)
            storage.channels = {cid: (topic, typ) for cid, (topic, typ, _h, _q, _d) in scan.channels.items()}
            self._storages.append(storage)
            return
        storage = _Storage(path, "mcap", mcap, _rosbags_handles(mcap))
        storage.channels = {c.id: (c.topic, c.msgtype) for c in mcap.connections}
        self._storages.append(storage)

    def _collect_topics(self, meta: BagMetadata | None) -> None:
        infos: dict[str, dict[str, Any]] = {}

        def merge(topic: str, msgtype: str, count: int, digest: str, qos: Sequence[Qos],
                  msgdef: MessageDefinition | None, fmt: str = "cdr") -> None:
            info = infos.setdefault(topic, {"msgtype": msgtype, "count": 0, "digest": "", "qos": (),
                                            "msgdef": MessageDefinition(MessageDefinitionFormat.NONE, ""),
                                            "fmt": fmt})
            if info["msgtype"] != msgtype:
                self._problem("bad_file", topic, f"has two types, {info['msgtype']} and {msgtype}; "
                              f"the messages of type {msgtype} are ignored")
                return
            info["count"] += count
            info["digest"] = info["digest"] or digest
            info["qos"] = info["qos"] or tuple(qos)
            if msgdef is not None and msgdef.format != MessageDefinitionFormat.NONE and not info["msgdef"].data:
                info["msgdef"] = msgdef

        # metadata.yaml's counts hold only when every storage file opened normally.
        from_meta = meta is not None and not self.problems
        if meta is not None:
            for t in meta.topics:
                merge(t.name, t.msgtype, t.message_count if from_meta else 0, t.type_hash, t.qos, None,
                      t.serialization_format)
        for storage in self._storages:
            for _cid, topic, msgtype, count, digest, offered, msgdef in self._storage_connections(storage):
                merge(topic, msgtype, 0 if from_meta else count, digest, offered, msgdef)
        self.topics = {
            name: TopicInfo(name, i["msgtype"], i["count"], i["digest"], tuple(i["qos"]), i["msgdef"], i["fmt"])
            for name, i in infos.items()
        }
        self.message_count = sum(t.message_count for t in self.topics.values())
        starts, ends = [], []
        for storage in self._storages:
            start, end = self._storage_times(storage)
            if end >= start:
                starts.append(start)
                ends.append(end)
        self.start_time = min(starts, default=0)
        self.end_time = max(ends, default=0)

    @staticmethod
    def _storage_connections(storage: _Storage) -> Iterator[tuple[int, str, str, int, str, Sequence[Qos], MessageDefinition]]:
        if storage.kind == "mcap-scan":
            for cid, (topic, typ, digest, qos, msgdef) in storage.plugin.channels.items():
                yield cid, topic, typ, storage.plugin.counts.get(cid, 0), digest, qos, msgdef
            return
        hashes = {cid: channel_metadata(raw).get("topic_type_hash", "")
                  for cid, raw in storage.handles.channel_metadata.items()}
        for c in storage.plugin.connections:
            ext = c.ext
            qos = ext.offered_qos_profiles if isinstance(ext, ConnectionExtRosbag2) else []
            yield c.id, c.topic, c.msgtype, c.msgcount, c.digest or hashes.get(c.id, ""), qos, c.msgdef

    @staticmethod
    def _storage_times(storage: _Storage) -> tuple[int, int]:
        if storage.kind == "mcap-scan":
            return storage.plugin.start_time, storage.plugin.end_time
        md = storage.plugin.metadata
        return md.start_time, md.end_time - 1

    def close(self) -> None:
        """Close every storage file; safe to call twice."""
        for storage in self._storages:
            if storage.kind in ("sqlite3", "mcap") and storage.plugin is not None:
                try:
                    storage.plugin.close()
                except Exception:  # noqa: BLE001 - closing a damaged file must not mask the real error
                    pass
                storage.plugin = None
        self._storages = []
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    # -- messages --------------------------------------------------------------------------

    def messages(self, topics: Collection[str] | None = None, start_ns: int | None = None) -> Iterator[BagMessage]:
        """Yield the messages of ``topics`` (all if ``None``), in recording-time order per file.

        The files of a split bag are read one after the other (rosbag2 splits in time order).
        Damaged parts are skipped and reported. ``start_ns``: only the messages from that
        recording time on (sqlite3 files do not read the others; mcap files read and drop them).
        """
        wanted = None if topics is None else set(topics)
        for storage in self._storages:
            selected = {
                cid: (topic, typ) for cid, (topic, typ) in storage.channels.items()
                if (wanted is None or topic in wanted) and self.topics.get(topic) and self.topics[topic].msgtype == typ
            }
            if not selected:
                continue
            if storage.kind == "sqlite3":
                source = sqlite_messages(storage.handles.dbconn, storage.path, selected, self._problem, start_ns)
            elif storage.kind == "mcap":
                source = self._mcap_messages(storage, selected)
            else:
                source = storage.plugin.messages(selected)
            for cid, timestamp, data in source:
                if start_ns is not None and timestamp < start_ns:
                    continue
                if self._message_compression:
                    try:
                        data = decompress_bounded(data, "zstd", limits.MAX_DECOMPRESSED_BYTES)
                    except BagError as err:
                        self._problem("bad_message", f"{storage.path} t={timestamp}", f"cannot decompress: {err}")
                        continue
                topic, msgtype = selected[cid]
                yield BagMessage(topic, msgtype, timestamp, data)

    def _mcap_messages(self, storage: _Storage, selected: dict[int, tuple[str, str]]) -> Iterator[tuple[int, int, bytes]]:
        """(channel id, log time, data) of an indexed mcap file in time order; a chunk that cannot be read is skipped."""
        if storage.handles.chunks:
            assert storage.handles.bio is not None
            yield from mcap_chunk_messages(storage.handles.bio, storage.handles.chunks, storage.path, selected,
                                           self._problem)
            return
        # An unchunked file: rosbags' own read.
        conns = [c for c in storage.plugin.connections if c.id in selected]
        try:
            for conn, ts, data in storage.plugin.messages(conns):
                yield conn.id, ts, data
        except ReaderError as err:
            self._problem("bad_file", storage.path, f"{err}; the rest of the file is skipped")

    def deserialize(self, message: BagMessage) -> Any:
        """Deserialize a message of a type the bag tools know.

        Raises:
            BagError: If the bytes are not a valid message of that type.
        """
        try:
            return get_typestore().deserialize_cdr(message.data, message.msgtype)
        except Exception as err:  # noqa: BLE001 - garbage bytes fail in many ways inside rosbags
            raise BagError(f"message on {message.topic} at t={message.timestamp} is not a valid "
                           f"{message.msgtype}: {err or type(err).__name__}") from err


def check_spike_topic(bag: BagReader, topic: str | None) -> str:
    """Return the spike topic to read: ``topic``, or the bag's only SpikePacket topic if ``None``.

    Raises:
        BagError: If the topic is missing, carries another type, or was written with another
            SpikePacket definition (its type hash differs from this package's).
    """
    spike_topics = sorted(n for n, t in bag.topics.items() if t.msgtype == SPIKE_PACKET)
    listing = ", ".join(f"{n} ({t.msgtype})" for n, t in sorted(bag.topics.items())) or "none"
    if topic is None:
        if "/spikes" in bag.topics or len(spike_topics) == 1:
            topic = "/spikes" if "/spikes" in bag.topics else spike_topics[0]
        elif not spike_topics:
            raise BagError(f"bag '{bag.path}' has no {SPIKE_PACKET} topic, so no spikes to read (topics: {listing}); "
                           "give a bag recorded from the driver's spikes, e.g. stir-ros bag record BAG /spikes")
        else:
            raise BagError(f"bag '{bag.path}' has {len(spike_topics)} {SPIKE_PACKET} topics; choose one "
                           f"with --spikes-topic. Topics: {listing}")
    info = bag.topics.get(topic)
    if info is None:
        raise BagError(f"bag '{bag.path}' has no topic {topic}. Topics: {listing}")
    if info.msgtype != SPIKE_PACKET:
        raise BagError(f"topic {topic} in bag '{bag.path}' carries {info.msgtype}, expected {SPIKE_PACKET}"
                       + (f"; spike topics in this bag: {', '.join(spike_topics)}" if spike_topics else ""))
    ours = type_hash(SPIKE_PACKET)
    if info.type_hash and info.type_hash != ours:
        raise BagError(f"topic {topic} in bag '{bag.path}' was recorded with another definition of "
                       f"{SPIKE_PACKET} (type hash {info.type_hash}, this package's is {ours}); "
                       "convert it with the stir_ros version that recorded it")
    return topic


def spike_frame_size(path: str | os.PathLike[str], topic: str | None = None) -> tuple[int, int] | None:
    """``(height, width)`` of the first SpikePacket on ``topic``: a model can warm up before the bag plays.

    ``topic`` ``None``: the bag's spike topic, as :func:`check_spike_topic` picks it. ``None``
    when the bag cannot tell quickly: it is missing or unreadable, has no such topic, or
    is compressed per file (its files would have to be unpacked first). Never raises for a bad
    bag: whoever plays it reports what is wrong.
    """
    try:
        root = Path(path)
        meta = root / "metadata.yaml"
        if root.is_dir() and meta.is_file() and read_metadata(meta).compression_mode == "file":
            return None
        with BagReader(root) as bag:
            chosen = check_spike_topic(bag, topic)
            for message in bag.messages([chosen]):
                packet = bag.deserialize(message)
                height, width = int(packet.height), int(packet.width)
                return (height, width) if height > 0 and width > 0 else None
    except Exception:  # noqa: BLE001 - a probe: any failure means "not known"
        return None
    return None
