# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Integrate-and-fire spike simulation (DESIGN.md §4).

Every pixel accumulates ``alpha * intensity`` per frame from a random start in
``[0, threshold)``; when the accumulator reaches ``threshold`` the pixel fires and the threshold
is subtracted. The mean firing rate is therefore ``alpha * intensity / threshold``. Moving scenes
to simulate from live in :mod:`stir_ros.core.scenes`.

Everything is seeded through ``torch.Generator`` and deterministic for a given device. The
module imports without torch (it is on the driver's import path, and a robot may lack the
``stir`` extra: :mod:`stir_ros.core.optional`); simulating needs it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from stir_ros.core.defaults import ALPHA, FRAME_RATE_HZ
from stir_ros.core.errors import ConfigError, SpikeFormatError
from stir_ros.core.optional import import_torch, torch_required
from stir_ros.core.rng import make_generator, rand
from stir_ros.core.sensor_model import PixelMaps, SensorModel

if TYPE_CHECKING:
    import torch

__all__ = ["IntegrateAndFire", "simulate_spikes"]



# --------------------------------------------------------------------------- random numbers


def _torch() -> Any:
    """torch, or the error that says how to install it (the public entry points call this first)."""
    torch = import_torch()
    if torch is None:
        raise torch_required("the spike simulator", ".dat files and the methods tfp/tfi run without it")
    return torch


# --------------------------------------------------------------------------- integrate-and-fire


def _check_model(alpha: float, threshold: float, noise_std: float) -> None:
    if not alpha > 0:
        raise ConfigError(f"alpha must be positive, got {alpha}")
    if not threshold > 0:
        raise ConfigError(f"threshold must be positive, got {threshold}")
    if not noise_std >= 0:
        raise ConfigError(f"noise_std must be >= 0, got {noise_std}")


def _integrate(
    x: torch.Tensor, acc: torch.Tensor, alpha: float, threshold: float, noise_std: float, gen: torch.Generator
) -> torch.Tensor:
    """Run frames ``x [..., T, H, W]`` through the accumulator ``acc [..., H, W]`` (in place)."""
    if x.device.type == "cpu":
        import torch

        # numpy runs this per-frame loop 2-3x faster than torch on a CPU (less overhead per op);
        # acc.numpy() shares memory, so the state is updated in place all the same.
        return torch.from_numpy(
            _integrate_numpy(x.detach().numpy(), acc.numpy(), alpha, threshold, noise_std, gen)
        )
    return _integrate_torch(x, acc, alpha, threshold, noise_std, gen)


def _integrate_torch(
    x: torch.Tensor, acc: torch.Tensor, alpha: float, threshold: float, noise_std: float, gen: torch.Generator
) -> torch.Tensor:
    """The device-agnostic version of :func:`_integrate` (the path taken on GPUs).

    Same float32 operations in the same order as :func:`_integrate_numpy` (separate multiply and
    add, no fused ``add_(alpha=...)``), so that both give the same spikes from the same draws.
    """
    import torch

    out = torch.empty(x.shape, dtype=torch.bool, device=x.device)
    inc = torch.empty_like(acc)
    for t in range(x.shape[-3]):
        # One frame at a time: a frame-wise draw order makes packet-by-packet streaming give
        # exactly the same spikes (and noise) as a one-shot run.
        torch.mul(x[..., t, :, :], alpha, out=inc)
        acc.add_(inc)
        if noise_std:
            acc.add_(rand(acc.shape, gen, acc.device, normal=True).mul_(noise_std))
        fired = out[..., t, :, :]
        torch.ge(acc, threshold, out=fired)
        torch.mul(fired, threshold, out=inc)
        acc.sub_(inc)
    return out.view(torch.uint8)


def _integrate_sensor(
    x: torch.Tensor, acc: torch.Tensor, alpha: float, threshold: float, noise_std: float, gen: torch.Generator,
    maps: PixelMaps,
) -> torch.Tensor:
    """:func:`_integrate` with a real sensor's imperfections (:mod:`stir_ros.core.sensor_model`).

    Torch on any device. The temporal noise is drawn frame by frame, each kind only when it is
    on, in a fixed order (shot noise, increment noise, dark events, threshold jitter, hot pixels).
    """
    import torch

    out = torch.empty(x.shape, dtype=torch.bool, device=x.device)
    thr = maps.threshold.to(acc.device) * threshold
    gain = maps.gain.to(acc.device) * alpha
    dark_p, hot, dead, hot_p = (m.to(acc.device) for m in (maps.dark_p, maps.hot, maps.dead, maps.hot_p))
    for t in range(x.shape[-3]):
        inc = x[..., t, :, :] * gain
        if maps.shot_electrons:
            # Poisson noise of the photo-electrons (Gaussian approximation, variance = mean).
            # sqrt(v) as v * rsqrt(v): torch's CPU sqrt was measured up to 100x slower than rsqrt here.
            charge = inc.clamp(min=0.0)
            spread = charge.mul(charge.add(1e-12).rsqrt_()).mul_(math.sqrt(threshold / maps.shot_electrons))
            inc = inc + spread * rand(acc.shape, gen, acc.device, normal=True)
        acc.add_(inc)
        if noise_std:
            acc.add_(rand(acc.shape, gen, acc.device, normal=True).mul_(noise_std))
        if maps.has_dark:
            acc.add_((rand(acc.shape, gen, acc.device) < dark_p) * thr)
        level = thr
        if maps.threshold_jitter:
            level = thr * (1.0 + maps.threshold_jitter * rand(acc.shape, gen, acc.device, normal=True))
        fired = out[..., t, :, :]
        torch.ge(acc, level, out=fired)
        acc.sub_(fired * level)
        if maps.has_dead:
            fired.masked_fill_(dead, False)
            acc.masked_fill_(dead, 0.0)
        if maps.has_hot:
            fired.copy_(torch.where(hot, rand(acc.shape, gen, acc.device) < hot_p, fired))
    return out.view(torch.uint8)


def _integrate_numpy(
    x: np.ndarray, acc: np.ndarray, alpha: float, threshold: float, noise_std: float, gen: torch.Generator
) -> np.ndarray:
    """The CPU version of :func:`_integrate`, with the same frame-wise noise draws."""
    out = np.empty(x.shape, np.bool_)
    inc = np.empty_like(acc)
    alpha32, threshold32, noise32 = np.float32(alpha), np.float32(threshold), np.float32(noise_std)
    for t in range(x.shape[-3]):
        np.multiply(x[..., t, :, :], alpha32, out=inc)
        acc += inc
        if noise_std:
            acc += noise32 * rand(acc.shape, gen, "cpu", normal=True).numpy()
        fired = out[..., t, :, :]
        np.greater_equal(acc, threshold32, out=fired)
        # A multiply into the spare buffer beats a masked subtract (where=) several times over.
        np.multiply(fired, threshold32, out=inc)
        acc -= inc
    return out.view(np.uint8)


def simulate_spikes(
    intensity: np.ndarray | torch.Tensor,
    alpha: float = ALPHA,
    threshold: float = 1.0,
    noise_std: float = 0.0,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    initial_accumulator: np.ndarray | torch.Tensor | None = None,
    return_state: bool = False,
    sensor: SensorModel | None = None,
    frame_rate_hz: float = FRAME_RATE_HZ,
    repair_defects: bool = False,
) -> Any:
    """Simulate a spike stream from ground-truth intensities.

    Args:
        intensity: ``[T, H, W]`` or ``[B, T, H, W]`` intensities, nominally in [0, 1]; not
            clamped, but a pixel fires at most once per frame. numpy in gives numpy out; a tensor
            is simulated on its own device.
        alpha: Accumulation per frame at intensity 1.
        threshold: Firing threshold.
        noise_std: Standard deviation of Gaussian noise added to every increment.
        seed: Seed of a fresh generator (ignored when ``generator`` is given).
        generator: Source of the random start and the noise (one on the tensor's device
            avoids a host-to-device copy per frame when ``noise_std > 0``).
        initial_accumulator: ``[H, W]`` (or ``[B, H, W]``) start values instead of random ones.
        return_state: Also return the final accumulator, to continue the stream later.
        sensor: A real sensor's imperfections (:class:`~stir_ros.core.sensor_model.SensorModel`;
            ``None`` or an ideal model: none). Its fixed pattern is drawn from the generator
            after the random start.
        frame_rate_hz: Frame rate, which turns the sensor's dark rate in Hz into one per frame.
        repair_defects: Repair the sensor's hot and dead pixels as a node does once it has found
            them (:class:`~stir_ros.core.pixel_repair.PixelRepair` from the true masks): the
            spikes a network meets behind the node's defect correction, for training.

    Returns:
        uint8 spikes (0/1) of the same shape as ``intensity``, and with ``return_state`` a tuple
        ``(spikes, accumulator)``.

    Raises:
        SpikeFormatError: For a wrong shape. ConfigError: For invalid model parameters.
    """
    torch = _torch()
    _check_model(alpha, threshold, noise_std)
    is_numpy = not isinstance(intensity, torch.Tensor)
    x = torch.as_tensor(np.asarray(intensity) if is_numpy else intensity).float()
    if x.ndim not in (3, 4):
        raise SpikeFormatError(f"intensity must be [T, H, W] or [B, T, H, W], got {tuple(x.shape)}")
    state_shape = x.shape[:-3] + x.shape[-2:]
    gen = make_generator(seed, generator, x.device)
    if initial_accumulator is None:
        acc = rand(state_shape, gen, x.device) * threshold
    else:
        acc = torch.as_tensor(initial_accumulator, dtype=torch.float32, device=x.device).clone()
        if acc.shape != state_shape:
            raise SpikeFormatError(
                f"initial_accumulator must have shape {tuple(state_shape)}, got {tuple(acc.shape)}"
            )
    if sensor is None or sensor.is_ideal:
        spikes = _integrate(x, acc, alpha, threshold, noise_std, gen)
    else:
        maps = sensor.pixel_maps(tuple(state_shape), frame_rate_hz, gen, x.device)
        spikes = _integrate_sensor(x, acc, alpha, threshold, noise_std, gen, maps)
        if repair_defects and (maps.has_hot or maps.has_dead):
            spikes = _repair(spikes, maps.hot | maps.dead)
    if is_numpy:
        spikes, acc = spikes.numpy(), acc.numpy()
    return (spikes, acc) if return_state else spikes


def _repair(spikes: torch.Tensor, bad: torch.Tensor) -> torch.Tensor:
    """``spikes`` ``[T, H, W]`` or ``[B, T, H, W]`` with the ``bad`` ``[(B,) H, W]`` pixels repaired."""
    from stir_ros.core.pixel_repair import PixelRepair

    host = spikes.cpu().contiguous()  # numpy's view of a CPU tensor: repaired in place
    frames, masks = host.numpy(), bad.cpu().numpy()
    if frames.ndim == 3:
        PixelRepair.from_mask(masks).apply(frames)
    else:
        for window, mask in zip(frames, masks):
            PixelRepair.from_mask(mask).apply(window)
    return host.to(spikes.device)


class IntegrateAndFire:
    """Stateful integrate-and-fire sensor for streaming simulation, packet by packet.

    ``IntegrateAndFire(h, w, seed=s).step(x)`` equals ``simulate_spikes(x, seed=s)`` for the same
    device, and stepping packet by packet equals one step over the concatenated packets.
    """

    def __init__(
        self,
        height: int,
        width: int,
        alpha: float = ALPHA,
        threshold: float = 1.0,
        noise_std: float = 0.0,
        seed: int | None = None,
        device: str | torch.device = "cpu",
        sensor: SensorModel | None = None,
        frame_rate_hz: float = FRAME_RATE_HZ,
    ) -> None:
        torch = _torch()
        _check_model(alpha, threshold, noise_std)
        self.sensor = None if sensor is None or sensor.is_ideal else sensor
        self.frame_rate_hz = float(frame_rate_hz)
        self.maps: PixelMaps | None = None
        self.height, self.width = int(height), int(width)
        self.alpha, self.threshold, self.noise_std = float(alpha), float(threshold), float(noise_std)
        self.seed = seed
        self.device = torch.device(device)
        self.generator = torch.Generator(device=self.device)
        self.frames_done = 0
        self.reset()

    def reset(self) -> None:
        """Restart from a fresh random accumulator (the same one again when seeded)."""
        if self.seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(int(self.seed))
        self.accumulator = rand((self.height, self.width), self.generator, self.device) * self.threshold
        if self.sensor is not None:  # the same fixed pattern again after every reset when seeded
            self.maps = self.sensor.pixel_maps((self.height, self.width), self.frame_rate_hz, self.generator,
                                               self.device)  # fmt: skip
        self.frames_done = 0

    def step(self, intensity_frames: np.ndarray | torch.Tensor) -> Any:
        """Simulate the next frames ``[T, H, W]``; returns uint8 spikes, numpy for numpy input."""
        import torch

        is_numpy = not isinstance(intensity_frames, torch.Tensor)
        x = torch.as_tensor(np.asarray(intensity_frames) if is_numpy else intensity_frames)
        if x.ndim != 3 or tuple(x.shape[1:]) != (self.height, self.width):
            raise SpikeFormatError(
                f"intensity frames must be [T, {self.height}, {self.width}], got {tuple(x.shape)}"
            )
        x = x.to(self.device, torch.float32)
        if self.maps is None:
            spikes = _integrate(x, self.accumulator, self.alpha, self.threshold, self.noise_std, self.generator)
        else:
            spikes = _integrate_sensor(x, self.accumulator, self.alpha, self.threshold, self.noise_std,
                                       self.generator, self.maps)  # fmt: skip
        self.frames_done += x.shape[0]
        return spikes.cpu().numpy() if is_numpy else spikes
