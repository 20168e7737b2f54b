# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The reconstructor's parameter changes at run time, and the engine they may rebuild.

A part of :class:`stir_ros.ros.reconstructor_node.ReconstructorWork` (a mixin: ``self`` is the
node). A change is validated as a whole new :class:`~stir_ros.reconstructor_settings.ReconstructorSettings`;
a change of an engine field builds the new engine before anything is swapped, so a refused change
leaves the node as it was.
"""

from __future__ import annotations

from dataclasses import fields, replace

from rcl_interfaces.msg import SetParametersResult
from rclpy.parameter import Parameter

from stir_ros.core.methods import method_spec
from stir_ros.core.errors import ConfigError, StirRosError
from stir_ros.runtime.rate_policy import RatePacer
from stir_ros.engine import ReconstructionEngine
from stir_ros.reconstructor_settings import ENGINE_FIELDS, ReconstructorSettings, build_engine, warm_up
from stir_ros.core.defect_file import load_defect_map
from stir_ros.ros import emit
from stir_ros.ros.conversions import url_to_path

__all__ = ["ReconstructorParameters", "defect_map_path"]


def defect_map_path(url: str) -> str:
    """The file of ``defect_map_url`` (empty stays empty).

    ``package://`` as ``camera_info_url``: the ament index is ROS's, so it is resolved here and the core reads a path.
    """
    return str(url_to_path(url, "defect_map_url")) if url else ""


class ReconstructorParameters:
    """The parameters callback (validated, applied between two batches) and the engine's making."""

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
            if new.defect_map_url != current.defect_map_url:  # read and checked before anything changes
                url = new.defect_map_url
                file_map = load_defect_map(defect_map_path(url)) if url else None  # slow: outside the packet lock
                # Copied and swapped with no packet in between (none counted into the tracker left behind);
                # the packet path takes the new map from its next packet.
                with self._state_lock:
                    self.stream.defects = self.stream.defects.with_file_map(file_map)
        except StirRosError as err:
            return SetParametersResult(successful=False, reason=str(err))
        worker = self.worker
        assert worker is not None and engine is not None  # configured
        with worker.lock:  # the worker takes its next batch with the new engine and settings together
            worker.swap_engine(engine)
            if engine is not self.engine:
                self.pacer = RatePacer(new.applied_rate_policy)  # the new engine's time is measured afresh
            self.pacer.policy = new.applied_rate_policy
            self.engine = engine
            self.settings = new
        emit(self.get_logger().info, f"parameters changed: {changes}")
        return SetParametersResult(successful=True)


    def _make_engine(self, settings: ReconstructorSettings) -> ReconstructionEngine:
        return build_engine(settings, self._engine_warning)

    def _warmup(self, engine: ReconstructionEngine, height: int, width: int) -> None:
        """Warm up at this size; for STIR, time a window: the next packet logs what is sustainable."""
        first = (id(engine), height, width) not in self._throughput_noted
        warm_up(engine, height, width, self._throughput_noted, self.pacer.observe)
        if first and method_spec(engine.method).needs_weights:
            self._statement_due = f"{engine.method} at {height}x{width}"
            self._state_sustainable()  # now, if packets have told the frame rate (else at the next packet)

    def _engine_warning(self, message: str, summary: str | None = None) -> None:
        """Log an engine's warning; ``summary`` (default: the message) is the last_warning of /diagnostics."""
        emit(self.get_logger().warning, message)
        self._last_warning = message if summary is None else summary

