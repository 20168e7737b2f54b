# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Training scenes: random crops of photographs moved along random trajectories, as spikes.

:func:`make_training_batch` picks crops (optionally the most textured of a few) of natural images
(:func:`~stir_ros.training.sources.load_images`: scikit-image's bundled photographs or a folder of the
user's), moves each
layer along a :func:`random_trajectory` that is the identity at its centre frame, renders them with
the scene code of the core (:mod:`stir_ros.core.scenes`) and simulates the spikes. The ground truth
of a window is therefore the unwarped image crop itself, without interpolation blur.

Everything is seeded through ``torch.Generator`` and deterministic for a given device.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Unpack

import numpy as np
import torch
import torch.nn.functional as F

from stir_ros.core.errors import ConfigError
from stir_ros.core.rng import make_generator, rand
from stir_ros.core.scenes import Trajectory, render_moving_layers, soft_ellipses
from stir_ros.training.windows import Simulation, SpikeOptions, WindowShape

__all__ = ["make_training_batch", "mean_gradient", "random_trajectory"]

# --------------------------------------------------------------------------- motion and crops


def random_trajectory(
    num_frames: int,
    *,
    max_displacement: float = 4.0,
    max_rotation: float = 0.0,
    max_zoom: float = 0.0,
    static_prob: float = 0.1,
    motion: str = "uniform",
    min_displacement: float = 0.0,
    batch_shape: Sequence[int] = (),
    centre: float | None = None,
    curvature: float = 1.0,
    generator: torch.Generator | None = None,
    seed: int | None = None,
    device: str | torch.device = "cpu",
) -> Trajectory:
    """Smooth random motion that is the identity at the ``centre`` frame.

    The shift is ``v s + a s^2`` in normalised time ``s = (t - centre) / (num_frames - 1)``: the
    first-to-last frame displacement is ``|v| <= max_displacement`` pixels, with a curved path.
    Defaults resemble the REDS-derived spike sets: a few pixels over a 61-frame window at most,
    and a fraction ``static_prob`` of static windows.

    Args:
        num_frames: Frames T.
        max_displacement: Largest first-to-last frame shift in pixels.
        max_rotation: Largest first-to-last frame rotation in radians.
        max_zoom: Largest first-to-last relative zoom (0.1 = 10 %).
        static_prob: Probability of a trajectory without any motion.
        motion: ``"uniform"``: the displacement is uniform in a disc of ``max_displacement``.
            ``"heavy-tail"``: like real video at spike-camera rates, most layers move little (disc
            radius uniform in [0, 3] px for three layers in four) and the rest up to
            ``max_displacement``.
        min_displacement: With ``"uniform"``, the smallest displacement of a moving layer: the
            displacement is uniform in the ring between the two radii (0: the whole disc).
        batch_shape: Leading dimensions, e.g. ``(B, L)`` for B samples of L layers.
        centre: Time of the identity, in frames (default ``num_frames // 2``; may fall between
            two frames).
        curvature: Scale of the quadratic term ``a`` (drawn like ``v``); 0 gives straight paths
            at constant speed, as a camera's motion over a few milliseconds.
        generator: Random source (a seeded one is made from ``seed`` otherwise).
        seed: Seed when no generator is given.
        device: Device of the result.

    Returns:
        A :class:`Trajectory` with leading dimensions ``batch_shape``.
    """
    gen = make_generator(seed, generator, "cpu")
    shape = tuple(batch_shape)
    centre = num_frames // 2 if centre is None else centre
    s = (torch.arange(num_frames, dtype=torch.float32, device=device) - centre) / max(num_frames - 1, 1)
    moving = (rand(shape, gen, device) >= static_prob).float()

    if not 0.0 <= min_displacement <= max_displacement:
        raise ConfigError(f"min_displacement must be in [0, max_displacement], got {min_displacement}")
    if min_displacement and motion != "uniform":
        raise ConfigError("min_displacement applies to the 'uniform' motion model only")

    def planar(radius: float | torch.Tensor, inner: float = 0.0) -> torch.Tensor:  # uniform in a ring: [..., 2]
        u = rand(shape, gen, device)
        r = radius * u.sqrt() if not inner else (inner**2 + u * (radius**2 - inner**2)).sqrt()
        phi = 2 * math.pi * rand(shape, gen, device)
        return torch.stack([r * phi.cos(), r * phi.sin()], -1)

    radius: float | torch.Tensor = max_displacement
    if motion == "heavy-tail":
        small = min(3.0, max_displacement)
        tail = rand(shape, gen, device) < 0.25
        u = rand(shape, gen, device)
        radius = torch.where(tail, small + u * (max_displacement - small), u * small)
    elif motion != "uniform":
        raise ConfigError(f"motion must be 'uniform' or 'heavy-tail', got {motion!r}")
    v = planar(radius, min_displacement) * moving[..., None]
    a = planar(radius) * moving[..., None] * curvature
    shift = v[..., None, :] * s[:, None] + a[..., None, :] * (s * s)[:, None]
    omega = (2 * rand(shape, gen, device) - 1) * max_rotation * moving
    zoom = (2 * rand(shape, gen, device) - 1) * math.log1p(max_zoom) * moving
    return Trajectory(shift=shift, angle=omega[..., None] * s, scale=torch.exp(zoom[..., None] * s))


def make_training_batch(
    images: Sequence[np.ndarray | torch.Tensor],
    shape: WindowShape,
    num_layers: int = 1,
    max_displacement: float = 4.0,
    max_rotation: float = 0.0,
    max_zoom: float = 0.0,
    static_prob: float = 0.1,
    motion: str = "uniform",
    texture_candidates: int = 1,
    target_offset: float = 0.0,
    curvature: float = 1.0,
    input_blur: float = 0.0,
    input_lowpass: tuple[float, float] | None = None,
    min_displacement: float = 0.0,
    **options: Unpack[SpikeOptions],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Synthetic training windows: random crops of natural images moved along random trajectories.

    Each sample picks ``num_layers`` random crops (randomly flipped) from ``images``; layer 0 is
    the background, the others are foreground objects cut out by soft ellipse masks, each layer
    with its own trajectory (identity at the centre frame).

    Args:
        images: Grayscale ``[H, W]`` images in [0, 1], e.g. from :func:`load_images`.
        shape: ``[B, T, H, W]`` of the spikes (e.g. T = 61); the ground truth is at frame ``T // 2``.
        num_layers: Background plus foreground layers.
        max_displacement: Largest first-to-last frame shift per layer, pixels.
        max_rotation: Largest rotation per window, radians.
        max_zoom: Largest relative zoom per window.
        static_prob: Probability that a layer does not move.
        motion: Displacement distribution of :func:`random_trajectory`.
        texture_candidates: Crop positions drawn per layer; the one with the largest mean
            absolute gradient is used (1: a plain random crop). Natural photographs have large
            flat areas (sky, walls) that real robot scenes at spike-camera resolution rarely fill.
        target_offset: Time of the ground truth after the centre frame ``T // 2``, in frames
            (in (-1, 1); 0.5: halfway between frames ``T // 2`` and ``T // 2 + 1``). The
            trajectories are the identity at that time, so the target is still the unwarped crop.
        curvature: Scale of the trajectories' quadratic term (:func:`random_trajectory`).
        input_blur: Largest standard deviation, in pixels, of a Gaussian blur of the frames the
            spikes are simulated from (drawn uniformly per sample); the target stays sharp, so the
            network learns to undo that much blur (0: none).
        input_lowpass: ``(low, high)`` range of the cutoff, in cycles per pixel, of a
            :func:`spectral_lowpass` of the frames the spikes are simulated from (drawn uniformly
            per sample, after ``input_blur``); the target stays sharp (``None``: none).
        min_displacement: Smallest first-to-last frame shift of a moving layer, pixels
            (:func:`random_trajectory`; 0: any).
        **options: How the frames become spikes, and where (:class:`~stir_ros.training.windows.Simulation`:
            ``alpha``, ``generator``, ``device``, ``noise_std``, ``sensor``, ``threshold``).

    Returns:
        ``(spikes [B, T, H, W] float32 0/1, gt [B, 1, H, W] float32)`` on ``device``.
    """
    if not images:
        raise ConfigError("make_training_batch needs at least one image")
    if num_layers < 1:
        raise ConfigError(f"num_layers must be >= 1, got {num_layers}")
    batch, window_length, height, width = shape
    sim = Simulation(**options)
    gen, device = sim.random_source(), sim.device
    diag = math.hypot(height, width)
    margin = math.ceil(0.75 * max_displacement + 0.5 * diag * (max_rotation + max_zoom)) + 2
    hs, ws = height + 2 * margin, width + 2 * margin
    picks = torch.randint(len(images), (batch, num_layers), generator=gen, device=gen.device).tolist()
    corners = rand((batch, num_layers, 2), gen, "cpu").tolist()
    flips = (rand((batch, num_layers, 2), gen, "cpu") < 0.5).tolist()
    patches = []
    for i in range(batch):
        for j in range(num_layers):
            img = torch.as_tensor(images[picks[i][j]], dtype=torch.float32)
            if img.shape[0] < hs or img.shape[1] < ws:  # too small for the crop: enlarge it
                f = max(hs / img.shape[0], ws / img.shape[1])
                size = (math.ceil(img.shape[0] * f), math.ceil(img.shape[1] * f))
                img = F.interpolate(img[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]
            top = int(corners[i][j][0] * (img.shape[0] - hs + 1))
            left = int(corners[i][j][1] * (img.shape[1] - ws + 1))
            patch = img[top : top + hs, left : left + ws]
            if texture_candidates > 1:
                patch = _most_textured(img, patch, hs, ws, texture_candidates - 1, gen)
            dims = [d for d, flip in zip((0, 1), flips[i][j], strict=True) if flip]
            patches.append(patch.flip(dims) if dims else patch)
    layers = torch.stack(patches).reshape(batch, num_layers, hs, ws).to(device)
    masks = None
    if num_layers > 1:
        masks = soft_ellipses((batch, num_layers), hs, ws, gen, "cpu").to(device)
    if not -1.0 < target_offset < 1.0:
        raise ConfigError(f"target_offset must be in (-1, 1) frames, got {target_offset}")
    traj = random_trajectory(
        window_length, max_displacement=max_displacement, max_rotation=max_rotation, max_zoom=max_zoom,
        static_prob=static_prob, motion=motion, min_displacement=min_displacement, batch_shape=(batch, num_layers),
        generator=gen, device=device,
        centre=window_length // 2 + target_offset if target_offset else None, curvature=curvature,
    )  # fmt: skip
    if target_offset:  # one more frame, the identity: the target at its time between two frames
        traj = Trajectory(
            shift=torch.cat([traj.shift, torch.zeros_like(traj.shift[..., :1, :])], -2),
            angle=torch.cat([traj.angle, torch.zeros_like(traj.angle[..., :1])], -1),
            scale=torch.cat([traj.scale, torch.ones_like(traj.scale[..., :1])], -1),
        )
    intensity = render_moving_layers(layers, traj, height, width, masks).clamp_(0.0, 1.0)
    target_index = window_length if target_offset else window_length // 2
    target = intensity[:, target_index : target_index + 1].contiguous()
    intensity = intensity[:, :window_length]
    if input_blur > 0:
        sigmas = rand((batch,), gen, "cpu") * input_blur
        intensity = torch.stack([gaussian_blur(x, float(sig)) for x, sig in zip(intensity, sigmas, strict=True)])
    if input_lowpass is not None:
        low, high = input_lowpass
        cutoffs = low + rand((batch,), gen, "cpu") * (high - low)
        intensity = torch.stack([spectral_lowpass(x, float(c)) for x, c in zip(intensity, cutoffs, strict=True)])
        intensity.clamp_(0.0, 1.0)  # the filter rings at hard edges: 0.5 % of photograph pixels leave [0, 1]
    return sim.spikes(intensity, gen), target


def gaussian_blur(frames: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur ``[..., H, W]`` frames with a Gaussian of ``sigma`` pixels (separable, reflected borders)."""
    if sigma < 1e-3:
        return frames
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32, device=frames.device)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    k = k / k.sum()
    shape = frames.shape
    flat = frames.reshape(-1, 1, *shape[-2:])
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode="reflect"), k.view(1, 1, 1, -1))
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode="reflect"), k.view(1, 1, -1, 1))
    return flat.reshape(shape)


LOWPASS_ORDER = 3.6
"""Exponent of :func:`spectral_lowpass`: the median of the fits to the five Spike-Zoo ``base`` clips (3.0-6.0)."""


def spectral_lowpass(frames: torch.Tensor, cutoff: float, order: float = LOWPASS_ORDER) -> torch.Tensor:
    """Filter ``[..., H, W]`` frames with the isotropic gain ``exp(-(f / cutoff) ** order)``.

    ``f`` is the spatial frequency in cycles per pixel (0.5 is the Nyquist frequency along an
    axis), so the gain is 1/e at ``cutoff``. With the default order this is the loss of fine
    detail measured between the Spike-Zoo REDS-derived clips' spikes and their ground truth
    (cutoffs 0.46-0.72; see the model card): flat up to about 0.2 cycles per pixel, then falling
    steeply, unlike a Gaussian blur. Borders are reflected (8 pixels) before the FFT.
    """
    if cutoff <= 0:
        raise ConfigError(f"spectral_lowpass: cutoff must be > 0 cycles per pixel, got {cutoff}")
    pad = min(8, frames.shape[-2] - 1, frames.shape[-1] - 1)
    shape = frames.shape
    flat = frames.reshape(-1, 1, *shape[-2:])
    if pad > 0:
        flat = F.pad(flat, (pad, pad, pad, pad), mode="reflect")
    fy = torch.fft.fftfreq(flat.shape[-2], device=frames.device)[:, None]
    fx = torch.fft.rfftfreq(flat.shape[-1], device=frames.device)[None, :]
    gain = torch.exp(-((torch.sqrt(fx**2 + fy**2) / cutoff) ** order))
    out = torch.fft.irfft2(torch.fft.rfft2(flat) * gain, s=flat.shape[-2:])
    if pad > 0:
        out = out[..., pad:-pad, pad:-pad]
    return out.reshape(shape).to(frames.dtype)


def mean_gradient(patch: torch.Tensor) -> float:
    """Mean absolute gradient of a patch (the detail density measure of the crop sampler)."""
    return float((patch[1:] - patch[:-1]).abs().mean() + (patch[:, 1:] - patch[:, :-1]).abs().mean())


def _most_textured(
    img: torch.Tensor, first: torch.Tensor, hs: int, ws: int, extra: int, gen: torch.Generator
) -> torch.Tensor:
    """The most textured of ``first`` and ``extra`` more random ``hs`` x ``ws`` crops of ``img``."""
    best, best_score = first, mean_gradient(first)
    for top_f, left_f in rand((extra, 2), gen, "cpu").tolist():
        top = int(top_f * (img.shape[0] - hs + 1))
        left = int(left_f * (img.shape[1] - ws + 1))
        cand = img[top : top + hs, left : left + ws]
        score = mean_gradient(cand)
        if score > best_score:
            best, best_score = cand, score
    return best
