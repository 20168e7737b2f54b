# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Offline reconstruction of bags: windows, stamps, outputs, and damaged input."""

from __future__ import annotations

import subprocess
import sys

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml

from stir_ros.bag.convert import dat_to_bag
from stir_ros.bag.model import make_qos
from stir_ros.bag.reader import BagReader
from stir_ros.bag.writer import BagWriter
from stir_ros.bag.reconstruct import ReconstructOptions, reconstruct_bag
from stir_ros.bag.types import CAMERA_INFO, IMAGE, SPIKE_PACKET, get_typestore
from stir_ros.cli import main as cli_main
from stir_ros.core.dat import write_dat
from stir_ros.engine import EngineConfig, ReconstructionEngine
from stir_ros.core.errors import BagError
from stir_ros.core.imaging import to_image_array

START = 1_700_000_000_000_000_000
RATE = 20000.0  # 50 us per frame: stamps are exact
NS_PER_FRAME = 50_000
T = 41  # tfp/tfi default window


def _make_bag(tmp: Path, name: str, frames: np.ndarray, fpp: int, storage: str, rate: float = RATE) -> Path:
    dat = tmp / f"{name}.dat"
    write_dat(dat, frames)
    dat_to_bag(dat, tmp / name, frames.shape[1], frames.shape[2], rate, frames_per_packet=fpp, storage=storage,
               start_ns=START, frame_id="cam0")
    return tmp / name


def _frames(n: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scene = rng.random((1, h, w)) * 0.6
    return (rng.random((n, h, w)) < scene).astype(np.uint8)


def _expected(frames: np.ndarray, stride: int, method: str = "tfp", first: int = 0) -> dict[int, np.ndarray]:
    """Images every window on the grid should give, by centre stamp (same engine, no bag)."""
    engine = ReconstructionEngine(EngineConfig(method=method, device="cpu"))
    starts = list(range(-(-first // stride) * stride, len(frames) - T + 1, stride))
    images = engine.reconstruct(np.stack([frames[s:s + T] for s in starts]))
    return {START + (s + T // 2) * NS_PER_FRAME: to_image_array(img, "mono8") for s, img in zip(starts, images)}


def _images(bag_path: Path, topic: str = "/image") -> dict[int, np.ndarray]:
    out = {}
    with BagReader(bag_path) as bag:
        for m in bag.messages([topic]):
            msg = bag.deserialize(m)
            stamp = int(msg.header.stamp.sec) * 10**9 + int(msg.header.stamp.nanosec)
            assert stamp == m.timestamp, "header stamp and bag time must agree"
            assert msg.header.frame_id == "cam0" and msg.encoding == "mono8"
            assert stamp not in out
            out[stamp] = np.asarray(msg.data).reshape(msg.height, msg.width)
    return out


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_one_image_per_window_with_centre_stamps(tmp_path: Path, storage: str) -> None:
    frames = _frames(300, 64, 96)
    bag = _make_bag(tmp_path, "in", frames, 32, storage)
    result = reconstruct_bag(bag, tmp_path / "out", ReconstructOptions(method="tfp", stride_frames=20, max_batch=3))
    expected = _expected(frames, 20)
    assert len(expected) == 13 and result.images == 13 and result.frames == 300 and result.problems == []
    assert result.stamps_ns == sorted(expected)
    got = _images(tmp_path / "out")
    assert sorted(got) == sorted(expected)
    for stamp, img in expected.items():
        np.testing.assert_array_equal(got[stamp], img)
    with BagReader(tmp_path / "out") as out:
        assert out.storage_id == storage
        assert {n: (t.msgtype, t.message_count) for n, t in out.topics.items()} == {
            "/image": (IMAGE, 13), "/camera_info": (CAMERA_INFO, 13)}
        infos = [(m.timestamp, out.deserialize(m)) for m in out.messages(["/camera_info"])]
    assert [t for t, _ in infos] == sorted(expected)
    assert all((i.height, i.width, i.header.frame_id) == (64, 96, "cam0") for _, i in infos)


@pytest.mark.parametrize(("rate", "fpp"), [(30000.0, 30), (24000.0, 24)])
def test_image_stamps_are_the_rounded_centre_frame_times(tmp_path: Path, rate: float, fpp: int) -> None:
    """At 30 kHz a frame is 33 333.3 ns: stamps must be rounded, not truncated (packets hold whole ns)."""
    frames = _frames(200, 8, 8)
    result = reconstruct_bag(_make_bag(tmp_path, "in", frames, fpp, "mcap", rate=rate), tmp_path / "out",
                             ReconstructOptions(method="tfp", stride_frames=19))
    centre_ns = [(s + T // 2) * 1e9 / rate for s in range(0, 200 - T + 1, 19)]
    expected = [START + round(t) for t in centre_ns]
    assert any(round(t) != int(t) for t in centre_ns)  # truncation would show
    assert result.stamps_ns == expected and sorted(_images(tmp_path / "out")) == expected


def test_tfi_and_stride_one(tmp_path: Path) -> None:
    frames = _frames(60, 16, 24, seed=3)
    bag = _make_bag(tmp_path, "in", frames, 7, "sqlite3")
    result = reconstruct_bag(bag, tmp_path / "out", ReconstructOptions(method="tfi", stride_frames=1, max_batch=5))
    expected = _expected(frames, 1, method="tfi")
    assert result.images == 20 == len(expected)
    got = _images(tmp_path / "out")
    assert all(np.array_equal(got[s], img) for s, img in expected.items())


def test_folder_mode_writes_stamped_pngs_and_a_gif(tmp_path: Path) -> None:
    from PIL import Image

    frames = _frames(150, 32, 48)
    bag = _make_bag(tmp_path, "in", frames, 50, "mcap")
    assert cli_main(["bag", "reconstruct", str(bag), str(tmp_path / "pngs"), "--method", "tfp", "--to-folder",
                     "--video", str(tmp_path / "v.gif"), "--no-progress"]) == 0
    expected = _expected(frames, 20)
    names = sorted(p.name for p in (tmp_path / "pngs").iterdir())
    assert names == [f"{i:06d}_{s}.png" for i, s in enumerate(sorted(expected))]
    for name in names:
        stamp = int(name[7:-4])
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "pngs" / name)), expected[stamp])
    with Image.open(tmp_path / "v.gif") as gif:
        assert gif.n_frames == len(expected) and gif.size == (48, 32)


def test_mp4_video_is_written_and_the_summary_and_progress_are_in_images(tmp_path: Path, capsys) -> None:
    """The set-up installs imageio-ffmpeg: --video x.mp4 works.

    The progress bar ends at 100 % and the summary reports images per second.
    """
    import imageio.v2 as imageio

    frames = _frames(150, 32, 48)
    bag = _make_bag(tmp_path, "in", frames, 100, "sqlite3")  # packets of 100 and 50 frames
    assert cli_main(["bag", "reconstruct", str(bag), str(tmp_path / "out"), "--method", "tfp",
                     "--video", str(tmp_path / "v.mp4")]) == 0
    err = capsys.readouterr().err
    bar = [line for line in err.replace("\r", "\n").splitlines() if "%|" in line]
    # (2 packets x the first packet's 100 frames made it stop at 150/200 = 75 %.)
    assert bar and "100%|" in bar[-1] and "150/150" in bar[-1], err
    n = len(_expected(frames, 20))
    assert f"{n} images from 150 frames" in err and "images/s" in err
    with imageio.get_reader(str(tmp_path / "v.mp4")) as video:
        count = sum(1 for _ in video)
        assert video.get_meta_data()["size"] == (48, 32)
    assert count == n


def test_video_formats_without_ffmpeg_are_refused_clearly(tmp_path: Path) -> None:
    try:
        import imageio_ffmpeg  # noqa: F401

        pytest.skip("imageio-ffmpeg is installed here")
    except ImportError:
        pass
    bag = _make_bag(tmp_path, "in", _frames(60, 8, 8), 30, "sqlite3")
    from stir_ros.core.errors import ConfigError

    with pytest.raises(ConfigError, match="imageio-ffmpeg.*gif"):
        reconstruct_bag(bag, None, ReconstructOptions(method="tfp"), video=tmp_path / "v.mp4")


def test_keep_topics_copies_other_topics_unchanged(tmp_path: Path) -> None:
    frames = _frames(100, 16, 16)
    src = _make_bag(tmp_path, "spikes", frames, 25, "sqlite3")
    store = get_typestore()
    string = store.types["std_msgs/msg/String"]
    with BagReader(src) as bag, BagWriter(tmp_path / "in", "mcap") as out:
        spikes = out.add_topic("/spikes", SPIKE_PACKET, [make_qos()])
        note = out.add_topic("/note", "std_msgs/msg/String", [make_qos(depth=1, transient_local=True)])
        for m in bag.messages():
            out.write(spikes, m.timestamp, m.data)
        for k in range(5):
            out.write_message(note, START + k * 1_000_000, string(data=f"note {k}"))
    reconstruct_bag(tmp_path / "in", tmp_path / "kept", ReconstructOptions(method="tfp", keep_topics=()))
    reconstruct_bag(tmp_path / "in", tmp_path / "plain", ReconstructOptions(method="tfp"))
    with BagReader(tmp_path / "in") as a, BagReader(tmp_path / "kept") as b, BagReader(tmp_path / "plain") as c:
        assert [(m.timestamp, bytes(m.data)) for m in a.messages(["/note"])] == [
            (m.timestamp, bytes(m.data)) for m in b.messages(["/note"])]
        assert b.topics["/note"].offered_qos_profiles == a.topics["/note"].offered_qos_profiles
        assert b.topics["/note"].type_hash == a.topics["/note"].type_hash
        assert "/note" not in c.topics and "/spikes" not in b.topics
    with pytest.raises(BagError, match="does not have: /nope"):
        reconstruct_bag(tmp_path / "in", tmp_path / "x", ReconstructOptions(method="tfp", keep_topics=["/nope"]))


# ---------------------------------------------------------------------------- damaged input


def _lost_frames(bag_path: Path, n: int) -> np.ndarray:
    """Mask of the frames whose packets can still be read from a (damaged) bag."""
    have = np.zeros(n, bool)
    with BagReader(bag_path) as bag:
        for m in bag.messages(["/spikes"]):
            p = bag.deserialize(m)
            have[int(p.first_frame_index):int(p.first_frame_index) + int(p.num_frames)] = True
    return ~have


def _good_windows(expected: dict[int, np.ndarray], lost: np.ndarray) -> dict[int, np.ndarray]:
    """The windows that do not touch a lost frame and that follow the grid after each gap."""
    out = {}
    for stamp, img in expected.items():
        centre = (stamp - START) // NS_PER_FRAME
        start = centre - T // 2
        if not lost[start:start + T].any():
            out[stamp] = img
    return out


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """1200 frames of 128x256 in packets of 50: four ~1.2 MB mcap chunks."""
    tmp = tmp_path_factory.mktemp("big")
    frames = _frames(1200, 128, 256, seed=7)
    return {"frames": frames, "expected": _expected(frames, 20), "tmp": tmp,
            "mcap": _make_bag(tmp, "mcap", frames, 50, "mcap"), "sqlite3": _make_bag(tmp, "sqlite3", frames, 50, "sqlite3")}


def _check_damaged_run(tmp: Path, bag: Path, big: dict[str, object], says: str,
                       capsys: pytest.CaptureFixture[str]) -> dict[int, np.ndarray]:
    expected: dict[int, np.ndarray] = big["expected"]  # type: ignore[assignment]
    lost = _lost_frames(bag, 1200)
    assert 0 < lost.sum() < 1200
    status = cli_main(["bag", "reconstruct", str(bag), str(tmp / "out"), "--method", "tfp", "--no-progress"])
    err = capsys.readouterr().err
    assert status == 1 and "the input is damaged" in err
    got = _images(tmp / "out")
    good = _good_windows(expected, lost)
    assert sorted(got) == sorted(good), "exactly the windows with intact frames"
    for stamp, img in good.items():
        np.testing.assert_array_equal(got[stamp], img)
    assert says in err, err
    return got


def test_corrupt_mcap_chunk_is_skipped_and_the_rest_kept(tmp_path: Path, big: dict[str, object],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from rosbags.rosbag2.storage_mcap import McapReader

    bag = tmp_path / "bag"
    shutil.copytree(big["mcap"], bag)  # type: ignore[arg-type]
    mcap = bag / "mcap.mcap"
    reader = McapReader(mcap)
    reader.open()
    second = sorted(reader.chunks, key=lambda c: c.chunk_start_offset)[1]
    reader.close()
    data = bytearray(mcap.read_bytes())
    data[second.chunk_start_offset + 5000:second.chunk_start_offset + 5016] = b"\xa5" * 16
    mcap.write_bytes(bytes(data))
    got = _check_damaged_run(tmp_path, bag, big, "Chunk checksum mismatch", capsys)
    assert len(got) > 30
    result = reconstruct_bag(bag, None, ReconstructOptions(method="tfp"), to_folder=tmp_path / "f")
    assert [p.kind for p in result.damage] == ["bad_chunk"] and "checksum" in str(result.damage[0])
    assert result.stream_events == {"gap": 1}


def test_truncated_mcap_is_recovered_up_to_the_cut(tmp_path: Path, big: dict[str, object],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    bag = tmp_path / "bag"
    shutil.copytree(big["mcap"], bag)  # type: ignore[arg-type]
    mcap = bag / "mcap.mcap"
    data = mcap.read_bytes()
    mcap.write_bytes(data[: int(len(data) * 0.6)])
    got = _check_damaged_run(tmp_path, bag, big, "no valid index", capsys)
    assert min(got) == min(big["expected"])  # type: ignore[arg-type]


def test_missing_file_of_a_split_bag(tmp_path: Path, big: dict[str, object],
                                     capsys: pytest.CaptureFixture[str]) -> None:
    # Split the sqlite3 bag into two files, as rosbag2 does with --max-bag-size.
    with BagReader(big["sqlite3"]) as src:  # type: ignore[arg-type]
        msgs = list(src.messages())
    for part, chunk in (("p0", msgs[:12]), ("p1", msgs[12:])):
        with BagWriter(tmp_path / part) as w:
            conn = w.add_topic("/spikes", SPIKE_PACKET, [make_qos()])
            for m in chunk:
                w.write(conn, m.timestamp, m.data)
    bag = tmp_path / "split"
    bag.mkdir()
    meta = yaml.safe_load((tmp_path / "p0" / "metadata.yaml").read_text())
    info = meta["rosbag2_bagfile_information"]
    info["relative_file_paths"] = ["split_0.db3", "split_1.db3"]
    info["message_count"] = info["topics_with_message_count"][0]["message_count"] = 24
    (bag / "metadata.yaml").write_text(yaml.safe_dump(meta))
    shutil.copy(tmp_path / "p0" / "p0.db3", bag / "split_0.db3")
    shutil.copy(tmp_path / "p1" / "p1.db3", bag / "split_1.db3")
    whole = reconstruct_bag(bag, tmp_path / "whole", ReconstructOptions(method="tfp"))
    assert whole.problems == [] and whole.images == len(big["expected"])  # type: ignore[arg-type]
    (bag / "split_0.db3").unlink()
    got = _check_damaged_run(tmp_path, bag, big, "listed in metadata.yaml but missing", capsys)
    assert min(got) == START + (600 + T // 2) * NS_PER_FRAME  # the grid resumes at frame 600


def test_damaged_sqlite_pages_cost_only_their_rows(tmp_path: Path, big: dict[str, object],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    bag = tmp_path / "bag"
    shutil.copytree(big["sqlite3"], bag)  # type: ignore[arg-type]
    db = bag / "sqlite3.db3"
    data = bytearray(db.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    middle = len(data) // page // 2
    for p in range(middle, middle + 3):  # garbage b-tree page headers
        data[p * page:p * page + 8] = b"\x0d\xff\xff\xff\xff\xff\xff\xff"
    db.write_bytes(bytes(data))
    got = _check_damaged_run(tmp_path, bag, big, "unreadable (damaged database pages)", capsys)
    assert len(got) > 40


def test_wrong_type_on_the_spike_topic_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = get_typestore()
    t = store.types
    with BagWriter(tmp_path / "bag") as w:
        conn = w.add_topic("/spikes", IMAGE)
        img = t[IMAGE](header=t["std_msgs/msg/Header"](stamp=t["builtin_interfaces/msg/Time"](sec=1, nanosec=0),
                                                        frame_id=""),
                       height=1, width=1, encoding="mono8", is_bigendian=0, step=1, data=np.zeros(1, np.uint8))
        w.write_message(conn, START, img)
    assert cli_main(["bag", "reconstruct", str(tmp_path / "bag"), str(tmp_path / "out"), "--method", "tfp"]) == 1
    err = capsys.readouterr().err
    assert "topic /spikes" in err and "carries sensor_msgs/msg/Image, expected stir_ros/msg/SpikePacket" in err
    assert not (tmp_path / "out").exists()


def test_spike_packet_of_another_definition_is_refused(tmp_path: Path) -> None:
    frames = _frames(50, 8, 8)
    src = _make_bag(tmp_path, "src", frames, 25, "sqlite3")
    with BagReader(src) as bag, BagWriter(tmp_path / "old") as w:
        conn = w.add_topic("/spikes", SPIKE_PACKET, type_hash_="RIHS01_" + "0" * 64)
        for m in bag.messages():
            w.write(conn, m.timestamp, m.data)
    with pytest.raises(BagError, match="another definition of stir_ros/msg/SpikePacket"):
        reconstruct_bag(tmp_path / "old", tmp_path / "out", ReconstructOptions(method="tfp"))


def test_bad_packets_are_reported_and_skipped(tmp_path: Path) -> None:
    frames = _frames(200, 16, 16)
    src = _make_bag(tmp_path, "src", frames, 20, "sqlite3")
    with BagReader(src) as bag, BagWriter(tmp_path / "bad") as w:
        conn = w.add_topic("/spikes", SPIKE_PACKET)
        for m in bag.messages():
            p = bag.deserialize(m)
            if int(p.seq) == 4:
                p.num_frames = 21  # header disagrees with the payload
            if int(p.seq) == 6:
                w.write(conn, m.timestamp, bytes(m.data)[:40])  # cut short: not a valid CDR message
                continue
            w.write_message(conn, m.timestamp, p)
    result = reconstruct_bag(tmp_path / "bad", tmp_path / "out", ReconstructOptions(method="tfp"))
    bad = [p for p in result.problems if p.kind == "bad_message"]
    assert len(bad) == 2 and "payload" in str(bad[0])
    lost = np.zeros(200, bool)
    lost[80:100] = lost[120:140] = True
    good = _good_windows(_expected(frames, 20), lost)
    got = _images(tmp_path / "out")
    assert sorted(got) == sorted(good) and all(np.array_equal(got[s], good[s]) for s in good)


def test_stir_without_openvino_falls_back_to_torch_as_the_node_does(tmp_path: Path, random_stir41_weights: Path,
                                                                    monkeypatch) -> None:
    import stir_ros.models.runtime as runtime
    from stir_ros.core.errors import BackendUnavailableError

    def not_installed(*args, **kwargs):
        raise BackendUnavailableError("OpenVINO is not installed (injected)")

    monkeypatch.setattr(runtime, "OpenVinoSTIR", not_installed)
    bag = _make_bag(tmp_path, "in", _frames(140, 16, 16), 20, "sqlite3")
    opts = ReconstructOptions(method="stir", weights=str(random_stir41_weights), device="cpu", stride_frames=40)
    problems: list = []
    result = reconstruct_bag(bag, tmp_path / "fallback", replace(opts, backend="openvino"), on_problem=problems.append)
    assert result.images == 3
    assert [(p.kind, p.detail) for p in problems] == [
        ("engine", "OpenVINO is not installed (injected); falling back to backend torch")]
    reconstruct_bag(bag, tmp_path / "torch", replace(opts, backend="torch"))
    fallback, torch_run = _images(tmp_path / "fallback"), _images(tmp_path / "torch")
    assert sorted(fallback) == sorted(torch_run) and all(np.array_equal(fallback[s], torch_run[s]) for s in fallback)


def test_the_summary_names_the_inference_path_auto_chose(tmp_path: Path, capsys, random_stir41_weights) -> None:
    """Issue 29: ``auto`` is the default of ``bag reconstruct`` too, so its summary says what it chose and why."""
    from stir_ros.engine import ReconstructionEngine as Engine

    config = EngineConfig(method="stir", weights=str(random_stir41_weights), device="cpu", precision="auto", backend="auto")
    chosen = Engine(config).inference_path
    assert chosen is not None
    bag = _make_bag(tmp_path, "in", _frames(100, 16, 16), 20, "sqlite3")
    for method, args in (("stir", ["--weights", str(random_stir41_weights), "--device", "cpu"]), ("tfp", [])):
        assert cli_main(["bag", "reconstruct", str(bag), str(tmp_path / method), "--method", method, "--stride-frames",
                         "40", "--no-progress", *args]) == 0  # fmt: skip
        summary = capsys.readouterr().err.strip().splitlines()[-1]
        if method == "stir":
            assert f"stir on cpu ({chosen.backend} {chosen.precision}: {chosen.reason})," in summary, summary
        else:
            assert "tfp on cpu, window" in summary, summary


def test_tfp_counts_the_packed_bits_offline_as_live(tmp_path: Path) -> None:
    """No window is unpacked for tfp on the CPU (core.batch_runner), offline as live; the images are the same."""
    from stir_ros.core.classical import PackedWindows

    engine = ReconstructionEngine(EngineConfig(method="tfp", device="cpu"))
    inputs: list[type] = []
    real = engine.reconstruct

    def recording(windows, starts=None):
        inputs.append(type(windows))
        return real(windows, starts)

    engine.reconstruct = recording  # type: ignore[method-assign]
    frames = _frames(200, 16, 16)
    bag = _make_bag(tmp_path, "in", frames, 20, "sqlite3")
    result = reconstruct_bag(bag, tmp_path / "out", ReconstructOptions(method="tfp", stride_frames=20), engine=engine)
    assert result.images == 8 and inputs and all(t is PackedWindows for t in inputs)
    expected, got = _expected(frames, 20), _images(tmp_path / "out")
    assert sorted(got) == sorted(expected) and all(np.array_equal(got[s], expected[s]) for s in got)


class _InterruptingEngine:
    """A tfp engine that is interrupted (Ctrl-C) during its third batch."""

    def __init__(self) -> None:
        self.inner = ReconstructionEngine(EngineConfig(method="tfp", device="cpu"))
        self.method, self.device, self.window_length = "tfp", self.inner.device, self.inner.window_length
        self.device_name = "cpu"
        self.calls = 0

    def pop_warnings(self) -> list[str]:
        return []

    def reconstruct(self, windows: np.ndarray, starts: list[int] | None = None) -> np.ndarray:
        self.calls += 1
        if self.calls == 3:
            raise KeyboardInterrupt
        return self.inner.reconstruct(windows)


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_interrupted_run_leaves_a_readable_bag(tmp_path: Path, storage: str) -> None:
    frames = _frames(400, 16, 16)
    bag = _make_bag(tmp_path, "in", frames, 20, storage)
    with pytest.raises(KeyboardInterrupt):
        reconstruct_bag(bag, tmp_path / "out", ReconstructOptions(method="tfp", max_batch=2),
                        engine=_InterruptingEngine())
    expected = _expected(frames, 20)
    got = _images(tmp_path / "out")
    assert len(got) == 4  # two full batches written before the interrupt
    assert all(np.array_equal(got[s], expected[s]) for s in got)
    assert (tmp_path / "out" / "metadata.yaml").exists()


@pytest.mark.parametrize(("flag", "value", "expected"), [
    ("--output-rate-hz", "inf", "output_rate_hz must be a finite number"),
    ("--output-rate-hz", "nan", "output_rate_hz must be >= 0"),
    ("--max-batch", "1000000000", "max_batch must be in 1..64"),
    ("--window-length", "1000000", "window_length must be in 0..1024"),
    ("--alpha", "1e308", "alpha must be in"),
])  # fmt: skip
def test_numeric_flags_have_the_node_parameters_bounds(tmp_path: Path, flag: str, value: str, expected: str) -> None:
    """Offline flags are bounded like the node's parameters: refused in one line, before any work."""
    out = subprocess.run(
        [sys.executable, "-m", "stir_ros.cli", "bag", "reconstruct", str(tmp_path / "missing_in"),
         str(tmp_path / "out"), "--method", "tfp", flag, value],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 1, out.stderr
    assert expected in out.stderr and "Traceback" not in out.stderr, out.stderr
    assert not (tmp_path / "out").exists()
