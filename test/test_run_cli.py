"""``stir-ros run`` starts the graph from YAML; ``stir-ros demo`` writes PNG images."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import yaml

rclpy = pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from PIL import Image as PilImage  # noqa: E402
from rclpy.qos import QoSProfile, QoSReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from stir_ros.core.dat import write_dat  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def _processes_mentioning(text: str) -> list[int]:
    """Pids whose command line contains ``text`` (to check that nothing was left running)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


@pytest.fixture()
def ros_node():
    rclpy.init()
    node = rclpy.create_node(f"test_run_{uuid.uuid4().hex[:8]}")
    try:
        yield node
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def _spin_until(node, predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not predicate():
        rclpy.spin_once(node, timeout_sec=0.05)
    return predicate()


def _stop(proc: subprocess.Popen, sig=signal.SIGINT, timeout=20.0) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
        raise


def test_print_shows_the_commands(ros_env):
    out = subprocess.run(
        ["stir-ros", "run", "--print", "method:=tfp", "spikes_topic:=/cam/spikes", "--ros-args", "--log-level", "warn"],
        env=ros_env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 2
    assert "spike_camera_driver" in lines[0] and "__node:=spike_camera_driver" in lines[0]
    assert "spikes:=/cam/spikes" in lines[1] and lines[1].endswith("--log-level warn")


def test_run_starts_the_graph_from_yaml_and_stops_cleanly(tmp_path, ros_env, ros_node):
    h, w = 32, 48
    frames = (np.random.default_rng(0).random((400, h, w)) < 0.3).astype(np.uint8)
    write_dat(tmp_path / "clip.dat", frames)
    config = tmp_path / "graph.yaml"
    config.write_text(yaml.safe_dump({
        "spike_camera_driver": {"ros__parameters": {
            "source": "dat", "dat_path": str(tmp_path / "clip.dat"), "height": h, "width": w, "loop": True,
            "frame_rate_hz": 20000.0, "frames_per_packet": 50}},
        "spike_reconstructor": {"ros__parameters": {"method": "tfp", "stride_frames": 400}},
    }))  # fmt: skip
    ns = f"run_{uuid.uuid4().hex[:8]}"
    images: list[Image] = []
    diag: dict[str, str] = {}

    def on_diag(msg):
        for s in msg.status:
            if s.name == f"/{ns}/spike_reconstructor: reconstruction":
                diag.update({kv.key: kv.value for kv in s.values})

    ros_node.create_subscription(Image, f"/{ns}/recon", images.append, QoSProfile(depth=50, reliability=QoSReliabilityPolicy.RELIABLE))
    ros_node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)
    log = tmp_path / "run.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            ["stir-ros", "run", str(config), f"namespace:={ns}", "image_topic:=recon", "--ros-args", "-p", "method:=tfi"],
            env=ros_env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        ok = _spin_until(ros_node, lambda: len(images) >= 5 and diag.get("method") == "tfi", 60)
        assert ok, f"{len(images)} images, diag {diag}\n{log.read_text()}"
        assert (images[0].height, images[0].width, images[0].encoding) == (h, w, "mono8")
        assert len(_processes_mentioning(ns)) == 3  # the runner and its two nodes
    finally:
        status = _stop(proc)
    assert status == 0, log.read_text()
    assert _processes_mentioning(ns) == [], "nodes left running after stir-ros run exited"


def test_run_exits_with_the_status_of_a_failing_node(tmp_path, ros_env):
    ns = f"fail_{uuid.uuid4().hex[:8]}"
    proc = subprocess.run(
        ["stir-ros", "run", "--mode", "reconstruct", "method:=stir", "weights:=/nonexistent.pt", f"namespace:={ns}"],
        env=ros_env, capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "does not exist" in proc.stdout + proc.stderr
    assert _processes_mentioning(ns) == []


def test_demo_writes_png_images(tmp_path, ros_env):
    out_dir = tmp_path / "out"
    ns = f"demo_{uuid.uuid4().hex[:8]}"
    proc = subprocess.run(
        ["stir-ros", "demo", "--size", "32x48", "--images", "4", "--seconds", "60", "--out", str(out_dir),
         "--cache-dir", str(tmp_path / "cache"), "--stride-frames", "200", "--ros-args", "-r", f"__ns:=/{ns}"],
        env=ros_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    pngs = sorted(out_dir.glob("*.png"))
    assert len(pngs) == 4
    img = np.asarray(PilImage.open(pngs[0]))
    assert img.shape == (32, 48) and img.dtype == np.uint8 and img.std() > 0
    assert "4 images written" in proc.stdout and "latency" in proc.stdout
    assert list((tmp_path / "cache").glob("*.dat"))
    assert _processes_mentioning(ns) == []
