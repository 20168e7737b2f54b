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
the path ``bag reconstruct`` takes too); the inference worker (:mod:`stir_ros.runtime.inference_worker`:
a lower-priority thread, a bounded queue that drops the oldest window) decodes, batches and
reconstructs them and hands each image back to be published, so the thread that receives spikes
never waits for inference. This module declares the parameters, converts and publishes.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.lifecycle import LifecycleNode
from rclpy.node import Node
from rclpy.qos import QoSProfile, QoSReliabilityPolicy, qos_profile_sensor_data
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from stir_ros.core.defect_file import defect_tracker
from stir_ros.runtime.inference_worker import InferenceWorker, Pending
from stir_ros.runtime.rate_policy import RatePacer
from stir_ros.runtime.reconstructor_status import ReconstructorStatus
from stir_ros.core.stream_processor import StreamProcessor
from stir_ros.engine import ReconstructionEngine
from stir_ros.msg import SpikePacket
from stir_ros.reconstructor_settings import COMPRESSED_FORMATS, EXECUTORS, ReconstructorSettings
from stir_ros.ros import RateLimitedLog, emit
from stir_ros.ros.conversions import STEADY, compressed_image_msg, default_camera_info, image_to_msg
from stir_ros.ros.conversions import parameter_descriptor, restamp_camera_info
from stir_ros.ros.device_memory import release_device_memory
from stir_ros.ros.graph import RECONSTRUCTOR_NAME, RECONSTRUCTOR_PARAMETERS
from stir_ros.ros.lifecycle import ManagedTransitions, PlainTransitions, under_state_lock
from stir_ros.ros.node_main import destroy_entities, make_executor, run_node
from stir_ros.ros.reconstructor_diagnostics import ReconstructorDiagnostics
from stir_ros.ros.reconstructor_input import ReconstructorInput
from stir_ros.ros.reconstructor_parameters import ReconstructorParameters, defect_map_path

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


class ReconstructorWork(ReconstructorInput, ReconstructorParameters, ReconstructorDiagnostics):
    """The reconstructor's work, shared by the plain node and the managed (lifecycle) one.

    A mixin for an rclpy ``Node`` or ``LifecycleNode``: :meth:`_declare` (in the constructor),
    :meth:`_configure` (parameters, engine and weights, publishers, worker thread),
    :meth:`_activate` (subscribe: packets are processed), :meth:`_deactivate` (unsubscribe; the
    configuration stays) and :meth:`_cleanup` (everything :meth:`_configure` made, the model
    included). The plain :class:`SpikeReconstructor` configures and activates at once. Its other
    parts: packets in (:mod:`~stir_ros.ros.reconstructor_input`), parameter changes and the engine
    (:mod:`~stir_ros.ros.reconstructor_parameters`), counters and ``/diagnostics``
    (:mod:`~stir_ros.ros.reconstructor_diagnostics`).
    """

    node_name = RECONSTRUCTOR_NAME

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
        self._reset_parameter_state()
        self.add_on_set_parameters_callback(self._on_set_parameters)

    def _parameter_values(self) -> dict[str, Any]:
        return {spec.name: self.get_parameter(spec.name).value for spec in RECONSTRUCTOR_PARAMETERS}

    def _configure_locked(self) -> None:
        """Read and validate the parameters, load the model, create the publishers and the worker."""
        settings = ReconstructorSettings.from_mapping(self._parameter_values())
        self._last_warning = ""  # before the engine: its start-up warnings (no CUDA) must show
        engine = self._make_engine(settings)
        self.pacer = RatePacer(settings.applied_rate_policy)  # measured time per window -> stride (rate_policy)
        self._statement_due = ""  # what the sustainability statement is about; logged at the next packet or timer
        self._frame_rate_hz = 0.0  # the latest packet's
        if settings.warmup_height and settings.warmup_width:
            self._warmup(engine, settings.warmup_height, settings.warmup_width)
        self.settings, self.engine = settings, engine

        # validate, monitor and cut: the packet path shared with `bag reconstruct`
        defects = defect_tracker(settings.defect_correction, defect_map_path(settings.defect_map_url),
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
        self._reset_parameter_state()
        self._entities = [p for p in (self.image_pub, self.info_pub, self.compressed_pub, self.diag_pub, timer,
                                      self._make_load_timer()) if p]  # fmt: skip
        self.worker = InferenceWorker(
            engine, self._publish_image, prepare=self._warmup, on_warning=self._engine_warning, on_error=self._error,
            alive=self.context.ok, clock_ns=lambda: self.get_clock().now().nanoseconds,
            niceness=settings.worker_niceness, debug=lambda m: emit(self.get_logger().debug, m), errors=self.errors,
            threads=engine.streams, even_spacing=lambda: self.pacer.policy == "even",
        )  # fmt: skip
        self.worker.on_timing = lambda seconds, n: self.pacer.observe(seconds, n)
        self.worker.start()
        path = f" ({engine.inference_path.reason})" if engine.inference_path else ""
        self.get_logger().info(
            f"ready: method {engine.method}, window {engine.window_length}, "
            f"device {engine.device_name}, precision {engine.precision}, backend {engine.backend}{path}, "
            f"inference_streams {engine.streams} ({engine.streams_reason}), rate_policy {settings.applied_rate_policy}"
        )

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

    def _deactivate_locked(self) -> None:
        """Unsubscribe and drop what waits; parameters, model and counters stay."""
        self.active = False
        for sub in self._subs:
            self.destroy_subscription(sub)
        self._subs = []
        self.worker.clear()
        self.stream.reset()  # packets missed while inactive are not lost ones

    def _cleanup_locked(self) -> None:
        """Undo :meth:`_configure`: stop the worker, destroy the publishers, free the model."""
        if self.active:
            self._deactivate_locked()
        self.stop()
        destroy_entities(self, self._entities)
        self._entities = []
        released = self.engine is not None
        cuda = released and self.engine.device.type == "cuda"
        self.settings = self.engine = None
        if self.worker is not None:
            self.worker.release_engine()  # the model goes with it
        self._throughput_noted.clear()
        release_device_memory(cuda)
        if released:
            self.get_logger().info("cleaned up: model released")

    # Each transition holds the state lock (see _declare); _cleanup_locked may deactivate first.
    _configure = under_state_lock(_configure_locked)
    _activate = under_state_lock(_activate_locked)
    _deactivate = under_state_lock(_deactivate_locked)
    _cleanup = under_state_lock(_cleanup_locked)

    def _beside(self, topic: str, name: str) -> str:
        """``name`` in the namespace of the resolved ``topic`` (image_transport), unless ``name`` is remapped."""
        if self.resolve_topic_name(name) != self.resolve_topic_name(name, only_expand=True):
            return name  # remapped explicitly: the remap wins
        parent = topic.rsplit("/", 1)[0]
        return f"{parent}/{name}"

    def _warn(self, kind: str, message: str) -> None:
        self._log(self.get_logger().warning, kind, message)

    def _error(self, kind: str, message: str) -> None:
        self._log(self.get_logger().error, kind, message)

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
                compressed_image_msg(img, settings.output_encoding, settings.compressed_format, settings.jpeg_quality,
                                     w.centre_stamp_ns, pending.frame_id)
            )  # fmt: skip
        return True

    def stop(self) -> None:
        """Stop the worker thread; wait for an engine being made for a parameter change, and let it go."""
        if self.worker is not None:
            self.worker.stop(timeout=10.0)
        self._abandon_load()


class SpikeReconstructor(ReconstructorWork, PlainTransitions, Node):
    """Subscribes to SpikePackets and publishes reconstructed images (see module docstring)."""


class ManagedSpikeReconstructor(ReconstructorWork, ManagedTransitions, LifecycleNode):
    """The reconstructor as a managed (lifecycle) node: ``spike_reconstructor_lifecycle``.

    Starts unconfigured. configure: parameters validated, model and weights loaded, publishers
    and worker created (a refused parameter or missing weights fails the transition with the
    reason logged); activate: subscribes to the spikes, images are published; deactivate:
    unsubscribes, drops waiting windows, keeps parameters and model; cleanup: releases the model
    (and CUDA's cached memory); shutdown from any state.
    """


def _run(make_node: type[ReconstructorWork], args: list[str] | None) -> int:
    def executor_kind(node: Any) -> str:
        kind = node.get_parameter("executor").value
        return kind if kind in EXECUTORS else "single_threaded"

    return run_node(RECONSTRUCTOR_NAME, make_node, args, spin_period_s=0.5, executor_kind=executor_kind)


def main(args: list[str] | None = None) -> int:
    """Entry point of ``spike_reconstructor``; returns the exit status."""
    return _run(SpikeReconstructor, args)


def main_lifecycle(args: list[str] | None = None) -> int:
    """Entry point of ``spike_reconstructor_lifecycle`` (managed node); returns the exit status."""
    return _run(ManagedSpikeReconstructor, args)


if __name__ == "__main__":
    import sys

    sys.exit(main())
