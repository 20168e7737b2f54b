# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Symmetric interactive attention between the centre block and its two neighbours.

Channel-wise ("transposed", Restormer-style) attention: each head builds a C/h x C/h attention
map from L2-normalised queries and keys over all pixels, scaled by a learned per-head
temperature. The centre block's features supply the queries; the left and right blocks supply
keys and values, each through their own projections.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ChannelLayerNorm", "GatedDconvFFN", "SymmetricCrossAttention", "SymmetricInteractionBlock"]


class ChannelLayerNorm(nn.Module):
    """Layer norm over the channel dim of an NCHW tensor (biased variance, eps 1e-5)."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps
        self.channels = channels  # a Python int: stays a constant when traced for ONNX export

    def forward(self, x: Tensor) -> Tensor:
        y = F.layer_norm(x.permute(0, 2, 3, 1), (self.channels,), self.weight, self.bias, self.eps)
        return y.permute(0, 3, 1, 2)


class GatedDconvFFN(nn.Module):
    """Feed-forward: 1x1 expand to two branches, 3x3 depthwise, ``gelu(a) * b``, 1x1 back."""

    def __init__(self, channels: int, expansion: float = 2.66) -> None:
        super().__init__()
        hidden = int(channels * expansion)
        self.proj_in = nn.Conv2d(channels, 2 * hidden, 1, bias=False)
        self.dwconv = nn.Conv2d(2 * hidden, 2 * hidden, 3, padding=1, groups=2 * hidden, bias=False)
        self.proj_out = nn.Conv2d(hidden, channels, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        gate, value = self.dwconv(self.proj_in(x)).chunk(2, dim=1)
        return self.proj_out(F.gelu(gate) * value)


def _channel_attention(q: Tensor, k: Tensor, v: Tensor, heads: int, temperature: Tensor) -> Tensor:
    """Transposed attention of q, k, v [B, C, H, W] with ``heads`` heads -> [B, C, H, W]."""
    b, c, h, w = q.shape
    q, k, v = (t.reshape(b, heads, c // heads, h * w) for t in (q, k, v))
    q = F.normalize(q, dim=-1)
    k = F.normalize(k, dim=-1)
    attn = (q @ k.transpose(-2, -1) * temperature).softmax(dim=-1)
    return (attn @ v).reshape(b, c, h, w)


class SymmetricCrossAttention(nn.Module):
    """Centre queries attend to the left and to the right block (two maps, two temperatures).

    The query projection yields 2C channels (one half per side) through a 1x1 conv and a
    grouped 3x3 conv with two channels per group; keys and values come from a 1x1 conv and a
    depthwise 3x3 conv per side.
    """

    def __init__(self, channels: int, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.temperature_left = nn.Parameter(torch.ones(heads, 1, 1))
        self.temperature_right = nn.Parameter(torch.ones(heads, 1, 1))
        self.query = nn.Conv2d(channels, 2 * channels, 1, bias=False)
        self.kv_left = nn.Conv2d(channels, 2 * channels, 1, bias=False)
        self.kv_right = nn.Conv2d(channels, 2 * channels, 1, bias=False)
        self.query_dw = nn.Conv2d(2 * channels, 2 * channels, 3, padding=1, groups=channels, bias=False)
        self.kv_left_dw = nn.Conv2d(2 * channels, 2 * channels, 3, padding=1, groups=2 * channels, bias=False)
        self.kv_right_dw = nn.Conv2d(2 * channels, 2 * channels, 3, padding=1, groups=2 * channels, bias=False)

    def forward(self, centre: Tensor, left: Tensor, right: Tensor) -> tuple[Tensor, Tensor]:
        q_left, q_right = self.query_dw(self.query(centre)).chunk(2, dim=1)
        k_left, v_left = self.kv_left_dw(self.kv_left(left)).chunk(2, dim=1)
        k_right, v_right = self.kv_right_dw(self.kv_right(right)).chunk(2, dim=1)
        out_left = _channel_attention(q_left, k_left, v_left, self.heads, self.temperature_left)
        out_right = _channel_attention(q_right, k_right, v_right, self.heads, self.temperature_right)
        return out_left, out_right


class SymmetricInteractionBlock(nn.Module):
    """Normalise, cross-attend, then ``[FFN(attended left), centre, FFN(attended right)]``.

    One norm + FFN pair is shared by both attended outputs; the output has 3C channels.
    """

    def __init__(self, channels: int, heads: int = 4, ffn_expansion: float = 2.66) -> None:
        super().__init__()
        self.norm_centre = ChannelLayerNorm(channels)
        self.norm_left = ChannelLayerNorm(channels)
        self.norm_right = ChannelLayerNorm(channels)
        self.attn = SymmetricCrossAttention(channels, heads)
        self.norm_ffn = ChannelLayerNorm(channels)
        self.ffn = GatedDconvFFN(channels, ffn_expansion)

    def forward(self, centre: Tensor, left: Tensor, right: Tensor) -> Tensor:
        att_left, att_right = self.attn(self.norm_centre(centre), self.norm_left(left), self.norm_right(right))
        # Both sides share the FFN: run it once on the pair stacked along the batch.
        n = centre.shape[0]
        ffn_out = self.ffn(self.norm_ffn(torch.cat([att_left, att_right], dim=0)))
        return torch.cat([ffn_out[:n], centre, ffn_out[n:]], dim=1)
