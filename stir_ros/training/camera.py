# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Camera training scenes: a moving camera over a textured scene with independently moving objects.

The second scene model of the training data (``DataConfig.scene = "camera"``; the first, rigid
layers, is :func:`stir_ros.training.scenes.make_training_batch`). It is made to resemble the
REDS-derived validation clips, whose motion within a window is mostly small and local with a
heavy tail, and whose content is densely textured:

* the background is a crop of a photograph, downscaled per sample (detail density) and chosen
  as the most textured of a few candidates;
* the camera moves by a per-frame homography (translation, rotation, zoom, perspective), the
  identity at the centre frame, smooth in time (velocity plus acceleration), with a heavy-tailed
  magnitude: most windows move under a pixel, one in ten several pixels, up to ``max_shift``;
* a smooth random displacement field (low-resolution noise, upsampled) deforms the background
  locally, zero at the centre frame;
* 0 to ``max_objects`` objects (photograph crops cut out by soft ellipses, or real cut-outs with
  alpha) move on their own heavy-tailed trajectories in front of it and occlude it.

The centre frame, the target, is composed from the unwarped crops directly: it is sharp, with no
resampling at all. Every random draw comes from the ``torch.Generator`` passed in, in a fixed
order, so a seed gives the same batch in any process.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Unpack

import numpy as np
import torch
import torch.nn.functional as F

from stir_ros.core.errors import ConfigError
from stir_ros.core.rng import make_generator, rand
from stir_ros.core.scenes import soft_ellipses
from stir_ros.training.windows import Simulation, SpikeOptions, WindowShape

__all__ = ["CameraConfig", "CameraScene", "heavy_tail", "make_camera_batch", "render_camera_scene"]

#: Spacing in pixels of the random nodes of the non-rigid displacement field.
DEFORMATION_SPACING = 32


@dataclass(frozen=True)
class CameraConfig:
    """Parameters of the camera scene model (pixel amounts are first-to-last frame of a window).

    Attributes:
        max_objects: Independently moving objects per sample, drawn uniformly from 0..max_objects.
        texture_candidates: Crop positions drawn per layer; the most textured one is kept.
        source_size: Range of the longer side, in pixels, to which a sample's source photograph is
            downscaled (log-uniform; never enlarged unless the crop does not fit). Smaller sizes
            pack more detail into a crop.
        shift_median: Median camera translation, pixels (log-normal body of the distribution).
        shift_sigma: Log-normal sigma of the body.
        tail_prob: Probability of a tail draw: log-uniform in ``[tail_min, max_shift]``.
        tail_min: Smallest tail translation, pixels.
        max_shift: Largest camera (and object) translation, pixels.
        edge_median: Median displacement at the crop's corners due to each of rotation, zoom and
            perspective, pixels (log-normal, sigma 1, at most ``max_edge``).
        max_edge: Largest such corner displacement, pixels.
        max_deformation: Largest amplitude of the non-rigid field (uniform in ``[0, max]``), pixels.
        object_shift_median: Median translation of an object relative to the camera, pixels.
        static_prob: Probability of a window without any motion at all.
    """

    max_objects: int = 3
    texture_candidates: int = 8
    source_size: tuple[float, float] = (96.0, 320.0)
    shift_median: float = 0.4
    shift_sigma: float = 1.0
    tail_prob: float = 0.05
    tail_min: float = 4.0
    max_shift: float = 16.0
    edge_median: float = 0.15
    max_edge: float = 2.0
    max_deformation: float = 1.5
    object_shift_median: float = 0.5
    static_prob: float = 0.05

    def __post_init__(self) -> None:
        if self.max_objects < 0 or self.texture_candidates < 1:
            raise ConfigError(
                f"max_objects must be >= 0 and texture_candidates >= 1, got {self.max_objects}, "
                f"{self.texture_candidates}"
            )
        lo, hi = self.source_size
        if not 16 <= lo <= hi:
            raise ConfigError(f"source_size must be a range (lo, hi) with 16 <= lo <= hi, got {self.source_size}")
        if min(self.shift_median, self.shift_sigma, self.tail_min, self.max_edge, self.max_deformation) < 0:
            raise ConfigError("camera motion amounts must be >= 0")
        if not (0 <= self.tail_prob <= 1 and 0 <= self.static_prob <= 1):
            raise ConfigError("tail_prob and static_prob must be in [0, 1]")

    def describe(self) -> str:
        """Short description for checkpoint metadata."""
        return (
            f"camera homography shift median {self.shift_median}px, {self.tail_prob:.0%} tail "
            f"{self.tail_min}-{self.max_shift}px, non-rigid <={self.max_deformation}px, "
            f"0-{self.max_objects} objects, sources downscaled to {self.source_size[0]:g}-"
            f"{self.source_size[1]:g}px, texture candidates {self.texture_candidates}"
        )


@dataclass(frozen=True)
class CameraScene:
    """A rendered batch of camera scenes (before spikes).

    Attributes:
        frames: ``[B, T, H, W]`` intensities in [0, 1]; frame ``T // 2`` is composed without resampling.
        flow: ``[B, H, W, 2]`` (x, y) first-to-last frame displacement, in source pixels, of the
            surface visible at each pixel of the centre frame (background or the front object).
        coverage: ``[B, H, W]`` opacity of the objects in the centre frame (0: background only).
    """

    frames: torch.Tensor
    flow: torch.Tensor
    coverage: torch.Tensor


def heavy_tail(
    shape: Sequence[int], gen: torch.Generator, median: float, sigma: float, tail_prob: float,
    tail_min: float, maximum: float,
) -> torch.Tensor:  # fmt: skip
    """Heavy-tailed magnitudes ``[*shape]``, at most ``maximum``.

    Log-normal ``(median, sigma)``, or with probability ``tail_prob`` log-uniform in ``[tail_min, maximum]``.
    """
    shape = tuple(shape)
    body = median * torch.exp(sigma * rand(shape, gen, "cpu", normal=True))
    lo, hi = math.log(max(min(tail_min, maximum), 1e-6)), math.log(max(maximum, 1e-6))
    tail = torch.exp(lo + (hi - lo) * rand(shape, gen, "cpu"))
    pick = rand(shape, gen, "cpu") < tail_prob
    return torch.where(pick, tail, body).clamp(max=maximum)


def _direction(shape: Sequence[int], gen: torch.Generator) -> torch.Tensor:
    """Random unit vectors ``[*shape, 2]``."""
    phi = 2 * math.pi * rand(tuple(shape), gen, "cpu")
    return torch.stack([phi.cos(), phi.sin()], -1)


def _sign(shape: Sequence[int], gen: torch.Generator) -> torch.Tensor:
    return torch.where(rand(tuple(shape), gen, "cpu") < 0.5, -1.0, 1.0)


def _texture(patch: torch.Tensor) -> float:
    """Mean gradient magnitude of a patch (the detail density measure)."""
    gx = patch[:-1, 1:] - patch[:-1, :-1]
    gy = patch[1:, :-1] - patch[:-1, :-1]
    return float(torch.sqrt(gx * gx + gy * gy).mean())


def _source_patch(
    img: torch.Tensor, hs: int, ws: int, cfg: CameraConfig, gen: torch.Generator
) -> torch.Tensor:
    """An ``hs`` x ``ws`` crop of ``img`` after a random downscale, the most textured of a few."""
    k = cfg.texture_candidates
    draws = rand((3 + 2 * k,), gen, "cpu").tolist()
    lo, hi = cfg.source_size
    longer = math.exp(math.log(lo) + draws[0] * (math.log(hi) - math.log(lo)))
    h, w = img.shape
    f = min(1.0, longer / max(h, w))
    f = max(f, hs / h, ws / w)  # the crop must fit (f > 1: the image is enlarged)
    rh, rw = min(h, max(1, round(hs / f))), min(w, max(1, round(ws / f)))
    best, best_score = None, -1.0
    stride = max(1, round(1 / f))
    for c in range(k):
        top = int(draws[3 + 2 * c] * (h - rh + 1))
        left = int(draws[4 + 2 * c] * (w - rw + 1))
        region = img[top : top + rh, left : left + rw]
        # Candidates are scored on a strided view, about at the final scale; only the winner is resized.
        score = _texture(region[::stride, ::stride]) if k > 1 else 0.0
        if score > best_score:
            best, best_score = region, score
    assert best is not None
    if tuple(best.shape) != (hs, ws):
        # Box filter when shrinking: sharper than an antialiased bilinear one, as a camera's pixels.
        kwargs = {"mode": "area"} if f < 1 else {"mode": "bilinear", "align_corners": False}
        best = F.interpolate(best[None, None], size=(hs, ws), **kwargs)[0, 0]
    dims = [d for d, u in zip((0, 1), draws[1:3], strict=True) if u < 0.5]
    return best.flip(dims) if dims else best


def _cutout_layer(
    cutout: torch.Tensor, hs: int, ws: int, height: int, width: int, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """A gray + alpha cut-out ``[2, h, w]`` scaled and placed on an ``hs`` x ``ws`` canvas."""
    size_u, cx_u, cy_u, flip_u = rand((4,), gen, "cpu").tolist()
    ch, cw = cutout.shape[1:]
    target = (0.3 + 0.5 * size_u) * min(height, width)  # longer side of the object
    f = target / max(ch, cw)
    oh, ow = max(2, min(hs, round(ch * f))), max(2, min(ws, round(cw * f)))
    # Resized premultiplied: the colour of the transparent pixels (often black) does not bleed in.
    premultiplied = torch.stack([cutout[0] * cutout[1], cutout[1]])[None]
    obj = F.interpolate(premultiplied, size=(oh, ow), mode="bilinear", align_corners=False, antialias=f < 1)[0]
    obj[1].clamp_(0, 1)
    obj[0] = torch.where(obj[1] > 1e-4, obj[0] / obj[1].clamp(min=1e-4), 0.0).clamp(0, 1)
    if flip_u < 0.5:
        obj = obj.flip(2)
    # The object's centre lands within the middle half of the output crop.
    cy = hs / 2 + (cy_u - 0.5) * height / 2
    cx = ws / 2 + (cx_u - 0.5) * width / 2
    top = min(max(0, round(cy - oh / 2)), hs - oh)
    left = min(max(0, round(cx - ow / 2)), ws - ow)
    gray = torch.zeros(hs, ws)
    alpha = torch.zeros(hs, ws)
    gray[top : top + oh, left : left + ow] = obj[0]
    alpha[top : top + oh, left : left + ow] = obj[1]
    return gray, alpha


def render_camera_scene(
    images: Sequence[np.ndarray | torch.Tensor],
    shape: WindowShape,
    config: CameraConfig | None = None,
    generator: torch.Generator | None = None,
    cutouts: Sequence[torch.Tensor] | None = None,
    device: str | torch.device = "cpu",
) -> CameraScene:
    """Render ``shape.batch`` camera scenes of ``shape.window_length`` frames (see the module docstring).

    Args:
        images: Grayscale ``[H, W]`` photographs in [0, 1].
        shape: ``[B, T, H, W]`` of the frames; the scene is still (identity warp) at frame ``T // 2``.
        config: Scene parameters (defaults: :class:`CameraConfig`).
        generator: Random source (a CPU generator; it also drives other devices).
        cutouts: Optional ``[2, h, w]`` (gray, alpha) object cut-outs; half of the objects use one
            when given, the others are photograph crops cut out by soft ellipses.
        device: Device of the rendering and the result.

    Returns:
        A :class:`CameraScene`.
    """
    cfg = config or CameraConfig()
    if not images:
        raise ConfigError("camera scenes need at least one image")
    batch, window_length, height, width = shape
    gen = make_generator(None, generator, "cpu")
    dev = torch.device(device)
    t_len, centre = window_length, window_length // 2
    # ---- what is in the scene: per sample a background and 0..max_objects objects
    n_obj = torch.randint(cfg.max_objects + 1, (batch,), generator=gen).tolist()
    n_layers = 1 + max(n_obj)

    # ---- camera motion: a homography per frame, the identity at the centre frame
    s = (torch.arange(t_len, dtype=torch.float32) - centre) / max(t_len - 1, 1)  # [T] in [-1/2, 1/2]
    radius = 0.5 * math.hypot(height, width)
    moving = (rand((batch,), gen, "cpu") >= cfg.static_prob).float()
    mag = heavy_tail((batch,), gen, cfg.shift_median, cfg.shift_sigma, cfg.tail_prob, cfg.tail_min, cfg.max_shift)
    vel = _direction((batch,), gen) * (mag * moving)[:, None]
    acc = _direction((batch,), gen) * (mag * moving * rand((batch,), gen, "cpu"))[:, None]
    edges = heavy_tail((batch, 4), gen, cfg.edge_median, 1.0, 0.0, 0.0, cfg.max_edge) * _sign((batch, 4), gen)
    edges = edges * moving[:, None]
    # Corner displacements -> rotation (rad), log zoom and perspective terms (1/px) over the window.
    cam = _homographies(
        vel[:, None] * s[:, None] + acc[:, None] * (s * s)[:, None],
        (edges[:, 0] / radius)[:, None] * s,
        torch.exp((edges[:, 1] / radius)[:, None] * s),
        (edges[:, 2:] / (radius * radius * math.sqrt(2)))[:, None] * s[:, None],
    )  # [B, T, 3, 3]: output pixel (centred) -> source pixel (centred)

    # ---- non-rigid deformation of the background: zero at the centre frame
    nodes = (math.ceil(height / DEFORMATION_SPACING) + 1, math.ceil(width / DEFORMATION_SPACING) + 1)
    noise = rand((batch, 4, *nodes), gen, "cpu", normal=True)
    field = F.interpolate(noise, size=(height, width), mode="bicubic", align_corners=True)
    amp = cfg.max_deformation * rand((batch,), gen, "cpu") * moving
    peak = field.abs().flatten(1).amax(1).clamp(min=1e-6)
    field = field * (amp / peak)[:, None, None, None]
    field[:, 2:] *= 0.5  # the curved part of the deformation's path
    field = field.reshape(batch, 2, 2, height * width).transpose(2, 3)  # [B, linear/quadratic, HW, xy]

    # ---- objects: their own similarity motion on top of the camera's
    n_o = n_layers - 1
    o_mag = heavy_tail((batch, n_o), gen, cfg.object_shift_median, cfg.shift_sigma, cfg.tail_prob,
                       cfg.tail_min, cfg.max_shift) * moving[:, None]  # fmt: skip
    o_vel = _direction((batch, n_o), gen) * o_mag[..., None]
    o_acc = _direction((batch, n_o), gen) * (o_mag * rand((batch, n_o), gen, "cpu"))[..., None]
    o_edges = heavy_tail((batch, n_o, 2), gen, 2 * cfg.edge_median, 1.0, 0.0, 0.0, cfg.max_edge)
    o_edges = o_edges * _sign((batch, n_o, 2), gen) * moving[:, None, None]
    obj = _homographies(
        o_vel[:, :, None] * s[:, None] + o_acc[:, :, None] * (s * s)[:, None],
        (o_edges[..., 0] / radius)[..., None] * s,
        torch.exp((o_edges[..., 1] / radius)[..., None] * s),
        torch.zeros(batch, n_o, t_len, 2),
    ) @ cam[:, None]  # [B, O, T, 3, 3]

    # ---- the photographs: crops with a margin that covers the background's motion (no more: the
    # smaller the crop region, the smaller the source may be downscaled, the denser the detail)
    reach = 0.75 * mag * moving + 0.5 * edges.abs().sum(1) + 0.625 * amp  # [B] px, a bound over the window
    margin = math.ceil(float(reach.max())) + 2
    hs, ws = height + 2 * margin, width + 2 * margin
    picks = torch.randint(len(images), (batch, n_layers), generator=gen).tolist()
    use_cutout = (rand((batch, n_layers), gen, "cpu") < (0.5 if cutouts else 0.0)).tolist()
    cut_picks = torch.randint(max(len(cutouts or ()), 1), (batch, n_layers), generator=gen).tolist()
    ellipses = soft_ellipses((batch, n_layers), hs, ws, gen, "cpu")
    layers = torch.zeros(batch, n_layers, hs, ws)
    masks = torch.zeros(batch, n_layers, hs, ws)
    for i in range(batch):
        for j in range(1 + n_obj[i]):
            if j > 0 and use_cutout[i][j] and cutouts:
                layers[i, j], masks[i, j] = _cutout_layer(cutouts[cut_picks[i][j]], hs, ws, height, width, gen)
                continue
            img = torch.as_tensor(images[picks[i][j]], dtype=torch.float32)
            layers[i, j] = _source_patch(img, hs, ws, cfg, gen)
            masks[i, j] = 1.0 if j == 0 else ellipses[i, j]

    # ---- render: one grid_sample per kind of layer, every frame at once
    py = torch.arange(height, dtype=torch.float32) - (height - 1) / 2
    px = torch.arange(width, dtype=torch.float32) - (width - 1) / 2
    points = torch.stack([px.repeat(height), py.repeat_interleave(width), torch.ones(height * width)], 1)  # [HW, 3]
    bg = _apply(cam, points)  # [B, T, HW, 2] centred source pixels
    bg += s[None, :, None, None] * field[:, None, 0] + (s * s)[None, :, None, None] * field[:, None, 1]
    flow = (bg[:, -1] - bg[:, 0]).reshape(batch, height, width, 2)
    # Centred source pixels -> grid_sample's coordinates (align_corners=False): 2 x / size.
    to_grid = torch.diag(torch.tensor([2 / ws, 2 / hs, 1.0]))
    bg_grid = bg.mul_(to_grid.diagonal()[:2]).reshape(batch, t_len * height, width, 2).to(dev)
    frames = F.grid_sample(layers[:, :1].to(dev), bg_grid, mode="bilinear", padding_mode="reflection",
                           align_corners=False).reshape(batch, t_len, height, width)  # fmt: skip
    coverage = torch.zeros(batch, height, width)
    inner = (slice(None), slice(margin, margin + height), slice(margin, margin + width))
    centre_img = layers[:, 0][inner].clone()
    if n_o:
        ends = _apply(obj[:, :, [0, -1]], points)  # [B, O, 2, HW, 2]
        grid = _apply(to_grid @ obj, points).reshape(batch * n_o, t_len * height, width, 2).to(dev)
        # Premultiplied by the masks, so that resampling never mixes in what lies outside an object.
        src = torch.stack([layers[:, 1:] * masks[:, 1:], masks[:, 1:]], 2).reshape(batch * n_o, 2, hs, ws).to(dev)
        warped = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        warped = warped.reshape(batch, n_o, 2, t_len, height, width)
        for o in range(n_o):
            frames = warped[:, o, 0] + frames * (1 - warped[:, o, 1].clamp(0, 1))
            m_c = masks[:, 1 + o][inner]
            centre_img = layers[:, 1 + o][inner] * m_c + centre_img * (1 - m_c)  # as the frames: premultiplied
            o_flow = (ends[:, o, 1] - ends[:, o, 0]).reshape(batch, height, width, 2)
            flow = torch.where((m_c > 0.5)[..., None], o_flow, flow)
            coverage = torch.lerp(coverage, torch.ones(()), m_c)
    frames[:, centre] = centre_img.to(dev)  # the target: composed from the crops, without resampling
    return CameraScene(frames=frames.clamp_(0.0, 1.0), flow=flow, coverage=coverage)


def make_camera_batch(
    images: Sequence[np.ndarray | torch.Tensor],
    shape: WindowShape,
    config: CameraConfig | None = None,
    cutouts: Sequence[torch.Tensor] | None = None,
    **options: Unpack[SpikeOptions],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Camera-scene training windows, as :func:`stir_ros.training.scenes.make_training_batch` returns them.

    ``options``: how the frames become spikes, and where (:class:`~stir_ros.training.windows.Simulation`).

    Returns:
        ``(spikes [B, T, H, W] float32 0/1, gt [B, 1, H, W] float32)`` on ``device``: the spikes of
        :func:`render_camera_scene`'s frames and its centre frame.
    """
    sim = Simulation(**options)
    gen = sim.random_source()
    scene = render_camera_scene(images, shape, config, gen, cutouts, sim.device)
    centre = shape.window_length // 2
    return sim.spikes(scene.frames, gen), scene.frames[:, centre : centre + 1].contiguous()


def _homographies(
    shift: torch.Tensor, angle: torch.Tensor, zoom: torch.Tensor, perspective: torch.Tensor
) -> torch.Tensor:
    """``[..., 3, 3]`` matrices ``[[z cos, -z sin, x], [z sin, z cos, y], [px, py, 1]]``."""
    cos, sin = zoom * angle.cos(), zoom * angle.sin()
    one = torch.ones_like(cos)
    rows = [
        torch.stack([cos, -sin, shift[..., 0]], -1),
        torch.stack([sin, cos, shift[..., 1]], -1),
        torch.stack([perspective[..., 0], perspective[..., 1], one], -1),
    ]
    return torch.stack(rows, -2)


def _apply(matrices: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Map homogeneous ``points [N, 3]`` by ``matrices [..., 3, 3]``: ``[..., N, 2]`` (x, y)."""
    q = matrices.reshape(-1, 3, 3) @ points.T  # [M, 3, N]: one plain batched product (fastest)
    xy = q[:, :2] / q[:, 2:]
    return xy.transpose(1, 2).reshape(*matrices.shape[:-2], points.shape[0], 2)
