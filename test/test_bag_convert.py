# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""``.dat`` <-> bag conversion, and the rosbag2 format of the bags written."""

from __future__ import annotations

import sqlite3
import struct
from binascii import crc32
from pathlib import Path

import numpy as np
import pytest
import yaml

from stir_ros.bag.convert import bag_to_dat, dat_to_bag, frame_time_ns
from stir_ros.bag.model import make_qos
from stir_ros.bag.reader import BagReader
from stir_ros.bag.writer import BagWriter
from stir_ros.bag.types import SPIKE_PACKET, get_typestore, type_hash
from stir_ros.cli import main as cli_main
from stir_ros.core.dat import read_dat, write_dat
from stir_ros.core.errors import BagError

START = 1_700_000_000_000_000_000
RATE = 20000.0


def _frames(n: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((n, h, w)) < 0.25).astype(np.uint8)


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
@pytest.mark.parametrize(("h", "w", "fpp"), [(64, 96, 32), (13, 7, 25)])
def test_dat_to_bag_to_dat_is_bit_exact(tmp_path: Path, storage: str, h: int, w: int, fpp: int) -> None:
    dat = tmp_path / "in.dat"
    write_dat(dat, _frames(203, h, w))
    result = dat_to_bag(dat, tmp_path / "bag", h, w, RATE, frames_per_packet=fpp, storage=storage, start_ns=START)
    assert (result.num_frames, result.num_packets) == (203, -(-203 // fpp))
    back = bag_to_dat(tmp_path / "bag", tmp_path / "out.dat")
    assert back.problems == [] and back.filled_frames == 0
    assert (back.height, back.width, back.frame_rate_hz) == (h, w, RATE)
    assert (tmp_path / "out.dat").read_bytes() == dat.read_bytes()


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_packets_carry_sensor_clock_and_stamps(tmp_path: Path, storage: str) -> None:
    frames = _frames(100, 16, 24)
    write_dat(tmp_path / "a.dat", frames)
    dat_to_bag(tmp_path / "a.dat", tmp_path / "bag", 16, 24, RATE, frames_per_packet=30, storage=storage,
               start_ns=START, frame_id="cam0", encoding="unpacked_u8")
    with BagReader(tmp_path / "bag") as bag:
        packets = [(m.timestamp, bag.deserialize(m)) for m in bag.messages()]
    assert [int(p.seq) for _, p in packets] == [0, 1, 2, 3]
    assert [int(p.first_frame_index) for _, p in packets] == [0, 30, 60, 90]
    assert [int(p.num_frames) for _, p in packets] == [30, 30, 30, 10]
    for t, p in packets:
        stamp = int(p.header.stamp.sec) * 10**9 + int(p.header.stamp.nanosec)
        assert stamp == t == frame_time_ns(START, int(p.first_frame_index), RATE)
        assert p.header.frame_id == "cam0" and p.encoding == "unpacked_u8" and p.frame_rate_hz == RATE
    decoded = np.concatenate([np.asarray(p.data).reshape(-1, 16, 24) for _, p in packets])
    np.testing.assert_array_equal(decoded, frames)


def test_metadata_is_rosbag2_jazzy(tmp_path: Path) -> None:
    write_dat(tmp_path / "a.dat", _frames(40, 8, 16))
    dat_to_bag(tmp_path / "a.dat", tmp_path / "bag", 8, 16, RATE, frames_per_packet=10, start_ns=START)
    info = yaml.safe_load((tmp_path / "bag" / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert info["version"] == 9 and info["storage_identifier"] == "sqlite3"
    assert info["relative_file_paths"] == ["bag.db3"] and info["message_count"] == 4
    assert info["starting_time"]["nanoseconds_since_epoch"] == START
    (topic,) = info["topics_with_message_count"]
    meta = topic["topic_metadata"]
    assert topic["message_count"] == 4
    assert (meta["name"], meta["type"], meta["serialization_format"]) == ("/spikes", SPIKE_PACKET, "cdr")
    assert meta["type_description_hash"] == type_hash(SPIKE_PACKET)
    (qos,) = meta["offered_qos_profiles"]
    assert (qos["reliability"], qos["durability"], qos["history"]) == ("reliable", "volatile", "keep_last")
    with sqlite3.connect(tmp_path / "bag" / "bag.db3") as db:
        assert db.execute("SELECT name, type, type_description_hash FROM topics").fetchall() == [
            ("/spikes", SPIKE_PACKET, type_hash(SPIKE_PACKET))]
        (enc, text, digest), = db.execute(
            "SELECT encoding, encoded_message_definition, type_description_hash FROM message_definitions").fetchall()
        assert enc == "ros2msg" and "MSG: std_msgs/Header" in text and digest == type_hash(SPIKE_PACKET)


def test_mcap_has_type_hash_and_chunk_crcs(tmp_path: Path) -> None:
    write_dat(tmp_path / "a.dat", _frames(2000, 64, 128))  # 2 MB: two 1 MB chunks and a partial one
    dat_to_bag(tmp_path / "a.dat", tmp_path / "bag", 64, 128, RATE, frames_per_packet=50, storage="mcap",
               start_ns=START)
    data = (tmp_path / "bag" / "bag.mcap").read_bytes()
    assert data[:8] == data[-8:] == b"\x89MCAP0\r\n"
    pos, chunks, channel_meta = 8, 0, b""
    while pos < len(data) - 8:
        op, length = struct.unpack_from("<BQ", data, pos)
        body = data[pos + 9:pos + 9 + length]
        if op == 0x06:  # chunk: start, end, uncompressed size, crc, compression, records
            _s, _e, size, crc = struct.unpack_from("<QQQI", body)
            (clen,) = struct.unpack_from("<I", body, 28)
            (rlen,) = struct.unpack_from("<Q", body, 32 + clen)
            records = body[40 + clen:40 + clen + rlen]
            assert crc != 0 and crc == crc32(records) and len(records) == size
            chunks += 1
            if b"topic_type_hash" in records:
                channel_meta = records
        pos += 9 + length
    assert chunks >= 2
    assert b"topic_type_hash" in channel_meta and type_hash(SPIKE_PACKET).encode() in channel_meta


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_third_party_reader_decodes_with_the_stored_definitions(tmp_path: Path, storage: str) -> None:
    """Rosbags' AnyReader, knowing nothing of SpikePacket, reads it from the definition in the bag."""
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore as rosbags_store

    write_dat(tmp_path / "a.dat", _frames(20, 8, 8))
    dat_to_bag(tmp_path / "a.dat", tmp_path / "bag", 8, 8, RATE, frames_per_packet=10, storage=storage,
               start_ns=START)
    with AnyReader([tmp_path / "bag"], default_typestore=rosbags_store(Stores.EMPTY)) as reader:
        msgs = [reader.deserialize(raw, conn.msgtype) for conn, _t, raw in reader.messages()]
    assert [int(m.first_frame_index) for m in msgs] == [0, 10]


def _packet(seq: int, first: int, n: int, h: int, w: int, frames: np.ndarray) -> object:
    store = get_typestore()
    t = store.types
    from stir_ros.core.packing import pack_frames

    stamp = frame_time_ns(START, first, RATE)
    sec, nsec = divmod(stamp, 10**9)
    return t[SPIKE_PACKET](
        header=t["std_msgs/msg/Header"](stamp=t["builtin_interfaces/msg/Time"](sec=sec, nanosec=nsec), frame_id="c"),
        height=h, width=w, seq=seq, first_frame_index=first, frame_rate_hz=RATE, num_frames=n,
        encoding="vidar_bitpacked", data=pack_frames(frames[first:first + n]),
    )


def test_to_dat_fills_lost_packets_and_drops_duplicates(tmp_path: Path) -> None:
    h, w, n = 8, 16, 10
    frames = _frames(60, h, w)
    with BagWriter(tmp_path / "bag") as bag:
        conn = bag.add_topic("/spikes", SPIKE_PACKET, [make_qos()])
        for seq in (0, 1, 1, 3, 4, 5):  # seq 2 lost, seq 1 twice
            msg = _packet(seq, seq * n, n, h, w, frames)
            bag.write_message(conn, frame_time_ns(START, seq * n, RATE) + (seq == 1), msg)
    result = bag_to_dat(tmp_path / "bag", tmp_path / "out.dat")
    kinds = sorted(p.kind for p in result.problems)
    assert kinds == ["duplicate", "gap"]
    assert result.filled_frames == n and result.num_frames == 60
    out = read_dat(tmp_path / "out.dat", h, w)
    expected = frames.copy()
    expected[20:30] = 0
    np.testing.assert_array_equal(out, expected)


def test_to_dat_refuses_a_bag_without_spikes(tmp_path: Path) -> None:
    store = get_typestore()
    with BagWriter(tmp_path / "bag") as bag:
        conn = bag.add_topic("/spikes", "std_msgs/msg/String")
        bag.write_message(conn, START, store.types["std_msgs/msg/String"](data="not spikes"))
    with pytest.raises(BagError, match="carries std_msgs/msg/String, expected stir_ros/msg/SpikePacket"):
        bag_to_dat(tmp_path / "bag", tmp_path / "out.dat")


def test_command_line_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_dat(tmp_path / "a.dat", _frames(50, 10, 16))
    assert cli_main(["bag", "from-dat", str(tmp_path / "a.dat"), str(tmp_path / "bag"), "--height", "10",
                     "--width", "16", "--frame-rate-hz", "20000", "--frames-per-packet", "20",
                     "--start-time", "1700000000.5", "--storage", "mcap"]) == 0
    assert cli_main(["bag", "info", str(tmp_path / "bag")]) == 0
    out = capsys.readouterr().out
    assert "/spikes  stir_ros/msg/SpikePacket  count 3" in out and "start:     1700000000500000000 ns" in out
    assert cli_main(["bag", "to-dat", str(tmp_path / "bag"), str(tmp_path / "b.dat")]) == 0
    assert (tmp_path / "b.dat").read_bytes() == (tmp_path / "a.dat").read_bytes()
    # Existing output: a clear error, exit status 1.
    assert cli_main(["bag", "from-dat", str(tmp_path / "a.dat"), str(tmp_path / "bag"), "--height", "10",
                     "--width", "16", "--frame-rate-hz", "20000"]) == 1
    assert "exists already" in capsys.readouterr().err


def test_bag_of_a_crashed_writer_is_readable(tmp_path: Path) -> None:
    """A sqlite3 bag is committed every second: after a crash the committed messages remain."""
    import subprocess
    import sys

    code = f"""
import os, time
from stir_ros.bag.writer import BagWriter
from stir_ros.bag.types import get_typestore
store = get_typestore()
String = store.types["std_msgs/msg/String"]
w = BagWriter({str(tmp_path / "bag")!r})
w.open()
conn = w.add_topic("/note", "std_msgs/msg/String")
for k in range(5):
    w.write_message(conn, {START} + k, String(data=str(k)))
time.sleep(1.2)
w.write_message(conn, {START} + 5, String(data="5"))  # triggers the commit of all six
w.write_message(conn, {START} + 6, String(data="6"))  # not committed: lost in the crash
os._exit(3)
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 3, run.stderr
    assert not (tmp_path / "bag" / "metadata.yaml").exists()
    with BagReader(tmp_path / "bag") as bag:
        assert [p.kind for p in bag.problems] == ["no_metadata"]
        notes = [bag.deserialize(m).data for m in bag.messages()]
    assert notes == [str(k) for k in range(6)]
