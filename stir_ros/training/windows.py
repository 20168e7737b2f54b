# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""What the three makers of training windows share: the shape of their batch, and how their frames become spikes.

:func:`~stir_ros.training.scenes.make_training_batch`, :func:`~stir_ros.training.camera.make_camera_batch`
and :func:`~stir_ros.training.video.make_video_batch` take a :class:`WindowShape`, and the
simulation's keyword options (:class:`SpikeOptions`) that they hand to one :class:`Simulation`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypedDict

import torch

from stir_ros.core.defaults import ALPHA
from stir_ros.core.errors import ConfigError
from stir_ros.core.rng import make_generator
from stir_ros.core.sensor_model import SensorModel
from stir_ros.core.simulator import simulate_spikes

__all__ = ["Simulation", "SpikeOptions", "WindowShape"]


@dataclass(frozen=True)
class WindowShape:
    """The ``[B, T, H, W]`` of a batch of training windows' spikes; iterates as those four numbers.

    Attributes:
        batch: Samples B.
        window_length: Frames T per window; the ground truth is at frame ``T // 2``.
        height: Crop height H.
        width: Crop width W.
    """

    batch: int
    window_length: int
    height: int
    width: int

    def __post_init__(self) -> None:
        if min(self) < 1:
            raise ConfigError(f"batch, window_length, height and width must be >= 1, got {', '.join(map(str, self))}")

    def __iter__(self) -> Iterator[int]:
        return iter((self.batch, self.window_length, self.height, self.width))


class SpikeOptions(TypedDict, total=False):
    """The keyword options of the window makers: the fields of :class:`Simulation`."""

    alpha: float
    generator: torch.Generator | None
    device: str | torch.device
    noise_std: float
    sensor: SensorModel | None
    threshold: float


@dataclass(frozen=True)
class Simulation:
    """How a window maker's frames become spikes, and where.

    Attributes:
        alpha: Sensor alpha.
        generator: Random source of the whole window (CPU generators also drive CUDA batches;
            ``None``: a fresh one).
        device: Device of the results.
        noise_std: Noise of the integrate-and-fire increments.
        sensor: A real sensor's imperfections added by the simulator (``None``: the ideal sensor).
            Its hot and dead pixels are repaired as the node repairs them once found, so a network
            trains on what it meets behind the node's defect correction.
        threshold: Firing threshold.
    """

    alpha: float = ALPHA
    generator: torch.Generator | None = None
    device: str | torch.device = "cpu"
    noise_std: float = 0.0
    sensor: SensorModel | None = None
    threshold: float = 1.0

    def random_source(self) -> torch.Generator:
        """The CPU generator that draws the scene and then the spikes."""
        return make_generator(None, self.generator, "cpu")

    def spikes(self, frames: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Spikes ``[B, T, H, W]`` float32 0/1 of intensity frames in [0, 1]."""
        return simulate_spikes(frames, alpha=self.alpha, threshold=self.threshold, noise_std=self.noise_std,
                               generator=gen, sensor=self.sensor, repair_defects=True).float()  # fmt: skip
