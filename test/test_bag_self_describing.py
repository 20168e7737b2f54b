# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Bags written by the package carry their message definitions.

A viewer that knows no stir_ros type (Foxglove, rosbags with an empty type store) decodes every message.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_typestore

from stir_ros.core.dat import write_dat


def _cli(*args: str) -> None:
    out = subprocess.run([sys.executable, "-m", "stir_ros.cli", *args], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_spike_and_image_bags_decode_without_the_package_types(tmp_path: Path, storage: str) -> None:
    frames = (np.random.default_rng(0).random((300, 16, 24)) < 0.3).astype(np.uint8)
    write_dat(tmp_path / "r.dat", frames)
    spikes, images = tmp_path / "spikes", tmp_path / "images"
    _cli("bag", "from-dat", str(tmp_path / "r.dat"), str(spikes), "--height", "16", "--width", "24",
         "--frame-rate-hz", "20000", "--storage", storage)  # fmt: skip
    _cli("bag", "reconstruct", str(spikes), str(images), "--method", "tfp", "--storage", storage, "--no-progress")
    seen: dict[str, int] = {}
    for bag in (spikes, images):
        # An empty type store: every type must come from the definitions stored in the bag.
        with AnyReader([bag], default_typestore=get_typestore(Stores.EMPTY)) as reader:
            for conn, _, raw in reader.messages():
                msg = reader.deserialize(raw, conn.msgtype)
                seen[conn.msgtype] = seen.get(conn.msgtype, 0) + 1
                if conn.msgtype == "stir_ros/msg/SpikePacket":
                    assert (msg.height, msg.width, msg.encoding) == (16, 24, "vidar_bitpacked")
                elif conn.msgtype == "sensor_msgs/msg/Image":
                    assert (msg.height, msg.width, msg.encoding) == (16, 24, "mono8")
                    assert len(msg.data) == 16 * 24
    assert seen.get("stir_ros/msg/SpikePacket", 0) >= 3
    assert seen.get("sensor_msgs/msg/Image", 0) >= 1
    assert seen.get("sensor_msgs/msg/CameraInfo", 0) == seen["sensor_msgs/msg/Image"]
