# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Per-stage cost of the spike path, per frame, against this machine's memcpy and unpackbits.

    python bench/bench_stages.py [--sizes 250x400 1000x1000 2000x1000] [--frames-per-packet 100]
                                 [--rate 20000] [--stride-frames 200] [--repeat 7]

For every frame size it times, in one process and one run, each stage a frame goes through
between the driver's .dat file and the reconstructor's TFP image, and prints one table:

- physical limit: a plain memcpy of the packet's bytes (``np.copyto`` into a buffer allocated
  once) and ``np.unpackbits`` of the same bytes;
- driver: ``DatSource.read`` (memory map, bottom-up byte rows reversed, one copy), the message
  built around it (``make_packet``: one more copy), ``DatSource.read_into`` straight into a reused
  message buffer (what the driver does now), and the pack that a source of unpacked frames needs;
- transport: ``rclpy.serialization.serialize_message`` and ``deserialize_message`` of a
  SpikePacket with N frames (the conversions and copies rclpy and the rmw make around DDS; the
  typed subscription the reconstructor had), against the raw subscription it has now (one
  ``bytes`` copy, :func:`stir_ros.core.spike_cdr.parse_spike_packet`);
  ``publish`` of the message and of the same packet already serialized (no subscriber matched:
  conversion and serialisation, not the shared-memory hand-over);
- reconstructor: payload view + validation + window cut (ring buffer, per packet); the decode of
  a window (unpack, only the ``window_length`` frames a window uses); TFP from the decoded window
  (the engine path) and TFP from the packed frames (:func:`stir_ros.core.classical.tfp_packed`).

Costs are per stream frame (window stages divided by ``stride_frames``, as only one window is
cut every ``stride_frames`` frames), in microseconds, the fastest of ``--repeat`` runs; "core
@ rate" is the share of one core the stage takes at ``--rate``; GB/s is packed bytes per second of
that stage. Not a test: numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from _common import cpu_model  # noqa: E402  (bench/ is on sys.path)


def timed(fn: Callable[[], object], repeat: int, warmup: int = 1) -> float:
    """Fastest of ``repeat`` calls of ``fn()`` in seconds, after ``warmup`` untimed ones.

    On a shared machine the fastest run is the one least disturbed by other processes.
    """
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def stages(h: int, w: int, fpp: int, rate: float, stride: int, window: int, repeat: int,
           tmp: Path) -> list[tuple[str, float, str]]:
    """(stage, seconds per stream frame, what bounds it) for one frame size."""
    from stir_ros.core import classical
    from stir_ros.core.dat import DatWriter
    from stir_ros.core.packing import pack_frames, packed_frame_bytes, unpack_frames
    from stir_ros.core.sources import DatSource
    from stir_ros.core.packet import PacketHeader, validate_packet
    from stir_ros.core.stream import WindowCutter

    fb = packed_frame_bytes(h, w)
    nbytes = fpp * fb
    rng = np.random.default_rng(0)
    total = max(4 * fpp, window + stride)
    dat = tmp / f"stages_{h}x{w}.dat"
    with DatWriter(dat, h, w) as writer:
        for first in range(0, total, 50):
            writer.write(rng.random((min(50, total - first), h, w)) < 0.3)
    rows: list[tuple[str, float, str]] = []

    def row(name: str, seconds: float, frames: int, bound: str) -> None:
        rows.append((name, seconds / frames, bound))

    # ---- physical limit
    src = np.frombuffer(rng.bytes(nbytes), np.uint8).copy()
    dst = np.empty_like(src)
    row("memcpy (np.copyto, reused buffer)", timed(lambda: np.copyto(dst, src), repeat), fpp, "memory bandwidth")
    row("np.unpackbits of the same bytes", timed(lambda: np.unpackbits(src), repeat), fpp,
        "memory bandwidth (8x the bytes written)")

    # ---- driver
    source = DatSource(dat, h, w, rate, loop=True)
    row("driver: DatSource.read (flip copy)", timed(lambda: source.read(fpp), repeat), fpp,
        "one copy, strided rows")
    try:
        from stir_ros.msg import SpikePacket
        from stir_ros.core.packet import PacketHeader
        from stir_ros.ros.conversions import make_packet

        have_ros = True
    except ImportError:
        have_ros = False
    if have_ros:
        def read_and_build() -> object:
            block = source.read(fpp)
            header = PacketHeader(seq=0, first_frame_index=0, num_frames=block.num_frames, height=h, width=w,
                                  encoding="vidar_bitpacked", stamp_ns=0, frame_rate_hz=rate)
            return make_packet(block.data, header)

        row("driver before: read + make_packet", timed(read_and_build, repeat), fpp,
            "two copies + a fresh 1-2 page-faulted buffer per packet")
    if hasattr(source, "read_into"):
        buf = np.empty(nbytes, np.uint8)
        row("driver now: DatSource.read_into (reused buffer)", timed(lambda: source.read_into(buf, fpp), repeat),
            fpp, "one strided copy (memory bandwidth)")
    unpacked = unpack_frames(src, h, w, fpp)
    row("pack (a source of unpacked frames, np.packbits)", timed(lambda: pack_frames(unpacked), repeat), fpp,
        "reads 8x the bytes")
    source.close()

    # ---- transport (rclpy conversions and CDR)
    if have_ros:
        from rclpy.serialization import deserialize_message, serialize_message

        header = PacketHeader(seq=0, first_frame_index=0, num_frames=fpp, height=h, width=w,
                              encoding="vidar_bitpacked", stamp_ns=0, frame_rate_hz=rate)
        msg = make_packet(src, header)
        row("serialize_message (py -> C -> CDR)", timed(lambda: serialize_message(msg), repeat), fpp,
            "two copies + allocation")
        raw = serialize_message(msg)
        row("reconstructor before: deserialize_message (CDR -> C -> py)",
            timed(lambda: deserialize_message(raw, SpikePacket), repeat), fpp,
            "three copies (C message, bytes, array) + two fresh buffers")
        from stir_ros.core.spike_cdr import parse_spike_packet

        row("reconstructor now: raw bytes + parse_spike_packet",
            timed(lambda: parse_spike_packet(bytes(memoryview(raw))), repeat), fpp,
            "one copy (rclpy's bytes); header read in place")
        rows.extend(_publish_stages(msg, raw, fpp, repeat))

    # ---- reconstructor
    payload = src
    cutter = WindowCutter(window, stride)
    index = [0]

    def cut() -> object:
        header = PacketHeader(0, index[0], fpp, h, w, "vidar_bitpacked", 0, rate)
        windows = cutter.push_payload(validate_packet(payload, header), header)
        index[0] += fpp
        return windows

    row("payload view + validate + window cut", timed(cut, repeat), fpp, "Python overhead (no copy)")
    frames_needed = max(fpp, window + stride)
    packets = [np.frombuffer(rng.bytes(fpp * fb), np.uint8) for _ in range(-(-frames_needed // fpp) + 1)]
    cutter2 = WindowCutter(window, stride)
    wins = []
    for i, p in enumerate(packets):
        wins += cutter2.push_payload(p, PacketHeader(i, i * fpp, fpp, h, w, "vidar_bitpacked", 0, rate))
    win = wins[0]
    decoded = [None]

    def decode() -> object:
        blocks = [chunk.frames(a, b) for chunk, a, b in win._parts]
        decoded[0] = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
        return decoded[0]

    row(f"window decode (unpack {window} frames, per window / {stride})", timed(decode, repeat), stride,
        "memory bandwidth (writes 8x the bytes)")
    stack = decoded[0][None]
    row(f"TFP from decoded window (engine path, / {stride})",
        timed(lambda: np.clip(classical.tfp(stack, alpha=0.6), 0.0, 1.0), repeat), stride,
        "reads T x H x W bytes")
    if hasattr(classical, "tfp_packed"):
        parts = [chunk._payload[(a - chunk.first) * fb : (b - chunk.first) * fb] for chunk, a, b in win._parts]

        def tfp_packed() -> object:
            return np.clip(classical.tfp_packed(parts, h, w, alpha=0.6), 0.0, 1.0)

        row(f"TFP from packed frames (running sum, / {stride})", timed(tfp_packed, repeat), stride,
            "reads T x H x W / 8 bytes + a per-pixel table")
    return rows


def _publish_stages(msg: object, raw: bytes, fpp: int, repeat: int) -> list[tuple[str, float, str]]:
    import rclpy
    from rclpy.qos import QoSProfile, QoSReliabilityPolicy

    from stir_ros.msg import SpikePacket

    rows = []
    rclpy.init()
    try:
        node = rclpy.create_node(f"bench_stages_{os.getpid()}")
        pub = node.create_publisher(SpikePacket, f"/bench_stages_{os.getpid()}/spikes",
                                    QoSProfile(depth=50, reliability=QoSReliabilityPolicy.RELIABLE))
        rows.append(("publish(msg), no subscriber", timed(lambda: pub.publish(msg), repeat) / fpp,
                     "convert + serialize: two copies"))
        rows.append(("publish(serialized bytes), no subscriber", timed(lambda: pub.publish(raw), repeat) / fpp,
                     "one copy into the writer's payload"))
        node.destroy_node()
    finally:
        rclpy.try_shutdown()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["250x400", "1000x1000", "2000x1000"])
    parser.add_argument("--frames-per-packet", type=int, default=0,
                        help="frames per packet (0: the driver's measured choice per size: 100, 20, 10)")
    parser.add_argument("--rate", type=float, default=20000.0, help="frame rate for the 'core @ rate' column")
    parser.add_argument("--stride-frames", type=int, default=200)
    parser.add_argument("--window", type=int, default=41)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    os.environ.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    print(f"hardware: {cpu_model()}, {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}")
    print(f"TFP window {args.window}, stride {args.stride_frames}; "
          f"'core @ {args.rate:g} Hz' = per-frame cost x rate (100 % = one core); fastest of {args.repeat}")
    from stir_ros.runtime.throughput import recommended_frames_per_packet

    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            h, w = (int(v) for v in size.split("x"))
            fb = (h * w + 7) // 8
            fpp = args.frames_per_packet or recommended_frames_per_packet(h, w)
            rows = stages(h, w, fpp, args.rate, args.stride_frames, args.window, args.repeat, Path(tmp))
            print(f"\n{size}: {fb / 1e3:g} KB per frame, {args.rate * fb / 1e9:.2f} GB/s at {args.rate:g} Hz; "
                  f"{fpp} frames per packet ({fpp * fb / 1e6:.2f} MB)")
            print(f"  {'stage':<58} {'us/frame':>9} {'core@rate':>9} {'GB/s':>7}  bound")
            for name, sec, bound in rows:
                print(f"  {name:<58} {sec * 1e6:9.2f} {100 * sec * args.rate:8.0f}% {fb / sec / 1e9:7.2f}  {bound}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
