"""Lazy reconstruction and managed (lifecycle) nodes, in node processes over DDS (real rclpy).

Each test runs its nodes in a namespace of its own and stops them in ``finally`` blocks. The
test process is the only subscriber to the images, so it decides whether the lazy node has one.
"""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

rclpy = pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.qos import QoSProfile, QoSReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from stir_ros.msg import SpikePacket  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow]

RELIABLE = QoSProfile(depth=50, reliability=QoSReliabilityPolicy.RELIABLE)
#: A small simulated stream in real time: 20 packets/s of 20 frames of 32x48, one TFP image per 100 frames.
DRIVER = {"source": "sim", "height": 32, "width": 48, "frame_rate_hz": 400.0, "frames_per_packet": 20}
RECON = {"method": "tfp", "stride_frames": 100, "diagnostics_period_s": 0.2}


def _ros_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


class Procs:
    """Node processes started as a user starts them (executables on PATH), logs in files."""

    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        self.tmp_path, self.env = tmp_path, env
        self.procs: list[tuple[str, subprocess.Popen[bytes], Path]] = []

    def start(self, exe: str, ns: str, params: dict[str, Any]) -> subprocess.Popen[bytes]:
        log = self.tmp_path / f"{exe}_{len(self.procs)}.log"
        cmd = [exe, "--ros-args", "-r", f"__ns:=/{ns}"]
        for key, value in params.items():
            cmd += ["-p", f"{key}:={_ros_value(value)}"]
        with open(log, "wb") as out:
            proc = subprocess.Popen(cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        self.procs.append((exe, proc, log))
        return proc

    def logs(self) -> str:
        return "\n".join(f"--- {exe} (exit {p.poll()}):\n{log.read_text()[-3000:]}" for exe, p, log in self.procs)

    def stop(self) -> None:
        for _, p, _ in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for _, p, _ in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)


@pytest.fixture()
def procs(tmp_path, ros_env):
    p = Procs(tmp_path, ros_env)
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture()
def node():
    rclpy.init()
    n = rclpy.create_node(f"test_lazy_lifecycle_{uuid.uuid4().hex[:8]}")
    try:
        yield n
    finally:
        n.destroy_node()
        rclpy.try_shutdown()


def spin_until(node, predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        rclpy.spin_once(node, timeout_sec=0.05)
    return predicate()


class Diagnostics:
    """The latest reconstructor diagnostics of namespace ``ns`` (values and message)."""

    def __init__(self, node, ns: str) -> None:
        self.node, self.ns = node, ns
        self.values: dict[str, str] = {}
        self.message, self.level = "", b""
        self.count = 0
        node.create_subscription(DiagnosticArray, "/diagnostics", self._on, 50)

    def _on(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name == f"/{self.ns}/spike_reconstructor: reconstruction":
                self.values = {kv.key: kv.value for kv in status.values}
                self.message, self.level = status.message, status.level
                self.count += 1

    def wait(self, predicate: Callable[[dict[str, str]], bool], timeout: float = 30.0) -> bool:
        return spin_until(self.node, lambda: bool(self.values) and predicate(self.values), timeout)


# --------------------------------------------------------------------------- lazy


@pytest.mark.parametrize("lazy", [True, False])
def test_lazy_reconstructs_only_for_subscribers(lazy, procs, node):
    ns = f"lazy_{uuid.uuid4().hex[:8]}"
    diag = Diagnostics(node, ns)
    spikes = node.create_subscription(SpikePacket, f"/{ns}/spikes", lambda _: None, RELIABLE)
    procs.start("spike_reconstructor", ns, {**RECON, "lazy": lazy})
    procs.start("spike_camera_driver", ns, DRIVER)
    # Packets arrive and are counted (at least 40: two seconds of stream, 8 windows' worth)...
    assert spin_until(node, lambda: spikes.get_publisher_count() >= 1, 40), procs.logs()
    assert diag.wait(lambda v: int(v["input_packets"]) >= 40, 60), f"{diag.values}\n{procs.logs()}"
    values = diag.values
    if lazy:
        # ...but with nobody subscribed to the images, no window is cut and nothing reconstructed.
        assert values["windows_cut"] == "0" and values["images_published"] == "0", values
        assert values["idle_no_subscribers"] == "True" and values["lazy"] == "True"
        assert diag.level == b"\x00" and diag.message.startswith("idle: no subscribers"), diag.message
    else:
        assert int(values["windows_cut"]) > 0 and values["idle_no_subscribers"] == "False", values
    # A subscriber appears: images come.
    images: list[Image] = []
    node.create_subscription(Image, f"/{ns}/image", images.append, RELIABLE)
    assert spin_until(node, lambda: len(images) >= 3, 30), f"{diag.values}\n{procs.logs()}"
    assert diag.wait(lambda v: v["idle_no_subscribers"] == "False" and int(v["images_published"]) > 0)
    assert diag.values["input_lost_packets"] == "0"


def test_lazy_is_a_validated_dynamic_parameter(procs, node):
    from rcl_interfaces.msg import Parameter as ParameterMsg
    from rcl_interfaces.msg import ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters

    ns = f"lazyp_{uuid.uuid4().hex[:8]}"
    diag = Diagnostics(node, ns)
    procs.start("spike_reconstructor", ns, RECON)
    assert diag.wait(lambda v: v["lazy"] == "False", 60), procs.logs()
    client = node.create_client(SetParameters, f"/{ns}/spike_reconstructor/set_parameters")
    assert client.wait_for_service(timeout_sec=30)

    def set_lazy(value: ParameterValue) -> Any:
        future = client.call_async(SetParameters.Request(parameters=[ParameterMsg(name="lazy", value=value)]))
        assert spin_until(node, future.done, 30)
        return future.result().results[0]

    wrong = set_lazy(ParameterValue(type=ParameterType.PARAMETER_STRING, string_value="yes"))
    assert not wrong.successful
    assert set_lazy(ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=True)).successful
    assert diag.wait(lambda v: v["lazy"] == "True" and v["idle_no_subscribers"] == "True")
