# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""What ``precision: auto`` and ``backend: auto`` mean: one function, :func:`resolve_inference_path`.

The rules (README.md, "Fast by default"; measurements in BENCHMARKS.md, issue 29):

- **CUDA**: torch, fp32, eager. fp16/bf16 with the warp in fp32 and CUDA graphs exist
  (``precision``, ``cuda_graphs``) but have not passed their CUDA tests and accuracy check on a real
  GPU yet, so ``auto`` does not pick them.
- **CPU with native bf16** (``avx512_bf16`` or ``amx_bf16`` in ``/proc/cpuinfo``) **and OpenVINO
  installed**: OpenVINO bf16 (about 3x the torch fp32 path on a Zen 4 core, 6-7x with AMX), but only
  for weights whose bf16 loss on the validation clips was measured within :data:`MAX_AUTO_LOSS_DB`
  (``bf16_loss_db``; the shipped weights: :data:`SHIPPED_BF16_LOSS_DB`, within it).
- **CPU otherwise**: the fastest exact path measured: OpenVINO f32 where installed (1.7x the
  authors' eager model at one thread against 1.2x for torch fp32), else torch fp32.
- An explicit ``backend`` or ``precision`` is kept; ``auto`` fills in the other. ``torch_compile`` or
  ``feature_reuse`` (torch-only features) make ``backend: auto`` torch.

Pure Python, torch-free: the probes read ``/proc/cpuinfo`` and look OpenVINO up without importing it
(tests replace them).
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "AUTO", "AUTO_STREAMS", "MAX_AUTO_LOSS_DB", "SHIPPED_BF16_LOSS_DB", "InferencePath", "cpu_has_native_bf16",
    "openvino_installed", "resolve_inference_path", "resolve_streams", "usable_cores",
]  # fmt: skip

AUTO = "auto"
#: ``auto`` never picks a path that loses more than this on the validation clips (Spike-Zoo base/train and
#: the simulated validation sets).
MAX_AUTO_LOSS_DB = 0.05
#: OpenVINO bf16 (the warps' sampling grids and the output head kept in f32) against f32 with the shipped
#: weights on the validation clips, dB lost: the largest loss of the two networks on Spike-Zoo base/train and
#: three simulated validation sets (BENCHMARKS.md, issue 29; ``stir-ros eval DATA --backend openvino
#: --precision bf16`` vs ``fp32``): stir_default.pt on clean clips gains 0.005-0.016, stir_dark.pt under
#: dark current loses at most 0.009 (dark 40 Hz + hot + dead pixels, simulated seed 11) and gains up to 0.027.
SHIPPED_BF16_LOSS_DB = 0.009
#: /proc/cpuinfo flags of native bf16 arithmetic (AVX512-BF16 on Zen 4 / Cooper Lake, AMX on Sapphire Rapids).
BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@dataclass(frozen=True)
class InferencePath:
    """A resolved backend and precision, and why (logged once at start, in /diagnostics)."""

    backend: str
    precision: str
    reason: str

    def __str__(self) -> str:
        return f"{self.backend} {self.precision}"


def cpu_has_native_bf16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """Whether the CPU reports AVX512-BF16 or AMX-BF16 (False where ``/proc/cpuinfo`` cannot be read)."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.partition(":")[2].split())
            return any(flag in flags for flag in BF16_FLAGS)
    return False


def openvino_installed() -> bool:
    """Whether the ``openvino`` package can be imported (looked up, not imported)."""
    try:
        return importlib.util.find_spec("openvino") is not None
    except (ImportError, ValueError):
        return False


def resolve_inference_path(
    device_type: str, backend: str = AUTO, precision: str = AUTO, torch_only: bool = False,
    bf16_loss_db: float | None = None,
) -> InferencePath:
    """The backend and precision that ``auto`` stands for on this machine, with the reason.

    Args:
        device_type: ``cpu`` or ``cuda`` (the resolved device).
        backend: ``auto``, ``torch`` or ``openvino``.
        precision: ``auto``, ``fp32``, ``fp16`` or ``bf16``.
        torch_only: A torch-only feature is on (``torch_compile``, ``feature_reuse``).
        bf16_loss_db: What OpenVINO bf16 loses with these weights on the validation clips (None: not
            measured, as for weights other than the shipped ones): bf16 only within :data:`MAX_AUTO_LOSS_DB`.
    """
    if backend != AUTO and precision != AUTO:
        return InferencePath(backend, precision, "set explicitly")
    if device_type == "cuda":
        return InferencePath(
            "torch" if backend == AUTO else backend, "fp32" if precision == AUTO else precision,
            "CUDA: fp32 eager until fp16/bf16 and CUDA graphs pass their tests and accuracy check on a GPU",
        )  # fmt: skip
    ov = openvino_installed()
    bf16 = cpu_has_native_bf16()
    if backend == AUTO:
        if torch_only:
            backend, why = "torch", "torch_compile or feature_reuse needs torch"
        elif not ov:
            backend, why = "torch", "OpenVINO is not installed"
        elif precision == "fp16":
            backend, why = "torch", "OpenVINO has no fp16 CPU path"
        else:
            backend, why = "openvino", "OpenVINO is installed"
    else:
        why = f"backend {backend} set"
    if precision == AUTO:
        if backend == "openvino" and bf16 and bf16_loss_db is not None and bf16_loss_db <= MAX_AUTO_LOSS_DB:
            precision, pwhy = "bf16", f"the CPU has native bf16 (these weights lose {bf16_loss_db:.3f} dB in bf16)"
        elif backend == "openvino" and bf16:
            lost = "not measured for these weights" if bf16_loss_db is None else f"loses {bf16_loss_db:.3f} dB"
            precision, pwhy = "fp32", f"exact f32: bf16 {lost} (auto allows {MAX_AUTO_LOSS_DB} dB)"
        elif backend == "openvino":
            precision, pwhy = "fp32", "the CPU has no native bf16: exact f32"
        else:
            precision, pwhy = "fp32", "exact fp32"
    else:
        pwhy = f"precision {precision} set"
    return InferencePath(backend, precision, f"CPU: {why}; {pwhy}")


#: ``inference_streams: 0`` (auto) with OpenVINO on a CPU of at least this many cores: two windows in flight.
AUTO_STREAMS = 2


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity where the OS says, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def resolve_streams(requested: int, backend: str, device_type: str, cores: int | None = None) -> tuple[int, str]:
    """The number of windows inference computes at once (``inference_streams``), with the reason.

    ``0`` (auto): :data:`AUTO_STREAMS` for OpenVINO on a CPU with at least that many cores (each window
    on its share of the threads: more images/s where the driver and the receive path take part of the
    cores, each window about twice as long; BENCHMARKS.md, issue 29), else one. Only OpenVINO runs
    several at once: an explicit count above one on another backend is one, and the reason says so.
    """
    if backend != "openvino" or device_type != "cpu":
        if requested > 1:
            return 1, f"inference_streams {requested} applies to backend openvino; one window at a time on {backend}"
        return 1, "one window at a time"
    if requested >= 1:
        return requested, f"inference_streams {requested} set"
    cores = usable_cores() if cores is None else cores
    if cores >= AUTO_STREAMS:
        return AUTO_STREAMS, (f"{AUTO_STREAMS} windows at once on {cores} cores (more images/s beside the driver; "
                              "inference_streams: 1 for the lowest latency)")  # fmt: skip
    return 1, f"one window at a time on {cores} core"
