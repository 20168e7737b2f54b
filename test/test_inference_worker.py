# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The reconstructor's ROS-free pieces, without rclpy.

The inference worker and its thread priority (stir_ros.runtime.inference_worker), the diagnostics
values (stir_ros.runtime.reconstructor_status) and the validated settings (stir_ros.reconstructor_settings).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import Counter
from dataclasses import fields, replace
from types import SimpleNamespace

import numpy as np
import pytest

from stir_ros.core.errors import ConfigError
from stir_ros.runtime.inference_worker import InferenceWorker, Pending, lower_thread_priority, thread_niceness
from stir_ros.core.packing import ENCODING_VIDAR_BITPACKED, encode_frames
from stir_ros.runtime.parameters import RECONSTRUCTOR_PARAMETERS
from stir_ros.runtime.reconstructor_status import ReconstructorStatus
from stir_ros.core.packet import PacketHeader
from stir_ros.core.stream_processor import StreamProcessor

RATE = 20000.0
T0 = 1_000_000_000
LINUX = sys.platform.startswith("linux")


class FakeEngine:
    """What the worker uses of the engine: TFP-like means of the windows, optionally held or failing."""

    method = "tfi"
    window_length = 5
    batch_size = 2
    device = SimpleNamespace(type="cpu")
    device_name = "cpu"
    precision = "fp32"
    oom_fallbacks = 0

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.fail = 0
        self.hold = threading.Event()
        self.hold.set()
        self.warnings: list[str] = []
        self.niceness: list[int | None] = []

    def reconstruct(self, windows, starts=None):
        self.niceness.append(thread_niceness())
        self.hold.wait(20)
        self.calls.append(len(windows))
        if self.fail:
            self.fail -= 1
            raise RuntimeError("injected")
        return np.asarray(windows, np.float32).mean(axis=1)

    def pop_warnings(self) -> list[str]:
        out, self.warnings = self.warnings, []
        return out


def _windows(n_frames: int, stride: int = 5, h: int = 3, w: int = 4, length: int = 5):
    frames = (np.random.default_rng(0).random((n_frames, h, w)) < 0.3).astype(np.uint8)
    proc = StreamProcessor(length, stride)
    header = PacketHeader(seq=0, first_frame_index=0, num_frames=n_frames, height=h, width=w,
                          encoding=ENCODING_VIDAR_BITPACKED, stamp_ns=T0, frame_rate_hz=RATE)  # fmt: skip
    return proc, proc.push(header, encode_frames(frames, ENCODING_VIDAR_BITPACKED)).windows, frames


def _wait(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


@pytest.fixture
def made():
    """A started worker with a fake engine that records what it publishes; stopped afterwards."""
    published: list[tuple[Pending, np.ndarray]] = []
    reports: dict[str, list] = {"warning": [], "error": [], "prepare": []}
    engine = FakeEngine()
    worker = InferenceWorker(
        engine, lambda p, img: published.append((p, img)) is None,
        prepare=lambda e, h, w: reports["prepare"].append((h, w)), on_warning=reports["warning"].append,
        on_error=lambda kind, msg: reports["error"].append((kind, msg)), clock_ns=lambda: T0 + 10**9, niceness=0,
    )  # fmt: skip
    worker.start()
    yield SimpleNamespace(worker=worker, engine=engine, published=published, reports=reports)
    worker.stop()


def test_worker_reconstructs_in_batches_and_times_each_image(made):
    _, windows, frames = _windows(30)
    assert len(windows) == 6
    assert made.worker.submit(windows, time.monotonic(), "cam", queue_size=16) == 0
    assert _wait(made.worker.idle) and made.worker.images_published == 6
    assert all(n <= FakeEngine.batch_size for n in made.engine.calls) and sum(made.engine.calls) == 6
    for (pending, img), window in zip(made.published, windows):
        assert pending.window.centre_stamp_ns == window.centre_stamp_ns and pending.frame_id == "cam"
        np.testing.assert_allclose(img, frames[window.first_frame_index : window.first_frame_index + 5].mean(0))
    assert made.reports["prepare"][0] == (3, 4)
    assert len(made.worker.latency_ms) == 6 and all(v >= 0 for v in made.worker.latency_ms)
    assert made.worker.age_ms[0] == pytest.approx((10**9 - (windows[0].centre_stamp_ns - T0)) / 1e6)
    assert made.worker.unserved_since is None


def test_full_queue_drops_the_oldest_and_counts(made):
    made.engine.hold.clear()  # the thread holds its first batch
    _, windows, _ = _windows(50)  # 10 windows
    made.worker.submit(windows[:1], time.monotonic(), "cam", queue_size=3)
    assert _wait(lambda: made.worker.busy)
    dropped = made.worker.submit(windows[1:], time.monotonic(), "cam", queue_size=3)
    assert dropped == 6 and made.worker.windows_dropped == 6
    assert [p.window for p in made.worker.queue] == windows[-3:]  # the newest stay
    assert made.worker.unserved_since is not None
    made.engine.hold.set()
    assert _wait(made.worker.idle)
    assert made.worker.images_published == 4


def test_drops_name_their_cause_slow_inference_or_bursts(made):
    """A burst that overflows the queue of a fast worker is not "inference is slower than the stream"."""
    _, windows, _ = _windows(50)  # 10 windows
    kind, message = made.worker.drop_cause(0.01, queue_size=3)
    assert kind == "slow" and "not measured yet" in message  # nothing measured: cannot tell
    made.worker.submit(windows[:4], time.monotonic(), "cam", queue_size=16)
    assert _wait(made.worker.idle) and len(made.worker.window_s) >= 2
    made.engine.hold.clear()  # one batch in hand, then a burst of six windows at once
    made.worker.submit(windows[4:5], time.monotonic(), "cam", queue_size=3)
    assert _wait(lambda: made.worker.busy)
    assert made.worker.submit(windows[5:], time.monotonic(), "cam", queue_size=3) == 2
    per_window = sorted(made.worker.window_s)[len(made.worker.window_s) // 2]
    kind, message = made.worker.drop_cause(per_window * 10, queue_size=3)  # windows 10x as far apart as inference
    assert kind == "bursts" and "although inference keeps up" in message and "queue of 3" in message
    assert "slower than the stream" not in message and "2 window(s) dropped" in message
    kind, message = made.worker.drop_cause(per_window / 10, queue_size=3)  # inference 10x too slow
    assert kind == "slow" and "raise stride_frames" in message
    made.engine.hold.set()
    assert _wait(made.worker.idle)


def test_an_inference_error_is_counted_reported_and_survived(made):
    made.engine.fail = 1
    made.engine.warnings = ["cuda out of memory: batch halved"]
    _, windows, _ = _windows(30)
    made.worker.submit(windows[:2], time.monotonic(), "cam", queue_size=16)
    assert _wait(lambda: made.worker.errors["inference"] == 1)
    assert made.reports["error"] == [("inference", "reconstruction failed: RuntimeError('injected')")]
    made.worker.submit(windows[2:], time.monotonic(), "cam", queue_size=16)
    assert _wait(made.worker.idle) and made.worker.images_published == 4 and made.worker.alive
    # the failed batch raised before its warnings were read: the next batch reports them
    assert made.reports["warning"] == ["cuda out of memory: batch halved"]


def test_publish_refusing_stops_the_batch_uncounted():
    engine = FakeEngine()
    worker = InferenceWorker(engine, lambda p, img: False)
    worker.start()
    try:
        _, windows, _ = _windows(30)
        worker.submit(windows, time.monotonic(), "cam", queue_size=16)
        assert _wait(worker.idle)
        assert worker.images_published == 0 and engine.calls
    finally:
        worker.stop()
    assert not worker.alive


def test_swap_and_clear_drop_the_queue_and_release_lets_the_engine_go(made):
    made.engine.hold.clear()
    _, windows, _ = _windows(30)
    made.worker.submit(windows, time.monotonic(), "cam", queue_size=16)
    assert _wait(lambda: made.worker.busy)
    made.worker.swap_engine(made.engine)  # the same engine: nothing dropped
    assert len(made.worker.queue) == 4
    other = FakeEngine()
    made.worker.swap_engine(other)
    assert not made.worker.queue and made.worker.unserved_since is None and made.worker.engine is other
    made.engine.hold.set()
    made.worker.submit(windows[:1], time.monotonic(), "cam", queue_size=16)
    assert _wait(lambda: other.calls == [1])
    made.worker.submit(windows, time.monotonic(), "cam", queue_size=16)
    made.worker.clear()
    made.worker.stop()
    made.worker.release_engine()
    assert made.worker.engine is None and not made.worker.queue


def test_held_spike_bytes_counts_each_payload_once(made):
    made.engine.hold.clear()
    proc, windows, _ = _windows(30)
    made.worker.submit(windows, time.monotonic(), "cam", queue_size=16)
    # every window and the cutter's buffer refer to the one packet of 30 frames of 3x4 (bit-packed)
    assert made.worker.held_spike_bytes(proc.cutter) == len(encode_frames(np.zeros((30, 3, 4), np.uint8),
                                                                          ENCODING_VIDAR_BITPACKED))  # fmt: skip
    made.engine.hold.set()


def test_a_reconstructed_window_waiting_to_be_published_lets_its_spikes_go():
    """Images held back (for even spacing, or behind a slower window) keep no spike payloads."""
    proc = StreamProcessor(5, 5)
    rng = np.random.default_rng(1)
    windows, packet_bytes = [], 0
    for k in range(6):  # one packet per window
        payload = encode_frames((rng.random((5, 3, 4)) < 0.3).astype(np.uint8), ENCODING_VIDAR_BITPACKED)
        header = PacketHeader(seq=k, first_frame_index=5 * k, num_frames=5, height=3, width=4,
                              encoding=ENCODING_VIDAR_BITPACKED, stamp_ns=T0 + k * 5 * 10**9 // 20000,
                              frame_rate_hz=RATE)  # fmt: skip
        windows += proc.push(header, payload).windows
        packet_bytes = len(payload)
    stamps = [w.centre_stamp_ns for w in windows]
    first_out, published = threading.Event(), []

    def publish(p, img):
        published.append((p.window.centre_stamp_ns, p.window.height, p.window.width, img.shape))
        return first_out.wait(20)  # the first image is held until the others are reconstructed

    engine = FakeEngine()
    worker = InferenceWorker(engine, publish)
    worker.start()
    try:
        worker.submit(windows, time.monotonic(), "cam", queue_size=16)
        assert _wait(lambda: sum(engine.calls) == len(windows) and not worker.queue)
        assert len(worker._finished) >= 1 and len(published) == 1  # reconstructed, waiting behind the first
        assert packet_bytes > 0 and worker.held_spike_bytes(None) == 0
        first_out.set()
        assert _wait(worker.idle) and worker.images_published == len(windows)
    finally:
        first_out.set()
        worker.stop()
    assert published == [(s, 3, 4, (3, 4)) for s in stamps]  # stamps and sizes kept for publishing


def test_no_window_is_taken_while_queue_size_images_wait_to_be_published():
    """A publisher that holds images back (even spacing) stops the reconstruction, not memory, from growing."""
    _, windows, _ = _windows(30)  # 6 windows; the fake engine takes 2 at a time
    first_out = threading.Event()
    engine = FakeEngine()
    worker = InferenceWorker(engine, lambda p, img: first_out.wait(20))
    worker.start()
    try:
        for k in (2, 4):
            worker.submit(windows[k - 2 : k], time.monotonic(), "cam", queue_size=2)
            assert _wait(lambda k=k: sum(engine.calls) == k and not worker.queue)
        worker.submit(windows[4:], time.monotonic(), "cam", queue_size=2)
        time.sleep(0.3)
        # windows 0-1 are being published (the first is held), 2-3 wait: 2 images, as many as queue_size
        assert sum(engine.calls) == 4 and len(worker.queue) == 2 and worker._held() == 2
        first_out.set()
        assert _wait(worker.idle) and worker.images_published == 6 and worker.windows_dropped == 0
    finally:
        first_out.set()
        worker.stop()


# --------------------------------------------------------------------------- thread priority (issue 14)


@pytest.mark.skipif(not LINUX, reason="per-thread nice values are Linux's")
def test_the_worker_thread_lowers_its_own_priority_only():
    before = thread_niceness()
    if before is None or before + 3 > 19:
        pytest.skip(f"this thread's niceness is {before}: no room to lower it by 3")
    engine = FakeEngine()
    worker = InferenceWorker(engine, lambda p, img: True, niceness=3)
    worker.start()
    try:
        _, windows, _ = _windows(10)
        worker.submit(windows, time.monotonic(), "cam", queue_size=16)
        assert _wait(worker.idle)
        expected = min(19, before + 3)
        assert worker.thread_niceness == expected
        assert engine.niceness[0] == expected  # what /proc/self/task/<tid>/stat says, read in the thread
        tid = worker.thread.native_id
        with open(f"/proc/self/task/{tid}/stat") as f:
            nice_field = int(f.read().rsplit(")", 1)[1].split()[16])  # field 19 of stat: nice
        assert nice_field == expected
        assert thread_niceness() == before  # the calling thread (and so the process) keeps its own
        assert os.getpriority(os.PRIO_PROCESS, os.getpid()) == before
    finally:
        worker.stop()


def _nice_values() -> dict[int, int]:
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                out[int(tid)] = int(f.read().rsplit(")", 1)[1].split()[16])
        except OSError:  # the thread ended meanwhile
            pass
    return out


@pytest.mark.skipif(not LINUX, reason="per-thread nice values are Linux's")
def test_the_threads_torch_starts_for_the_worker_inherit_its_priority():
    """Torch's OpenMP helpers, started by the worker thread for its first parallel region, run at its niceness."""
    torch = pytest.importorskip("torch")
    before = thread_niceness()
    if before is None or before + 4 > 19:
        pytest.skip(f"this thread's niceness is {before}: no room to lower it by 4")
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    seen: dict[str, object] = {}

    class Convolving(FakeEngine):
        def reconstruct(self, windows, starts=None):
            existing = set(_nice_values())
            conv = torch.nn.Conv2d(8, 8, 3, padding=1)
            with torch.no_grad():
                conv(torch.randn(1, 8, 128, 128))
            seen["new"] = {tid: n for tid, n in _nice_values().items() if tid not in existing}
            seen["own"] = thread_niceness()
            return super().reconstruct(windows)

    worker = InferenceWorker(Convolving(), lambda p, img: True, niceness=4)
    worker.start()
    try:
        _, windows, _ = _windows(5)
        worker.submit(windows, time.monotonic(), "cam", queue_size=4)
        assert _wait(worker.idle)
    finally:
        worker.stop()
        torch.set_num_threads(threads)
    assert seen["own"] == before + 4
    assert seen["new"] and all(n == before + 4 for n in seen["new"].values()), seen  # helpers it started: its niceness


def test_niceness_zero_changes_nothing_and_refusal_is_logged_not_raised(monkeypatch):
    said: list[str] = []
    assert lower_thread_priority(0, said.append) is None and said == []
    if not LINUX:
        assert lower_thread_priority(5, said.append) is None and "not supported" in said[0]
        return

    def refuse(*_):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "setpriority", refuse)
    assert lower_thread_priority(5, said.append) is None
    assert "could not lower" in said[0] and "skipped" in said[0]


# --------------------------------------------------------------------------- diagnostics values


def _status_values(worker, proc, **overrides):
    args = dict(
        engine=FakeEngine(), settings=SimpleNamespace(stride_frames=200, lazy=False), stream=proc, worker=worker,
        bad_packets=Counter(), errors=Counter(), worker_restarts=0, last_warning="", last_packet=None,
        idle_no_subscribers=False,
    )  # fmt: skip
    args.update(overrides)
    return args


#: The keys of /diagnostics, in order (the node's, unchanged by the move out of the node).
DIAGNOSTICS_KEYS = [
    "method", "device", "precision", "window_length", "stride_frames", "input_packets_per_s", "input_frames_per_s",
    "output_images_per_s", "latency_ms_p50", "latency_ms_p95", "latency_ms_p99", "stamp_age_ms_p50", "inference_ms_p50",
    "input_idle_s",
    "queue_depth", "unserved_s", "worker_alive", "worker_restarts", "windows_cut", "windows_dropped",
    "images_published", "buffer_resets", "bad_packets", "inference_errors", "packet_handling_errors",
    "parameter_errors", "worker_errors", "oom_fallbacks", "last_warning", "lazy", "idle_no_subscribers",
    "defect_correction", "hot_pixels", "dead_pixels", "hot_fraction", "dead_fraction", "pixels_repaired",
    "pixels_unrepaired", "dark_rate_hz", "dark_rate_measured", "defect_frames_sampled", "defect_map_updates",
    "defect_map_unfit",
    "windows_repaired", "dark_network", "windows_dark_weights", "dark_events_per_pixel_frame",
]  # fmt: skip


def test_diagnostics_values_keys_rates_and_levels(made):
    proc, windows, _ = _windows(30)
    status = ReconstructorStatus(now=100.0)
    made.worker.submit(windows, time.monotonic(), "cam", queue_size=16)
    assert _wait(made.worker.idle)
    values = status.values(**_status_values(made.worker, proc, bad_packets=Counter(malformed=2), now=102.0,
                                            last_packet=101.0))  # fmt: skip
    monitor_keys = [f"input_{k}" for k in proc.monitor.counters()]
    assert list(values) == DIAGNOSTICS_KEYS + monitor_keys + ["bad_packets_malformed"]
    assert values["stride_frames"] == 5  # the cutter's, not the setting's
    assert values["output_images_per_s"] == pytest.approx(6 / 2.0)
    assert values["input_packets_per_s"] == pytest.approx(1 / 2.0)
    assert values["input_idle_s"] == pytest.approx(1.0)
    assert values["inference_ms_p50"] == pytest.approx(float(np.median(made.worker.window_s)) * 1e3)
    assert values["bad_packets"] == 2 and values["images_published"] == 6 and values["worker_alive"] is True
    level, message = status.judge(values, active=True, images_published=6, diagnostics_period_s=1.0,
                                  stall_timeout_s=30.0, packet_span_s=0.0015)  # fmt: skip
    assert (level, message) == ("warn", "counted: bad_packets")
    again = status.values(**_status_values(made.worker, proc, now=104.0, last_packet=101.0))
    assert again["output_images_per_s"] == 0.0  # nothing since the previous call
    level, message = status.judge(again, active=True, images_published=6, diagnostics_period_s=1.0,
                                  stall_timeout_s=30.0, packet_span_s=0.0015)  # fmt: skip
    assert level == "warn" and message.startswith("no input for 3.0 s")
    assert status.judge(again, active=False, images_published=6, diagnostics_period_s=1.0, stall_timeout_s=30.0,
                        packet_span_s=0.0) == ("ok", "inactive (lifecycle): not subscribed to spikes")  # fmt: skip


def test_stalled_inference_is_an_error(made):
    made.engine.hold.clear()
    proc, windows, _ = _windows(30)
    made.worker.submit(windows, time.monotonic() - 50, "cam", queue_size=16)
    status = ReconstructorStatus()
    values = status.values(**_status_values(made.worker, proc, last_packet=time.monotonic()))
    level, message = status.judge(values, active=True, images_published=0, diagnostics_period_s=1.0,
                                  stall_timeout_s=30.0, packet_span_s=0.0)  # fmt: skip
    assert level == "error" and message.startswith("no image for 5") and "stall_timeout_s 30" in message
    made.engine.hold.set()


# --------------------------------------------------------------------------- settings


def test_settings_hold_the_table_and_refuse_with_the_parameter_named():
    pytest.importorskip("numpy")
    from stir_ros.reconstructor_settings import ReconstructorSettings

    table = {spec.name: spec.default for spec in RECONSTRUCTOR_PARAMETERS}
    assert {f.name: f.default for f in fields(ReconstructorSettings)} == table
    settings = ReconstructorSettings.from_mapping({**table, "not_a_parameter": 1})
    assert settings.worker_niceness == 5 and settings.engine_config().method == "stir"
    for name, value, needle in [
        ("worker_niceness", 20, "worker_niceness must be in 0..19"),
        ("worker_niceness", -1, "worker_niceness must be in 0..19"),
        ("worker_niceness", 2.5, "worker_niceness must be an integer"),
        ("queue_size", 0, "queue_size must be in 1..256"),
        ("compressed_format", "gif", "compressed_format must be '', 'png' or 'jpeg'"),
        ("executor", "multi", "executor must be one of events, single_threaded"),
        ("output_encoding", "rgb8", "output_encoding must be one of"),
        ("method", "magic", "method"),
    ]:
        with pytest.raises(ConfigError, match=needle):
            replace(settings, **{name: value})


def test_an_engine_with_feature_reuse_gets_each_windows_first_frame():
    class Reusing(FakeEngine):
        feature_reuse = True

        def reconstruct(self, windows, starts=None):
            self.starts = [*getattr(self, "starts", []), *starts]
            return super().reconstruct(windows)

    engine = Reusing()
    worker = InferenceWorker(engine, lambda p, img: True)
    worker.start()
    try:
        _, windows, _ = _windows(30, stride=2)
        worker.submit(windows, time.monotonic(), "cam", queue_size=16)
        assert _wait(worker.idle)
        assert engine.starts == [w.first_frame_index for w in windows] == list(range(0, 26, 2))
    finally:
        worker.stop()


def test_build_engine_falls_back_and_reports_what_the_node_logs(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    import stir_ros.reconstructor_settings as rs
    from stir_ros.core.errors import BackendUnavailableError, CheckpointError

    heard: list[tuple[str, str]] = []
    real = rs.ReconstructionEngine

    def no_openvino(config, checkpoint=None, streams=1):
        if config.backend == "openvino":
            raise BackendUnavailableError("OpenVINO is not installed (injected)")
        return real(config, checkpoint, streams=streams)

    monkeypatch.setattr(rs, "ReconstructionEngine", no_openvino)
    settings = rs.ReconstructorSettings(method="tfp", backend="openvino", device="cuda:7")
    engine = rs.build_engine(settings, lambda message, summary: heard.append((message, summary)))
    assert engine.backend == "torch" and engine.device.type == "cpu"
    assert heard[0] == ("OpenVINO is not installed (injected); falling back to backend torch",
                        "backend openvino unavailable; using torch")  # fmt: skip
    assert len(heard) == 2 and heard[1][0] == heard[1][1] and "cuda:7" in heard[1][0]  # the engine's own warning
    with pytest.raises(CheckpointError):
        rs.build_engine(replace(settings, weights=str(tmp_path / "missing.pt")), lambda *_: None)

    def torch_fails(config, checkpoint=None, streams=1):
        raise RuntimeError("injected: what torch raises")

    monkeypatch.setattr(rs, "ReconstructionEngine", torch_fails)
    with pytest.raises(CheckpointError, match="cannot build the tfp engine: RuntimeError: injected"):
        rs.build_engine(rs.ReconstructorSettings(method="tfp"), lambda *_: None)


@pytest.mark.parametrize("method", ["stir", "tfp"])
def test_build_engine_reads_the_weights_file_once(random_stir41_weights, monkeypatch, method):
    """The check at start loads the checkpoint and hands it to the engine; tfp checks it for a later switch."""
    import stir_ros.models.checkpoint as checkpoint
    import stir_ros.reconstructor_settings as rs

    reads: list[str] = []
    real = checkpoint.read_torch_file

    def counting(path, *args, **kwargs):
        reads.append(str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(checkpoint, "read_torch_file", counting)
    settings = rs.ReconstructorSettings(method=method, weights=str(random_stir41_weights), device="cpu")
    engine = rs.build_engine(settings, lambda *_: None)
    assert reads == [str(random_stir41_weights)]
    if method == "stir":
        assert engine.weights_path == random_stir41_weights and engine.window_length == 41
        assert next(engine.model.parameters()).device.type == "cpu"


def test_warm_up_times_stir_once_per_engine_and_size(random_stir41_weights):
    pytest.importorskip("torch")
    from stir_ros.reconstructor_settings import ReconstructorSettings, build_engine, warm_up

    noted: set = set()
    heard: list = []
    tfp = build_engine(ReconstructorSettings(method="tfp"), lambda *_: None)
    assert warm_up(tfp, 8, 8, noted, lambda *a: heard.append(a)) is None and noted == set() and not heard
    stir = build_engine(ReconstructorSettings(weights=str(random_stir41_weights), device="cpu"), lambda *_: None)
    seconds = warm_up(stir, 16, 16, noted, lambda *a: heard.append(a))
    assert seconds is not None and seconds > 0 and heard == [(seconds, stir.streams)]  # the pacer's first measure
    assert warm_up(stir, 16, 16, noted, lambda *a: heard.append(a)) is None and len(heard) == 1  # once per engine and size


class StreamsEngine(FakeEngine):
    """A fake engine that computes ``streams`` windows at once; the first window it gets is the slowest."""

    def __init__(self, streams: int) -> None:
        super().__init__()
        self.streams = streams
        self.running = 0
        self.most = 0
        self.order: list[int] = []
        self._count = threading.Lock()

    def reconstruct(self, windows, starts=None):
        with self._count:
            self.running += 1
            self.most = max(self.most, self.running)
            first = not self.order
            self.order.append(len(windows))
        time.sleep(0.3 if first else 0.02)  # the first window finishes after the ones taken after it
        try:
            return super().reconstruct(windows, starts)
        finally:
            with self._count:
                self.running -= 1


@pytest.mark.parametrize("streams", [1, 2])
def test_threads_compute_as_many_windows_at_once_as_the_engine_streams_and_publish_in_order(streams):
    engine = StreamsEngine(streams)
    published: list[Pending] = []
    timings: list[tuple[float, int]] = []
    worker = InferenceWorker(engine, lambda p, img: published.append(p) is None, threads=2)
    worker.on_timing = lambda seconds, n: timings.append((seconds, n))
    worker.start()
    try:
        _, windows, _ = _windows(40)  # 8 windows
        worker.submit(windows, time.monotonic(), "cam", queue_size=16)
        assert _wait(worker.idle) and worker.images_published == 8
    finally:
        worker.stop()
    assert engine.most == streams  # two threads, but never more at once than the engine computes
    # in the order they were cut, the slow first one first
    assert [p.window.centre_stamp_ns for p in published] == [w.centre_stamp_ns for w in windows]
    if streams == 2:
        assert engine.order == [1] * 8  # a window per stream: a batch would run on one stream's threads
        # What the pacer hears: with two in flight, one finishes every half of a window's time.
        assert worker.window_s[0] == pytest.approx(2 * timings[0][0])
    assert worker.concurrency() == streams and not worker.alive


def test_even_spacing_holds_each_image_to_a_fixed_delay_after_its_window_was_complete():
    published: list[tuple[Pending, float]] = []
    spaced = [True]
    worker = InferenceWorker(FakeEngine(), lambda p, img: published.append((p, time.monotonic())) is None,
                             even_spacing=lambda: spaced[0])  # fmt: skip
    worker.start()
    try:
        _, windows, _ = _windows(30)
        worker.submit(windows[:1], time.monotonic(), "cam", queue_size=16)  # nothing measured yet: not held
        assert _wait(worker.idle)
        assert worker.hold.seconds == 0.0 and published[0][1] - published[0][0].received < 0.25
        for delay in [0.01] * 30 + [0.3] * 10:  # 95th percentile of the delays until ready: 0.3 s
            worker.hold.ready(delay)
        assert worker.hold_s(time.monotonic()) == 0.3
        received = time.monotonic()
        worker.submit(windows[1:3], received, "cam", queue_size=16)
        assert _wait(worker.idle)
        assert all(at - received >= 0.3 for _, at in published[1:3])  # ready in milliseconds, held to 0.3 s
        spaced[0] = False  # rate_policy drop_oldest: published when ready
        received = time.monotonic()
        worker.submit(windows[3:4], received, "cam", queue_size=16)
        assert _wait(worker.idle) and published[3][1] - received < 0.25
        assert worker.latency_ms[1] >= 300  # the node's latency counts the hold
    finally:
        worker.stop()
