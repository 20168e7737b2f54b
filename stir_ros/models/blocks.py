# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Small building blocks shared by the STIR modules.

Convolution helpers, the two residual blocks the network uses, transposed-convolution
upsampling, the tail-copy padding that makes any frame size a multiple of 16, and backward
warping with a sampling grid cached on the input's device.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "ConvAct",
    "ConvBNResidual",
    "ResidualBlock",
    "BackwardWarp",
    "upconv",
    "conv3x3",
    "pad_tail",
]


def conv3x3(in_channels: int, out_channels: int, *, stride: int = 1, bias: bool = True) -> nn.Conv2d:
    """3x3 convolution with 'same' padding (halves the size when ``stride=2``)."""
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=bias)


class Float32Conv2d(nn.Conv2d):
    """A convolution that computes in float32 whatever the dtype of its weights and input (outside autocast).

    For the layer that makes the image: in bf16 an intensity near 1 is good to 1/256, noise that cost
    torch bf16 0.04 dB on clips reconstructed at 40 dB (BENCHMARKS.md, issue 29). Its parameters are
    ``nn.Conv2d``'s, so checkpoints load unchanged; in fp32 it is ``nn.Conv2d``. Under
    ``torch.autocast`` (training) it runs as autocast decides, so training is unchanged.
    """

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        if torch.is_autocast_enabled(x.device.type):
            return super().forward(x)
        bias = None if self.bias is None else self.bias.float()
        return self._conv_forward(x.float(), self.weight.float(), bias)


def upconv(in_channels: int, out_channels: int) -> nn.ConvTranspose2d:
    """Learned 2x upsampling: 4x4 transposed convolution, stride 2, padding 1."""
    return nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1)


class ConvAct(nn.Module):
    """Convolution followed by PReLU.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        kernel_size: Odd kernel size; padding keeps the size (divided by ``stride``).
        stride: Convolution stride.
        act_channels: PReLU slopes: ``None`` learns one per output channel, ``1`` a single
            shared slope (the encoder uses shared slopes, the decoder per-channel ones).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        kernel_size: int = 3,
        stride: int = 1,
        act_channels: int | None = None,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride=stride, padding=(kernel_size - 1) // 2
        )
        self.act = nn.PReLU(out_channels if act_channels is None else act_channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.conv(x))


class ResidualBlock(nn.Module):
    """Identity-skip residual block: ``x + conv(relu(conv(x)))``, no activation after the sum."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = conv3x3(channels, channels)
        self.conv2 = conv3x3(channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


class ConvBNResidual(nn.Module):
    """Residual block with batch norm and a 1x1 projection skip (used on raw spike frames).

    ``relu(bn2(conv2(relu(bn1(conv1(x))))) + proj(x))``.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_channels, out_channels)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = conv3x3(out_channels, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.proj = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.proj(x))


def pad_tail(x: Tensor, multiple: int) -> tuple[Tensor, int, int]:
    """Pad the last two dims up to a multiple by appending copies of the last rows/columns.

    This is the authors' convention (250 rows become 256 by appending rows 244..249 again), so
    the official weights see the border they were evaluated with. Where a dimension is shorter
    than its padding (frames under 16 pixels) the remainder is edge-replicated.

    Returns:
        The padded tensor and the original height and width, for cropping back.
    """
    h, w = x.shape[-2], x.shape[-1]
    pad_h, pad_w = -h % multiple, -w % multiple
    if pad_h:
        x = torch.cat([x, x[..., max(h - pad_h, 0) :, :]], dim=-2)
        if pad_h > h:
            x = torch.cat([x, x[..., -1:, :].expand(*x.shape[:-2], pad_h - h, x.shape[-1])], dim=-2)
    if pad_w:
        x = torch.cat([x, x[..., max(w - pad_w, 0) :]], dim=-1)
        if pad_w > w:
            x = torch.cat([x, x[..., -1:].expand(*x.shape[:-1], pad_w - w)], dim=-1)
    return x, h, w


class BackwardWarp(nn.Module):
    """Sample a feature map at positions displaced by a flow field (bilinear, border padding).

    Output pixel (i, j) reads ``feat`` at (i + flow_y, j + flow_x), in pixels. The identity
    grid is built on the flow's device and dtype once per (H, W, device, dtype) and reused,
    so the forward pass creates no host tensors (CUDA graphs can capture it). Under
    ``torch.compile`` the grid is built inline instead, which the compiler folds.

    Sampling positions are always computed, and sampled, in float32: in half precision a
    grid coordinate near 1.0 is only good to 1/1024 (bf16: 1/128), a pixel or more on wide
    frames. The result is cast back to ``feat``'s dtype.
    """

    _MAX_CACHED = 16

    def __init__(self) -> None:
        super().__init__()
        self._grids: dict[tuple[int, int, torch.device, torch.dtype], Tensor] = {}

    def _identity_grid(self, h: int, w: int, ref: Tensor) -> Tensor:
        key = (h, w, ref.device, ref.dtype)
        # Compiling or exporting to ONNX: build the grid in the graph (a cached one would become a
        # constant of one size).
        compiling = torch.compiler.is_compiling() or torch.onnx.is_in_onnx_export()
        grid = None if compiling else self._grids.get(key)
        if grid is None:
            xs = torch.linspace(-1.0, 1.0, w, device=ref.device, dtype=ref.dtype)
            ys = torch.linspace(-1.0, 1.0, h, device=ref.device, dtype=ref.dtype)
            grid = torch.stack([xs.expand(h, w), ys[:, None].expand(h, w)], dim=-1)[None]
            if not compiling:
                if len(self._grids) >= self._MAX_CACHED:
                    self._grids.pop(next(iter(self._grids)))
                self._grids[key] = grid
        return grid

    def forward(self, feat: Tensor, flow: Tensor) -> Tensor:
        """Warp ``feat`` [N, C, H, W] with ``flow`` [N, 2, H, W] (x then y displacement, pixels)."""
        h, w = flow.shape[-2], flow.shape[-1]
        flow = flow.float()
        # Same normalisation as align_corners=True: one pixel is 2 / (size - 1) grid units.
        offset = torch.stack([flow[:, 0] / ((w - 1.0) / 2.0), flow[:, 1] / ((h - 1.0) / 2.0)], dim=-1)
        grid = self._identity_grid(h, w, offset) + offset
        out = F.grid_sample(feat.float(), grid, mode="bilinear", padding_mode="border", align_corners=True)
        return out.to(feat.dtype)
