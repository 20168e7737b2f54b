# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Hybrid spike embedding (HSER): explicit temporal means plus a learned residual embedding."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from stir_ros.models.blocks import ConvBNResidual

__all__ = ["HybridSpikeEmbedding", "nested_temporal_means", "num_temporal_means"]


def num_temporal_means(block_length: int) -> int:
    """How many nested centred windows a block yields (5 for 21 frames, 4 for 15).

    The windows shrink by two frames at each end while the trim stays under half the block.
    """
    return (block_length // 2 + 1) // 2


def nested_temporal_means(block: Tensor) -> Tensor:
    """Explicit part of HSER: firing rates over nested centred windows (TFP at several lengths).

    Args:
        block: Spike frames [N, L, H, W].

    Returns:
        [N, K, H, W], channel k the mean over frames ``2k .. L-1-2k``.
    """
    length = block.shape[1]
    means = [block[:, 2 * k : length - 2 * k].mean(dim=1, keepdim=True) for k in range(num_temporal_means(length))]
    return torch.cat(means, dim=1)


class HybridSpikeEmbedding(nn.Module):
    """Per-block spike representation: ``[explicit temporal means, implicit residual features]``.

    Args:
        block_length: Frames per block (21 for 61-frame windows, 15 for 41).
        implicit_channels: Channels of the learned part.
    """

    def __init__(self, block_length: int, implicit_channels: int = 11) -> None:
        super().__init__()
        self.block_length = block_length
        self.out_channels = num_temporal_means(block_length) + implicit_channels
        self.implicit = ConvBNResidual(block_length, implicit_channels)

    def forward(self, blocks: Tensor) -> Tensor:
        """Embed blocks [N, L, H, W] -> [N, out_channels, H, W]."""
        return torch.cat([nested_temporal_means(blocks), self.implicit(blocks)], dim=1)
