# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""What the three makers of training windows share: how their frames become spikes.

:func:`~stir_ros.training.scenes.make_training_batch`, :func:`~stir_ros.training.camera.make_camera_batch`
and :func:`~stir_ros.training.video.make_video_batch` take these as keyword options
(:class:`SpikeOptions`) and hand them to one :class:`Simulation`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

import torch

from stir_ros.core.defaults import ALPHA
from stir_ros.core.rng import make_generator
from stir_ros.core.sensor_model import SensorModel
from stir_ros.core.simulator import simulate_spikes

__all__ = ["Simulation", "SpikeOptions"]


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
                               generator=gen, sensor=self.sensor).float()  # fmt: skip
