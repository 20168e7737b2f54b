# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Synthetic training data for STIR, made on the fly by the spike simulator.

Every sample is a crop of natural images (a background and moving foreground layers, each on
its own random trajectory) turned into spikes by the integrate-and-fire simulator with a
per-sample alpha drawn around the REDS-derived sets' 0.6.

Target convention (see ``stir_ros/weights/MODEL_CARD.md``): the network predicts the **spike
rate** of the centre frame, ``alpha * intensity``, exactly as the Spike-Zoo retrained STIR
(its wrapper divides the network output by the rate); the reconstruction engine returns
``clamp(raw / alpha, 0, 1)``. The target returned here is therefore ``alpha * gt``.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stir_ros.core.errors import ConfigError, check_choice
from stir_ros.core.sensor_model import SensorModel
from stir_ros.training.camera import CameraConfig, make_camera_batch
from stir_ros.training.scenes import make_training_batch
from stir_ros.training.sources import load_clips_once, load_cutouts, load_training_images
from stir_ros.training.windows import WindowShape

__all__ = [
    "MOTION_MODELS",
    "SCENE_MODELS",
    "DataConfig",
    "StepBatches",
    "SyntheticSpikeData",
    "describe",
    "load_cutouts",
    "load_training_images",
    "sample_generator",
    "samples_of_step",
    "step_batch",
    "step_generator",
    "validation_set",
]

MOTION_MODELS = ("uniform", "heavy-tail")
SCENE_MODELS = ("layers", "camera")


@dataclass(frozen=True)
class DataConfig:
    """How synthetic windows are drawn.

    Attributes:
        window_length: Frames per window (61 or 41); the target is at frame ``T // 2``.
        crop: Square crop size in pixels.
        alpha_range: Per-sample alpha drawn uniformly from this range.
        max_layers: Layers per sample drawn uniformly from 1..max_layers (background + objects).
        max_displacement: Largest first-to-last-frame shift of a layer, pixels.
        max_rotation: Largest rotation over the window, radians.
        max_zoom: Largest relative zoom over the window.
        static_prob: Probability that a layer stands still.
        max_noise_std: Per-sample integrate-and-fire noise drawn from ``U(0, max_noise_std)``.
        motion: ``"uniform"`` (displacement uniform in a disc of ``max_displacement``) or
            ``"heavy-tail"`` (mostly small, a quarter of the layers up to ``max_displacement``).
        texture_candidates: Crop positions drawn per layer; the most textured one is kept
            (layer scenes; camera scenes use ``camera.texture_candidates``).
        scene: ``"layers"``: 1 to ``max_layers`` rigid layers of photograph crops
            (:func:`~stir_ros.training.scenes.make_training_batch`; the fields above apply).
            ``"camera"``: a camera homography with heavy-tailed motion, local deformation and
            independently moving objects over downscaled, textured crops
            (:func:`~stir_ros.training.camera.make_camera_batch`, parameters in ``camera``;
            ``max_layers``, ``max_displacement``, ``max_rotation``, ``max_zoom``, ``static_prob``,
            ``motion`` and ``texture_candidates`` do not apply).
        camera: Parameters of the camera scenes.
        cutouts: Folder of object cut-outs (gray + alpha PNGs, :func:`load_cutouts`) for the
            camera scenes; ``None``: objects are photograph crops cut out by soft ellipses.
        videos: Folder of real video clips (one sub-folder of frames per clip,
            :func:`~stir_ros.training.sources.load_clips`); with ``video_fraction`` > 0 that share
            of the samples is rendered between two frames of a clip
            (:func:`~stir_ros.training.video.make_video_batch`, with ``max_displacement`` and
            ``texture_candidates``) instead of by ``scene``.
        video_fraction: Share of the samples taken from ``videos``, in [0, 1].
        video_max_size: Longer side of the video frames (detail density; ``None``: as stored).
        target_offset: Time of the ground truth after the centre frame ``T // 2``, in frames, in
            (-1, 1) (layer and video scenes). The REDS-derived evaluation clips' ground truth
            sits about half a frame after their windows' centre frame (see the model card).
        curvature: Scale of the layer trajectories' quadratic term (layer scenes; 0: straight
            paths at constant speed).
        input_blur: Largest Gaussian blur (pixels) of the frames the spikes are made from, the
            target kept sharp (layer scenes; 0: none).
        input_lowpass: ``(low, high)`` cutoff range, in cycles per pixel, of a
            :func:`~stir_ros.training.scenes.spectral_lowpass` of the frames the spikes are made
            from, the target kept sharp (layer scenes; ``None``: none). The REDS-derived clips'
            spikes carry the detail of frames filtered so, with cutoffs 0.46-0.72 (model card).
        min_displacement: Smallest first-to-last-frame shift of a moving layer, pixels (layer
            scenes, ``"uniform"`` motion; 0: uniform in the whole disc of ``max_displacement``).
        sensor_max: The most a real sensor adds (:class:`~stir_ros.core.sensor_model.SensorModel`,
            dark rates at 20 kHz); ``None``: every sample from the ideal sensor. A noisy sample
            draws each level of dark rate, gain and threshold spread, jitter and defect fractions
            uniformly from zero to this; ``dark_rate_spread`` and ``shot_electrons`` are taken as they are.
        sensor_fraction: Share of the samples simulated with a drawn sensor (the rest ideal).
    """

    window_length: int = 61
    crop: int = 96
    alpha_range: tuple[float, float] = (0.5, 0.7)
    max_layers: int = 3
    max_displacement: float = 8.0
    max_rotation: float = 0.05
    max_zoom: float = 0.05
    static_prob: float = 0.1
    max_noise_std: float = 0.02
    motion: str = "uniform"
    texture_candidates: int = 1
    scene: str = "layers"
    camera: CameraConfig = field(default_factory=CameraConfig)
    cutouts: str | None = None
    videos: str | None = None
    video_fraction: float = 0.0
    video_max_size: int | None = None
    target_offset: float = 0.0
    curvature: float = 1.0
    input_blur: float = 0.0
    input_lowpass: tuple[float, float] | None = None
    min_displacement: float = 0.0
    sensor_max: SensorModel | None = None
    sensor_fraction: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.sensor_fraction <= 1.0:
            raise ConfigError(f"sensor_fraction must be in [0, 1], got {self.sensor_fraction}")
        if self.sensor_fraction > 0 and self.sensor_max is None:
            raise ConfigError("sensor_fraction > 0 needs sensor_max (the most a sensor adds)")
        check_choice("scene", self.scene, SCENE_MODELS)
        check_choice("motion", self.motion, MOTION_MODELS)
        if self.texture_candidates < 1:
            raise ConfigError(f"texture_candidates must be >= 1, got {self.texture_candidates}")
        if not 0.0 <= self.video_fraction <= 1.0:
            raise ConfigError(f"video_fraction must be in [0, 1], got {self.video_fraction}")
        if self.video_fraction > 0 and not self.videos:
            raise ConfigError("video_fraction > 0 needs a folder of clips (videos)")
        if not -1.0 < self.target_offset < 1.0:
            raise ConfigError(f"target_offset must be in (-1, 1) frames, got {self.target_offset}")
        if not 0.0 <= self.curvature <= 4.0:
            raise ConfigError(f"curvature must be in [0, 4], got {self.curvature}")
        if not 0.0 <= self.input_blur <= 3.0:
            raise ConfigError(f"input_blur must be in [0, 3] pixels, got {self.input_blur}")
        if not 0.0 <= self.min_displacement <= self.max_displacement:
            raise ConfigError(
                f"min_displacement must be in [0, max_displacement={self.max_displacement:g}] pixels, "
                f"got {self.min_displacement}"
            )
        if self.min_displacement and (self.motion != "uniform" or self.scene != "layers"):
            raise ConfigError("min_displacement applies to layer scenes with uniform motion only")
        if self.input_lowpass is not None:
            if len(self.input_lowpass) != 2:
                raise ConfigError(f"input_lowpass must be (low, high) cycles per pixel, got {self.input_lowpass}")
            low, high = self.input_lowpass
            if not 0.1 <= low <= high <= 2.0:
                raise ConfigError(
                    f"input_lowpass must be (low, high) cycles per pixel with 0.1 <= low <= high <= 2, "
                    f"got {self.input_lowpass}"
                )
        if self.target_offset and self.scene == "camera":
            raise ConfigError("target_offset is not implemented for camera scenes (use the layers scene)")


class SyntheticSpikeData:
    """Endless stream of ``(spikes [B, T, H, W], target [B, 1, H, W], alpha [B])`` batches.

    Deterministic for a given ``generator`` state: the training loop saves and restores the
    generator with its checkpoints, so resuming continues the same stream.

    Args:
        images: Grayscale source images in [0, 1].
        config: Sampling parameters.
        generator: CPU ``torch.Generator`` driving every random choice.
        device: Device of the returned batches (simulation runs there).
    """

    def __init__(
        self,
        images: Sequence[np.ndarray],
        config: DataConfig,
        generator: torch.Generator,
        device: str | torch.device = "cpu",
    ) -> None:
        if not images:
            raise ConfigError("SyntheticSpikeData needs at least one image")
        self.images = [torch.as_tensor(im, dtype=torch.float32) for im in images]
        self.config = config
        self.generator = generator
        self.device = torch.device(device)
        self.cutouts = load_cutouts(config.cutouts) if config.scene == "camera" and config.cutouts else None
        with_clips = config.videos and config.video_fraction > 0
        self.clips = load_clips_once(config.videos, config.video_max_size) if with_clips else None

    def _uniform(self, lo: float, hi: float) -> float:
        return lo + (hi - lo) * float(torch.rand((), generator=self.generator))

    def _draw_sensor(self) -> SensorModel | None:
        """The sensor of one sample: ``None`` (ideal) or levels drawn up to ``sensor_max``."""
        cfg = self.config
        if cfg.sensor_max is None or cfg.sensor_fraction <= 0:
            return None  # no draw: the stream is the same as before sensors existed
        if float(torch.rand((), generator=self.generator)) >= cfg.sensor_fraction:
            return None
        top = cfg.sensor_max
        scaled = ("dark_rate_hz", "gain_spread", "threshold_spread", "threshold_jitter", "hot_fraction", "dead_fraction")
        return top.replace(**{name: getattr(top, name) * self._uniform(0.0, 1.0) for name in scaled})

    def sample(self, batch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Draw one batch; each sample has its own alpha, layer count and noise level."""
        cfg = self.config
        shape = WindowShape(1, cfg.window_length, cfg.crop, cfg.crop)  # a sample at a time, each its own draws
        spikes, targets, alphas = [], [], []
        for _ in range(batch):
            sensor = self._draw_sensor()
            # Drawn only when videos are on: without them the stream is the same as before they existed.
            if self.clips is not None and float(torch.rand((), generator=self.generator)) < cfg.video_fraction:
                from stir_ros.training.video import make_video_batch

                alpha = self._uniform(*cfg.alpha_range)
                noise = self._uniform(0.0, cfg.max_noise_std)
                s, gt = make_video_batch(
                    self.clips, shape, alpha=alpha, generator=self.generator, device=self.device, noise_std=noise,
                    sensor=sensor, max_displacement=cfg.max_displacement, texture_candidates=cfg.texture_candidates,
                    target_offset=cfg.target_offset,
                )  # fmt: skip
                spikes.append(s)
                targets.append(gt * alpha)
                alphas.append(alpha)
                continue
            if cfg.scene == "camera":
                alpha = self._uniform(*cfg.alpha_range)
                noise = self._uniform(0.0, cfg.max_noise_std)
                s, gt = make_camera_batch(
                    self.images, shape, alpha=alpha, generator=self.generator, device=self.device, noise_std=noise,
                    sensor=sensor, config=cfg.camera, cutouts=self.cutouts,
                )  # fmt: skip
                spikes.append(s)
                targets.append(gt * alpha)
                alphas.append(alpha)
                continue
            alpha = self._uniform(*cfg.alpha_range)
            layers = int(torch.randint(1, cfg.max_layers + 1, (), generator=self.generator))
            noise = self._uniform(0.0, cfg.max_noise_std)
            s, gt = make_training_batch(
                self.images, shape, alpha=alpha, generator=self.generator, device=self.device, num_layers=layers,
                max_displacement=cfg.max_displacement, max_rotation=cfg.max_rotation,
                max_zoom=cfg.max_zoom, static_prob=cfg.static_prob, noise_std=noise, sensor=sensor,
                motion=cfg.motion, texture_candidates=cfg.texture_candidates, target_offset=cfg.target_offset,
                curvature=cfg.curvature, input_blur=cfg.input_blur, input_lowpass=cfg.input_lowpass,
                min_displacement=cfg.min_displacement,
            )  # fmt: skip
            spikes.append(s)
            targets.append(gt * alpha)
            alphas.append(alpha)
        return torch.cat(spikes), torch.cat(targets), torch.tensor(alphas, device=self.device)


def step_generator(seed: int, step: int) -> torch.Generator:
    """The generator of optimiser step ``step``'s batch: a function of ``(seed, step)`` alone.

    Batches made this way do not depend on which process makes them, in which order, or how
    many steps ran before a resume.
    """
    state = np.random.SeedSequence([int(seed), int(step)]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & 0x7FFF_FFFF_FFFF_FFFF)


def sample_generator(seed: int, step: int, index: int) -> torch.Generator:
    """The generator of sample ``index`` of step ``step``'s global batch (runs under torchrun).

    A function of ``(seed, step, index)`` alone, so the global batch does not depend on how
    many processes share it out.
    """
    state = np.random.SeedSequence([int(seed), int(step), int(index)]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & 0x7FFF_FFFF_FFFF_FFFF)


def samples_of_step(
    images: Sequence[np.ndarray], config: DataConfig, seed: int, step: int, first: int, count: int,
    device: str | torch.device = "cpu",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
    """Samples ``first`` to ``first + count - 1`` of step ``step``'s global batch, each from :func:`sample_generator`."""
    drawn = [SyntheticSpikeData(images, config, sample_generator(seed, step, i), device).sample(1)
             for i in range(first, first + count)]  # fmt: skip
    spikes, target, alpha = zip(*drawn)
    return torch.cat(spikes), torch.cat(target), torch.cat(alpha)


def _compact(batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    spikes, target, alpha = batch
    return spikes.to(torch.uint8).numpy(), target.numpy(), alpha.to(torch.float32).numpy()


def step_batch(
    images: Sequence[np.ndarray], config: DataConfig, seed: int, step: int, batch: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batch of step ``step`` as compact arrays: ``(spikes uint8 [B,T,H,W], target float32, alpha float32)``."""
    return _compact(SyntheticSpikeData(images, config, step_generator(seed, step)).sample(batch))


_WORKER: dict[str, Any] = {}


def _worker_init(images: list[np.ndarray], config: DataConfig, seed: int, batch: int,
                 samples: tuple[int, int] | None) -> None:  # fmt: skip
    torch.set_num_threads(1)
    _WORKER.update(images=[torch.as_tensor(im, dtype=torch.float32) for im in images], config=config,
                   seed=seed, batch=batch, samples=samples)  # fmt: skip


def _worker_batch(step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    w = _WORKER
    if w["samples"] is not None:
        return _compact(samples_of_step(w["images"], w["config"], w["seed"], step, *w["samples"]))
    return step_batch(w["images"], w["config"], w["seed"], step, w["batch"])


class StepBatches:
    """Training batches made ahead of time in worker processes (``stir-ros train --data-workers``).

    Step ``k``'s batch is drawn from :func:`step_generator` ``(seed, k)``, so the stream is the
    same for any number of workers and a resumed run continues it exactly. With ``samples``
    (a run under torchrun), a process makes its share of the global batch instead, by
    :func:`samples_of_step`. Up to ``prefetch`` batches are in flight; the training loop asks
    for the steps in order.

    Args:
        images: Grayscale source images in [0, 1].
        config: Sampling parameters.
        seed: Run seed.
        batch: Samples per step.
        workers: Worker processes (``spawn``: safe beside CUDA and OpenMP in the parent).
        device: Device of the returned tensors.
        prefetch: Batches made ahead (default: twice the workers).
        samples: ``(first, count)``: these samples of each step's global batch (``batch`` is
            then not used); ``None``: the whole batch from :func:`step_generator`.
    """

    def __init__(
        self,
        images: Sequence[np.ndarray],
        config: DataConfig,
        seed: int,
        batch: int,
        workers: int,
        device: str | torch.device = "cpu",
        prefetch: int = 0,
        samples: tuple[int, int] | None = None,
    ) -> None:
        if workers < 1:
            raise ConfigError(f"data workers must be >= 1, got {workers}")
        self.device = torch.device(device)
        self.prefetch = prefetch or 2 * workers
        # An executor, not a Pool: a worker that dies raises BrokenProcessPool instead of hanging.
        self._pool = ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init,
            initargs=([np.asarray(im, dtype=np.float32) for im in images], config, seed, batch, samples),
        )  # fmt: skip
        self._pending: deque[tuple[int, Any]] = deque()
        self._next = 0

    def get(self, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The batch of optimiser step ``step`` (steps are asked for in increasing order)."""
        if not self._pending or self._pending[0][0] != step:
            self._pending.clear()  # first call, or a jump: restart the queue at this step (stale batches are dropped)
            self._next = step
        while len(self._pending) < self.prefetch:
            self._pending.append((self._next, self._pool.submit(_worker_batch, self._next)))
            self._next += 1
        _, result = self._pending.popleft()
        spikes, target, alpha = result.result()
        pin = self.device.type == "cuda"
        out = []
        for array in (spikes, target, alpha):
            t = torch.from_numpy(array)
            out.append(t.pin_memory().to(self.device, non_blocking=True) if pin else t)
        return out[0].float(), out[1], out[2]

    def close(self) -> None:
        """Stop the workers."""
        self._pool.shutdown(wait=True, cancel_futures=True)


def validation_set(
    images: Sequence[np.ndarray], config: DataConfig, count: int = 8, seed: int = 12345
) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """A fixed held-out synthetic set (its own seed, independent of the training stream).

    Returns ``count`` single-sample batches ``(spikes, target, alpha)`` on the CPU.
    """
    gen = torch.Generator().manual_seed(seed)
    data = SyntheticSpikeData(images, config, gen, "cpu")
    return [data.sample(1) for _ in range(count)]


def describe(config: DataConfig, folders: Sequence[str] | None, skimage: bool = True) -> str:
    """One-line description of the training data for checkpoint metadata."""
    parts = (["skimage.data photographs"] if skimage else []) + [Path(f).name or str(f) for f in folders or ()]
    src = " + ".join(parts)
    extras = ""
    if config.videos and config.video_fraction > 0:
        extras = (
            f"; {config.video_fraction:.0%} of the samples between two frames of the clips in "
            f"{Path(config.videos).name} (optical flow, shift<={config.max_displacement}px)"
        )
    if config.input_blur:
        extras += f"; input blur sigma<={config.input_blur:g}px"
    if config.input_lowpass is not None:
        low, high = config.input_lowpass
        extras += f"; input low-pass cutoff {low:g}-{high:g} cycles/px"
    if config.min_displacement:
        extras += f"; moving layers shift>={config.min_displacement:g}px"
    if config.curvature != 1.0:
        extras += f"; path curvature x{config.curvature:g}"
    if config.target_offset:
        extras += f"; target {config.target_offset:+g} frame after the centre frame"
    if config.sensor_max is not None and config.sensor_fraction > 0:
        extras += f"; {config.sensor_fraction:.0%} of the samples from a sensor of up to {config.sensor_max.describe()}"
    if config.scene == "camera":
        objects = f"cut-outs from {Path(config.cutouts).name}" if config.cutouts else "soft-ellipse objects"
        return (
            f"synthetic on-the-fly: {src}; {config.crop}x{config.crop} crops, camera scenes: "
            f"{config.camera.describe()}, {objects}, alpha~U{config.alpha_range}, "
            f"noise_std<={config.max_noise_std}{extras}; target alpha*gt"
        )
    return (
        f"synthetic on-the-fly: {src}; {config.crop}x{config.crop} crops, 1-{config.max_layers} moving "
        f"layers, {config.motion} shift<={config.max_displacement}px, texture candidates "
        f"{config.texture_candidates}, alpha~U{config.alpha_range}, "
        f"noise_std<={config.max_noise_std}{extras}; target alpha*gt"
    )
