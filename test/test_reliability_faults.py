# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Faults: nodes killed and restarted, CUDA missing or out of memory, invalid start parameters.

Multi-process tests start the executables on PATH (as ``test_ros_pipeline.py`` does, whose helpers
they reuse) and kill them with SIGKILL, the way a crash or the OOM killer ends a process: no
shutdown code runs. The CUDA faults run a reconstructor node in this process with an engine that
is made to believe it is on a GPU, so they need no GPU (``test_engine.py`` covers the engine's
own fallback; here: what the node logs and reports). Bad packets and run-time parameter changes
are in ``test_ros_pipeline.py``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
torch = pytest.importorskip("torch")

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from ros_support import Collector, ros_value, spike_packet, spin_until  # noqa: E402

from stir_ros.core.dat import write_dat  # noqa: E402
from stir_ros.core.errors import ConfigError  # noqa: E402
from stir_ros.ros.conversions import stamp_to_ns  # noqa: E402
from stir_ros.ros.driver_node import DriverSettings  # noqa: E402
from stir_ros.ros.reconstructor_node import ReconstructorSettings, SpikeReconstructor  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow]

H, W, RATE, STRIDE = 32, 48, 20000.0, 400
REC = {"method": "tfp", "stride_frames": STRIDE, "queue_size": 16}


@pytest.fixture()
def looped_dat(tmp_path):
    path = tmp_path / "loop.dat"
    write_dat(path, (np.random.default_rng(0).random((400, H, W)) < 0.3).astype(np.uint8))
    return path


def _driver_params(dat, subscribers: int) -> dict:
    # 200 packets/s of 100 frames in real time, as from a camera; looped so it never ends.
    return {"source": "dat", "dat_path": str(dat), "height": H, "width": W, "frame_rate_hz": RATE, "loop": True,
            "frames_per_packet": 100, "wait_for_subscribers": subscribers, "wait_for_subscribers_timeout_s": 20.0}  # fmt: skip


def _steady_stamps(stamps: list[int]) -> bool:
    return all(b - a == round(STRIDE * 1e9 / RATE) for a, b in zip(stamps, stamps[1:]))


def test_driver_killed_and_restarted_is_noticed_and_images_resume(nodes, ros_node, looped_dat):
    ns = f"drvkill_{uuid.uuid4().hex[:8]}"
    col = Collector(ros_node, ns, spikes=False)
    status: dict[str, object] = {}

    def on_diag(msg: DiagnosticArray) -> None:
        for st in msg.status:
            if st.name == f"/{ns}/spike_reconstructor: reconstruction":
                status.update(level=st.level, message=st.message)

    ros_node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 50)
    rec = nodes.start("spike_reconstructor", ns, {**REC, "diagnostics_period_s": 0.5})
    col.wait_for_reconstructor(nodes)
    drv = nodes.start("spike_camera_driver", ns, _driver_params(looped_dat, 1))
    assert spin_until(ros_node, lambda: len(col.images) >= 10, 30), nodes.logs()

    os.kill(drv.pid, signal.SIGKILL)
    drv.wait(timeout=5)
    # The silence is reported (WARN) while the driver is gone.
    assert spin_until(ros_node, lambda: "no input" in str(status.get("message")), 10), status
    assert status["level"] == DiagnosticStatus.WARN
    # Meanwhile something publishes another type on the spikes topic: DDS never matches it with
    # the SpikePacket subscription, so the node neither sees nor counts it.
    wrong = ros_node.create_publisher(String, f"/{ns}/spikes", 10)
    for k in range(5):
        wrong.publish(String(data=f"not a spike packet {k}"))
    spin_until(ros_node, lambda: False, 0.3)
    before = len(col.images)
    assert col.wait_for_diag(lambda d: d["input_restarts"] == "0")
    drv2 = nodes.start("spike_camera_driver", ns, _driver_params(looped_dat, 1))
    assert spin_until(ros_node, lambda: len(col.images) >= before + 10, 30), nodes.logs()

    old = [stamp_to_ns(m.header.stamp) for m in col.images[:before]]
    new = [stamp_to_ns(m.header.stamp) for m in col.images[before:]]
    # The new driver's clock starts later; no window mixes frames of both runs: the buffer was
    # reset, and the new images sit on the new stream's stride grid.
    assert new[0] > old[-1]
    assert _steady_stamps(old) and _steady_stamps(new)
    assert col.wait_for_diag(lambda d: d["input_restarts"] == "1" and int(d["images_published"]) >= before + 10)
    assert int(col.diag["buffer_resets"]) >= 1
    assert col.diag["bad_packets"] == "0" and col.diag["packet_handling_errors"] == "0"
    assert rec.poll() is None and drv2.poll() is None
    assert "stream restarted: seq 0 after" in nodes.logs()
    assert spin_until(ros_node, lambda: "no input" not in str(status.get("message")), 5), status


def test_reconstructor_killed_and_restarted_driver_unaffected(nodes, ros_node, looped_dat):
    ns = f"reckill_{uuid.uuid4().hex[:8]}"
    col = Collector(ros_node, ns, spikes=True)  # our own spikes subscription checks the driver
    driver_diag: dict[str, str] = {}

    def on_diag(msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name == f"/{ns}/spike_camera_driver: spikes":
                driver_diag.update({kv.key: kv.value for kv in status.values})

    ros_node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 50)
    rec = nodes.start("spike_reconstructor", ns, REC)
    col.wait_for_reconstructor(nodes)
    drv = nodes.start("spike_camera_driver", ns, _driver_params(looped_dat, 2))
    assert spin_until(ros_node, lambda: len(col.images) >= 10, 30), nodes.logs()

    os.kill(rec.pid, signal.SIGKILL)
    rec.wait(timeout=5)
    packets_at_kill = len(col.packets)
    published = int(driver_diag.get("packets_published", 0))
    spin_until(ros_node, lambda: False, 2.0)
    # The driver keeps streaming (about 200 packets/s) while nobody reconstructs.
    assert len(col.packets) >= packets_at_kill + 100, nodes.logs()
    assert drv.poll() is None
    assert spin_until(ros_node, lambda: int(driver_diag.get("packets_published", 0)) >= published + 100, 5)

    before = len(col.images)
    rec2 = nodes.start("spike_reconstructor", ns, REC)
    assert spin_until(ros_node, lambda: len(col.images) >= before + 10, 40), nodes.logs()
    assert _steady_stamps([stamp_to_ns(m.header.stamp) for m in col.images[before:]])
    # The driver kept its pace throughout (never blocked on the dead reader) and its seq ran on.
    assert float(driver_diag["lag_s"]) < 0.5 and drv.poll() is None
    seqs = [p.seq for p in col.packets]
    assert all(b > a for a, b in zip(seqs, seqs[1:]))
    # Our own reader (this Python process, also spinning images) may miss a few at keep-last 50.
    assert len(seqs) >= 0.95 * (seqs[-1] - seqs[0] + 1)
    # The new reconstructor joined mid-stream: a start, not a restart or a loss.
    assert col.wait_for_diag(lambda d: int(d["images_published"]) >= 10)
    # (Packets lost here are the reliable keep-last-50 transport on a loaded machine, not the fault.)
    assert col.diag["input_restarts"] == "0" and col.diag["packet_handling_errors"] == "0"
    assert drv.poll() is None and rec2.poll() is None


# --------------------------------------------------------------------------- CUDA faults, in-process


@pytest.fixture()
def reconstructor(ros_node, request):
    """A SpikeReconstructor in this process; parameters through indirect parametrization."""
    params = request.param
    node = SpikeReconstructor(
        namespace=f"/cuda_{uuid.uuid4().hex[:8]}",
        parameter_overrides=[Parameter(k, value=v) for k, v in params.items()],
    )
    try:
        yield node
    finally:
        node.stop()
        node.destroy_node()


def _feed(node: SpikeReconstructor, packets: int, images: int) -> None:
    for s in range(packets):
        node._on_spikes(spike_packet(s, 20 * s))  # the subscription callback, as the executor calls it
    deadline = time.monotonic() + 20
    while node.images_published < images and time.monotonic() < deadline:
        time.sleep(0.02)
    assert node.images_published == images


@pytest.mark.parametrize(
    "reconstructor", [{"method": "tfp", "window_length": 21, "stride_frames": 20, "max_batch": 4, "queue_size": 64}],
    indirect=True,
)
def test_cuda_out_of_memory_falls_back_and_is_reported(reconstructor, monkeypatch, capfd):
    engine = reconstructor.engine
    real = engine._run_torch

    def gpu_always_full(chunk):
        if engine.device.type == "cuda":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(chunk)

    engine.device = torch.device("cuda")  # as if it had started on a GPU
    monkeypatch.setattr(engine, "_run_torch", gpu_always_full)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    published: list[DiagnosticArray] = []
    monkeypatch.setattr(reconstructor.diag_pub, "publish", published.append)

    _feed(reconstructor, packets=10, images=9)  # 200 frames: windows 0, 20, ..., 160
    values = reconstructor.diagnostics_values()
    assert values["oom_fallbacks"] == 3  # batch 4 -> 2 -> 1 -> the CPU
    assert values["device"] == "cpu" and values["inference_errors"] == 0
    assert "moving the model to the CPU" in values["last_warning"]
    reconstructor._publish_diagnostics()
    status = published[-1].status[0]
    assert status.level == DiagnosticStatus.WARN and "oom_fallbacks" in status.message
    log = capfd.readouterr().err
    assert "CUDA out of memory; batch size reduced to 2" in log and "moving the model to the CPU" in log


def test_a_diagnostics_timer_that_fires_as_the_context_goes_logs_no_error(capfd):
    """A diagnostics timer that fires after the context was shut down (a stopping node) logs no error.

    Publishing then fails ("publisher's context is invalid"): that is the stop, not an error.
    """
    import rclpy
    from rclpy.context import Context

    context = Context()
    rclpy.init(context=context)
    node = SpikeReconstructor(namespace=f"/ctx_{uuid.uuid4().hex[:8]}", context=context,
                              parameter_overrides=[Parameter("method", value="tfp")])  # fmt: skip
    try:
        node._publish_diagnostics()  # while the context is up: published, nothing logged
        rclpy.shutdown(context=context)
        node._publish_diagnostics()  # as the timer may, after SIGINT
    finally:
        node.stop()
        node.destroy_node()
    err = capfd.readouterr().err
    assert "diagnostics failed" not in err and "ERROR" not in err, err


def test_the_drivers_diagnostics_timer_as_the_context_goes_raises_nothing(tmp_path):
    import rclpy
    from rclpy.context import Context

    from stir_ros.ros.driver_node import SpikeCameraDriver

    write_dat(tmp_path / "a.dat", np.zeros((200, 8, 8), np.uint8))
    context = Context()
    rclpy.init(context=context)
    node = SpikeCameraDriver(
        namespace=f"/ctx_{uuid.uuid4().hex[:8]}", context=context,
        parameter_overrides=[Parameter(k, value=v) for k, v in {"source": "dat", "dat_path": str(tmp_path / "a.dat"),
                                                                "height": 8, "width": 8}.items()],
    )  # fmt: skip
    try:
        node._publish_diagnostics()
        rclpy.shutdown(context=context)
        node._publish_diagnostics()  # as the timer may, after SIGINT: no RCLError out of the executor
    finally:
        node.stop()
        node.destroy_node()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize(
    "reconstructor", [{"method": "tfp", "device": "cuda", "window_length": 21, "stride_frames": 20, "queue_size": 64}],
    indirect=True,
)
def test_cuda_requested_without_cuda_runs_on_cpu_with_a_warning(capfd, reconstructor):
    values = reconstructor.diagnostics_values()
    assert values["device"] == "cpu"
    assert "'cuda' requested but CUDA is not available; using the CPU" in values["last_warning"]
    assert "CUDA is not available" in capfd.readouterr().err
    _feed(reconstructor, packets=5, images=4)


# --------------------------------------------------------------------------- parameters at start

# Started as processes (each imports torch, so only a few): the exit status and the message.
BAD_START = [
    ("spike_reconstructor", "method", "foo", "method must be one of stir, tfp, tfi, got 'foo'"),
    ("spike_reconstructor", "precision", "fp8", "precision must be one of auto, fp32, fp16, bf16, got 'fp8'"),
    ("spike_reconstructor", "window_length", "abc",
     "parameter 'window_length' to 'abc' of type 'STRING', expecting type 'INTEGER'"),
    ("spike_camera_driver", "frame_rate_hz", "fast",
     "parameter 'frame_rate_hz' to 'fast' of type 'STRING', expecting type 'DOUBLE'"),
]  # fmt: skip


def _outputs(procs: list[subprocess.Popen], timeout: float) -> list[str]:
    """Each process's output once it exited (killed if it is still running at the end)."""
    try:
        return [p.communicate(timeout=timeout)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=5)


def test_invalid_parameters_at_start_exit_with_the_reason(ros_env):
    # All at once: each process mostly waits for imports.
    procs = [
        subprocess.Popen([exe, "--ros-args", "-r", f"__ns:=/badparam_{i}", "-p", f"{name}:={ros_value(value)}"],
                         env=ros_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for i, (exe, name, value, _) in enumerate(BAD_START)
    ]  # fmt: skip
    outputs = _outputs(procs, 60)
    for (exe, name, value, needle), p, out in zip(BAD_START, procs, outputs):
        assert p.returncode == 1, (exe, name, value, out)
        assert "cannot start: " in out and needle in out, (exe, name, value, out)
        assert "Traceback" not in out, out


def test_malformed_ros_arguments_exit_with_one_line_not_a_traceback(ros_env, tmp_path):
    """rclpy.init refuses the command line: every entry point says why in one line and exits 1."""
    from stir_ros.bag.convert import dat_to_bag

    write_dat(tmp_path / "a.dat", np.zeros((40, 8, 8), np.uint8))
    dat_to_bag(tmp_path / "a.dat", tmp_path / "bag", 8, 8, RATE, frames_per_packet=20)
    cli = [sys.executable, "-m", "stir_ros.cli"]
    cases = [  # command, what rclpy refused (its words), the line that says so
        (["spike_camera_driver", "--ros-args", "-p"], "trailing -p flag", "[spike_camera_driver]: cannot start: "),
        (["spike_reconstructor_lifecycle", "--ros-args", "-r", "a:="], "remap rule: '-r a:='",
         "[spike_reconstructor]: cannot start: "),
        ([*cli, "bag", "play", str(tmp_path / "bag"), "--ros-args", "-p", "name:="], "'-p name:='",
         "stir-ros bag: error: "),
        ([*cli, "bag", "record", str(tmp_path / "rec"), "/spikes", "--ros-args", "-r"], "trailing -r flag",
         "stir-ros bag: error: "),
        ([*cli, "perf", "/spikes", "--ros-args", "--bogus"], "['--bogus']", "stir-ros perf: error: "),
        ([*cli, "echo", "/spikes", "--ros-args", "-p"], "trailing -p flag", "stir-ros echo: error: "),
        ([*cli, "demo", "--dat", str(tmp_path / "a.dat"), "--size", "8x8", "--method", "tfp",
          "--out", str(tmp_path / "demo"), "--ros-args", "-p"], "trailing -p flag", "stir-ros demo: error: "),
    ]  # fmt: skip
    procs = [subprocess.Popen(cmd, env=ros_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for cmd, _, _ in cases]  # fmt: skip
    outputs = _outputs(procs, 120)
    for (cmd, refused, prefix), p, out in zip(cases, procs, outputs):
        assert p.returncode == 1 and "Traceback" not in out, (cmd, out)
        line = next((ln for ln in out.splitlines() if prefix in ln), "")
        assert "rclpy refused the command line" in line and refused in line, (cmd, out)
        assert "expected --ros-args followed by rules such as -p name:=value" in line, (cmd, out)


# The other start values go through the same settings classes (and the same main()).
@pytest.mark.parametrize(
    ("cls", "name", "value", "needle"),
    [
        (ReconstructorSettings, "window_length", -3,
         "window_length must be in 0..1024 (frames per window (0: automatic)), got -3"),
        (DriverSettings, "source", "usb", "source must be 'dat' or 'sim', got 'usb'"),
        (DriverSettings, "frames_per_packet", 0, "frames_per_packet must be >= 1, got 0"),
        (ReconstructorSettings, "device", "tpu", "device must be auto, cpu, cuda or cuda:N, got 'tpu'"),
        (ReconstructorSettings, "output_encoding", "rgb8", "output_encoding must be one of mono8, mono16, 32FC1"),
        (ReconstructorSettings, "queue_size", 0, "queue_size must be in 1..256 (windows waiting for inference), got 0"),
        (ReconstructorSettings, "max_batch", 0, "max_batch must be in 1..64 (windows per forward pass), got 0"),
        (ReconstructorSettings, "alpha", -1.0, "alpha must be in 0.001..1000 (sensor alpha), got -1.0"),
        (ReconstructorSettings, "stride_frames", 0, "stride_frames must be in 1..1e+07 (10 s at 1 MHz), got 0"),
        (ReconstructorSettings, "output_rate_hz", -5.0, "output_rate_hz must be in 0 or 0.001..10000"),
        (ReconstructorSettings, "diagnostics_period_s", 0.0, "diagnostics_period_s must be in 0.01..3600"),
        (ReconstructorSettings, "executor", "multi", "executor must be one of events, single_threaded, got 'multi'"),
        (ReconstructorSettings, "window_length", 50, "STIR supports window_length 41 or 61"),
        (DriverSettings, "encoding", "h264", "encoding must be one of"),
        (DriverSettings, "height", 0, "height and width must be positive, got 0x400"),
        (DriverSettings, "frame_rate_hz", float("nan"), "frame_rate_hz must be positive, got nan"),
        (DriverSettings, "max_frames", -1, "max_frames must be >= 0, got -1"),
        (DriverSettings, "source", "dat", "source 'dat' needs dat_path"),
    ],
)  # fmt: skip
def test_invalid_settings_name_the_parameter(cls, name, value, needle):
    with pytest.raises(ConfigError) as err:
        cls(**{name: value})
    assert needle in str(err.value)
