# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Message <-> numpy conversions (stir_ros.ros.conversions)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("rclpy")

from cv_bridge import CvBridge  # noqa: E402
from rclpy.serialization import deserialize_message, serialize_message  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from stir_ros.core.errors import ConfigError, PacketError  # noqa: E402
from stir_ros.core.packing import ENCODING_UNPACKED_U8, ENCODING_VIDAR_BITPACKED  # noqa: E402
from stir_ros.msg import SpikePacket  # noqa: E402
from stir_ros.ros.conversions import (  # noqa: E402
    camera_info_from_file,
    default_camera_info,
    diagnostic_status,
    frames_to_packet,
    image_msg_to_array,
    image_to_msg,
    ns_to_stamp,
    packet_header,
    packet_payload,
    packet_to_frames,
    restamp_camera_info,
    stamp_to_ns,
)

pytestmark = pytest.mark.ros


def _frames(n, h, w, seed=0):
    return (np.random.default_rng(seed).random((n, h, w)) < 0.3).astype(np.uint8)


def test_stamps_round_trip():
    for ns in (0, 1, 999_999_999, 1_000_000_000, 1_795_000_000_123_456_789):
        stamp = ns_to_stamp(ns)
        assert stamp_to_ns(stamp) == ns
        assert 0 <= stamp.nanosec < 1_000_000_000


@pytest.mark.parametrize("encoding", [ENCODING_VIDAR_BITPACKED, ENCODING_UNPACKED_U8])
@pytest.mark.parametrize(("n", "h", "w"), [(1, 1, 1), (3, 5, 7), (4, 250, 400), (2, 13, 3)])
def test_packet_round_trip_through_serialization(encoding, n, h, w):
    frames = _frames(n, h, w)
    msg = frames_to_packet(
        frames, seq=7, first_frame_index=123, frame_rate_hz=40000.0, stamp_ns=5_000_000_007,
        frame_id="cam", encoding=encoding,
    )  # fmt: skip
    wire = deserialize_message(serialize_message(msg), SpikePacket)
    np.testing.assert_array_equal(packet_to_frames(wire), frames)
    hdr = packet_header(wire)
    assert (hdr.seq, hdr.first_frame_index, hdr.num_frames, hdr.height, hdr.width) == (7, 123, n, h, w)
    assert (hdr.encoding, hdr.stamp_ns, hdr.frame_rate_hz) == (encoding, 5_000_000_007, 40000.0)
    assert wire.header.frame_id == "cam"
    expected_len = n * ((h * w + 7) // 8) if encoding == ENCODING_VIDAR_BITPACKED else n * h * w
    assert len(wire.data) == expected_len


def test_payload_is_viewed_without_copy():
    msg = frames_to_packet(_frames(2, 8, 8), seq=0, first_frame_index=0, frame_rate_hz=1.0, stamp_ns=0)
    view = packet_payload(msg)
    msg.data[0] = 0xAB
    assert view[0] == 0xAB


def test_bad_packets_raise_packet_error():
    msg = frames_to_packet(_frames(2, 8, 8), seq=0, first_frame_index=0, frame_rate_hz=1.0, stamp_ns=0)
    msg.num_frames = 3
    with pytest.raises(PacketError, match="expected"):
        packet_to_frames(msg)
    msg.num_frames, msg.encoding = 2, "jpeg"
    with pytest.raises(PacketError, match="unknown encoding"):
        packet_to_frames(msg)
    msg.encoding, msg.height, msg.width = ENCODING_VIDAR_BITPACKED, 4_000_000_000, 4_000_000_000
    with pytest.raises(PacketError):
        packet_to_frames(msg)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    h=st.integers(0, 2**32 - 1), w=st.integers(0, 2**32 - 1), n=st.integers(0, 2**32 - 1),
    encoding=st.sampled_from([ENCODING_VIDAR_BITPACKED, ENCODING_UNPACKED_U8, "", "x"]),
    data=st.binary(max_size=64),
)  # fmt: skip
def test_fuzzed_headers_decode_or_raise_packet_error(h, w, n, encoding, data):
    msg = SpikePacket(height=h, width=w, num_frames=n, encoding=encoding)
    msg.data = data
    try:
        frames = packet_to_frames(msg)
    except PacketError:
        return
    assert frames.shape == (n, h, w)


@pytest.mark.parametrize("encoding", ["mono8", "mono16", "32FC1"])
@pytest.mark.parametrize(("h", "w"), [(1, 1), (7, 13), (64, 96)])
def test_image_round_trip_and_cv_bridge(encoding, h, w):
    img = np.random.default_rng(2).random((h, w), dtype=np.float32)
    msg = image_to_msg(img, encoding, 1_500_000_000_250, "cam_optical")
    wire = deserialize_message(serialize_message(msg), Image)
    assert (wire.height, wire.width, wire.encoding, wire.is_bigendian) == (h, w, encoding, 0)
    assert stamp_to_ns(wire.header.stamp) == 1_500_000_000_250 and wire.header.frame_id == "cam_optical"
    tol = {"mono8": 0.5 / 255, "mono16": 0.5 / 65535, "32FC1": 0.0}[encoding]
    np.testing.assert_allclose(image_msg_to_array(wire), img, atol=tol + 1e-7)
    decoded = CvBridge().imgmsg_to_cv2(wire)  # what a cv_bridge user gets
    scale = {"mono8": 255.0, "mono16": 65535.0, "32FC1": 1.0}[encoding]
    assert decoded.shape == (h, w)
    np.testing.assert_allclose(decoded.astype(np.float64) / scale, img, atol=tol + 1e-7)


CALIBRATION = """\
image_width: 400
image_height: 250
camera_name: spike_camera
camera_matrix:
  rows: 3
  cols: 3
  data: [500.0, 0.0, 200.0, 0.0, 500.0, 125.0, 0.0, 0.0, 1.0]
distortion_model: plumb_bob
distortion_coefficients:
  rows: 1
  cols: 5
  data: [-0.1, 0.01, 0.0, 0.0, 0.0]
rectification_matrix:
  rows: 3
  cols: 3
  data: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
projection_matrix:
  rows: 3
  cols: 4
  data: [500.0, 0.0, 200.0, 0.0, 0.0, 500.0, 125.0, 0.0, 0.0, 0.0, 1.0, 0.0]
"""


def test_camera_info_from_calibration_file(tmp_path):
    path = tmp_path / "calib.yaml"
    path.write_text(CALIBRATION)
    for url in (f"file://{path}", str(path)):
        info = camera_info_from_file(url, frame_id="cam")
        assert (info.width, info.height, info.header.frame_id) == (400, 250, "cam")
        assert list(info.k) == [500.0, 0.0, 200.0, 0.0, 500.0, 125.0, 0.0, 0.0, 1.0]
        assert list(info.d) == [-0.1, 0.01, 0.0, 0.0, 0.0]
        assert info.p[2] == 200.0 and info.distortion_model == "plumb_bob"


def test_camera_info_errors(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        camera_info_from_file(f"file://{tmp_path}/missing.yaml")
    (tmp_path / "bad.yaml").write_text("camera_matrix: {data: [1, 2]}\nimage_width: 1\nimage_height: 1\n")
    with pytest.raises(ConfigError, match="camera_matrix"):
        camera_info_from_file(str(tmp_path / "bad.yaml"))
    with pytest.raises(ConfigError, match="file://"):
        camera_info_from_file("http://example.com/calib.yaml")


def test_default_and_restamped_camera_info():
    info = default_camera_info(250, 400, "cam", 5)
    assert (info.height, info.width, stamp_to_ns(info.header.stamp)) == (250, 400, 5)
    assert list(info.k) == [0.0] * 9  # uncalibrated
    again = restamp_camera_info(info, 10**9 + 3, "other")
    assert stamp_to_ns(again.header.stamp) == 10**9 + 3 and again.header.frame_id == "other"
    assert stamp_to_ns(info.header.stamp) == 5  # the original is untouched


def test_diagnostic_status():
    status = diagnostic_status("n: x", "hw", "warn", "counted", {"lost": 3, "rate": 1.0 / 3, "device": "cpu"})
    assert status.level == b"\x01" and status.name == "n: x"
    assert {kv.key: kv.value for kv in status.values} == {"lost": "3", "rate": "0.333333", "device": "cpu"}
