# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The reconstructor against an adversary on the ROS graph, in separate processes over DDS (issue 11).

Any node may publish packets and set parameters: what used to kill the node, silence it for good
or grow it without bound is sent here from this process to a real ``spike_reconstructor`` started
the way a user starts it (helpers of ``test_ros_pipeline.py``). Each test checks that the node is
alive, that images resume, and the counter or refusal. Also: parameter descriptors with ranges
(``describe_parameters``), ``image/compressed`` and camera_info beside a remapped image topic, a
clean stop while reconstructing, and the one-line weights refusals of the command-line tools.
"""

from __future__ import annotations

import math
import signal
import subprocess
import uuid
import zipfile
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
torch = pytest.importorskip("torch")

from rcl_interfaces.msg import ParameterType  # noqa: E402
from rcl_interfaces.srv import DescribeParameters  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image  # noqa: E402
from ros_support import RELIABLE, Collector, call_service, get_parameters, set_parameters, spike_packet, spin_until  # noqa: E402

from stir_ros.engine import default_weights_path  # noqa: E402
from stir_ros.msg import SpikePacket  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow]

TFP = {"method": "tfp", "window_length": 21, "stride_frames": 20, "queue_size": 64}


def _publisher(ros_node, topic: str):
    pub = ros_node.create_publisher(SpikePacket, topic, RELIABLE)
    assert spin_until(ros_node, lambda: pub.get_subscription_count() >= 1, 20)
    spin_until(ros_node, lambda: False, 0.5)
    return pub


def _send(ros_node, pub, packets) -> None:
    for msg in packets:
        pub.publish(msg)
        spin_until(ros_node, lambda: False, 0.02)


@pytest.fixture(scope="module")
def bad_weights(tmp_path_factory) -> dict[str, Path]:
    """Weights files that are not STIR checkpoints, each of a different kind."""
    d = tmp_path_factory.mktemp("bad_weights")
    files = {
        "text": (d / "bad.pt", b"bad\n"),  # echo bad > bad.pt
        "random": (d / "random.pt", np.random.default_rng(0).bytes(100_000)),
        "html": (d / "page.pt", b"<!DOCTYPE html><html><body>404 Not Found</body></html>\n"),
        "truncated": (d / "truncated.pt", default_weights_path().read_bytes()[:3_000_000]),
    }
    out = {}
    for kind, (path, data) in files.items():
        path.write_bytes(data)
        out[kind] = path
    bomb = d / "bomb.pt"  # 1 MB deflated, 1 GiB inflated
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("archive/data.pkl", b"\0" * (1 << 30))
    out["bomb"] = bomb
    other = d / "other.pt"  # a real torch file of another kind
    torch.save({"weight": torch.zeros(3, 3)}, other)
    out["other"] = other
    return out


EXPECTED = {
    "text": "is not a torch file: it is a text file",
    "random": "is not a torch file: it is unknown binary data",
    "html": "is not a torch file: it is an HTML/XML page",
    "truncated": "is truncated or corrupt",
    "bomb": "is too large: it would inflate to 1073741824 bytes",
    "other": "is not a stir_ros checkpoint",
}


# --------------------------------------------------------------------------- 1. logging in callbacks


def test_warnings_and_errors_in_any_order_never_stop_the_node(nodes, ros_node):
    ns = f"advlog_{uuid.uuid4().hex[:8]}"
    col = Collector(ros_node, ns, spikes=False)
    # A seq gap (a warning), then packets whose frame rate used to pass the check and reach the stride
    # arithmetic (an error from the call site that had just logged a warning: the node exited).
    proc = nodes.start("spike_reconstructor", ns, {**TFP, "output_rate_hz": 1000.0})
    col.wait_for_reconstructor(nodes)
    pub = _publisher(ros_node, f"/{ns}/spikes")
    _send(ros_node, pub, [
        *[spike_packet(s, 20 * s) for s in range(4)],                      # windows 0, 20, 40
        spike_packet(6, 120),                                              # seq gap: a warning
        spike_packet(7, 140, frame_rate_hz=1e308),                         # then what used to raise
        spike_packet(8, 160, frame_rate_hz=math.inf),
        *[spike_packet(s, 20 * s) for s in range(9, 13)],                  # windows 180, 200, 220
    ])  # fmt: skip
    assert spin_until(ros_node, lambda: len(col.images) >= 6, 30), nodes.logs()
    assert proc.poll() is None
    assert col.wait_for_diag(lambda d: d.get("bad_packets_bad_frame_rate") == "2" and d["images_published"] == "6")
    # seq 4, 5 never sent; 7, 8 rejected before the stream bookkeeping: 4 lost.
    assert col.diag["packet_handling_errors"] == "0" and col.diag["input_lost_packets"] == "4"
    log = nodes.logs()
    assert "2 packet(s) lost" in log and "frame_rate_hz must be a number in 0.001..1e+06 Hz, got 1e+308" in log
    assert "Logger severity" not in log


# --------------------------------------------------------------------------- 2. bounds


def test_unbounded_parameters_are_refused_at_run_time_and_at_start(nodes, ros_node):
    ns = f"advbound_{uuid.uuid4().hex[:8]}"
    col = Collector(ros_node, ns, spikes=False)
    proc = nodes.start("spike_reconstructor", ns, TFP)
    col.wait_for_reconstructor(nodes)
    refused = [
        ("output_rate_hz", math.inf), ("output_rate_hz", math.nan), ("output_rate_hz", 1e308),
        ("window_length", 1_000_000), ("queue_size", 10**12), ("max_batch", 10**9), ("alpha", math.nan),
        ("stride_frames", 10**12), ("jpeg_quality", 1000), ("stall_timeout_s", math.inf),
    ]  # fmt: skip
    for name, value in refused:
        (result,) = set_parameters(ros_node, ns, **{name: value})
        assert not result.successful, (name, value)
        assert name in result.reason or "out of range" in result.reason, (name, result.reason)
    # Still the old settings, still reconstructing.
    pub = _publisher(ros_node, f"/{ns}/spikes")
    _send(ros_node, pub, [spike_packet(s, 20 * s) for s in range(4)])
    assert spin_until(ros_node, lambda: len(col.images) >= 3, 30), nodes.logs()
    assert proc.poll() is None

    for name, value in (("window_length", 1_000_000), ("queue_size", 10**12), ("output_rate_hz", math.inf)):
        bad = nodes.start("spike_reconstructor", f"{ns}_start_{name}", {**TFP, name: value})
        assert bad.wait(timeout=60) == 1
    # The driver's parameters have ranges too (its descriptors): a 1e308 Hz sensor does not start.
    for name, value in (("frame_rate_hz", 1e308), ("height", 100_000), ("frames_per_packet", 0)):
        bad = nodes.start("spike_camera_driver", f"{ns}_drv_{name}", {"source": "sim", name: value})
        assert bad.wait(timeout=60) == 1
    log = nodes.logs()
    assert log.count("cannot start") >= 6 and "Traceback" not in log


def test_parameter_descriptors_carry_ranges(nodes, ros_node, tmp_path):
    ns = f"advdesc_{uuid.uuid4().hex[:8]}"
    col = Collector(ros_node, ns, spikes=True)
    nodes.start("spike_reconstructor", ns, TFP)
    nodes.start("spike_camera_driver", ns, {"source": "sim", "height": 16, "width": 24, "max_frames": 0})
    col.wait_for_reconstructor(nodes)

    def describe(node_name: str, names: list[str]):
        client = ros_node.create_client(DescribeParameters, f"/{ns}/{node_name}/describe_parameters")
        try:
            response = call_service(ros_node, client, DescribeParameters.Request(names=names), timeout=20)
            return {d.name: d for d in response.descriptors}
        finally:
            ros_node.destroy_client(client)

    rec = describe("spike_reconstructor", ["queue_size", "max_batch", "window_length", "output_rate_hz", "alpha"])
    assert (rec["queue_size"].integer_range[0].from_value, rec["queue_size"].integer_range[0].to_value) == (1, 256)
    assert rec["max_batch"].integer_range[0].to_value == 64 and rec["window_length"].integer_range[0].to_value == 1024
    assert rec["output_rate_hz"].floating_point_range[0].to_value == 10_000.0
    assert rec["output_rate_hz"].type == ParameterType.PARAMETER_DOUBLE and "range" in rec["alpha"].additional_constraints
    drv = describe("spike_camera_driver", ["frame_rate_hz", "height", "frames_per_packet"])
    assert drv["frame_rate_hz"].floating_point_range[0].to_value == 1e6
    assert drv["height"].integer_range[0].to_value == 4096 and drv["frames_per_packet"].integer_range[0].from_value == 1


# --------------------------------------------------------------------------- 3. weights


def test_bad_weights_are_one_line_at_start_and_refused_at_run_time(nodes, ros_node, bad_weights):
    ns = f"advw_{uuid.uuid4().hex[:8]}"
    start = nodes.start("spike_reconstructor", f"{ns}_start", {"method": "stir", "device": "cpu",
                                                                 "weights": str(bad_weights["text"])})  # fmt: skip
    assert start.wait(timeout=60) == 1
    log = nodes.logs()
    assert f"cannot start: {bad_weights['text']} is not a torch file: it is a text file" in log
    assert "Traceback" not in log and "IndexError" not in log

    col = Collector(ros_node, ns, spikes=False)
    proc = nodes.start("spike_reconstructor", ns, TFP)
    col.wait_for_reconstructor(nodes)
    failures = 0
    for kind, path in bad_weights.items():
        # Checked while the method is tfp, and when switching to stir with it.
        for extra in ({}, {"method": "stir"}):
            (result, *_) = set_parameters(ros_node, ns, weights=str(path), **extra)
            if kind == "other":  # a torch file: only reading it (on the loader thread) tells, and it is set back
                assert result.successful, result.reason
                failures += 1
                assert col.wait_for_diag(lambda d, n=failures: d["parameter_load_failures"] == str(n)), col.diag
                assert str(path) in col.diag["last_parameter_error"] and EXPECTED[kind] in col.diag["last_parameter_error"]
                assert get_parameters(ros_node, ns, "weights", "method") == ["", "tfp"]
                continue
            assert not result.successful, (kind, extra)
            assert str(path) in result.reason and EXPECTED[kind] in result.reason, (kind, result.reason)
    (result,) = set_parameters(ros_node, ns, weights="/nonexistent/weights.pt")
    assert not result.successful and "not found" in result.reason
    pub = _publisher(ros_node, f"/{ns}/spikes")
    _send(ros_node, pub, [spike_packet(s, 20 * s) for s in range(4)])
    assert spin_until(ros_node, lambda: len(col.images) >= 3, 30), nodes.logs()
    assert proc.poll() is None and col.wait_for_diag(lambda d: d["method"] == "tfp")
    assert "FATAL" not in nodes.logs() and "Traceback" not in nodes.logs()


@pytest.mark.parametrize(
    "command",
    [
        ["bag", "reconstruct", "--weights", "{w}", "missing_input_bag", "{tmp}/out"],
        ["eval", "--weights", "{w}", "{tmp}"],
        ["train", "--out", "{tmp}/train", "--init-weights", "{w}", "--steps", "1"],
    ],
    ids=["bag_reconstruct", "eval", "train_init_weights"],
)
@pytest.mark.parametrize("kind", ["text", "html", "bomb", "truncated"])
def test_command_line_tools_refuse_bad_weights_in_one_line(ros_env, bad_weights, tmp_path, command, kind):
    args = [a.format(w=bad_weights[kind], tmp=tmp_path) for a in command]
    done = subprocess.run(["stir-ros", *args], env=ros_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad_weights[kind]) in lines[0] and EXPECTED[kind] in lines[0], done.stderr


# --------------------------------------------------------------------------- issue 17: topics, compressed, stop


def test_compressed_png_and_camera_info_beside_a_remapped_image_topic(nodes, ros_node):
    import cv2

    ns = f"advcomp_{uuid.uuid4().hex[:8]}"
    cam = f"/{ns}_cam"
    images: list[Image] = []
    infos: list[CameraInfo] = []
    compressed: list[CompressedImage] = []
    image_sub = ros_node.create_subscription(Image, f"{cam}/image_raw", images.append, RELIABLE)
    ros_node.create_subscription(CameraInfo, f"{cam}/camera_info", infos.append, RELIABLE)
    ros_node.create_subscription(CompressedImage, f"{cam}/image_raw/compressed", compressed.append, RELIABLE)
    nodes.start("spike_reconstructor", ns, {**TFP, "compressed_format": "png"},
                extra=("-r", f"image:={cam}/image_raw", "-r", f"spikes:={cam}/spikes"))  # fmt: skip
    assert spin_until(ros_node, lambda: image_sub.get_publisher_count() >= 1, 40), nodes.logs()
    # The camera's calibration, beside the remapped spikes topic (where the driver publishes it).
    info_pub = ros_node.create_publisher(CameraInfo, f"{cam}/spikes/camera_info", qos_profile_sensor_data)
    calib = CameraInfo(height=16, width=24, k=[100.0, 0.0, 12.0, 0.0, 100.0, 8.0, 0.0, 0.0, 1.0])
    assert spin_until(ros_node, lambda: info_pub.get_subscription_count() >= 1, 20)
    for _ in range(5):
        info_pub.publish(calib)
        spin_until(ros_node, lambda: False, 0.05)
    pub = _publisher(ros_node, f"{cam}/spikes")
    _send(ros_node, pub, [spike_packet(s, 20 * s) for s in range(5)])
    ok = spin_until(ros_node, lambda: len(images) >= 4 and len(compressed) >= 4 and len(infos) >= 4, 30)
    assert ok, f"{len(images)} {len(compressed)} {len(infos)}\n{nodes.logs()}"
    for raw, comp in zip(images, compressed):
        assert comp.header.stamp == raw.header.stamp and comp.format == "mono8; png compressed mono8"
        decoded = cv2.imdecode(np.frombuffer(bytes(comp.data), np.uint8), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(decoded, np.frombuffer(bytes(raw.data), np.uint8).reshape(raw.height, raw.width))
    assert list(infos[-1].k) == list(calib.k)
    # Nothing left at the old, un-remapped names.
    names = dict(ros_node.get_topic_names_and_types())
    assert f"/{ns}/camera_info" not in names and f"/{ns}/image" not in names


def test_stop_while_reconstructing_logs_nothing_alarming(nodes, ros_node):
    # Two cameras, as in a two-camera run: both stopped at once while STIR reconstructs on a CPU.
    base = f"advstop_{uuid.uuid4().hex[:8]}"
    cams = [f"{base}_a", f"{base}_b"]
    cols = {ns: Collector(ros_node, ns, spikes=False) for ns in cams}
    params = {"method": "stir", "device": "cpu", "stride_frames": 41, "queue_size": 16, "max_batch": 1,
              "rate_policy": "drop_oldest"}  # windows wait in the queue when SIGINT comes
    procs = {ns: nodes.start("spike_reconstructor", ns, params) for ns in cams}
    for ns in cams:
        cols[ns].wait_for_reconstructor(nodes, timeout=90)
    pubs = {ns: _publisher(ros_node, f"/{ns}/spikes") for ns in cams}
    # 64x96 frames: 15 windows of 41 frames wait in each; SIGINT comes after the first images, mid-queue.
    for s in range(16):
        for ns in cams:
            pubs[ns].publish(spike_packet(s, 41 * s, n=41, h=64, w=96))
        spin_until(ros_node, lambda: False, 0.02)
    assert spin_until(ros_node, lambda: all(len(c.images) >= 1 for c in cols.values()), 180), nodes.logs()
    for proc in procs.values():
        proc.send_signal(signal.SIGINT)
    for proc in procs.values():
        assert proc.wait(timeout=30) == 0
    log = nodes.logs()
    assert log.count("inference sustains about") == 2 and "images/s" in log  # what to expect, measured at warm-up
    for alarming in ("Traceback", "Failed to publish", "context is invalid", "ERROR", "FATAL", "Exception"):
        assert alarming not in log, log
