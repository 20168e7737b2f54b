# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Shards of ``bag reconstruct``: any split, any number of workers, a crash and a resume, one set of bytes.

The recordings come from the simulator with a sensor that has hot pixels, and the defect repair
re-estimates its map during the recording, so a shard that started without the state of the
stream before it (the repair map, the frames of overlap) would give other images.
"""

from __future__ import annotations

import shutil
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from stir_ros.bag.convert import dat_to_bag
from stir_ros.bag.jobs import Recording, run_job
from stir_ros.bag.reader import BagReader
from stir_ros.bag.ray_runner import LocalRunner
from stir_ros.bag.reconstruct import ReconstructOptions, reconstruct_bag
from stir_ros.bag.shards import plan_recording, run_shard, shard_path
from stir_ros.bag.types import CAMERA_INFO, get_typestore
from stir_ros.bag.writer import BagWriter, copy_topics, serialize
from stir_ros.core.dat import write_dat
from stir_ros.core.scenes import synthetic_image
from stir_ros.core.sensor_model import SensorModel
from stir_ros.core.simulator import simulate_spikes

START = 1_700_000_000_000_000_000
FRAMES = 2400
# TFP, every frame sampled for the defect map (re-estimated every 1,000 frames: twice per recording).
OPTIONS = ReconstructOptions(method="tfp", stride_frames=20, max_batch=2, defect_sample_period_frames=20,
                             device="cpu")  # fmt: skip


def simulated_bag(folder: Path, name: str, frames_per_packet: int, seed: int = 0) -> Path:
    """A recording of the simulator: a scene drifting sideways, a sensor with 2 % hot pixels."""
    scene = synthetic_image(32, 96, seed=seed)
    shift = (np.arange(FRAMES) * 0.01).astype(int)
    intensity = np.stack([scene[:, s:s + 48] for s in shift]).astype(np.float32)
    spikes = simulate_spikes(intensity, seed=seed, sensor=SensorModel(hot_fraction=0.02), frame_rate_hz=20000.0)
    write_dat(folder / f"{name}.dat", spikes)
    dat_to_bag(folder / f"{name}.dat", folder / name, 32, 48, 20000.0, frames_per_packet=frames_per_packet,
               start_ns=START, frame_id="cam0")
    return folder / name


def bag_content(bag: Path) -> tuple[Any, ...]:
    """Everything in a bag but its own name: the message rows in file order, the topics, the metadata."""
    db = next(bag.glob("*.db3"))
    with closing(sqlite3.connect(db)) as con:
        rows = con.execute("SELECT topic_id, timestamp, data FROM messages ORDER BY id").fetchall()
        topics = con.execute("SELECT * FROM topics ORDER BY id").fetchall()
    return rows, topics, (bag / "metadata.yaml").read_text().replace(bag.name, "BAG")


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> dict[int, tuple[Path, Path]]:
    """Per packet size, a recording and the output of one uninterrupted single-process run."""
    folder = tmp_path_factory.mktemp("shards")
    made = {}
    for fpp in (8, 64):  # packets shorter than the stride (windows span packets) and longer (several per packet)
        bag = simulated_bag(folder, f"rec{fpp}", fpp, seed=fpp)
        result = reconstruct_bag(bag, folder / f"ref{fpp}", OPTIONS)
        assert result.images == (FRAMES - 41) // 20 + 1 and result.problems == []
        made[fpp] = (bag, folder / f"ref{fpp}")
    return made


class StopAfter(LocalRunner):
    """In-process, but the job dies (Ctrl-C) after ``shards`` shards are done: a crash between shards."""

    def __init__(self, shards: int) -> None:
        self.shards, self.ran = shards, 0

    def map(self, fn: Any, items: Any, on_done: Any, *, gpu: bool = False) -> None:
        def count(item: Any, result: Any) -> None:
            on_done(item, result)
            self.ran += fn is run_shard
            if self.ran >= self.shards:
                raise KeyboardInterrupt

        super().map(fn, items, count)


class Counting(LocalRunner):
    """In-process, counting the shards it runs."""

    ran = 0

    def map(self, fn: Any, items: Any, on_done: Any, *, gpu: bool = False) -> None:
        items = list(items)
        self.ran += len(items)
        super().map(fn, items, on_done)


def test_the_plan_carries_state_and_overlap(recordings) -> None:
    bag, _ = recordings[8]
    plan = plan_recording(str(bag), OPTIONS, 10)
    assert plan.windows == 118 and len(plan.spans) == 12 and plan.problems == []
    assert [s.first_window for s in plan.spans] == list(range(0, 118, 10))
    assert [s.windows for s in plan.spans] == [10] * 11 + [None]
    assert plan.spans[0].state == b"" and all(s.state for s in plan.spans[1:])
    # Window 10 covers frames 200-240; it is completed by the packet of frames 240-247 (number 30),
    # where reading starts (the first spike message of its time).
    assert (plan.spans[1].first_stamp, plan.spans[1].first_packet, plan.spans[1].skip_windows) == (START + 240 * 50_000, 0, 0)


@pytest.mark.parametrize(("fpp", "shard_windows"), [(8, 2), (8, 10), (64, 6), (64, 48), (64, 1000)])
def test_any_split_gives_the_bytes_of_one_run(recordings, tmp_path: Path, fpp: int, shard_windows: int) -> None:
    bag, reference = recordings[fpp]
    out = tmp_path / "out"
    summary = run_job([Recording(str(bag), str(out))], OPTIONS, LocalRunner(), shard_windows=shard_windows,
                      progress=False)
    assert summary.failures == {} and summary.images == 118
    assert bag_content(out) == bag_content(reference)
    assert not Path(f"{out}.shards").exists()  # merged and cleared; the manifest says complete
    assert '"complete": true' in Path(f"{out}.manifest.json").read_text()


@pytest.mark.parametrize(("fpp", "shard_windows", "crash_after"), [(8, 10, 3), (64, 6, 1)])
def test_an_interrupted_job_resumes_to_the_same_bytes(recordings, tmp_path: Path, fpp: int, shard_windows: int,
                                                      crash_after: int) -> None:  # fmt: skip
    bag, reference = recordings[fpp]
    out = tmp_path / "out"
    job = [Recording(str(bag), str(out))]
    with pytest.raises(KeyboardInterrupt):
        run_job(job, OPTIONS, StopAfter(crash_after), shard_windows=shard_windows, progress=False)
    assert not out.exists()
    shards = -(-118 // shard_windows)
    # A shard that was being written when the job died: half a bag, not recorded, made again.
    unfinished = Path(shard_path(str(out), crash_after))
    unfinished.mkdir()
    (unfinished / "half.db3").write_bytes(b"SQLite format 3\0 and then the crash")
    notes: list[str] = []
    runner = Counting()
    summary = run_job(job, OPTIONS, runner, shard_windows=shard_windows, progress=False, on_note=notes.append)
    assert summary.failures == {} and summary.images == 118 - crash_after * shard_windows  # made by this run
    assert runner.ran == 1 + shards - crash_after + 1  # the planning pass, only the shards not done, the merge
    assert any(f"resuming, {crash_after} of {shards} shard(s) done earlier" in n for n in notes)
    assert bag_content(out) == bag_content(reference)
    # Complete: a third run skips it.
    again = Counting()
    summary = run_job(job, OPTIONS, again, shard_windows=shard_windows, progress=False, on_note=notes.append)
    assert again.ran == 0 and summary.skipped == [str(bag)] and summary.images == 0


def rewritten(src: Path, dst: Path, lose: tuple[int, ...] = ()) -> Path:
    """``src`` with the driver's camera_info, a new calibration every 40 packets, less the packets in ``lose``.

    The lost packets leave gaps in the stream.
    """
    types = get_typestore().types
    with BagReader(src) as bag, BagWriter(dst) as writer:
        spikes = copy_topics(bag, writer, ["/spikes"])["/spikes"]
        info_conn = writer.add_topic("/spikes/camera_info", CAMERA_INFO, None)
        for n, msg in enumerate(bag.messages(["/spikes"])):
            if n % 40 == 0:
                sec, nsec = divmod(msg.timestamp, 10**9)
                info = types[CAMERA_INFO](
                    header=types["std_msgs/msg/Header"](stamp=types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nsec),
                                                       frame_id="cam0"),
                    height=32, width=48, distortion_model="plumb_bob", d=np.zeros(5), k=np.full(9, float(n)),
                    r=np.eye(3).reshape(-1), p=np.zeros(12), binning_x=0, binning_y=0,
                    roi=types["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0,
                                                                  do_rectify=False))  # fmt: skip
                writer.write(info_conn, msg.timestamp, serialize(info, CAMERA_INFO))
            if n not in lose:
                writer.write(spikes, msg.timestamp, msg.data)
    return dst


def test_shards_start_with_the_camera_info_in_force(recordings, tmp_path: Path) -> None:
    bag = rewritten(recordings[8][0], tmp_path / "with_info")
    reconstruct_bag(bag, tmp_path / "one_run", OPTIONS)
    summary = run_job([Recording(str(bag), str(tmp_path / "out"))], OPTIONS, LocalRunner(), shard_windows=4,
                      progress=False)
    assert summary.failures == {}
    with BagReader(tmp_path / "one_run") as out:
        calibrations = {float(out.deserialize(m).k[0]) for m in out.messages(["/camera_info"])}
    assert len(calibrations) == 8  # 300 packets: the shards cross several calibrations
    assert bag_content(tmp_path / "out") == bag_content(tmp_path / "one_run")


def test_lost_packets_cut_the_windows_of_every_split_alike(recordings, tmp_path: Path) -> None:
    # Packets 100 and 101, and 200, lost: the stream monitor counts gaps, the cutter starts afresh
    # after each, and the events are written into the output bag; shards of 4 windows meet both.
    bag = rewritten(recordings[8][0], tmp_path / "lossy", lose=(100, 101, 200))
    one = reconstruct_bag(bag, tmp_path / "one_run", OPTIONS)
    assert one.stream_events and one.images < 118
    summary = run_job([Recording(str(bag), str(tmp_path / "out"))], OPTIONS, LocalRunner(), shard_windows=4,
                      progress=False)
    assert summary.failures == {} and summary.images == one.images
    assert "stream_events" in (tmp_path / "out" / "metadata.yaml").read_text()
    assert bag_content(tmp_path / "out") == bag_content(tmp_path / "one_run")


def test_a_damaged_recording_is_split_without_seeking_and_gives_the_same_bytes(recordings, tmp_path: Path) -> None:
    bag = tmp_path / "damaged"
    shutil.copytree(recordings[64][0], bag)
    db = next(bag.glob("*.db3"))
    db.write_bytes(db.read_bytes()[: int(db.stat().st_size * 0.9)])  # a cut tail: damaged pages
    one = reconstruct_bag(bag, tmp_path / "one_run", OPTIONS)
    assert one.damage and 0 < one.images < 118
    plan = plan_recording(str(bag), OPTIONS, 10)
    assert plan.problems and all(s.first_stamp is None for s in plan.spans)  # counted from the start
    summary = run_job([Recording(str(bag), str(tmp_path / "out"))], OPTIONS, LocalRunner(), shard_windows=10,
                      progress=False)
    assert summary.images == one.images and "damaged input" in summary.failures[str(bag)]
    assert bag_content(tmp_path / "out") == bag_content(tmp_path / "one_run")


def test_two_ray_workers_give_the_bytes_of_one_run(recordings, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    from stir_ros.bag.ray_runner import RayRunner

    runner = RayRunner(2)
    try:
        assert runner.workers == 2
        job = [Recording(str(bag), str(tmp_path / f"out{fpp}")) for fpp, (bag, _) in recordings.items()]
        summary = run_job(job, OPTIONS, runner, shard_windows=10, progress=False)
    finally:
        runner.close()
    assert summary.failures == {} and summary.images == 2 * 118 and summary.runner == "ray"
    for fpp, (_, reference) in recordings.items():
        assert bag_content(tmp_path / f"out{fpp}") == bag_content(reference)
