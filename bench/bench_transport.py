# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Spike rate the driver -> reconstructor (tfp) pipeline sustains, in separate processes.

    python bench/bench_transport.py [--rates 10000 20000 40000] [--seconds 10] [--size 250x400]

For every sensor rate it runs, in the same session and on the same machine:

- reference: a bare rclpy publisher and subscriber process (no stir_ros code) sending packets of
  the same size at the same rate with the same QoS, counting received packets by ``seq``;
- stir_ros: ``spike_camera_driver`` (a looped .dat file, real-time pacing) -> ``spike_reconstructor``
  (tfp), each its own process, as a user starts them. The nodes load stir_ros's Fast DDS profile
  (``config/fastdds_spike_stream.xml``) unless the environment says otherwise
  (``STIR_ROS_FASTDDS_PROFILE=off`` runs them with Fast DDS's defaults, as before the profile);
- with ``--reference-with-profile`` also the bare reference with that profile, which shows how much
  of the difference is the Fast DDS configuration rather than the nodes.

It prints, per rate: packets sent and received, packets lost, frames/s received, the CPU use of
each process (user+system time / wall time, 100% = one core), and for stir_ros the images/s,
dropped windows and the reconstructor latency (packet received -> image published) p50/p95/p99
from its /diagnostics. Not a test: numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from _common import cpu_model, cpu_seconds, stop_processes  # noqa: E402  (bench/ is on sys.path)

REFERENCE_PUB = r"""
import sys, time, array, rclpy
from rclpy.qos import QoSProfile, QoSReliabilityPolicy
from stir_ros.msg import SpikePacket
topic, h, w, fpp, rate, packets = sys.argv[1], *map(int, sys.argv[2:4]), int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
rclpy.init()
node = rclpy.create_node("bench_ref_pub")
pub = node.create_publisher(SpikePacket, topic, QoSProfile(depth=50, reliability=QoSReliabilityPolicy.RELIABLE))
while pub.get_subscription_count() < 1:
    time.sleep(0.02)
time.sleep(0.5)
payload = bytes(fpp * ((h * w + 7) // 8))
t0 = time.monotonic()
deadline = t0 + 1.5 * packets * fpp / rate + 10  # a publisher that cannot keep up stops here
sent = 0
for seq in range(packets):
    due = t0 + (seq + 1) * fpp / rate
    delay = due - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    elif time.monotonic() > deadline:
        break
    msg = SpikePacket(height=h, width=w, num_frames=fpp, seq=seq, encoding="vidar_bitpacked")
    data = array.array("B"); data.frombytes(payload); msg.data = data
    pub.publish(msg)
    sent += 1
print(sent, time.monotonic() - t0, flush=True)
pub.wait_for_all_acked(rclpy.duration.Duration(seconds=2))
rclpy.try_shutdown()
"""

REFERENCE_SUB = r"""
import sys, time, rclpy
from rclpy.qos import QoSProfile, QoSReliabilityPolicy
from stir_ros.msg import SpikePacket
topic, expected, timeout, reliable = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4] == "1"
rclpy.init()
node = rclpy.create_node("bench_ref_sub")
seqs = set()
last = [time.monotonic()]
first = []
def on_packet(msg):
    seqs.add(msg.seq)
    last[0] = time.monotonic()
    if not first:
        first.append(last[0])
reliability = QoSReliabilityPolicy.RELIABLE if reliable else QoSReliabilityPolicy.BEST_EFFORT
node.create_subscription(SpikePacket, topic, on_packet, QoSProfile(depth=50, reliability=reliability))
deadline = time.monotonic() + timeout
while time.monotonic() < deadline and len(seqs) < expected:
    rclpy.spin_once(node, timeout_sec=0.1)
    if seqs and time.monotonic() - last[0] > 3:
        break
# packets received, and the seconds from the first to the last one
print(len(seqs), last[0] - first[0] if first else 0.0, flush=True)
rclpy.try_shutdown()
"""


def run_reference(h: int, w: int, fpp: int, rate: float, seconds: float, reliable: bool,
                  env: dict[str, str]) -> dict[str, float]:
    topic = f"/bench_ref_{uuid.uuid4().hex[:8]}/spikes"
    packets = int(rate * seconds / fpp)
    sub = subprocess.Popen([sys.executable, "-c", REFERENCE_SUB, topic, str(packets), str(seconds + 30), str(int(reliable))],
                           env=env, stdout=subprocess.PIPE, text=True)
    time.sleep(1.0)
    pub = subprocess.Popen([sys.executable, "-c", REFERENCE_PUB, topic, str(h), str(w), str(fpp), str(rate), str(packets)],
                           env=env, stdout=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    try:
        pub_out, _ = pub.communicate(timeout=2 * seconds + 60)
        wall = time.monotonic() - t0
        out, _ = sub.communicate(timeout=60)
    finally:
        stop_processes([pub, sub])
    sent, pub_s = pub_out.split()[:2]
    received, span = out.strip().splitlines()[-1].split()
    sent, received = int(sent), int(received)
    # frames/s delivered while streaming (first to last packet received), against the sensor rate
    fps = (received - 1) * fpp / float(span) if received > 1 and float(span) > 0 else float("nan")
    return {"sent": sent, "planned": packets, "received": received, "lost": sent - received, "wall": wall,
            "fps": fps, "publish_s": float(pub_s)}


def run_pipeline(dat: Path, h: int, w: int, fpp: int, rate: float, seconds: float, stride: int, reliable: bool,
                 env: dict[str, str], depth: int = 0, executor: str = "",
                 params: tuple[str, ...] = ()) -> dict[str, float]:
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray

    ns = f"bench_{uuid.uuid4().hex[:8]}"
    packets = int(rate * seconds / fpp)
    rclpy.init()
    node = rclpy.create_node("bench_monitor")
    diag: dict[str, str] = {}
    rates: list[float] = []
    names = {f"/{ns}/spike_reconstructor: reconstruction"}

    driver_diag: dict[str, str] = {}

    def on_diag(msg):
        for s in msg.status:
            if s.name == f"/{ns}/spike_camera_driver: spikes":
                driver_diag.update({kv.key: kv.value for kv in s.values})
            if s.name in names:
                diag.update({kv.key: kv.value for kv in s.values})
                if float(diag["input_frames_per_s"]) > 0:
                    rates.append(float(diag["input_frames_per_s"]))

    node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)
    rec = subprocess.Popen(["spike_reconstructor", "--ros-args", "-r", f"__ns:=/{ns}", "-p", "method:=tfp",
                            "-p", f"stride_frames:={stride}", "-p", "diagnostics_period_s:=0.5",
                            *(["-p", f"executor:={executor}"] if executor else []),
                            *[arg for p in params for arg in ("-p", p)],
                            *([] if reliable else ["-p", f"qos_overrides./{ns}/spikes.subscription.reliability:=best_effort"]),
                            *(["-p", f"qos_overrides./{ns}/spikes.subscription.depth:={depth}"] if depth else [])],
                           env=env)
    drv = None
    try:
        deadline = time.monotonic() + 60
        while not diag and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
        drv = subprocess.Popen(["spike_camera_driver", "--ros-args", "-r", f"__ns:=/{ns}", "-p", "source:=dat",
                                "-p", f"dat_path:={dat}", "-p", f"height:={h}", "-p", f"width:={w}", "-p", "loop:=true",
                                "-p", f"frame_rate_hz:={rate}", "-p", f"frames_per_packet:={fpp}",
                                "-p", f"max_frames:={packets * fpp}", "-p", "wait_for_subscribers:=1",
                                *(["-p", f"qos_overrides./{ns}/spikes.publisher.depth:={depth}"] if depth else [])], env=env)
        cpu0 = {"driver": cpu_seconds(drv.pid), "reconstructor": cpu_seconds(rec.pid)}
        t0 = time.monotonic()
        cpu_end = dict(cpu0)
        while drv.poll() is None and time.monotonic() - t0 < seconds + 60:
            rclpy.spin_once(node, timeout_sec=0.1)
            cpu_end = {"driver": cpu_seconds(drv.pid), "reconstructor": cpu_seconds(rec.pid)}
        wall = time.monotonic() - t0
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.1)
        received = int(diag.get("input_packets", 0))
        # A driver that cannot keep up has not sent every planned packet when the run ends: lost
        # counts only what it published and the reconstructor did not receive (the driver's last
        # diagnostics may be up to a second old: the seq gaps the reconstructor counts are exact).
        sent = int(driver_diag.get("packets_published", packets))
        return {
            "sent": max(sent, received), "planned": packets, "received": received, "lost": max(0, sent - received),
            "lost_seq": int(diag.get("input_lost_packets", 0)), "wall": wall,
            # median over the 0.5 s diagnostics periods while streaming (start and end excluded)
            "fps": float(np.median(rates[1:-1])) if len(rates) > 2 else float("nan"),
            "cpu_driver": (cpu_end["driver"] - cpu0["driver"]) / wall,
            "cpu_reconstructor": (cpu_end["reconstructor"] - cpu0["reconstructor"]) / wall,
            "images": int(diag.get("images_published", 0)), "dropped": int(diag.get("windows_dropped", 0)),
            "p50": float(diag.get("latency_ms_p50", "nan")), "p95": float(diag.get("latency_ms_p95", "nan")),
            "p99": float(diag.get("latency_ms_p99", "nan")),
            "sustainable": driver_diag.get("sustainable", ""),
            "statement": driver_diag.get("mode_statement", ""),
            "publish_busy": driver_diag.get("publish_busy", ""),
        }
    finally:
        stop_processes([drv, rec])
        node.destroy_node()
        rclpy.try_shutdown()


def _reference_line(ref: dict[str, float], rate: float) -> str:
    behind = "" if ref["sent"] == ref["planned"] else f" (publisher stopped after {ref['publish_s']:.0f} s: too slow)"
    return (f"{ref['received']}/{ref['sent']} packets of {ref['planned']}{behind}, lost {ref['lost']} "
            f"({100 * ref['lost'] / max(ref['sent'], 1):.2f}%), {ref['fps']:.0f} frames/s received "
            f"({100 * ref['fps'] / rate:.0f}% of real time)")


def write_test_dat(path: Path, h: int, w: int, frames: int = 2000, chunk: int = 50) -> None:
    """Write the looped .dat file: ``frames`` random frames, 30 % spikes, ``chunk`` at a time.

    One 2000x1000 block of float64 would take 32 GB; the values are those of one draw.
    """
    from stir_ros.core.dat import DatWriter

    rng = np.random.default_rng(0)
    with DatWriter(path, h, w) as writer:
        for first in range(0, frames, chunk):
            writer.write(rng.random((min(chunk, frames - first), h, w)) < 0.3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[10000.0, 20000.0, 40000.0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--size", default="250x400")
    parser.add_argument("--frames-per-packet", type=int, default=0,
                        help="frames per packet (0: the measured choice for the size, about 2.5 MB, at most 100)")
    parser.add_argument("--stride-frames", type=int, default=200)
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--depth", type=int, default=0,
                        help="history depth of the spikes topic (qos_overrides; 0: the nodes' default)")
    parser.add_argument("--executor", default="", help="the reconstructor's executor parameter (empty: its default)")
    parser.add_argument("--param", action="append", default=[], metavar="NAME:=VALUE",
                        help="one more parameter of the reconstructor (repeatable), e.g. worker_niceness:=0")
    parser.add_argument("--reference-with-profile", action="store_true",
                        help="also run the bare rclpy reference with stir_ros's Fast DDS profile")
    parser.add_argument("--dat", default="", metavar="FILE.dat",
                        help="loop this recording (of --size) instead of random frames, e.g. one of `stir-ros simulate "
                             "--sensor realistic` whose hot and dead pixels the repair has to find and fill")  # fmt: skip
    parser.add_argument("--best-effort", action="store_true",
                        help="best-effort spikes subscription (qos_overrides), as REP-2003 suggests, instead of reliable")
    args = parser.parse_args()
    h, w = (int(v) for v in args.size.split("x"))
    if args.frames_per_packet <= 0:
        from stir_ros.runtime.throughput import recommended_frames_per_packet

        args.frames_per_packet = recommended_frames_per_packet(h, w)
    env = dict(os.environ)
    env.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.update(env)
    from stir_ros.runtime.dds_profile import apply_fastdds_profile

    profile_env = dict(env)
    nodes_profile = apply_fastdds_profile(profile_env)

    print(f"hardware: {cpu_model()}, {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}")
    print(f"stream: {h}x{w}, {args.frames_per_packet} frames/packet "
          f"({args.frames_per_packet * ((h * w + 7) // 8) / 1e6:.2f} MB), {args.seconds:g} s per run; "
          f"{'recording ' + args.dat if args.dat else 'random frames'}; "
          f"tfp window 41, stride {args.stride_frames}; subscription {'reliable' if not args.best_effort else 'best effort'}"
          + (f"; reconstructor {' '.join(args.param)}" if args.param else ""))
    print(f"DDS: stir_ros nodes: {nodes_profile.message}; reference: "
          f"{env.get('FASTRTPS_DEFAULT_PROFILES_FILE') or 'Fast DDS defaults'}")
    with tempfile.TemporaryDirectory() as tmp:
        dat = Path(args.dat).resolve() if args.dat else Path(tmp) / "bench.dat"
        if not args.dat:
            write_test_dat(dat, h, w)
        for rate in args.rates:
            mbps = rate * ((h * w + 7) // 8) / 1e6
            print(f"\n== {rate:g} Hz ({mbps:.0f} MB/s of packed spikes)")
            if not args.skip_reference:
                ref = run_reference(h, w, args.frames_per_packet, rate, args.seconds, not args.best_effort, env)
                print(f"  reference bare rclpy pub/sub: {_reference_line(ref, rate)}")
            if args.reference_with_profile and nodes_profile.path:
                ref = run_reference(h, w, args.frames_per_packet, rate, args.seconds, not args.best_effort, profile_env)
                print(f"  reference with stir_ros's Fast DDS profile: {_reference_line(ref, rate)}")
            res = run_pipeline(dat, h, w, args.frames_per_packet, rate, args.seconds, args.stride_frames,
                               not args.best_effort, env, args.depth, args.executor, tuple(args.param))
            behind = "" if res["sent"] >= res["planned"] else f" of {res['planned']} planned (the driver fell behind)"
            print(f"  stir_ros driver -> reconstructor: {res['received']}/{res['sent']} packets{behind}, "
                  f"lost {res['lost']} ({100 * res['lost'] / max(res['sent'], 1):.2f}%; seq gaps {res['lost_seq']}), "
                  f"{res['fps']:.0f} frames/s received (median; {100 * res['fps'] / rate:.0f}% of real time)")
            if res.get("statement"):
                print(f"    driver at start: {res['statement']}; publishing thread busy {res['publish_busy']} at the end")
            print(f"    CPU: driver {100 * res['cpu_driver']:.0f}%, reconstructor {100 * res['cpu_reconstructor']:.0f}% "
                  f"of one core; images {res['images']} ({res['dropped']} windows dropped); "
                  f"latency p50 {res['p50']:.1f} ms, p95 {res['p95']:.1f} ms, p99 {res['p99']:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
