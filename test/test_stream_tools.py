# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""``stir-ros perf`` and ``stir-ros echo`` against real publishers in other processes."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest

pytest.importorskip("rclpy")

pytestmark = pytest.mark.ros

# Publishes 30 packets of 20 frames with seq 10..12 and 20 missing (4 lost), nominal stamps.
GAPPY_PUBLISHER = r"""
import sys, time
import numpy as np
import rclpy
from rclpy.qos import QoSProfile, QoSReliabilityPolicy
from stir_ros.msg import SpikePacket
from stir_ros.ros.conversions import frames_to_packet

topic = sys.argv[1]
rclpy.init()
try:
    node = rclpy.create_node("gappy_publisher")
    pub = node.create_publisher(SpikePacket, topic, QoSProfile(depth=50, reliability=QoSReliabilityPolicy.RELIABLE))
    deadline = time.monotonic() + 30
    while pub.get_subscription_count() < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(1.0)
    frames = (np.random.default_rng(0).random((20, 8, 16)) < 0.25).astype(np.uint8)
    t0 = 1_700_000_000_000_000_000
    for seq in range(34):
        if seq in (10, 11, 12, 20):
            continue
        pub.publish(frames_to_packet(frames, seq=seq, first_frame_index=20 * seq, frame_rate_hz=2000.0,
                                     stamp_ns=t0 + seq * 10_000_000, frame_id="cam"))
        time.sleep(0.01)
    pub.wait_for_all_acked(rclpy.duration.Duration(seconds=10))
    time.sleep(1.0)
finally:
    rclpy.try_shutdown()
"""


def _stir_ros(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stir_ros.cli", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def test_perf_counts_injected_drops_exactly(tmp_path, ros_env):
    topic = f"/perf_{uuid.uuid4().hex[:8]}/spikes"
    pub = subprocess.Popen([sys.executable, "-c", GAPPY_PUBLISHER, topic], env=ros_env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        out = _stir_ros("perf", topic, "--duration", "12", "--period", "1", "--json", str(tmp_path / "p.json"), env=ros_env)
    finally:
        pub.wait(timeout=30)
    assert out.returncode == 0, out.stderr
    result = json.loads((tmp_path / "p.json").read_text())
    totals = result["totals"]
    assert totals["packets"] == 30, out.stdout
    assert totals["frames"] == 600
    assert totals["lost"] == 4
    assert totals["bytes"] == 30 * 20 * 16  # 8x16 bits per frame = 16 bytes
    assert result["streams"] == ["8x16 vidar_bitpacked @ 2000 Hz"]
    assert "lost 4" in out.stdout


def test_echo_prints_one_line_per_driver_packet(ros_env):
    ns = f"/echo_{uuid.uuid4().hex[:8]}"
    driver = subprocess.Popen(
        [sys.executable, "-m", "stir_ros.ros.driver_node", "--ros-args", "-r", f"__ns:={ns}",
         "-p", "height:=10", "-p", "width:=20", "-p", "frame_rate_hz:=1000.0", "-p", "frames_per_packet:=10",
         "-p", "frame_id:=cam_left"],
        env=ros_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        out = _stir_ros("echo", f"{ns}/spikes", "--count", "5", "--duration", "30", env=ros_env)
    finally:
        driver.terminate()
        driver.communicate(timeout=20)
    assert out.returncode == 0, out.stderr
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("seq ")]
    assert len(lines) == 5, out.stdout
    seqs = [int(ln.split()[1]) for ln in lines]
    assert seqs == list(range(seqs[0], seqs[0] + 5))
    for ln in lines:
        assert "frames 10 10x20 1000 Hz vidar_bitpacked 250 B" in ln and "frame_id 'cam_left'" in ln
        fired = float(ln.rsplit("fired ", 1)[1].rstrip("%"))
        assert 0 < fired < 100


# Publishes 10 packets whose frame_id carries terminal escapes and a forged line; packets 3..5
# claim 1e-300 Hz and packet 7 a hostile encoding.
HOSTILE_PUBLISHER = r"""
import sys, time
import numpy as np
import rclpy
from rclpy.qos import QoSProfile, QoSReliabilityPolicy
from stir_ros.msg import SpikePacket
from stir_ros.ros.conversions import frames_to_packet

topic = sys.argv[1]
hostile = "cam\x1b[2J\x1b]0;owned\x07\r\nseq 999 forged\u202e"
rclpy.init()
try:
    node = rclpy.create_node("hostile_publisher")
    pub = node.create_publisher(SpikePacket, topic, QoSProfile(depth=50, reliability=QoSReliabilityPolicy.RELIABLE))
    deadline = time.monotonic() + 30
    while pub.get_subscription_count() < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(1.0)
    frames = (np.random.default_rng(0).random((20, 8, 16)) < 0.25).astype(np.uint8)
    t0 = 1_700_000_000_000_000_000
    for seq in range(10):
        msg = frames_to_packet(frames, seq=seq, first_frame_index=20 * seq, frame_rate_hz=2000.0,
                               stamp_ns=t0 + seq * 10_000_000, frame_id=hostile)
        if 3 <= seq <= 5:
            msg.frame_rate_hz = 1e-300
        if seq == 7:
            msg.encoding = "x\x1b[31m\nseq 998 forged"
        pub.publish(msg)
        time.sleep(0.01)
    pub.wait_for_all_acked(rclpy.duration.Duration(seconds=10))
    time.sleep(1.0)
finally:
    rclpy.try_shutdown()
"""


@pytest.mark.parametrize("tool", ["perf", "echo"])
def test_hostile_packets_give_escaped_lines_and_strict_json(tool, tmp_path, ros_env):
    topic = f"/hostile_{uuid.uuid4().hex[:8]}/spikes"
    pub = subprocess.Popen([sys.executable, "-c", HOSTILE_PUBLISHER, topic], env=ros_env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        if tool == "perf":
            out = _stir_ros("perf", topic, "--duration", "8", "--period", "1", "--json", str(tmp_path / "p.json"),
                            env=ros_env)  # fmt: skip
        else:
            out = _stir_ros("echo", topic, "--count", "10", "--duration", "30", env=ros_env)
    finally:
        pub.wait(timeout=30)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "\x1b" not in text and "\r" not in text and "\u202e" not in text and "\x07" not in text
    assert not any(ln.startswith(("seq 999", "seq 998")) for ln in text.splitlines()), text
    if tool == "echo":
        lines = [ln for ln in text.splitlines() if ln.startswith("seq ")]
        assert [int(ln.split()[1]) for ln in lines] == list(range(10)), text
        assert all("frame_id 'cam\\x1b[2J\\x1b]0;owned\\x07\\r\\nseq 999 forged\\u202e'" in ln for ln in lines)
        return

    def refuse(name):
        raise ValueError(f"not JSON: {name}")

    result = json.loads((tmp_path / "p.json").read_text(), parse_constant=refuse)  # no -Infinity, no NaN
    assert result["totals"]["rejected"] == 3 and result["totals"]["packets"] == 7, text
    assert result["rejections"] == {"frame_rate_hz outside [0.001, 1e+06] Hz": 3}
    assert "inf" not in text and "nan" not in text
    assert any("x\\x1b[31m\\nseq 998 forged" in s for s in result["streams"])
