# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The driver -> reconstructor pipeline in separate processes over DDS (real rclpy).

Each test runs its nodes in a namespace of its own, so that nodes of earlier tests that DDS
still remembers cannot answer. Nodes are started with the executables on PATH, the way a user
starts them, and are always stopped in ``finally`` blocks.
"""

from __future__ import annotations

import uuid

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from cv_bridge import CvBridge  # noqa: E402
from ros_support import RATE, RELIABLE, Collector, offline_images, set_parameters, spike_packet, spin_until  # noqa: E402

from stir_ros.core.dat import write_dat  # noqa: E402
from stir_ros.engine import EngineConfig  # noqa: E402
from stir_ros.core.sources import SimSource  # noqa: E402
from stir_ros.msg import SpikePacket  # noqa: E402
from stir_ros.ros.conversions import image_msg_to_array, packet_to_frames, stamp_to_ns  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow]


# --------------------------------------------------------------------------- helpers


def _check_images(collector: Collector, n: int, h: int, w: int, encoding: str, stride: int, window: int):
    """Sizes, encoding, stamps at the centre frame, order, one per stride, camera_info alongside."""
    images, packets = collector.images, collector.packets
    assert len(images) == n
    packet_stamp = {p.first_frame_index: stamp_to_ns(p.header.stamp) for p in packets}
    fpp = packets[0].num_frames
    stamps = [stamp_to_ns(m.header.stamp) for m in images]
    for k, msg in enumerate(images):
        bytes_per_pixel = {"mono8": 1, "mono16": 2, "32FC1": 4}[encoding]
        assert (msg.height, msg.width, msg.encoding, msg.step) == (h, w, encoding, w * bytes_per_pixel)
        assert msg.header.frame_id == "spike_camera_optical_frame"
        centre = k * stride + window // 2
        first = centre // fpp * fpp
        assert stamps[k] == packet_stamp[first] + round((centre - first) * 1e9 / RATE)
        decoded = CvBridge().imgmsg_to_cv2(msg)
        assert decoded.shape == (h, w)
    assert all(b - a == round(stride * 1e9 / RATE) for a, b in zip(stamps, stamps[1:]))
    assert sorted(stamp_to_ns(i.header.stamp) for i in collector.infos) == stamps


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("executor", ["events", "single_threaded"])
def test_dat_driver_to_tfp_images(executor, nodes, ros_node, tmp_path):
    h, w, n_frames, stride = 64, 96, 600, 50
    rng = np.random.default_rng(0)
    rate_map = np.linspace(0.05, 0.6, w)[None, :] * np.linspace(0.5, 1.0, h)[:, None]
    frames = (rng.random((n_frames, h, w)) < rate_map).astype(np.uint8)
    write_dat(tmp_path / "clip.dat", frames)
    ns = f"dat_{uuid.uuid4().hex[:8]}"
    col = Collector(ros_node, ns)
    nodes.start("spike_reconstructor", ns, {"method": "tfp", "stride_frames": stride, "queue_size": 64, "executor": executor})
    col.wait_for_reconstructor(nodes)
    nodes.start("spike_camera_driver", ns, {
        "source": "dat", "dat_path": str(tmp_path / "clip.dat"), "height": h, "width": w, "frame_rate_hz": RATE,
        "frames_per_packet": 50, "wait_for_subscribers": 2,
    })  # fmt: skip
    expected = (n_frames - 41) // stride + 1  # windows 0, 50, ..., 550
    got = spin_until(ros_node, lambda: len(col.images) >= expected and len(col.infos) >= expected, 40)
    assert got, f"{len(col.images)} of {expected} images\n{nodes.logs()}"
    spin_until(ros_node, lambda: False, 0.5)  # nothing more may come
    assert len(col.packets) == n_frames // 50
    _check_images(col, expected, h, w, "mono8", stride, 41)
    # The node's images are exactly what the core computes offline from the same file.
    stamp0 = stamp_to_ns(col.packets[0].header.stamp)
    _, offline = offline_images(frames, stamp0, EngineConfig(method="tfp"), stride, "mono8")
    for msg, ref in zip(col.images, offline):
        np.testing.assert_array_equal(CvBridge().imgmsg_to_cv2(msg), ref)
    assert col.wait_for_diag(lambda d: d["images_published"] == str(expected)), nodes.logs()
    assert col.diag["input_lost_packets"] == "0" and col.diag["method"] == "tfp"
    assert col.diag["windows_dropped"] == "0" and col.diag["bad_packets"] == "0"


def test_sim_driver_to_tfp_follows_ground_truth(nodes, ros_node):
    h, w, stride, max_frames = 48, 64, 200, 1000
    ns = f"sim_{uuid.uuid4().hex[:8]}"
    col = Collector(ros_node, ns)
    nodes.start("spike_reconstructor", ns, {"method": "tfp", "window_length": 161, "stride_frames": stride,
                                            "output_encoding": "mono16", "queue_size": 16})  # fmt: skip
    col.wait_for_reconstructor(nodes)
    nodes.start("spike_camera_driver", ns, {
        "source": "sim", "height": h, "width": w, "max_frames": max_frames, "frames_per_packet": 100,
        "realtime": False, "wait_for_subscribers": 2, "sim_seed": 5,
    })  # fmt: skip
    expected = (max_frames - 161) // stride + 1
    assert spin_until(ros_node, lambda: len(col.images) >= expected and len(col.infos) >= expected, 60), nodes.logs()
    _check_images(col, expected, h, w, "mono16", stride, 161)
    truth = SimSource(h, w, seed=5)
    for k, msg in enumerate(col.images):
        gt = np.clip(truth.ground_truth(k * stride + 80), 0, 1)
        img = image_msg_to_array(msg)
        assert np.corrcoef(img.ravel(), gt.ravel())[0, 1] > 0.8


def test_sim_driver_to_stir_images(nodes, ros_node, random_stir41_weights):
    h, w, stride, max_frames = 32, 48, 100, 441  # windows 0, 100, 200, 300, 400
    ns = f"stir_{uuid.uuid4().hex[:8]}"
    col = Collector(ros_node, ns)
    nodes.start("spike_reconstructor", ns, {
        "method": "stir", "weights": str(random_stir41_weights), "device": "cpu", "stride_frames": stride,
        "rate_policy": "drop_oldest", "output_encoding": "32FC1", "max_batch": 2, "queue_size": 16,
        "warmup_height": h, "warmup_width": w,
    })  # fmt: skip
    col.wait_for_reconstructor(nodes, timeout=60)
    nodes.start("spike_camera_driver", ns, {
        "source": "sim", "height": h, "width": w, "max_frames": max_frames, "frames_per_packet": 63,
        "realtime": False, "wait_for_subscribers": 2, "sim_seed": 1,
    })  # fmt: skip
    expected = 5
    assert spin_until(ros_node, lambda: len(col.images) >= expected and len(col.infos) >= expected, 90), nodes.logs()
    _check_images(col, expected, h, w, "32FC1", stride, 41)
    frames = np.concatenate([packet_to_frames(p) for p in col.packets])
    config = EngineConfig(method="stir", weights=str(random_stir41_weights), device="cpu")
    _, offline = offline_images(frames, 0, config, stride, "32FC1")
    for msg, ref in zip(col.images, offline):
        img = image_msg_to_array(msg)
        assert 0.0 <= img.min() and img.max() <= 1.0
        np.testing.assert_allclose(img, ref, atol=1e-4)
    assert col.wait_for_diag(lambda d: d["images_published"] == "5"), nodes.logs()
    assert col.diag["method"] == "stir" and col.diag["device"] == "cpu" and col.diag["window_length"] == "41"


def test_bad_input_is_counted_and_the_stream_recovers(nodes, ros_node):
    ns = f"bad_{uuid.uuid4().hex[:8]}"
    col = Collector(ros_node, ns, spikes=False)
    nodes.start(
        "spike_reconstructor", ns, {"method": "tfp", "window_length": 21, "stride_frames": 20, "queue_size": 64},
        extra=("-p", f"qos_overrides./{ns}/spikes.subscription.reliability:=reliable",
               "-p", f"qos_overrides./{ns}/spikes.subscription.depth:=100"),
    )  # fmt: skip
    col.wait_for_reconstructor(nodes)
    pub = ros_node.create_publisher(SpikePacket, f"/{ns}/spikes", RELIABLE)
    assert spin_until(ros_node, lambda: pub.get_subscription_count() >= 1, 20)
    spin_until(ros_node, lambda: False, 0.5)
    back = 10**12 - 10**9  # a stamp one second before the stream's start

    truncated = spike_packet(4, 80)
    truncated.data = truncated.data[:-1]
    bad_values = spike_packet(4, 80, encoding="unpacked_u8")
    bad_values.data = bytes([0, 1, 2]) * (20 * 16 * 24 // 3)  # right length, a 2 among the 0/1 values
    sequence = [
        *[spike_packet(s, 20 * s) for s in range(4)],                        # frames 0-79: windows 0, 20, 40
        truncated,                                                      # payload length
        spike_packet(4, 80, encoding="h264"),                                # unknown encoding
        spike_packet(4, 80, num_frames=0),                                   # num_frames 0
        spike_packet(4, 80, height=4_000_000_000, width=4_000_000_000),      # absurd size, 60-byte payload
        spike_packet(4, 80, frame_rate_hz=0.0),                              # frame rate 0
        bad_values,                                                     # unpacked_u8 value 2
        spike_packet(3, 60),                                                 # duplicate
        *[spike_packet(s, 20 * s) for s in range(6, 10)],                    # seq 4, 5 lost: windows 120, 140, 160
        spike_packet(8, 160),                                                # late (reordered)
        *[spike_packet(s, 20 * s, stamp=back + (s - 10) * 10**6) for s in range(10, 14)],  # stamps back: 200, 220, 240
        *[spike_packet(s, 20 * s, h=8, w=8) for s in range(14, 18)],         # size change: 280, 300, 320
    ]  # fmt: skip
    for msg in sequence:
        pub.publish(msg)
        spin_until(ros_node, lambda: False, 0.02)
    assert spin_until(ros_node, lambda: len(col.images) >= 12, 30), f"{len(col.images)} images\n{nodes.logs()}"
    spin_until(ros_node, lambda: False, 0.3)
    sizes = [(m.height, m.width) for m in col.images]
    assert sizes == [(16, 24)] * 9 + [(8, 8)] * 3
    stamps = [stamp_to_ns(m.header.stamp) for m in col.images]
    centres = [10, 30, 50, 130, 150, 170, None, None, None, 290, 310, 330]
    for stamp, centre in zip(stamps, centres):
        if centre is not None:
            assert stamp == 10**12 + round(centre * 1e9 / RATE)
    assert stamps[6] == back + 10 * 50_000  # centre frame 210, 10 frames into the packet stamped `back`
    expected = {
        "input_lost_packets": "2", "input_duplicates": "1", "input_reordered": "1", "input_stamps_backwards": "1",
        "input_size_changes": "1", "bad_packets": "6", "bad_packets_bad_values": "1", "bad_packets_payload_length": "1",
        "bad_packets_unknown_encoding": "1", "bad_packets_bad_num_frames": "1", "bad_packets_bad_size": "1",
        "bad_packets_bad_frame_rate": "1", "images_published": "12", "inference_errors": "0",
        "packet_handling_errors": "0",
    }  # fmt: skip
    ok = col.wait_for_diag(lambda d: all(d.get(k) == v for k, v in expected.items()))
    assert ok, f"{ {k: col.diag.get(k) for k in expected} }\n{nodes.logs()}"
    assert nodes.procs[0][1].poll() is None  # still running
    log = nodes.logs()
    for needle in ("2 packet(s) lost", "unknown encoding", "duplicate packet", "late packet", "stamp went backwards",
                   "frame size changed", "payload has 959 bytes, expected 960", "values other than 0 and 1"):  # fmt: skip
        assert needle in log


def test_parameters_change_at_run_time_or_are_refused(nodes, ros_node):
    ns = f"param_{uuid.uuid4().hex[:8]}"
    col = Collector(ros_node, ns, spikes=False)
    nodes.start("spike_reconstructor", ns, {"method": "tfp", "window_length": 21, "stride_frames": 40, "queue_size": 64},
                extra=("-p", f"qos_overrides./{ns}/spikes.subscription.reliability:=reliable"))  # fmt: skip
    col.wait_for_reconstructor(nodes)
    refused = {
        "method": "bogus", "stride_frames": 0, "output_encoding": "rgb8", "max_batch": -1,
        "diagnostics_period_s": 2.0, "weights": "/nonexistent/weights.pt",
    }  # fmt: skip
    for name, value in refused.items():
        extra = {"method": "stir"} if name == "weights" else {}
        results = set_parameters(ros_node, ns, **extra, **{name: value})
        assert not results[0].successful, name
        assert results[0].reason, name
    reasons = {n: set_parameters(ros_node, ns, **{n: v})[0].reason for n, v in (("method", "bogus"), ("stride_frames", 0))}
    assert "method" in reasons["method"] and "stride_frames" in reasons["stride_frames"]

    results = set_parameters(ros_node, ns, method="tfi", output_encoding="mono16", stride_frames=20)
    assert all(r.successful for r in results)
    pub = ros_node.create_publisher(SpikePacket, f"/{ns}/spikes", RELIABLE)
    assert spin_until(ros_node, lambda: pub.get_subscription_count() >= 1, 20)
    spin_until(ros_node, lambda: False, 0.5)
    for s in range(5):  # frames 0-99: windows 0, 20, 40, 60 with stride 20
        pub.publish(spike_packet(s, 20 * s))
        spin_until(ros_node, lambda: False, 0.02)
    assert spin_until(ros_node, lambda: len(col.images) >= 4, 20), nodes.logs()
    assert [m.encoding for m in col.images] == ["mono16"] * 4
    assert col.wait_for_diag(lambda d: d["method"] == "tfi" and d["images_published"] == "4")
    assert nodes.procs[0][1].poll() is None

