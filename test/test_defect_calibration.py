# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Defect map files (stir_ros.core.defect_file) and ``stir-ros calibrate-defects`` (stir_ros.bag.calibrate)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from stir_ros.bag.calibrate import calibrate_defects
from stir_ros.bag.convert import dat_to_bag
from stir_ros.core.dat import write_dat
from stir_ros.core.defect_file import load_defect_map, save_defect_map
from stir_ros.core.defects import estimate_defects
from stir_ros.core.errors import ConfigError
from stir_ros.core.simulator import simulate_spikes


def _recording(n: int = 600, h: int = 40, w: int = 56, dark: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    ramp = np.add.outer(np.linspace(0.2, 0.6, h), np.linspace(0.0, 0.4, w)).astype(np.float32)  # a smooth scene
    light = np.full((n, h, w), 0.002, np.float32) if dark else np.repeat(ramp[None], n, 0)
    frames = np.asarray(simulate_spikes(light, seed=1), np.uint8)
    u = rng.random((h, w))
    hot, dead = u < 0.01, (u >= 0.01) & (u < 0.03)
    frames[:, hot], frames[:, dead] = 1, 0
    return frames, hot, dead


@pytest.mark.parametrize("kind", ["dat", "bag"])
def test_calibrate_defects_round_trip(tmp_path: Path, kind: str) -> None:
    frames, hot, dead = _recording()
    write_dat(tmp_path / "rec.dat", frames)
    src = tmp_path / "rec.dat"
    if kind == "bag":
        dat_to_bag(src, tmp_path / "bag", 40, 56, 20000.0, frames_per_packet=50)
        src = tmp_path / "bag"
    out = tmp_path / "maps" / "defects.yaml"
    cmd = [sys.executable, "-m", "stir_ros.cli", "calibrate-defects", str(src), "-o", str(out)]
    if kind == "dat":
        cmd += ["--height", "40", "--width", "56"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    m = load_defect_map(f"file://{out}")
    assert np.array_equal(m.hot, hot)
    # a dead pixel with two dead neighbours looks like a dark spot: found >= 90 %, never a good pixel
    assert not (m.dead & ~dead).any() and m.dead_count >= 0.9 * dead.sum()
    assert m.frames == len(frames) and m.dark_rate_hz is None
    assert f"{m.hot_count} hot, {m.dead_count} dead" in run.stderr


def test_dark_recording_stores_each_pixels_dark_rate(tmp_path: Path) -> None:
    frames, _, dead = _recording(n=20000, h=12, w=16, dark=True)
    write_dat(tmp_path / "cap.dat", frames)
    m = calibrate_defects(str(tmp_path / "cap.dat"), str(tmp_path / "d.yaml"), height=12, width=16, dark=True)
    back = load_defect_map(str(tmp_path / "d.yaml"))
    assert back.dark_rate_hz is not None and back.dark_rate_hz.shape == (12, 16)
    good = ~(back.hot | back.dead)
    # 0.002 x alpha 0.6 spikes per frame at 20 kHz: 24 Hz
    assert np.allclose(back.dark_rate_hz[good], 24.0, atol=2.0)
    assert abs(back.dark_estimate_hz - 24.0) < 2.0 and np.array_equal(back.dead, m.dead)


def test_output_inside_the_input_is_refused(tmp_path: Path) -> None:
    frames, _, _ = _recording(n=100)
    write_dat(tmp_path / "rec.dat", frames)
    dat_to_bag(tmp_path / "rec.dat", tmp_path / "bag", 40, 56, 20000.0)
    for out in (tmp_path / "rec.dat", tmp_path / "bag" / "defects.yaml"):
        src = tmp_path / ("rec.dat" if out.name == "rec.dat" else "bag")
        with pytest.raises(ConfigError, match="inside"):
            calibrate_defects(str(src), str(out), height=40, width=56)
    assert (tmp_path / "rec.dat").stat().st_size == 100 * 40 * 56 // 8


@pytest.mark.parametrize("text, match", [
    ("format: other\n", "not a stir_ros defect map"),
    ("format: stir_ros_defect_map\nheight: 0\nwidth: 4\n", "height and width"),
    ("format: stir_ros_defect_map\nheight: 4\nwidth: 4\nhot: [[4, 0]]\n", "outside"),
    ("format: stir_ros_defect_map\nheight: 2\nwidth: 2\ndark_rate_hz: [[1, .nan], [1, 1]]\n", "finite"),
    ("format: [unclosed\n", "not valid YAML"),
    ("format: stir_ros_defect_map\nheight: 4\nwidth: 4\nhot: [[99999999999999999999, 0]]\n", "outside"),
    ("format: stir_ros_defect_map\nheight: 4\nwidth: 4\ndead: [[1.5, 2]]\n", "whole numbers"),
    ("format: stir_ros_defect_map\nversion: 2\nheight: 4\nwidth: 4\n", "version 2"),
    ("format: stir_ros_defect_map\nheight: 4\nwidth: 4\nframe_rate_hz: .nan\n", "frame_rate_hz must be a number"),
    ("format: stir_ros_defect_map\nheight: 4\nwidth: 4\nframe_rate_hz: 0\n", "frame_rate_hz must be a number"),
    ("format: stir_ros_defect_map\nheight: 4\nwidth: 4\nframe_rate_hz: 1e9\n", "frame_rate_hz must be a number"),
    ("format: stir_ros_defect_map\nheight: 4\nwidth: 4\nframe_rate_hz: true\n", "frame_rate_hz must be a number"),
])  # fmt: skip
def test_bad_files_are_refused_with_a_reason(tmp_path: Path, text: str, match: str) -> None:
    (tmp_path / "m.yaml").write_text(text)
    with pytest.raises(ConfigError, match=match) as refused:
        load_defect_map(str(tmp_path / "m.yaml"))
    assert "m.yaml" in str(refused.value)  # which file, when a node reads several
    with pytest.raises(ConfigError, match="cannot read"):
        load_defect_map(f"file://{tmp_path}/missing.yaml")


@pytest.mark.parametrize("special", ["/dev/zero", "fifo", "folder"])
def test_a_defect_map_that_is_no_regular_file_is_refused(tmp_path: Path, special: str) -> None:
    """defect_map_url may be set by anyone on the graph: /dev/zero read the node's memory full, a FIFO blocked it."""
    import os

    path = tmp_path / special
    if special == "fifo":
        os.mkfifo(path)
    elif special == "folder":
        path.mkdir()
    else:
        path = Path(special)
    with pytest.raises(ConfigError, match="not a regular file"):
        load_defect_map(f"file://{path}")


def test_save_load_keeps_the_map() -> None:
    counts = np.random.default_rng(0).integers(0, 50, (7, 9))
    m = estimate_defects(counts, 100, frame_rate_hz=20000.0)
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        save_defect_map(f"{d}/m.yaml", m, 20000.0)
        back = load_defect_map(f"{d}/m.yaml")
    assert np.array_equal(back.hot, m.hot) and np.array_equal(back.dead, m.dead) and back.frames == 100
    assert back.frame_rate_hz == 20000.0  # what its dark rates (per second) were measured at


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    from stir_ros.cli import main

    rc = main(["calibrate-defects", *args])
    return rc, capsys.readouterr().err


def test_the_hot_rate_flag_has_the_node_parameter_s_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--defect-hot-rate``, as bag reconstruct's flag and the node's defect_hot_rate (``--hot-rate`` still works)."""
    frames, hot, _ = _recording(n=600)
    write_dat(tmp_path / "rec.dat", frames)
    args = [str(tmp_path / "rec.dat"), "--height", "40", "--width", "56", "-o", str(tmp_path / "d.yaml")]
    for flag in ("--defect-hot-rate", "--hot-rate"):
        assert _cli(capsys, *args, flag, "0.95")[0] == 0
        rc, err = _cli(capsys, *args, flag, "0")  # reaches the estimate: refused by the node's bound
        assert rc == 1 and "defect_hot_rate must be in" in err, err


@pytest.mark.parametrize("case", ["output_is_a_folder", "output_under_a_file", "too_short", "lens_cap_without_spikes",
                                  "hot_rate_zero", "frame_rate_nan", "dark_flag_on_a_lit_scene"])  # fmt: skip
def test_refusals_are_one_line_and_write_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 case: str) -> None:
    frames, _, _ = _recording(n=600)
    if case == "too_short":  # 20 frames: no neighbour fires the 10 times that tell a dead pixel
        frames = frames[:20]
    if case == "lens_cap_without_spikes":  # a good sensor's cap on for 0.1 s: nothing to count
        frames = np.zeros((2000, 40, 56), np.uint8)
    write_dat(tmp_path / "rec.dat", frames)
    out = tmp_path / "defects.yaml"
    if case == "output_is_a_folder":
        out.mkdir()
    if case == "output_under_a_file":
        (tmp_path / "afile").write_text("x")
        out = tmp_path / "afile" / "defects.yaml"
    extra = {"hot_rate_zero": ["--hot-rate", "0"], "frame_rate_nan": ["--frame-rate-hz", "nan"],
             "lens_cap_without_spikes": ["--dark"], "dark_flag_on_a_lit_scene": ["--dark"]}.get(case, [])  # fmt: skip
    rc, err = _cli(capsys, str(tmp_path / "rec.dat"), "--height", "40", "--width", "56", "-o", str(out), *extra)
    assert rc == 1 and err.startswith("stir-ros calibrate-defects: error: ") and err.count("\n") == 1, err
    assert not out.is_file() and sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["rec.dat", *(["defects.yaml"] if case == "output_is_a_folder" else []),
         *(["afile"] if case == "output_under_a_file" else [])])  # fmt: skip
    if case in ("too_short", "lens_cap_without_spikes"):  # says what the recording lacks and what to do
        assert "dead pixels" in err and "record" in err, err
    if case == "dark_flag_on_a_lit_scene":  # the lens was not covered: light would be stored as dark current
        assert "light" in err and "cover the lens" in err and "--dark" in err, err


def test_a_failed_write_keeps_the_old_map(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """A disk that fills while the map is written: the previous map stays whole, no part file is left."""
    import yaml

    frames, _, _ = _recording(n=600)
    write_dat(tmp_path / "rec.dat", frames)
    out = tmp_path / "defects.yaml"
    assert _cli(capsys, str(tmp_path / "rec.dat"), "--height", "40", "--width", "56", "-o", str(out))[0] == 0
    before = out.read_bytes()

    def full_disk(doc: object, stream: Any, **kwargs: Any) -> None:
        stream.write("format: stir_ros_defect_map\nheight: 40\n")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(yaml, "dump", full_disk)
    rc, err = _cli(capsys, str(tmp_path / "rec.dat"), "--height", "40", "--width", "56", "-o", str(out))
    assert rc == 1 and "No space left on device" in err and err.count("\n") == 1, err
    assert out.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["defects.yaml", "rec.dat"]


def test_bag_reconstruct_names_a_defect_map_of_another_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The node's /diagnostics say it (test_ros_defects.py); offline the run says it too, once."""
    from stir_ros.cli import main

    frames, hot, dead = _recording(n=300)
    write_dat(tmp_path / "rec.dat", frames)
    dat_to_bag(tmp_path / "rec.dat", tmp_path / "bag", 40, 56, 20000.0, frames_per_packet=50)
    save_defect_map(tmp_path / "swapped.yaml", estimate_defects(np.zeros((56, 40)) + 5, 100), 20000.0)
    rc = main(["bag", "reconstruct", str(tmp_path / "bag"), str(tmp_path / "out"), "--method", "tfp", "--no-progress",
               "--defect-correction", "file", "--defect-map-url", str(tmp_path / "swapped.yaml")])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 0 and err.count("defect map file is 56x40, the stream 40x56: not used") == 1, err


def test_bag_reconstruct_names_a_defect_map_of_another_frame_rate(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    """A map calibrated at 40 kHz on a 20 kHz stream: its pixels repair, and the run says the rates differ, once."""
    from stir_ros.cli import main

    frames, hot, dead = _recording(n=300)
    write_dat(tmp_path / "rec.dat", frames)
    dat_to_bag(tmp_path / "rec.dat", tmp_path / "bag", 40, 56, 20000.0, frames_per_packet=50)
    save_defect_map(tmp_path / "fast.yaml", estimate_defects(frames.sum(0), len(frames)), 40000.0)
    rc = main(["bag", "reconstruct", str(tmp_path / "bag"), str(tmp_path / "out"), "--method", "tfp", "--no-progress",
               "--defect-correction", "file", "--defect-map-url", str(tmp_path / "fast.yaml")])  # fmt: skip
    err = capsys.readouterr().err
    said = "defect map file was calibrated at 40000 Hz, the stream runs at 20000 Hz: its hot and dead pixels are used"
    assert rc == 0 and err.count(said) == 1, err
    assert "a .dat needs --frame-rate-hz 20000" in err


def test_bad_packets_of_a_bag_are_named_and_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One bad message in a long recording cost the whole calibration, without saying where.

    As ``bag reconstruct`` does: the map is made from the intact packets, each skipped one is named
    and the exit status is 1.
    """
    from stir_ros.bag.reader import BagReader
    from stir_ros.bag.types import SPIKE_PACKET
    from stir_ros.bag.writer import BagWriter

    frames, hot, _ = _recording(n=600)
    write_dat(tmp_path / "rec.dat", frames)
    dat_to_bag(tmp_path / "rec.dat", tmp_path / "good", 40, 56, 20000.0, frames_per_packet=100)
    with BagReader(tmp_path / "good") as bag, BagWriter(tmp_path / "bad") as w:
        conn = w.add_topic("/spikes", SPIKE_PACKET)
        for m in bag.messages():
            p = bag.deserialize(m)
            if int(p.seq) == 2:
                p.num_frames = 21  # the header disagrees with the payload
            if int(p.seq) == 3:
                w.write(conn, m.timestamp, bytes(m.data)[:40])  # cut short: not a valid CDR message
                continue
            w.write_message(conn, m.timestamp, p)
    out = tmp_path / "defects.yaml"
    rc, err = _cli(capsys, str(tmp_path / "bad"), "-o", str(out))
    assert rc == 1, err
    skipped = [line for line in err.splitlines() if "skipped" in line]
    assert len(skipped) == 2 and "/spikes t=" in skipped[0] and "payload" in skipped[0], err
    m = load_defect_map(str(out))
    assert m.frames == 400 and np.array_equal(m.hot, hot) and "from 400 frames" in err


def test_a_bag_without_spikes_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A bag of images (e.g. bag reconstruct's output) given by mistake: not 'choose one of 0 topics'."""
    frames, _, _ = _recording(n=100)
    write_dat(tmp_path / "rec.dat", frames)
    dat_to_bag(tmp_path / "rec.dat", tmp_path / "spikes", 40, 56, 20000.0)
    from stir_ros.cli import main

    assert main(["bag", "reconstruct", str(tmp_path / "spikes"), str(tmp_path / "images"), "--method", "tfp",
                 "--no-progress"]) == 0  # fmt: skip
    capsys.readouterr()
    rc, err = _cli(capsys, str(tmp_path / "images"), "-o", str(tmp_path / "d.yaml"))
    assert rc == 1 and err.count("\n") == 1 and "no stir_ros/msg/SpikePacket topic" in err, err
    assert "/image (sensor_msgs/msg/Image)" in err and "choose one" not in err, err


@pytest.mark.parametrize("name", ["REC.DAT", "rec.raw"])
def test_a_spike_file_of_another_suffix_is_read_as_dat_when_its_size_is_given(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    """Capture software names files its own way; --height and --width say it is a raw .dat stream, not a bag."""
    frames, hot, _ = _recording(n=600)
    write_dat(tmp_path / name, frames)
    rc, err = _cli(capsys, str(tmp_path / name), "--height", "40", "--width", "56", "-o", str(tmp_path / "d.yaml"))
    assert rc == 0, err
    assert np.array_equal(load_defect_map(str(tmp_path / "d.yaml")).hot, hot)


def test_bag_reconstruct_with_an_unreadable_defect_map_writes_no_output(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """A typo in --defect-map-url left an empty output bag, and the corrected command then met 'exists already'."""
    from stir_ros.cli import main

    frames, _, _ = _recording(n=100)
    write_dat(tmp_path / "rec.dat", frames)
    dat_to_bag(tmp_path / "rec.dat", tmp_path / "bag", 40, 56, 20000.0)
    argv = ["bag", "reconstruct", str(tmp_path / "bag"), str(tmp_path / "out"), "--method", "tfp", "--no-progress"]
    assert main([*argv, "--defect-map-url", str(tmp_path / "typo.yaml")]) == 1
    assert "cannot read defect map" in capsys.readouterr().err and not (tmp_path / "out").exists()
    assert main(argv) == 0
