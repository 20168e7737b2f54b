# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Live STIR images/s, spacing and latency: parameter sets side by side on the same simulated stream.

    python bench/bench_live.py [--seconds 30] [--repeat 2] [--size 250x400]
                               [--config NAME=k:=v,k:=v ...]

``spike_camera_driver`` (simulated scene, real time, 20 kHz, 100 frames per packet) and
``spike_reconstructor`` (STIR) run as separate processes, the way a user starts them, once per
parameter set and repeat, the sets interleaved (A B C A B C ...) so that a busy machine slows all
alike. The default sets (issue 29): ``old`` (the defaults before: fp32, torch, drop_oldest),
``auto+drop`` (auto inference path, drop_oldest) and ``new`` (no parameter set: auto, auto, even).

Per run, from the images this process receives: images/s, the spacing of their arrival times
(mean, and the share within +-10 % of the mean), and latency = arrival time - the image's stamp
(the capture time of the window's centre frame, on the driver's wall clock); the reconstructor's
own measured time per window (``sustainable_images_per_s`` of /diagnostics) and windows dropped.
Prints min/median over repeats and the ratio new/old. Not a test: the numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid

import numpy as np
from _common import cpu_model, stop_processes  # noqa: E402  (bench/ is on sys.path)

CONFIGS = {
    "old": "precision:=fp32,backend:=torch,rate_policy:=drop_oldest",
    "auto+drop": "rate_policy:=drop_oldest",
    "new": "",
}


def run_once(name: str, params: str, h: int, w: int, seconds: float, env: dict[str, str]) -> dict[str, float]:
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import Image

    from stir_ros.ros.conversions import stamp_to_ns

    ns = f"live_{uuid.uuid4().hex[:8]}"
    arrivals: list[tuple[float, int]] = []
    diag: dict[str, str] = {}

    def on_image(msg: Image) -> None:
        arrivals.append((time.time(), stamp_to_ns(msg.header.stamp)))

    def on_diag(msg: DiagnosticArray) -> None:
        for s in msg.status:
            if s.name == f"/{ns}/spike_reconstructor: reconstruction":
                diag.update({kv.key: kv.value for kv in s.values})

    node = rclpy.create_node(f"bench_live_{ns}")
    node.create_subscription(Image, f"/{ns}/image", on_image, 50)
    node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 50)
    ros = ["--ros-args", "-r", f"__ns:=/{ns}"]
    extra = [a for p in params.split(",") if p for a in ("-p", p)]
    log_file = tempfile.TemporaryFile("w+")  # a pipe could fill and stall the node
    rec = subprocess.Popen(["spike_reconstructor", *ros, *extra, "-p", f"warmup_height:={h}", "-p", f"warmup_width:={w}",
                            "--log-level", "info"], env=env, stdout=log_file, stderr=subprocess.STDOUT)  # fmt: skip
    drv = None
    try:
        deadline = time.monotonic() + 180
        while not diag and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
        drv = subprocess.Popen(["spike_camera_driver", *ros, "-p", "source:=sim", "-p", f"height:={h}", "-p", f"width:={w}",
                                "-p", f"max_frames:={int(seconds * 20000) // 100 * 100}", "-p", "wait_for_subscribers:=1",
                                "--log-level", "error"], env=env)  # fmt: skip
        while drv.poll() is None and time.monotonic() < deadline + seconds + 60:
            rclpy.spin_once(node, timeout_sec=0.05)
        end = time.monotonic() + 3.0
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.05)
    finally:
        stop_processes([drv, rec])
        node.destroy_node()
    log_file.seek(0)
    log = log_file.read()
    for line in log.splitlines():
        if "ready:" in line or "sustain" in line:
            print(f"    [{name}] {line.split('] ', 1)[-1]}", flush=True)
    skip = max(1, len(arrivals) // 10)  # the first images: the stream starting
    t = np.array([a for a, _ in arrivals[skip:]])
    lat = np.array([(a - s / 1e9) * 1e3 for a, s in arrivals[skip:]])
    gaps = np.diff(t) if len(t) > 2 else np.array([np.nan])
    mean = float(np.mean(gaps))
    return {
        "images_per_s": (len(t) - 1) / (t[-1] - t[0]) if len(t) > 2 else 0.0,
        "spacing_ms": mean * 1e3,
        "within_10pct": float(np.mean(np.abs(gaps - mean) <= 0.1 * mean)),
        "spacing_cv": float(np.std(gaps) / mean),
        "latency_p50_ms": float(np.percentile(lat, 50)) if len(lat) else np.nan,
        "latency_p99_ms": float(np.percentile(lat, 99)) if len(lat) else np.nan,
        "window_ms": 1e3 / float(diag.get("sustainable_images_per_s", "nan") or "nan"),
        "dropped": float(diag.get("windows_dropped", "nan")),
        "stride": float(diag.get("stride_frames", "nan")),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds of stream per run")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--size", default="250x400")
    parser.add_argument("--config", nargs="*", default=None, metavar="NAME=k:=v,k:=v",
                        help="parameter sets (default: old, auto+drop, new)")  # fmt: skip
    args = parser.parse_args()
    configs = dict(c.split("=", 1) for c in args.config) if args.config else CONFIGS
    h, w = (int(v) for v in args.size.split("x"))
    env = dict(os.environ)
    env.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.update(env)
    import rclpy

    print(f"hardware: {cpu_model()}, {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f} at start", flush=True)
    print(f"stream: sim {h}x{w} at 20 kHz, {args.seconds:g} s per run, stride 200 asked for (100 images/s)", flush=True)
    rclpy.init()
    results: dict[str, list[dict[str, float]]] = {k: [] for k in configs}
    try:
        for r in range(args.repeat):
            for name, params in configs.items():
                row = run_once(name, params, h, w, args.seconds, env)
                results[name].append(row)
                print(f"  repeat {r + 1} {name:10s} " + ", ".join(f"{k} {v:.3g}" for k, v in row.items()), flush=True)
    finally:
        rclpy.try_shutdown()
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end; min / median over {args.repeat} repeats:")
    keys = list(next(iter(results.values()))[0])
    print("| set | " + " | ".join(keys) + " |")
    print("|---|" + "---|" * len(keys))
    for name, rows in results.items():
        cells = [f"{np.min([r[k] for r in rows]):.3g} / {np.median([r[k] for r in rows]):.3g}" for k in keys]
        print(f"| {name} | " + " | ".join(cells) + " |")
    if "old" in results and "new" in results:
        ratio = np.median([r["images_per_s"] for r in results["new"]]) / np.median([r["images_per_s"] for r in results["old"]])
        print(f"\nimages/s new / old (medians): {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
