# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Reconstruction engine: spike windows in, scene intensity images in [0, 1] out.

One object hides the method (STIR network or the classical TFP/TFI), the device, the numeric
precision and batching from the node and the offline tools, which therefore give the same
images for the same windows.

- ``stir``: the network's raw output divided by ``alpha`` and clamped to [0, 1] here (the model
  itself neither clamps nor divides in eval mode). The network runs prepared for inference
  (:func:`stir_ros.models.inference.prepare_for_inference`): fp16/bf16 cast the weights and keep
  the warp in fp32; on the CPU bf16 is allowed and fp16 falls back to fp32 with a warning.
- ``tfp`` / ``tfi``: :mod:`stir_ros.core.classical` (already divided by alpha), clamped. On the
  CPU they run in numpy, on CUDA in torch.
- CUDA out of memory: the batch is halved and retried; at batch 1 the engine moves to the CPU.
  Each fallback is recorded in :attr:`ReconstructionEngine.warnings` for diagnostics.
- Without PyTorch (a robot without the ``stir`` extra, :mod:`stir_ros.core.optional`) ``tfp`` and
  ``tfi`` run on the CPU in numpy, and ``stir`` is refused with a :class:`ConfigError` that says
  how to install the extra. The module itself imports torch only where it is used.
"""

from __future__ import annotations

import math
import os
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from stir_ros.core.classical import check_spike_values
from stir_ros.core.devices import NumpyCPU, check_device, resolve_device
from stir_ros.core.defaults import ALPHA, BACKENDS, DARK_WEIGHTS, PRECISIONS
from stir_ros.core.errors import CheckpointError, ConfigError, SpikeFormatError, check_choice
from stir_ros.core.inference_path import SHIPPED_BF16_LOSS_DB, InferencePath, resolve_inference_path, resolve_streams
from stir_ros.core.methods import METHOD_TABLE, METHODS, method_spec, torch_free_methods
from stir_ros.core.optional import import_torch, is_tensor, torch_required
from stir_ros.core.weights import default_weights_path

if TYPE_CHECKING:
    import torch

__all__ = [
    "COMPILE_MODES",
    "METHODS",
    "PRECISIONS",
    "BACKENDS",
    "DEFAULT_WINDOW_LENGTH",
    "ENGINE_FIELDS",
    "EngineConfig",
    "NumpyCPU",
    "ReconstructionEngine",
    "add_dark_weights_argument",
    "default_weights_path",
    "resolve_device",
]

#: ``torch.compile`` modes of the STIR predictor (``none``: eager).
COMPILE_MODES = ("none", "default", "reduce-overhead", "max-autotune")
#: Window length of tfp/tfi when ``window_length`` is 0 (the REDS-derived 41-frame setting).
DEFAULT_WINDOW_LENGTH = METHOD_TABLE["tfp"].default_window_length


@dataclass(frozen=True)
class EngineConfig:
    """Settings of a :class:`ReconstructionEngine`.

    Attributes:
        method: ``stir``, ``tfp`` or ``tfi``.
        window_length: Frames T per window; 0 takes the checkpoint's for ``stir`` and
            :data:`DEFAULT_WINDOW_LENGTH` for ``tfp``/``tfi``. STIR supports 41 and 61.
        alpha: Sensor alpha (firing rate at intensity 1); outputs are divided by it.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``. ``auto`` is CUDA when available for
            ``stir`` and the CPU for ``tfp``/``tfi``.
        precision: ``auto``, ``fp32``, ``fp16`` or ``bf16`` (``stir`` only; the classical methods are
            exact). ``auto`` (and ``backend: auto``): :func:`stir_ros.core.inference_path.resolve_inference_path`.
        max_batch: Most windows per forward pass.
        weights: STIR checkpoint; ``None`` (or empty) is the shipped default.
        backend: ``auto``, ``torch`` or ``openvino`` (``stir`` on the CPU; fp32 or bf16). An OpenVINO
            that is not installed raises :class:`BackendUnavailableError` at construction.
        torch_compile: ``none`` or a ``torch.compile`` mode (``default``, ``reduce-overhead``,
            ``max-autotune``) for ``stir`` on the torch backend. Off by default: on a 2-core CPU
            it gained 1.14x after a cold compile of about 130 s (BENCHMARKS.md).
        cuda_graphs: Replay one captured CUDA graph per input shape (``stir`` on CUDA; ignored
            elsewhere, with a warning). Off by default: not yet measured on a GPU.
        feature_reuse: ``stir`` on the torch backend: windows that overlap (stride shorter than
            the window) reuse the block features of the frames they share
            (:class:`stir_ros.models.streaming.StreamingSTIR`), when :meth:`ReconstructionEngine.reconstruct`
            is given each window's first frame index. Runs the eager network (no ``torch.compile``
            or CUDA graphs for those calls). Same images within 1e-5.
        dark_weights: ``stir``: the network for windows that hold dark-current spikes
            (:mod:`stir_ros.models.dark_routing`): ``auto`` (the shipped dark-robust weights when
            ``weights`` is the shipped default, else none), ``none``, or a checkpoint path.
    """

    method: str = "stir"
    window_length: int = 0
    alpha: float = ALPHA
    device: str = "auto"
    precision: str = "fp32"  # the library's default is exact (as eval's); the node's is auto
    max_batch: int = 4
    weights: str | None = None
    backend: str = "torch"
    torch_compile: str = "none"
    cuda_graphs: bool = False
    feature_reuse: bool = False
    dark_weights: str = DARK_WEIGHTS

    def __post_init__(self) -> None:
        spec = method_spec(self.method)
        if isinstance(self.window_length, bool) or not isinstance(self.window_length, int) or self.window_length < 0:
            raise ConfigError(f"window_length must be an integer >= 0 (0 = automatic), got {self.window_length!r}")
        spec.check_window_length(self.window_length)
        if not isinstance(self.alpha, (int, float)) or not (math.isfinite(self.alpha) and self.alpha > 0):
            raise ConfigError(f"alpha must be a positive number, got {self.alpha!r}")
        check_device(self.device)
        check_choice("precision", self.precision, PRECISIONS)
        if isinstance(self.max_batch, bool) or not isinstance(self.max_batch, int) or self.max_batch < 1:
            raise ConfigError(f"max_batch must be a positive integer, got {self.max_batch!r}")
        if self.weights is not None and not isinstance(self.weights, (str, os.PathLike)):
            raise ConfigError(f"weights must be a file path, got {self.weights!r}")
        check_choice("torch_compile", self.torch_compile, COMPILE_MODES)
        if not isinstance(self.cuda_graphs, bool):
            raise ConfigError(f"cuda_graphs must be true or false, got {self.cuda_graphs!r}")
        if not isinstance(self.feature_reuse, bool):
            raise ConfigError(f"feature_reuse must be true or false, got {self.feature_reuse!r}")
        check_choice("backend", self.backend, BACKENDS)
        if not isinstance(self.dark_weights, str) or not self.dark_weights:
            raise ConfigError(f"dark_weights must be auto, none or a file path, got {self.dark_weights!r}")

    @classmethod
    def from_settings(cls, settings: Any) -> EngineConfig:
        """The engine part of settings that have its fields by name (node, bag reconstruct); ``weights`` "": default."""
        values = {name: getattr(settings, name) for name in ENGINE_FIELDS}
        return cls(**{**values, "weights": values["weights"] or None})


def add_dark_weights_argument(parser: Any) -> None:
    """``--dark-weights`` of the offline commands (the node's ``dark_weights``)."""
    parser.add_argument("--dark-weights", default=DARK_WEIGHTS, metavar="auto|none|PATH",
                        help="stir: the network for windows that hold dark-current spikes (the node's dark_weights; "
                             "default auto: the shipped dark-robust weights with the shipped weights)")


#: The settings that make up the engine, by the node parameters' names: a change of one builds a new engine.
ENGINE_FIELDS = tuple(f.name for f in fields(EngineConfig))


class ReconstructionEngine:
    """Turns batches of spike windows into intensity images.

    Thread-safety: up to :attr:`streams` threads at a time may call :meth:`reconstruct` (one,
    unless OpenVINO runs several windows at once; the node's worker keeps to it), one at a time
    :meth:`warmup`; :meth:`pop_warnings` may be called from any thread.
    """

    def __init__(self, config: EngineConfig, checkpoint: tuple[Any, Any] | None = None, streams: int = 1) -> None:
        """Resolve the device and, for ``stir``, load the weights.

        ``checkpoint``: the ``(model, metadata)`` that :func:`stir_ros.models.load_checkpoint` already
        read from ``config.weights`` (on the CPU), so that the file is read once; ``None``: read here.
        ``streams``: windows that may be reconstructed at once by as many threads (the node's
        ``inference_streams``; 0: auto, :func:`~stir_ros.core.inference_path.resolve_streams`); only
        the OpenVINO backend computes more than one at once (:attr:`streams` says what applies).

        Raises:
            CheckpointError: The weights are missing, corrupt or for another window length.
            BackendUnavailableError: ``backend`` names a runtime that is not installed.
            ConfigError: ``stir`` on a machine without PyTorch (the message says how to install it).
        """
        #: The method's entry in :data:`stir_ros.core.methods.METHOD_TABLE`.
        self.spec = spec = method_spec(config.method)
        if spec.needs_weights and import_torch() is None:
            raise torch_required(f"method {spec.name!r}", f"methods {' and '.join(torch_free_methods())} run without it")
        self.config = config
        self.method = config.method
        self.alpha = float(config.alpha)
        self.batch_size = config.max_batch
        self.oom_fallbacks = 0
        self.warnings: deque[str] = deque(maxlen=100)  # everything noted since start
        self._unread: deque[str] = deque(maxlen=100)
        self._lock = threading.Lock()
        self._warmed: set[tuple[int, int]] = set()
        self.model: torch.nn.Module | None = None  # the checkpoint's fp32 network, as loaded
        self._predictor: Any = None  # its inference-prepared copy for (device, precision)
        self._stream: Any = None  # StreamingSTIR over the predictor (feature_reuse)
        self.weights_path: Path | None = None
        self.metadata: Any = None
        #: STIR: the second network for windows with dark-current spikes (None: off).
        self.dark: Any = None

        requested = config.device
        if requested == "auto":
            requested = spec.auto_device
        self.device, warning = resolve_device(requested)
        if warning:
            self._warn(warning)
        #: The resolved backend and precision of ``auto`` and why (stir; None for tfp/tfi).
        self.inference_path: InferencePath | None = None
        self.precision, self.backend = config.precision, config.backend
        if spec.needs_weights:
            self.inference_path = resolve_inference_path(
                self.device.type, config.backend, config.precision,
                torch_only=config.torch_compile != "none" or config.feature_reuse,
                bf16_loss_db=None if config.weights else SHIPPED_BF16_LOSS_DB,
            )  # fmt: skip
            self.backend, self.precision = self.inference_path.backend, self.inference_path.precision
        else:
            self.backend, self.precision = "torch", "fp32" if config.precision == "auto" else config.precision
        if isinstance(self.device, NumpyCPU):
            self.backend = "numpy"  # tfp/tfi without PyTorch
        if self.backend == "openvino" and self.device.type != "cpu":
            import torch

            self._warn(f"backend openvino runs on the CPU; device {config.device!r} ignored")
            self.device = torch.device("cpu")
        #: Windows that up to as many threads may reconstruct at once, and why (1 unless OpenVINO).
        self.streams, self.streams_reason = resolve_streams(streams, self.backend, self.device.type)
        if spec.needs_weights:
            if self.precision == "fp16" and self.device.type == "cpu":
                self._warn("fp16 is not supported on the CPU; using fp32")
                self.precision = "fp32"
            self._load_model(checkpoint)
            if self.backend == "openvino":  # compiled now: raises BackendUnavailableError here
                assert self.model is not None
                self._predictor = self.prepare(self.model)
        else:
            self.window_length = config.window_length or spec.default_window_length
        #: Whether :meth:`reconstruct` uses the windows' start indices (STIR on torch with feature_reuse).
        self.feature_reuse = bool(config.feature_reuse) and spec.feature_reuse and self.backend == "torch"
        if config.feature_reuse and not self.feature_reuse:
            self._warn(f"feature_reuse applies to stir on the torch backend; off for {self.method} on {self.backend}")
        elif self.feature_reuse and (config.torch_compile != "none" or config.cuda_graphs):
            self._warn("feature_reuse runs the eager network: torch_compile and cuda_graphs are not used")
        if spec.needs_weights:
            from stir_ros.models.dark_routing import dark_routing

            self.dark = dark_routing(self, self._warn)

    # ------------------------------------------------------------------ set-up

    def _load_model(self, checkpoint: tuple[Any, Any] | None) -> None:
        if self.config.weights:
            path = Path(self.config.weights).expanduser()
            if not path.is_file():
                raise CheckpointError(f"STIR weights file '{path}' does not exist")
        else:
            path = default_weights_path()
            if not path.is_file():
                raise CheckpointError(
                    f"the default STIR weights '{path}' are not installed; pass weights:=PATH to a "
                    "checkpoint (stir-ros train writes one) or use method tfp or tfi"
                )
        if checkpoint is None:
            from stir_ros.models import load_checkpoint  # torch model code only when STIR is used

            checkpoint = load_checkpoint(path, device=self.device, expected_window_length=self.config.window_length or None)
        model, meta = checkpoint
        self.model = model.to(self.device).eval()
        self.metadata = meta
        self.weights_path = path
        self.window_length = int(meta.window_length)

    def _warn(self, message: str) -> None:
        with self._lock:
            self.warnings.append(message)
            self._unread.append(message)

    def pop_warnings(self) -> list[str]:
        """Warnings recorded since the last call (device/precision fallbacks, OOM)."""
        with self._lock:
            out = list(self._unread)
            self._unread.clear()
        return out

    @property
    def device_name(self) -> str:
        """The device in use, e.g. ``cpu`` or ``cuda:0 (NVIDIA H100)``."""
        if self.device.type == "cuda":
            import torch

            index = self.device.index if self.device.index is not None else torch.cuda.current_device()
            return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
        return "cpu"

    def warmup(self, height: int, width: int) -> None:
        """Run the model once at this size so that the first real output is not slow.

        Lazy initialisation (CUDA context, cuDNN autotuning, allocator growth, an OpenVINO compile)
        happens here, for STIR's dark-robust network too (:attr:`dark`).
        """
        if (height, width) in self._warmed:
            return
        sizes = [1]
        if self.device.type == "cuda" and self.batch_size > 1:
            sizes.append(self.batch_size)
        for b in sizes:
            zeros = np.zeros((b, self.window_length, height, width), np.uint8)
            self.reconstruct(zeros)
            if self.dark is not None:
                self.dark.warmup(zeros, self.device)
        self._warmed.add((height, width))

    # ------------------------------------------------------------------ inference

    def reconstruct(self, windows: np.ndarray | torch.Tensor, starts: Sequence[int] | None = None) -> np.ndarray:
        """Reconstruct the centre frame of every window.

        Args:
            windows: ``[B, T, H, W]`` (or one window ``[T, H, W]``) of 0/1 spikes, uint8, bool or
                float, numpy (any view: flipped, strided, either byte order) or torch; T must be
                :attr:`window_length`.
            starts: Each window's first frame index in its stream. With :attr:`feature_reuse`,
                the features of blocks shared with earlier windows are reused; ignored otherwise.

        Returns:
            float32 numpy ``[B, H, W]`` scene intensity in [0, 1].

        Raises:
            SpikeFormatError: For a wrong shape, no pixels, or values that are not spikes (not
                numbers, or anything but 0 and 1: NaN, infinite, 2, 255, 0.5, -1).
        """
        check_spike_values(windows)
        if windows.ndim == 3:
            windows = windows[None]
            starts = None if starts is None else list(starts)[:1]
        if windows.ndim != 4:
            raise SpikeFormatError(f"windows must be [B, T, H, W], got shape {tuple(windows.shape)}")
        if windows.shape[1] != self.window_length:
            raise SpikeFormatError(
                f"windows have {windows.shape[1]} frames, the {self.method} engine expects {self.window_length}"
            )
        n = windows.shape[0]
        if n == 0:
            return np.zeros((0, *windows.shape[2:]), np.float32)
        if not self.spec.needs_weights and self.device.type == "cpu":
            return self._classical_numpy(windows)
        import torch  # stir, or tfp/tfi on CUDA: torch is there (the device came from it)

        out: list[np.ndarray] = []
        start = 0
        while start < n:
            stop = min(n, start + self.batch_size)
            try:
                chunk = windows[start:stop]
                out.append(self._run_torch(chunk) if starts is None else self._run_torch(chunk, starts[start:stop]))
                start = stop
            except torch.cuda.OutOfMemoryError:
                self._on_oom()
        return np.concatenate(out, axis=0)

    def _classical_numpy(self, windows: np.ndarray | torch.Tensor) -> np.ndarray:
        if is_tensor(windows):
            windows = windows.detach().cpu().numpy()
        fn = self.spec.estimate
        assert fn is not None  # a classical method
        out = np.empty((windows.shape[0], *windows.shape[2:]), np.float32)
        for start in range(0, windows.shape[0], self.batch_size):
            chunk = windows[start : start + self.batch_size]
            est = fn(chunk, alpha=self.alpha)
            np.clip(np.nan_to_num(est, nan=0.0, posinf=1.0), 0.0, 1.0, out=out[start : start + len(chunk)])
        return out

    def _run_torch(self, chunk: np.ndarray | torch.Tensor, starts: Sequence[int] | None = None) -> np.ndarray:
        import torch

        if isinstance(chunk, np.ndarray) and (min(chunk.strides, default=0) < 0 or not chunk.dtype.isnative):
            chunk = np.ascontiguousarray(chunk, chunk.dtype.newbyteorder("="))  # torch shares neither (e.g. [..., ::-1])
        x = torch.as_tensor(chunk)
        x = x.to(self.device, non_blocking=True)
        with torch.inference_mode():
            if self.spec.estimate is not None:
                raw = self.spec.estimate(x, alpha=self.alpha)
            elif self.feature_reuse and starts is not None:
                raw = self._streaming().reconstruct_stream(x, starts)[:, 0] / self.alpha
            elif self.dark is not None:
                raw = self.dark.run(chunk, x, self._stir_predictor())[:, 0] / self.alpha
            else:
                raw = self._stir_predictor()(x)[:, 0] / self.alpha
            img = torch.nan_to_num(raw.float(), nan=0.0, posinf=1.0).clamp_(0.0, 1.0)
        return img.cpu().numpy()

    def _stir_predictor(self) -> Any:
        """The network prepared for the current device and precision (built on first use).

        Batch norms folded, channels-last layout, weights cast to fp16/bf16 with the warp kept in
        fp32 (:mod:`stir_ros.models.inference`): exact within ~1e-6 in fp32, and on a CPU with
        bf16 instructions about twice as fast as the plain model (BENCHMARKS.md).
        """
        if self._predictor is None or self._predictor.device.type != self.device.type:
            assert self.model is not None
            self._predictor = self.prepare(self.model)
        return self._predictor

    def prepare(self, model: torch.nn.Module) -> Any:
        """``model`` made ready for this engine's backend, device and precision (its warnings noted)."""
        if self.backend == "openvino":
            from stir_ros.models.runtime import OpenVinoSTIR

            return OpenVinoSTIR(model, precision=self.precision, streams=self.streams)
        from stir_ros.models.inference import prepare_for_inference

        predictor = prepare_for_inference(
            model, device=self.device, precision=self.precision,
            compile=False if self.config.torch_compile == "none" else self.config.torch_compile,
            cuda_graphs=self.config.cuda_graphs,
        )  # fmt: skip
        for message in predictor.warnings:
            self._warn(message)
        return predictor

    def _streaming(self) -> Any:
        """:class:`StreamingSTIR` over the current predictor (made again when the predictor is)."""
        predictor = self._stir_predictor()
        if self._stream is None or self._stream.predictor is not predictor:
            from stir_ros.models.streaming import StreamingSTIR

            self._stream = StreamingSTIR(predictor)
        return self._stream

    def _on_oom(self) -> None:
        import torch

        self.oom_fallbacks += 1
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        if self.batch_size > 1:
            self.batch_size = max(1, self.batch_size // 2)
            self._warn(f"CUDA out of memory; batch size reduced to {self.batch_size}")
            return
        if self.device.type != "cuda":  # pragma: no cover - the CPU raises MemoryError instead
            raise MemoryError("out of memory on the CPU")
        self._warn("CUDA out of memory at batch size 1; moving the model to the CPU")
        self.device = torch.device("cpu")
        for model in (self.model, self.dark and self.dark.model):
            if model is not None:
                model.to(self.device)
        self._predictor = self._stream = None
        if self.dark is not None:
            self.dark.predictor = None  # prepared again for the CPU at the next call
        if self.precision == "fp16":
            self.precision = "fp32"
        self._warmed.clear()
