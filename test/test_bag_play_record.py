"""Play a bag in one process and record it in another, over real rclpy + Fast DDS."""

from __future__ import annotations

import hashlib
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from stir_ros.bag.convert import dat_to_bag
from stir_ros.bag.reader import BagReader
from stir_ros.bag.types import CLOCK, SPIKE_PACKET, type_hash
from stir_ros.core.dat import write_dat

pytestmark = pytest.mark.ros
pytest.importorskip("rclpy")

START = 1_700_000_000_000_000_000


class _Proc:
    """A ``stir-ros`` child process whose stderr lines can be waited for."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "stir_ros.cli", *args], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    break
                continue
            self.log.append(line)
            if text in line:
                return
        raise AssertionError(f"no {text!r} within {timeout} s; output so far:\n{''.join(self.log)}")

    def finish(self, timeout: float, sig: int | None = None) -> int:
        if sig is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        time.sleep(0.1)
        while not self.lines.empty():
            self.log.append(self.lines.get())
        return rc

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


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
    rec = _Proc(["bag", "record", str(tmp_path / "rec"), "/spikes", "/clock", "--storage", storage], ros_env)
    play = None
    try:
        rec.wait_for("recording to", 20)
        play = _Proc(["bag", "play", str(src), "--clock", "200", "--wait-for-subscribers", "1",
                      "--wait-for-subscribers-timeout-s", "20"], ros_env)
        assert play.finish(timeout=25) == 0, "".join(play.log)
        assert "published 100 on /spikes" in "".join(play.log)
        assert rec.finish(timeout=15, sig=stop_signal) == 0, "".join(rec.log)
    finally:
        rec.kill()
        if play is not None:
            play.kill()
    assert "wrote " in "".join(rec.log)
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
    rec = _Proc(["bag", "record", str(tmp_path / "rec"), "/spikes", "--max-messages", "50", "--duration", "20"],
                ros_env)
    play = None
    try:
        rec.wait_for("recording to", 20)
        play = _Proc(["bag", "play", str(src), "--loop", "--rate", "0.5", "--wait-for-subscribers", "1",
                      "--wait-for-subscribers-timeout-s", "20"], ros_env)
        assert rec.finish(timeout=25) == 0, "".join(rec.log)
        assert play.finish(timeout=15, sig=signal.SIGINT) == 0, "".join(play.log)
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
    rec = _Proc(["bag", "record", str(tmp_path / "rec"), "/spikes"], ros_env)
    play = None
    try:
        rec.wait_for("recording to", 20)
        play = _Proc(["bag", "play", str(tmp_path / "in"), "--wait-for-subscribers", "1",
                      "--wait-for-subscribers-timeout-s", "20"], ros_env)
        assert play.finish(timeout=60) == 0, "".join(play.log)
        assert rec.finish(timeout=30, sig=signal.SIGINT) == 0, "".join(rec.log)
    finally:
        rec.kill()
        if play is not None:
            play.kill()
    assert _digests(tmp_path / "rec", "/spikes") == _digests(tmp_path / "in", "/spikes")
