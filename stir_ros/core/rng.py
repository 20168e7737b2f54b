# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Seeded random draws shared by the simulator, the moving scenes and the training scenes.

Everything random in stir_ros goes through a ``torch.Generator``, so that a seed gives the same
scenes and spikes on every run; draws are made on the generator's device, so that a CPU generator
also drives CUDA tensors (and gives the same numbers as on a CPU).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported where it is used: the module imports without it
    import torch

__all__ = ["make_generator", "rand"]


def make_generator(seed: int | None, generator: torch.Generator | None, device: Any) -> torch.Generator:
    """``generator`` if given, else a new one on ``device`` seeded with ``seed`` (``None``: from the OS)."""
    if generator is not None:
        return generator
    import torch

    gen = torch.Generator(device=device)
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(int(seed))
    return gen


def rand(shape: Sequence[int], gen: torch.Generator, device: Any, normal: bool = False) -> torch.Tensor:
    """Uniform [0, 1) (or standard normal) draws of ``shape`` from ``gen``, moved to ``device``."""
    import torch

    # Draw on the generator's device so that a CPU generator also drives CUDA simulations.
    draw = torch.randn if normal else torch.rand
    return draw(tuple(shape), generator=gen, device=gen.device).to(device)
