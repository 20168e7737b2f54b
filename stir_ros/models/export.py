# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""STIR to ONNX: one file for TensorRT, OpenVINO, ONNX Runtime and other deployment runtimes.

The whole network is exported, the warp included (``grid_sample`` becomes ONNX ``GridSample``,
opset 16 or later). Two kinds of file:

- **fixed size** (the default; ``batch``, ``height``, ``width``): input ``spikes`` float32
  ``[batch, T, height, width]``, every dimension static, so that a runtime loads the file as it is
  (OpenVINO's CPU plugin refuses a dynamic batch in this graph unless the caller reshapes first).
  The padding to multiples of 16 (repeating the last rows/columns,
  :func:`~stir_ros.models.blocks.pad_tail`) and the crop back are part of the graph.
- **dynamic** (``dynamic=True``): input ``[B, T, H, W]`` with H and W multiples of 16, any size;
  the caller pads (and crops the output) and gives the runtime the shape before compiling (OpenVINO:
  ``model.reshape``). What :mod:`stir_ros.models.runtime` uses.

Output ``raw`` float32 ``[B, 1, H, W]``: the raw network output, ``alpha * intensity`` (the
centre frame's spike rate); an image is ``clip(raw / alpha, 0, 1)``. The file's metadata
(``metadata_props``) says so, with the window length, the alpha of the weights, the input layout
and where the weights came from; :func:`read_onnx_metadata` reads it back.

``stir-ros export WEIGHTS OUT.onnx`` is the command line; after writing, it checks the file
against PyTorch fp32 on random and on simulated windows (:func:`verify_onnx`).
"""

from __future__ import annotations

import argparse
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from stir_ros.core.defaults import ALPHA
from stir_ros.core.errors import BackendUnavailableError, ConfigError, SpikeFormatError
from stir_ros.core.limits import bound_for
from stir_ros.core.methods import STIR_WINDOW_LENGTHS
from stir_ros.core.paths import check_output_apart

__all__ = [
    "ONNX_FORMAT",
    "DEFAULT_OPSET",
    "export_onnx",
    "read_onnx_metadata",
    "verify_onnx",
    "run_onnx",
    "add_arguments",
    "run",
]

#: ``metadata_props["stir_ros.format"]`` of an exported file.
ONNX_FORMAT = "stir_ros.stir_onnx/1"
#: Opset of exported files: GridSample needs 16; 17 is what TensorRT 8.6+, OpenVINO and ONNX
#: Runtime all read (ONNX Runtime's CPU GridSample kernel is registered for opset 16-19).
DEFAULT_OPSET = 17
ALPHA_CONVENTION = "raw = alpha * intensity (the centre frame's spike rate); image = clip(raw / alpha, 0, 1)"


class _Exportable(nn.Module):
    """The network as exported: float spikes in, raw image out (no clamp, no division by alpha)."""

    def __init__(self, model: nn.Module, dynamic: bool) -> None:
        super().__init__()
        self.model, self.dynamic = model, dynamic

    def forward(self, spikes: Tensor) -> Tensor:
        if self.dynamic:  # H, W multiples of 16: no padding, which would depend on the size
            return self.model.forward_head(self.model.forward_features(spikes))[0]
        return self.model(spikes)


def _onnx_bytes(model: nn.Module, window_length: int, height: int, width: int, dynamic: bool,
                opset: int, batch: int = 1) -> bytes:  # fmt: skip
    import warnings

    net = _Exportable(model, dynamic).eval()
    example = torch.zeros(batch, window_length, height, width)
    axes = {0: "batch", 2: "height", 3: "width"}
    dynamic_axes = {"spikes": axes, "raw": axes} if dynamic else None  # fixed size: every dimension static
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        # The tracer warns about Python-level branches on shapes (padding): constant per size.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net, (example,), buf, opset_version=opset, dynamo=False, input_names=["spikes"],
            output_names=["raw"], dynamic_axes=dynamic_axes, do_constant_folding=True,
        )  # fmt: skip
    return buf.getvalue()


def export_onnx(
    model: nn.Module,
    out: str | os.PathLike[str] | None = None,
    *,
    height: int = 250,
    width: int = 400,
    dynamic: bool = False,
    batch: int = 1,
    opset: int = DEFAULT_OPSET,
    alpha: float = ALPHA,
    source: str = "",
) -> bytes:
    """Export a STIR network (fp32) to ONNX, with its metadata.

    Args:
        model: The STIR network (not changed; a CPU fp32 copy is exported).
        out: File to write (its folder is created); ``None`` only returns the bytes.
        height: Input height of a fixed-size file (any size; padding is in the graph). With
            ``dynamic``, the height used for tracing (rounded up to a multiple of 16).
        width: Input width, as ``height``.
        dynamic: Dynamic batch, height and width (multiples of 16, padded by the caller).
        batch: Windows per inference of a fixed-size file (ignored with ``dynamic``).
        opset: ONNX opset, >= 16 (GridSample).
        alpha: The alpha the weights were trained for (metadata only: the graph never divides).
        source: Where the weights came from (metadata), e.g. the checkpoint's sha256.

    Returns:
        The serialised ONNX model (what was written).

    Raises:
        ConfigError: Opset below 16, or a size or batch below 1.
        BackendUnavailableError: The ``onnx`` package (metadata) is not installed.
    """
    import copy

    if opset < 16:
        raise ConfigError(f"opset must be >= 16 (ONNX GridSample, the warp), got {opset}")
    if height < 1 or width < 1:
        raise ConfigError(f"height and width must be positive, got {height}x{width}")
    bound = bound_for("spike_reconstructor", "max_batch")  # the node's bound on windows per pass
    assert bound is not None
    if isinstance(batch, bool) or not isinstance(batch, int) or not bound.low <= batch <= bound.high:
        raise ConfigError(f"batch must be an integer in {bound.low:g}..{bound.high:g}, got {batch!r}")
    onnx = _import("onnx", "writing ONNX metadata")
    net = copy.deepcopy(model).float().cpu().eval()
    t = int(net.window_length)
    multiple = int(getattr(net, "size_multiple", 16))
    if dynamic:
        height, width = -(-height // multiple) * multiple, -(-width // multiple) * multiple
    proto = onnx.load_from_string(_onnx_bytes(net, t, height, width, dynamic, opset, 1 if dynamic else batch))
    layout = "float32 [B, T, H, W] of 0/1 spikes, frames in time order" + (
        f"; H and W multiples of {multiple}: pad by repeating the last rows/columns, crop the output"
        if dynamic else f"; B = {batch}, H = {height}, W = {width}, all static (padding inside the graph)"
    )  # fmt: skip
    meta = {
        "stir_ros.format": ONNX_FORMAT,
        "model": "STIR (Fan et al., NeurIPS 2024), stir_ros implementation",
        "window_length": str(t),
        "alpha": repr(float(alpha)),
        "alpha_convention": ALPHA_CONVENTION,
        "input": "spikes",
        "input_layout": layout,
        "output": "raw",
        "output_layout": "float32 [B, 1, H, W], not clamped",
        "dynamic": "1" if dynamic else "0",
        "batch": "dynamic" if dynamic else str(batch),
        "height": "dynamic" if dynamic else str(height),
        "width": "dynamic" if dynamic else str(width),
        "size_multiple": str(multiple if dynamic else 1),
        "opset": str(opset),
        "source": source,
        "code_version": _version(),
    }
    del proto.metadata_props[:]
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "stir_ros"
    proto.producer_version = _version()
    onnx.checker.check_model(proto)
    data = proto.SerializeToString()
    if out is not None:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return data


def read_onnx_metadata(path: str | os.PathLike[str] | bytes) -> dict[str, str]:
    """The ``metadata_props`` of an exported file (a path or the bytes).

    Raises:
        ConfigError: The file is not a stir_ros STIR export.
    """
    onnx = _import("onnx", "reading ONNX metadata")
    if isinstance(path, bytes):
        proto = onnx.load_from_string(path)
    else:
        proto = onnx.load(os.fspath(path), load_external_data=False)
    meta = {p.key: p.value for p in proto.metadata_props}
    if meta.get("stir_ros.format") != ONNX_FORMAT:
        raise ConfigError(f"not a stir_ros STIR export: metadata stir_ros.format is "
                          f"{meta.get('stir_ros.format')!r}, expected {ONNX_FORMAT!r}")  # fmt: skip
    return meta


def run_onnx(onnx_model: str | os.PathLike[str] | bytes, spikes: np.ndarray, runtime: str = "auto") -> np.ndarray:
    """Run an exported file once on the CPU in fp32 with OpenVINO or ONNX Runtime (a check, not fast).

    Args:
        onnx_model: The exported file, or its bytes.
        spikes: Windows ``[B, T, H, W]`` of the size the file takes.
        runtime: ``openvino``, ``onnxruntime`` or ``auto`` (the first installed of the two).

    Returns:
        The raw output ``[B, 1, H, W]`` float32.
    """
    x = np.ascontiguousarray(spikes, dtype=np.float32)
    if runtime in ("auto", "openvino"):
        try:
            ov = _import("openvino", "running ONNX files")
        except BackendUnavailableError:
            if runtime == "openvino":
                raise
        else:
            core = ov.Core()
            model = core.read_model(onnx_model if not isinstance(onnx_model, bytes) else _tmp_file(onnx_model))
            if model.inputs[0].get_partial_shape().is_dynamic:  # a --dynamic file: its user gives the shape
                model.reshape({0: list(x.shape)})  # some of OpenVINO's fusions need fixed shapes
            compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
            return np.array(compiled({0: x})[0], dtype=np.float32)
    if runtime not in ("auto", "onnxruntime"):
        raise ConfigError(f"runtime must be auto, openvino or onnxruntime, got {runtime!r}")
    ort = _import("onnxruntime", "running ONNX files")
    source = onnx_model if isinstance(onnx_model, bytes) else os.fspath(onnx_model)
    session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"spikes": x})[0], dtype=np.float32)


def verify_onnx(model: nn.Module, onnx_model: str | os.PathLike[str] | bytes, windows: Sequence[np.ndarray],
                runtime: str = "auto") -> float:  # fmt: skip
    """Max abs difference between PyTorch fp32 and the exported file over ``windows`` ([B, T, H, W] each)."""
    net = model.float().cpu().eval()
    worst = 0.0
    for w in windows:
        with torch.inference_mode():
            ref = net(torch.as_tensor(w, dtype=torch.float32)).numpy()
        got = run_onnx(onnx_model, w, runtime)
        if got.shape != ref.shape:
            raise SpikeFormatError(f"ONNX output shape {got.shape} differs from PyTorch's {ref.shape}")
        worst = max(worst, float(np.abs(got - ref).max()))
    return worst


def check_windows(window_length: int, height: int, width: int, alpha: float = ALPHA, seed: int = 0) -> list[np.ndarray]:
    """Two windows to check an export with.

    Uniformly random spikes, and spikes simulated from a textured image moving across the frame
    (what a camera sees), ``[1, T, H, W]`` float32 each.
    """
    from stir_ros.core.scenes import synthetic_image
    from stir_ros.core.simulator import simulate_spikes

    rng = np.random.default_rng(seed)
    rate = rng.uniform(0.0, 0.6, (1, 1, height, width))
    random = (rng.random((1, window_length, height, width)) < rate).astype(np.float32)
    scene = synthetic_image(height, width + window_length, seed=seed)
    frames = np.stack([scene[:, k : k + width] for k in range(window_length)])  # 1 px per frame
    real = np.asarray(simulate_spikes(frames, alpha=alpha, seed=seed), dtype=np.float32)[None]
    return [random, real]


# ------------------------------------------------------------------------------ helpers


def _import(name: str, purpose: str) -> Any:
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as err:
        raise BackendUnavailableError(
            f"the Python package '{name}' is needed for {purpose} but is not installed ({err}); "
            f"./scripts/setup.sh installs the pinned version (requirements/deploy.txt)"
        ) from err


def _tmp_file(data: bytes) -> str:
    import atexit
    import tempfile

    fd, name = tempfile.mkstemp(suffix=".onnx", prefix="stir_ros_")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    atexit.register(lambda: os.path.exists(name) and os.remove(name))
    return name


def _version() -> str:
    import stir_ros

    return str(stir_ros.__version__)


# ------------------------------------------------------------------------------ command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``stir-ros export``."""
    parser.add_argument("weights", metavar="WEIGHTS", help="STIR checkpoint (stir_ros or the authors' state dict); "
                        "'default' for the shipped weights")  # fmt: skip
    parser.add_argument("out", metavar="OUT.onnx", help="ONNX file to write")
    parser.add_argument("--window-length", type=int, default=0,
                        help="41 or 61; must match the checkpoint (0: the checkpoint's)")  # fmt: skip
    parser.add_argument("--height", type=int, default=250, help="input height of a fixed-size file (default 250)")
    parser.add_argument("--width", type=int, default=400, help="input width of a fixed-size file (default 400)")
    parser.add_argument("--batch", type=int, default=None, metavar="N",
                        help="windows per inference of a fixed-size file (default 1); every dimension of the file "
                             "is static, so runtimes load it as it is")  # fmt: skip
    parser.add_argument("--dynamic", action="store_true",
                        help="dynamic batch, height and width (multiples of 16; the caller pads and gives the "
                             "runtime the shape, e.g. OpenVINO's model.reshape, before compiling)")  # fmt: skip
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset >= 16 (default {DEFAULT_OPSET})")
    parser.add_argument("--no-check", action="store_true", help="skip the check against PyTorch after export")
    parser.add_argument("--check-dat", metavar="DAT", action="append", default=[],
                        help="also check on the centre window of this recorded .dat file, whose frames are "
                             "--height x --width (repeatable)")  # fmt: skip
    parser.add_argument("--tolerance", type=float, default=1e-4,
                        help="largest max-abs difference to PyTorch fp32 accepted by the check (default 1e-4)")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Entry point of ``stir-ros export``."""
    from stir_ros.core.weights import default_weights_path
    from stir_ros.models.checkpoint import load_checkpoint

    path = default_weights_path() if args.weights == "default" else Path(args.weights).expanduser()
    if args.window_length not in (0, *STIR_WINDOW_LENGTHS):
        supported = " or ".join(str(n) for n in STIR_WINDOW_LENGTHS)
        raise ConfigError(f"--window-length must be {supported} (0: the checkpoint's), got {args.window_length}")
    check_output_apart(args.out, [path, *args.check_dat], what="output file")
    if args.dynamic and args.batch is not None:
        raise ConfigError("--batch is for fixed-size files; a --dynamic file takes any batch")
    batch = args.batch if args.batch is not None else 1
    model, meta = load_checkpoint(path, expected_window_length=args.window_length or None)
    from stir_ros.models.checkpoint import state_dict_sha256

    source = f"{Path(path).name} (state dict sha256 {state_dict_sha256(model.state_dict())})"
    data = export_onnx(model, args.out, height=args.height, width=args.width, dynamic=args.dynamic, batch=batch,
                       opset=args.opset, alpha=float(meta.alpha), source=source)  # fmt: skip
    kind = ("dynamic batch/height/width (multiples of 16)" if args.dynamic
            else f"static input [{batch}, {model.window_length}, {args.height}, {args.width}]")  # fmt: skip
    print(f"wrote {args.out}: {len(data) / 1e6:.1f} MB, opset {args.opset}, window {model.window_length}, {kind}")
    if args.no_check:
        return 0
    h, w = args.height, args.width
    if args.dynamic:
        h, w = -(-h // 16) * 16, -(-w // 16) * 16
    windows = check_windows(model.window_length, h, w, alpha=float(meta.alpha))
    for dat in args.check_dat:
        from stir_ros.core.dat import centre_window
        from stir_ros.models.blocks import pad_tail

        real = torch.as_tensor(centre_window(Path(dat), args.height, args.width, model.window_length)[None])
        windows.append(pad_tail(real, 16)[0].float().numpy() if args.dynamic else real.float().numpy())
    if not args.dynamic and batch > 1:  # the file takes exactly `batch` windows: combine the check windows
        windows = [np.concatenate([windows[(i + k) % len(windows)] for k in range(batch)]) for i in range(len(windows))]
    diff = verify_onnx(model, args.out, windows)
    verdict = "ok" if diff <= args.tolerance else "FAILED"
    kinds = "random, simulated" + (f" and {len(args.check_dat)} recorded" if args.check_dat else "")
    print(f"check against PyTorch fp32 ({kinds} windows, {h}x{w}): max abs difference "
          f"{diff:.2e} (tolerance {args.tolerance:g}): {verdict}")  # fmt: skip
    return 0 if diff <= args.tolerance else 1
