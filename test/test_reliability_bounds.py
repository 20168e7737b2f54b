# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Bounds, logging and the worker thread of the reconstructor, in this process (issue 11).

A real :class:`SpikeReconstructor` (real rclpy node, real engine) is fed through its spikes
callback and ``set_parameters`` (rclpy's own path: descriptor ranges, then the node's callback), as
``test_reliability_fuzz.py`` does. Faults that nothing outside the node can cause any more (an
inference error, a dead worker thread) are injected into the real engine or thread here; the
multi-process cases are in ``test_reliability_adversary.py``.
"""

from __future__ import annotations

import math
import os
import sys
import time
import uuid
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

rclpy = pytest.importorskip("rclpy")

from rclpy.parameter import Parameter  # noqa: E402

from stir_ros.core.errors import ConfigError, PacketError  # noqa: E402
from stir_ros.core.limits import (  # noqa: E402
    MAX_FRAME_RATE_HZ,
    MAX_PACKET_BYTES,
    MAX_WINDOW_BYTES,
    PARAMETER_BOUNDS,
    batch_limit,
    reconstructor_memory_bound,
)
from stir_ros.core.packing import ENCODING_UNPACKED_U8, ENCODING_VIDAR_BITPACKED  # noqa: E402
from stir_ros.core.packet import PacketHeader, validate_packet  # noqa: E402
from stir_ros.core.stream import stride_for_rate  # noqa: E402
from stir_ros.ros import RateLimitedLog  # noqa: E402
from stir_ros.ros.conversions import frames_to_packet  # noqa: E402
from stir_ros.ros.reconstructor_node import ReconstructorSettings, SpikeReconstructor  # noqa: E402

pytestmark = pytest.mark.ros

BASE = {"method": "tfp", "window_length": 5, "stride_frames": 3, "queue_size": 8, "max_batch": 4,
        "output_rate_hz": 0.0, "alpha": 0.6}  # fmt: skip


@pytest.fixture(scope="module")
def ros():
    rclpy.init()
    try:
        yield
    finally:
        rclpy.try_shutdown()


def _node(**params: Any) -> SpikeReconstructor:
    values = {**BASE, **params}
    return SpikeReconstructor(namespace=f"/bounds_{uuid.uuid4().hex[:8]}",
                              parameter_overrides=[Parameter(k, value=v) for k, v in values.items()])  # fmt: skip


@pytest.fixture()
def node(ros):
    n = _node(stall_timeout_s=0.2)
    try:
        yield n
    finally:
        n.stop()
        n.destroy_node()


class Stream:
    """Consecutive good packets of one stream (seq, frame index and stamp advance)."""

    def __init__(self, h: int = 4, w: int = 6, n: int = 10, first: int = 0) -> None:
        self.h, self.w, self.n = h, w, n
        self.seq, self.first, self.stamp = 0, first, 10**15 + first * 50_000

    def packet(self, **fields: Any):
        frames = (np.random.default_rng(self.seq).random((self.n, self.h, self.w)) < 0.4).astype(np.uint8)
        msg = frames_to_packet(frames, seq=self.seq, first_frame_index=self.first, frame_rate_hz=20000.0,
                               stamp_ns=self.stamp)  # fmt: skip
        self.seq, self.first, self.stamp = self.seq + 1, self.first + self.n, self.stamp + self.n * 50_000
        for k, v in fields.items():
            setattr(msg, k, v)
        return msg


def _drain(node: SpikeReconstructor, timeout: float = 20.0) -> None:
    """Wait until the worker has handled every window cut so far."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if node.worker.idle():
            return
        time.sleep(0.005)


def _wait(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


# --------------------------------------------------------------------------- 1. logging


def test_rate_limited_log_mixes_severities_from_one_helper(ros):
    n = rclpy.create_node(f"logmix_{uuid.uuid4().hex[:8]}")
    try:
        log = RateLimitedLog(period_s=0.0)
        logger = n.get_logger()
        # rclpy raises 'Logger severity cannot be changed between calls' when one call site logs
        # two severities: the helper must call each severity from a line of its own.
        for fn in (logger.warning, logger.error, logger.warning, logger.info, logger.error, logger.debug):
            assert log(fn, "kind", "message")
    finally:
        n.destroy_node()


def test_worker_survives_a_rejected_packet_then_an_inference_error(node, monkeypatch):
    s = Stream()
    node._on_spikes(s.packet(encoding="h264"))  # rejected: a warning from the worker's log helper
    real = node.engine.reconstruct
    calls = {"n": 0}

    def fails_once(windows, starts=None):  # the engine's signature: the batch path passes starts
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("injected: what torch raises on a bad kernel")
        return real(windows, starts=starts)

    monkeypatch.setattr(node.engine, "reconstruct", fails_once)
    for _ in range(3):
        node._on_spikes(s.packet())
    assert _wait(lambda: node.errors["inference"] == 1)
    node._on_spikes(s.packet(encoding="h264"))  # a warning again, after the error
    for _ in range(3):
        node._on_spikes(s.packet())
    _drain(node)
    assert node.worker.alive
    assert node.images_published >= 5, node.diagnostics_values()
    assert node.bad_packets["unknown_encoding"] == 2 and node.errors["worker"] == 0


def test_error_then_warning_in_the_packet_callback_loses_nothing(node, monkeypatch):
    s = Stream()
    node._on_spikes(s.packet())
    real = node._handle_packet

    def raises_once(msg, received):
        monkeypatch.setattr(node, "_handle_packet", real)
        raise OverflowError("injected: an arithmetic error in the packet handler")

    monkeypatch.setattr(node, "_handle_packet", raises_once)
    node._on_spikes(s.packet())  # an error logged from the callback
    node._on_spikes(s.packet(encoding="h264"))  # then a warning: logged, not raised
    good = [s.packet() for _ in range(3)]
    for msg in good:
        node._on_spikes(msg)
    _drain(node)
    assert node.errors["packet_handling"] == 1 and node.bad_packets["unknown_encoding"] == 1
    assert node.images_published >= 1


class _ThreadEnds(BaseException):
    pass


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_dead_worker_is_restarted_and_reported(node, monkeypatch):
    real = node.worker._take_batch

    def dies_once():
        monkeypatch.setattr(node.worker, "_take_batch", real)
        raise _ThreadEnds("injected: an exception that no 'except Exception' catches")

    monkeypatch.setattr(node.worker, "_take_batch", dies_once)
    s = Stream()
    node._on_spikes(s.packet())  # the worker takes this batch, then calls the patched _take_batch
    assert _wait(lambda: not node.worker.alive, 10)
    assert node.health()[2]["worker_alive"] is False
    node._check_worker()  # what the diagnostics timer does every period
    assert node.worker_restarts == 1 and node.worker.alive
    for _ in range(3):
        node._on_spikes(s.packet())
    _drain(node)
    assert node.images_published >= 1
    level, message, values = node.health()
    assert level == "warn" and "worker_restarts" in message and values["worker_restarts"] == 1


def test_stall_goes_to_error_and_clears_when_images_resume(node, monkeypatch):
    def always_fails(windows, starts=None):
        raise RuntimeError("injected: inference keeps failing")

    real = node.engine.reconstruct
    s = Stream()
    node._on_spikes(s.packet())
    _drain(node)
    published = node.images_published
    assert published >= 1 and node.health()[0] == "ok"
    monkeypatch.setattr(node.engine, "reconstruct", always_fails)
    # Packets keep coming, windows are cut, no image comes out: ERROR after stall_timeout_s (0.2 s).
    assert _wait(lambda: (node._on_spikes(s.packet()), node.health())[1][0] == "error", 10)
    level, message, _ = node.health()
    assert "no image for" in message and "stall_timeout_s 0.2" in message
    monkeypatch.setattr(node.engine, "reconstruct", real)
    node._on_spikes(s.packet())
    _drain(node)
    assert node.images_published > published
    assert node.health()[0] != "error"


# --------------------------------------------------------------------------- 2. bounds

BAD_SETTINGS = [
    ("window_length", 1_000_000), ("window_length", -1), ("queue_size", 10**12), ("queue_size", 0),
    ("max_batch", 10**9), ("output_rate_hz", math.inf), ("output_rate_hz", math.nan), ("output_rate_hz", 1e308),
    ("output_rate_hz", -1.0), ("output_rate_hz", 1e-9), ("alpha", math.nan), ("alpha", math.inf), ("alpha", 0.0),
    ("diagnostics_period_s", math.inf), ("stall_timeout_s", math.nan), ("jpeg_quality", 0), ("jpeg_quality", 101),
    ("warmup_height", 10**6), ("stride_frames", 0), ("stride_frames", 10**12), ("compressed_format", "gif"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "value"), BAD_SETTINGS)
def test_settings_refuse_values_beyond_the_bounds(name, value):
    with pytest.raises(ConfigError, match=name):
        ReconstructorSettings(**{name: value})


@pytest.mark.parametrize(("name", "value"), [b for b in BAD_SETTINGS if b[0] != "compressed_format"])
def test_run_time_refusal_names_the_parameter(node, name, value):
    before = node.settings
    (result,) = node.set_parameters([Parameter(name, value=value)])
    assert not result.successful and result.reason
    assert node.settings == before


def test_every_bound_is_in_the_parameter_table():
    from stir_ros.ros.graph import DRIVER_PARAMETERS, RECONSTRUCTOR_PARAMETERS

    names = {("spike_camera_driver", s.name) for s in DRIVER_PARAMETERS}
    names |= {("spike_reconstructor", s.name) for s in RECONSTRUCTOR_PARAMETERS}
    assert set(PARAMETER_BOUNDS) <= names
    # Every numeric reconstructor parameter has a bound.
    numeric = {s.name for s in RECONSTRUCTOR_PARAMETERS if type(s.default) in (int, float)}
    assert numeric == {n for node, n in PARAMETER_BOUNDS if node == "spike_reconstructor"}


def test_node_descriptors_carry_the_ranges(node):
    (queue,) = node.describe_parameters(["queue_size"])
    assert (queue.integer_range[0].from_value, queue.integer_range[0].to_value) == (1, 256)
    (rate,) = node.describe_parameters(["output_rate_hz"])
    assert (rate.floating_point_range[0].from_value, rate.floating_point_range[0].to_value) == (0.0, 10_000.0)


@pytest.mark.parametrize(
    ("h", "w", "n", "rate", "kind"),
    [
        (4, 4, 1, 1e308, "bad_frame_rate"), (4, 4, 1, 2 * MAX_FRAME_RATE_HZ, "bad_frame_rate"),
        (4, 4, 1, math.inf, "bad_frame_rate"), (5000, 4, 1, 20000.0, "bad_size"), (4, 5000, 1, 20000.0, "bad_size"),
        (4096, 4096, MAX_PACKET_BYTES // (4096 * 4096 // 8) + 1, 20000.0, "bad_size"),
    ],
)  # fmt: skip
def test_packet_fields_beyond_what_a_sensor_produces(h, w, n, rate, kind):
    with pytest.raises(PacketError) as info:
        validate_packet(bytes(16), PacketHeader(0, 0, n, h, w, ENCODING_VIDAR_BITPACKED, 0, rate))
    assert info.value.kind == kind


def test_stride_arithmetic_stays_finite_at_the_bounds():
    assert stride_for_rate(MAX_FRAME_RATE_HZ, 1e-3) == 10**9
    assert stride_for_rate(1e-3, 10_000.0) == 1


def test_window_too_large_for_memory_is_rejected(ros):
    n = _node(window_length=1024)
    try:
        s = Stream(h=4096, w=4096, n=1)
        n._on_spikes(s.packet())
        assert n.bad_packets["window_too_large"] == 1 and n.windows_cut == 0 and n.cutter is None
    finally:
        n.stop()
        n.destroy_node()


def test_batch_limit_keeps_a_decoded_batch_under_the_limit():
    assert batch_limit(64, 41, 250, 400) == 64
    assert batch_limit(64, 1024, 4096, 4096) == 1
    b = batch_limit(64, 1024, 1024, 1024)
    assert b * 1024**3 > MAX_WINDOW_BYTES or b == 1


# --------------------------------------------------------------------------- property test

GOOD_PARAMS = st.sampled_from([
    ("window_length", 5), ("window_length", 9), ("window_length", 0), ("stride_frames", 1), ("stride_frames", 3),
    ("stride_frames", 7), ("queue_size", 1), ("queue_size", 8), ("queue_size", 32), ("max_batch", 1),
    ("max_batch", 64), ("output_rate_hz", 0.0), ("output_rate_hz", 5000.0), ("method", "tfi"), ("method", "tfp"),
    ("alpha", 0.3), ("output_encoding", "mono16"), ("output_encoding", "32FC1"),
])  # fmt: skip
BAD_PARAMS = st.sampled_from(BAD_SETTINGS + [("method", "bogus"), ("window_length", 41.5), ("queue_size", "8"),
                                             ("weights", "/nonexistent/w.pt")])  # fmt: skip
CORRUPT = st.sampled_from([
    ("frame_rate_hz", 1e308), ("frame_rate_hz", math.inf), ("frame_rate_hz", math.nan), ("frame_rate_hz", -1.0),
    ("height", 5000), ("height", 0), ("width", 2**32 - 1), ("num_frames", 2**32 - 1), ("num_frames", 0),
    ("encoding", "h264"), ("data", b""), ("data", bytes(7)),
])  # fmt: skip
ACTIONS = st.lists(
    st.one_of(
        st.tuples(st.just("good"), st.sampled_from([1, 4, 7]), st.sampled_from([(3, 5), (8, 8)]),
                  st.sampled_from([ENCODING_VIDAR_BITPACKED, ENCODING_UNPACKED_U8])),
        st.tuples(st.just("bad"), CORRUPT),
        st.tuples(st.just("gap"), st.integers(1, 5)),
        st.tuples(st.just("param"), st.one_of(GOOD_PARAMS, BAD_PARAMS)),
    ),
    max_size=30,
)  # fmt: skip


@pytest.fixture(scope="module")
def prop_node(ros):
    n = _node()
    try:
        yield n
    finally:
        n.stop()
        n.destroy_node()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(actions=ACTIONS)
def test_any_sequence_of_packets_and_parameters_leaves_a_working_bounded_node(prop_node, actions):
    node = prop_node
    assert all(r.successful for r in node.set_parameters([Parameter(k, value=v) for k, v in BASE.items()]))
    seq, first, stamp = 10**6, 10**7 * (1 + node.windows_cut), 10**15 + node.windows_cut * 10**12
    peak = {"queue": BASE["queue_size"], "batch": BASE["max_batch"], "t": 9, "fpp": 7, "h": 8, "w": 8}
    for action in actions:
        if action[0] == "good" or action[0] == "bad":
            n, (h, w), enc = (action[1], action[2], action[3]) if action[0] == "good" else (4, (3, 5), ENCODING_VIDAR_BITPACKED)
            frames = (np.random.default_rng(seq).random((n, h, w)) < 0.4).astype(np.uint8)
            msg = frames_to_packet(frames, seq=seq, first_frame_index=first, frame_rate_hz=20000.0, stamp_ns=stamp, encoding=enc)
            if action[0] == "bad":
                setattr(msg, *action[1])
            node._on_spikes(msg)
            seq, first, stamp = seq + 1, first + n, stamp + n * 50_000
        elif action[0] == "gap":
            seq, first = seq + action[1], first + 3 * action[1]
        else:
            name, value = action[1]
            try:
                node.set_parameters([Parameter(name, value=value)])
            except Exception as err:  # noqa: BLE001 - only rclpy's own type check may refuse by raising
                assert type(err).__module__.startswith("rclpy"), err
            peak["queue"] = max(peak["queue"], node.settings.queue_size)
            peak["batch"] = max(peak["batch"], node.settings.max_batch)
            peak["t"] = max(peak["t"], node.engine.window_length)
        # Memory: the spike data held never exceeds the stated bound (README "Memory").
        bound = reconstructor_memory_bound(peak["queue"], peak["batch"], peak["t"], peak["h"], peak["w"], peak["fpp"],
                                           peak["h"] * peak["w"])  # fmt: skip
        assert node.held_spike_bytes() <= bound
        assert len(node.worker.queue) <= peak["queue"]
    _drain(node)
    # Good packets still produce images: a fresh stream (seq 0: a restart) at the known settings.
    assert all(r.successful for r in node.set_parameters([Parameter(k, value=v) for k, v in BASE.items()]))
    images, errors = node.images_published, dict(node.errors)
    fresh = Stream(first=first + 10**6)
    fresh.stamp = stamp + 10**9
    for _ in range(3):  # 30 frames: windows at 3k for k = 0..8 of the fresh segment
        node._on_spikes(fresh.packet())
    _drain(node)
    assert node.images_published > images, node.diagnostics_values()
    assert dict(node.errors) == errors and node.worker.alive
    assert node.errors["packet_handling"] == 0 and node.errors["inference"] == 0 and node.errors["worker"] == 0


def test_dropped_windows_are_logged_not_only_counted(node, monkeypatch, capfd):
    import threading

    release = threading.Event()
    real = node.engine.reconstruct

    def blocks(windows, starts=None):
        release.wait(20)
        return real(windows, starts=starts)

    monkeypatch.setattr(node.engine, "reconstruct", blocks)
    s = Stream()
    for _ in range(6):  # 60 frames: 19 windows for a queue of 8 while the worker is held
        node._on_spikes(s.packet())
    release.set()
    _drain(node)
    assert node.windows_dropped > 0
    assert "inference is slower than the stream" in capfd.readouterr().err


# --------------------------------------------------------------------------- beyond the reported cases


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("image_width: -5\nimage_height: 10\n", "image_width must be an integer in 1..4096"),
        ("image_width: 10\nimage_height: 1000000000\n", "image_height must be an integer in 1..4096"),
        ("image_width: abc\nimage_height: 10\n", "image_width must be an integer"),
        ("image_width: 10\nimage_height: 10\ncamera_matrix: {data: [.nan, 0, 0, 0, 1, 0, 0, 0, 1]}\n", "finite numbers"),
        ("image_width: 10\nimage_height: 10\ncamera_matrix: {data: [a, 0, 0, 0, 1, 0, 0, 0, 1]}\n", "must hold numbers"),
        ("image_width: 10\nimage_height: 10\ndistortion_coefficients: {data: [" + ", ".join(["0"] * 65) + "]}\n", "at most 64"),
    ],
)  # fmt: skip
def test_calibration_files_with_impossible_values_are_config_errors(tmp_path, text, needle):
    from stir_ros.ros.conversions import camera_info_from_file

    path = tmp_path / "calib.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=needle):
        camera_info_from_file(str(path))


def test_camera_info_that_disagrees_with_the_images_is_not_republished(node):
    from sensor_msgs.msg import CameraInfo

    node._on_camera_info(CameraInfo(height=4, width=6, k=[math.nan] * 9))  # non-finite: ignored
    assert node.camera_info is None and node.bad_packets["camera_info"] == 1
    published = []
    node.info_pub.publish = published.append  # what goes out on camera_info
    node._on_camera_info(CameraInfo(height=480, width=640, k=[500.0, 0, 320, 0, 500, 240, 0, 0, 1]))
    s = Stream()
    for _ in range(3):
        node._on_spikes(s.packet())
    _drain(node)
    assert published and all((i.height, i.width) == (4, 6) and not any(i.k) for i in published)
    assert node.bad_packets["camera_info_size"] == len(published)
    node._on_camera_info(CameraInfo(height=4, width=6, k=[5.0, 0, 3, 0, 5, 2, 0, 0, 1]))
    node._on_spikes(s.packet())
    _drain(node)
    assert list(published[-1].k) == [5.0, 0, 3, 0, 5, 2, 0, 0, 1]


def test_jpeg_compressed_output_is_close_to_the_image():
    import cv2

    from stir_ros.core.imaging import to_image_array
    from stir_ros.ros.conversions import compressed_image_msg

    img = np.clip(np.add.outer(np.linspace(0, 1, 48), np.linspace(0, 0.5, 64)), 0, 1).astype(np.float32)
    msg = compressed_image_msg(img, "32FC1", "jpeg", 95, 123, "cam")
    assert msg.format == "mono8; jpeg compressed mono8" and msg.header.frame_id == "cam"
    decoded = cv2.imdecode(np.frombuffer(bytes(msg.data), np.uint8), cv2.IMREAD_UNCHANGED)
    assert np.abs(decoded.astype(int) - to_image_array(img, "mono8").astype(int)).max() <= 3
    png = compressed_image_msg(img, "mono16", "png", 90, 123, "cam")
    assert png.format == "mono16; png compressed mono16"
    np.testing.assert_array_equal(cv2.imdecode(np.frombuffer(bytes(png.data), np.uint8), cv2.IMREAD_UNCHANGED),
                                  to_image_array(img, "mono16"))  # fmt: skip


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")
@pytest.mark.parametrize("niceness", [5, 0])
def test_the_node_runs_its_worker_at_worker_niceness(ros, niceness):
    """Issue 14: the inference thread yields the CPU to the thread that receives the spikes."""
    import threading

    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    n = _node(worker_niceness=niceness)
    try:
        assert n.settings.worker_niceness == niceness
        assert _wait(lambda: n.worker.alive and n.worker.thread is not None, 5)
        tid = n.worker.thread.native_id
        expected = min(19, base + niceness)
        assert _wait(lambda: os.getpriority(os.PRIO_PROCESS, tid) == expected, 5)
        assert _wait(lambda: n.worker.thread_niceness == (expected if niceness else None), 5)
        assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == base  # the executor's thread keeps its own
    finally:
        n.stop()
        n.destroy_node()
