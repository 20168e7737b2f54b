# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""``spike_reconstructor``: SpikePackets in, reconstructed ``sensor_msgs/Image`` out.

Topics (relative names, remappable):
    spikes               (in)  stir_ros/msg/SpikePacket
    spikes/camera_info   (in)  sensor_msgs/CameraInfo of the camera, optional (under the resolved spikes topic)
    image                (out) sensor_msgs/Image, one per window, stamped at the centre frame
    camera_info          (out) the camera's CameraInfo with the image's stamp (beside the resolved image
                               topic, the image_transport convention, unless remapped itself)
    image/compressed     (out) sensor_msgs/CompressedImage, png or jpeg, when compressed_format is set
    /diagnostics         (out) diagnostic_msgs/DiagnosticArray

The spikes callback only checks headers and cuts windows (:mod:`stir_ros.core.stream_processor`,
the path ``bag reconstruct`` takes too); the inference worker (:mod:`stir_ros.core.inference_worker`:
a thread at a lower priority, a bounded queue that drops the oldest window when full) decodes,
batches and reconstructs them (:mod:`stir_ros.engine`) and hands each image back to be published,
so the executor thread that receives spikes never waits for inference. The settings
(:mod:`stir_ros.reconstructor_settings`) and the diagnostics values
(:mod:`stir_ros.core.reconstructor_status`) are ROS-free too: this module converts messages,
declares and applies parameters, and publishes.
"""

from __future__ import annotations

import gc
import math
import threading
import time
from collections import Counter
from dataclasses import fields, replace
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, QoSReliabilityPolicy, qos_profile_sensor_data
from rclpy.qos_overriding_options import QoSOverridingOptions
from rclpy.timer import Timer
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from stir_ros.engine import ReconstructionEngine
from stir_ros.core.errors import ConfigError, PacketError, StirRosError
from stir_ros.core.imaging import image_frame_id
from stir_ros.core.inference_worker import InferenceWorker, Pending
from stir_ros.core.methods import method_spec
from stir_ros.core.reconstructor_status import ReconstructorStatus
from stir_ros.core.stream import WindowCutter
from stir_ros.core.spike_cdr import parse_spike_packet
from stir_ros.core.limits import MAX_FRAME_ID_CHARS, MAX_MESSAGE_OVERHEAD_BYTES
from stir_ros.core.stream_processor import DROPPED, IDLE, REJECTED, StreamProcessor
from stir_ros.msg import SpikePacket
from stir_ros.ros import RateLimitedLog, emit
from stir_ros.ros.conversions import (
    STEADY,
    default_camera_info,
    diagnostic_status,
    parameter_descriptor,
    image_to_msg,
    packet_header,
    packet_payload,
    restamp_camera_info,
)
from stir_ros.core.dds_profile import apply_fastdds_profile
from stir_ros.core.rate_policy import RatePacer
from stir_ros.core.signals import install_stop_handlers
from stir_ros.ros.lifecycle import ManagedTransitions
from stir_ros.ros.graph import RECONSTRUCTOR_NAME, RECONSTRUCTOR_PARAMETERS
from stir_ros.reconstructor_settings import (
    COMPRESSED_FORMATS,
    ENGINE_FIELDS,
    EXECUTORS,
    ReconstructorSettings,
    build_engine,
    warm_up,
)
from stir_ros.core.defect_file import defect_tracker

__all__ = [
    "EXECUTORS", "COMPRESSED_FORMATS", "ReconstructorSettings", "ReconstructorWork", "SpikeReconstructor",
    "ManagedSpikeReconstructor", "main", "main_lifecycle", "make_executor",
]  # fmt: skip

#: Spikes are subscribed RELIABLE, keep last 50, unlike REP-2003's best-effort SensorDataQoS for
#: processing nodes: with best effort, Fast DDS lost 75-80 % of 1.25 MB packets even at 50
#: packets/s on a 2-core machine (bench/bench_transport.py), and a lost packet costs whole
#: windows. ``qos_overrides./spikes.subscription.reliability:=best_effort`` restores REP-2003.
SPIKES_QOS = QoSProfile(depth=50, reliability=QoSReliabilityPolicy.RELIABLE)
#: Outputs: reliable, keep last 10 (what image consumers and rosbag2 expect by default).
OUTPUT_QOS = QoSProfile(depth=10, reliability=QoSReliabilityPolicy.RELIABLE)


def _compress(img: np.ndarray, encoding: str, fmt: str, quality: int, stamp_ns: int, frame_id: str) -> CompressedImage:
    """``image/compressed`` in the compressed_image_transport format (``"<enc>; <fmt> compressed <enc>"``).

    png keeps mono8/mono16 exactly (32FC1 is sent as mono16); jpeg is 8-bit (mono8).
    """
    import cv2  # opencv: only when compressed output is on

    from stir_ros.core.imaging import to_image_array
    from stir_ros.ros.conversions import ns_to_stamp

    enc = encoding if fmt == "png" and encoding in ("mono8", "mono16") else ("mono16" if fmt == "png" else "mono8")
    pixels = np.ascontiguousarray(to_image_array(img, enc))
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if fmt == "jpeg" else [cv2.IMWRITE_PNG_COMPRESSION, 1]
    ok, buf = cv2.imencode(".jpg" if fmt == "jpeg" else ".png", pixels, params)
    if not ok:
        raise ConfigError(f"OpenCV could not encode a {pixels.shape} {enc} image as {fmt}")
    msg = CompressedImage()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = frame_id
    msg.format = f"{enc}; {fmt} compressed {enc}"
    msg.data = buf.tobytes()
    return msg


class ReconstructorWork:
    """The reconstructor's work, shared by the plain node and the managed (lifecycle) one.

    A mixin for an rclpy ``Node`` or ``LifecycleNode``: :meth:`_declare` (in the constructor),
    :meth:`_configure` (parameters, engine and weights, publishers, worker thread),
    :meth:`_activate` (subscribe: packets are processed), :meth:`_deactivate` (unsubscribe; the
    configuration stays) and :meth:`_cleanup` (everything :meth:`_configure` made, the model
    included). The plain :class:`SpikeReconstructor` configures and activates at once.
    """

    def _declare(self) -> None:
        for spec in RECONSTRUCTOR_PARAMETERS:
            self.declare_parameter(spec.name, spec.default, parameter_descriptor(RECONSTRUCTOR_NAME, spec))
        self.settings: ReconstructorSettings | None = None  # None: not configured
        self.engine: ReconstructionEngine | None = None
        self.worker: InferenceWorker | None = None
        self._log = RateLimitedLog()
        self._last_warning = ""
        self._throughput_noted: set[tuple[Any, ...]] = set()
        self.errors: Counter[str] = Counter()
        self.active = False  # subscribed to spikes; images are published
        self._subs: list[Any] = []
        self._entities: list[Any] = []  # publishers and timer made by _configure
        # Held by every transition and by every packet and timer callback: a callback that an
        # executor delivers late (after deactivate or cleanup) or from another thread sees a whole
        # configuration or none, never one half taken down.
        self._state_lock = threading.RLock()
        self.late_callbacks = 0  # callbacks that came when the node was not active (dropped)
        self.add_on_set_parameters_callback(self._on_set_parameters)

    def _parameter_values(self) -> dict[str, Any]:
        return {spec.name: self.get_parameter(spec.name).value for spec in RECONSTRUCTOR_PARAMETERS}

    def _configure(self) -> None:
        with self._state_lock:
            self._configure_locked()

    def _configure_locked(self) -> None:
        """Read and validate the parameters, load the model, create the publishers and the worker."""
        settings = ReconstructorSettings.from_mapping(self._parameter_values())
        self._last_warning = ""  # before the engine: its start-up warnings (no CUDA) must show
        engine = self._make_engine(settings)
        self.pacer = RatePacer(settings.rate_policy)  # measured time per window -> stride (rate_policy)
        self._statement_due = ""  # what the sustainability statement is about; logged at the next packet
        if settings.warmup_height and settings.warmup_width:
            self._warmup(engine, settings.warmup_height, settings.warmup_width)
        self.settings, self.engine = settings, engine

        # validate, monitor and cut: the packet path shared with `bag reconstruct`
        defects = defect_tracker(settings.defect_correction, settings.defect_map_url,
                                 settings.defect_sample_period_frames, settings.defect_hot_rate)
        self.stream = StreamProcessor(engine.window_length, settings.stride_frames, settings.output_rate_hz,
                                      defects=defects)
        self.stream.pace = lambda stride, rate: self.pacer.stride(stride, rate)
        self.camera_info: CameraInfo | None = None
        self.bad_packets: Counter[str] = Counter()
        self.errors = Counter()
        self.worker_restarts = 0
        self._last_packet: float | None = None  # time.monotonic() of the last packet, good or bad
        self._packet_span_s = 0.0  # sensor time one packet covers (num_frames / frame_rate_hz)
        self._status = ReconstructorStatus()
        self.idle = False  # lazy and nobody subscribes to the images: packets counted, not reconstructed

        overrides = QoSOverridingOptions.with_default_policies()
        self.image_pub = self.create_publisher(Image, "image", OUTPUT_QOS, qos_overriding_options=overrides)
        image_topic = self.image_pub.topic_name
        self.info_pub = self.create_publisher(
            CameraInfo, self._beside(image_topic, "camera_info"), OUTPUT_QOS, qos_overriding_options=overrides
        )
        self.compressed_pub = None
        if settings.compressed_format:
            self.compressed_pub = self.create_publisher(
                CompressedImage, f"{image_topic}/compressed", OUTPUT_QOS, qos_overriding_options=overrides
            )
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        # A steady clock: with use_sim_time the node clock stops with /clock, and diagnostics must not.
        timer = self.create_timer(settings.diagnostics_period_s, self._publish_diagnostics, clock=STEADY)
        self._entities = [p for p in (self.image_pub, self.info_pub, self.compressed_pub, self.diag_pub, timer) if p]
        self.worker = InferenceWorker(
            engine, self._publish_image, prepare=self._warmup, on_warning=self._engine_warning, on_error=self._error,
            alive=self.context.ok, clock_ns=lambda: self.get_clock().now().nanoseconds,
            niceness=settings.worker_niceness, debug=lambda m: emit(self.get_logger().debug, m), errors=self.errors,
        )  # fmt: skip
        self.worker.on_timing = lambda seconds, n: self.pacer.observe(seconds, n)
        self.worker.start()
        path = f" ({engine.inference_path.reason})" if engine.inference_path else ""
        self.get_logger().info(
            f"ready: method {engine.method}, window {engine.window_length}, "
            f"device {engine.device_name}, precision {engine.precision}, backend {engine.backend}{path}, "
            f"rate_policy {settings.rate_policy}"
        )

    def _activate(self) -> None:
        with self._state_lock:
            self._activate_locked()

    def _activate_locked(self) -> None:
        """Subscribe to the spikes and their camera_info: windows are cut and images published."""
        overrides = QoSOverridingOptions.with_default_policies()
        # raw: the serialised message as one bytes object, read in place (core/spike_cdr): one copy of
        # the payload instead of rclpy's three (CDR -> C message -> bytes -> array.array).
        sub = self.create_subscription(SpikePacket, "spikes", self._on_spikes, SPIKES_QOS,
                                       qos_overriding_options=overrides, raw=True)  # fmt: skip
        info_in = "spikes/camera_info"
        if self.resolve_topic_name(info_in) == self.resolve_topic_name(info_in, only_expand=True):
            info_in = f"{sub.topic_name}/camera_info"  # follows a remap of spikes
        self._subs = [sub, self.create_subscription(CameraInfo, info_in, self._on_camera_info, qos_profile_sensor_data)]
        self.active = True

    def _deactivate(self) -> None:
        with self._state_lock:
            self._deactivate_locked()

    def _deactivate_locked(self) -> None:
        """Unsubscribe and drop what waits; parameters, model and counters stay."""
        self.active = False
        for sub in self._subs:
            self.destroy_subscription(sub)
        self._subs = []
        self.worker.clear()
        self.stream.reset()  # packets missed while inactive are not lost ones

    def _cleanup(self) -> None:
        with self._state_lock:
            self._cleanup_locked()

    def _cleanup_locked(self) -> None:
        """Undo :meth:`_configure`: stop the worker, destroy the publishers, free the model."""
        if self.active:
            self._deactivate_locked()
        self.stop()
        for entity in self._entities:
            if isinstance(entity, Timer):
                self.destroy_timer(entity)
            else:
                self.destroy_publisher(entity)
        self._entities = []
        released = self.engine is not None
        cuda = released and self.engine.device.type == "cuda"
        self.settings = self.engine = None
        if self.worker is not None:
            self.worker.release_engine()  # the model goes with it
        self._throughput_noted.clear()
        gc.collect()  # the model's tensors, before the CUDA cache is emptied
        if cuda:
            import torch  # loaded already: the engine used it

            # cuBLAS keeps a workspace per stream (32 MiB measured on an H200) in torch's allocator
            # until it is cleared; without this, 32 MiB stayed allocated after cleanup.
            clear_workspaces = getattr(torch._C, "_cuda_clearCublasWorkspaces", None)
            if clear_workspaces is not None:
                clear_workspaces()
            torch.cuda.empty_cache()
        if released:
            self.get_logger().info("cleaned up: model released")

    @property
    def cutter(self) -> WindowCutter | None:
        """The window cutter of the stream (``None`` before the first window or after a reset)."""
        return self.stream.cutter

    @property
    def windows_cut(self) -> int:
        """Windows cut since configure."""
        return self.stream.windows_cut

    @property
    def windows_dropped(self) -> int:
        """Windows dropped from the full queue since configure."""
        return self.worker.windows_dropped

    @property
    def images_published(self) -> int:
        """Images published since configure."""
        return self.worker.images_published

    @property
    def busy(self) -> bool:
        """The worker holds a batch."""
        return self.worker is not None and self.worker.busy

    def _beside(self, topic: str, name: str) -> str:
        """``name`` in the namespace of the resolved ``topic`` (image_transport), unless ``name`` is remapped."""
        if self.resolve_topic_name(name) != self.resolve_topic_name(name, only_expand=True):
            return name  # remapped explicitly: the remap wins
        parent = topic.rsplit("/", 1)[0]
        return f"{parent}/{name}"

    def has_subscribers(self) -> bool:
        """Whether anything subscribes to an image output (image, camera_info, image/compressed)."""
        pubs = [self.image_pub, self.info_pub, self.compressed_pub]
        return any(p is not None and p.get_subscription_count() > 0 for p in pubs)

    def _idle_now(self) -> bool:
        """With ``lazy``: whether to skip reconstruction for lack of subscribers.

        Going idle empties the window buffer and the queue (nothing is decoded or reconstructed for
        nobody); when a subscriber appears, cutting starts afresh at the next window of the frame grid.
        """
        idle = self.settings.lazy and not self.has_subscribers()
        if idle != self.idle:
            self.idle = idle
            if idle:
                self.worker.clear()
                self.stream.clear_buffer()
            why = "an image output has a subscriber" if self.settings.lazy else "lazy is off"
            emit(self.get_logger().info, "no subscribers to the images: idle (lazy), counting packets only" if idle
                 else f"{why}: reconstructing")  # fmt: skip
        return idle

    def _warn(self, kind: str, message: str) -> None:
        self._log(self.get_logger().warning, kind, message)

    def _error(self, kind: str, message: str) -> None:
        self._log(self.get_logger().error, kind, message)

    # ------------------------------------------------------------------ engine

    def _make_engine(self, settings: ReconstructorSettings) -> ReconstructionEngine:
        return build_engine(settings, self._engine_warning)

    def _warmup(self, engine: ReconstructionEngine, height: int, width: int) -> None:
        """Warm up at this size; for STIR, time a window: the next packet logs what is sustainable."""
        first = (id(engine), height, width) not in self._throughput_noted
        warm_up(engine, height, width, self._throughput_noted, self.pacer.observe)
        if first and method_spec(engine.method).needs_weights:
            self._statement_due = f"{engine.method} at {height}x{width}"

    def _engine_warning(self, message: str, summary: str | None = None) -> None:
        """Log an engine's warning; ``summary`` (default: the message) is the last_warning of /diagnostics."""
        emit(self.get_logger().warning, message)
        self._last_warning = message if summary is None else summary

    # ------------------------------------------------------------------ input (executor thread)

    def _on_camera_info(self, msg: CameraInfo) -> None:
        """Keep the camera's calibration if it is usable: finite numbers, K/R/P of their sizes."""
        try:
            numbers = [*msg.d, *msg.k, *msg.r, *msg.p]
            if not all(math.isfinite(float(v)) for v in numbers) or len(msg.d) > 64:
                raise ValueError("non-finite numbers or more than 64 distortion coefficients")
        except (TypeError, ValueError) as err:
            self.bad_packets["camera_info"] += 1
            self._warn("bad:camera_info", f"ignored a camera_info: {err}")
            return
        self.camera_info = msg

    def _on_spikes(self, msg: SpikePacket | bytes) -> None:
        """A packet from the (raw) subscription, serialised; or a SpikePacket (tests call this too)."""
        received = time.monotonic()
        self._last_packet = received
        try:
            with self._state_lock:
                if not self.active:  # delivered after deactivate or cleanup: nothing to hand it to
                    self.late_callbacks += 1
                    return
                self._handle_packet(msg, received)
        except Exception as err:  # noqa: BLE001 - a bad packet must never stop the node
            self.errors["packet_handling"] += 1
            self._error("packet_handling", f"unexpected error handling a packet: {err!r}")

    def _handle_packet(self, msg: SpikePacket | bytes, received: float) -> None:
        settings, engine = self.settings, self.engine
        self.stream.set_windows(engine.window_length, settings.stride_frames, settings.output_rate_hz)
        if isinstance(msg, (bytes, bytearray, memoryview)):
            try:
                parsed = parse_spike_packet(msg)
            except PacketError as err:
                self.bad_packets["malformed"] += 1
                self._warn("bad:malformed", f"rejected a packet that does not parse: {err}")
                return
            header, payload, msg_frame_id = parsed.header, parsed.payload, parsed.frame_id
            if len(msg) - payload.nbytes > MAX_MESSAGE_OVERHEAD_BYTES:
                payload = payload.copy()  # a view would keep the whole message alive while the window waits
        else:
            header, payload, msg_frame_id = packet_header(msg), packet_payload(msg), msg.header.frame_id
        if len(msg_frame_id) > MAX_FRAME_ID_CHARS or len(header.encoding) > MAX_FRAME_ID_CHARS:
            self.bad_packets["string_too_long"] += 1
            self._warn("bad:string_too_long", f"rejected packet seq {header.seq}: frame_id of {len(msg_frame_id)} and "
                       f"encoding of {len(header.encoding)} characters, at most {MAX_FRAME_ID_CHARS} each")  # fmt: skip
            return
        out = self.stream.push(header, payload, idle=self._idle_now)
        header = out.header
        if out.status == REJECTED:
            kind = getattr(out.error, "kind", "invalid")
            self.bad_packets[kind] += 1
            self._warn(f"bad:{kind}", f"rejected packet seq {header.seq}: {out.error}")
            return
        self._packet_span_s = header.num_frames / header.frame_rate_hz
        if self._statement_due and self.pacer.seconds_per_window:  # once, like the driver's sustainability line
            what, self._statement_due, rate = self._statement_due, "", header.frame_rate_hz
            emit(self.get_logger().info, f"{what}: {self.pacer.statement(self.stream.requested_stride(rate), rate)}")
        if out.status == DROPPED:
            self._warn(out.event or "drop", out.message)
            return
        if out.status == IDLE:
            return  # counted by the monitor; no window is cut, decoded or queued
        if out.notable_event is not None:
            self._warn(out.notable_event, out.message)
        if not out.windows:
            return
        frame_id = image_frame_id(settings.frame_id, msg_frame_id)
        if self.worker.submit(out.windows, received, frame_id, settings.queue_size):
            period_s = self.stream.stride_for(header.frame_rate_hz) / header.frame_rate_hz
            kind, message = self.worker.drop_cause(period_s, settings.queue_size)
            self._warn(f"windows_dropped_{kind}", message)

    # ------------------------------------------------------------------ output (worker thread)

    def _publish_image(self, pending: Pending, img: np.ndarray) -> bool:
        """Publish one image, its camera_info and compressed image; False: stopping or inactive (nothing sent)."""
        settings = self.settings  # once: cleanup may take it away meanwhile (this is the worker's thread)
        if not self.active or settings is None or not self.context.ok():
            return False  # stopping or deactivated: publishers are about to go or must be quiet
        w = pending.window
        self.image_pub.publish(image_to_msg(img, settings.output_encoding, w.centre_stamp_ns, pending.frame_id))
        info = self.camera_info
        if info is None or (info.height, info.width) != (w.height, w.width):
            if info is not None:  # a calibration of another size does not describe these images
                self.bad_packets["camera_info_size"] += 1
                self._warn("bad:camera_info_size", f"camera_info is {info.height}x{info.width}, images are "
                           f"{w.height}x{w.width}: publishing an uncalibrated camera_info")  # fmt: skip
            info = default_camera_info(w.height, w.width)
        self.info_pub.publish(restamp_camera_info(info, w.centre_stamp_ns, pending.frame_id))
        if self.compressed_pub is not None:
            self.compressed_pub.publish(
                _compress(img, settings.output_encoding, settings.compressed_format, settings.jpeg_quality,
                          w.centre_stamp_ns, pending.frame_id)
            )  # fmt: skip
        return True

    # ------------------------------------------------------------------ parameters

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        try:
            return self._apply_parameters(params)
        except Exception as err:  # noqa: BLE001 - a parameter call must get an answer, and the node live on
            self.errors["parameters"] += 1
            return SetParametersResult(successful=False, reason=f"refused: {type(err).__name__}: {err}")

    def _apply_parameters(self, params: list[Parameter]) -> SetParametersResult:
        changes = {p.name: p.value for p in params if p.name in {f.name for f in fields(ReconstructorSettings)}}
        if not changes:
            return SetParametersResult(successful=True)
        current = self.settings
        try:
            new = replace(current or ReconstructorSettings.from_mapping(self._parameter_values()), **changes)
        except (ConfigError, TypeError) as err:
            return SetParametersResult(successful=False, reason=str(err))
        if current is None:  # not configured (managed node): configure loads the model
            return SetParametersResult(successful=True)
        engine = self.engine
        try:
            if any(getattr(new, f) != getattr(self.settings, f) for f in ENGINE_FIELDS):
                engine = self._make_engine(new)  # checks the weights whatever the method
        except StirRosError as err:
            return SetParametersResult(successful=False, reason=str(err))
        worker = self.worker
        assert worker is not None and engine is not None  # configured
        with worker.lock:  # the worker takes its next batch with the new engine and settings together
            worker.swap_engine(engine)
            if engine is not self.engine:
                self.pacer = RatePacer(new.rate_policy)  # the new engine's time is measured afresh
            self.pacer.policy = new.rate_policy
            self.engine = engine
            self.settings = new
        emit(self.get_logger().info, f"parameters changed: {changes}")
        return SetParametersResult(successful=True)

    # ------------------------------------------------------------------ diagnostics

    def held_spike_bytes(self) -> int:
        """Bytes of spike data the node holds now.

        Packet payloads referred to by the window buffer and by queued windows, each counted once
        (compare with :func:`stir_ros.core.limits.reconstructor_memory_bound`).
        """
        return self.worker.held_spike_bytes(self.stream.cutter)

    def diagnostics_values(self) -> dict[str, Any]:
        """Current counters and rates (also published on /diagnostics)."""
        assert self.worker is not None  # configured
        return self._status.values(
            engine=self.engine, settings=self.settings, stream=self.stream, worker=self.worker,
            bad_packets=self.bad_packets, errors=self.errors, worker_restarts=self.worker_restarts,
            last_warning=self._last_warning, last_packet=self._last_packet,
            idle_no_subscribers=self.settings.lazy and not self.has_subscribers(),
        ) | {  # fmt: skip
            "inference_path": f"{self.engine.backend} {self.engine.precision}"
            + (f": {self.engine.inference_path.reason}" if getattr(self.engine, "inference_path", None) else ""),
            "rate_policy": self.pacer.policy,
            "sustainable_images_per_s": 1.0 / self.pacer.seconds_per_window if self.pacer.seconds_per_window else 0.0,
        }

    def _publish_diagnostics(self) -> None:
        try:
            with self._state_lock:
                if self.settings is None:  # a timer event delivered after cleanup
                    self.late_callbacks += 1
                    return
                self._check_worker()
                self._diagnostics()
        except Exception as err:  # noqa: BLE001 - a timer callback that raises would end the node
            self._error("diagnostics", f"diagnostics failed: {err!r}")

    def _check_worker(self) -> None:
        """Restart a worker thread that died (it should not: see ``InferenceWorker``); say so loudly."""
        if self.worker.running and not self.worker.alive:
            self.worker_restarts += 1
            self._error("worker", f"the reconstruction thread had stopped; restarted it ({self.worker_restarts} time(s))")
            self.worker.start()

    def health(self) -> tuple[str, str, dict[str, Any]]:
        """``(level, message, values)`` of the diagnostics status: level ok, warn or error."""
        values = self.diagnostics_values()
        level, message = self._status.judge(
            values, active=self.active, images_published=self.images_published,
            diagnostics_period_s=self.settings.diagnostics_period_s, stall_timeout_s=self.settings.stall_timeout_s,
            packet_span_s=self._packet_span_s,
        )  # fmt: skip
        return level, message, values

    def _diagnostics(self) -> None:
        level, message, values = self.health()
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        name = f"{self.get_fully_qualified_name()}: reconstruction"
        msg.status = [diagnostic_status(name, RECONSTRUCTOR_NAME, level, message, values)]
        self.diag_pub.publish(msg)

    def stop(self) -> None:
        """Stop the worker thread."""
        if self.worker is not None:
            self.worker.stop(timeout=10.0)


class SpikeReconstructor(ReconstructorWork, Node):
    """Subscribes to SpikePackets and publishes reconstructed images (see module docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        Node.__init__(self, RECONSTRUCTOR_NAME, **kwargs)
        self._declare()
        self._configure()
        self._activate()


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


class ManagedSpikeReconstructor(ReconstructorWork, ManagedTransitions, LifecycleNode):
    """The reconstructor as a managed (lifecycle) node: ``spike_reconstructor_lifecycle``.

    Starts unconfigured. configure: parameters validated, model and weights loaded, publishers
    and worker created (a refused parameter or missing weights fails the transition with the
    reason logged); activate: subscribes to the spikes, images are published; deactivate:
    unsubscribes, drops waiting windows, keeps parameters and model; cleanup: releases the model
    (and CUDA's cached memory); shutdown from any state.
    """

    def __init__(self, **kwargs: Any) -> None:
        LifecycleNode.__init__(self, RECONSTRUCTOR_NAME, **kwargs)
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
        node = ManagedSpikeReconstructor() if managed else SpikeReconstructor()
        node.get_logger().info(profile.message)  # under the node's own (namespaced) name
        kind = node.get_parameter("executor").value
        executor = make_executor(kind if kind in EXECUTORS else "single_threaded", node.get_logger())
        executor.add_node(node)
        # spin_once in a loop: EventsExecutor.spin() of rclpy 7.1.6 busy-waits at 100 % CPU without
        # running callbacks, and does not return on SIGINT/SIGTERM.
        while rclpy.ok() and not stop.is_set():
            executor.spin_once(timeout_sec=0.5)
            done = getattr(node, "finalized_at", None)
            if done is not None and time.monotonic() - done > 1.0:  # shut down: answered, now exit
                break
        return 0
    except (KeyboardInterrupt, ExternalShutdownException):
        return 0
    except (StirRosError, ParameterException) as err:  # ParameterException: a value of the wrong type
        rclpy.logging.get_logger(RECONSTRUCTOR_NAME).error(f"cannot start: {err}")
        return 1
    except Exception as err:  # noqa: BLE001 - anything else at start: one line and a non-zero exit, never silent
        if stop.is_set():  # SIGINT/SIGTERM while starting: the context went away under the constructor
            return 0
        rclpy.logging.get_logger(RECONSTRUCTOR_NAME).fatal(f"cannot start: {type(err).__name__}: {err}")
        return 1
    finally:
        if node is not None:
            node.stop()  # the worker first: nothing publishes while the node goes
        if executor is not None:
            executor.shutdown()
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
        restore()


def main(args: list[str] | None = None) -> int:
    """Entry point of ``spike_reconstructor``; returns the exit status."""
    return _run(False, args)


def main_lifecycle(args: list[str] | None = None) -> int:
    """Entry point of ``spike_reconstructor_lifecycle`` (managed node); returns the exit status."""
    return _run(True, args)


if __name__ == "__main__":
    import sys

    sys.exit(main())
