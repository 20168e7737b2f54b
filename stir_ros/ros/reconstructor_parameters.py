# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The reconstructor's parameter changes at run time, and the engine and defect map they may rebuild.

A part of :class:`stir_ros.ros.reconstructor_node.ReconstructorWork` (a mixin: ``self`` is the
node). A change is validated as a whole new :class:`~stir_ros.reconstructor_settings.ReconstructorSettings`
and answered at once, from the executor thread that also receives the spikes (keep last 50
packets: 0.125 s at 40 kHz, 100 frames a packet). Checked before the answer, so that a refused
change leaves the node as it was: the settings, the weights file's format
(:func:`~stir_ros.reconstructor_settings.check_weights_quickly`), the defect map file (a small one
read whole, a larger one, such as a ``--dark`` map's dark-rate table, only looked at).

What takes longer -- an engine that loads weights or builds a network (seconds), a large defect
map (a third of a second and up) -- is made on a loader thread while the engine and map in force
go on reconstructing; a timer on the executor thread swaps it in, with the settings of the change,
between two batches of the worker. Changes take effect in the order they came: one that arrives
while another is loading waits for it, and of several waiting the newest wins. A part that fails
to load leaves the old one in force: the reason is logged as an error and shown in /diagnostics
(``last_parameter_error``), and its parameters are set back to the values in force.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field, fields, replace
from typing import Any

from rcl_interfaces.msg import SetParametersResult
from rclpy.parameter import Parameter

from stir_ros.core.defect_file import defect_map_file, load_defect_map
from stir_ros.core.defects import DefectMap
from stir_ros.core.errors import ConfigError, StirRosError
from stir_ros.core.methods import method_spec
from stir_ros.engine import ReconstructionEngine
from stir_ros.reconstructor_settings import ENGINE_FIELDS, ReconstructorSettings, build_engine, builds_quickly
from stir_ros.reconstructor_settings import check_weights_quickly, warm_up
from stir_ros.ros import emit
from stir_ros.ros.conversions import STEADY, url_to_path
from stir_ros.runtime.inference_worker import lower_thread_priority
from stir_ros.runtime.rate_policy import RatePacer

__all__ = ["PARTS", "QUICK_MAP_BYTES", "ReconstructorParameters", "defect_map_path"]

#: A defect map file up to this size (hot and dead pixels, no dark-rate table) is read in the
#: parameter callback: a millisecond. A larger one is read on the loader thread.
QUICK_MAP_BYTES = 64 * 1024
#: The parts of the node a change may have to make anew, and the parameters of each.
PARTS = {"engine": ENGINE_FIELDS, "defect map": ("defect_map_url",)}
#: How often the executor thread looks whether a load has ended (only while one is under way).
POLL_S = 0.05
#: The interpreter's switch interval while a load runs (Python's default is 5 ms; see _load_next).
LOADING_SWITCH_INTERVAL_S = 0.0005
_SETTINGS_FIELDS = frozenset(f.name for f in fields(ReconstructorSettings))


def defect_map_path(url: str) -> str:
    """The file of ``defect_map_url`` (empty stays empty).

    ``package://`` as ``camera_info_url``: the ament index is ROS's, so it is resolved here and the core reads a path.
    """
    return str(url_to_path(url, "defect_map_url")) if url else ""


def _differs(a: ReconstructorSettings, b: ReconstructorSettings, part: str) -> bool:
    return any(getattr(a, name) != getattr(b, name) for name in PARTS[part])


def _changed(a: ReconstructorSettings, b: ReconstructorSettings, parts: Iterable[str] = PARTS) -> str:
    """The parameters of ``parts`` whose values differ between ``a`` and ``b``, comma-separated."""
    return ", ".join(name for part in parts for name in PARTS[part] if getattr(a, name) != getattr(b, name))


@dataclass
class _Made:
    """What the loader thread made for ``settings`` (from the settings in force), or why not."""

    settings: ReconstructorSettings
    engine: ReconstructionEngine | None = None  # None: the engine in force stays
    pacer: RatePacer | None = None  # the new engine's, warmed up and timed at the stream's size
    warmed: str = ""  # "stir at HxW": what the pacer measured, for the sustainability statement
    file_map: DefectMap | None = None
    map_read: bool = False  # file_map is defect_map_url's (None: no map)
    errors: dict[str, str] = field(default_factory=dict)  # part -> why it was not made


class ReconstructorParameters:
    """The parameters callback (validated, applied between two batches) and the engine's making."""

    settings: ReconstructorSettings | None  # None: not configured
    engine: ReconstructionEngine | None
    _frame_size: tuple[int, int] | None  # the latest packet's (height, width)

    def _reset_parameter_state(self) -> None:
        """No change waiting or loading (at declaration, configure and cleanup)."""
        #: The newest accepted settings while a change is loading or waits to; None: the settings in force.
        self._asked: ReconstructorSettings | None = None
        self._loading: Future[_Made] | None = None
        self._abandoned = threading.Event()  # the load under way is no longer wanted: it skips what it can
        self._loading_names = ""  # the parameters being loaded, for /diagnostics
        self._load_counts = (0, 0, 0.0)  # packets received, images published and time.monotonic() at its start
        self._last_parameter_error = ""
        self._frame_size = None

    def _make_load_timer(self) -> Any:
        """The timer that takes a finished load in (configure); it runs only while a load is under way."""
        timer = self.create_timer(POLL_S, self._take_load, clock=STEADY)
        timer.cancel()
        self._load_timer = timer
        return timer

    @property
    def parameters_loading(self) -> str:
        """The parameters whose change is being loaded (comma-separated; empty: none)."""
        return self._loading_names if self._loading is not None else ""

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        try:
            return self._apply_parameters(params)
        except Exception as err:  # noqa: BLE001 - a parameter call must get an answer, and the node live on
            self.errors["parameters"] += 1
            return SetParametersResult(successful=False, reason=f"refused: {type(err).__name__}: {err}")

    def _apply_parameters(self, params: list[Parameter]) -> SetParametersResult:
        changes = {p.name: p.value for p in params if p.name in _SETTINGS_FIELDS}
        if not changes:
            return SetParametersResult(successful=True)
        current = self.settings
        asked = self._asked or current  # what the parameters ask for: changes build on it, in order
        try:
            new = replace(asked or ReconstructorSettings.from_mapping(self._parameter_values()), **changes)
        except (ConfigError, TypeError) as err:
            return SetParametersResult(successful=False, reason=str(err))
        if current is None or asked is None:  # not configured (managed node): configure loads the model
            return SetParametersResult(successful=True)
        try:
            if _differs(new, asked, "engine"):
                check_weights_quickly(new)  # whatever the method
            file_map = self._read_small_map(new) if _differs(new, asked, "defect map") else None
        except StirRosError as err:
            return SetParametersResult(successful=False, reason=str(err))
        slow = (_differs(new, current, "engine") and not builds_quickly(new)) or (
            _differs(new, current, "defect map") and file_map is None and bool(new.defect_map_url))
        if self._asked is None and not slow:  # nothing waits before it, and it is all quick to make
            try:
                engine = self._make_engine(new) if _differs(new, current, "engine") else self.engine
            except StirRosError as err:
                return SetParametersResult(successful=False, reason=str(err))
            self._put_in_force(new, _Made(new, engine, file_map=file_map, map_read=_differs(new, current, "defect map")))
            emit(self.get_logger().info, f"parameters changed: {changes}")
            return SetParametersResult(successful=True)
        self._asked = new
        self._load_next()
        emit(self.get_logger().info, f"parameters changed: {changes}; in force once loaded (parameters_loading)")
        return SetParametersResult(successful=True)

    def _read_small_map(self, settings: ReconstructorSettings) -> DefectMap | None:
        """The map of ``defect_map_url`` if its file is small (read now); None if empty or large (checked only).

        Raises:
            ConfigError: The URL or the file is refused.
        """
        if not settings.defect_map_url:
            return None
        path, size = defect_map_file(defect_map_path(settings.defect_map_url))
        return load_defect_map(str(path)) if size <= QUICK_MAP_BYTES else None

    def _put_in_force(self, settings: ReconstructorSettings, made: _Made) -> None:
        """Swap in ``settings`` with what was made for them: the worker's next batch takes them together."""
        if made.map_read:  # copied and swapped with no packet in between (none counted into the tracker left behind)
            with self._state_lock:
                self.stream.defects = self.stream.defects.with_file_map(made.file_map)
        engine = made.engine or self.engine
        worker = self.worker
        assert worker is not None and engine is not None  # configured
        with worker.lock:  # the worker takes its next batch with the new engine and settings together
            worker.swap_engine(engine)
            if engine is not self.engine:  # the new engine's time is measured afresh
                self.pacer = made.pacer or RatePacer(settings.applied_rate_policy)
                self._statement_due = made.warmed
            self.pacer.policy = settings.applied_rate_policy
            self.engine = engine
            self.settings = settings

    # ------------------------------------------------------------------ loading (loader thread)

    def _load_next(self) -> None:
        """Start making what the asked settings need on a loader thread, unless a load is under way."""
        target, current = self._asked, self.settings
        if self._loading is not None or target is None or current is None:
            return
        future: Future[_Made] = Future()
        abandoned = self._abandoned
        size = self._frame_size or ((current.warmup_height, current.warmup_width) if current.warmup_height else None)

        def run() -> None:
            lower_thread_priority(current.worker_niceness)  # the spikes' thread keeps its core, as from the worker
            # Building a network and parsing YAML hold the GIL, which the executor thread needs for each packet.
            # The interpreter makes the holder let go every 0.5 ms instead of 5 ms; and the cyclic garbage
            # collector, which a burst of new objects (a dark-rate table's 100 000 numbers) sets off over the
            # whole heap, the GIL held for up to a second on a busy CPU (bench_param_change.py), waits for the
            # end of the load (what the load drops is freed by reference counting).
            interval, collecting = sys.getswitchinterval(), gc.isenabled()
            sys.setswitchinterval(min(interval, LOADING_SWITCH_INTERVAL_S))
            gc.disable()
            try:
                future.set_result(self._make(target, current, size, abandoned))
            finally:
                sys.setswitchinterval(interval)
                if collecting:
                    gc.enable()

        self._loading = future
        self._load_counts = (self.stream.monitor.packets, self.worker.images_published, time.monotonic())
        self._loading_names = _changed(target, current)
        threading.Thread(target=run, name="stir_ros parameters", daemon=True).start()
        self._load_timer.reset()

    def _make(self, target: ReconstructorSettings, current: ReconstructorSettings, size: tuple[int, int] | None,
              abandoned: threading.Event) -> _Made:  # fmt: skip
        """The engine and map of ``target`` that differ from ``current``'s (the loader thread; never raises)."""
        made = _Made(target)
        for part in PARTS:
            if not _differs(target, current, part) or abandoned.is_set():
                continue
            try:
                if part == "engine":
                    made.engine = self._make_engine(target)
                    made.pacer = RatePacer(target.applied_rate_policy)
                    if size is not None and not abandoned.is_set():  # warmed here, not by the worker: images go on
                        warm_up(made.engine, *size, self._throughput_noted, made.pacer.observe)
                        needs = method_spec(made.engine.method).needs_weights
                        made.warmed = f"{made.engine.method} at {size[0]}x{size[1]}" if needs else ""
                else:
                    url = target.defect_map_url
                    made.file_map, made.map_read = load_defect_map(defect_map_path(url)) if url else None, True
            except Exception as err:  # noqa: BLE001 - whatever fails is reported, and the old part stays
                made.errors[part] = str(err) if isinstance(err, StirRosError) else f"{type(err).__name__}: {err}"
                made.engine = None if part == "engine" else made.engine
        return made

    # ------------------------------------------------------------------ taking a load in (executor thread)

    def _take_load(self) -> None:
        """Timer: a finished load goes into force; a failed part is reported and its parameters set back."""
        try:
            with self._state_lock:
                future = self._loading
                if future is None or self.settings is None:
                    self._load_timer.cancel()
                    return
                if not future.done():
                    return
                self._loading = None
                self._load_timer.cancel()
                revert = self._take_made(future.result())
            if revert:  # the parameter server shows what is in force (the callback accepts: nothing to make)
                results = self.set_parameters([Parameter(name, value=value) for name, value in revert.items()])
                if not all(r.successful for r in results):
                    emit(self.get_logger().error, f"could not set {sorted(revert)} back: {[r.reason for r in results]}")
        except Exception as err:  # noqa: BLE001 - a timer callback that raises would end the node
            self.errors["parameters"] += 1
            self._error("parameters", f"taking a parameter change in failed: {err!r}")

    def _take_made(self, made: _Made) -> dict[str, Any]:
        """Put ``made`` in force; returns the parameters to set back (those of a part that failed).

        In force: the settings the load was started for, a failed part's parameters as they were (and
        set back, changes of that part that came while it loaded included). Other changes that came
        while it loaded follow (with the next load, where they need one): in order.
        """
        current, asked = self.settings, self._asked or self.settings
        assert current is not None and asked is not None
        kept = {name: getattr(current, name) for part in made.errors for name in PARTS[part]}
        loaded = replace(made.settings, **kept)
        revert: dict[str, Any] = {}
        for part, reason in made.errors.items():
            tried = {n: getattr(made.settings, n) for n in PARTS[part] if getattr(made.settings, n) != kept[n]}
            message = f"parameter change {tried} not applied, {part} in force kept: {reason}"
            emit(self.get_logger().error, message)
            self.errors["parameter_load"] += 1
            self._last_parameter_error = message
            # Those that came while it loaded too: with the failed values set back they would make a combination
            # nobody asked for (a set_parameters call of weights and method arrives as two changes).
            revert |= {n: kept[n] for n in PARTS[part] if getattr(asked, n) != kept[n]}
        waiting = replace(asked, **revert)
        more = any(_differs(waiting, loaded, part) for part in PARTS)
        self._put_in_force(loaded if more else waiting, made)
        in_force = _changed(made.settings, current, [part for part in PARTS if part not in made.errors])
        if in_force:
            packets, images, started = self._load_counts
            emit(self.get_logger().info, f"parameters in force after loading for {time.monotonic() - started:.1f} s: "
                 f"{in_force}; meanwhile {self.stream.monitor.packets - packets} packets received and "
                 f"{self.worker.images_published - images} images published")  # fmt: skip
        self._asked = waiting if more else None
        self._load_next()  # the changes that came meanwhile, if they need making
        return revert

    def _abandon_load(self, timeout_s: float = 60.0) -> None:
        """Cleanup and stop: wait for a load under way and let go of what it made; nothing waits any more.

        Waited for, not left behind: a process that exits while the loader is inside a native build
        (OpenVINO's compiler) is aborted. The load skips its warm-up and what it has not begun.
        """
        future = self._loading
        self._abandoned.set()
        self._reset_parameter_state()
        if future is None:
            return
        try:
            made = future.result(timeout=timeout_s)
        except TimeoutError:  # nothing here refers to it: what it makes goes when its thread ends
            emit(self.get_logger().warning, f"a parameter change still loading after {timeout_s:g} s is dropped")
            return
        made.engine = made.pacer = made.file_map = None  # the model goes now, before the device memory is released

    # ------------------------------------------------------------------ engine

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
