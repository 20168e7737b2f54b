# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Type names, type description hashes and definitions that the bag tools write."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from stir_ros.bag import types

ROOT = Path(__file__).resolve().parents[1]


def _installed_json(msgtype: str) -> Path | None:
    """The ``.json`` type description rosidl installed for ``msgtype`` (None if not found)."""
    package, _, name = msgtype.split("/")
    for prefix in filter(None, os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)):
        path = Path(prefix) / "share" / package / "msg" / f"{name}.json"
        if path.is_file():
            return path
    return None


@pytest.mark.parametrize(
    "msgtype",
    [types.SPIKE_PACKET, types.IMAGE, types.CAMERA_INFO, types.CLOCK, "std_msgs/msg/String"],
)
def test_type_hash_matches_rosidl_type_description(msgtype: str) -> None:
    path = _installed_json(msgtype)
    if path is None:
        pytest.skip(f"no rosidl type description for {msgtype} (source env.sh)")
    described = {h["type_name"]: h["hash_string"] for h in json.loads(path.read_text())["type_hashes"]}
    assert types.type_hash(msgtype) == described[msgtype]
    assert types.type_hash(msgtype).startswith("RIHS01_")


def test_known_hash_of_sensor_msgs_image() -> None:
    # The value ROS 2 Jazzy publishes for sensor_msgs/msg/Image (independent of any install).
    assert types.type_hash(types.IMAGE) == (
        "RIHS01_d31d41a9a4c4bc8eae9be757b0beed306564f7526c88ea6a4588fb9582527d47"
    )


def test_spike_packet_definition_comes_from_the_checkout_first() -> None:
    assert types.find_msg_file(types.SPIKE_PACKET) == ROOT / "msg" / "SpikePacket.msg"
    assert types.spike_packet_msg_text() == (ROOT / "msg" / "SpikePacket.msg").read_text()


def test_message_definition_is_rosbag2_full_text() -> None:
    encoding, text = types.message_definition(types.CAMERA_INFO)
    assert encoding == "ros2msg"
    parts = text.split("=" * 80 + "\n")
    # Own text first, then each dependency once, depth first in sorted order, as rosbag2 does.
    assert "RegionOfInterest roi" in parts[0]
    assert [p.splitlines()[0] for p in parts[1:]] == [
        "MSG: sensor_msgs/RegionOfInterest",
        "MSG: std_msgs/Header",
        "MSG: builtin_interfaces/Time",
    ]
    _, spike = types.message_definition(types.SPIKE_PACKET)
    assert spike.startswith(types.spike_packet_msg_text())


def test_unknown_type_is_a_clear_error() -> None:
    from stir_ros.core.errors import BagError

    with pytest.raises(BagError, match="no_such_pkg/msg/Nope.*unknown"):
        types.type_hash("no_such_pkg/msg/Nope")


@pytest.mark.ros
def test_type_hash_matches_what_rclpy_reports() -> None:
    """The hash in our bags equals the one the ROS middleware announces for the same types."""
    rclpy = pytest.importorskip("rclpy")
    from sensor_msgs.msg import Image

    from stir_ros.msg import SpikePacket

    rclpy.init()
    try:
        node = rclpy.create_node("type_hash_probe")
        node.create_publisher(Image, "/type_hash_probe/image", 1)
        node.create_publisher(SpikePacket, "/type_hash_probe/spikes", 1)
        reported = {}
        deadline = time.monotonic() + 10
        while len(reported) < 2 and time.monotonic() < deadline:
            for topic, msgtype in (("/type_hash_probe/image", types.IMAGE),
                                   ("/type_hash_probe/spikes", types.SPIKE_PACKET)):
                for info in node.get_publishers_info_by_topic(topic):
                    th = info.topic_type_hash
                    assert th.version == 1
                    reported[msgtype] = "RIHS01_" + th.value.hex()
            time.sleep(0.05)
        node.destroy_node()
    finally:
        rclpy.try_shutdown()
    assert reported == {t: types.type_hash(t) for t in (types.IMAGE, types.SPIKE_PACKET)}
