# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Soak: the full driver -> reconstructor (tfp) pipeline at the target rate for minutes.

    python bench/bench_soak.py [--duration 600] [--frame-rate-hz 10000] [--size 250x400]
                               [--source dat|sim] [--sample-s 5]

``spike_camera_driver`` (a looped 2000-frame .dat file, or the simulator, real-time pacing) and
``spike_reconstructor`` (tfp) run as separate processes, the way a user starts them. Every
``--sample-s`` seconds the resident memory (VmRSS) and CPU time of both processes are sampled;
``/diagnostics`` of both nodes is read throughout. At the end it prints the hardware, packets
published and received, lost packets, dropped windows, images, memory at start (after a warm-up
of 10 % of the run, at least 30 s) and end, memory growth (MB and MB/min, the slope of a
least-squares line through the samples after the warm-up) and CPU use (100 % = one core).

Not a test: the numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from _common import cpu_model, cpu_seconds, stop_processes  # noqa: E402  (bench/ is on sys.path)


def rss_mb(pid: int) -> float:
    """Resident set size of a process in MB (from /proc), NaN if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def hardware() -> str:
    model = cpu_model()
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{model}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, Python {platform.python_version()}"


def growth(samples: list[tuple[float, float]], warmup_s: float) -> tuple[float, float, float, float]:
    """(MB at the end of the warm-up, MB at the end, growth MB, slope MB/min) of (t, MB) samples."""
    after = [(t, m) for t, m in samples if t >= warmup_s and np.isfinite(m)]
    if len(after) < 2:
        return (float("nan"),) * 4
    t, m = np.array(after).T
    slope = float(np.polyfit(t / 60.0, m, 1)[0])
    return float(m[0]), float(m[-1]), float(m[-1] - m[0]), slope


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of streaming")
    parser.add_argument("--frame-rate-hz", type=float, default=10000.0)
    parser.add_argument("--size", default="250x400")
    parser.add_argument("--frames-per-packet", type=int, default=100)
    parser.add_argument("--stride-frames", type=int, default=200)
    parser.add_argument("--source", choices=("dat", "sim"), default="dat")
    parser.add_argument("--sample-s", type=float, default=5.0, help="seconds between memory samples")
    args = parser.parse_args()
    h, w = (int(v) for v in args.size.split("x"))
    env = dict(os.environ)
    env.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.update(env)

    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray

    from stir_ros.core.dat import write_dat

    print(f"hardware: {hardware()}; load average {os.getloadavg()[0]:.2f} at start", flush=True)
    print(f"stream: {args.source} {h}x{w} at {args.frame_rate_hz:g} Hz, {args.frames_per_packet} frames/packet "
          f"({args.frames_per_packet * ((h * w + 7) // 8) / 1e6:.2f} MB), tfp window 41, stride {args.stride_frames}; "
          f"{args.duration:g} s", flush=True)  # fmt: skip
    ns = f"soak_{uuid.uuid4().hex[:8]}"
    rec_diag: dict[str, str] = {}
    drv_diag: dict[str, str] = {}

    def on_diag(msg: DiagnosticArray) -> None:
        for s in msg.status:
            if s.name == f"/{ns}/spike_reconstructor: reconstruction":
                rec_diag.update({kv.key: kv.value for kv in s.values})
                rec_diag["_message"] = s.message
            elif s.name == f"/{ns}/spike_camera_driver: spikes":
                drv_diag.update({kv.key: kv.value for kv in s.values})

    max_frames = round(args.duration * args.frame_rate_hz / args.frames_per_packet) * args.frames_per_packet
    with tempfile.TemporaryDirectory() as tmp:
        source = ["-p", "source:=sim"]
        if args.source == "dat":
            dat = Path(tmp) / "soak.dat"
            write_dat(dat, (np.random.default_rng(0).random((2000, h, w)) < 0.3).astype(np.uint8))
            source = ["-p", "source:=dat", "-p", f"dat_path:={dat}", "-p", "loop:=true"]
        rclpy.init()
        node = rclpy.create_node(f"soak_monitor_{ns}")
        node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 50)
        ros = ["--ros-args", "-r", f"__ns:=/{ns}"]
        rec = subprocess.Popen(["spike_reconstructor", *ros, "-p", "method:=tfp", "-p", f"stride_frames:={args.stride_frames}",
                                "--log-level", "warn"], env=env)  # fmt: skip
        drv = None
        samples: dict[str, list[tuple[float, float]]] = {"driver": [], "reconstructor": []}
        try:
            deadline = time.monotonic() + 60
            while not rec_diag and time.monotonic() < deadline:
                rclpy.spin_once(node, timeout_sec=0.1)
            if not rec_diag:
                print("the reconstructor did not come up in 60 s", flush=True)
                return 1
            drv = subprocess.Popen(["spike_camera_driver", *ros, *source, "-p", f"height:={h}", "-p", f"width:={w}",
                                    "-p", f"frame_rate_hz:={args.frame_rate_hz}",
                                    "-p", f"frames_per_packet:={args.frames_per_packet}", "-p", f"max_frames:={max_frames}",
                                    "-p", "wait_for_subscribers:=1", "--log-level", "warn"], env=env)  # fmt: skip
            procs = {"driver": drv, "reconstructor": rec}
            t0 = time.monotonic()
            cpu0 = {k: cpu_seconds(p.pid) for k, p in procs.items()}
            cpu1 = dict(cpu0)
            t_cpu = 0.0
            next_sample = t0
            # The driver stops by itself after max_frames (exact packet count), a little after
            # `duration` when it cannot keep up.
            while drv.poll() is None and time.monotonic() - t0 < args.duration + 120:
                if rec.poll() is not None:
                    print(f"the reconstructor exited early with status {rec.poll()}", flush=True)
                    break
                now = time.monotonic()
                if now >= next_sample:
                    for k, p in procs.items():
                        samples[k].append((now - t0, rss_mb(p.pid)))
                        cpu1[k] = cpu_seconds(p.pid)
                    t_cpu = now - t0
                    next_sample += args.sample_s
                    if len(samples["driver"]) % 12 == 1:  # a progress line every minute at 5 s
                        print(f"  t={now - t0:5.0f} s  RSS driver {samples['driver'][-1][1]:.0f} MB, "
                              f"reconstructor {samples['reconstructor'][-1][1]:.0f} MB; "
                              f"images {rec_diag.get('images_published')}, lost {rec_diag.get('input_lost_packets')}, "
                              f"in {float(rec_diag.get('input_frames_per_s', 'nan')):.0f} frames/s", flush=True)  # fmt: skip
                rclpy.spin_once(node, timeout_sec=0.1)
            wall = time.monotonic() - t0
            if drv.poll() is None:
                print("the driver did not finish in time", flush=True)
            # Let the last packets be reconstructed and the last diagnostics arrive.
            end = time.monotonic() + 3.0
            while time.monotonic() < end:
                rclpy.spin_once(node, timeout_sec=0.1)
        finally:
            stop_processes([drv, rec])
            node.destroy_node()
            rclpy.try_shutdown()

    warmup = min(max(30.0, 0.1 * wall), wall / 2)
    sent = max_frames // args.frames_per_packet if drv.returncode == 0 else int(drv_diag.get("packets_published", 0))
    received = int(rec_diag.get("input_packets", 0))
    images = int(rec_diag.get("images_published", 0))
    expected_images = (max_frames - 41) // args.stride_frames + 1
    print(f"\nresult after {wall:.0f} s (load average {os.getloadavg()[0]:.2f} at the end):")
    print(f"  packets: published {sent}, received {received}, not received {sent - received}, "
          f"seq gaps (lost) {rec_diag.get('input_lost_packets')}, restarts {rec_diag.get('input_restarts')}, "
          f"bad {rec_diag.get('bad_packets')}")
    print(f"  driver exit status {drv.returncode}; frames/s: driver mean {float(drv_diag.get('mean_frame_rate_hz', 'nan')):.0f} "
          f"(target {args.frame_rate_hz:g}; includes the start-up wait), driver lag at the end {drv_diag.get('lag_s')} s")
    print(f"  images: {images} ({expected_images} expected), windows cut {rec_diag.get('windows_cut')}, "
          f"dropped {rec_diag.get('windows_dropped')}, inference errors {rec_diag.get('inference_errors')}; "
          f"latency p50/p95/p99 {rec_diag.get('latency_ms_p50')}/{rec_diag.get('latency_ms_p95')}/"
          f"{rec_diag.get('latency_ms_p99')} ms; last status {rec_diag.get('_message')!r}")  # fmt: skip
    for k in ("driver", "reconstructor"):
        first, last, grown, slope = growth(samples[k], warmup)
        cpu = (cpu1[k] - cpu0[k]) / max(t_cpu, 1e-9)
        print(f"  {k}: RSS {first:.1f} MB after {warmup:.0f} s warm-up -> {last:.1f} MB at the end "
              f"({grown:+.1f} MB, {slope:+.2f} MB/min fitted; peak {max(m for _, m in samples[k]):.1f} MB); "
              f"CPU {100 * cpu:.0f}% of one core")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
