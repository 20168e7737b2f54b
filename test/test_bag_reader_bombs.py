# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Compressed parts of a bag that expand without bound ("zip bombs") are refused, not unpacked.

A crafted bag can hold an mcap chunk, a message (``compression_mode: message``) or a whole file
(``compression_mode: file``) that is a few hundred kilobytes compressed and half a gigabyte or
more unpacked. Each is reported as a bag problem and skipped; the good messages around it are
read; and the memory (traced by tracemalloc) or the disk used stays far below the bomb's size.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from stir_ros.bag.mcap_records import MAGIC, RECORD_HEAD, Opcode, decompress_bounded, read_chunk
from stir_ros.bag.reader import BagReader, zstd
from stir_ros.bag.types import get_typestore
from stir_ros.bag.writer import BagWriter, serialize
from stir_ros.core import limits
from stir_ros.core.errors import BagError

BOMB_BYTES = 512 * 1024 * 1024  # unpacked size of every bomb here
START = 1_700_000_000_000_000_000
COUNT = 20


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """One zstd frame (no declared content size) of BOMB_BYTES zeros, compressed block by block."""
    comp = zstd.ZstdCompressor()
    block = bytes(1 << 20)
    parts = [comp.compress(block) for _ in range(BOMB_BYTES // len(block))]
    parts.append(comp.flush())
    data = b"".join(parts)
    assert len(data) < BOMB_BYTES // 1000
    return data


def _text(k: int) -> str:
    """Message k: its number, then 200 kB that do not compress (six to a chunk of the mcap writer)."""
    return f"#{k}:" + random.Random(k).randbytes(100_000).hex()


def _cdr(k: int) -> bytes:
    string = get_typestore().types["std_msgs/msg/String"]
    return bytes(serialize(string(data=_text(k)), "std_msgs/msg/String"))


def _write(bag: Path, storage: str, payloads: Iterator[bytes] | list[bytes]) -> None:
    with BagWriter(bag, storage) as w:
        conn = w.add_topic("/note", "std_msgs/msg/String")
        for k, data in enumerate(payloads):
            w.write(conn, START + k * 1000, data)


def _read(bag: Path) -> tuple[list[int], BagReader, int]:
    """(message numbers read, the closed reader, peak traced memory while reading)."""
    tracemalloc.start()
    try:
        with BagReader(bag) as reader:
            texts = [reader.deserialize(m).data for m in reader.messages()]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    numbers = [int(t[1:t.index(":")]) for t in texts]
    assert texts == [_text(k) for k in numbers]  # every message read is whole
    return numbers, reader, peak


def _mcap_chunks(data: bytes) -> list[tuple[int, int]]:
    """(offset, total length) of each top-level chunk record of an mcap file."""
    out, pos = [], 8
    while pos < len(data) - 8:
        op, length = RECORD_HEAD.unpack_from(data, pos)
        if op == Opcode.CHUNK:
            out.append((pos, RECORD_HEAD.size + length))
        pos += RECORD_HEAD.size + length
    return out


def _numbers_in(data: bytearray, chunk: tuple[int, int]) -> set[int]:
    """The numbers of the messages in a chunk."""
    offset, size = chunk
    _s, _e, records = read_chunk(bytes(data[offset + RECORD_HEAD.size:offset + size]))
    return {k for k in range(COUNT) if f"#{k}:".encode() in records}


def _plant_chunk(data: bytearray, offset: int, size: int, declared: int | None, bomb: bytes) -> None:
    """Replace the chunk at ``offset`` by one whose records are ``bomb``, in the same number of bytes.

    Its times stay (the index still points at it); its uncompressed size is ``declared`` or, if
    None, the size of the records it replaces. The bytes left over pad the record after the data.
    """
    body = memoryview(data)[offset + RECORD_HEAD.size:offset + size]
    start, end, old_size, _crc = (int.from_bytes(body[i:i + n], "little") for i, n in ((0, 8), (8, 8), (16, 8), (24, 4)))
    head = b"".join(v.to_bytes(n, "little") for v, n in ((start, 8), (end, 8), (declared or old_size, 8), (0, 4)))
    new = head + (4).to_bytes(4, "little") + b"zstd" + len(bomb).to_bytes(8, "little") + bomb
    assert len(new) <= len(body)
    body[:] = new + bytes(len(body) - len(new))


@pytest.mark.parametrize("index", ["indexed", "scanned", "footer without summary"])
@pytest.mark.parametrize("declared", ["its own size", "more than the limit"])
def test_an_mcap_chunk_that_expands_without_bound_is_skipped(tmp_path: Path, bomb: bytes, index: str,
                                                             declared: str) -> None:
    bag = tmp_path / "bag"
    _write(bag, "mcap", [_cdr(k) for k in range(COUNT)])
    mcap = bag / "bag.mcap"
    data = bytearray(mcap.read_bytes())
    chunks = _mcap_chunks(bytes(data))
    assert len(chunks) >= 3
    lost = _numbers_in(data, chunks[1])
    _plant_chunk(data, *chunks[1], 2**40 if declared == "more than the limit" else None, bomb)
    if index == "scanned":  # no summary: the reader's own linear scan, up to a cut in the last chunk
        lost |= _numbers_in(data, chunks[-1])
        data = data[:chunks[-1][0] + chunks[-1][1] // 2]
    elif index == "footer without summary":  # rosbags scans the chunks when it opens the file
        footer = len(data) - len(MAGIC) - RECORD_HEAD.size - 20
        assert data[footer] == Opcode.FOOTER
        data[footer + RECORD_HEAD.size:footer + RECORD_HEAD.size + 20] = bytes(20)  # summary start 0, CRC 0
    mcap.write_bytes(bytes(data))
    numbers, reader, peak = _read(bag)
    assert lost and numbers == [k for k in range(COUNT) if k not in lost]
    assert peak < BOMB_BYTES // 16, f"reading the bag took {peak} bytes: the bomb was unpacked"
    bad = [p for p in reader.problems if p.kind == "bad_chunk"]
    assert len(bad) == 1, reader.problems
    says = ("declares 1099511627776 uncompressed bytes, more than the limit" if declared == "more than the limit"
            else "expands to more than")
    assert says in bad[0].detail, bad[0]


def _compressed(bag: Path, mode: str) -> None:
    """Mark a written bag's metadata as ``compression_mode: mode``, format zstd."""
    meta = bag / "metadata.yaml"
    text = meta.read_text()
    assert "compression_format: ''" in text and "compression_mode: ''" in text
    meta.write_text(text.replace("compression_format: ''", "compression_format: zstd")
                    .replace("compression_mode: ''", f"compression_mode: {mode}"))


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_a_message_that_expands_without_bound_is_skipped(tmp_path: Path, bomb: bytes, storage: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_DECOMPRESSED_BYTES", 8 * 1024 * 1024)  # a bomb of 512 MiB is 64 limits
    bombs = {3, 7}
    bag = tmp_path / "bag"
    _write(bag, storage, [bomb if k in bombs else zstd.compress(_cdr(k)) for k in range(COUNT)])
    _compressed(bag, "message")
    numbers, reader, peak = _read(bag)
    assert numbers == [k for k in range(COUNT) if k not in bombs]
    assert peak < BOMB_BYTES // 16, f"reading the bag took {peak} bytes: the bomb was unpacked"
    assert [p.kind for p in reader.problems] == ["bad_message"] * len(bombs)
    assert all("expands to more than 8388608 bytes (the limit)" in p.detail for p in reader.problems), reader.problems


def test_a_file_that_expands_without_bound_is_stopped_and_deleted(tmp_path: Path, bomb: bytes,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A split bag of a bomb file and a good file: the bomb stops 64 MiB from the disk's margin."""
    _write(tmp_path / "good", "sqlite3", [_cdr(k) for k in range(COUNT)])
    bag = tmp_path / "bag"
    bag.mkdir()
    (bag / "good.db3.zstd").write_bytes(zstd.compress((tmp_path / "good" / "good.db3").read_bytes()))
    (bag / "bomb.db3.zstd").write_bytes(bomb)
    meta = (tmp_path / "good" / "metadata.yaml").read_text()
    (bag / "metadata.yaml").write_text(meta.replace("  - good.db3", "  - bomb.db3.zstd\n  - good.db3.zstd"))
    _compressed(bag, "file")
    # Leave 64 MiB to unpack into above the margin (others writing to the disk meanwhile only lower it).
    monkeypatch.setattr(limits, "MIN_FREE_DISK_BYTES", shutil.disk_usage(tempfile.gettempdir()).free - (64 << 20))
    left: list[list[str]] = []
    reader = BagReader(bag, on_problem=lambda p: left.append(sorted(os.listdir(reader._tmpdir.name))))  # noqa: SLF001
    with reader:
        texts = [reader.deserialize(m).data for m in reader.messages()]
        unpacked = sorted(os.listdir(reader._tmpdir.name))  # noqa: SLF001
    assert texts == [_text(k) for k in range(COUNT)]
    assert [(p.kind, Path(p.where).name) for p in reader.problems] == [("bad_file", "bomb.db3.zstd")]
    assert "would leave less than" in reader.problems[0].detail, reader.problems
    assert left == [[]] and unpacked == ["good.db3"]  # the partial file was deleted at once


@pytest.mark.parametrize("compression", ["zstd", "lz4"])
def test_bounded_decompression_of_frames(compression: str) -> None:
    import lz4.frame  # type: ignore[import-untyped]

    pack = zstd.compress if compression == "zstd" else lz4.frame.compress
    two = pack(b"a" * 1000) + pack(b"b" * 24)  # two frames, as rosbags' one-shot decompressors accept
    assert decompress_bounded(two, compression, 1024) == b"a" * 1000 + b"b" * 24
    with pytest.raises(BagError, match="expands to more than 1023 bytes"):
        decompress_bounded(two, compression, 1023)
    with pytest.raises(BagError, match="expands to more than 4096 bytes"):
        decompress_bounded(pack(bytes(64 << 20)), compression, 4096)
    with pytest.raises(BagError, match="cut short|cannot decompress"):
        decompress_bounded(two[:len(two) // 3], compression, 1024)
    with pytest.raises(BagError, match="unsupported compression 'bz2'"):
        decompress_bounded(two, "bz2", 1024)
