# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Two "hosts": driver and reconstructor in separate network namespaces joined by a veth pair.

Namespace A (10.200.0.1/24) runs ``spike_camera_driver``, namespace B (10.200.0.2/24) runs
``spike_reconstructor`` and a small monitor that prints what B sees (images, diagnostics) as
JSON lines; real DDS (UDP only: Fast DDS's shared-memory transport would bypass the link) goes
over the veth pair. The link is cut in A and restored: the reconstructor reports the silence on
``/diagnostics`` (WARN "no input"), counts the packets lost when the stream comes back, and
images resume.

Needs root (CI runs as root) and ``ip`` from iproute2; skipped otherwise. Only the namespaces
and the veth pair made here are touched, and they are deleted in ``finally``.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("rclpy")

from stir_ros.core.dat import write_dat  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow]

H, W, RATE, STRIDE = 32, 48, 20000.0, 400

MONITOR = r"""
import json, sys, rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import QoSProfile, QoSReliabilityPolicy
from sensor_msgs.msg import Image
ns = sys.argv[1]
rclpy.init()
node = rclpy.create_node("netns_monitor")
def out(**kw):
    print(json.dumps(kw), flush=True)
node.create_subscription(Image, f"/{ns}/image", lambda m: out(image=m.header.stamp.sec * 10**9 + m.header.stamp.nanosec),
                         QoSProfile(depth=100, reliability=QoSReliabilityPolicy.RELIABLE))
def on_diag(msg):
    for s in msg.status:
        if s.name == f"/{ns}/spike_reconstructor: reconstruction":
            out(level=int.from_bytes(s.level, "little") if isinstance(s.level, bytes) else int(s.level),
                message=s.message, values={kv.key: kv.value for kv in s.values})
node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 50)
try:
    rclpy.spin(node)
except KeyboardInterrupt:
    pass
finally:
    rclpy.try_shutdown()
"""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10, check=check)


class TwoHosts:
    """Namespaces ``a`` and ``b`` joined by veth ``va``/``vb``; removed by :meth:`close`."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.a, self.b = f"stirA{tag}", f"stirB{tag}"
        self.va, self.vb = f"stva{tag}", f"stvb{tag}"  # interface names: 15 characters at most
        self.made: list[str] = []

    def open(self) -> None:
        for ns in (self.a, self.b):
            _ip("netns", "add", ns)
            self.made.append(ns)
        _ip("link", "add", self.va, "type", "veth", "peer", "name", self.vb)
        for ns, dev, addr in ((self.a, self.va, "10.200.0.1/24"), (self.b, self.vb, "10.200.0.2/24")):
            _ip("link", "set", dev, "netns", ns)
            _ip("-n", ns, "addr", "add", addr, "dev", dev)
            _ip("-n", ns, "link", "set", "lo", "up")
        self.link_up()

    def link_up(self) -> None:
        for ns, dev in ((self.a, self.va), (self.b, self.vb)):
            _ip("-n", ns, "link", "set", dev, "up", "multicast", "on")
            # Routes through a device go when it goes down; DDS discovery multicasts need one.
            _ip("-n", ns, "route", "replace", "224.0.0.0/4", "dev", dev)

    def link_down(self) -> None:
        _ip("-n", self.a, "link", "set", self.va, "down")

    def close(self) -> None:
        for ns in self.made:  # deleting a namespace deletes its end of the veth pair, and so both
            _ip("netns", "del", ns, check=False)


def _can_make_namespaces() -> str | None:
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    if shutil.which("ip") is None:
        return "needs the ip command (apt-get install iproute2)"
    probe = f"stirprobe{uuid.uuid4().hex[:6]}"
    try:
        made = _ip("netns", "add", probe, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"ip netns add failed: {err}"
    if made.returncode != 0:
        return f"ip netns add is not permitted here: {made.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


class Lines:
    """JSON lines of a process's stdout, read in a thread."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.q: queue.Queue[dict[str, Any]] = queue.Queue()
        self.images: list[int] = []
        self.diag: dict[str, Any] = {}
        threading.Thread(target=self._read, args=(proc,), daemon=True).start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            try:
                self.q.put(json.loads(line))
            except ValueError:
                pass

    def wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                item = self.q.get(timeout=min(left, 0.1))
            except queue.Empty:
                continue
            if "image" in item:
                self.images.append(item["image"])
            else:
                self.diag = item
        return True


def _ros_args(ns: str, params: dict[str, Any]) -> list[str]:
    args = ["--ros-args", "-r", f"__ns:=/{ns}"]
    for k, v in params.items():
        args += ["-p", f"{k}:={str(v).lower() if isinstance(v, bool) else v}"]
    return args


def test_driver_and_reconstructor_on_two_hosts_survive_a_cut_link(tmp_path, ros_env):
    reason = _can_make_namespaces()
    if reason:
        pytest.skip(reason)
    dat = tmp_path / "loop.dat"
    write_dat(dat, (np.random.default_rng(0).random((400, H, W)) < 0.3).astype(np.uint8))
    env = dict(ros_env)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "SUBNET"  # the session's LOCALHOST would stop at lo
    env["FASTDDS_BUILTIN_TRANSPORTS"] = "UDPv4"  # shared memory crosses namespaces: the cut would not cut
    env.pop("ROS_LOCALHOST_ONLY", None)
    ns = f"netns_{uuid.uuid4().hex[:8]}"
    hosts = TwoHosts()
    procs: list[tuple[str, subprocess.Popen[str], Path | None]] = []

    def start(name: str, netns: str, cmd: list[str], peer: str, log: bool = True) -> subprocess.Popen[str]:
        penv = dict(env, ROS_STATIC_PEERS=peer)
        path = tmp_path / f"{name}.log" if log else None
        out = open(path, "w") if path else subprocess.PIPE  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(["ip", "netns", "exec", netns, *cmd], env=penv, stdout=out,
                                stderr=subprocess.STDOUT if path else None, text=True)  # fmt: skip
        procs.append((name, proc, path))
        return proc

    def logs() -> str:
        return "\n".join(f"--- {n} (exit {p.poll()}):\n{path.read_text()[-3000:]}" for n, p, path in procs if path)

    try:
        hosts.open()
        rec = start("reconstructor", hosts.b, ["spike_reconstructor", *_ros_args(ns, {
            "method": "tfp", "stride_frames": STRIDE, "queue_size": 16, "diagnostics_period_s": 0.5})], "10.200.0.1")  # fmt: skip
        mon = Lines(start("monitor", hosts.b, [sys.executable, "-c", MONITOR, ns], "10.200.0.1", log=False))
        drv = start("driver", hosts.a, ["spike_camera_driver", *_ros_args(ns, {
            "source": "dat", "dat_path": dat, "height": H, "width": W, "frame_rate_hz": RATE, "loop": True,
            "frames_per_packet": 100, "wait_for_subscribers": 1, "wait_for_subscribers_timeout_s": 30.0,
        })], "10.200.0.2")  # fmt: skip
        assert mon.wait(lambda: len(mon.images) >= 10, 60), f"no images across the veth pair\n{logs()}"
        assert mon.wait(lambda: mon.diag.get("level") == 0 and float(mon.diag["values"]["input_packets_per_s"]) > 50, 10)

        hosts.link_down()
        assert mon.wait(lambda: "no input" in mon.diag.get("message", ""), 10), f"{mon.diag}\n{logs()}"
        assert mon.diag["level"] == 1 and float(mon.diag["values"]["input_packets_per_s"]) == 0  # WARN
        cut = len(mon.images)
        assert drv.poll() is None and rec.poll() is None

        hosts.link_up()
        assert mon.wait(lambda: len(mon.images) >= cut + 10, 40), f"images did not resume\n{logs()}"
        assert mon.wait(
            lambda: "no input" not in mon.diag.get("message", "x") and int(mon.diag["values"]["input_lost_packets"]) > 0, 10
        ), mon.diag
        values = mon.diag["values"]
        assert mon.diag["level"] == 1 and "input_lost_packets" in mon.diag["message"]  # the loss stays reported
        assert values["bad_packets"] == "0" and values["packet_handling_errors"] == "0"
        resumed = mon.images[cut:]
        assert all(b - a == round(STRIDE * 1e9 / RATE) for a, b in zip(resumed[-5:], resumed[-4:]))
        assert drv.poll() is None and rec.poll() is None
    finally:
        for _, p, _ in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for _, p, _ in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
        hosts.close()
