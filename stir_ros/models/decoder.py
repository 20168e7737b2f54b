# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Coarse-to-fine decoder with motion fields and a full-resolution multi-motion-field level.

Side (left/right block) features travel as one tensor with the left block's batch first and
the right block's second, so both sides are warped with a single ``grid_sample`` call.
Motion fields travel as 4-channel tensors: (x, y) centre->left, then (x, y) centre->right.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stir_ros.models.blocks import BackwardWarp, ConvAct, Float32Conv2d, ResidualBlock, conv3x3, upconv

__all__ = ["TopLevel", "RefineLevel", "MultiMotionLevel", "CoarseToFineDecoder"]


def _upsample_image(image: Tensor) -> Tensor:
    return F.interpolate(image, scale_factor=2.0, mode="bilinear", align_corners=False)


def _fuse(in_channels: int, out_channels: int) -> nn.Sequential:
    """Two 3x3 conv + PReLU layers reducing the concatenated inputs to ``out_channels``."""
    return nn.Sequential(ConvAct(in_channels, in_channels), ConvAct(in_channels, out_channels))


class TopLevel(nn.Module):
    """1/16 scale: predicts an image and the two motion fields from the attended features."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fuse = ConvAct(channels, channels)
        self.res = ResidualBlock(channels)
        self.head = conv3x3(channels, 5)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Returns (image [B,1], hidden [B,C], flows [B,4])."""
        hidden = self.res(self.fuse(x))
        out = self.head(hidden)
        return out[:, 4:5], hidden, out[:, :4]


class RefineLevel(nn.Module):
    """One finer level: upsample, warp the side features, fuse, predict residual fields + image.

    Args:
        prev_channels: Hidden channels of the coarser level.
        feat_channels: Encoder channels at this level.
        hidden_channels: Channels the coarser hidden state is upsampled to.
    """

    def __init__(self, prev_channels: int, feat_channels: int, hidden_channels: int = 8) -> None:
        super().__init__()
        width = 3 * feat_channels
        self.up_flow = upconv(4, 4)
        self.up_hidden = upconv(prev_channels, hidden_channels)
        self.fuse = _fuse(1 + width + hidden_channels + 4, width)
        self.res = ResidualBlock(width)
        self.head = conv3x3(width, 5)
        self.warp = BackwardWarp()

    def forward(
        self, image: Tensor, hidden: Tensor, flows: Tensor, centre: Tensor, sides: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Returns (image, hidden, refined flows, upsampled input flows)."""
        n = centre.shape[0]
        up_flows = self.up_flow(flows)
        warped = self.warp(sides, torch.cat([up_flows[:, 0:2], up_flows[:, 2:4]], dim=0))
        x = torch.cat(
            [_upsample_image(image), centre, warped[:n], warped[n:], self.up_hidden(hidden), up_flows], dim=1
        )
        hidden = self.res(self.fuse(x))
        out = self.head(hidden)
        return out[:, 4:5], hidden, out[:, :4] + up_flows, up_flows


class MultiMotionLevel(nn.Module):
    """Full resolution: extra motion-field pairs warp the side embeddings several times.

    ``groups - 1`` extra field pairs are predicted at half resolution as residuals on the
    upsampled fields the half-resolution level received, then upsampled; together with the
    main pair they warp the left and right HSER embeddings ``groups`` times each.
    """

    def __init__(self, prev_channels: int, embed_channels: int, hidden_channels: int = 8, groups: int = 3) -> None:
        super().__init__()
        if groups < 1:
            raise ValueError(f"groups must be >= 1, got {groups}")
        self.groups = groups
        width = 3 * embed_channels
        extra = 4 * (groups - 1)
        if extra:
            self.group_flow_head = conv3x3(prev_channels, extra)
            self.up_group_flow = upconv(extra, extra)
        self.up_flow = upconv(4, 4)
        self.up_hidden = upconv(prev_channels, hidden_channels)
        in_channels = 1 + embed_channels * (1 + 2 * groups) + hidden_channels + 4 * groups
        self.fuse = _fuse(in_channels, width)
        self.res = ResidualBlock(width)
        self.head = Float32Conv2d(width, 1, 3, padding=1)  # the image: f32 under bf16/fp16 weights too
        self.warp = BackwardWarp()

    def forward(
        self, image: Tensor, hidden: Tensor, flows: Tensor, prev_up_flows: Tensor, centre: Tensor, sides: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Returns (image [B,1,H,W], all motion fields [B, 4*groups, H, W])."""
        n, c, h, w = centre.shape
        all_flows = self.up_flow(flows)
        if self.groups > 1:
            group_flows = self.group_flow_head(hidden) + prev_up_flows.repeat(1, self.groups - 1, 1, 1)
            all_flows = torch.cat([all_flows, self.up_group_flow(group_flows)], dim=1)
        pairs = 2 * self.groups
        # [B, pairs*2, H, W] -> [pairs*B, 2, H, W], pair-major: left0, right0, left1, right1, ...
        flow_batch = all_flows.reshape(n, pairs, 2, h, w).transpose(0, 1).reshape(pairs * n, 2, h, w)
        warped = self.warp(sides.repeat(self.groups, 1, 1, 1), flow_batch)
        warped = warped.reshape(pairs, n, c, h, w).transpose(0, 1).reshape(n, pairs * c, h, w)
        x = torch.cat([_upsample_image(image), centre, warped, self.up_hidden(hidden), all_flows], dim=1)
        return self.head(self.res(self.fuse(x))), all_flows


class CoarseToFineDecoder(nn.Module):
    """Top level at 1/16, refine levels at 1/8, 1/4, 1/2, multi-motion level at full size.

    Args:
        widths: Encoder widths (stem first), as given to ``SpikeEncoder``.
        embed_channels: HSER channels.
        hidden_channels: Upsampled hidden-state channels.
        motion_groups: Motion-field pairs at full resolution.
    """

    def __init__(
        self, widths: Sequence[int], embed_channels: int, hidden_channels: int = 8, motion_groups: int = 3
    ) -> None:
        super().__init__()
        stage_widths = list(widths[1:])
        self.top = TopLevel(3 * stage_widths[-1])
        self.levels = nn.ModuleList(
            RefineLevel(3 * stage_widths[i + 1], stage_widths[i], hidden_channels)
            for i in reversed(range(len(stage_widths) - 1))
        )
        self.full = MultiMotionLevel(3 * stage_widths[0], embed_channels, hidden_channels, motion_groups)

    def forward(
        self,
        fused: Tensor,
        centre_feats: Sequence[Tensor],
        side_feats: Sequence[Tensor],
        centre_embed: Tensor,
        side_embed: Tensor,
    ) -> list[Tensor]:
        """Decode.

        Args:
            fused: Attended 1/16 features [B, 3C, H/16, W/16].
            centre_feats: Centre-block encoder features, finest first, without the 1/16 level.
            side_feats: Side-block features (left batch, then right batch), same order.
            centre_embed: Centre HSER embedding [B, E, H, W].
            side_embed: Side HSER embeddings [2B, E, H, W].

        Returns:
            Images finest first: [full, 1/2, 1/4, 1/8, 1/16].
        """
        image, hidden, flows = self.top(fused)
        images = [image]
        up_flows = flows
        for level, centre, sides in zip(self.levels, reversed(centre_feats), reversed(side_feats)):
            image, hidden, flows, up_flows = level(image, hidden, flows, centre, sides)
            images.append(image)
        image, _ = self.full(image, hidden, flows, up_flows, centre_embed, side_embed)
        images.append(image)
        return images[::-1]
