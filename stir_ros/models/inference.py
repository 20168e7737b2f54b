# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Fast STIR inference: one call turns a trained model into a prepared, callable predictor.

``prepare_for_inference(model, device=...)`` copies the model, folds its batch norms into the
preceding convolutions, casts the weights to the requested precision, switches to channels-last
memory where that pays, optionally compiles it with ``torch.compile`` and, on CUDA, replays
fixed-shape calls from captured CUDA graphs. The result is an :class:`InferenceModel`:
``raw = predictor(spikes)`` with spikes ``[B, T, H, W]`` (uint8, bool or float, any device) and
``raw`` float32 ``[B, 1, H, W]`` on the predictor's device, the same raw output as
``STIR.forward`` in eval mode (not clamped, not divided by alpha).

What each option does to the numbers:

- fp32: the same function as the plain model. Folding batch norm changes the rounding only
  (about 1e-6); channels-last picks other convolution kernels (about 1e-6). On CUDA, PyTorch's
  default lets cuDNN use TF32 for fp32 convolutions, for the plain model as much as for this one.
- fp16 / bf16: weights and activations in half precision; the warp's sampling positions and
  ``grid_sample`` stay in float32 (the model does that itself). fp16 needs a GPU (the CPU has no
  fast fp16 convolutions); bf16 runs on CPUs with AVX512-BF16/AMX through oneDNN and on GPUs.
- CUDA graphs: one graph per (batch, height, width, input dtype), captured on first use (or by
  :meth:`InferenceModel.warmup`) from a static input buffer and replayed; when capture fails the
  predictor says why in :attr:`InferenceModel.warnings` and runs eagerly from then on.

See ``bench/README.md`` and ``BENCHMARKS.md`` for what each option is worth where.
"""

from __future__ import annotations

import contextlib
import copy
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from stir_ros.core.defaults import PRECISIONS
from stir_ros.core.errors import ConfigError, SpikeFormatError
from stir_ros.models.blocks import BackwardWarp, ConvBNResidual, pad_tail

__all__ = [
    "PRECISIONS",
    "COMPILE_MODES",
    "InferenceModel",
    "fold_batch_norms",
    "prepare_for_inference",
]

Precision = Literal["fp32", "fp16", "bf16"]
CompileMode = Literal[False, "default", "reduce-overhead", "max-autotune"]

COMPILE_MODES: tuple[Any, ...] = (False, "default", "reduce-overhead", "max-autotune")
_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
#: Captured graphs kept per predictor (each holds its input, output and activations).
_MAX_GRAPHS = 8


def fold_batch_norms(model: nn.Module) -> int:
    """Fold every eval-mode batch norm of ``model`` into the convolution before it, in place.

    ``bn(conv(x))`` becomes one convolution with rescaled weights and bias; the batch norm is
    replaced by ``nn.Identity``. Only valid for inference (the running statistics are frozen).

    Returns:
        How many batch norms were folded.
    """
    folded = 0
    for module in model.modules():
        if isinstance(module, ConvBNResidual):
            for conv_name, bn_name in (("conv1", "bn1"), ("conv2", "bn2")):
                bn = getattr(module, bn_name)
                if isinstance(bn, nn.BatchNorm2d):
                    conv = getattr(module, conv_name)
                    setattr(module, conv_name, fuse_conv_bn_eval(conv.eval(), bn.eval()))
                    setattr(module, bn_name, nn.Identity())
                    folded += 1
    return folded


class InferenceModel:
    """A prepared STIR predictor; build it with :func:`prepare_for_inference`.

    Attributes:
        module: The prepared eager module (copied from the caller's model).
        device: Where the model runs and the outputs are returned.
        precision: ``fp32``, ``fp16`` or ``bf16``.
        dtype: The weights' dtype.
        channels_last: Whether weights and activations use the channels-last layout.
        compile: The ``torch.compile`` mode, or ``False``.
        cuda_graphs: Whether fixed-shape calls are replayed from CUDA graphs.
        window_length: Frames T each window must have.
        warnings: What was changed or given up on the way (graph capture failures, ignored
            options), for diagnostics.

    Thread-safety: one thread at a time may call the predictor.
    """

    def __init__(
        self,
        module: nn.Module,
        *,
        device: torch.device,
        precision: str,
        channels_last: bool,
        compile: CompileMode,
        cuda_graphs: bool,
        warnings: list[str],
    ) -> None:
        self.module = module
        self.device = device
        self.precision = precision
        self.dtype = _DTYPES[precision]
        self.channels_last = channels_last
        self.compile = compile
        self.cuda_graphs = cuda_graphs
        self.window_length = int(getattr(module, "window_length", 0))
        self._size_multiple = int(getattr(module, "size_multiple", 1))
        self.warnings = warnings
        self._forward: Callable[[Tensor], Tensor] = module
        if compile:
            self._forward = _compile(module, compile, device)
        self._graphs: OrderedDict[tuple[Any, ...], _CapturedGraph | None] = OrderedDict()
        self._graph_pool: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"InferenceModel(window_length={self.window_length}, device={self.device}, "
            f"precision={self.precision!r}, channels_last={self.channels_last}, compile={self.compile!r}, "
            f"cuda_graphs={self.cuda_graphs})"
        )

    def __call__(self, spikes: Tensor | np.ndarray) -> Tensor:
        """Reconstruct the centre frame of every window.

        Args:
            spikes: ``[B, T, H, W]`` binary frames, uint8, bool or float, numpy or torch, any
                device; T must be :attr:`window_length`. Any H and W (padded internally).

        Returns:
            float32 ``[B, 1, H, W]`` raw images on :attr:`device`.

        Raises:
            SpikeFormatError: For a wrong shape.
        """
        x = torch.as_tensor(spikes)
        if x.dim() != 4 or (self.window_length and x.shape[1] != self.window_length):
            raise SpikeFormatError(
                f"the prepared STIR expects spikes [B, {self.window_length}, H, W], got {tuple(x.shape)}"
            )
        if x.dtype == torch.bool:
            x = x.view(torch.uint8)  # same bytes; keeps one graph per shape for bool and uint8
        x = x.to(self.device, non_blocking=True)
        if self.cuda_graphs:
            graph = self._graph_for(x)
            if graph is not None:
                return graph.run(x)
        with torch.inference_mode():
            return self._run(x)

    def warmup(self, batch: int, height: int, width: int, dtype: torch.dtype = torch.uint8) -> None:
        """Run once at this input size so that compilation and graph capture happen now.

        Call it with every batch size that will be used: each one is its own graph (and, with
        ``compile``, possibly its own compiled kernels).
        """
        x = torch.zeros(batch, self.window_length, height, width, dtype=dtype, device=self.device)
        self(x)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    # ------------------------------------------------------------------ internals

    def _run(self, x: Tensor) -> Tensor:
        """Input on the device (any dtype) -> float32 raw output. Everything a graph captures."""
        h, w = x.shape[-2], x.shape[-1]
        # Pad and lay out while the frames are still bytes (a quarter of the float traffic);
        # the model's own padding is then a no-op.
        x, _, _ = pad_tail(x, self._size_multiple)
        # One copy: cast and, with channels-last, frames innermost like the first conv's output.
        layout = torch.channels_last if self.channels_last else torch.contiguous_format
        raw = self._forward(x.to(dtype=self.dtype, memory_format=layout))[..., :h, :w].float()
        if self.compile in ("reduce-overhead", "max-autotune") and self.device.type == "cuda":
            # torch.compile's own CUDA graphs overwrite their outputs at the next replay.
            return raw.clone()
        return raw.contiguous()

    def _graph_for(self, x: Tensor) -> _CapturedGraph | None:
        key = (tuple(x.shape), x.dtype)
        with self._lock:
            if key in self._graphs:
                self._graphs.move_to_end(key)
                return self._graphs[key]
            if self._graph_pool is None:
                # One memory pool for all shapes: graphs replay in any order, so one replay may
                # overwrite another graph's intermediates or output; harmless because every
                # replay recomputes from its own input and the output is copied at once.
                self._graph_pool = torch.cuda.graph_pool_handle()
            try:
                graph: _CapturedGraph | None = _CapturedGraph(self._run, x, self._graph_pool)
                # The graph reads the warp's cached identity grids at fixed addresses: keep them
                # alive even if the warp's own small cache later drops them.
                graph.keep_alive = [
                    g for m in self.module.modules() if isinstance(m, BackwardWarp) for g in m._grids.values()
                ]
            except Exception as err:  # noqa: BLE001 - any capture failure falls back to eager
                with contextlib.suppress(RuntimeError):  # the failed capture may report again here
                    torch.cuda.synchronize(self.device)
                self.warnings.append(
                    f"CUDA graph capture failed for input {tuple(x.shape)} {x.dtype} "
                    f"({type(err).__name__}: {err}); running eagerly"
                )
                graph = None
            self._graphs[key] = graph
            while len(self._graphs) > _MAX_GRAPHS:
                self._graphs.popitem(last=False)
            return graph


class _CapturedGraph:
    """One CUDA graph of ``fn`` for a fixed input shape and dtype, replayed from a static buffer."""

    def __init__(self, fn: Callable[[Tensor], Tensor], example: Tensor, pool: Any) -> None:
        self.keep_alive: list[Tensor] = []
        self.static_input = torch.zeros_like(example)
        self.static_input.copy_(example)
        # Warm up on a side stream (lazy cuDNN/cuBLAS initialisation, the warp's cached grids,
        # compiled kernels) so that nothing allocates or synchronises during capture.
        stream = torch.cuda.Stream(device=example.device)
        stream.wait_stream(torch.cuda.current_stream(example.device))
        with torch.cuda.stream(stream), torch.inference_mode():
            for _ in range(2):
                fn(self.static_input)
        torch.cuda.current_stream(example.device).wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.inference_mode(), torch.cuda.graph(self.graph, pool=pool):
            self.static_output = fn(self.static_input)

    def run(self, x: Tensor) -> Tensor:
        self.static_input.copy_(x, non_blocking=True)
        self.graph.replay()
        # The static output is overwritten by the next replay: hand out a copy.
        return self.static_output.clone()


def _compile(module: nn.Module, mode: CompileMode, device: torch.device) -> Callable[[Tensor], Tensor]:
    """``torch.compile`` with the settings that suit inference on this device.

    On the CPU, inductor's freezing turns the weights into constants so that the convolutions
    use prepacked oneDNN weights and fused post-operations; CUDA-graph modes do not apply there.
    """
    if device.type == "cpu":
        options = {"freezing": True, "max_autotune": mode == "max-autotune"}
        return torch.compile(module, options=options, dynamic=False)  # type: ignore[return-value]
    return torch.compile(module, mode=None if mode == "default" else mode, dynamic=False)  # type: ignore[return-value]


def prepare_for_inference(
    model: nn.Module,
    *,
    device: str | torch.device,
    precision: Precision | str = "fp32",
    channels_last: bool | None = None,
    fold_batchnorm: bool = True,
    compile: CompileMode | str = False,
    cuda_graphs: bool = False,
) -> InferenceModel:
    """Copy ``model`` and prepare the copy for fast inference on ``device``.

    Args:
        model: A STIR network (its weights are copied; the caller's model is left as it is).
        device: Where to run, e.g. ``"cpu"``, ``"cuda"``, ``"cuda:1"``.
        precision: ``fp32`` (exact), ``fp16`` (CUDA only) or ``bf16``: the weights are cast.
        channels_last: Channels-last layout for weights and activations; ``None`` chooses it
            where it was measured to pay (see ``BENCHMARKS.md``): always, at present.
        fold_batchnorm: Fold batch norms into the preceding convolutions.
        compile: ``False`` or a ``torch.compile`` mode: ``"default"``, ``"reduce-overhead"``,
            ``"max-autotune"`` (the last two include CUDA graphs on CUDA). Compilation happens at
            the first call (or :meth:`InferenceModel.warmup`) and takes minutes on a small CPU.
        cuda_graphs: Capture one CUDA graph per input shape and replay it (CUDA only; ignored
            with a compile mode that already uses CUDA graphs).

    Returns:
        The prepared predictor.

    Raises:
        ConfigError: For an unknown precision or compile mode, fp16 on the CPU, or a CUDA
            device without CUDA.
    """
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device} requested but CUDA is not available")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    if precision not in PRECISIONS or precision == "auto":  # the engine resolves auto
        raise ConfigError(f"precision must be fp32, fp16 or bf16, got {precision!r}")
    if compile is True:
        compile = "default"
    if compile not in COMPILE_MODES:
        raise ConfigError(f"compile must be False or one of default, reduce-overhead, max-autotune, got {compile!r}")
    if precision == "fp16" and device.type == "cpu":
        raise ConfigError(
            "precision fp16 needs a CUDA device (the CPU has no fast fp16 convolutions); use bf16 or fp32"
        )
    warnings: list[str] = []
    if cuda_graphs and device.type != "cuda":
        warnings.append(f"cuda_graphs ignored on {device.type}")
        cuda_graphs = False
    if cuda_graphs and compile in ("reduce-overhead", "max-autotune"):
        warnings.append(f"cuda_graphs left to torch.compile mode {compile!r}, which captures graphs itself")
        cuda_graphs = False
    if channels_last is None:
        channels_last = True

    module = copy.deepcopy(model).eval()
    for p in module.parameters():
        p.requires_grad_(False)
    if fold_batchnorm:
        fold_batch_norms(module)
    module.to(device=device, dtype=_DTYPES[precision])
    if channels_last:
        module.to(memory_format=torch.channels_last)
    return InferenceModel(
        module,
        device=device,
        precision=str(precision),
        channels_last=bool(channels_last),
        compile=compile,  # type: ignore[arg-type]
        cuda_graphs=cuda_graphs,
        warnings=warnings,
    )
