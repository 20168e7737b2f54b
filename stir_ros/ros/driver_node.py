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

import array
import os
import threading
import time
from dataclasses import dataclass, fields, replace
from collections.abc import Callable
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode
from rclpy.node import Node
from rclpy.qos import QoSDurabilityPolicy, QoSHistoryPolicy, QoSProfile, QoSReliabilityPolicy
from rclpy.qos_overriding_options import QoSOverridingOptions
from rclpy.timer import Timer
from sensor_msgs.msg import CameraInfo

from stir_ros.core.defaults import ALPHA
from stir_ros.core import defaults
from stir_ros.core.errors import ConfigError, StirRosError
from stir_ros.core.packing import ENCODING_VIDAR_BITPACKED, ENCODINGS, decode_payload, encode_frames, payload_size
from stir_ros.core.sensor_model import parse_sensor
from stir_ros.core.sources import DatSource, SimSource, SpikeSource
from stir_ros.core.throughput import ModeVerdict, PublishMeter, probe, verdict
from stir_ros.msg import SpikePacket
from stir_ros.ros import RateLimitedLog
from stir_ros.ros.conversions import (
    STEADY,
    camera_info_from_file,
    default_camera_info,
    diagnostic_status,
    ns_to_stamp,
    parameter_descriptor,
    restamp_camera_info,
)
from stir_ros.core.dds_profile import active_shm_segment_size, apply_fastdds_profile
from stir_ros.core.signals import install_stop_handlers
from stir_ros.ros.lifecycle import ManagedTransitions
from stir_ros.ros.graph import DRIVER_NAME, DRIVER_PARAMETERS

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


@dataclass(frozen=True)
class DriverSettings:
    """The driver's parameters, validated (see :data:`stir_ros.ros.graph.DRIVER_PARAMETERS`)."""

    source: str = "sim"
    dat_path: str = ""
    height: int = 250
    width: int = 400
    frame_rate_hz: float = 20000.0
    frames_per_packet: int = 100
    realtime: bool = True
    loop: bool = False
    max_frames: int = 0
    encoding: str = ENCODING_VIDAR_BITPACKED
    frame_id: str = defaults.FRAME_ID
    camera_info_url: str = ""
    wait_for_subscribers: int = 0
    wait_for_subscribers_timeout_s: float = 10.0
    sim_seed: int = 0
    sim_alpha: float = ALPHA
    sim_max_speed: float = 0.02
    sim_noise_std: float = 0.0
    sim_sensor: str = "ideal"

    def __post_init__(self) -> None:
        if self.source not in ("dat", "sim"):
            raise ConfigError(f"source must be 'dat' or 'sim', got {self.source!r}")
        if self.source == "dat" and not self.dat_path:
            raise ConfigError("source 'dat' needs dat_path")
        if self.height <= 0 or self.width <= 0:
            raise ConfigError(f"height and width must be positive, got {self.height}x{self.width}")
        if not self.frame_rate_hz > 0:
            raise ConfigError(f"frame_rate_hz must be positive, got {self.frame_rate_hz}")
        if self.frames_per_packet < 1:
            raise ConfigError(f"frames_per_packet must be >= 1, got {self.frames_per_packet}")
        if self.max_frames < 0:
            raise ConfigError(f"max_frames must be >= 0, got {self.max_frames}")
        if self.encoding not in ENCODINGS:
            raise ConfigError(f"encoding must be one of {ENCODINGS}, got {self.encoding!r}")
        if len(self.sim_sensor) > 1000:
            raise ConfigError(f"sim_sensor must be at most 1000 characters, got {len(self.sim_sensor)}")
        parse_sensor(self.sim_sensor.split())  # a bad model is refused here, before the node starts

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> DriverSettings:
        """Build from parameter values (unknown keys are ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


def make_source(s: DriverSettings) -> SpikeSource:
    """Open the configured source."""
    if s.source == "dat":
        return DatSource(s.dat_path, s.height, s.width, s.frame_rate_hz, loop=s.loop)
    return SimSource(
        s.height, s.width, s.frame_rate_hz, alpha=s.sim_alpha, seed=s.sim_seed,
        max_speed=s.sim_max_speed, noise_std=s.sim_noise_std, sensor=parse_sensor(s.sim_sensor.split()),
    )  # fmt: skip


class PacketWriter:
    """SpikePackets from a source, built in one reused message around one reused payload buffer.

    ``publish()`` converts and serialises the message before it returns, so the same message and
    buffer serve every packet: no per-packet allocation (a fresh 12.5 MB buffer is a fresh set of
    page faults), and a source with ``read_into`` (:class:`DatSource`) writes its frames straight
    into the buffer: one copy from the file to the message instead of two.
    """

    def __init__(self, source: SpikeSource, settings: DriverSettings) -> None:
        self.source, self.encoding = source, settings.encoding
        h, w = source.height, source.width
        self.frame_bytes = payload_size(h, w, 1, settings.encoding)
        self.msg = SpikePacket()
        self.msg.header.frame_id = settings.frame_id
        self.msg.height, self.msg.width = h, w
        self.msg.frame_rate_hz = float(source.frame_rate_hz)
        self.msg.encoding = settings.encoding
        self._attach(array.array("B", bytes(settings.frames_per_packet * self.frame_bytes)))
        self.direct = callable(getattr(source, "read_into", None)) and settings.encoding == ENCODING_VIDAR_BITPACKED

    def _attach(self, data: array.array) -> None:
        """Make ``data`` the message's payload and the buffer frames are written into.

        The generated setter keeps an ``array.array`` as it is only with ``ROS_PYTHON_CHECK_FIELDS=1``
        and copies it otherwise, so the buffer is whatever the message holds after the assignment.
        """
        self.msg.data = data
        self.buffer = self.msg.data
        self.view = np.frombuffer(self.buffer, np.uint8)

    def read(self, want: int) -> SpikePacket | None:
        """Read up to ``want`` frames into the message (header stamps and counters not set)."""
        if self.msg.data is not self.buffer:  # the previous packet was a short one
            self._attach(self.buffer)
        payload = None
        if self.direct:
            n = self.source.read_into(self.view, want)
            if n is None:
                return None
        else:
            block = self.source.read(want)
            if block is None:
                return None
            n, payload = block.num_frames, block.data
            if block.encoding != self.encoding:
                frames = decode_payload(payload, self.source.height, self.source.width, n, block.encoding)
                payload = encode_frames(frames, self.encoding)
        nbytes = n * self.frame_bytes
        if nbytes == len(self.buffer):
            if payload is not None:
                np.copyto(self.view, np.asarray(payload, np.uint8).reshape(-1))
        else:  # a short packet (the last one, or a source that returned fewer frames): a buffer of its own
            data = array.array("B")
            data.frombytes(np.ascontiguousarray(self.view[:nbytes] if payload is None else payload, np.uint8).data)
            self.msg.data = data
        self.msg.num_frames = n
        return self.msg

    def probe(self, publish: Callable[[SpikePacket], Any] | None = None) -> tuple[float, str]:
        """Frames/s of this writer's work, measured without consuming the stream.

        A :class:`DatSource` is read (and put back where it was) and the message handed to
        ``publish`` (a publisher on a topic nobody reads: rclpy's conversion and Fast DDS's
        serialisation, as for every packet; without one, ``serialize_message``, which costs
        more), as the publishing thread does per packet; for any other source only the message
        path is timed, and the source's own speed shows while streaming (``publish_busy``).
        """
        if publish is None:
            from rclpy.serialization import serialize_message

            publish = serialize_message
        send: Callable[[SpikePacket], Any] = publish
        want = len(self.buffer) // self.frame_bytes
        self.msg.num_frames = want
        source = self.source
        if self.direct and isinstance(source, DatSource):
            saved = (source.position, source.frames_read)

            def work() -> int:
                n = source.read_into(self.view, want) or 0
                send(self.msg)
                return n

            try:
                return probe(work), "read + publish (CPU time, measured at start)"
            finally:
                source.position, source.frames_read = saved
        scratch = np.zeros_like(self.view)

        def copy_and_publish() -> int:
            np.copyto(self.view, scratch)
            send(self.msg)
            return want

        return probe(copy_and_publish), "copy + publish, source not included (CPU time, measured at start)"


class DriverWork:
    """The driver's work, shared by the plain node and the managed (lifecycle) one.

    A mixin for an rclpy ``Node`` or ``LifecycleNode``: :meth:`_declare` (constructor),
    :meth:`_configure` (parameters, source, calibration, publishers), :meth:`_activate` (start the
    publishing thread), :meth:`_deactivate` (stop it; the stream resumes where it stopped) and
    :meth:`_cleanup` (close the source, destroy the publishers).
    """

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
        if not s.realtime:
            log = self.get_logger().info  # as fast as possible: there is no rate to keep
        else:
            log = self.get_logger().info if result.sustainable else self.get_logger().warning
        log(f"mode {result.text}")
        return result

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
        for entity in self._entities:
            if isinstance(entity, Timer):
                self.destroy_timer(entity)
            else:
                self.destroy_publisher(entity)
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
                    self._log(self.get_logger().warning, "lag",
                              f"{self.lag_s:.2f} s behind real time: the driver cannot sustain "
                              f"{rate:g} Hz ({self.verdict.text})")  # fmt: skip
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
        self.diag_pub.publish(msg)

    def stop(self) -> None:
        """Stop the publishing thread and close the source."""
        self._deactivate()
        if self.source is not None:
            self.source.close()


class SpikeCameraDriver(DriverWork, Node):
    """Reads a :class:`SpikeSource` in a publishing thread and publishes SpikePackets."""

    def __init__(self, **kwargs: Any) -> None:
        Node.__init__(self, DRIVER_NAME, **kwargs)
        self._declare()
        self._configure()
        self._activate()


class ManagedSpikeCameraDriver(DriverWork, ManagedTransitions, LifecycleNode):
    """The driver as a managed (lifecycle) node: ``spike_camera_driver_lifecycle``.

    Starts unconfigured. configure: parameters validated, source opened, publishers created;
    activate: publishing starts (or resumes where it stopped); deactivate: publishing stops;
    cleanup: source closed, publishers destroyed; shutdown from any state.
    """

    def __init__(self, **kwargs: Any) -> None:
        LifecycleNode.__init__(self, DRIVER_NAME, **kwargs)
        self._declare()
        self._guard_change_state()


def _run(managed: bool, args: list[str] | None) -> int:
    node = None
    executor = None
    stop = threading.Event()
    restore = install_stop_handlers(stop)  # SIGINT/SIGTERM end the loop below, never raise inside a callback
    try:
        profile = apply_fastdds_profile()  # before rclpy.init creates the participant
        rclpy.init(args=args)
        node = ManagedSpikeCameraDriver() if managed else SpikeCameraDriver()
        node.get_logger().info(profile.message)  # under the node's own (namespaced) name
        # An executor of its own: rclpy.spin_once's global one is gone (None) once a signal has
        # shut the context down between the loop's check and the call.
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        # The plain node exits at the end of the stream; the managed one when it has been shut down.
        while rclpy.ok() and not stop.is_set() and (managed or not node.finished.is_set()):
            executor.spin_once(timeout_sec=0.1)
            done = getattr(node, "finalized_at", None)
            if done is not None and time.monotonic() - done > 1.0:  # shut down: answered, now exit
                break
        return 1 if node.error else 0
    except (KeyboardInterrupt, ExternalShutdownException):
        return 0
    except (StirRosError, ParameterException) as err:  # ParameterException: a value of the wrong type
        rclpy.logging.get_logger(DRIVER_NAME).error(f"cannot start: {err}")
        return 1
    except Exception:
        if stop.is_set():  # SIGINT/SIGTERM while starting: the context went away under the constructor
            return 0
        raise
    finally:
        if node is not None:
            node.stop()
        if executor is not None:
            executor.shutdown()
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
        restore()


def main(args: list[str] | None = None) -> int:
    """Entry point of ``spike_camera_driver``; returns the exit status."""
    return _run(False, args)


def main_lifecycle(args: list[str] | None = None) -> int:
    """Entry point of ``spike_camera_driver_lifecycle`` (managed node); returns the exit status."""
    return _run(True, args)


if __name__ == "__main__":
    import sys

    sys.exit(main())
