# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Where the engine runs: ``auto|cpu|cuda|cuda:N`` made a device, with the CPU as the fallback."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stir_ros.core.errors import ConfigError
from stir_ros.core.optional import import_torch

if TYPE_CHECKING:
    import torch

__all__ = ["NumpyCPU", "check_device", "resolve_device"]


def check_device(device: Any) -> None:
    """Raise :class:`ConfigError` unless ``device`` is ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (a string)."""
    if isinstance(device, str):
        if device in ("auto", "cpu", "cuda"):
            return
        head, _, index = device.partition(":")
        if head == "cuda" and index.isdigit():
            return
    raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, got {device!r}")


@dataclass(frozen=True)
class NumpyCPU:
    """The device where PyTorch is not installed: the CPU, with what the engine reads of a ``torch.device``."""

    type: str = "cpu"
    index: int | None = None

    def __str__(self) -> str:
        return "cpu"


def resolve_device(device: str) -> tuple[torch.device | NumpyCPU, str | None]:
    """Turn ``auto|cpu|cuda|cuda:N`` into a torch device; returns ``(device, warning or None)``.

    A CUDA device that does not exist falls back to the CPU with a warning rather than failing,
    so that a robot whose GPU is missing still gets (slower) images. Without PyTorch the device is
    always :class:`NumpyCPU` (a CUDA request gets the warning).
    """
    torch = import_torch()
    if torch is None:
        if device in ("auto", "cpu"):
            return NumpyCPU(), None
        return NumpyCPU(), f"device {device!r} requested but PyTorch is not installed; using the CPU (numpy)"
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu"), None
    if device == "cpu":
        return torch.device("cpu"), None
    if not torch.cuda.is_available():
        return torch.device("cpu"), f"device {device!r} requested but CUDA is not available; using the CPU"
    index = int(device.split(":", 1)[1]) if ":" in device else 0
    if index >= torch.cuda.device_count():
        msg = f"device {device!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist; using cuda:0"
        return torch.device("cuda", 0), msg
    return torch.device("cuda", index), None
