# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""STIR: spatio-temporal interactive reconstruction from a window of spike frames.

Fan et al., "Spatio-temporal interactive learning for efficient image reconstruction of spiking
cameras", NeurIPS 2024. Pipeline (see ``stir_ros/models/README.md`` for the mapping to the
paper and to the authors' code):

1. cut the window into three overlapping blocks (left, centre, right);
2. embed each block with HSER (explicit nested temporal means + implicit residual features);
3. encode the three embeddings with one shared encoder down to 1/16;
4. let the centre block attend to its neighbours at 1/16 (symmetric interactive attention);
5. decode coarse to fine, warping the side features with predicted motion fields.

Internally the three blocks are stacked along the batch as ``[left, right, centre]`` so that
the side blocks form one contiguous slice, warped with a single ``grid_sample`` per level.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, NamedTuple, overload

import torch
from torch import Tensor, nn

from stir_ros.core.errors import SpikeFormatError
from stir_ros.models.attention import SymmetricInteractionBlock
from stir_ros.models.blocks import pad_tail
from stir_ros.models.decoder import CoarseToFineDecoder
from stir_ros.models.embedding import HybridSpikeEmbedding
from stir_ros.models.encoder import SpikeEncoder
from stir_ros.models.registry import register_model

__all__ = ["STIR", "StirFeatures", "BLOCK_SPLITS", "stir", "stir_61", "stir_41"]

#: Frame ranges [start, stop) of the (left, centre, right) blocks for each window length.
BLOCK_SPLITS: dict[int, tuple[tuple[int, int], tuple[int, int], tuple[int, int]]] = {
    61: ((0, 21), (20, 41), (40, 61)),
    41: ((0, 15), (13, 28), (26, 41)),
}


class StirFeatures(NamedTuple):
    """What the decoder consumes. Side tensors hold the left batch, then the right batch."""

    centre_embed: Tensor
    side_embed: Tensor
    centre_feats: list[Tensor]
    side_feats: list[Tensor]
    fused: Tensor


class STIR(nn.Module):
    """STIR reconstruction network.

    Args:
        window_length: Frames per input window, 61 or 41.
        widths: Encoder stem width, then one width per stride-2 stage.
        implicit_channels: Learned HSER channels per block.
        hidden_channels: Hidden-state channels passed between decoder levels.
        heads: Attention heads.
        ffn_expansion: Hidden expansion of the attention feed-forward.
        motion_groups: Motion-field pairs at full resolution.
    """

    def __init__(
        self,
        *,
        window_length: int = 61,
        widths: Sequence[int] = (16, 24, 32, 64, 96),
        implicit_channels: int = 11,
        hidden_channels: int = 8,
        heads: int = 4,
        ffn_expansion: float = 2.66,
        motion_groups: int = 3,
    ) -> None:
        super().__init__()
        if window_length not in BLOCK_SPLITS:
            raise ValueError(f"window_length must be one of {sorted(BLOCK_SPLITS)}, got {window_length}")
        self.window_length = window_length
        self.blocks = BLOCK_SPLITS[window_length]
        self.size_multiple = 2 ** (len(widths) - 1)
        self._config: dict[str, Any] = {
            "type": "stir",
            "window_length": window_length,
            "widths": list(widths),
            "implicit_channels": implicit_channels,
            "hidden_channels": hidden_channels,
            "heads": heads,
            "ffn_expansion": ffn_expansion,
            "motion_groups": motion_groups,
        }

        block_length = self.blocks[0][1] - self.blocks[0][0]
        self.embedding = HybridSpikeEmbedding(block_length, implicit_channels)
        self.encoder = SpikeEncoder(self.embedding.out_channels, widths)
        self.attention = SymmetricInteractionBlock(widths[-1], heads, ffn_expansion)
        self.decoder = CoarseToFineDecoder(widths, self.embedding.out_channels, hidden_channels, motion_groups)

    @property
    def model_config(self) -> dict[str, Any]:
        """Registry config that rebuilds this architecture (``build_model(model.model_config)``)."""
        return dict(self._config)

    def forward_features(self, spikes: Tensor) -> StirFeatures:
        """Embed, encode and cross-attend a window whose H and W are multiples of 16."""
        (l0, l1), (c0, c1), (r0, r1) = self.blocks
        n = spikes.shape[0]
        # Batch order [left, right, centre]: the sides stay one contiguous slice downstream.
        blocks = torch.cat([spikes[:, l0:l1], spikes[:, r0:r1], spikes[:, c0:c1]], dim=0)
        embed = self.embedding(blocks)
        feats = self.encoder(embed)
        top = feats[-1]
        fused = self.attention(top[2 * n :], top[:n], top[n : 2 * n])
        return StirFeatures(
            centre_embed=embed[2 * n :],
            side_embed=embed[: 2 * n],
            centre_feats=[f[2 * n :] for f in feats[:-1]],
            side_feats=[f[: 2 * n] for f in feats[:-1]],
            fused=fused,
        )

    def forward_head(self, features: StirFeatures) -> list[Tensor]:
        """Decode features into raw images, finest first: [full, 1/2, 1/4, 1/8, 1/16]."""
        return self.decoder(
            features.fused,
            features.centre_feats,
            features.side_feats,
            features.centre_embed,
            features.side_embed,
        )

    @overload
    def forward(self, spikes: Tensor, return_pyramid: Literal[False] = ...) -> Tensor: ...

    @overload
    def forward(self, spikes: Tensor, return_pyramid: Literal[True]) -> tuple[Tensor, list[Tensor]]: ...

    def forward(self, spikes: Tensor, return_pyramid: bool = False) -> Tensor | tuple[Tensor, list[Tensor]]:
        """Reconstruct the window's centre frame.

        Args:
            spikes: [B, T, H, W] binary frames (float 0/1; bool or integer is converted), any
                H and W. Sizes that are not multiples of 16 are padded by repeating the last
                rows/columns (the authors' convention) and the output is cropped back.
            return_pyramid: Also return the coarser predictions for a multi-scale loss.

        Returns:
            The image [B, 1, H, W] — raw in eval mode (not clamped, not divided by alpha),
            clamped to [0, 1] in training mode as in the authors' recipe. With
            ``return_pyramid``, ``(image, [1/2, 1/4, 1/8, 1/16 images])``, level k cropped to
            ``ceil(H / 2**k) x ceil(W / 2**k)``.
        """
        if spikes.dim() != 4 or spikes.shape[1] != self.window_length:
            raise SpikeFormatError(
                f"STIR expects spikes [B, {self.window_length}, H, W], got {tuple(spikes.shape)}"
            )
        if not spikes.is_floating_point():
            spikes = spikes.to(self.embedding.implicit.conv1.weight.dtype)
        padded, h, w = pad_tail(spikes, self.size_multiple)
        images = self.forward_head(self.forward_features(padded))
        cropped = [img[..., : -(-h // 2**k), : -(-w // 2**k)] for k, img in enumerate(images)]
        if self.training:
            cropped = [img.clamp(0.0, 1.0) for img in cropped]
        if return_pyramid:
            return cropped[0], cropped[1:]
        return cropped[0]


@register_model
def stir(**kwargs: Any) -> STIR:
    """STIR with explicit keyword arguments (``window_length`` 61 by default)."""
    return STIR(**kwargs)


@register_model
def stir_61(**kwargs: Any) -> STIR:
    """STIR on 61-frame windows (the paper's setting; 5,107,960 parameters)."""
    return STIR(window_length=61, **kwargs)


@register_model
def stir_41(**kwargs: Any) -> STIR:
    """STIR on 41-frame windows (Spike-Zoo v0.2.3 setting; 5,078,698 parameters)."""
    return STIR(window_length=41, **kwargs)
