# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Helpers shared by the multi-process ROS tests.

Node processes, a child process whose output can be waited for, a collector of the nodes'
outputs, test packets and parameter calls. Fixtures built on them (``nodes``, ``ros_node``) are in
conftest.py; test modules import these helpers instead of importing each other.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.srv import GetParameters, SetParameters
from rclpy.parameter import Parameter, parameter_value_to_python
from rclpy.qos import QoSProfile, QoSReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

from stir_ros.engine import EngineConfig, ReconstructionEngine
from stir_ros.core.imaging import to_image_array
from stir_ros.core.stream import WindowCutter, stack_windows
from stir_ros.msg import SpikePacket
from stir_ros.ros.conversions import frames_to_packet

RATE = 20000.0
RELIABLE = QoSProfile(depth=200, reliability=QoSReliabilityPolicy.RELIABLE)


def ros_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if value == "":
        return "''"
    return str(value)


class Nodes:
    """Child processes of the stir_ros executables, logs in files, stopped together."""

    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        self.tmp_path, self.env = tmp_path, env
        self.procs: list[tuple[str, subprocess.Popen[bytes], Path]] = []

    def start(self, exe: str, ns: str, params: dict[str, Any], extra: tuple[str, ...] = ()) -> subprocess.Popen[bytes]:
        log = self.tmp_path / f"{exe}_{len(self.procs)}.log"
        cmd = [exe, "--ros-args", "-r", f"__ns:=/{ns}"]
        for key, value in params.items():
            cmd += ["-p", f"{key}:={ros_value(value)}"]
        with open(log, "wb") as out:
            proc = subprocess.Popen([*cmd, *extra], env=self.env, stdout=out, stderr=subprocess.STDOUT)
        self.procs.append((exe, proc, log))
        return proc

    def logs(self) -> str:
        return "\n".join(f"--- {exe} (exit {p.poll()}):\n{log.read_text()[-4000:]}" for exe, p, log in self.procs)

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


def processes_mentioning(text: str) -> list[int]:
    """Pids (not this one) whose command line contains ``text``: to check that nothing was left running."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


def stop_process(proc: subprocess.Popen[Any], sig: int = signal.SIGINT, timeout: float = 20.0) -> int:
    """Send ``sig`` (if still running) and wait; killed, and TimeoutExpired raised, if it does not exit."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
        raise


class OutputProcess:
    """A child process whose output lines (stdout and stderr together) can be waited for.

    ``log`` holds the lines read so far; every method that waits adds to it.
    """

    def __init__(self, cmd: list[str], env: dict[str, str], cwd: Path | None = None,
                 start_new_session: bool = False) -> None:
        self.proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=start_new_session)  # fmt: skip
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def output(self) -> str:
        return "".join(self.log)

    def wait_for(self, *texts: str, timeout: float) -> None:
        """Wait until every one of ``texts`` has appeared in some line; AssertionError if not in time."""
        pending = list(texts)
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    break
                continue
            self.log.append(line)
            pending = [t for t in pending if t not in line]
        assert not pending, f"no {pending} within {timeout} s; output so far:\n{self.output()}"

    def finish(self, timeout: float, sig: int | None = None) -> int:
        """Exit status, after sending ``sig`` if given; the rest of the output goes to ``log``."""
        if sig is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        time.sleep(0.1)
        while not self.lines.empty():
            self.log.append(self.lines.get())
        return rc

    def stop(self) -> None:
        """Terminate (SIGTERM), killed if it does not exit within 10 s."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def spin_until(node, predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        rclpy.spin_once(node, timeout_sec=0.05)
    return predicate()


class Collector:
    """Subscribes to a namespace's outputs (and optionally its spikes)."""

    def __init__(self, node, ns: str, spikes: bool = True) -> None:
        self.node, self.ns = node, ns
        self.images: list[Image] = []
        self.infos: list[CameraInfo] = []
        self.packets: list[SpikePacket] = []
        self.diag: dict[str, str] = {}
        self.diag_level, self.diag_message = b"", ""  # of the last status of the namespace's reconstructor
        self.image_sub = node.create_subscription(Image, f"/{ns}/image", self.images.append, RELIABLE)
        node.create_subscription(CameraInfo, f"/{ns}/camera_info", self.infos.append, RELIABLE)
        if spikes:
            node.create_subscription(SpikePacket, f"/{ns}/spikes", self.packets.append, RELIABLE)
        node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 50)

    def _on_diag(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name == f"/{self.ns}/spike_reconstructor: reconstruction":
                self.diag = {kv.key: kv.value for kv in status.values}
                self.diag_level, self.diag_message = status.level, status.message

    def wait_for_reconstructor(self, nodes: Nodes, timeout: float = 40.0) -> None:
        ok = spin_until(self.node, lambda: self.image_sub.get_publisher_count() >= 1, timeout)
        assert ok, f"reconstructor did not come up\n{nodes.logs()}"

    def wait_for_diag(self, predicate: Callable[[dict[str, str]], bool], timeout: float = 10.0) -> bool:
        return spin_until(self.node, lambda: bool(self.diag) and predicate(self.diag), timeout)


def offline_images(frames: np.ndarray, stamps0: int, config: EngineConfig, stride: int, encoding: str):
    """What the node should publish, computed here with the same core pieces."""
    engine = ReconstructionEngine(config)
    cutter = WindowCutter(engine.window_length, stride)
    windows = cutter.push(frames, 0, stamps0, RATE)
    images = engine.reconstruct(stack_windows(windows))
    return windows, [to_image_array(img, encoding) for img in images]


def spike_packet(seq, first, n=20, h=16, w=24, stamp=None, seed=None, **fields):
    frames = (np.random.default_rng(seq if seed is None else seed).random((n, h, w)) < 0.3).astype(np.uint8)
    stamp = 10**12 + round(first * 1e9 / RATE) if stamp is None else stamp
    msg = frames_to_packet(frames, seq=seq, first_frame_index=first, frame_rate_hz=RATE, stamp_ns=stamp, frame_id="cam")
    for key, value in fields.items():
        setattr(msg, key, value)
    return msg


def call_service(node, client, request, timeout: float = 60.0, resend_every: float | None = 10.0) -> Any:
    """Call a service from the test process and return its response.

    ``wait_for_service`` only says that requests reach a server: on a loaded machine the server's
    response writer may not yet have matched this client's reader, and DDS then drops the answer
    (seen in a fresh clone's run: a lifecycle get_state unanswered for 60 s). A request that may be
    repeated (a query, setting a parameter to a value) is sent again every ``resend_every``
    seconds without an answer; ``resend_every=None`` sends it once (a lifecycle transition).
    """
    assert client.wait_for_service(timeout_sec=timeout), f"{client.srv_name} not offered"
    deadline = time.monotonic() + timeout
    while True:
        future = client.call_async(request)
        left = deadline - time.monotonic()
        if spin_until(node, future.done, max(min(left, resend_every or left), 0.0)):
            return future.result()
        assert time.monotonic() < deadline, f"{client.srv_name}: no answer in {timeout:g} s"


def set_parameters(node, ns: str, **values: Any) -> list[Any]:
    client = node.create_client(SetParameters, f"/{ns}/spike_reconstructor/set_parameters")
    try:
        request = SetParameters.Request()
        request.parameters = [Parameter(k, value=v).to_parameter_msg() for k, v in values.items()]
        return call_service(node, client, request, timeout=30).results
    finally:
        node.destroy_client(client)


def get_parameters(node, ns: str, *names: str) -> list[Any]:
    """The values of the reconstructor's parameters ``names``, as the parameter server holds them."""
    client = node.create_client(GetParameters, f"/{ns}/spike_reconstructor/get_parameters")
    try:
        response = call_service(node, client, GetParameters.Request(names=list(names)), timeout=30)
        return [parameter_value_to_python(v) for v in response.values]
    finally:
        node.destroy_client(client)
