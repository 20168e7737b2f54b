# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The reconstructor's diagnostics: its counters as key/value pairs, and the level and message.

:class:`ReconstructorStatus` turns what the node counts (the stream's monitor and cutter, the
inference worker's queue and timing, rejected packets and errors) into the ordered values that
``/diagnostics`` carries, with rates over the time since the previous call, and judges them:
``ok``, ``warn`` (something was counted, or no input) or ``error`` (inference fails and no image
was ever published, or windows waited longer than ``stall_timeout_s``). The node only wraps the
result into a ``diagnostic_msgs/DiagnosticStatus``. ROS-free and torch-free.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np

from stir_ros.core.defects import DARK_RATE_WARN_HZ, DEAD_WARN_FRACTION, HOT_WARN_FRACTION
from stir_ros.runtime.inference_worker import InferenceWorker
from stir_ros.core.stream_processor import StreamProcessor

__all__ = ["COUNTED", "ReconstructorStatus"]

#: Values that make the level ``warn`` when not zero (named in the message).
COUNTED = (
    "input_lost_packets", "windows_dropped", "bad_packets", "inference_errors", "oom_fallbacks",
    "packet_handling_errors", "parameter_errors", "parameter_load_failures", "worker_restarts",
)  # fmt: skip


class ReconstructorStatus:
    """Diagnostics of one configured reconstructor; keeps the counts of the previous call for the rates."""

    def __init__(self, now: float | None = None) -> None:
        self._prev = (time.monotonic() if now is None else now, 0, 0, 0)

    def values(
        self,
        *,
        engine: Any,
        settings: Any,
        stream: StreamProcessor,
        worker: InferenceWorker,
        bad_packets: Mapping[str, int],
        errors: Counter[str],
        worker_restarts: int,
        last_warning: str,
        last_packet: float | None,
        idle_no_subscribers: bool,
        now: float | None = None,
    ) -> dict[str, Any]:
        """The diagnostics values, in the order they are published.

        ``engine``: method, device_name, precision, window_length, oom_fallbacks; ``settings``:
        stride_frames and lazy (:class:`stir_ros.reconstructor_settings.ReconstructorSettings`).
        """
        now = time.monotonic() if now is None else now
        t_prev, frames_prev, packets_prev, images_prev = self._prev
        dt = max(now - t_prev, 1e-9)
        m = stream.monitor
        cutter = stream.cutter
        images = worker.images_published
        self._prev = (now, m.frames, m.packets, images)
        lat = np.asarray(worker.latency_ms) if worker.latency_ms else np.zeros(1)
        age = np.asarray(worker.age_ms) if worker.age_ms else np.zeros(1)
        unserved = worker.unserved_since
        values: dict[str, Any] = {
            "method": engine.method,
            "device": engine.device_name,
            "precision": engine.precision,
            "window_length": engine.window_length,
            "stride_frames": cutter.stride_frames if cutter else settings.stride_frames,
            "input_packets_per_s": (m.packets - packets_prev) / dt,
            "input_frames_per_s": (m.frames - frames_prev) / dt,
            "output_images_per_s": (images - images_prev) / dt,
            "latency_ms_p50": float(np.percentile(lat, 50)),
            "latency_ms_p95": float(np.percentile(lat, 95)),
            "latency_ms_p99": float(np.percentile(lat, 99)),
            "stamp_age_ms_p50": float(np.percentile(age, 50)),
            # One window's own inference (with two streams about twice the time per window in flight).
            "inference_ms_p50": float(np.percentile(worker.window_s, 50)) * 1e3 if worker.window_s else 0.0,
            "input_idle_s": now - last_packet if last_packet is not None else 0.0,
            "queue_depth": len(worker.queue),
            "unserved_s": now - unserved if unserved is not None else 0.0,
            "worker_alive": worker.alive,
            "worker_restarts": worker_restarts,
            "windows_cut": stream.windows_cut,
            "windows_dropped": worker.windows_dropped,
            "images_published": images,
            "buffer_resets": stream.buffer_resets,
            "bad_packets": sum(bad_packets.values()),
            "inference_errors": errors["inference"],
            "packet_handling_errors": errors["packet_handling"],
            "parameter_errors": errors["parameters"],
            "worker_errors": errors["worker"],
            "oom_fallbacks": engine.oom_fallbacks,
            "last_warning": last_warning,
            "lazy": settings.lazy,
            "idle_no_subscribers": idle_no_subscribers,
        }
        values.update(stream.defects.values())
        values["windows_repaired"] = stream.windows_repaired
        dark = getattr(engine, "dark", None)  # STIR's dark-robust network (stir_ros.models.dark_routing)
        values["dark_network"] = dark is not None
        values["windows_dark_weights"] = dark.windows if dark is not None else 0
        values["dark_events_per_pixel_frame"] = dark.last_rate if dark is not None else float("nan")
        values.update({f"input_{k}": v for k, v in m.counters().items()})
        values.update({f"bad_packets_{k}": v for k, v in sorted(bad_packets.items())})
        return values

    @staticmethod
    def judge(
        values: Mapping[str, Any],
        *,
        active: bool,
        images_published: int,
        diagnostics_period_s: float,
        stall_timeout_s: float,
        packet_span_s: float,
    ) -> tuple[str, str]:
        """``(level, message)`` of these values: level ok, warn or error.

        ``packet_span_s``: sensor time one packet covers; the input counts as stopped after
        ``max(2 s, 2 diagnostics periods, 3 packets)`` without a packet.
        """
        problems = [k for k in COUNTED if values.get(k)]  # the node adds parameter_load_failures
        message = "ok" if not problems else "counted: " + ", ".join(problems)
        if values.get("parameters_loading"):  # a run-time change made on the loader thread: the old settings run
            loading = f"loading a parameter change ({values['parameters_loading']})"
            message = loading if message == "ok" else f"{loading}; {message}"
        if not active:  # a managed node, configured and not active: a normal state, level OK
            return "ok", "inactive (lifecycle): not subscribed to spikes"
        if values["idle_no_subscribers"]:  # lazy and nobody listens: a normal state, level OK
            idle = "idle: no subscribers to the images (lazy)"
            message = idle if message == "ok" else f"{idle}; {message}"
        # A stream that stops (driver gone, link cut) is reported until packets come again.
        idle_limit = max(2.0, 2 * diagnostics_period_s, 3 * packet_span_s)
        if values["input_idle_s"] > idle_limit:
            problems.append("no_input")
            message = f"no input for {values['input_idle_s']:.1f} s" + ("" if message == "ok" else f"; {message}")
        sensor = _sensor_defects(values)
        if values.get("defect_map_unfit"):  # the calibration given does not fit this camera (its size or frame rate)
            problems.append("defect_map_unfit")
            message = values["defect_map_unfit"] if message == "ok" else f"{message}; {values['defect_map_unfit']}"
        if sensor:
            problems.append("sensor_defects")
            text = "sensor: " + ", ".join(sensor)
            message = text if message == "ok" else f"{message}; {text}"
        level = "error" if values["inference_errors"] and not images_published else ("warn" if problems else "ok")
        # Windows wait and no image came for stall_timeout_s: inference is stuck or failing.
        if values["unserved_s"] > stall_timeout_s:
            level = "error"
            message = (f"no image for {values['unserved_s']:.1f} s while windows wait (stall_timeout_s "
                       f"{stall_timeout_s:g})") + ("" if message == "ok" else f"; {message}")  # fmt: skip
        return level, message


def _sensor_defects(values: Mapping[str, Any]) -> list[str]:
    """The sensor's defects over the WARN limits, each with what is done about it (README, "Using a real camera")."""
    sensor = []
    pixels = []
    if values.get("hot_fraction", 0.0) > HOT_WARN_FRACTION:
        pixels.append(f"{values['hot_pixels']} hot pixels")
    if values.get("dead_fraction", 0.0) > DEAD_WARN_FRACTION:
        pixels.append(f"{values['dead_pixels']} dead pixels")
    if pixels:
        left = values.get("pixels_unrepaired", 0)
        # A clump without a good pixel within 3 keeps its spikes: say so rather than "repaired".
        done = "repaired" if not left else f"{left} not repaired: no good pixel within 3"
        sensor.append(", ".join(pixels) + f" ({done})")
    # Measured (a lens-cap calibration) only: from a scene the rate is an upper bound, high in a bright one.
    if values.get("dark_rate_measured") and values.get("dark_rate_hz", 0.0) > DARK_RATE_WARN_HZ:
        done = ("the dark-robust network takes the dark windows: windows_dark_weights" if values.get("dark_network") else
                f"{values.get('method', '')} counts it as light; method stir with dark_weights auto sends dark windows "
                "to a dark-robust network")  # fmt: skip
        sensor.append(f"dark-current rate {values['dark_rate_hz']:.0f} Hz ({done})")
    return sensor
