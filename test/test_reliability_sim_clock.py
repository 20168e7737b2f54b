# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""``use_sim_time`` nodes whose ``/clock`` stops: diagnostics go on, with counters that are right.

The diagnostics timers ran on the node clock, which with ``use_sim_time`` stands still when
``/clock`` stops (a paused or finished bag): ``/diagnostics`` stopped, and its last message could
say ``images_published 0`` after images had been published.
"""

from __future__ import annotations

import uuid

import pytest

rclpy = pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from ros_support import RELIABLE, spin_until  # noqa: E402

from stir_ros.ros.conversions import ns_to_stamp  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow]
NAMES = (("driver", "spike_camera_driver: spikes"), ("reconstructor", "spike_reconstructor: reconstruction"))


def test_diagnostics_go_on_when_the_simulated_clock_stops(nodes, ros_node):
    ns = f"simclk_{uuid.uuid4().hex[:8]}"
    latest: dict[str, dict[str, str]] = {}
    counts = {"driver": 0, "reconstructor": 0}

    def on_diag(msg: DiagnosticArray) -> None:
        for status in msg.status:
            for who, name in NAMES:
                if status.name == f"/{ns}/{name}":
                    latest[who] = {kv.key: kv.value for kv in status.values}
                    counts[who] += 1

    ros_node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 50)
    images: list[Image] = []
    ros_node.create_subscription(Image, f"/{ns}/image", images.append, RELIABLE)
    clock_pub = ros_node.create_publisher(Clock, "/clock", 10)
    sim_ns = [10**9]

    def tick() -> None:
        sim_ns[0] += 10_000_000
        clock_pub.publish(Clock(clock=ns_to_stamp(sim_ns[0])))

    timer = ros_node.create_timer(0.01, tick)
    sim = {"use_sim_time": True}
    nodes.start("spike_reconstructor", ns, {"method": "tfp", "stride_frames": 100, "diagnostics_period_s": 0.2, **sim})
    nodes.start("spike_camera_driver", ns, {"source": "sim", "height": 32, "width": 48, "frame_rate_hz": 400.0,
                                            "frames_per_packet": 20, **sim})  # fmt: skip
    assert spin_until(ros_node, lambda: len(images) >= 1 and counts["driver"] >= 1, 60), nodes.logs()
    ros_node.destroy_timer(timer)  # /clock stops here; the stream does not
    seen = dict(counts)
    # A bound for a hang, not for speed: diagnostics come every 0.2 s (reconstructor) and 1 s (driver).
    assert spin_until(ros_node, lambda: counts["reconstructor"] >= seen["reconstructor"] + 5
                      and counts["driver"] >= seen["driver"] + 3, 30), f"{counts} {seen}\n{nodes.logs()}"  # fmt: skip
    n_images = len(images)
    assert spin_until(ros_node, lambda: int(latest["reconstructor"]["images_published"]) >= n_images, 30), latest
    assert int(latest["driver"]["packets_published"]) > 0, latest
