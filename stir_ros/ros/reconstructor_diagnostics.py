# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The reconstructor's counters and ``/diagnostics``: what the node reports, read from its parts.

A part of :class:`stir_ros.ros.reconstructor_node.ReconstructorWork` (a mixin: ``self`` is the
node). The values and the judgement are ROS-free (:class:`stir_ros.runtime.reconstructor_status.ReconstructorStatus`);
this reads them from the stream, the worker and the engine, and publishes them.
"""

from __future__ import annotations

from typing import Any

from diagnostic_msgs.msg import DiagnosticArray

from stir_ros.runtime.parameters import RECONSTRUCTOR_NAME
from stir_ros.core.stream import WindowCutter
from stir_ros.ros.conversions import diagnostic_status

__all__ = ["ReconstructorDiagnostics"]


class ReconstructorDiagnostics:
    """Counters (windows cut, dropped, images published), health and the ``/diagnostics`` timer."""

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
            "inference_streams": getattr(self.engine, "streams", 1),
            "rate_policy": self.pacer.policy,
            "sustainable_images_per_s": 1.0 / self.pacer.seconds_per_window if self.pacer.seconds_per_window else 0.0,
            "parameters_loading": self.parameters_loading,
            "parameter_load_failures": self.errors["parameter_load"],
            "last_parameter_error": self._last_parameter_error,
        }

    def _publish_diagnostics(self) -> None:
        try:
            with self._state_lock:
                if self.settings is None:  # a timer event delivered after cleanup
                    self.late_callbacks += 1
                    return
                self._check_worker()
                self._state_sustainable()  # a warm-up that ended after the last packet (a short stream)
                self._diagnostics()
        except Exception as err:  # noqa: BLE001 - a timer callback that raises would end the node
            if not self.context.ok():
                return  # stopping: the timer fired as the context went, a publish into it is not an error
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

