# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The driver node's outputs, checked against a clock the test controls.

A real ``spike_camera_driver`` process runs with ``use_sim_time`` on a ``/clock`` that this test
publishes and holds at a fixed time ``T0``. The driver stamps a packet with the node clock at the
start of publishing plus ``first_frame_index / frame_rate_hz``, so every stamp is known exactly
(not only relative to the other stamps), and ``spikes/camera_info`` must carry the stamp and
frame_id of the packet it belongs to.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest

rclpy = pytest.importorskip("rclpy")

from builtin_interfaces.msg import Time  # noqa: E402
from ros_support import RELIABLE, Nodes, OutputProcess, ros_value, spin_until, stop_process  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import CameraInfo  # noqa: E402

from stir_ros.msg import SpikePacket  # noqa: E402
from stir_ros.ros.conversions import stamp_to_ns  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow]

#: The fixed sim time (ns): far from the wall clock, with a nanosecond part.
T0 = 1_500_000_000 * 10**9 + 250_000_123
#: 30 kHz: a frame lasts 33 333.3 ns, so stamps need rounding and a one-frame shift is visible.
RATE = 30000.0
FPP, PACKETS, H, W = 7, 12, 8, 12
FRAME_ID = "test_cam_optical_frame"


@pytest.fixture(scope="module")
def driver_run(tmp_path_factory) -> dict[str, Any]:
    """Packets and camera infos of one driver run on the fixed clock (shared by the tests below)."""
    ns = f"drv_{uuid.uuid4().hex[:8]}"
    own_init = not rclpy.ok()
    if own_init:
        rclpy.init()
    node = rclpy.create_node(f"test_driver_{uuid.uuid4().hex[:8]}")
    nodes = Nodes(tmp_path_factory.mktemp("driver"), dict(os.environ))
    try:
        # The driver's /clock is remapped to a topic of this test's own, so that nothing else
        # (another test's player) can move its clock.
        clock_topic = f"/{ns}/clock"
        clock_pub = node.create_publisher(Clock, clock_topic, 10)
        sec, nsec = divmod(T0, 10**9)
        node.create_timer(0.05, lambda: clock_pub.publish(Clock(clock=Time(sec=sec, nanosec=nsec))))
        nodes.start("spike_camera_driver", ns, {
            "source": "sim", "height": H, "width": W, "frame_rate_hz": RATE, "frames_per_packet": FPP,
            "max_frames": FPP * PACKETS, "realtime": False, "frame_id": FRAME_ID, "use_sim_time": True,
            "wait_for_subscribers": 1, "wait_for_subscribers_timeout_s": 60.0,
        }, extra=("-r", f"/clock:={clock_topic}"))  # fmt: skip
        # The driver reads its clock once it has a subscriber: let it receive /clock first.
        assert spin_until(node, lambda: clock_pub.get_subscription_count() >= 1, 60), nodes.logs()
        spin_until(node, lambda: False, 1.0)  # 20 ticks, the driver's reader has matched too
        packets: list[SpikePacket] = []
        infos: list[CameraInfo] = []
        node.create_subscription(SpikePacket, f"/{ns}/spikes", packets.append, RELIABLE)
        node.create_subscription(CameraInfo, f"/{ns}/spikes/camera_info", infos.append, RELIABLE)
        done = spin_until(node, lambda: len(packets) >= PACKETS and len(infos) >= PACKETS, 60)
        assert done, f"{len(packets)} packets, {len(infos)} camera infos\n{nodes.logs()}"
        spin_until(node, lambda: False, 0.3)  # nothing more may come
        return {"packets": packets, "infos": infos, "logs": nodes.logs()}
    finally:
        nodes.stop()
        node.destroy_node()
        if own_init:
            rclpy.try_shutdown()


def test_packet_stamps_are_the_clock_at_start_plus_the_frame_time(driver_run):
    packets = driver_run["packets"]
    assert [p.seq for p in packets] == list(range(PACKETS))
    assert [p.first_frame_index for p in packets] == [FPP * k for k in range(PACKETS)]
    stamps = [stamp_to_ns(p.header.stamp) for p in packets]
    expected = [T0 + round(p.first_frame_index * 1e9 / RATE) for p in packets]
    assert stamps[0] == T0, (
        f"the first packet (frame 0) is stamped {stamps[0]}, not the clock at the start {T0} "
        f"({(stamps[0] - T0) * RATE / 1e9:+.2f} frames)\n{driver_run['logs']}"
    )
    assert stamps == expected
    assert all(p.header.frame_id == FRAME_ID for p in packets)


def test_camera_info_carries_its_packets_stamp_and_frame_id(driver_run):
    packets, infos = driver_run["packets"], driver_run["infos"]
    assert len(infos) == len(packets) == PACKETS
    packet_stamps = [stamp_to_ns(p.header.stamp) for p in packets]
    assert len(set(packet_stamps)) == PACKETS  # distinct stamps: a constant one cannot match by chance
    for k, (packet, info) in enumerate(zip(packets, infos)):
        assert stamp_to_ns(info.header.stamp) == packet_stamps[k], f"camera_info {k} is not stamped as packet {k}"
        assert info.header.frame_id == packet.header.frame_id == FRAME_ID
        assert (info.height, info.width) == (H, W)


def test_a_simulated_mode_the_simulator_cannot_make_says_so_and_what_to_do(tmp_path):
    """The simulator, not the publishing, limits a simulated mode.

    The start-up statement said "sustainable" for the default 250x400 at 20 kHz (it timed only the
    message path) while the simulator made a few percent of it, and every lag warning then quoted
    that "sustainable". 1000x1000 at 1 MHz (10^12 pixel-frames/s) is beyond any CPU's simulator.
    """
    ns = f"drv_{uuid.uuid4().hex[:8]}"
    params = {"source": "sim", "height": 1000, "width": 1000, "frame_rate_hz": 1e6, "frames_per_packet": 2,
              "realtime": True, "sim_sensor": "realistic"}  # fmt: skip
    cmd = ["spike_camera_driver", "--ros-args", "-r", f"__ns:=/{ns}"]
    for key, value in params.items():
        cmd += ["-p", f"{key}:={ros_value(value)}"]
    proc = OutputProcess(cmd, dict(os.environ, RCUTILS_LOGGING_BUFFERED_STREAM="0", PYTHONUNBUFFERED="1"))
    try:
        proc.wait_for("mode NOT sustainable", "behind real time", timeout=90)
        out = proc.output()
        mode = next(line for line in out.splitlines() if "mode NOT sustainable" in line)
        assert "simulate + publish" in mode and "the simulator is the limit" in mode, mode
        assert "stir-ros simulate rec.dat --height 1000 --width 1000 --frame-rate-hz 1000000" in mode, mode
        assert "--sensor realistic" in mode and "source:=dat" in mode, mode
        lag = next(line for line in out.splitlines() if "behind real time" in line)
        assert "the simulator is the limit" in lag and "NOT sustainable" in lag, lag
    finally:
        stop_process(proc.proc)
