# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Play a bag in one process and record it in another, over real rclpy + Fast DDS."""

from __future__ import annotations

import hashlib
import signal
import sys
from pathlib import Path

import numpy as np
import pytest

from stir_ros.bag.convert import dat_to_bag
from stir_ros.bag.reader import BagReader
from stir_ros.bag.types import CLOCK, SPIKE_PACKET, type_hash
from stir_ros.core.dat import write_dat
from stir_ros.core.errors import ConfigError

pytestmark = pytest.mark.ros
pytest.importorskip("rclpy")

from ros_support import OutputProcess  # noqa: E402

START = 1_700_000_000_000_000_000


#: ``stir-ros`` run from this environment's Python.
CLI = [sys.executable, "-m", "stir_ros.cli"]


def _make_bag(tmp: Path, storage: str, n_frames: int = 2000) -> Path:
    frames = (np.random.default_rng(5).random((n_frames, 64, 96)) < 0.3).astype(np.uint8)
    write_dat(tmp / "a.dat", frames)
    dat_to_bag(tmp / "a.dat", tmp / "in", 64, 96, 20000.0, frames_per_packet=20, storage=storage, start_ns=START)
    return tmp / "in"


def _digests(bag_path: Path, topic: str) -> list[str]:
    with BagReader(bag_path) as bag:
        return [hashlib.sha256(bytes(m.data)).hexdigest() for m in bag.messages([topic])]


@pytest.mark.parametrize(("storage", "stop_signal"), [("sqlite3", signal.SIGINT), ("mcap", signal.SIGTERM)])
def test_recording_of_a_played_bag_holds_every_message(tmp_path: Path, ros_env: dict[str, str],
                                                       storage: str, stop_signal: int) -> None:
    src = _make_bag(tmp_path, storage)
    rec = OutputProcess([*CLI, "bag", "record", str(tmp_path / "rec"), "/spikes", "/clock", "--storage", storage], ros_env)
    play = None
    try:
        rec.wait_for("recording to", timeout=20)
        play = OutputProcess([*CLI, "bag", "play", str(src), "--clock", "200", "--wait-for-subscribers", "1",
                      "--wait-for-subscribers-timeout-s", "20"], ros_env)
        assert play.finish(timeout=25) == 0, play.output()
        assert "published 100 on /spikes" in play.output()
        assert rec.finish(timeout=15, sig=stop_signal) == 0, rec.output()
    finally:
        rec.kill()
        if play is not None:
            play.kill()
    assert "wrote " in rec.output()
    # Every packet, in order, byte for byte.
    assert _digests(tmp_path / "rec", "/spikes") == _digests(src, "/spikes")
    with BagReader(tmp_path / "rec") as bag:
        assert not bag.problems and bag.storage_id == storage
        spikes, clock = bag.topics["/spikes"], bag.topics["/clock"]
        assert (spikes.msgtype, spikes.message_count) == (SPIKE_PACKET, 100)
        assert spikes.type_hash == type_hash(SPIKE_PACKET)  # as the publisher announced it
        assert clock.msgtype == CLOCK and clock.type_hash == type_hash(CLOCK)
        assert spikes.offered_qos_profiles and spikes.offered_qos_profiles[0].reliability.name == "RELIABLE"
        ticks = [bag.deserialize(m).clock for m in bag.messages(["/clock"])]
    stamps = [int(t.sec) * 10**9 + int(t.nanosec) for t in ticks]
    assert len(stamps) >= 2 and stamps[0] == START and stamps == sorted(stamps)
    assert stamps[-1] <= START + 10**9  # bag time, not wall time


def test_record_stops_by_itself_and_play_loops_until_interrupted(tmp_path: Path, ros_env: dict[str, str]) -> None:
    src = _make_bag(tmp_path, "sqlite3", n_frames=400)  # 20 packets
    rec = OutputProcess([*CLI, "bag", "record", str(tmp_path / "rec"), "/spikes", "--max-messages", "50", "--duration", "20"],
                ros_env)
    play = None
    try:
        rec.wait_for("recording to", timeout=20)
        play = OutputProcess([*CLI, "bag", "play", str(src), "--loop", "--rate", "0.5", "--wait-for-subscribers", "1",
                      "--wait-for-subscribers-timeout-s", "20"], ros_env)
        assert rec.finish(timeout=25) == 0, rec.output()
        assert play.finish(timeout=15, sig=signal.SIGINT) == 0, play.output()
    finally:
        rec.kill()
        if play is not None:
            play.kill()
    digests = _digests(tmp_path / "rec", "/spikes")
    one_pass = _digests(src, "/spikes")
    assert len(digests) == 50
    assert digests == (one_pass * 3)[:50]  # the loop replays the bag in order


@pytest.mark.slow
def test_record_keeps_up_with_the_full_rate_stream(tmp_path: Path, ros_env: dict[str, str]) -> None:
    """250x400 spikes at 20 kHz in packets of 100 frames: 200 packets/s, 250 MB/s, for 0.5 s."""
    from stir_ros.core.dat import DatWriter

    pool = (np.random.default_rng(9).random((100, 250, 400)) < 0.3).astype(np.uint8)
    with DatWriter(tmp_path / "a.dat", 250, 400) as dat:
        for k in range(100):
            dat.write(np.roll(pool, k, axis=2))
    dat_to_bag(tmp_path / "a.dat", tmp_path / "in", 250, 400, 20000.0, frames_per_packet=100, start_ns=START)
    (tmp_path / "a.dat").unlink()
    rec = OutputProcess([*CLI, "bag", "record", str(tmp_path / "rec"), "/spikes"], ros_env)
    play = None
    try:
        rec.wait_for("recording to", timeout=20)
        play = OutputProcess([*CLI, "bag", "play", str(tmp_path / "in"), "--wait-for-subscribers", "1",
                      "--wait-for-subscribers-timeout-s", "20"], ros_env)
        assert play.finish(timeout=60) == 0, play.output()
        assert rec.finish(timeout=30, sig=signal.SIGINT) == 0, rec.output()
    finally:
        rec.kill()
        if play is not None:
            play.kill()
    assert _digests(tmp_path / "rec", "/spikes") == _digests(tmp_path / "in", "/spikes")


@pytest.mark.parametrize("value", ["image", "/ns/image:x", "/ns/image:-1"])
def test_play_refuses_a_topic_to_wait_for_that_is_not_absolute_topic_and_count(tmp_path: Path,
                                                                                value: str) -> None:
    import subprocess

    out = subprocess.run([*CLI, "bag", "play", str(tmp_path / "in"), f"--wait-for-subscribers-on={value}"],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.returncode == 2 and "expected an absolute topic name and a count" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr


def test_play_and_record_clean_up_when_rclpy_refuses_their_ros_arguments(tmp_path: Path) -> None:
    """rclpy.init fails (a malformed ``--ros-args``): a ConfigError goes up, and the tools clean up.

    Each restores SIGINT/SIGTERM; record also ends its writer thread and leaves no bag behind, so
    that the same command with the arguments put right records to the same path.
    """
    import threading

    from stir_ros.bag.play import play
    from stir_ros.bag.record import record

    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    bad = ["--ros-args", "-p"]  # a -p without its name:=value
    with pytest.raises(ConfigError, match="trailing -p flag"):
        record(tmp_path / "rec", ["/spikes"], ros_args=bad, duration=1.0)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers
    assert "bag-writer" not in {t.name for t in threading.enumerate()}
    assert not (tmp_path / "rec").exists()
    with pytest.raises(ConfigError, match="trailing -p flag"):
        play(_make_bag(tmp_path, "sqlite3", n_frames=100), ros_args=bad)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers


def test_only_rclpys_refusal_of_the_command_line_becomes_a_config_error() -> None:
    """Another RuntimeError of rclpy.init (e.g. initialised twice by the calling program) is not a bad --ros-args."""
    import rclpy

    from stir_ros.core.errors import ros_arguments_checked

    rclpy.init()
    try:
        with pytest.raises(RuntimeError, match="must only be called once") as caught:
            with ros_arguments_checked():
                rclpy.init()
        assert not isinstance(caught.value, ConfigError)
    finally:
        rclpy.shutdown()
    with pytest.raises(ConfigError, match="trailing -p flag"):
        with ros_arguments_checked():
            rclpy.init(args=["x", "--ros-args", "-p"])


def test_play_and_record_restore_the_signal_handlers_when_the_bag_cannot_be_used(tmp_path: Path) -> None:
    """A missing or corrupt bag, a topic it lacks, an output that exists: SIGINT/SIGTERM as before.

    Left installed, the tools' handlers would only set a stop event nobody waits for any more, and
    Ctrl-C would no longer interrupt the caller.
    """
    from stir_ros.bag.play import play
    from stir_ros.bag.record import record
    from stir_ros.core.errors import BagError

    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    (tmp_path / "corrupt.mcap").write_bytes(b"not an mcap file")
    bag = _make_bag(tmp_path, "sqlite3", n_frames=100)
    for path, topics, needle in [(tmp_path / "missing", None, "does not exist"),
                                 (tmp_path / "corrupt.mcap", None, "corrupt.mcap"),
                                 (bag, ["/image"], "has no topic /image")]:  # fmt: skip
        with pytest.raises(BagError, match=needle):
            play(path, topics=topics)
        assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers, path
    with pytest.raises(BagError, match="exists already"):
        record(bag, ["/spikes"], duration=1.0)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers
