# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Training windows from real video: two frames of a clip and the optical flow between them.

A spike window lasts a few milliseconds, far less than the time between two video frames, so a
window is rendered *between* two frames ``A`` (time 0) and ``B`` (time 1) of a clip, ``gap``
frames apart. Dense optical flow both ways (OpenCV's DIS) gives every intermediate frame at
time ``t`` as the blend of ``A`` and ``B`` warped by the intermediate flows
``F_t0 = -(1-t) t F_01 + t^2 F_10`` and ``F_t1 = (1-t)^2 F_01 - t (1-t) F_10`` (the linear
motion approximation of Jiang et al., Super SloMo, CVPR 2018), weighted ``1-t`` and ``t``.
The motion, its parallax, the objects that move on their own and their occlusions are the
clip's own; only the sub-frame timing is interpolated.

A window covers the times ``tc + s (j / (T-1) - 1/2)``, ``j = 0 .. T-1``: its centre ``tc`` is
the target (frame ``T // 2``, rendered by the same formula, so input and target agree), and its
span ``s <= 1`` is drawn so that the fastest part of the crop (99th percentile of ``|F_01|``)
moves at most a displacement drawn uniformly up to ``max_displacement``. The window never
extrapolates past ``A`` or ``B``, so the motion is never larger than the clip's own.

Clips are folders of frames (``stir-ros data --videos`` writes them) loaded by
:func:`~stir_ros.training.sources.load_clips`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Unpack

import numpy as np
import torch
import torch.nn.functional as F

from stir_ros.core.errors import ConfigError
from stir_ros.core.rng import rand
from stir_ros.training.scenes import mean_gradient
from stir_ros.training.windows import Simulation, SpikeOptions, WindowShape

__all__ = ["interpolate_frames", "make_video_batch", "optical_flow", "warp"]

MAX_GAP = 3
"""Largest distance, in video frames, between the two frames a window is rendered between."""


def optical_flow(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Dense flow from ``a`` to ``b`` (``[H, W]`` in [0, 1]): ``[H, W, 2]`` (x, y), ``a(p) ~ b(p + flow(p))``."""
    try:
        import cv2
    except ImportError as err:  # pragma: no cover - opencv comes with the test requirements
        raise ConfigError("video scenes need OpenCV (pip install opencv-python-headless)") from err
    cv2.setNumThreads(1)  # training data is made on one core per process, beside the training threads
    a8 = np.round(a.numpy() * 255).astype(np.uint8)
    b8 = np.round(b.numpy() * 255).astype(np.uint8)
    dis = cv2.DISOpticalFlow.create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    flow = dis.calc(a8, b8, np.zeros((*a8.shape, 2), np.float32))  # the output buffer; not an initial guess
    return torch.from_numpy(np.asarray(flow, dtype=np.float32))


def warp(img: torch.Tensor, flow: torch.Tensor, top: int, left: int) -> torch.Tensor:
    """Sample ``img [H, W]`` at ``p + flow(p)`` for the pixels ``p`` of ``flow [N, h, w, 2]`` at (top, left)."""
    n, h, w, _ = flow.shape
    big_h, big_w = img.shape
    ys = torch.arange(top, top + h, dtype=torch.float32)
    xs = torch.arange(left, left + w, dtype=torch.float32)
    gx = (xs[None, None, :] + flow[..., 0] + 0.5) * (2.0 / big_w) - 1.0
    gy = (ys[None, :, None] + flow[..., 1] + 0.5) * (2.0 / big_h) - 1.0
    grid = torch.stack([gx, gy], -1)
    out = F.grid_sample(img[None, None].expand(n, 1, -1, -1), grid, mode="bilinear", padding_mode="border",
                        align_corners=False)  # fmt: skip
    return out[:, 0]


def interpolate_frames(
    a: torch.Tensor,
    b: torch.Tensor,
    flow_ab: torch.Tensor,
    flow_ba: torch.Tensor,
    times: torch.Tensor,
    top: int = 0,
    left: int = 0,
    size: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Frames at ``times`` (``[T]`` in [0, 1]) between ``a`` (0) and ``b`` (1), cropped to ``size`` at (top, left).

    Args:
        a: First frame ``[H, W]``.
        b: Second frame ``[H, W]``.
        flow_ab: :func:`optical_flow` ``(a, b)``.
        flow_ba: :func:`optical_flow` ``(b, a)``.
        times: Times of the frames; 0 gives ``a`` and 1 gives ``b`` exactly.
        top: Row of the crop.
        left: Column of the crop.
        size: ``(h, w)`` of the crop (default: the whole frame).

    Returns:
        ``[T, h, w]`` float32.
    """
    h, w = size or tuple(a.shape)
    f01 = flow_ab[top : top + h, left : left + w][None]
    f10 = flow_ba[top : top + h, left : left + w][None]
    t = times.to(torch.float32)[:, None, None, None]
    f_t0 = -(1 - t) * t * f01 + t * t * f10
    f_t1 = (1 - t) ** 2 * f01 - t * (1 - t) * f10
    tt = t[..., 0]
    return (1 - tt) * warp(a, f_t0, top, left) + tt * warp(b, f_t1, top, left)


def make_video_batch(
    clips: Sequence[torch.Tensor],
    shape: WindowShape,
    max_displacement: float = 16.0,
    texture_candidates: int = 1,
    target_offset: float = 0.0,
    **options: Unpack[SpikeOptions],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Training windows rendered between two frames of real clips (see the module's docstring).

    Args:
        clips: ``[N, H, W]`` frame stacks in [0, 1] (:func:`~stir_ros.training.sources.load_clips`); frames smaller than the
            crop are enlarged.
        shape: ``[B, T, H, W]`` of the spikes; the ground truth is at frame ``T // 2``.
        max_displacement: Largest first-to-last-frame displacement of the fastest part of a crop
            (the drawn displacement is uniform up to this; the clip's own motion caps it).
        texture_candidates: Crop positions drawn; the most textured (in frame ``A``) is used.
        target_offset: Time of the ground truth after the centre frame ``T // 2``, in frames.
        **options: How the frames become spikes, and where (:class:`~stir_ros.training.windows.Simulation`).

    Returns:
        ``(spikes [B, T, H, W] float32 0/1, gt [B, 1, H, W] float32)`` on ``device``.
    """
    if not clips:
        raise ConfigError("make_video_batch needs at least one clip")
    if texture_candidates < 1:
        raise ConfigError(f"texture_candidates must be >= 1, got {texture_candidates}")
    batch, window_length, height, width = shape
    sim = Simulation(**options)
    gen = sim.random_source()
    frames_out = []
    for _ in range(batch):
        c = int(torch.randint(len(clips), (), generator=gen))
        clip = clips[c]
        gap = int(torch.randint(1, min(MAX_GAP, clip.shape[0] - 1) + 1, (), generator=gen))
        i = int(torch.randint(clip.shape[0] - gap, (), generator=gen))
        u_rev, u_disp, u_centre, u_fy, u_fx = rand((5,), gen, "cpu").tolist()
        a, b = clip[i], clip[i + gap]
        if u_rev < 0.5:  # time reversed: the same clip, played backwards
            a, b = b, a
        if a.shape[0] < height or a.shape[1] < width:
            f = max(height / a.shape[0], width / a.shape[1])
            size = (math.ceil(a.shape[0] * f), math.ceil(a.shape[1] * f))
            a, b = (F.interpolate(x[None, None], size=size, mode="bilinear", align_corners=False)[0, 0] for x in (a, b))
        best = None
        for top_f, left_f in rand((texture_candidates, 2), gen, "cpu").tolist():
            top = int(top_f * (a.shape[0] - height + 1))
            left = int(left_f * (a.shape[1] - width + 1))
            score = mean_gradient(a[top : top + height, left : left + width]) if texture_candidates > 1 else 0.0
            if best is None or score > best[0]:
                best = (score, top, left)
        assert best is not None
        _, top, left = best
        flow_ab, flow_ba = optical_flow(a, b), optical_flow(b, a)
        speed = flow_ab[top : top + height, left : left + width].norm(dim=-1)
        fastest = float(torch.quantile(speed.flatten(), 0.99))
        span = min(1.0, u_disp * max_displacement / max(fastest, 1e-6))
        centre = span / 2 + u_centre * (1 - span)
        frame = torch.arange(window_length + 1, dtype=torch.float32) - window_length // 2 - target_offset
        times = centre + span * frame / max(1, window_length - 1)
        times[-1] = centre  # the target, kept in one more slot after the window's frames
        window = interpolate_frames(a, b, flow_ab, flow_ba, times.clamp(0, 1), top, left, (height, width))
        dims = [d for d, u in ((1, u_fy), (2, u_fx)) if u < 0.5]
        frames_out.append(window.flip(dims) if dims else window)
    intensity = torch.stack(frames_out).to(sim.device).clamp_(0.0, 1.0)
    return sim.spikes(intensity[:, :window_length], gen), intensity[:, window_length:].contiguous()
