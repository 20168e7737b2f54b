# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The driver's mode statement and ``/diagnostics``: can it sustain its mode, and does it.

A part of :class:`stir_ros.ros.driver_node.DriverWork` (a mixin: ``self`` is the node). At
configure the per-packet work is measured (:func:`stir_ros.runtime.throughput.verdict`: the mode
statement, logged); while publishing, the measured rate and the publishing thread's load are
reported once a second.
"""

from __future__ import annotations

import time
from dataclasses import replace

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node

from stir_ros.runtime.throughput import ModeVerdict, verdict
from stir_ros.msg import SpikePacket
from stir_ros.ros.conversions import diagnostic_status

__all__ = ["DriverDiagnostics"]


class DriverDiagnostics:
    """The mode verdict (measured at configure) and the diagnostics timer's status."""

    def _state_mode(self) -> ModeVerdict:
        """Measure the driver's per-packet work and say whether the mode can be sustained (logged)."""
        s, source = self.settings, self.source
        # A plain publisher (a LifecyclePublisher would not publish before activation) on a hidden
        # topic of its own: the probe's packets reach no reader and never enter the stream.
        probe_pub = Node.create_publisher(self, SpikePacket, "~/_mode_probe", 1)  # type: ignore[arg-type]
        try:
            measured, what = self.writer.probe(probe_pub.publish)
        finally:
            self.destroy_publisher(probe_pub)
        result = verdict(source.height, source.width, source.frame_rate_hz, s.frames_per_packet, measured, what,
                         self.segment_bytes)  # fmt: skip
        if s.source == "sim" and result.too_slow:
            sensor = f" --sensor {s.sim_sensor}" if s.sim_sensor.strip() not in ("", "ideal") else ""
            result = replace(result, text=(
                f"{result.text}; the simulator is the limit: simulate once (stir-ros simulate rec.dat --height "
                f"{source.height} --width {source.width} --frame-rate-hz {source.frame_rate_hz:.10g} --frames 20000"
                f"{sensor}) and replay it in real time (source:=dat dat_path:=rec.dat loop:=true), or lower "
                "height, width or frame_rate_hz"))  # fmt: skip
        if not s.realtime:
            log = self.get_logger().info  # as fast as possible: there is no rate to keep
        else:
            log = self.get_logger().info if result.sustainable else self.get_logger().warning
        log(f"mode {result.text}")
        return result

    def _publish_diagnostics(self) -> None:
        elapsed = max(time.monotonic() - self._started, 1e-9)
        s, v = self.settings, self.verdict
        publishing = self._thread is not None
        if publishing:
            self.published_fps, self.publish_busy = self.meter.take()
        # Sustained while streaming: the thread keeps up (never more than 100 % busy) and does not lag.
        keeping_up = not s.realtime or (self.lag_s <= 0.5 and self.publish_busy < 1.0)
        values = {
            "source": s.source,
            "packets_published": self.packets,
            "frames_published": self.frames,
            "mean_frame_rate_hz": self.frames / elapsed,
            "lag_s": self.lag_s,
            "required_frames_per_s": v.required_fps,
            "required_gb_per_s": v.required_fps * self.writer.frame_bytes / 1e9,
            "packet_bytes": len(self.writer.buffer),
            "shm_segment_bytes": self.segment_bytes or 0,
            "probe_frames_per_s": round(v.measured_fps),
            "published_frames_per_s": round(self.published_fps),
            "publish_busy": round(self.publish_busy, 3),
            "sustainable": bool(v.sustainable and keeping_up),
            "mode_statement": v.text,
        }
        level = "ok" if (v.sustainable or not s.realtime) and keeping_up else "warn"
        if not publishing:
            message = "inactive (lifecycle): not publishing"
        elif self.lag_s > 0.5:
            message = "behind real time"
        elif level == "warn":
            message = "mode not sustainable" if not v.sustainable else "publishing thread saturated"
        else:
            message = "publishing"
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status = [diagnostic_status(f"{self.get_fully_qualified_name()}: spikes", s.frame_id, level, message, values)]
        try:
            self.diag_pub.publish(msg)
        except Exception:
            if not self.context.ok():
                return  # stopping: the timer fired as the context went, a publish into it is not an error
            raise

