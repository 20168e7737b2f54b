# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Live STIR: images/s, latency and spacing of parameter sets, side by side on the same simulated stream.

    python bench/bench_live.py [--seconds 60] [--repeat 3] [--size 250x400] [--dat REC.dat]
                               [--config NAME=k:=v,k:=v ...]

``spike_camera_driver`` (simulated scene, real time, 20 kHz, 100 frames per packet) and
``spike_reconstructor`` (STIR, stride 200 asked for: 100 images/s) run as separate processes over
DDS, the way a user starts them, once per parameter set and repeat, the sets interleaved
(A B C A B C ...) so that a busy machine slows all alike. The default sets (issue 29):

- ``old``: the defaults before issue 29 (``precision fp32``, ``backend torch``, ``drop_oldest``);
- ``drop_oldest``: the new inference path (``auto``), ``rate_policy drop_oldest``;
- ``even``: the new inference path, ``rate_policy even``.

Per run, from the images this process receives (the first tenth skipped: the stream starting, the
pacer settling): images/s; latency = arrival time - the image's header stamp, which is the capture
time of the window's centre frame on the driver's clock (the driver stamps each packet with its
nominal capture time, the reconstructor each image with its centre frame's; same host, same clock)
p50 / p99; the spacing of arrivals (mean, std, share within +-10 % of the mean) and the share of
stamp spacings equal to the most common one (the sensor-clock grid; each stride change breaks it);
the reconstructor's median time per window (``sustainable_images_per_s`` of /diagnostics), the
stride in force, the windows dropped and its own p50 latency (packet that completed the window
received -> image published, ``latency_ms_p50``); the driver's largest lag behind real time (it adds
to every end-to-end latency: a driver that cannot keep up publishes its frames late, with their
capture stamps); the CPU the reconstructor and the driver took while the stream ran (% of one core:
on a small machine the driver's share is not inference's to take). Then min / median over repeats,
the targets (spacing: at least 90 % of arrivals within +-10 % of the mean; p50 latency below two
measured window times) and images/s of the new inference path against ``old`` (both ``drop_oldest``:
inference saturated). Not a test: the numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import numpy as np
from _common import cpu_model, cpu_seconds, stop_processes  # noqa: E402  (bench/ is on sys.path)

CONFIGS = {
    "old": "precision:=fp32,backend:=torch,rate_policy:=drop_oldest",
    "drop_oldest": "rate_policy:=drop_oldest",
    "even": "rate_policy:=even",
}
RATE_HZ = 20000  # the simulated camera's frame rate (the driver's default)
#: Targets of issue 29: this share of arrival spacings within +-10 % of the mean; p50 below this many window times.
SPACING_SHARE, LATENCY_WINDOWS = 0.9, 2.0
MIN_IMAGES = 10  # fewer received images (after the first tenth) are not judged


def run_once(name: str, params: str, h: int, w: int, seconds: float, env: dict[str, str],
             dat: str = "") -> dict[str, float]:
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import Image

    from stir_ros.ros.conversions import stamp_to_ns

    ns = f"live_{uuid.uuid4().hex[:8]}"
    arrivals: list[tuple[float, int]] = []
    diag: dict[str, str] = {}
    lag = [0.0]  # the driver's largest lag_s

    def on_image(msg: Image) -> None:
        arrivals.append((time.time(), stamp_to_ns(msg.header.stamp)))

    def on_diag(msg: DiagnosticArray) -> None:
        for s in msg.status:
            values = {kv.key: kv.value for kv in s.values}
            if s.name == f"/{ns}/spike_reconstructor: reconstruction":
                diag.update(values)
            elif s.name == f"/{ns}/spike_camera_driver: spikes":
                lag[0] = max(lag[0], float(values.get("lag_s", "0") or 0))

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
        source = ["-p", "source:=dat", "-p", f"dat_path:={dat}", "-p", "loop:=true"] if dat else ["-p", "source:=sim"]
        drv = subprocess.Popen(["spike_camera_driver", *ros, *source, "-p", f"height:={h}", "-p", f"width:={w}",
                                "-p", f"max_frames:={int(seconds * RATE_HZ) // 100 * 100}", "-p", "wait_for_subscribers:=1",
                                "--log-level", "error"], env=env)  # fmt: skip
        stop_at = time.monotonic() + 2 * seconds + 60  # a driver that lags behind real time is stopped here
        started, cpu0 = time.monotonic(), (cpu_seconds(rec.pid), cpu_seconds(drv.pid))
        cpu1, ended = cpu0, started
        while drv.poll() is None and time.monotonic() < stop_at:
            rclpy.spin_once(node, timeout_sec=0.05)
            if drv.poll() is None:  # the CPU both took while the stream ran (read before the driver exits)
                cpu1, ended = (cpu_seconds(rec.pid), cpu_seconds(drv.pid)), time.monotonic()
        end = time.monotonic() + 3.0
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.05)
    finally:
        stop_processes([drv, rec])
        node.destroy_node()
    log_file.seek(0)
    for line in log_file.read().splitlines():
        if "ready:" in line or "sustain" in line:
            print(f"    [{name}] {line.split('] ', 1)[-1]}", flush=True)
    frames = Counter(round((b - a) * RATE_HZ / 1e9) for (_, a), (_, b) in zip(arrivals, arrivals[1:]))
    print(f"    [{name}] stamp spacings (frames x count): "
          + ", ".join(f"{f} x{n}" for f, n in frames.most_common(6)), flush=True)  # fmt: skip
    return {**measure(arrivals), "window_ms": 1e3 / float(diag.get("sustainable_images_per_s", "nan") or "nan"),
            "stride": float(diag.get("stride_frames", "nan")), "dropped": float(diag.get("windows_dropped", "nan")),
            "node_latency_p50_ms": float(diag.get("latency_ms_p50", "nan")), "driver_lag_s": lag[0],
            "rec_cpu_pct": 100 * (cpu1[0] - cpu0[0]) / max(ended - started, 1e-9),
            "driver_cpu_pct": 100 * (cpu1[1] - cpu0[1]) / max(ended - started, 1e-9)}  # fmt: skip


def _share_within(values: np.ndarray, fraction: float = 0.1) -> float:
    """Share of ``values`` within +-``fraction`` of their mean (NaN when there are none)."""
    return float(np.mean(np.abs(values - values.mean()) <= fraction * values.mean())) if len(values) else np.nan


def _share_of_mode(values: np.ndarray) -> float:
    """Share of ``values`` equal to the most common one (NaN when there are none)."""
    return float(np.unique(values, return_counts=True)[1].max() / len(values)) if len(values) else np.nan


def measure(arrivals: list[tuple[float, int]]) -> dict[str, float]:
    """Images/s, latency and spacing of ``(arrival time s, stamp ns)`` pairs, the first tenth skipped."""
    rows = arrivals[max(1, len(arrivals) // 10) :]
    t = np.array([a for a, _ in rows])
    stamps = np.array([s / 1e9 for _, s in rows])
    lat = (t - stamps) * 1e3
    gaps, stamp_gaps = np.diff(t) * 1e3, np.diff(stamps) * 1e3
    nan = float("nan")
    return {
        "images": float(len(t)),
        "images_per_s": (len(t) - 1) / (t[-1] - t[0]) if len(t) >= 2 and t[-1] > t[0] else 0.0,
        "latency_p50_ms": float(np.percentile(lat, 50)) if len(lat) else nan,
        "latency_p99_ms": float(np.percentile(lat, 99)) if len(lat) else nan,
        "spacing_ms": float(gaps.mean()) if len(gaps) else nan,
        "spacing_std_ms": float(gaps.std()) if len(gaps) else nan,
        "within_10pct": _share_within(gaps),
        "stamps_on_one_stride": _share_of_mode(np.round(stamp_gaps, 3)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds of stream per run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--size", default="250x400")
    parser.add_argument("--config", nargs="*", default=None, metavar="NAME=k:=v,k:=v",
                        help="parameter sets (default: old, drop_oldest, even)")  # fmt: skip
    parser.add_argument("--dat", default="", metavar="FILE.dat",
                        help="play this recording (looped, real time) instead of simulating: the simulator "
                             "costs the driver far more CPU at 250x400 (e.g. `stir-ros simulate rec.dat`)")  # fmt: skip
    args = parser.parse_args()
    configs = dict(c.split("=", 1) for c in args.config) if args.config else CONFIGS
    h, w = (int(v) for v in args.size.split("x"))
    env = dict(os.environ)
    env.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.update(env)
    import rclpy

    flags = Path("/proc/cpuinfo").read_text().split() if Path("/proc/cpuinfo").is_file() else []
    native = [f for f in ("avx512_bf16", "amx_bf16") if f in flags] or ["no native bf16"]
    print(f"hardware: {cpu_model()} ({', '.join(native)}), {os.cpu_count()} cores; load average "
          f"{os.getloadavg()[0]:.2f} at start", flush=True)  # fmt: skip
    stream = f"dat {args.dat} (looped)" if args.dat else "sim"
    print(f"stream: {stream} {h}x{w} at 20 kHz, {args.seconds:g} s per run, stride 200 asked for (100 images/s)", flush=True)
    rclpy.init()
    results: dict[str, list[dict[str, float]]] = {k: [] for k in configs}
    try:
        for r in range(args.repeat):
            for name, params in configs.items():
                row = run_once(name, params, h, w, args.seconds, env, str(Path(args.dat).resolve()) if args.dat else "")
                results[name].append(row)
                print(f"  repeat {r + 1} {name:10s} " + ", ".join(f"{k} {v:.3g}" for k, v in row.items()), flush=True)
    finally:
        rclpy.try_shutdown()
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end; min / median over {args.repeat} repeat(s):")
    keys = list(next(iter(results.values()))[0])
    print("| set | " + " | ".join(keys) + " |")
    print("|---|" + "---|" * len(keys))
    med = {name: {k: float(np.median([r[k] for r in rows])) for k in keys} for name, rows in results.items()}
    for name, rows in results.items():
        cells = [f"{np.min([r[k] for r in rows]):.3g} / {med[name][k]:.3g}" for k in keys]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"\ntargets (medians): >= {SPACING_SHARE:.0%} of arrival spacings within +-10 % of the mean; "
          f"p50 latency < {LATENCY_WINDOWS:g} x the measured time per window")  # fmt: skip
    for name, m in med.items():
        if not m["images"] >= MIN_IMAGES:
            print(f"  {name:12s} {m['images']:.0f} images: too few to judge (a longer --seconds, or a smaller --size)")
            continue
        spacing_ok = m["within_10pct"] >= SPACING_SHARE
        latency_ok = m["latency_p50_ms"] < LATENCY_WINDOWS * m["window_ms"]
        print(f"  {name:12s} spacing {m['within_10pct']:.0%} within ({'met' if spacing_ok else 'NOT met'}); "
              f"p50 {m['latency_p50_ms']:.0f} ms vs {LATENCY_WINDOWS:g} x {m['window_ms']:.0f} ms "
              f"({'met' if latency_ok else 'NOT met'}); {m['images_per_s']:.3g} images/s of the "
              f"{1e3 / m['window_ms']:.3g} that its median time per window sustains")  # fmt: skip
    if "old" in med:
        for name in (n for n in med if n != "old"):
            ratio = med[name]["images_per_s"] / med["old"]["images_per_s"] if med["old"]["images_per_s"] else np.nan
            print(f"images/s {name} / old (medians): {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
