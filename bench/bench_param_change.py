# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Packets lost while the reconstructor applies a slow parameter change at run time.

    python bench/bench_param_change.py [--size 250x400] [--rate 40000] [--window-s 10] [--method stir]

``spike_camera_driver`` (a looped .dat of random spikes, real time, ``--rate`` frames/s, 100
frames per packet) and ``spike_reconstructor`` (``--method``, ``output_rate_hz`` 2 so that
inference leaves the CPU to the stream) run as processes over DDS. The spikes are subscribed
RELIABLE, keep last 50: at 40 kHz that is 0.125 s of packets, so anything that holds the executor
thread longer than that loses packets. Steps, each followed by ``--window-s`` seconds of stream:

- ``baseline``: no change (the loss the machine causes anyway);
- ``precision``: ``precision`` fp32 <-> bf16 (a new engine is built);
- ``weights``: ``weights`` set to a copy of the shipped checkpoint (read, checked, built);
- ``dark map``: ``defect_map_url`` set to a ``calibrate-defects --dark`` map of this size (its
  per-pixel dark-rate table, about 0.7 MB of YAML at 250x400);
- ``no map``: ``defect_map_url`` emptied (cheap);
- ``bad weights``: ``weights`` set to a torch file that is no checkpoint (refused);
- ``baseline``: again, at the end.

Each step lasts until its change is in force (``parameters_loading`` of /diagnostics empty), at
least ``--window-s``. Per step: how long the ``set_parameters`` call took to answer, the packets received and lost
(``input_packets`` and ``input_lost_packets`` of /diagnostics, read before the call and after the
window), images published, and what the parameter reads back after the window. Before the steps,
the dark map's read time in this process (``load_defect_map``, median of 3). Not a test: the
numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from _common import cpu_model, stop_processes  # noqa: E402  (bench/ is on sys.path)


def dark_map_read_s(path: Path, repeat: int = 3) -> float:
    """Median seconds of ``load_defect_map(path)`` in this process."""
    from stir_ros.core.defect_file import load_defect_map

    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        load_defect_map(str(path))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def make_inputs(folder: Path, h: int, w: int, rate: float) -> dict[str, Path]:
    """A looped .dat of random spikes, a ``--dark`` defect map, a copy of the weights, a bad weights file."""
    import torch

    from stir_ros.core.dat import write_dat
    from stir_ros.core.defect_file import save_defect_map
    from stir_ros.core.defects import DefectMap
    from stir_ros.engine import default_weights_path

    rng = np.random.default_rng(0)
    write_dat(folder / "stream.dat", (rng.random((2000, h, w)) < 0.2).astype(np.uint8))
    hot = rng.random((h, w)) < 0.001
    dark = (rng.random((h, w)) * 20).astype(np.float32)
    save_defect_map(folder / "dark.yaml", DefectMap(hot, np.zeros_like(hot), 60000, dark, 8.5), rate)
    shutil.copy(default_weights_path(), folder / "weights_copy.pt")
    torch.save({"weight": torch.zeros(3, 3)}, folder / "not_a_checkpoint.pt")
    return {"dat": folder / "stream.dat", "dark": folder / "dark.yaml", "weights": folder / "weights_copy.pt",
            "bad": folder / "not_a_checkpoint.pt"}  # fmt: skip


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", default="250x400")
    p.add_argument("--rate", type=float, default=40000.0, help="frames per second of the stream")
    p.add_argument("--window-s", type=float, default=10.0, help="seconds of stream after each change")
    p.add_argument("--method", default="stir")
    p.add_argument("--output-rate-hz", type=float, default=2.0)
    args = p.parse_args()
    h, w = (int(v) for v in args.size.lower().split("x"))

    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rcl_interfaces.srv import GetParameters, SetParameters
    from rclpy.parameter import Parameter, parameter_value_to_python

    print(f"{cpu_model()}, {os.cpu_count()} CPUs; {h}x{w} at {args.rate:g} frames/s, 100 frames per packet "
          f"({args.rate / 100:g} packets/s), method {args.method}")  # fmt: skip
    folder = Path(tempfile.mkdtemp(prefix="bench_param_change_"))
    env = dict(os.environ)
    env.setdefault("ROS_DOMAIN_ID", str(os.getpid() % 90 + 5))
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.update({k: env[k] for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE")})
    files = make_inputs(folder, h, w, args.rate)
    print(f"dark map: {files['dark'].stat().st_size / 1e6:.2f} MB; load_defect_map: "
          f"{dark_map_read_s(files['dark']):.2f} s (median of 3)", flush=True)  # fmt: skip

    rclpy.init()
    ns = f"pc_{uuid.uuid4().hex[:8]}"
    node = rclpy.create_node(f"bench_param_change_{ns}")
    diag: dict[str, str] = {}
    seen = [0]

    def on_diag(msg: DiagnosticArray) -> None:
        for s in msg.status:
            if s.name == f"/{ns}/spike_reconstructor: reconstruction":
                diag.clear()
                diag.update({kv.key: kv.value for kv in s.values}, message=s.message)
                seen[0] += 1

    node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 50)
    ros = ["--ros-args", "-r", f"__ns:=/{ns}"]
    log = open(folder / "reconstructor.log", "w")  # noqa: SIM115 - open while the node runs
    params = {"method": args.method, "device": "cpu", "precision": "fp32", "output_rate_hz": args.output_rate_hz,
              "warmup_height": h, "warmup_width": w, "diagnostics_period_s": 0.5}  # fmt: skip
    rec = subprocess.Popen(["spike_reconstructor", *ros, *(a for k, v in params.items() for a in ("-p", f"{k}:={v}"))],
                           env=env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    drv = None

    def spin(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.05)

    def fresh() -> dict[str, str]:
        n = seen[0]
        while seen[0] < n + 2:  # one published after this moment
            rclpy.spin_once(node, timeout_sec=0.05)
        return dict(diag)

    def call(service: Any, request: Any) -> Any:
        assert service.wait_for_service(timeout_sec=30)
        future = service.call_async(request)
        while not future.done():
            rclpy.spin_once(node, timeout_sec=0.01)
        return future.result()

    setter = node.create_client(SetParameters, f"/{ns}/spike_reconstructor/set_parameters")
    getter = node.create_client(GetParameters, f"/{ns}/spike_reconstructor/get_parameters")
    rows = []
    try:
        deadline = time.monotonic() + 180
        while not diag and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
        drv = subprocess.Popen(["spike_camera_driver", *ros, "-p", "source:=dat", "-p", f"dat_path:={files['dat']}",
                                "-p", "loop:=true", "-p", f"height:={h}", "-p", f"width:={w}",
                                "-p", f"frame_rate_hz:={args.rate}", "-p", "frames_per_packet:=100",
                                "-p", "wait_for_subscribers:=1", "--log-level", "error"], env=env)  # fmt: skip
        spin(8.0)  # the stream settles
        steps = [("baseline", "", None), ("precision", "precision", "bf16"),
                 ("weights", "weights", str(files["weights"])), ("dark map", "defect_map_url", str(files["dark"])),
                 ("no map", "defect_map_url", ""), ("bad weights", "weights", str(files["bad"])),
                 ("baseline", "", None)]  # fmt: skip
        for label, name, value in steps:
            before = fresh()
            took, answer = 0.0, "-"
            if name:
                request = SetParameters.Request()
                request.parameters = [Parameter(name, value=value).to_parameter_msg()]
                start = time.perf_counter()
                result = call(setter, request).results[0]
                took = time.perf_counter() - start
                answer = "accepted" if result.successful else f"refused ({result.reason.replace(str(folder) + '/', '')[:70]})"
            spin(args.window_s)
            while fresh().get("parameters_loading"):  # each step whole: its change in force before the next
                spin(0.5)
            after = fresh()
            reads = "-"
            if name:
                request = GetParameters.Request(names=[name])
                value = parameter_value_to_python(call(getter, request).values[0])
                reads = repr(Path(value).name if "/" in str(value) else value)
            lost = int(after["input_lost_packets"]) - int(before["input_lost_packets"])
            got = int(after["input_packets"]) - int(before["input_packets"])
            images = int(after["images_published"]) - int(before["images_published"])
            rows.append((label, f"{took:.2f}", answer, got, lost, images, reads))
            print(f"  {label}: call {took:.2f} s, {answer}; packets {got}, lost {lost}; images {images}; "
                  f"reads back {reads}", flush=True)  # fmt: skip
    finally:
        stop_processes([drv, rec])
        node.destroy_node()
        rclpy.try_shutdown()
        log.close()
    print(f"\neach step: the call, then {args.window_s:g} s of stream or until in force ({args.rate / 100:g} packets/s)")
    print("| step | set_parameters answered in (s) | answer | packets received | packets lost | images | reads back |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")
    print(f"reconstructor log: {folder / 'reconstructor.log'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
