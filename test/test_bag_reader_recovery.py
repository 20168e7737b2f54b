# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The bag reader's recovery parsers (stir_ros/bag/recovery.py, stir_ros/bag/mcap_records.py).

Small bags of ``std_msgs/String`` messages whose payloads do not compress, so that an mcap file
has several chunks of a few messages; each test damages a copy and checks exactly what is read
back and what is reported.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest

from stir_ros.bag.mcap_records import MAGIC, MESSAGE_HEAD, RECORD_HEAD, Opcode, channel_metadata, iter_records, read_chunk
from stir_ros.bag.reader import BagReader
from stir_ros.bag.types import get_typestore, type_hash
from stir_ros.core.errors import BagError

START = 1_700_000_000_000_000_000
COUNT = 16
PAYLOAD = 200_000  # characters per message: about five messages to a 1 MiB chunk


def _payloads() -> list[str]:
    rng = random.Random(15)
    return [f"{k}:" + rng.randbytes(PAYLOAD // 2).hex() for k in range(COUNT)]


@pytest.fixture(scope="module")
def bags(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from stir_ros.bag.writer import BagWriter

    tmp = tmp_path_factory.mktemp("recovery")
    string = get_typestore().types["std_msgs/msg/String"]
    for storage in ("mcap", "sqlite3"):
        with BagWriter(tmp / storage, storage) as w:
            conn = w.add_topic("/note", "std_msgs/msg/String")
            for k, text in enumerate(_payloads()):
                w.write_message(conn, START + k * 1000, string(data=text))
    return {"mcap": tmp / "mcap", "sqlite3": tmp / "sqlite3"}


def _damaged_copy(bags: dict[str, Path], storage: str, tmp: Path) -> tuple[Path, Path]:
    bag = tmp / storage
    shutil.copytree(bags[storage], bag)
    return bag, bag / f"{storage}.{'mcap' if storage == 'mcap' else 'db3'}"


def _read(bag: Path) -> tuple[list[int], list[str], BagReader]:
    """(message numbers, problem kinds, the closed reader) of a bag read through."""
    with BagReader(bag) as reader:
        texts = [reader.deserialize(m).data for m in reader.messages()]
    for text in texts:  # every message read is whole
        assert text == _payloads()[int(text.split(":")[0])]
    return [int(t.split(":")[0]) for t in texts], [p.kind for p in reader.problems], reader


def _top_level_records(data: bytes) -> list[tuple[int, int, int]]:
    """(opcode, offset, total length) of the records of a whole mcap file."""
    out, pos = [], len(MAGIC)
    while pos < len(data) - len(MAGIC):
        op, length = RECORD_HEAD.unpack_from(data, pos)
        out.append((op, pos, RECORD_HEAD.size + length))
        pos += RECORD_HEAD.size + length
    return out


def _chunks(data: bytes) -> list[tuple[int, int, list[int]]]:
    """(offset, total length, message numbers) of each chunk of a whole mcap file."""
    out = []
    for op, offset, size in _top_level_records(data):
        if op == Opcode.CHUNK:
            _s, _e, records = read_chunk(data[offset + RECORD_HEAD.size:offset + size])
            # Message body: header, then the CDR String: encapsulation (4), length (4), "<number>:..."
            text = MESSAGE_HEAD.size + 8
            numbers = [int(bytes(body[text:text + 8]).split(b":")[0])
                       for inner, body in iter_records(records) if inner == Opcode.MESSAGE]
            out.append((offset, size, numbers))
    return out


# ---------------------------------------------------------------------------- mcap records


def test_record_types_are_those_of_a_written_file(bags: dict[str, Path]) -> None:
    data = (bags["mcap"] / "mcap.mcap").read_bytes()
    assert data.startswith(MAGIC) and data.endswith(MAGIC)
    ops = [Opcode(op) for op, _o, _n in _top_level_records(data)]  # ValueError on an unnamed opcode
    assert ops[0] == Opcode.HEADER and ops[-1] == Opcode.FOOTER
    data_end = ops.index(Opcode.DATA_END)
    assert set(ops[1:data_end]) <= {Opcode.CHUNK, Opcode.MESSAGE_INDEX, Opcode.METADATA}
    assert {Opcode.SCHEMA, Opcode.CHANNEL, Opcode.CHUNK_INDEX, Opcode.STATISTICS} <= set(ops[data_end:])
    chunks = _chunks(data)
    assert len(chunks) >= 3 and [n for _o, _s, numbers in chunks for n in numbers] == list(range(COUNT))


def test_record_framing_and_chunk_checks() -> None:
    record = RECORD_HEAD.pack(Opcode.MESSAGE, 3) + b"abc"
    assert [(op, bytes(body)) for op, body in iter_records(record * 2)] == [(Opcode.MESSAGE, b"abc")] * 2
    with pytest.raises(BagError, match="runs past the end"):
        list(iter_records(record[:-1]))
    with pytest.raises(BagError, match="header cut"):
        list(iter_records(record + record[:5]))
    with pytest.raises(BagError, match="checksum"):  # uncompressed chunk of 3 bytes with a wrong CRC
        read_chunk((1).to_bytes(8, "little") * 2 + (3).to_bytes(8, "little") + (7).to_bytes(4, "little")
                   + (0).to_bytes(4, "little") + (3).to_bytes(8, "little") + b"abc")
    pair = (3).to_bytes(4, "little") + b"key" + (5).to_bytes(4, "little") + b"value"
    assert channel_metadata(pair + pair[:6]) == {"key": "value"}  # a cut map keeps the whole pairs


# ---------------------------------------------------------------------------- mcap recovery


def test_intact_mcap_reads_every_message_and_the_type_hash(bags: dict[str, Path]) -> None:
    numbers, kinds, reader = _read(bags["mcap"])
    assert numbers == list(range(COUNT)) and kinds == []
    assert reader.topics["/note"].type_hash == type_hash("std_msgs/msg/String")  # from the channel metadata
    assert (reader.start_time, reader.end_time) == (START, START + (COUNT - 1) * 1000)


@pytest.mark.parametrize("where", ["inside", "boundary"])
def test_truncated_mcap_is_recovered_up_to_the_last_complete_chunk(bags: dict[str, Path], tmp_path: Path,
                                                                   where: str) -> None:
    bag, mcap = _damaged_copy(bags, "mcap", tmp_path)
    data = mcap.read_bytes()
    offset, size, _numbers = _chunks(data)[2]
    mcap.write_bytes(data[:offset + (size // 2 if where == "inside" else 0)])
    complete = [n for _o, _s, numbers in _chunks(data)[:2] for n in numbers]
    numbers, kinds, reader = _read(bag)
    assert numbers == complete and kinds == ["truncated"]
    assert f"recovered {len(complete)} messages by scanning" in str(reader.problems[0])
    assert reader.topics["/note"].message_count == len(complete)
    assert reader.topics["/note"].type_hash == type_hash("std_msgs/msg/String")
    assert (reader.start_time, reader.end_time) == (START, START + (len(complete) - 1) * 1000)


def test_mcap_without_its_summary_is_read_whole(bags: dict[str, Path], tmp_path: Path) -> None:
    bag, mcap = _damaged_copy(bags, "mcap", tmp_path)
    data = mcap.read_bytes()
    data_end = next(o for op, o, _n in _top_level_records(data) if op == Opcode.DATA_END)
    mcap.write_bytes(data[:data_end + 20])  # the summary section is cut
    numbers, kinds, _reader = _read(bag)
    assert numbers == list(range(COUNT)) and kinds == ["truncated"]


def test_bad_chunk_of_a_truncated_mcap_is_skipped(bags: dict[str, Path], tmp_path: Path) -> None:
    bag, mcap = _damaged_copy(bags, "mcap", tmp_path)
    data = bytearray(mcap.read_bytes())
    chunks = _chunks(bytes(data))
    offset, size, lost = chunks[1]
    data[offset + size // 2:offset + size // 2 + 16] = b"\xa5" * 16  # checksum now wrong
    cut = chunks[-1][0] + chunks[-1][1] // 2
    mcap.write_bytes(bytes(data[:cut]))
    numbers, kinds, reader = _read(bag)
    assert numbers == [n for _o, _s, ns in chunks[:-1] for n in ns if n not in lost]
    assert kinds == ["truncated", "bad_chunk"] and f"record at byte {offset} (opcode 0x6)" in str(reader.problems[1])


def test_bad_chunk_of_an_indexed_mcap_is_skipped(bags: dict[str, Path], tmp_path: Path) -> None:
    bag, mcap = _damaged_copy(bags, "mcap", tmp_path)
    data = bytearray(mcap.read_bytes())
    offset, size, lost = _chunks(bytes(data))[1]
    data[offset + size // 2:offset + size // 2 + 16] = b"\xa5" * 16
    mcap.write_bytes(bytes(data))
    numbers, kinds, reader = _read(bag)
    assert numbers == [n for n in range(COUNT) if n not in lost] and kinds == ["bad_chunk"]
    assert f"chunk at byte {offset}" in str(reader.problems[0]) and "checksum" in str(reader.problems[0])


def test_file_that_is_not_mcap_is_skipped(bags: dict[str, Path], tmp_path: Path) -> None:
    bag, mcap = _damaged_copy(bags, "mcap", tmp_path)
    mcap.write_bytes(b"not an mcap file at all")
    with pytest.raises(BagError, match="no readable storage file"):
        BagReader(bag).open()


# ---------------------------------------------------------------------------- sqlite3 salvage


@pytest.mark.parametrize("kept", [0.6, 0.9, 0.999])
def test_sqlite_bag_with_a_damaged_tail_keeps_every_readable_row(bags: dict[str, Path], tmp_path: Path,
                                                                  kept: float) -> None:
    bag, db = _damaged_copy(bags, "sqlite3", tmp_path)
    data = db.read_bytes()
    db.write_bytes(data[:int(len(data) * kept)])
    numbers, kinds, reader = _read(bag)
    assert numbers == list(range(len(numbers))) and 0 < len(numbers) < COUNT  # the rows before the cut
    unreadable = [p for p in reader.problems if "unreadable (damaged database pages)" in p.detail]
    assert len(unreadable) == 1 and unreadable[0].detail.startswith(f"{COUNT - len(numbers)} messages")
    assert "no_metadata" not in kinds and "missing_file" not in kinds
    if "bad_file" in kinds:  # rosbags refused the file: salvaged, without counts or times
        assert any("damaged sqlite3 file" in p.detail for p in reader.problems)
        assert reader.topics["/note"].message_count == 0 and (reader.start_time, reader.end_time) == (0, 0)
    assert reader.topics["/note"].type_hash == type_hash("std_msgs/msg/String")


# ---------------------------------------------------------------------------- declared lengths

HUGE = [2**40, 2**63 - 1, 2**64 - 1]


def _declare(data: bytearray, offset: int, length: int) -> None:
    """Overwrite the length field of the record at ``offset``."""
    data[offset + 1:offset + RECORD_HEAD.size] = length.to_bytes(8, "little")


@pytest.mark.parametrize("length", HUGE)
@pytest.mark.parametrize("index", ["indexed", "scanned"])
def test_a_chunk_declaring_more_bytes_than_the_file_holds_is_skipped(bags: dict[str, Path], tmp_path: Path,
                                                                      length: int, index: str) -> None:
    bag, mcap = _damaged_copy(bags, "mcap", tmp_path)
    data = bytearray(mcap.read_bytes())
    chunks = _chunks(bytes(data))
    offset, _size, lost = chunks[1]
    _declare(data, offset, length)
    if index == "scanned":  # no summary: a linear scan, which cannot step over the chunk
        data = data[:chunks[-1][0] + chunks[-1][1] // 2]
    mcap.write_bytes(bytes(data))
    numbers, kinds, reader = _read(bag)
    if index == "indexed":  # the index finds the chunks after it
        assert numbers == [n for n in range(COUNT) if n not in lost] and kinds == ["bad_chunk"]
        assert f"declares {length} bytes, but only" in str(reader.problems[0])
    else:
        assert numbers == chunks[0][2] and kinds == ["truncated"]


def _spike_mcap(tmp_path: Path) -> tuple[Path, int]:
    """A single-file mcap bag of SpikePackets and the offset of its second chunk."""
    import numpy as np

    from stir_ros.bag.convert import dat_to_bag
    from stir_ros.core.dat import write_dat

    write_dat(tmp_path / "rec.dat", (np.random.default_rng(0).random((4000, 8, 8)) < 0.3).astype(np.uint8))
    dat_to_bag(tmp_path / "rec.dat", tmp_path / "bag", 8, 8, 20000.0, frames_per_packet=100, storage="mcap",
               start_ns=10**18)  # fmt: skip
    data = (tmp_path / "bag" / "bag.mcap").read_bytes()
    offsets = [o for op, o, _n in _top_level_records(data) if op == Opcode.CHUNK]
    assert len(offsets) >= 1
    return tmp_path / "bag" / "bag.mcap", offsets[0]


@pytest.mark.parametrize("length", HUGE)
@pytest.mark.parametrize("command", ["info", "to-dat", "reconstruct"])
def test_tools_report_a_chunk_of_impossible_length_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                               length: int, command: str) -> None:
    from stir_ros.cli import main

    mcap, offset = _spike_mcap(tmp_path)
    data = bytearray(mcap.read_bytes())
    _declare(data, offset, length)
    mcap.write_bytes(bytes(data))
    argv = {"info": ["bag", "info", str(mcap)],
            "to-dat": ["bag", "to-dat", str(mcap), str(tmp_path / "out.dat")],
            "reconstruct": ["bag", "reconstruct", str(mcap), str(tmp_path / "out"), "--method", "tfp",
                            "--no-progress"]}[command]  # fmt: skip
    status = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err and "MemoryError" not in err and "OverflowError" not in err
    if command == "info":
        assert status == 0
    else:  # the only chunk is unreadable: reported as damage (status 1) or as nothing to read
        assert status == 1 and f"declares {length} bytes" in err


@pytest.mark.parametrize("index", ["indexed", "scanned"])
def test_any_record_declaring_an_impossible_length_is_a_bag_problem(bags: dict[str, Path], tmp_path: Path,
                                                                     index: str) -> None:
    """Every top-level record (header, chunks, indexes, summary, footer) in turn: read, or refused as a BagError."""
    bag, mcap = _damaged_copy(bags, "mcap", tmp_path)
    data = (bags["mcap"] / "mcap.mcap").read_bytes()
    if index == "scanned":
        data = data[:next(o for op, o, _n in _top_level_records(data) if op == Opcode.DATA_END)]
    offsets = [o for _op, o, _n in _top_level_records(data + (MAGIC if index == "scanned" else b""))]
    for offset in offsets:
        for length in HUGE:
            damaged = bytearray(data)
            _declare(damaged, offset, length)
            mcap.write_bytes(bytes(damaged))
            try:
                _read(bag)
            except BagError:
                pass  # anything else (MemoryError, OverflowError, ...) fails the test
