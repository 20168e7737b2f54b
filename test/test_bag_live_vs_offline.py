"""The live node and the offline bag reconstruction give the same images for the same input.

A tiny bag is played (``stir-ros bag play``) into a real ``spike_reconstructor`` process, its
images are recorded (``stir-ros bag record``), and the recording is compared with ``stir-ros bag
reconstruct`` of the same bag: same stamps, and the same serialized messages byte for byte.
"""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rclpy")
pytest.importorskip("stir_ros.ros.reconstructor_node")

from stir_ros.bag.convert import dat_to_bag  # noqa: E402
from stir_ros.bag.reader import BagReader  # noqa: E402
from stir_ros.bag.reconstruct import ReconstructOptions, reconstruct_bag  # noqa: E402
from stir_ros.core.dat import write_dat  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow]

START = 1_700_000_000_000_000_000


class _Proc:
    def __init__(self, cmd: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def wait_for(self, texts: list[str], timeout: float) -> None:
        pending = list(texts)
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    break
                continue
            self.log.append(line)
            pending = [t for t in pending if t not in line]
        assert not pending, f"no {pending} within {timeout} s:\n{''.join(self.log)}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _messages(bag_path: Path, topic: str) -> dict[int, bytes]:
    with BagReader(bag_path) as bag:
        out = {}
        for m in bag.messages([topic]):
            msg = bag.deserialize(m)
            out[int(msg.header.stamp.sec) * 10**9 + int(msg.header.stamp.nanosec)] = bytes(m.data)
        return out


def _live_vs_offline(tmp_path: Path, env: dict[str, str], params: list[str], options: ReconstructOptions,
                     n_frames: int, h: int, w: int, expected_images: int) -> None:
    ns = f"lvo_{uuid.uuid4().hex[:8]}"
    frames = (np.random.default_rng(11).random((n_frames, h, w)) < np.random.default_rng(12).random((h, w)) * 0.7)
    write_dat(tmp_path / "a.dat", frames.astype(np.uint8))
    dat_to_bag(tmp_path / "a.dat", tmp_path / "in", h, w, 20000.0, frames_per_packet=20, topic=f"/{ns}/spikes",
               frame_id="cam0", start_ns=START)
    env = dict(env, RCUTILS_LOGGING_BUFFERED_STREAM="0")
    cli = [sys.executable, "-m", "stir_ros.cli", "bag"]
    rec = _Proc([*cli, "record", str(tmp_path / "live"), f"/{ns}/image", f"/{ns}/camera_info",
                 "--max-messages", str(2 * expected_images), "--duration", "60"], env)
    node = _Proc([sys.executable, "-m", "stir_ros.ros.reconstructor_node", "--ros-args", "-r", f"__ns:=/{ns}",
                  "-p", "stride_frames:=20", "-p", "queue_size:=256", "-p", "max_batch:=4", *params], env)
    play = None
    try:
        node.wait_for(["ready"], 60)
        rec.wait_for([f"subscribed to /{ns}/image", f"subscribed to /{ns}/camera_info"], 30)
        # The node subscribes best effort: play slowly so that no packet is lost on the way.
        play = _Proc([*cli, "play", str(tmp_path / "in"), "--rate", "0.02", "--wait-for-subscribers", "1",
                      "--wait-for-subscribers-timeout-s", "30",
                      "--delay", "1"], env)
        assert play.proc.wait(timeout=60) == 0
        assert rec.proc.wait(timeout=60) == 0, "".join(rec.log)
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


def test_live_node_and_offline_reconstruction_agree_stir(tmp_path: Path, ros_env: dict[str, str]) -> None:
    """STIR with a random-weights checkpoint (41 frames), on the CPU."""
    import torch

    from stir_ros.models import build_model, save_checkpoint

    torch.manual_seed(0)
    model = build_model({"type": "stir_41"})
    for mod in model.modules():  # random batch-norm statistics: a non-trivial output
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.1, 0.1)
            mod.running_var.uniform_(0.5, 1.5)
    weights = tmp_path / "random_stir41.pt"
    save_checkpoint(weights, model, {"window_length": 41, "alpha": 0.6, "notes": "random weights for tests"},
                    model_config={"type": "stir_41"})  # fmt: skip
    _live_vs_offline(
        tmp_path, dict(ros_env, OMP_NUM_THREADS="1"),
        ["-p", "method:=stir", "-p", f"weights:={weights}", "-p", "device:=cpu", "-p", "max_batch:=1"],
        ReconstructOptions(method="stir", weights=str(weights), device="cpu", stride_frames=20, max_batch=1),
        n_frames=121, h=32, w=48, expected_images=5,
    )
