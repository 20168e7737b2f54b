# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""``stir-ros bag reconstruct`` of many recordings: inputs, output names, failures, the summary, no Ray."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stir_ros.bag.convert import dat_to_bag
from stir_ros.bag.reader import BagReader
from stir_ros.bag.ray_runner import LocalRunner, make_runner
from stir_ros.cli import main as cli_main
from stir_ros.core.dat import write_dat

START = 1_700_000_000_000_000_000


def small_bag(path: Path, frames: int = 200, seed: int = 0) -> Path:
    """A bag of random spikes (tfp makes (frames - 41) // 20 + 1 images of it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    spikes = (rng.random((frames, 16, 24)) < rng.random((1, 16, 24)) * 0.6).astype(np.uint8)
    write_dat(path.with_suffix(".dat"), spikes)
    dat_to_bag(path.with_suffix(".dat"), path, 16, 24, 20000.0, frames_per_packet=16, start_ns=START)
    return path


def images_in(bag: Path) -> int:
    with BagReader(bag) as reader:
        topic = reader.topics.get("/image")
        return topic.message_count if topic is not None else 0


def test_a_folder_and_a_glob_make_one_output_each_and_a_damaged_input_does_not_stop_the_rest(tmp_path, capsys):
    bags = tmp_path / "bags"
    bags.mkdir()
    small_bag(bags / "morning", 200)
    small_bag(bags / "noon", 260, seed=1)
    broken = bags / "evening"
    broken.mkdir()
    (broken / "metadata.yaml").write_text("rosbag2_bagfile_information: [not, a, bag")
    more = tmp_path / "more"
    more.mkdir()
    small_bag(more / "night", 140, seed=2)
    out = tmp_path / "out"
    status = cli_main(["bag", "reconstruct", str(bags), str(more / "n*"), str(out), "--method", "tfp",
                       "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err
    assert status == 1
    # One output per input, named after it; the broken one is named with its reason, the others written.
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["morning", "night", "noon"]
    assert [images_in(out / n) for n in ("morning", "noon", "night")] == [8, 11, 5]
    assert "24 images from 4 recording(s)" in err and "images/s" in err
    failed = [line for line in err.splitlines() if line.startswith("failed:")]
    assert len(failed) == 1 and str(broken) in failed[0] and "metadata" in failed[0]


def test_one_input_and_one_output_is_the_single_bag_command(tmp_path, capsys):
    bag = small_bag(tmp_path / "in")
    assert cli_main(["bag", "reconstruct", str(bag), str(tmp_path / "out"), "--method", "tfp", "--no-progress"]) == 0
    assert images_in(tmp_path / "out") == 8
    assert not (tmp_path / "out.manifest.json").exists()  # no job, no manifest
    assert "8 images from 200 frames" in capsys.readouterr().err


def test_outputs_that_would_overwrite_an_input_or_each_other_are_refused(tmp_path, capsys):
    a, b = small_bag(tmp_path / "bags" / "a"), small_bag(tmp_path / "bags" / "b")
    # Output folder = the folder of the inputs: bags/a would be written over bags/a.
    assert cli_main(["bag", "reconstruct", str(a), str(b), str(tmp_path / "bags"), "--method", "tfp"]) == 1
    assert "would destroy the input" in capsys.readouterr().err
    assert images_in(a) == 0 and images_in(b) == 0  # the inputs untouched (no image topic)
    other = small_bag(tmp_path / "other" / "a")
    assert cli_main(["bag", "reconstruct", str(a), str(other), str(tmp_path / "out"), "--method", "tfp"]) == 1
    assert "would both be written to" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_workers_without_ray_run_in_process_and_say_so(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("stir_ros.bag.ray_runner.ray_missing", lambda: True)
    notes: list[str] = []
    assert isinstance(make_runner(3, None, notes.append), LocalRunner)
    assert "Ray is not installed" in notes[0] and "pip install" in notes[0]
    bags = [small_bag(tmp_path / f"r{i}", seed=i) for i in range(2)]
    status = cli_main(["bag", "reconstruct", *map(str, bags), str(tmp_path / "out"), "--method", "tfp",
                       "--workers", "2", "--shard-windows", "3", "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err
    assert status == 0 and "Ray is not installed" in err and "(in-process)" in err
    assert images_in(tmp_path / "out" / "r0") == 8 and images_in(tmp_path / "out" / "r1") == 8
    with pytest.raises(Exception, match="--ray-address needs Ray"):
        make_runner(1, "auto", notes.append)


def test_from_dat_of_a_folder_makes_one_bag_per_file_and_goes_on_past_a_bad_one(tmp_path, capsys):
    dats = tmp_path / "dats"
    dats.mkdir()
    for i, frames in enumerate((64, 96)):
        rng = np.random.default_rng(i)
        write_dat(dats / f"cam{i}.dat", (rng.random((frames, 16, 24)) < 0.3).astype(np.uint8))
    (dats / "cut.dat").write_bytes(b"x" * 100)  # not a whole number of 16x24 frames
    (dats / "notes.txt").write_text("not a recording")
    out = tmp_path / "bags"
    status = cli_main(["bag", "from-dat", str(dats), str(out), "--height", "16", "--width", "24",
                       "--frame-rate-hz", "20000", "--frames-per-packet", "16"])  # fmt: skip
    err = capsys.readouterr().err
    assert status == 1
    assert sorted(p.name for p in out.iterdir()) == ["cam0", "cam1"]
    for name, packets in (("cam0", 4), ("cam1", 6)):
        with BagReader(out / name) as bag:
            assert bag.topics["/spikes"].message_count == packets
    assert "2 of 3 file(s) converted" in err
    failed = [line for line in err.splitlines() if line.startswith("failed:")]
    assert len(failed) == 1 and "cut.dat" in failed[0] and "whole number" in failed[0]
