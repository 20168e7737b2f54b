# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""``stir-ros perf TOPIC`` and ``stir-ros echo TOPIC``: look at a live spike stream.

``perf`` prints, once per ``--period``, the rates, the loss counted from ``seq`` gaps, the delay
of the header stamps behind this node's clock and the drift of the header clock against the
sensor clock (:mod:`stir_ros.runtime.stream_health`). ``echo`` prints one line per packet: its
header fields and the fraction of pixels that fired, never the payload itself.

Both subscribe reliably with a depth of 50, as the reconstructor does (``--best-effort`` for
REP-2003 sensor QoS). ``--ros-args`` after the command go to the node (``-p use_sim_time:=true``
during ``bag play --clock``).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from stir_ros.core.errors import ros_arguments_checked
from stir_ros.core.text_output import printable, write_json

__all__ = ["add_perf_arguments", "add_echo_arguments", "echo_line", "run_perf", "run_echo"]

DEFAULT_DEPTH = 50


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("topic", metavar="TOPIC", help="SpikePacket topic, e.g. /spikes")
    parser.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0: Ctrl-C)")
    parser.add_argument("--best-effort", action="store_true", help="subscribe best effort (default: reliable)")


def add_perf_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``stir-ros perf``."""
    _common(parser)
    parser.add_argument("--period", type=float, default=1.0, help="seconds between report lines")
    parser.add_argument("--json", metavar="OUT.json", help="write every report and the totals here at the end")


def add_echo_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``stir-ros echo``."""
    _common(parser)
    parser.add_argument("--count", type=int, default=0, help="stop after this many packets (0: no limit)")


def _check(args: argparse.Namespace) -> None:
    from stir_ros.core.errors import ConfigError

    if not (args.duration >= 0 and args.duration < 1e9):
        raise ConfigError(f"--duration must be a number of seconds >= 0, got {args.duration}")
    period = getattr(args, "period", 1.0)
    if not (0.05 <= period <= 3600):
        raise ConfigError(f"--period must be in [0.05, 3600] s, got {period}")
    if getattr(args, "count", 0) < 0:
        raise ConfigError(f"--count must be >= 0, got {args.count}")


def _spin(args: argparse.Namespace, name: str, on_packet: Any, on_tick: Any = None, tick_s: float = 1.0) -> None:
    """Subscribe to ``args.topic`` and spin until the duration ends, ``on_packet`` is False, or Ctrl-C."""
    import rclpy
    from rclpy.qos import QoSProfile, QoSReliabilityPolicy

    from stir_ros.msg import SpikePacket

    with ros_arguments_checked():
        rclpy.init(args=["stir_ros", *getattr(args, "ros_args", [])])
    try:
        node = rclpy.create_node(name)
        reliability = QoSReliabilityPolicy.BEST_EFFORT if args.best_effort else QoSReliabilityPolicy.RELIABLE
        state = {"done": False}

        def callback(msg: SpikePacket) -> None:
            now_ns = node.get_clock().now().nanoseconds
            if on_packet(msg, now_ns) is False:
                state["done"] = True

        node.create_subscription(SpikePacket, args.topic, callback, QoSProfile(depth=DEFAULT_DEPTH, reliability=reliability))
        start = time.monotonic()
        next_tick = start + tick_s
        try:
            while not state["done"] and rclpy.ok():
                rclpy.spin_once(node, timeout_sec=min(0.1, tick_s))
                now = time.monotonic()
                if on_tick is not None and now >= next_tick:
                    on_tick(node.get_clock().now().nanoseconds)
                    next_tick += tick_s
                if args.duration and now - start >= args.duration:
                    break
        except KeyboardInterrupt:
            pass
        node.destroy_node()
    finally:
        rclpy.try_shutdown()


def run_perf(args: argparse.Namespace) -> int:
    """Entry point of ``stir-ros perf``."""
    from stir_ros.runtime.stream_health import StreamHealth
    from stir_ros.ros.conversions import packet_header

    _check(args)
    health = StreamHealth()
    reports: list[dict[str, Any]] = []
    sizes: set[str] = set()

    def on_packet(msg: Any, now_ns: int) -> None:
        sizes.add(f"{msg.height}x{msg.width} {printable(msg.encoding)} @ {msg.frame_rate_hz:g} Hz")
        health.add(packet_header(msg), now_ns, len(msg.data))

    def on_tick(now_ns: int) -> None:
        report = health.report(now_ns)
        reports.append(vars(report))
        print(report.line(), flush=True)

    print(f"perf {printable(args.topic)}: one line every {args.period:g} s (Ctrl-C to stop)", flush=True)
    _spin(args, "stir_ros_perf", on_packet, on_tick, args.period)
    totals = health.totals
    print(
        f"total: {totals['packets']} packets, {totals['frames']} frames, {totals['bytes'] / 1e6:.1f} MB, "
        f"lost {totals['lost']}, reordered {totals['reordered']}, restarts {totals['restarts']}, "
        f"rejected {totals['rejected']}; "
        f"streams seen: {', '.join(sorted(sizes)) or 'none'}",
        flush=True,
    )
    if args.json:
        write_json(args.json, {"topic": args.topic, "reports": reports, "totals": totals, "streams": sorted(sizes),
                               "rejections": health.rejections})
    return 0


def echo_line(msg: Any) -> str:
    """One line describing a packet (header fields and spike density; never the payload)."""
    import numpy as np

    from stir_ros.ros.conversions import packet_payload, stamp_to_ns

    payload = packet_payload(msg)
    pixels = int(msg.height) * int(msg.width) * int(msg.num_frames)
    if msg.encoding == "vidar_bitpacked":
        ones = int(np.bitwise_count(payload).sum())
    else:
        ones = int(np.count_nonzero(payload))
    density = f"{100.0 * ones / pixels:.2f}%" if pixels else "n/a"
    stamp = stamp_to_ns(msg.header.stamp)
    return (
        f"seq {msg.seq} stamp {stamp // 1_000_000_000}.{stamp % 1_000_000_000:09d} "
        f"frame_id '{printable(msg.header.frame_id)}' first_frame {msg.first_frame_index} frames {msg.num_frames} "
        f"{msg.height}x{msg.width} {msg.frame_rate_hz:g} Hz {printable(msg.encoding)} {len(msg.data)} B fired {density}"
    )


def run_echo(args: argparse.Namespace) -> int:
    """Entry point of ``stir-ros echo``."""
    _check(args)
    seen = 0

    def on_packet(msg: Any, now_ns: int) -> bool:
        nonlocal seen
        print(echo_line(msg), flush=True)
        seen += 1
        return not (args.count and seen >= args.count)

    _spin(args, "stir_ros_echo", on_packet)
    return 0
