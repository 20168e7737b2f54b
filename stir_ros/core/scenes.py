# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Moving synthetic scenes: what the simulator turns into spikes for the driver's ``sim`` source.

Still images (a background and optional foreground layers with soft masks) are moved along smooth
trajectories and rendered with ``grid_sample``, batched and on any device. :class:`MovingScene`
is the endless scene of the camera driver's simulated source; images default to
:func:`synthetic_image` (no files at all). The training data (random crops of photographs along
random trajectories) is made from the same pieces in :mod:`stir_ros.training.scenes`.

Everything is seeded through ``torch.Generator`` and deterministic for a given device.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from stir_ros.core.errors import ConfigError, SpikeFormatError
from stir_ros.core.rng import make_generator, rand

__all__ = [
    "MovingScene",
    "Trajectory",
    "render_moving_layers",
    "soft_ellipses",
    "synthetic_image",
]


# --------------------------------------------------------------------------- images


def synthetic_image(height: int, width: int, seed: int | None = None) -> np.ndarray:
    """A textured, natural-looking grayscale image that needs no dataset.

    Sum of a gradient, smooth blobs, anti-aliased discs and rectangles (sharp edges), windowed
    sinusoidal gratings and 1/f noise, scaled to [0.05, 0.95].

    Returns:
        float32 array ``[height, width]``.
    """
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    size = float(max(height, width))
    img = rng.uniform(-1, 1) * x / size + rng.uniform(-1, 1) * y / size
    for _ in range(rng.integers(10, 25)):  # smooth blobs
        cx, cy, s = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(0.03, 0.2) * size
        img += rng.uniform(-0.6, 0.6) * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * s * s))
    for _ in range(rng.integers(4, 10)):  # shapes with one-pixel anti-aliased edges
        cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(0.03, 0.15) * size
        if rng.random() < 0.5:
            dist = np.hypot(x - cx, y - cy) - r
        else:
            dist = np.maximum(np.abs(x - cx) - r, np.abs(y - cy) - rng.uniform(0.3, 1.5) * r)
        img += rng.uniform(-0.5, 0.5) * np.clip(0.5 - dist, 0.0, 1.0)
    for _ in range(rng.integers(1, 4)):  # windowed gratings
        theta, period = rng.uniform(0, np.pi), rng.uniform(4, 24)
        cx, cy, s = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(0.08, 0.2) * size
        wave = np.sin(2 * np.pi * (x * np.cos(theta) + y * np.sin(theta)) / period + rng.uniform(0, 6.3))
        img += 0.2 * wave * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * s * s))
    fy, fx = np.fft.fftfreq(height)[:, None], np.fft.rfftfreq(width)[None, :]
    shape = (height, fx.shape[1])
    spectrum = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    noise = np.fft.irfft2(spectrum / np.maximum(np.hypot(fx, fy), 1.0 / size), s=(height, width))
    img += 0.15 * noise / (noise.std() + 1e-12) * img.std()
    img = (img - img.min()) / (img.max() - img.min() + 1e-12)
    return (0.05 + 0.9 * img).astype(np.float32)


# --------------------------------------------------------------------------- motion and rendering


@dataclass(frozen=True)
class Trajectory:
    """Per-frame similarity transforms of a layer.

    The output pixel at ``p`` (relative to the output centre) shows the source pixel at ``centre + shift + scale * R(angle) p``.

    Attributes:
        shift: ``[..., T, 2]`` (x, y) offset in source pixels.
        angle: ``[..., T]`` rotation in radians.
        scale: ``[..., T]`` zoom factor (1 = none).
    """

    shift: torch.Tensor
    angle: torch.Tensor
    scale: torch.Tensor


def render_moving_layers(
    layers: torch.Tensor,
    trajectory: Trajectory,
    height: int,
    width: int,
    masks: torch.Tensor | None = None,
    mode: str = "bilinear",
) -> torch.Tensor:
    """Render moving layers, composited back to front, for every frame of the trajectories.

    Args:
        layers: ``[B, L, Hs, Ws]`` source images; layer 0 is the background. Sources larger than
            the output by an even margin keep pixel centres aligned at the identity transform.
        trajectory: Shapes ``[B, L, T, ...]``: one motion per layer.
        height: Output height.
        width: Output width.
        masks: ``[B, L, Hs, Ws]`` opacity in [0, 1] moving with each layer (layer 0's is ignored);
            ``None`` makes every layer opaque.
        mode: ``grid_sample`` interpolation (``"bilinear"`` or ``"bicubic"``).

    Returns:
        ``[B, T, H, W]`` intensities on the device of ``layers``.
    """
    if layers.ndim != 4:
        raise SpikeFormatError(f"layers must be [B, L, Hs, Ws], got {tuple(layers.shape)}")
    b, n_layers, hs, ws = layers.shape
    dev = layers.device
    shift, angle, scale = (t.to(dev) for t in (trajectory.shift, trajectory.angle, trajectory.scale))
    t_len = angle.shape[-1]
    # The similarity transform in grid_sample's normalised coordinates (align_corners=False, where
    # a centred pixel offset p is u * size / 2): one affine_grid call builds every frame's grid.
    cos, sin = scale * angle.cos(), scale * angle.sin()
    theta = torch.stack(
        [
            torch.stack([cos * width / ws, -sin * height / ws, 2 * shift[..., 0] / ws], -1),
            torch.stack([sin * width / hs, cos * height / hs, 2 * shift[..., 1] / hs], -1),
        ],
        -2,
    ).reshape(-1, 2, 3)
    grid = F.affine_grid(theta.float(), [theta.shape[0], 1, height, width], align_corners=False)
    # Stack the T frames vertically so that one grid_sample call warps every frame of a layer.
    grid = grid.reshape(b * n_layers, t_len * height, width, 2)
    src = layers if masks is None else torch.stack([layers, masks.to(layers)], 2)
    src = src.reshape(b * n_layers, -1, hs, ws).float()
    warped = F.grid_sample(src, grid, mode=mode, padding_mode="reflection", align_corners=False)
    warped = warped.reshape(b, n_layers, -1, t_len, height, width)
    out = warped[:, 0, 0]
    for layer in range(1, n_layers):
        if masks is None:
            out = warped[:, layer, 0]
        else:
            m = warped[:, layer, 1].clamp(0, 1)
            out = warped[:, layer, 0] * m + out * (1 - m)
    return out


def soft_ellipses(shape: Sequence[int], hs: int, ws: int, gen: torch.Generator, device: Any) -> torch.Tensor:
    """Random soft-edged ellipse masks ``[*shape, hs, ws]`` near the centre (foreground objects)."""
    shape = tuple(shape)
    size = min(hs, ws)
    cx = ws / 2 + (rand(shape, gen, device) - 0.5) * ws / 2
    cy = hs / 2 + (rand(shape, gen, device) - 0.5) * hs / 2
    ax = size * (0.12 + 0.25 * rand(shape, gen, device))
    ay = size * (0.12 + 0.25 * rand(shape, gen, device))
    rot = math.pi * rand(shape, gen, device)
    y = torch.arange(hs, dtype=torch.float32, device=device)[:, None]
    x = torch.arange(ws, dtype=torch.float32, device=device)[None, :]
    e = lambda t: t[..., None, None]  # noqa: E731 - broadcast over the image
    dx, dy = x - e(cx), y - e(cy)
    u = (dx * e(rot.cos()) + dy * e(rot.sin())) / e(ax)
    v = (-dx * e(rot.sin()) + dy * e(rot.cos())) / e(ay)
    # The edge is about 1.5 pixels wide: sharp like an object boundary, still anti-aliased.
    return torch.sigmoid((1 - torch.sqrt(u * u + v * v)) * e(torch.minimum(ax, ay)) / 0.75)


def _cover(img: torch.Tensor, hs: int, ws: int) -> torch.Tensor:
    """Resize ``img`` [H, W] to cover ``hs`` x ``ws`` keeping its aspect ratio, then centre-crop."""
    f = max(hs / img.shape[0], ws / img.shape[1])
    size = (max(hs, round(img.shape[0] * f)), max(ws, round(img.shape[1] * f)))
    mode = "area" if f < 1 else "bilinear"
    kwargs = {} if mode == "area" else {"align_corners": False}
    img = F.interpolate(img[None, None], size=size, mode=mode, **kwargs)[0, 0]
    top, left = (size[0] - hs) // 2, (size[1] - ws) // 2
    return img[top : top + hs, left : left + ws]


class MovingScene:
    """An endless moving scene for the camera driver's ``sim`` source.

    A background and ``num_foregrounds`` masked foreground layers (from ``images`` or
    :func:`synthetic_image`) drift along smooth, bounded paths: per layer and axis a sum of two
    sinusoids, at most ``amplitude`` pixels (per axis) from the centre, peak speed ``max_speed``
    pixels per frame. Any frame range can be rendered, in any order, with the same result.

    Rendering every frame costs a few ms per 250x400 frame on a CPU core, so by default only
    every ``keyframe_stride``-th frame is rendered and the frames between are blended linearly;
    at the default speed keyframes are under a pixel apart.
    """

    def __init__(
        self,
        height: int,
        width: int,
        images: Sequence[np.ndarray] | None = None,
        num_foregrounds: int = 1,
        amplitude: float = 12.0,
        max_speed: float = 0.05,
        keyframe_stride: int = 16,
        seed: int | None = 0,
        device: str | torch.device = "cpu",
    ) -> None:
        if height <= 0 or width <= 0:
            raise ConfigError(f"scene size must be positive, got {height}x{width}")
        if keyframe_stride < 1 or num_foregrounds < 0 or amplitude < 0 or max_speed < 0:
            raise ConfigError(
                "keyframe_stride must be >= 1 and num_foregrounds, amplitude, max_speed >= 0, got "
                f"{keyframe_stride}, {num_foregrounds}, {amplitude}, {max_speed}"
            )
        self.height, self.width, self.device = int(height), int(width), torch.device(device)
        self.keyframe_stride = int(keyframe_stride)
        gen = make_generator(seed, None, "cpu")
        margin = math.ceil(amplitude) + 2
        hs, ws = self.height + 2 * margin, self.width + 2 * margin
        n = 1 + num_foregrounds
        layer_seeds = torch.randint(2**31 - 1, (n,), generator=gen).tolist()
        sources = list(images) if images else [synthetic_image(hs, ws, s) for s in layer_seeds]
        layers = [
            _cover(torch.as_tensor(np.asarray(sources[k % len(sources)]), dtype=torch.float32), hs, ws)
            for k in range(n)
        ]
        self.layers = torch.stack(layers)[None].to(self.device)  # [1, L, Hs, Ws]
        self.masks = soft_ellipses((1, n), hs, ws, gen, "cpu").to(self.device) if n > 1 else None
        # Two sinusoids per layer and axis, the second 1.3-2.3x faster so that the path does not
        # repeat; their peak speeds add up to max_speed.
        self._amp = amplitude / 2
        ratio = 1.3 + rand((n, 2), gen, "cpu")
        base = max_speed / (max(self._amp, 1e-9) * (1 + ratio))
        self._freq = torch.stack([base, base * ratio], -1).double()  # [L, 2 axes, 2 waves], rad/frame
        self._phase = (2 * math.pi * rand((n, 2, 2), gen, "cpu")).double()

    def trajectory(self, frames: torch.Tensor) -> Trajectory:
        """Trajectories ``[1, L, len(frames)]`` of the given frame indices."""
        t = frames.double()
        # float64 phases: frame indices grow large in long streams.
        waves = torch.sin(t * self._freq[..., None] + self._phase[..., None])  # [L, 2, 2, T]
        shift = (self._amp * waves.sum(2)).float().transpose(1, 2)  # [L, T, 2]
        n, count = shift.shape[:2]
        return Trajectory(shift=shift[None], angle=torch.zeros(1, n, count), scale=torch.ones(1, n, count))

    def render(self, start: int, count: int) -> torch.Tensor:
        """Ground-truth intensities ``[count, H, W]`` in [0, 1] of frames ``start ... start+count-1``."""
        if start < 0 or count < 1:
            raise ConfigError(f"render needs start >= 0 and count >= 1, got {start}, {count}")
        s = self.keyframe_stride
        first, last = start // s, (start + count - 1) // s + (1 if s > 1 else 0)
        keys = torch.arange(first, last + 1) * s
        out = render_moving_layers(self.layers, self.trajectory(keys), self.height, self.width, self.masks)[0]
        if s > 1:
            frames = torch.arange(start, start + count)
            k = frames // s - first
            w = ((frames % s).float() / s).to(self.device)[:, None, None]
            k = k.to(self.device)
            out = torch.lerp(out[k], out[k + 1], w)
        return out.clamp_(0.0, 1.0)
