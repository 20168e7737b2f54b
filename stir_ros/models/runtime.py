# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""STIR on the CPU through OpenVINO: the engine's ``backend: openvino``.

The network is exported to ONNX in memory (:func:`stir_ros.models.export.export_onnx`, dynamic
height and width), read by OpenVINO and compiled for the CPU once per input shape (static shapes:
OpenVINO's CPU plugin fuses more with them). ``precision`` ``fp32`` runs OpenVINO in f32 (within
a few 1e-6 of PyTorch fp32); ``bf16`` sets OpenVINO's bf16 inference-precision hint, which casts
the graph to bf16 except the warp and the output: OpenVINO samples (``GridSample``) in f32 by
itself, and the ops that compute the sampling positions from the flow, and the last convolution
with what follows it, are marked to stay in f32 (:func:`keep_sensitive_ops_f32`). Its accuracy on
the validation clips is in BENCHMARKS.md ("CPU deployment" and issue 29).

OpenVINO was chosen by measurement (BENCHMARKS.md): ONNX Runtime 1.31.1 on the same CPU ran the
same file 1.6x slower in fp32 and has no bf16 CPU path.

The predictor has :class:`stir_ros.models.inference.InferenceModel`'s calling convention:
``raw = predictor(spikes)``, spikes ``[B, T, H, W]`` (uint8, bool or float; numpy or torch), any
H and W (padded to multiples of 16 by repeating the last rows/columns, cropped back), float32
torch ``[B, 1, H, W]`` raw output on the CPU.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from stir_ros.core.defaults import BACKENDS
from stir_ros.core.errors import BackendUnavailableError, ConfigError, SpikeFormatError
from stir_ros.models.blocks import pad_tail

__all__ = ["BACKENDS", "OPENVINO_PRECISIONS", "OpenVinoSTIR", "keep_sensitive_ops_f32", "require_openvino"]

#: Op types where a walk up the graph from a warp's sampling grid or from the output stops: the
#: network's convolutions stay in the inference precision (but the output's last one).
_WALK_STOPS = frozenset({"Convolution", "ConvolutionBackpropData", "GroupConvolution"})
#: rt_info that keeps an op out of reduced precision: OpenVINO's "precise" attribute (the legacy
#: DisableFP16Compression, which its CPU plugin also honours for bf16), as the Python API spells it.
_KEEP_PRECISE = "precise_0"

#: Engine precision -> OpenVINO ``INFERENCE_PRECISION_HINT``.
OPENVINO_PRECISIONS = {"fp32": "f32", "bf16": "bf16"}
_MAX_SHAPES = 4


def require_openvino() -> Any:
    """Import OpenVINO, or say clearly that it is missing.

    Raises:
        BackendUnavailableError: The ``openvino`` package is not installed (or fails to load).
    """
    try:
        import openvino
    except ImportError as err:
        raise BackendUnavailableError(
            f"backend 'openvino' needs the Python package openvino, which is not installed ({err}); "
            "install it with ./scripts/setup.sh (requirements/deploy.txt pins it) or use backend 'torch'"
        ) from err
    return openvino


def _ops_above(starts: list[Any], include_stop: bool) -> dict[str, Any]:
    """The ops that ``starts`` are computed from, by friendly name.

    The walk goes up to the first convolution on each path (into it with ``include_stop``) and not
    past a ``ShapeOf``.
    """
    found: dict[str, Any] = {}
    todo = list(starts)
    while todo:
        node = todo.pop()
        name = node.get_friendly_name()
        if name in found or node.get_type_name() in ("Parameter", "Constant", "ShapeOf"):
            continue  # ShapeOf: a size, not values (nor what its input was computed from)
        if node.get_type_name() in _WALK_STOPS:
            if include_stop:
                found[name] = node
            continue
        found[name] = node
        todo.extend(value.get_node() for value in node.input_values())
    return found


def _warp_grid_ops(model: Any) -> list[Any]:
    """The ops that compute the sampling grid of each ``GridSample``, up to the flow's convolution."""
    grids = [op.input_value(1).get_node() for op in model.get_ops() if op.get_type_name() == "GridSample"]
    return list(_ops_above(grids, include_stop=False).values())


def _output_head_ops(model: Any) -> list[Any]:
    """The network's last convolution and the ops after it, up to the output."""
    return list(_ops_above([result.input_value(0).get_node() for result in model.get_results()], True).values())


def keep_sensitive_ops_f32(core: Any, model: Any) -> Any:
    """``model`` with the warps' sampling grids and the output head kept in f32 under a bf16 hint.

    - A grid coordinate is the identity position (-1 to 1) plus the flow; in bf16 it is good to
      1/128 near 1.0, a pixel or more on wide frames. The ops from the flow's convolution to each
      ``GridSample`` stay in f32 (OpenVINO samples in f32 by itself).
    - The image itself: in bf16 an intensity near 1 is good to 1/256, noise that costs several
      hundredths of a dB on clips reconstructed at 40 dB. The last convolution and what follows it
      stay in f32.

    Those ops get OpenVINO's "precise" rt_info. Python sets it as a plain entry, which only the IR
    writer turns into the attribute the CPU plugin reads, so the model makes one round trip through
    IR in memory. Without it OpenVINO bf16 lost up to 0.11 dB on the simulated validation clips, with
    it at most 0.009, at about 1 % of the speed (BENCHMARKS.md, issue 29).
    """
    import tempfile

    import openvino as ov

    ops = _warp_grid_ops(model) + _output_head_ops(model)
    if not ops:
        return model
    for op in ops:
        op.get_rt_info()[_KEEP_PRECISE] = ""
    with tempfile.TemporaryDirectory(prefix="stir_ros_openvino_") as folder:
        xml, weights = os.path.join(folder, "model.xml"), os.path.join(folder, "model.bin")
        ov.serialize(model, xml, weights)
        with open(xml, encoding="utf-8") as f:
            text = f.read()
        blob = np.fromfile(weights, np.uint8)
    return core.read_model(text, ov.Tensor(blob))


class _Requests:
    """A compiled model's infer requests: one per concurrent caller, at most ``limit``, made when first needed."""

    def __init__(self, compiled: Any, limit: int) -> None:
        self.compiled, self.limit = compiled, limit
        self._idle: list[Any] = []
        self._made = 0
        self._free = threading.Condition()

    def take(self) -> Any:
        """An idle request (made if fewer than ``limit`` exist; else wait for one)."""
        with self._free:
            while not self._idle and self._made >= self.limit:
                self._free.wait()
            if self._idle:
                return self._idle.pop()
            self._made += 1
        return self.compiled.create_infer_request()

    def give_back(self, request: Any) -> None:
        with self._free:
            self._idle.append(request)
            self._free.notify()


class OpenVinoSTIR:
    """A STIR network compiled by OpenVINO for the CPU.

    Args:
        model: The STIR network (fp32; exported, not changed).
        precision: ``fp32`` or ``bf16``.
        threads: CPU threads per inference; ``None``: ``torch.get_num_threads()`` (one setting
            for both backends).
        keep_sensitive_f32: In bf16, keep the warps' sampling grids and the output head in f32
            (:func:`keep_sensitive_ops_f32`); ``False`` only to measure what that costs and gains
            (``bench/bench_deploy.py``).
        streams: Windows computed at once, each by ``threads / streams`` of the threads (OpenVINO's
            streams): as many threads may call the predictor concurrently. One stream splits every
            layer across all threads (lowest time per window); two keep two windows in flight, each
            on its own threads, which sustains more windows per second where other processes take
            part of the cores (BENCHMARKS.md, issue 29) but takes about twice as long per window.

    Thread-safety: up to ``streams`` threads may call the predictor at once (more wait their turn).
    """

    def __init__(self, model: nn.Module, precision: str = "fp32", threads: int | None = None,
                 keep_sensitive_f32: bool = True, streams: int = 1) -> None:  # fmt: skip
        ov = require_openvino()
        if precision not in OPENVINO_PRECISIONS:
            raise ConfigError(
                f"backend openvino supports precision {', '.join(OPENVINO_PRECISIONS)}, got {precision!r}"
            )
        from stir_ros.models.export import export_onnx

        self.device = torch.device("cpu")
        self.precision = precision
        self.window_length = int(model.window_length)
        self.channels_last = False
        self.warnings: list[str] = []
        if isinstance(streams, bool) or not isinstance(streams, int) or streams < 1:
            raise ConfigError(f"OpenVINO streams must be a positive integer, got {streams!r}")
        self.streams = streams
        self.threads = max(int(threads or torch.get_num_threads()), streams)  # at least one thread per stream
        self._size_multiple = int(getattr(model, "size_multiple", 16))
        data = export_onnx(model, None, height=64, width=64, dynamic=True)
        self._core = ov.Core()
        self._model = self._read(data)
        if precision == "bf16" and keep_sensitive_f32:
            self._model = keep_sensitive_ops_f32(self._core, self._model)
        # The same network taking the spikes as bytes: OpenVINO converts them inside, a quarter of
        # the input traffic of float32 (median 330 vs 391 ms at 250x400, 1 thread; identical output).
        from openvino.preprocess import PrePostProcessor

        ppp = PrePostProcessor(self._model.clone())
        ppp.input(0).tensor().set_element_type(ov.Type.u8)
        self._model_u8 = ppp.build()
        #: Per input shape: the compiled model and its idle infer requests (at most ``streams`` made).
        self._compiled: OrderedDict[tuple[Any, ...], _Requests] = OrderedDict()
        self._lock = threading.Lock()

    def _read(self, data: bytes) -> Any:
        import tempfile

        # read_model takes a file for ONNX; the file is gone once the model is in memory.
        fd, name = tempfile.mkstemp(suffix=".onnx", prefix="stir_ros_openvino_")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            return self._core.read_model(name)
        finally:
            os.remove(name)

    @property
    def config(self) -> dict[str, Any]:
        """The OpenVINO CPU plugin settings used to compile."""
        return {
            "INFERENCE_PRECISION_HINT": OPENVINO_PRECISIONS[self.precision],
            "INFERENCE_NUM_THREADS": self.threads,
            "NUM_STREAMS": self.streams,
            "PERFORMANCE_HINT": "LATENCY" if self.streams == 1 else "THROUGHPUT",
            # Not pinned: on a robot (or this shared machine) other processes take cores too, and a
            # pinned thread cannot move to the idle one (median 300 vs 333 ms, loaded 2-core CPU).
            "ENABLE_CPU_PINNING": False,
        }

    def _requests_for(self, shape: tuple[int, ...], u8: bool) -> _Requests:
        key = (*shape, u8)
        with self._lock:
            if key in self._compiled:
                self._compiled.move_to_end(key)
                return self._compiled[key]
            model = (self._model_u8 if u8 else self._model).clone()
            model.reshape({0: list(shape)})
            requests = _Requests(self._core.compile_model(model, "CPU", self.config), self.streams)
            self._compiled[key] = requests
            while len(self._compiled) > _MAX_SHAPES:
                self._compiled.popitem(last=False)  # a call still holding its requests finishes with them
            return requests

    def __call__(self, spikes: Tensor | np.ndarray) -> Tensor:
        """Raw output float32 ``[B, 1, H, W]`` (torch, CPU) of spikes ``[B, T, H, W]``."""
        x = torch.as_tensor(spikes)
        if x.dim() != 4 or x.shape[1] != self.window_length:
            raise SpikeFormatError(
                f"the OpenVINO STIR expects spikes [B, {self.window_length}, H, W], got {tuple(x.shape)}"
            )
        if x.dtype == torch.bool:
            x = x.view(torch.uint8)
        h, w = x.shape[-2], x.shape[-1]
        x, _, _ = pad_tail(x.cpu(), self._size_multiple)  # pad while still bytes
        u8 = x.dtype == torch.uint8
        arr = np.ascontiguousarray(x.numpy(), dtype=np.uint8 if u8 else np.float32)
        # One window per inference: one compiled model per frame size whatever the batch (a batch
        # size seen first would otherwise compile for seconds mid-stream), and on a CPU a batch
        # computes no faster per window than single windows do.
        requests = self._requests_for((1, *arr.shape[1:]), u8)
        out = np.empty((arr.shape[0], 1, h, w), np.float32)
        request = requests.take()
        try:
            for i in range(arr.shape[0]):
                request.infer({0: arr[i : i + 1]})
                out[i] = request.get_output_tensor(0).data[0, :, :h, :w]
        finally:
            requests.give_back(request)
        return torch.from_numpy(out)

    def warmup(self, batch: int, height: int, width: int, dtype: torch.dtype = torch.uint8) -> None:
        """Compile for this frame size now (seconds) rather than at the first real call (any batch)."""
        self(torch.zeros(1, self.window_length, height, width, dtype=dtype))
