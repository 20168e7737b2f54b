# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The reconstructor's settings, validated (one field per parameter of the settings table), and its engine.

:class:`ReconstructorSettings` has exactly the parameters of
:data:`stir_ros.runtime.parameters.RECONSTRUCTOR_PARAMETERS`, whose defaults it takes from there
(:data:`DEFAULTS`; the names are checked when this module is imported); every number is checked against its
bound (:data:`stir_ros.core.limits.PARAMETER_BOUNDS`), every choice against its list, and the
engine's part by :class:`stir_ros.engine.EngineConfig`. A refused value raises
:class:`~stir_ros.core.errors.ConfigError` with the parameter's name, what it accepts and what it got.

:func:`build_engine` makes the engine the settings describe, with the node's fallbacks (an
OpenVINO that is not installed: torch), and :func:`warm_up` warms it up and, for STIR on a CPU,
measures what to expect.

ROS-free (the node, :mod:`stir_ros.ros.reconstructor_node`, declares the parameters and builds
this from their values); torch-free at import, like the engine it configures.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from stir_ros.core.defects import DEFECT_CORRECTIONS
from stir_ros.core.errors import BackendUnavailableError, CheckpointError, ConfigError, StirRosError, check_choice
from stir_ros.core.imaging import IMAGE_ENCODINGS
from stir_ros.core.limits import check_parameter
from stir_ros.core.methods import method_spec
from stir_ros.core.optional import import_torch
from stir_ros.runtime.parameters import RECONSTRUCTOR_NAME, RECONSTRUCTOR_PARAMETERS
from stir_ros.runtime.rate_policy import RATE_POLICIES
from stir_ros.engine import ENGINE_FIELDS, EngineConfig, ReconstructionEngine

__all__ = [
    "COMPRESSED_FORMATS", "DEFAULTS", "ENGINE_FIELDS", "EXECUTORS", "ReconstructorSettings", "build_engine",
    "builds_quickly", "check_weights_quickly", "warm_up",
]  # fmt: skip

#: ``events``: rclpy's C++ EventsExecutor (rclpy.experimental). A bare subscriber took 400
#: packets/s of 1.25 MB for 27 % of a core with it, 55 % with the default Python executor; the
#: whole node at 40 kHz 72 % instead of 82 %, p95 latency 5 ms instead of 23 ms (BENCHMARKS.md).
EXECUTORS = ("events", "single_threaded")
#: ``compressed_format`` values: "" (off), lossless png or lossy jpeg (``jpeg_quality``).
COMPRESSED_FORMATS = ("", "png", "jpeg")


#: Each reconstructor parameter's default, from the table (written there only).
DEFAULTS: dict[str, Any] = {spec.name: spec.default for spec in RECONSTRUCTOR_PARAMETERS}


@dataclass(frozen=True)
class ReconstructorSettings:
    """The reconstructor's parameters, validated (see ``RECONSTRUCTOR_PARAMETERS``)."""

    method: str = DEFAULTS["method"]
    weights: str = DEFAULTS["weights"]
    device: str = DEFAULTS["device"]
    precision: str = DEFAULTS["precision"]
    backend: str = DEFAULTS["backend"]
    torch_compile: str = DEFAULTS["torch_compile"]
    cuda_graphs: bool = DEFAULTS["cuda_graphs"]
    feature_reuse: bool = DEFAULTS["feature_reuse"]
    dark_weights: str = DEFAULTS["dark_weights"]
    window_length: int = DEFAULTS["window_length"]
    stride_frames: int = DEFAULTS["stride_frames"]
    output_rate_hz: float = DEFAULTS["output_rate_hz"]
    max_batch: int = DEFAULTS["max_batch"]
    alpha: float = DEFAULTS["alpha"]
    output_encoding: str = DEFAULTS["output_encoding"]
    rate_policy: str = DEFAULTS["rate_policy"]
    inference_streams: int = DEFAULTS["inference_streams"]
    queue_size: int = DEFAULTS["queue_size"]
    frame_id: str = DEFAULTS["frame_id"]
    diagnostics_period_s: float = DEFAULTS["diagnostics_period_s"]
    warmup_height: int = DEFAULTS["warmup_height"]
    warmup_width: int = DEFAULTS["warmup_width"]
    executor: str = DEFAULTS["executor"]
    stall_timeout_s: float = DEFAULTS["stall_timeout_s"]
    compressed_format: str = DEFAULTS["compressed_format"]
    jpeg_quality: int = DEFAULTS["jpeg_quality"]
    lazy: bool = DEFAULTS["lazy"]
    defect_correction: str = DEFAULTS["defect_correction"]
    defect_map_url: str = DEFAULTS["defect_map_url"]
    defect_sample_period_frames: int = DEFAULTS["defect_sample_period_frames"]
    defect_hot_rate: float = DEFAULTS["defect_hot_rate"]
    worker_niceness: int = DEFAULTS["worker_niceness"]

    def __post_init__(self) -> None:
        # Every number against its bound (finite, within what the machine and sensor allow).
        for f in fields(self):
            check_parameter(RECONSTRUCTOR_NAME, f.name, getattr(self, f.name))
        self.engine_config()  # validates the engine fields
        if self.compressed_format not in COMPRESSED_FORMATS:
            raise ConfigError(f"compressed_format must be '', 'png' or 'jpeg', got {self.compressed_format!r}")
        if self.stride_frames < 1:
            raise ConfigError(f"stride_frames must be >= 1, got {self.stride_frames}")
        if self.output_rate_hz < 0:
            raise ConfigError(f"output_rate_hz must be >= 0 (0: use stride_frames), got {self.output_rate_hz}")
        check_choice("output_encoding", self.output_encoding, IMAGE_ENCODINGS)
        check_choice("rate_policy", self.rate_policy, RATE_POLICIES)
        if self.queue_size < 1:
            raise ConfigError(f"queue_size must be >= 1, got {self.queue_size}")
        if not self.diagnostics_period_s > 0:
            raise ConfigError(f"diagnostics_period_s must be positive, got {self.diagnostics_period_s}")
        if self.warmup_height < 0 or self.warmup_width < 0:
            raise ConfigError("warmup_height and warmup_width must be >= 0")
        if not isinstance(self.lazy, bool):
            raise ConfigError(f"lazy must be true or false, got {self.lazy!r}")
        check_choice("defect_correction", self.defect_correction, DEFECT_CORRECTIONS)
        if self.defect_correction == "file" and not self.defect_map_url:
            raise ConfigError("defect_correction 'file' needs defect_map_url (a calibrate-defects file)")
        check_choice("executor", self.executor, EXECUTORS)

    @property
    def applied_rate_policy(self) -> str:
        """``rate_policy`` as applied: a network is paced; TFP and TFI keep the stride asked for.

        They are cheap, and a stretched stride of a millisecond would follow every scheduling hiccup.
        """
        return self.rate_policy if method_spec(self.method).needs_weights else "drop_oldest"

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> ReconstructorSettings:
        """Build from parameter values (unknown keys are ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})

    def engine_config(self) -> EngineConfig:
        """The :class:`EngineConfig` part."""
        return EngineConfig.from_settings(self)


def build_engine(
    settings: ReconstructorSettings | EngineConfig, warn: Callable[[str, str], Any]
) -> ReconstructionEngine:
    """The engine of ``settings``; ``warn(message, summary)`` hears of each fallback and engine warning.

    The one way the node, ``stir-ros bag reconstruct`` and ``stir-ros eval`` build their engine
    (the node's with its ``inference_streams``; the offline commands reconstruct one window at a time).
    ``weights`` are checked first, whatever the method, and read once: the engine takes the model
    this check loaded. A backend that is not installed (OpenVINO) falls back to torch. Whatever
    else building fails with is a :class:`~stir_ros.core.errors.CheckpointError` (a refusal, not
    a crash).
    """
    config = settings.engine_config() if isinstance(settings, ReconstructorSettings) else settings
    streams = settings.inference_streams if isinstance(settings, ReconstructorSettings) else 1
    checkpoint = _check_weights(config)
    if not method_spec(config.method).needs_weights:
        checkpoint = None  # checked for a later switch of method; this engine reads no weights
    try:
        try:
            engine = ReconstructionEngine(config, checkpoint, streams=streams)
        except BackendUnavailableError as err:  # a robot without OpenVINO still gets images
            warn(f"{err}; falling back to backend torch", f"backend {config.backend} unavailable; using torch")
            engine = ReconstructionEngine(replace(config, backend="torch"), checkpoint, streams=streams)
    except StirRosError:
        raise
    except Exception as err:  # noqa: BLE001 - whatever torch raises is a refusal, not a crash
        raise CheckpointError(f"cannot build the {config.method} engine: {type(err).__name__}: {err}") from err
    for warning in engine.pop_warnings():
        warn(warning, warning)
    return engine


def builds_quickly(settings: ReconstructorSettings) -> bool:
    """Whether :func:`build_engine` of ``settings`` takes milliseconds: no network to build and no weights to read.

    A classical method with no ``weights`` named, or any method where PyTorch is missing (then
    stir is refused at once). Otherwise the weights are loaded and checked, and for stir a
    network is built, in seconds on a CPU.
    """
    return import_torch() is None or (not method_spec(settings.method).needs_weights and not settings.weights)


def check_weights_quickly(settings: ReconstructorSettings) -> None:
    """What :func:`build_engine` would refuse of the ``weights`` file without reading it (milliseconds).

    The file exists, is a regular file within the size limit, and is a torch file whose archive
    would not inflate beyond the limits (:func:`stir_ros.models.torch_file.check_weights_archive`);
    its contents (a stir_ros checkpoint, its checksum and architecture) are checked when it is read.

    Raises:
        CheckpointError: One line naming the file and what is wrong with it.
    """
    if not settings.weights or import_torch() is None:
        return
    from stir_ros.models.torch_file import check_weights_archive  # torch model code only when used

    check_weights_archive(os.path.expanduser(settings.weights))


def _check_weights(config: EngineConfig) -> tuple[Any, Any] | None:
    """Validate ``weights`` (whatever the method) before an engine needs them: the model and its metadata.

    The check of :func:`stir_ros.models.checkpoint.check_weights_file` (a ``weights_only`` load on the
    CPU); ``None`` when no file is named or torch is not installed (the engine then refuses stir
    with the install instruction; tfp/tfi read no weights).
    """
    if not config.weights or import_torch() is None:
        return None
    from stir_ros.models.checkpoint import load_checkpoint  # torch model code only when used

    return load_checkpoint(os.path.expanduser(config.weights), device="cpu",
                           expected_window_length=config.window_length or None)


def _at_once(engine: ReconstructionEngine, window: np.ndarray, threads: int) -> None:
    """``engine.reconstruct(window)`` in ``threads`` threads at once (here alone for one)."""
    if threads == 1:
        engine.reconstruct(window)
        return
    errors: list[BaseException] = []

    def one() -> None:
        try:
            engine.reconstruct(window)
        except BaseException as err:  # noqa: BLE001 - raised below, in the caller's thread
            errors.append(err)

    workers = [threading.Thread(target=one, name=f"warm-up-{i}") for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if errors:
        raise errors[0]


def warm_up(
    engine: ReconstructionEngine, height: int, width: int, noted: set[tuple[Any, ...]],
    observe: Callable[[float, int], Any] | None = None,
) -> float | None:
    """Warm up at this size; for STIR, the first time (``noted``), time the windows it runs at once.

    Returns that time in seconds (None: not timed), which ``observe(seconds, windows)`` hears too:
    the rate policy's first measure, whose start-up statement says what is sustainable
    (:meth:`stir_ros.runtime.rate_policy.RatePacer.statement`). An engine of several ``streams`` is
    timed on as many windows at once, one per thread (what it sustains in flight), each window its
    own (the first of each stream runs the size's compile).
    """
    engine.warmup(height, width)
    key = (id(engine), height, width)
    if not method_spec(engine.method).needs_weights or key in noted:
        return None
    noted.add(key)
    # One extra window per stream: a batch of max_batch would delay the first image by seconds on a CPU.
    batch = max(1, int(getattr(engine, "streams", 1)))
    zeros = np.zeros((1, engine.window_length, height, width), np.uint8)
    if batch > 1:
        _at_once(engine, zeros, batch)  # each stream's first window makes its infer request
    start = time.perf_counter()
    _at_once(engine, zeros, batch)
    seconds = max(time.perf_counter() - start, 1e-9)
    if observe is not None:
        observe(seconds, batch)
    return seconds


def _check_table() -> None:
    """The dataclass holds every parameter of the table, typed as its default (fails at import otherwise)."""
    ours = {f.name: f.type for f in fields(ReconstructorSettings)}  # "str", "int", ... (postponed annotations)
    if set(ours) != set(DEFAULTS) or any(t != type(DEFAULTS[n]).__name__ for n, t in ours.items()):
        raise ImportError("ReconstructorSettings does not hold the parameters of RECONSTRUCTOR_PARAMETERS "
                          f"(fields {sorted(ours)}, table {sorted(DEFAULTS)})")  # fmt: skip


_check_table()
