# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Shared multi-scale feature encoder applied to every block's embedding."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from stir_ros.models.blocks import ConvAct, ResidualBlock

__all__ = ["EncoderStage", "SpikeEncoder"]


class EncoderStage(nn.Module):
    """Stride-2 convolution (shared-slope PReLU) followed by one residual block."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.down = ConvAct(in_channels, out_channels, stride=2, act_channels=1)
        self.res = ResidualBlock(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.res(self.down(x))


class SpikeEncoder(nn.Module):
    """7x7 stem then one stage per extra width, each halving the resolution.

    Args:
        in_channels: Embedding channels (16 for 61-frame windows, 15 for 41).
        widths: Stem width followed by the stage widths.

    ``forward`` returns the stage outputs finest first: [1/2, 1/4, 1/8, 1/16] for the default
    four stages.
    """

    def __init__(self, in_channels: int, widths: Sequence[int] = (16, 24, 32, 64, 96)) -> None:
        super().__init__()
        self.widths = tuple(widths)
        self.stem = ConvAct(in_channels, widths[0], kernel_size=7, act_channels=1)
        self.stages = nn.ModuleList(EncoderStage(a, b) for a, b in zip(widths[:-1], widths[1:]))

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.stem(x)
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features
