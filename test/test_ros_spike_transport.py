# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""A SpikePacket published by one process arrives bit-exact in another (real rclpy over DDS)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from rclpy.qos import QoSProfile, QoSReliabilityPolicy  # noqa: E402

from stir_ros.core.packing import encode_frames  # noqa: E402
from stir_ros.msg import SpikePacket  # noqa: E402
from stir_ros.ros.conversions import packet_payload, packet_to_frames, stamp_to_ns  # noqa: E402

pytestmark = pytest.mark.ros

# (height, width, num_frames, encoding): a full-size packet, odd sizes, both encodings.
CASES = [
    (250, 400, 100, "vidar_bitpacked"), (13, 3, 9, "vidar_bitpacked"), (5, 7, 4, "unpacked_u8"), (1, 1, 1, "vidar_bitpacked"),
]

PUBLISHER = r"""
import json, sys, time
import numpy as np
import rclpy
from rclpy.qos import QoSProfile, QoSReliabilityPolicy
from stir_ros.msg import SpikePacket
from stir_ros.ros.conversions import frames_to_packet

topic, cases = sys.argv[1], json.loads(sys.argv[2])
rclpy.init()
try:
    node = rclpy.create_node("transport_publisher")
    pub = node.create_publisher(SpikePacket, topic, QoSProfile(depth=20, reliability=QoSReliabilityPolicy.RELIABLE))
    deadline = time.monotonic() + 20
    while pub.get_subscription_count() < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.5)
    for seq, (h, w, n, enc) in enumerate(cases):
        frames = (np.random.default_rng(seq).random((n, h, w)) < 0.3).astype(np.uint8)
        pub.publish(frames_to_packet(frames, seq=seq, first_frame_index=1000 * seq, frame_rate_hz=40000.0 + seq,
                                     stamp_ns=1_700_000_000_000_000_123 + seq, frame_id=f"cam{seq}", encoding=enc))
    pub.wait_for_all_acked(rclpy.duration.Duration(seconds=10))
    print("published", flush=True)
finally:
    rclpy.try_shutdown()
"""


@pytest.fixture()
def ros_node():
    rclpy.init()
    node = rclpy.create_node(f"test_transport_{uuid.uuid4().hex[:8]}")
    try:
        yield node
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def _sha(data) -> str:
    return hashlib.sha256(bytes(data)).hexdigest()


def test_spike_packets_arrive_bit_exact(ros_node, ros_env):
    topic = f"/transport_{uuid.uuid4().hex[:8]}/spikes"
    received: list[SpikePacket] = []
    qos = QoSProfile(depth=20, reliability=QoSReliabilityPolicy.RELIABLE)
    ros_node.create_subscription(SpikePacket, topic, received.append, qos)
    proc = subprocess.Popen(
        [sys.executable, "-c", PUBLISHER, topic, json.dumps(CASES)], env=ros_env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 25
        while len(received) < len(CASES) and time.monotonic() < deadline:
            rclpy.spin_once(ros_node, timeout_sec=0.1)
    finally:
        if proc.poll() is None:
            proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert len(received) == len(CASES), f"got {len(received)} packets; publisher said:\n{out}"
    for seq, (msg, (h, w, n, enc)) in enumerate(zip(received, CASES)):
        frames = (np.random.default_rng(seq).random((n, h, w)) < 0.3).astype(np.uint8)
        expected_payload = encode_frames(frames, enc)
        assert _sha(packet_payload(msg)) == _sha(expected_payload)
        np.testing.assert_array_equal(packet_to_frames(msg), frames)
        assert (msg.height, msg.width, msg.num_frames, msg.encoding) == (h, w, n, enc)
        assert (msg.seq, msg.first_frame_index, msg.frame_rate_hz) == (seq, 1000 * seq, 40000.0 + seq)
        assert stamp_to_ns(msg.header.stamp) == 1_700_000_000_000_000_123 + seq
        assert msg.header.frame_id == f"cam{seq}"
