"""``spike_reconstructor``: SpikePackets in, reconstructed ``sensor_msgs/Image`` out.

Topics (relative names, remappable):
    spikes               (in)  stir_ros/msg/SpikePacket
    spikes/camera_info   (in)  sensor_msgs/CameraInfo of the camera, optional
    image                (out) sensor_msgs/Image, one per window, stamped at the centre frame
    camera_info          (out) the camera's CameraInfo with the image's stamp
    /diagnostics         (out) diagnostic_msgs/DiagnosticArray

The spikes callback only checks headers and cuts windows (:mod:`stir_ros.core.stream`); a worker
thread decodes, batches and reconstructs them (:mod:`stir_ros.core.engine`) and publishes. The
queue between them is bounded and drops the oldest window when full, so the executor thread
that receives spikes never waits for inference.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, QoSReliabilityPolicy, qos_profile_sensor_data
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CameraInfo, Image

from stir_ros.core.engine import EngineConfig, ReconstructionEngine
from stir_ros.core.errors import BackendUnavailableError, ConfigError, PacketError, StirRosError
from stir_ros.core.imaging import IMAGE_ENCODINGS
from stir_ros.core.stream import StreamMonitor, Window, WindowCutter, stack_windows, stride_for_rate, validate_packet
from stir_ros.msg import SpikePacket
from stir_ros.ros import RateLimitedLog
from stir_ros.ros.conversions import (
    default_camera_info,
    diagnostic_status,
    image_to_msg,
    packet_header,
    packet_payload,
    restamp_camera_info,
)
from stir_ros.ros.dds_profile import apply_fastdds_profile
from stir_ros.ros.graph import RECONSTRUCTOR_NAME, RECONSTRUCTOR_PARAMETERS

__all__ = ["EXECUTORS", "ReconstructorSettings", "SpikeReconstructor", "main", "make_executor"]

#: Spikes are subscribed RELIABLE, keep last 50, unlike REP-2003's best-effort SensorDataQoS for
#: processing nodes: with best effort, Fast DDS lost 75-80 % of 1.25 MB packets even at 50
#: packets/s on a 2-core machine (bench/bench_transport.py), and a lost packet costs whole
#: windows. ``qos_overrides./spikes.subscription.reliability:=best_effort`` restores REP-2003.
SPIKES_QOS = QoSProfile(depth=50, reliability=QoSReliabilityPolicy.RELIABLE)
#: Outputs: reliable, keep last 10 (what image consumers and rosbag2 expect by default).
OUTPUT_QOS = QoSProfile(depth=10, reliability=QoSReliabilityPolicy.RELIABLE)
#: ``events``: rclpy's C++ EventsExecutor (rclpy.experimental). A bare subscriber took 400
#: packets/s of 1.25 MB for 27 % of a core with it, 55 % with the default Python executor; the
#: whole node at 40 kHz 72 % instead of 82 %, p95 latency 5 ms instead of 23 ms (BENCHMARKS.md).
EXECUTORS = ("events", "single_threaded")
_ENGINE_FIELDS = ("method", "weights", "device", "precision", "backend", "window_length", "alpha", "max_batch")


@dataclass(frozen=True)
class ReconstructorSettings:
    """The reconstructor's parameters, validated (see ``RECONSTRUCTOR_PARAMETERS``)."""

    method: str = "stir"
    weights: str = ""
    device: str = "auto"
    precision: str = "fp32"
    backend: str = "torch"
    window_length: int = 0
    stride_frames: int = 200
    output_rate_hz: float = 0.0
    max_batch: int = 4
    alpha: float = 0.6
    output_encoding: str = "mono8"
    queue_size: int = 4
    frame_id: str = ""
    diagnostics_period_s: float = 1.0
    warmup_height: int = 0
    warmup_width: int = 0
    executor: str = "events"

    def __post_init__(self) -> None:
        self.engine_config()  # validates the engine fields
        if self.stride_frames < 1:
            raise ConfigError(f"stride_frames must be >= 1, got {self.stride_frames}")
        if self.output_rate_hz < 0:
            raise ConfigError(f"output_rate_hz must be >= 0 (0: use stride_frames), got {self.output_rate_hz}")
        if self.output_encoding not in IMAGE_ENCODINGS:
            raise ConfigError(f"output_encoding must be one of {', '.join(IMAGE_ENCODINGS)}, got {self.output_encoding!r}")
        if self.queue_size < 1:
            raise ConfigError(f"queue_size must be >= 1, got {self.queue_size}")
        if not self.diagnostics_period_s > 0:
            raise ConfigError(f"diagnostics_period_s must be positive, got {self.diagnostics_period_s}")
        if self.warmup_height < 0 or self.warmup_width < 0:
            raise ConfigError("warmup_height and warmup_width must be >= 0")
        if self.executor not in EXECUTORS:
            raise ConfigError(f"executor must be one of {', '.join(EXECUTORS)}, got {self.executor!r}")

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> ReconstructorSettings:
        """Build from parameter values (unknown keys are ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})

    def engine_config(self) -> EngineConfig:
        """The :class:`EngineConfig` part."""
        return EngineConfig(
            method=self.method, window_length=self.window_length, alpha=self.alpha, device=self.device,
            precision=self.precision, max_batch=self.max_batch, weights=self.weights or None, backend=self.backend,
        )  # fmt: skip

    def stride_for(self, frame_rate_hz: float) -> int:
        """Frames between windows for a stream at ``frame_rate_hz``."""
        if self.output_rate_hz > 0:
            return stride_for_rate(frame_rate_hz, self.output_rate_hz)
        return self.stride_frames


@dataclass
class _Pending:
    window: Window
    received: float  # time.monotonic() when the packet that completed the window arrived
    frame_id: str


class SpikeReconstructor(Node):
    """Subscribes to SpikePackets and publishes reconstructed images (see module docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(RECONSTRUCTOR_NAME, **kwargs)
        for spec in RECONSTRUCTOR_PARAMETERS:
            desc = ParameterDescriptor(description=spec.description, read_only=not spec.dynamic)
            self.declare_parameter(spec.name, spec.default, desc)
        values = {spec.name: self.get_parameter(spec.name).value for spec in RECONSTRUCTOR_PARAMETERS}
        self.settings = ReconstructorSettings.from_mapping(values)
        self._log = RateLimitedLog()
        self._last_warning = ""  # before the engine: its start-up warnings (no CUDA) must show
        self.engine = self._make_engine(self.settings)
        if self.settings.warmup_height and self.settings.warmup_width:
            self.engine.warmup(self.settings.warmup_height, self.settings.warmup_width)

        self.monitor = StreamMonitor()
        self.cutter: WindowCutter | None = None
        self.camera_info: CameraInfo | None = None
        self.bad_packets: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.windows_cut = 0
        self.windows_dropped = 0
        self.images_published = 0
        self.buffer_resets = 0
        self._last_packet: float | None = None  # time.monotonic() of the last packet, good or bad
        self._packet_span_s = 0.0  # sensor time one packet covers (num_frames / frame_rate_hz)
        self._latency_ms: deque[float] = deque(maxlen=2000)
        self._age_ms: deque[float] = deque(maxlen=2000)
        self._rates_prev = (time.monotonic(), 0, 0, 0)
        self._queue: deque[_Pending] = deque()
        self._cv = threading.Condition()
        self._running = True

        overrides = QoSOverridingOptions.with_default_policies()
        self.image_pub = self.create_publisher(Image, "image", OUTPUT_QOS, qos_overriding_options=overrides)
        self.info_pub = self.create_publisher(CameraInfo, "camera_info", OUTPUT_QOS, qos_overriding_options=overrides)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_subscription(SpikePacket, "spikes", self._on_spikes, SPIKES_QOS, qos_overriding_options=overrides)
        self.create_subscription(CameraInfo, "spikes/camera_info", self._on_camera_info, qos_profile_sensor_data)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.create_timer(self.settings.diagnostics_period_s, self._publish_diagnostics)
        self._worker = threading.Thread(target=self._work, name="reconstruction", daemon=True)
        self._worker.start()
        self.get_logger().info(
            f"ready: method {self.engine.method}, window {self.engine.window_length}, "
            f"device {self.engine.device_name}, precision {self.engine.precision}, backend {self.engine.backend}"
        )

    # ------------------------------------------------------------------ engine

    def _make_engine(self, settings: ReconstructorSettings) -> ReconstructionEngine:
        try:
            engine = ReconstructionEngine(settings.engine_config())
        except BackendUnavailableError as err:  # a robot without OpenVINO still gets images
            self.get_logger().warning(f"{err}; falling back to backend torch")
            self._last_warning = f"backend {settings.backend} unavailable; using torch"
            engine = ReconstructionEngine(replace(settings.engine_config(), backend="torch"))
        for warning in engine.pop_warnings():
            self.get_logger().warning(warning)
            self._last_warning = warning
        return engine

    # ------------------------------------------------------------------ input (executor thread)

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self.camera_info = msg

    def _on_spikes(self, msg: SpikePacket) -> None:
        received = time.monotonic()
        self._last_packet = received
        try:
            self._handle_packet(msg, received)
        except Exception as err:  # noqa: BLE001 - a bad packet must never stop the node
            self.errors["packet_handling"] += 1
            self._log(self.get_logger().error, "packet_handling", f"unexpected error handling a packet: {err!r}")

    def _handle_packet(self, msg: SpikePacket, received: float) -> None:
        header = packet_header(msg)
        try:
            payload = validate_packet(
                packet_payload(msg), header.height, header.width, header.num_frames, header.encoding, header.frame_rate_hz
            )
        except PacketError as err:
            kind = getattr(err, "kind", "invalid")
            self.bad_packets[kind] += 1
            self._log(self.get_logger().warning, f"bad:{kind}", f"rejected packet seq {header.seq}: {err}")
            return
        self._packet_span_s = header.num_frames / header.frame_rate_hz
        check = self.monitor.check(header)
        if check.action == "drop":
            self._log(self.get_logger().warning, check.event or "drop", check.message)
            return
        stride = self.settings.stride_for(header.frame_rate_hz)
        window_length = self.engine.window_length
        if self.cutter is None or (self.cutter.stride_frames, self.cutter.window_length) != (stride, window_length):
            self.cutter = WindowCutter(window_length, stride)
        elif check.action == "reset":
            self.buffer_resets += 1
            self.cutter.reset()
        if check.event not in (None, "start"):
            self._log(self.get_logger().warning, check.event or "reset", check.message)
        windows = self.cutter.push_payload(
            payload, header.height, header.width, header.num_frames, header.encoding,
            header.first_frame_index, header.stamp_ns, header.frame_rate_hz,
        )  # fmt: skip
        if not windows:
            return
        frame_id = self.settings.frame_id or msg.header.frame_id
        with self._cv:
            for window in windows:
                if len(self._queue) >= self.settings.queue_size:
                    self._queue.popleft()
                    self.windows_dropped += 1
                self._queue.append(_Pending(window, received, frame_id))
            self.windows_cut += len(windows)
            self._cv.notify()

    # ------------------------------------------------------------------ worker thread

    def _take_batch(self) -> tuple[ReconstructionEngine, list[_Pending]] | None:
        with self._cv:
            while self._running and not self._queue:
                self._cv.wait(timeout=0.5)
            if not self._running:
                return None
            engine = self.engine
            first = self._queue[0].window
            batch = []
            # One batch holds windows of one size (a size change resets the stream anyway).
            while self._queue and len(batch) < engine.batch_size:
                w = self._queue[0].window
                if (w.height, w.width, w.length) != (first.height, first.width, first.length):
                    break
                batch.append(self._queue.popleft())
            return engine, batch

    def _work(self) -> None:
        while True:
            taken = self._take_batch()
            if taken is None:
                return
            engine, batch = taken
            try:
                self._reconstruct(engine, batch)
            except StirRosError as err:
                self.errors["inference"] += 1
                self._log(self.get_logger().error, "inference", f"reconstruction failed: {err}")
            except Exception as err:  # noqa: BLE001 - keep the node alive; reported in diagnostics
                self.errors["inference"] += 1
                self._log(self.get_logger().error, "inference", f"reconstruction failed: {err!r}")

    def _reconstruct(self, engine: ReconstructionEngine, batch: list[_Pending]) -> None:
        first = batch[0].window
        if first.length != engine.window_length:
            return  # cut before a window_length change; the engine cannot take it
        engine.warmup(first.height, first.width)
        images = engine.reconstruct(stack_windows([p.window for p in batch]))
        for warning in engine.pop_warnings():
            self._last_warning = warning
            self.get_logger().warning(warning)
        encoding = self.settings.output_encoding
        now_ros = self.get_clock().now().nanoseconds
        for pending, img in zip(batch, images):
            w = pending.window
            self.image_pub.publish(image_to_msg(img, encoding, w.centre_stamp_ns, pending.frame_id))
            info = self.camera_info or default_camera_info(w.height, w.width)
            self.info_pub.publish(restamp_camera_info(info, w.centre_stamp_ns, pending.frame_id))
            self._latency_ms.append((time.monotonic() - pending.received) * 1e3)
            self._age_ms.append((now_ros - w.centre_stamp_ns) / 1e6)
            self.images_published += 1

    # ------------------------------------------------------------------ parameters

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        changes = {p.name: p.value for p in params if p.name in {f.name for f in fields(ReconstructorSettings)}}
        if not changes:
            return SetParametersResult(successful=True)
        try:
            new = replace(self.settings, **changes)
        except (ConfigError, TypeError) as err:
            return SetParametersResult(successful=False, reason=str(err))
        engine = self.engine
        if any(getattr(new, f) != getattr(self.settings, f) for f in _ENGINE_FIELDS):
            try:
                engine = self._make_engine(new)
            except StirRosError as err:
                return SetParametersResult(successful=False, reason=str(err))
        with self._cv:
            if engine is not self.engine:
                self._queue.clear()
                self.engine = engine
            self.settings = new
        self.get_logger().info(f"parameters changed: {changes}")
        return SetParametersResult(successful=True)

    # ------------------------------------------------------------------ diagnostics

    def diagnostics_values(self) -> dict[str, Any]:
        """Current counters and rates (also published on /diagnostics)."""
        now = time.monotonic()
        t_prev, frames_prev, packets_prev, images_prev = self._rates_prev
        dt = max(now - t_prev, 1e-9)
        m = self.monitor
        self._rates_prev = (now, m.frames, m.packets, self.images_published)
        lat = np.asarray(self._latency_ms) if self._latency_ms else np.zeros(1)
        age = np.asarray(self._age_ms) if self._age_ms else np.zeros(1)
        values: dict[str, Any] = {
            "method": self.engine.method,
            "device": self.engine.device_name,
            "precision": self.engine.precision,
            "window_length": self.engine.window_length,
            "stride_frames": self.cutter.stride_frames if self.cutter else self.settings.stride_frames,
            "input_packets_per_s": (m.packets - packets_prev) / dt,
            "input_frames_per_s": (m.frames - frames_prev) / dt,
            "output_images_per_s": (self.images_published - images_prev) / dt,
            "latency_ms_p50": float(np.percentile(lat, 50)),
            "latency_ms_p95": float(np.percentile(lat, 95)),
            "latency_ms_p99": float(np.percentile(lat, 99)),
            "stamp_age_ms_p50": float(np.percentile(age, 50)),
            "input_idle_s": now - self._last_packet if self._last_packet is not None else 0.0,
            "queue_depth": len(self._queue),
            "windows_cut": self.windows_cut,
            "windows_dropped": self.windows_dropped,
            "images_published": self.images_published,
            "buffer_resets": self.buffer_resets,
            "bad_packets": sum(self.bad_packets.values()),
            "inference_errors": self.errors["inference"],
            "packet_handling_errors": self.errors["packet_handling"],
            "oom_fallbacks": self.engine.oom_fallbacks,
            "last_warning": self._last_warning,
        }
        values.update({f"input_{k}": v for k, v in m.counters().items()})
        values.update({f"bad_packets_{k}": v for k, v in sorted(self.bad_packets.items())})
        return values

    def _publish_diagnostics(self) -> None:
        values = self.diagnostics_values()
        problems = [k for k in ("input_lost_packets", "windows_dropped", "bad_packets", "inference_errors", "oom_fallbacks")
                    if values[k]]  # fmt: skip
        message = "ok" if not problems else "counted: " + ", ".join(problems)
        # A stream that stops (driver gone, link cut) is reported until packets come again.
        idle_limit = max(2.0, 2 * self.settings.diagnostics_period_s, 3 * self._packet_span_s)
        if values["input_idle_s"] > idle_limit:
            problems.append("no_input")
            message = f"no input for {values['input_idle_s']:.1f} s" + ("" if message == "ok" else f"; {message}")
        level = "error" if values["inference_errors"] and not self.images_published else ("warn" if problems else "ok")
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status = [diagnostic_status(f"{self.get_fully_qualified_name()}: reconstruction", RECONSTRUCTOR_NAME, level, message, values)]
        self.diag_pub.publish(msg)

    def stop(self) -> None:
        """Stop the worker thread."""
        with self._cv:
            self._running = False
            self._cv.notify_all()
        self._worker.join(timeout=10.0)


def make_executor(kind: str, logger: Any) -> Any:
    """The executor named by the ``executor`` parameter (falls back to the default with a warning)."""
    if kind == "events":
        try:
            from rclpy.experimental import EventsExecutor
        except ImportError as err:  # rclpy without the C++ events executor (before 7.1 / Jazzy backport)
            logger.warning(f"executor 'events' is not available in this rclpy ({err}); using single_threaded")
        else:
            return EventsExecutor()
    return SingleThreadedExecutor()


def main(args: list[str] | None = None) -> int:
    """Entry point of ``spike_reconstructor``; returns the exit status."""
    node = None
    executor = None
    try:
        profile = apply_fastdds_profile()  # before rclpy.init creates the participant
        rclpy.init(args=args)
        node = SpikeReconstructor()
        node.get_logger().info(profile.message)  # under the node's own (namespaced) name
        executor = make_executor(node.settings.executor, node.get_logger())
        executor.add_node(node)
        # spin_once in a loop: EventsExecutor.spin() of rclpy 7.1.6 busy-waits at 100 % CPU without
        # running callbacks, and does not return on SIGINT/SIGTERM.
        while rclpy.ok():
            executor.spin_once(timeout_sec=0.5)
        return 0
    except (KeyboardInterrupt, ExternalShutdownException):
        return 0
    except (StirRosError, ParameterException) as err:  # ParameterException: a value of the wrong type
        rclpy.logging.get_logger(RECONSTRUCTOR_NAME).error(f"cannot start: {err}")
        return 1
    finally:
        if executor is not None:
            executor.shutdown()
        if node is not None:
            node.stop()
            node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    import sys

    sys.exit(main())
