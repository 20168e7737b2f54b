# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The reconstructor's ``backend`` parameter in separate processes over DDS (real rclpy).

``backend: openvino`` with the shipped weights gives the images the torch engine computes
offline from the same spikes; on a machine without OpenVINO the node warns and falls back to
torch instead of refusing to start.
"""

from __future__ import annotations

import uuid

import numpy as np
import pytest

pytest.importorskip("rclpy")
pytest.importorskip("openvino")

from ros_support import Collector, offline_images, spin_until  # noqa: E402  (test/ is on sys.path under pytest)

from stir_ros.engine import EngineConfig, default_weights_path  # noqa: E402
from stir_ros.ros.conversions import image_msg_to_array, packet_to_frames  # noqa: E402

pytestmark = [
    pytest.mark.ros,
    pytest.mark.slow,
    pytest.mark.skipif(not default_weights_path().is_file(), reason="shipped weights not installed"),
]

H, W, STRIDE, MAX_FRAMES = 32, 48, 100, 261  # windows 0, 100, 200 of 61 frames


def _run_pipeline(nodes, ros_node, backend: str) -> tuple[Collector, np.ndarray]:
    ns = f"backend_{uuid.uuid4().hex[:8]}"
    col = Collector(ros_node, ns)
    nodes.start("spike_reconstructor", ns, {
        "method": "stir", "backend": backend, "precision": "fp32", "device": "cpu", "stride_frames": STRIDE,
        "rate_policy": "drop_oldest", "output_encoding": "32FC1", "max_batch": 1, "queue_size": 16,
        "warmup_height": H, "warmup_width": W,
    })  # fmt: skip
    col.wait_for_reconstructor(nodes, timeout=90)
    nodes.start("spike_camera_driver", ns, {
        "source": "sim", "height": H, "width": W, "max_frames": MAX_FRAMES, "frames_per_packet": 63,
        "realtime": False, "wait_for_subscribers": 2, "sim_seed": 2,
    })  # fmt: skip
    assert spin_until(ros_node, lambda: len(col.images) >= 3, 120), nodes.logs()
    frames = np.concatenate([packet_to_frames(p) for p in col.packets])
    return col, frames


def _assert_same_as_offline_torch(col: Collector, frames: np.ndarray) -> None:
    config = EngineConfig(method="stir", device="cpu", backend="torch")
    _, offline = offline_images(frames, 0, config, STRIDE, "32FC1")
    assert len(col.images) == len(offline) == 3
    for msg, ref in zip(col.images, offline):
        np.testing.assert_allclose(image_msg_to_array(msg), ref, atol=1e-4)


def test_openvino_backend_in_the_node(nodes, ros_node):
    col, frames = _run_pipeline(nodes, ros_node, "openvino")
    _assert_same_as_offline_torch(col, frames)
    log = nodes.logs()
    assert "backend openvino" in log and "falling back" not in log, log


def test_node_falls_back_to_torch_without_openvino(nodes, ros_node, tmp_path):
    # A machine without OpenVINO: an ``openvino`` package that cannot be imported shadows the real one.
    fake = tmp_path / "no_openvino" / "openvino"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('openvino is not installed on this machine (test)')\n")
    nodes.env = dict(nodes.env, PYTHONPATH=f"{fake.parent}:{nodes.env.get('PYTHONPATH', '')}")
    col, frames = _run_pipeline(nodes, ros_node, "openvino")
    _assert_same_as_offline_torch(col, frames)
    log = nodes.logs()
    assert "backend 'openvino' needs the Python package openvino" in log, log
    assert "falling back to backend torch" in log and "backend torch" in log, log
