# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""``spike_camera_driver``: publishes SpikePackets from a .dat file, a simulator or a camera SDK.

Topics (relative names, remappable):
    spikes               stir_ros/msg/SpikePacket, ``frames_per_packet`` frames each
    spikes/camera_info   sensor_msgs/CameraInfo, same header as each packet
    /diagnostics         diagnostic_msgs/DiagnosticArray, once a second

Clocks: ``first_frame_index`` counts frames since the stream started (sensor clock). The header
stamp of a packet is the node clock at the start of publishing plus ``first_frame_index /
frame_rate_hz`` (nominal capture time, exact and monotonic); with ``realtime`` the packets leave
at those times. QoS: reliable, volatile, keep last 50 (REP-2003 for sensor drivers),
overridable through ``qos_overrides./<topic>.publisher.*`` parameters.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import replace
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.lifecycle import LifecycleNode
from rclpy.node import Node
from rclpy.qos import QoSDurabilityPolicy, QoSHistoryPolicy, QoSProfile, QoSReliabilityPolicy
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CameraInfo

from stir_ros.runtime.dds_profile import active_shm_segment_size
from stir_ros.core.errors import StirRosError
from stir_ros.core.sources import SpikeSource
from stir_ros.runtime.throughput import PublishMeter
from stir_ros.msg import SpikePacket
from stir_ros.ros import RateLimitedLog
from stir_ros.ros.conversions import STEADY, camera_info_from_file, default_camera_info, ns_to_stamp
from stir_ros.ros.conversions import parameter_descriptor, restamp_camera_info
from stir_ros.ros.driver_diagnostics import DriverDiagnostics
from stir_ros.ros.driver_settings import DriverSettings, make_source
from stir_ros.ros.graph import DRIVER_NAME, DRIVER_PARAMETERS
from stir_ros.ros.lifecycle import ManagedTransitions, PlainTransitions
from stir_ros.ros.node_main import destroy_entities, run_node
from stir_ros.ros.packet_writer import PacketWriter

__all__ = [
    "DriverSettings", "DriverWork", "PacketWriter", "SpikeCameraDriver", "ManagedSpikeCameraDriver", "make_source", "main",
    "main_lifecycle",
]  # fmt: skip

#: REP-2003: sensor drivers publish reliable (compatible with best-effort and reliable readers).
#: Depth 50 packets (250 ms at 20 kHz with 100 frames per packet) rides out a slow reader.
DRIVER_QOS = QoSProfile(
    history=QoSHistoryPolicy.KEEP_LAST, depth=50,
    reliability=QoSReliabilityPolicy.RELIABLE, durability=QoSDurabilityPolicy.VOLATILE,
)  # fmt: skip


class DriverWork(DriverDiagnostics):
    """The driver's work, shared by the plain node and the managed (lifecycle) one.

    A mixin for an rclpy ``Node`` or ``LifecycleNode``: :meth:`_declare` (constructor),
    :meth:`_configure` (parameters, source, calibration, publishers), :meth:`_activate` (start the
    publishing thread), :meth:`_deactivate` (stop it; the stream resumes where it stopped) and
    :meth:`_cleanup` (close the source, destroy the publishers).
    """

    node_name = DRIVER_NAME

    def _declare(self) -> None:
        for spec in DRIVER_PARAMETERS:
            self.declare_parameter(spec.name, spec.default, parameter_descriptor(DRIVER_NAME, replace(spec, dynamic=False)))
        self.settings: DriverSettings | None = None  # None: not configured
        self.source: SpikeSource | None = None
        self._log = RateLimitedLog()
        self._stop = threading.Event()
        self.finished = threading.Event()
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._entities: list[Any] = []

    def _configure(self) -> None:
        """Read and validate the parameters, open the source, create the publishers."""
        values = {spec.name: self.get_parameter(spec.name).value for spec in DRIVER_PARAMETERS}
        s = DriverSettings.from_mapping(values)
        source = make_source(s)
        try:
            if s.camera_info_url:
                self.camera_info = camera_info_from_file(s.camera_info_url, s.frame_id)
            else:
                self.camera_info = default_camera_info(source.height, source.width, s.frame_id)
        except BaseException:
            source.close()
            raise
        self.settings, self.source = s, source
        overrides = QoSOverridingOptions.with_default_policies()
        self.spikes_pub = self.create_publisher(SpikePacket, "spikes", DRIVER_QOS, qos_overriding_options=overrides)
        self.info_pub = self.create_publisher(
            CameraInfo, "spikes/camera_info", DRIVER_QOS, qos_overriding_options=overrides
        )
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.packets = 0
        self.frames = 0
        self.lag_s = 0.0
        self.writer = PacketWriter(source, s)
        self.meter = PublishMeter()
        self.published_fps, self.publish_busy = 0.0, 0.0
        self.segment_bytes = active_shm_segment_size(os.environ)
        self.verdict = self._state_mode()
        self._started = time.monotonic()
        self.finished.clear()
        self.error = None
        timer = self.create_timer(1.0, self._publish_diagnostics, clock=STEADY)  # not stopped with /clock
        self._entities = [self.spikes_pub, self.info_pub, self.diag_pub, timer]

    def _activate(self) -> None:
        """Start (or resume) publishing in a thread of its own."""
        s = self.settings
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="spike_publisher", daemon=True)
        self._thread.start()
        self.get_logger().info(
            f"publishing {s.source} {self.source.height}x{self.source.width} at {s.frame_rate_hz:g} Hz, "
            f"{s.frames_per_packet} frames per packet on {self.spikes_pub.topic_name}"
        )

    def _deactivate(self) -> None:
        """Stop the publishing thread; source and position are kept."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        self._thread = None

    def _cleanup(self) -> None:
        """Undo :meth:`_configure`."""
        self.stop()
        destroy_entities(self, self._entities)
        self._entities = []
        self.settings = self.source = None

    # ------------------------------------------------------------------ publishing thread

    def _wait_for_subscribers(self) -> None:
        s = self.settings
        deadline = time.monotonic() + s.wait_for_subscribers_timeout_s
        while self.spikes_pub.get_subscription_count() < s.wait_for_subscribers and not self._stop.is_set():
            if time.monotonic() > deadline:
                self.get_logger().warning(
                    f"only {self.spikes_pub.get_subscription_count()} of {s.wait_for_subscribers} subscribers "
                    f"after {s.wait_for_subscribers_timeout_s:g} s; publishing anyway"
                )
                return
            self._stop.wait(0.02)
        # The publisher has matched the reader; give the reader a moment to match the publisher
        # too, or a best-effort reader drops the first packets.
        self._stop.wait(0.5)

    def _run(self) -> None:
        try:
            self._publish_loop()
        except StirRosError as err:
            self.error = err
            self.get_logger().error(f"spike source failed: {err}")
        except Exception as err:  # noqa: BLE001 - reported, then the node exits non-zero
            if not self.context.ok():
                return  # shut down (SIGINT) while publishing: not an error
            self.error = err
            self.get_logger().error(f"driver thread crashed: {err!r}")
        finally:
            self.finished.set()

    def _publish_loop(self) -> None:
        s = self.settings
        if s.wait_for_subscribers > 0:
            self._wait_for_subscribers()
        rate = float(self.source.frame_rate_hz)
        info = restamp_camera_info(self.camera_info, 0)  # this thread's own copy, restamped per packet
        # Resumed after a deactivation: the stream goes on from its frame and seq, on today's clock.
        index, seq = self.frames, self.packets
        t0_wall = time.monotonic() - index / rate
        t0_stamp = self.get_clock().now().nanoseconds - round(index * 1e9 / rate)
        self.meter.take()  # the period starts now, not at configure
        while not self._stop.is_set():
            want = s.frames_per_packet
            if s.max_frames:
                want = min(want, s.max_frames - index)
                if want <= 0:
                    break
            started = time.perf_counter()
            msg = self.writer.read(want)
            if msg is None:
                break
            busy = time.perf_counter() - started
            n = msg.num_frames
            if s.realtime:
                # Leave when the last frame of the packet has been captured.
                due = t0_wall + (index + n) / rate
                delay = due - time.monotonic()
                if delay > 0:
                    self._stop.wait(delay)
                self.lag_s = max(0.0, -delay)
                if self.lag_s > 0.5:
                    why = (f"the start-up measurement said it could ({self.verdict.text}): the machine is busier "
                           "now, the source or the transport slower (publish_busy in /diagnostics)"
                           if self.verdict.sustainable else self.verdict.text)  # fmt: skip
                    self._log(self.get_logger().warning, "lag",
                              f"{self.lag_s:.2f} s behind real time: the driver cannot sustain {rate:g} Hz; {why}")
            started = time.perf_counter()
            msg.seq, msg.first_frame_index = seq, index
            msg.header.stamp = ns_to_stamp(t0_stamp + round(index * 1e9 / rate))
            self.spikes_pub.publish(msg)  # converted and serialised before it returns: the message is reused
            info.header.stamp = msg.header.stamp
            self.info_pub.publish(info)
            self.meter.add(n, busy + time.perf_counter() - started)
            index += n
            seq += 1
            self.packets, self.frames = seq, index
        stopped = self._stop.is_set()  # deactivated or shutting down
        what = "stopped" if stopped else "end of stream"
        self.get_logger().info(f"{what} after {self.frames} frames in {self.packets} packets")
        if not stopped:
            # Reliable delivery of the last packets before the process exits. Not when stopped: the
            # transition (or the signal) waits on this thread, and a reader that does not acknowledge
            # (a best-effort one counts as not acknowledging) held every deactivate for the full 2 s.
            self.spikes_pub.wait_for_all_acked(rclpy.duration.Duration(seconds=2.0))

    def stop(self) -> None:
        """Stop the publishing thread and close the source."""
        self._deactivate()
        if self.source is not None:
            self.source.close()


class SpikeCameraDriver(DriverWork, PlainTransitions, Node):
    """Reads a :class:`SpikeSource` in a publishing thread and publishes SpikePackets."""


class ManagedSpikeCameraDriver(DriverWork, ManagedTransitions, LifecycleNode):
    """The driver as a managed (lifecycle) node: ``spike_camera_driver_lifecycle``.

    Starts unconfigured. configure: parameters validated, source opened, publishers created;
    activate: publishing starts (or resumes where it stopped); deactivate: publishing stops;
    cleanup: source closed, publishers destroyed; shutdown from any state.
    """



def main(args: list[str] | None = None) -> int:
    """Entry point of ``spike_camera_driver``; returns the exit status (1: the source failed)."""
    # The plain node exits at the end of the stream; the managed one when it has been shut down.
    return run_node(DRIVER_NAME, SpikeCameraDriver, args, spin_period_s=0.1, done=lambda node: node.finished.is_set(),
                    exit_status=_exit_status, report_unexpected=False)  # fmt: skip


def main_lifecycle(args: list[str] | None = None) -> int:
    """Entry point of ``spike_camera_driver_lifecycle`` (managed node); returns the exit status."""
    return run_node(DRIVER_NAME, ManagedSpikeCameraDriver, args, spin_period_s=0.1, exit_status=_exit_status,
                    report_unexpected=False)  # fmt: skip


def _exit_status(node: DriverWork) -> int:
    return 1 if node.error else 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
