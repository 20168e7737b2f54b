# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The live node and the offline bag reconstruction give the same images for the same input.

A tiny bag is played (``stir-ros bag play``) into a real ``spike_reconstructor`` process, its
images are recorded (``stir-ros bag record``), and the recording is compared with ``stir-ros bag
reconstruct`` of the same bag: same stamps, and the same serialized messages byte for byte.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rclpy")
pytest.importorskip("stir_ros.ros.reconstructor_node")

from ros_support import OutputProcess  # noqa: E402
from stir_ros.bag.convert import dat_to_bag  # noqa: E402
from stir_ros.bag.reader import BagReader  # noqa: E402
from stir_ros.bag.reconstruct import ReconstructOptions, reconstruct_bag  # noqa: E402
from stir_ros.core.dat import write_dat  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow]

START = 1_700_000_000_000_000_000


def _messages(bag_path: Path, topic: str) -> dict[int, bytes]:
    with BagReader(bag_path) as bag:
        out = {}
        for m in bag.messages([topic]):
            msg = bag.deserialize(m)
            out[int(msg.header.stamp.sec) * 10**9 + int(msg.header.stamp.nanosec)] = bytes(m.data)
        return out


def _live_vs_offline(tmp_path: Path, env: dict[str, str], params: list[str], options: ReconstructOptions,
                     n_frames: int, h: int, w: int, expected_images: int, defects: bool = False,
                     frames: np.ndarray | None = None) -> None:
    ns = f"lvo_{uuid.uuid4().hex[:8]}"
    if frames is None:
        frames = (np.random.default_rng(11).random((n_frames, h, w)) < np.random.default_rng(12).random((h, w)) * 0.7)
    if defects:  # 1 % hot, 2 % dead pixels: the repair is in force after the first 1000 frames
        u = np.random.default_rng(13).random((h, w))
        frames[:, u < 0.01], frames[:, (u >= 0.01) & (u < 0.03)] = 1, 0
    write_dat(tmp_path / "a.dat", frames.astype(np.uint8))
    dat_to_bag(tmp_path / "a.dat", tmp_path / "in", h, w, 20000.0, frames_per_packet=20, topic=f"/{ns}/spikes",
               frame_id="cam0", start_ns=START)
    env = dict(env, RCUTILS_LOGGING_BUFFERED_STREAM="0")
    cli = [sys.executable, "-m", "stir_ros.cli", "bag"]
    rec = OutputProcess([*cli, "record", str(tmp_path / "live"), f"/{ns}/image", f"/{ns}/camera_info",
                 "--max-messages", str(2 * expected_images), "--duration", "60"], env)
    node = OutputProcess([sys.executable, "-m", "stir_ros.ros.reconstructor_node", "--ros-args", "-r", f"__ns:=/{ns}",
                  "-p", "stride_frames:=20", "-p", "queue_size:=256", "-p", "max_batch:=4", *params], env)
    play = None
    try:
        node.wait_for("ready", timeout=60)
        rec.wait_for(f"subscribed to /{ns}/image", f"subscribed to /{ns}/camera_info", timeout=30)
        # The node subscribes best effort: play slowly so that no packet is lost on the way.
        play = OutputProcess([*cli, "play", str(tmp_path / "in"), "--rate", "0.02", "--wait-for-subscribers", "1",
                      "--wait-for-subscribers-timeout-s", "30",
                      "--delay", "1"], env)
        assert play.proc.wait(timeout=60) == 0
        assert rec.proc.wait(timeout=60) == 0, rec.output()
    finally:
        for p in (play, rec, node):
            if p is not None:
                p.stop()
    offline = reconstruct_bag(tmp_path / "in", tmp_path / "offline", options)
    assert offline.images == expected_images
    for topic in ("image", "camera_info"):
        live = _messages(tmp_path / "live", f"/{ns}/{topic}")
        off = _messages(tmp_path / "offline", f"/{topic}")
        assert len(live) == expected_images, f"live node published {len(live)} {topic} messages"
        assert sorted(live) == sorted(off) == offline.stamps_ns
        # Same serialized CDR bytes: header, size, encoding, step and every pixel.
        assert all(live[s] == off[s] for s in off), f"{topic}: live and offline messages differ"


def test_live_node_and_offline_reconstruction_agree_tfp(tmp_path: Path, ros_env: dict[str, str]) -> None:
    _live_vs_offline(tmp_path, ros_env, ["-p", "method:=tfp"], ReconstructOptions(method="tfp", stride_frames=20),
                     n_frames=300, h=64, w=96, expected_images=13)


def test_live_node_and_offline_reconstruction_agree_stir(tmp_path: Path, ros_env: dict[str, str],
                                                         random_stir41_weights: Path) -> None:
    """STIR with a random-weights checkpoint (41 frames), on the CPU."""
    weights = random_stir41_weights
    _live_vs_offline(
        tmp_path, dict(ros_env, OMP_NUM_THREADS="1"),
        ["-p", "method:=stir", "-p", f"weights:={weights}", "-p", "device:=cpu", "-p", "max_batch:=1",
         "-p", "rate_policy:=drop_oldest"],  # every window of the grid, as offline
        ReconstructOptions(method="stir", weights=str(weights), device="cpu", stride_frames=20, max_batch=1),
        n_frames=121, h=32, w=48, expected_images=5,
    )


def test_live_and_offline_agree_when_stir_routes_dark_windows(tmp_path: Path, ros_env: dict[str, str]) -> None:
    """The shipped pair of networks: clean windows to the main one, dark-current windows to the other."""
    from stir_ros.core.dark_events import DARK_EVENT_SWITCH, dark_event_rate
    from stir_ros.core.scenes import MovingScene
    from stir_ros.core.sensor_model import SensorModel
    from stir_ros.core.simulator import simulate_spikes

    h, w, n = 32, 48, 241
    light = MovingScene(h, w, seed=7).render(0, n).numpy()
    clean = simulate_spikes(light, seed=8)
    dark = simulate_spikes(light, seed=8, sensor=SensorModel(dark_rate_hz=100.0, dark_rate_spread=0.4))
    frames = np.concatenate([clean[:121], dark[121:]]).astype(np.uint8)
    grid = np.stack([frames[s : s + 61] for s in range(0, n - 60, 20)])
    routed = dark_event_rate(grid) > DARK_EVENT_SWITCH
    assert routed.any() and not routed.all(), "the stream must give both networks windows"
    _live_vs_offline(
        tmp_path, dict(ros_env, OMP_NUM_THREADS="1"),
        ["-p", "method:=stir", "-p", "device:=cpu", "-p", "backend:=torch", "-p", "precision:=fp32",
         "-p", "max_batch:=1", "-p", "rate_policy:=drop_oldest"],
        ReconstructOptions(method="stir", device="cpu", backend="torch", precision="fp32", stride_frames=20,
                           max_batch=1),
        n_frames=n, h=h, w=w, expected_images=len(grid), frames=frames,
    )


@pytest.mark.parametrize("method", ["tfp", "tfi"])
def test_live_and_offline_agree_with_defects_repaired(tmp_path: Path, ros_env: dict[str, str], method: str) -> None:
    """Hot and dead pixels estimated from the stream and repaired: live (tfp counts packed bits) = offline."""
    _live_vs_offline(tmp_path, ros_env, ["-p", f"method:={method}", "-p", "defect_sample_period_frames:=20"],
                     ReconstructOptions(method=method, stride_frames=20, defect_sample_period_frames=20),
                     n_frames=1400, h=48, w=64, expected_images=68, defects=True)
