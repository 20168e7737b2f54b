# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""An even window length, end to end: every image shows the window's centre frame ``T // 2``.

For 41 and 61 frames (what STIR takes) ``T // 2`` and ``(T - 1) // 2`` are the same frame; TFP and
TFI take any length, and for an even one the two differ by a frame. The image of the window that
starts at frame ``s`` shows frame ``s + T // 2`` (README, DESIGN.md; ``stir_ros.core.classical``):
it is stamped with that frame's time, and TFI measures the inter-spike interval around that frame.
The expected images are computed here from that definition, not with the package's code, for the
offline path (``bag reconstruct``) and the live node.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest

from stir_ros.bag.convert import dat_to_bag
from stir_ros.bag.reader import BagReader
from stir_ros.bag.reconstruct import ReconstructOptions, reconstruct_bag
from stir_ros.core.dat import write_dat

T = 40  # even
STRIDE = 20
RATE = 20000.0
NS_PER_FRAME = 50_000  # 1e9 / RATE, exact
ALPHA = 0.6
START = 1_700_000_000_000_000_000


def _reference(window: np.ndarray, method: str, centre: int = T // 2) -> np.ndarray:
    """TFP: spike rate over the window / alpha; TFI: 1 / (alpha x the interval around ``centre``).

    TFI's interval is from the last spike at or before the centre frame (``-1`` if none) to the
    first spike after it (``T`` if none). Clipped to [0, 1] as images are.
    """
    if method == "tfp":
        est = window.mean(axis=0) / ALPHA
    else:
        est = np.empty(window.shape[1:], np.float64)
        for y, x in np.ndindex(*window.shape[1:]):
            fired = np.flatnonzero(window[:, y, x])
            before, after = fired[fired <= centre], fired[fired > centre]
            left = before[-1] if before.size else -1
            right = after[0] if after.size else len(window)
            est[y, x] = 1.0 / (ALPHA * (right - left))
    return np.clip(est, 0.0, 1.0).astype(np.float32)


def _expected(frames: np.ndarray, method: str, start_ns: int) -> dict[int, np.ndarray]:
    """Image of every window on the stride grid, by the time of its centre frame."""
    out = {}
    for s in range(0, len(frames) - T + 1, STRIDE):
        out[start_ns + (s + T // 2) * NS_PER_FRAME] = _reference(frames[s : s + T], method)
    return out


def _frames(n: int, h: int, w: int, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((n, h, w)) < rng.random((1, h, w)) * 0.5).astype(np.uint8)


def test_the_data_tells_the_two_centres_apart():
    """Frame T // 2 and frame (T - 1) // 2 give different TFI images here (else the tests below prove nothing)."""
    window = _frames(T, 16, 24)
    assert not np.allclose(_reference(window, "tfi"), _reference(window, "tfi", centre=(T - 1) // 2))


def _image_array(msg) -> np.ndarray:
    assert msg.encoding == "32FC1"
    return np.frombuffer(bytes(msg.data), np.float32).reshape(msg.height, msg.width)


@pytest.mark.parametrize("method", ["tfp", "tfi"])
def test_offline_images_show_the_centre_frame(tmp_path: Path, method: str) -> None:
    frames = _frames(200, 16, 24)
    write_dat(tmp_path / "a.dat", frames)
    dat_to_bag(tmp_path / "a.dat", tmp_path / "in", 16, 24, RATE, frames_per_packet=30, start_ns=START)
    options = ReconstructOptions(method=method, window_length=T, stride_frames=STRIDE, output_encoding="32FC1",
                                 device="cpu")  # fmt: skip
    result = reconstruct_bag(tmp_path / "in", tmp_path / "out", options)
    expected = _expected(frames, method, START)
    assert result.window_length == T and result.images == len(expected) == 9
    got = {}
    with BagReader(tmp_path / "out") as bag:
        for m in bag.messages(["/image"]):
            msg = bag.deserialize(m)
            got[int(msg.header.stamp.sec) * 10**9 + int(msg.header.stamp.nanosec)] = _image_array(msg)
    assert sorted(got) == sorted(expected), "images are not stamped at their window's centre frame T // 2"
    for stamp, image in expected.items():
        np.testing.assert_allclose(got[stamp], image, rtol=1e-6, atol=1e-7, err_msg=f"image at {stamp}")


@pytest.mark.ros
@pytest.mark.slow
@pytest.mark.parametrize("method", ["tfp", "tfi"])
def test_live_node_images_show_the_centre_frame(method: str, nodes, ros_node) -> None:
    pytest.importorskip("rclpy")
    from ros_support import RELIABLE, Collector, spike_packet, spin_until

    from stir_ros.msg import SpikePacket
    from stir_ros.ros.conversions import packet_to_frames, stamp_to_ns

    ns = f"even_{uuid.uuid4().hex[:8]}"
    col = Collector(ros_node, ns, spikes=False)
    nodes.start(
        "spike_reconstructor", ns,
        {"method": method, "window_length": T, "stride_frames": STRIDE, "output_encoding": "32FC1",
         "queue_size": 64, "alpha": ALPHA},
        extra=("-p", f"qos_overrides./{ns}/spikes.subscription.reliability:=reliable",
               "-p", f"qos_overrides./{ns}/spikes.subscription.depth:=100"),
    )  # fmt: skip
    col.wait_for_reconstructor(nodes)
    pub = ros_node.create_publisher(SpikePacket, f"/{ns}/spikes", RELIABLE)
    assert spin_until(ros_node, lambda: pub.get_subscription_count() >= 1, 20)
    spin_until(ros_node, lambda: False, 0.5)
    packets = [spike_packet(seq, 20 * seq) for seq in range(6)]  # frames 0-119: windows 0, 20, ..., 80
    for msg in packets:
        pub.publish(msg)
        spin_until(ros_node, lambda: False, 0.02)
    frames = np.concatenate([packet_to_frames(p) for p in packets])
    expected = _expected(frames, method, stamp_to_ns(packets[0].header.stamp))
    assert len(expected) == 5
    assert spin_until(ros_node, lambda: len(col.images) >= len(expected), 30), f"{len(col.images)} images\n{nodes.logs()}"
    spin_until(ros_node, lambda: False, 0.3)  # nothing more may come
    got = {stamp_to_ns(m.header.stamp): _image_array(m) for m in col.images}
    assert sorted(got) == sorted(expected), "images are not stamped at their window's centre frame T // 2"
    for stamp, image in expected.items():
        np.testing.assert_allclose(got[stamp], image, rtol=1e-6, atol=1e-7, err_msg=f"image at {stamp}")
