"""Reading rosbag2 files (sqlite3 and mcap) without a ROS runtime.

Built on ``rosbags``, with an addition that recordings from a robot need:

- **Damaged bags are read as far as they are good.** A file of a split bag that is missing, an
  mcap chunk whose checksum or framing is wrong, an mcap file cut short (the recorder was
  killed: no index, no footer), a sqlite3 file whose pages are unreadable: each is reported once
  as a :class:`BagProblem` and reading goes on with the next good chunk, file or row.

Layout of an mcap record: opcode (1 byte), length (uint64), body; the bodies used here are from
the MCAP specification (https://mcap.dev/spec).
"""

from __future__ import annotations

import heapq
import os
import struct
import tempfile
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any, BinaryIO

import apsw

try:
    from compression import zstd  # type: ignore[import-not-found]  # Python >= 3.14
except ImportError:
    from backports import zstd  # what rosbags uses before 3.14
from rosbags.interfaces import (
    Connection,
    ConnectionExtRosbag2,
    MessageDefinition,
    MessageDefinitionFormat,
    Qos,
)
from rosbags.rosbag2 import ReaderError
from rosbags.rosbag2.metadata import parse_qos
from rosbags.rosbag2.storage_mcap import McapReader, decompress
from rosbags.rosbag2.storage_sqlite3 import Sqlite3Reader
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from stir_ros.bag.model import BagMessage, BagProblem, TopicInfo
from stir_ros.bag.types import SPIKE_PACKET, get_typestore, type_hash
from stir_ros.core.errors import BagError

__all__ = ["BagReader", "check_spike_topic"]

_MCAP_MAGIC = b"\x89MCAP0\r\n"
_REC = struct.Struct("<BQ")  # opcode, body length
_MSG_HEAD = struct.Struct("<HIQQ")  # channel id, sequence, log time, publish time


@dataclass
class _Storage:
    """One storage file of a bag, opened with a rosbags plugin or recovered by a scan."""

    path: Path
    kind: str  # sqlite3 | mcap | mcap-scan
    plugin: Any = None
    # storage connection id -> (topic, msgtype)
    channels: dict[int, tuple[str, str]] = field(default_factory=dict)


class _SqliteSalvage:
    """Minimal stand-in for rosbags' Sqlite3Reader on a damaged file: topics, definitions, no counts."""

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
                fmt = MessageDefinitionFormat.IDL if enc == "ros2idl" else MessageDefinitionFormat.MSG
                defs[name] = MessageDefinition(fmt, text)
        except apsw.Error:
            pass
        try:
            rows = self.dbconn.execute("SELECT id, name, type, serialization_format, offered_qos_profiles, "
                                       "type_description_hash FROM topics").fetchall()
        except apsw.Error:
            rows = [(*r, "") for r in self.dbconn.execute(
                "SELECT id, name, type, serialization_format, offered_qos_profiles FROM topics").fetchall()]
        self.connections = []
        for cid, name, msgtype, fmt, qos_text, digest in rows:
            try:
                qos = parse_qos(qos_text)
            except ReaderError:
                qos = []
            self.connections.append(Connection(cid, name, msgtype, defs.get(msgtype, MessageDefinition(
                MessageDefinitionFormat.NONE, "")), digest or "", 0, ConnectionExtRosbag2(fmt, qos), self))
        self.metadata = type("Times", (), {"start_time": 0, "end_time": 0})()

    def close(self) -> None:
        self.dbconn.close()


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
        meta: dict[str, Any] | None = None
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
        return "".join(f"\n  - {p}" for p in self.problems)

    def _files_of_directory(self) -> tuple[list[Path], dict[str, Any] | None]:
        meta_path = self.path / "metadata.yaml"
        if not meta_path.exists():
            files = sorted(p for p in self.path.iterdir() if p.suffix in (".db3", ".mcap"))
            if not files:
                raise BagError(f"'{self.path}' is not a rosbag2 bag: no metadata.yaml and no .db3/.mcap file")
            self._problem("no_metadata", meta_path,
                          "missing (was the recorder stopped abruptly?); reading the storage files found")
            return files, None
        try:
            doc = YAML(typ="safe").load(meta_path.read_text(encoding="utf-8"))
            meta = doc["rosbag2_bagfile_information"]
            names = [Path(p).name for p in meta["relative_file_paths"]]
            self.storage_id = str(meta.get("storage_identifier", ""))
        except (OSError, YAMLError, KeyError, TypeError) as err:
            raise BagError(f"cannot read the metadata of bag '{self.path}': {err}") from err
        if int(meta.get("version", 0)) > 9:
            raise BagError(f"bag '{self.path}' has metadata version {meta['version']}; versions up to 9 are supported")
        mode = str(meta.get("compression_mode") or "").lower()
        fmt = str(meta.get("compression_format") or "")
        if mode not in ("", "none") and fmt != "zstd":
            raise BagError(f"bag '{self.path}' uses compression format {fmt!r}; only zstd is supported")
        self._message_compression = mode == "message"
        self.custom_data = dict(meta.get("custom_data") or {})
        files = []
        for name in names:
            path = self.path / name
            if not path.exists():
                self._problem("missing_file", path, "listed in metadata.yaml but missing; skipped")
                continue
            if mode == "file":
                path = self._decompress_file(path)
                if path is None:
                    continue
            files.append(path)
        return files, meta

    def _decompress_file(self, path: Path) -> Path | None:
        if self._tmpdir is None:
            self._tmpdir = tempfile.TemporaryDirectory(prefix="stir_ros_bag_")
        out = Path(self._tmpdir.name) / path.stem  # "x.mcap.zstd" -> "x.mcap"
        try:
            with path.open("rb") as src, zstd.open(src, "rb") as infile, out.open("wb") as dst:
                while block := infile.read(1 << 20):
                    dst.write(block)
        except (OSError, zstd.ZstdError) as err:
            self._problem("bad_file", path, f"cannot decompress: {err}; skipped")
            return None
        return out

    def _open_storage(self, path: Path) -> None:
        if path.suffix == ".db3":
            plugin = Sqlite3Reader(path)
            try:
                plugin.open()
            except (ReaderError, apsw.Error) as err:
                # rosbags counts every row on opening; a damaged file may still have readable
                # tables and rows, which the row-by-row read below can salvage.
                try:
                    plugin = _SqliteSalvage(path)
                except (apsw.Error, KeyError, ValueError) as err2:
                    self._problem("bad_file", path, f"cannot open as sqlite3: {err}; {err2}; skipped")
                    return
                self._problem("bad_file", path, f"damaged sqlite3 file ({err}); reading the rows that can be read")
            storage = _Storage(path, "sqlite3", plugin)
            storage.channels = {c.id: (c.topic, c.msgtype) for c in plugin.connections}
            self._storages.append(storage)
            return
        plugin = McapReader(path)
        try:
            plugin.open()
        except Exception as err:  # noqa: BLE001 - any failure of the indexed read: try a scan
            # No valid footer/summary: recover what a linear scan finds.
            scan = _McapScan(path)
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
        storage = _Storage(path, "mcap", plugin)
        storage.channels = {c.id: (c.topic, c.msgtype) for c in plugin.connections}
        self._storages.append(storage)

    def _collect_topics(self, meta: dict[str, Any] | None) -> None:
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
            for item in meta.get("topics_with_message_count") or []:
                tm = item["topic_metadata"]
                try:
                    qos = parse_qos(tm.get("offered_qos_profiles") or [])
                except ReaderError:
                    qos = []
                merge(tm["name"], tm["type"], int(item["message_count"]) if from_meta else 0,
                      tm.get("type_description_hash", ""), qos, None, tm.get("serialization_format", "cdr"))
        for storage in self._storages:
            for cid, topic, msgtype, count, digest, qos, msgdef in self._storage_connections(storage):
                del cid
                merge(topic, msgtype, 0 if from_meta else count, digest, qos, msgdef)
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
        plugin = storage.plugin
        hashes = {}
        if storage.kind == "mcap":
            hashes = {cid: _channel_meta(ch.metadata).get("topic_type_hash", "") for cid, ch in plugin.channels.items()}
        for c in plugin.connections:
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

    def messages(self, topics: Collection[str] | None = None) -> Iterator[BagMessage]:
        """Yield the messages of ``topics`` (all if ``None``), in recording-time order per file.

        The files of a split bag are read one after the other (rosbag2 splits in time order).
        Damaged parts are skipped and reported.
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
                source = _sqlite_messages(storage, selected, self._problem)
            elif storage.kind == "mcap":
                source = _mcap_indexed_messages(storage, selected, self._problem)
            else:
                source = storage.plugin.messages(selected)
            for cid, timestamp, data in source:
                if self._message_compression:
                    try:
                        data = zstd.decompress(data)
                    except zstd.ZstdError as err:
                        self._problem("bad_message", f"{storage.path} t={timestamp}", f"cannot decompress: {err}")
                        continue
                topic, msgtype = selected[cid]
                yield BagMessage(topic, msgtype, timestamp, data)

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


def _sqlite_messages(storage: _Storage, selected: dict[int, tuple[str, str]],
                     problem: Callable[[str, Path | str, str], None]) -> Iterator[tuple[int, int, bytes]]:
    """Messages of a sqlite3 file in time order, skipping rows that cannot be read.

    The (id, time, size) list comes through the timestamp index; if that fails the table is
    walked in blocks of row ids. Payloads are fetched in batches of a few megabytes, and a batch
    that fails is fetched row by row, so a damaged page costs only the rows stored on it.
    """
    db = storage.plugin.dbconn
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
            problem("bad_rows", storage.path, f"message table damaged ({err}); listed the messages "
                    "through the timestamp index")
        except apsw.Error:
            rows = _sqlite_scan_ids(db, ids, marks, storage.path, problem, err)
    bad = 0
    i = 0
    while i < len(rows):
        j, size = i, 0
        while j < len(rows) and (j == i or (size < (8 << 20) and j - i < 256)):
            size += rows[j][2] if rows[j][2] is not None else 1 << 20  # unknown: assume 1 MB
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
        problem("bad_rows", storage.path, f"{bad} messages unreadable (damaged database pages); skipped")


def _sqlite_scan_ids(db: Any, ids: tuple[int, ...], marks: str, path: Path,
                     problem: Callable[[str, Path | str, str], None], err: Exception) -> list[tuple[int, int, int]]:
    try:
        (max_id,) = next(iter(db.execute("SELECT max(id) FROM messages")))
    except (apsw.Error, StopIteration) as err2:
        problem("bad_file", path, f"cannot list messages ({err}; {err2}); skipped")
        return []
    rows: list[tuple[int, int, int]] = []
    lost_blocks = 0
    block = 1024
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


def _channel_meta(raw: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    bio = BytesIO(raw)
    try:
        while bio.tell() < len(raw):
            key = _read_str(bio)
            out[key] = _read_str(bio)
    except (struct.error, UnicodeDecodeError, BagError):
        pass
    return out


def _read_str(bio: BinaryIO) -> str:
    head = bio.read(4)
    if len(head) != 4:
        raise BagError("truncated string")
    (n,) = struct.unpack("<I", head)
    data = bio.read(n)
    if len(data) != n:
        raise BagError("truncated string")
    return data.decode()


def _chunk_records(body: bytes | memoryview) -> tuple[int, int, bytes]:
    """Decode a chunk record body; returns (start time, end time, uncompressed records)."""
    start, end, size, crc = struct.unpack_from("<QQQI", body, 0)
    (clen,) = struct.unpack_from("<I", body, 28)
    compression = bytes(body[32:32 + clen]).decode()
    (dlen,) = struct.unpack_from("<Q", body, 32 + clen)
    data = bytes(body[40 + clen:40 + clen + dlen])
    if len(data) != dlen:
        raise BagError(f"chunk data truncated: {len(data)} of {dlen} bytes")
    try:
        return start, end, decompress(data, compression, size, crc)
    except ReaderError as err:
        raise BagError(str(err)) from err
    except Exception as err:  # noqa: BLE001 - zstd/lz4 raise their own types on garbage
        raise BagError(f"cannot decompress chunk ({compression}): {err}") from err


def _iter_records(data: bytes | memoryview) -> Iterator[tuple[int, memoryview]]:
    """(opcode, body) of the records in ``data``; raises BagError on bad framing."""
    view = memoryview(data)
    pos = 0
    while pos < len(view):
        if pos + 9 > len(view):
            raise BagError(f"record header cut at offset {pos}")
        op, length = _REC.unpack_from(view, pos)
        if pos + 9 + length > len(view):
            raise BagError(f"record at offset {pos} runs past the end ({length} bytes)")
        yield op, view[pos + 9:pos + 9 + length]
        pos += 9 + length


def _chunk_messages(records: bytes, selected: Collection[int]) -> list[tuple[int, int, int, bytes]]:
    """Messages (log time, record index, channel, data) of selected channels in a chunk, sorted."""
    out = []
    for index, (op, body) in enumerate(_iter_records(records)):
        if op == 0x05:
            if len(body) < _MSG_HEAD.size:
                raise BagError(f"message record of {len(body)} bytes is too short")
            cid, _seq, log_time, _pub = _MSG_HEAD.unpack_from(body, 0)
            if cid in selected:
                out.append((log_time, index, cid, bytes(body[_MSG_HEAD.size:])))
    out.sort(key=lambda m: (m[0], m[1]))
    return out


def _mcap_indexed_messages(storage: _Storage, selected: dict[int, tuple[str, str]],
                           problem: Callable[[str, Path | str, str], None]) -> Iterator[tuple[int, int, bytes]]:
    """Messages of an indexed mcap file in time order; a chunk that cannot be read is skipped."""
    plugin: McapReader = storage.plugin
    if not plugin.chunks:  # unchunked file: fall back to rosbags' scan
        conns = [c for c in plugin.connections if c.id in selected]
        try:
            for conn, ts, data in plugin.messages(conns):
                yield conn.id, ts, data
        except ReaderError as err:
            problem("bad_file", storage.path, f"{err}; the rest of the file is skipped")
        return
    bio = plugin.bio
    assert bio is not None

    def chunk_source(order: int, chunk: Any) -> Iterator[tuple[int, int, int, int, bytes]]:
        # First a sentinel at the chunk's start time, so that heapq.merge reads a chunk only
        # when its messages are due.
        yield chunk.message_start_time, -1, -1, -1, b""
        try:
            bio.seek(chunk.chunk_start_offset)
            head = bio.read(9)
            op, length = _REC.unpack(head)
            if op != 0x06:
                raise BagError(f"expected a chunk record, found opcode {op:#x}")
            body = bio.read(length)
            if len(body) != length:
                raise BagError(f"chunk record cut short: {len(body)} of {length} bytes")
            _s, _e, records = _chunk_records(body)
            msgs = _chunk_messages(records, selected)
        except (BagError, struct.error, OSError, ValueError) as err:
            problem("bad_chunk", storage.path,
                    f"chunk at byte {chunk.chunk_start_offset} (messages "
                    f"{chunk.message_start_time}..{chunk.message_end_time} ns) unreadable: {err}; skipped")
            return
        for log_time, index, cid, data in msgs:
            yield log_time, order, index, cid, data

    chunks = sorted(
        (c for c in plugin.chunks if not c.channel_count or any(c.channel_count.get(cid) for cid in selected)),
        key=lambda c: (c.message_start_time, c.chunk_start_offset),
    )
    sources = [chunk_source(i, c) for i, c in enumerate(chunks)]
    for log_time, _order, _index, cid, data in heapq.merge(*sources):
        if cid >= 0:
            yield cid, log_time, data


class _McapScan:
    """Linear scan of an mcap file without a usable index (cut short, or summary damaged)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # id -> (topic, msgtype, type hash, qos, msgdef)
        self.channels: dict[int, tuple[str, str, str, list[Qos], MessageDefinition]] = {}
        self.schemas: dict[int, tuple[str, str, str]] = {}
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
            offset = bio.tell()
            head = bio.read(9)
            if len(head) < 9:
                return
            op, length = _REC.unpack(head)
            if op in (0x0F, 0x02):  # DataEnd, Footer
                return
            body = bio.read(length)
            if len(body) != length:
                return  # the file ends inside this record
            yield offset, op, body

    def _register(self, op: int, body: bytes | memoryview) -> None:
        bio = BytesIO(bytes(body))
        if op == 0x03:
            (sid,) = struct.unpack("<H", bio.read(2))
            name, enc = _read_str(bio), _read_str(bio)
            self.schemas[sid] = (name, enc, _read_str(bio))
        elif op == 0x04:
            cid, sid = struct.unpack("<HH", bio.read(4))
            topic, _menc = _read_str(bio), _read_str(bio)
            (mlen,) = struct.unpack("<I", bio.read(4))
            meta = _channel_meta(bio.read(mlen))
            name, enc, text = self.schemas.get(sid, ("", "", ""))
            fmt = {"ros2msg": MessageDefinitionFormat.MSG, "ros2idl": MessageDefinitionFormat.IDL}.get(
                enc, MessageDefinitionFormat.NONE)
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
        """First pass: schemas, channels, counts and the readable chunks."""
        with self.path.open("rb") as bio:
            if bio.read(8) != _MCAP_MAGIC:
                raise BagError("not an mcap file (bad magic)")
            self._data_start = 8
            for offset, op, body in self._records(bio):
                try:
                    if op == 0x06:
                        _s, _e, records = _chunk_records(body)
                        for inner_op, inner in _iter_records(records):
                            if inner_op in (0x03, 0x04):
                                self._register(inner_op, inner)
                            elif inner_op == 0x05:
                                cid, _seq, log_time, _pub = _MSG_HEAD.unpack_from(inner, 0)
                                self._count(cid, log_time)
                        self._chunks.append(offset)
                    elif op in (0x03, 0x04):
                        self._register(op, body)
                    elif op == 0x05:
                        cid, _seq, log_time, _pub = _MSG_HEAD.unpack_from(body, 0)
                        self._count(cid, log_time)
                except (BagError, struct.error, UnicodeDecodeError) as err:
                    self.bad_chunks += op == 0x06
                    self.problems.append(f"record at byte {offset} (opcode {op:#x}) unreadable: {err}; skipped")

    def messages(self, selected: Collection[int]) -> Iterator[tuple[int, int, bytes]]:
        """Second pass: messages of the selected channels, in file order, chunks sorted inside."""
        chunk_offsets = set(self._chunks)
        with self.path.open("rb") as bio:
            for offset, op, body in self._records(bio):
                if op == 0x06 and offset in chunk_offsets:
                    try:
                        _s, _e, records = _chunk_records(body)
                        msgs = _chunk_messages(records, selected)
                    except (BagError, struct.error):  # reported by scan()
                        continue
                    for log_time, _i, cid, data in msgs:
                        yield cid, log_time, data
                elif op == 0x05 and len(body) >= _MSG_HEAD.size:
                    cid, _seq, log_time, _pub = _MSG_HEAD.unpack_from(body, 0)
                    if cid in selected:
                        yield cid, log_time, bytes(body[_MSG_HEAD.size:])
