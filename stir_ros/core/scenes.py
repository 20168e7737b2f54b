"""Moving synthetic scenes: what the simulator turns into spikes for training and the driver.

Still images (a background and optional foreground layers with soft masks) are moved along smooth
random trajectories and rendered with ``grid_sample``, batched and on any device. Trajectories are
the identity at their centre frame, so the ground truth of a training window is the unwarped
image crop itself, without interpolation blur. Images come from scikit-image's bundled
photographs, a folder of the user's, or :func:`synthetic_image` (no files at all).

Everything is seeded through ``torch.Generator`` and deterministic for a given device.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from stir_ros.core.errors import ConfigError, SpikeFormatError
from stir_ros.core.simulator import _make_generator, _rand, simulate_spikes

__all__ = [
    "SKIMAGE_IMAGES",
    "MovingScene",
    "Trajectory",
    "load_images",
    "make_training_batch",
    "random_trajectory",
    "render_moving_layers",
    "synthetic_image",
]

# Photographs bundled with scikit-image (no download needed).
SKIMAGE_IMAGES = (
    "astronaut", "camera", "coffee", "chelsea", "rocket", "brick", "grass", "gravel", "moon",
    "coins", "clock", "cell", "page", "text", "hubble_deep_field", "immunohistochemistry",
)  # fmt: skip

_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}


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


def _to_gray(arr: np.ndarray) -> np.ndarray:
    arr = np.asarray(arr)
    scale = 255.0 if arr.dtype == np.uint8 else (65535.0 if arr.dtype == np.uint16 else 1.0)
    arr = arr.astype(np.float32) / scale
    if arr.ndim == 3 and arr.shape[-1] in (1, 2):  # gray, or gray + alpha
        arr = arr[..., 0]
    elif arr.ndim == 3:
        # ITU-R BT.601 luma, as OpenCV's and PIL's gray conversion.
        arr = arr[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)
    if arr.ndim != 2:
        raise SpikeFormatError(f"expected a grayscale or RGB(A) image, got shape {arr.shape}")
    return np.clip(arr, 0.0, 1.0)


def load_images(
    source: str | Path | Sequence[str | Path] = "skimage", max_size: int | None = None
) -> list[np.ndarray]:
    """Load natural images as grayscale float32 arrays in [0, 1].

    Args:
        source: ``"skimage"`` for scikit-image's bundled photographs (:data:`SKIMAGE_IMAGES`),
            a folder (its image files, sorted, not recursive), one image file, or a list of files.
        max_size: Downscale so that the longer side is at most this many pixels.

    Returns:
        List of ``[H, W]`` float32 arrays.

    Raises:
        ConfigError: If the folder or a file does not exist or holds no images.
    """
    if isinstance(source, str) and source == "skimage":
        import skimage.data

        images = [_to_gray(getattr(skimage.data, name)()) for name in SKIMAGE_IMAGES]
    else:
        from PIL import Image

        if isinstance(source, (str, Path)):
            path = Path(source)
            if path.is_dir():
                paths = sorted(p for p in path.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
            else:
                paths = [path]
        else:
            paths = [Path(p) for p in source]
        if not paths:
            raise ConfigError(f"no image files ({', '.join(sorted(_IMAGE_SUFFIXES))}) in '{source}'")
        images = []
        for p in paths:
            try:
                with Image.open(p) as im:
                    images.append(_to_gray(np.asarray(im.convert("RGB"))))
            except OSError as err:
                raise ConfigError(f"cannot read image '{p}': {err}") from err
    if max_size is not None:
        images = [_shrink(im, max_size) for im in images]
    return images


def _shrink(img: np.ndarray, max_size: int) -> np.ndarray:
    factor = max_size / max(img.shape)
    if factor >= 1:
        return img
    size = (max(1, round(img.shape[0] * factor)), max(1, round(img.shape[1] * factor)))
    out = F.interpolate(torch.from_numpy(img)[None, None], size=size, mode="area")
    return out[0, 0].numpy()


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


def random_trajectory(
    num_frames: int,
    *,
    max_displacement: float = 4.0,
    max_rotation: float = 0.0,
    max_zoom: float = 0.0,
    static_prob: float = 0.1,
    motion: str = "uniform",
    batch_shape: Sequence[int] = (),
    centre: int | None = None,
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
        batch_shape: Leading dimensions, e.g. ``(B, L)`` for B samples of L layers.
        centre: Identity frame (default ``num_frames // 2``).
        generator: Random source (a seeded one is made from ``seed`` otherwise).
        seed: Seed when no generator is given.
        device: Device of the result.

    Returns:
        A :class:`Trajectory` with leading dimensions ``batch_shape``.
    """
    gen = _make_generator(seed, generator, "cpu")
    shape = tuple(batch_shape)
    centre = num_frames // 2 if centre is None else centre
    s = (torch.arange(num_frames, dtype=torch.float32, device=device) - centre) / max(num_frames - 1, 1)
    moving = (_rand(shape, gen, device) >= static_prob).float()

    def planar(radius: float | torch.Tensor) -> torch.Tensor:  # uniform in a disc of this radius: [..., 2]
        r = radius * _rand(shape, gen, device).sqrt()
        phi = 2 * math.pi * _rand(shape, gen, device)
        return torch.stack([r * phi.cos(), r * phi.sin()], -1)

    radius: float | torch.Tensor = max_displacement
    if motion == "heavy-tail":
        small = min(3.0, max_displacement)
        tail = _rand(shape, gen, device) < 0.25
        u = _rand(shape, gen, device)
        radius = torch.where(tail, small + u * (max_displacement - small), u * small)
    elif motion != "uniform":
        raise ConfigError(f"motion must be 'uniform' or 'heavy-tail', got {motion!r}")
    v = planar(radius) * moving[..., None]
    a = planar(radius) * moving[..., None]
    shift = v[..., None, :] * s[:, None] + a[..., None, :] * (s * s)[:, None]
    omega = (2 * _rand(shape, gen, device) - 1) * max_rotation * moving
    zoom = (2 * _rand(shape, gen, device) - 1) * math.log1p(max_zoom) * moving
    return Trajectory(shift=shift, angle=omega[..., None] * s, scale=torch.exp(zoom[..., None] * s))


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


def _soft_ellipses(shape: Sequence[int], hs: int, ws: int, gen: torch.Generator, device: Any) -> torch.Tensor:
    """Random soft-edged ellipse masks ``[*shape, hs, ws]`` near the centre (foreground objects)."""
    shape = tuple(shape)
    size = min(hs, ws)
    cx = ws / 2 + (_rand(shape, gen, device) - 0.5) * ws / 2
    cy = hs / 2 + (_rand(shape, gen, device) - 0.5) * hs / 2
    ax = size * (0.12 + 0.25 * _rand(shape, gen, device))
    ay = size * (0.12 + 0.25 * _rand(shape, gen, device))
    rot = math.pi * _rand(shape, gen, device)
    y = torch.arange(hs, dtype=torch.float32, device=device)[:, None]
    x = torch.arange(ws, dtype=torch.float32, device=device)[None, :]
    e = lambda t: t[..., None, None]  # noqa: E731 - broadcast over the image
    dx, dy = x - e(cx), y - e(cy)
    u = (dx * e(rot.cos()) + dy * e(rot.sin())) / e(ax)
    v = (-dx * e(rot.sin()) + dy * e(rot.cos())) / e(ay)
    # The edge is about 1.5 pixels wide: sharp like an object boundary, still anti-aliased.
    return torch.sigmoid((1 - torch.sqrt(u * u + v * v)) * e(torch.minimum(ax, ay)) / 0.75)


def make_training_batch(
    images: Sequence[np.ndarray | torch.Tensor],
    batch: int,
    window_length: int,
    height: int,
    width: int,
    alpha: float = 0.6,
    generator: torch.Generator | None = None,
    device: str | torch.device = "cpu",
    num_layers: int = 1,
    max_displacement: float = 4.0,
    max_rotation: float = 0.0,
    max_zoom: float = 0.0,
    static_prob: float = 0.1,
    noise_std: float = 0.0,
    threshold: float = 1.0,
    motion: str = "uniform",
    texture_candidates: int = 1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Synthetic training windows: random crops of natural images moved along random trajectories.

    Each sample picks ``num_layers`` random crops (randomly flipped) from ``images``; layer 0 is
    the background, the others are foreground objects cut out by soft ellipse masks, each layer
    with its own trajectory (identity at the centre frame).

    Args:
        images: Grayscale ``[H, W]`` images in [0, 1], e.g. from :func:`load_images`.
        batch: Samples B.
        window_length: Frames T per window (e.g. 61); the ground truth is at frame ``T // 2``.
        height: Crop height.
        width: Crop width.
        alpha: Sensor alpha.
        generator: Random source (CPU generators also drive CUDA batches).
        device: Device of the results.
        num_layers: Background plus foreground layers.
        max_displacement: Largest first-to-last frame shift per layer, pixels.
        max_rotation: Largest rotation per window, radians.
        max_zoom: Largest relative zoom per window.
        static_prob: Probability that a layer does not move.
        noise_std: Noise of the integrate-and-fire increments.
        threshold: Firing threshold.
        motion: Displacement distribution of :func:`random_trajectory`.
        texture_candidates: Crop positions drawn per layer; the one with the largest mean
            absolute gradient is used (1: a plain random crop). Natural photographs have large
            flat areas (sky, walls) that real robot scenes at spike-camera resolution rarely fill.

    Returns:
        ``(spikes [B, T, H, W] float32 0/1, gt [B, 1, H, W] float32)`` on ``device``.
    """
    if not images:
        raise ConfigError("make_training_batch needs at least one image")
    if min(batch, window_length, height, width, num_layers) < 1:
        raise ConfigError(
            "batch, window_length, height, width and num_layers must be >= 1, got "
            f"{batch}, {window_length}, {height}, {width}, {num_layers}"
        )
    gen = _make_generator(None, generator, "cpu")
    diag = math.hypot(height, width)
    margin = math.ceil(0.75 * max_displacement + 0.5 * diag * (max_rotation + max_zoom)) + 2
    hs, ws = height + 2 * margin, width + 2 * margin
    picks = torch.randint(len(images), (batch, num_layers), generator=gen, device=gen.device).tolist()
    corners = _rand((batch, num_layers, 2), gen, "cpu").tolist()
    flips = (_rand((batch, num_layers, 2), gen, "cpu") < 0.5).tolist()
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
        masks = _soft_ellipses((batch, num_layers), hs, ws, gen, "cpu").to(device)
    traj = random_trajectory(
        window_length, max_displacement=max_displacement, max_rotation=max_rotation, max_zoom=max_zoom,
        static_prob=static_prob, motion=motion, batch_shape=(batch, num_layers), generator=gen, device=device,
    )  # fmt: skip
    intensity = render_moving_layers(layers, traj, height, width, masks).clamp_(0.0, 1.0)
    spikes = simulate_spikes(intensity, alpha=alpha, threshold=threshold, noise_std=noise_std, generator=gen)
    centre = window_length // 2
    return spikes.float(), intensity[:, centre : centre + 1].contiguous()


def _texture(patch: torch.Tensor) -> float:
    """Mean absolute gradient of a patch (the detail density measure of the crop sampler)."""
    return float((patch[1:] - patch[:-1]).abs().mean() + (patch[:, 1:] - patch[:, :-1]).abs().mean())


def _most_textured(
    img: torch.Tensor, first: torch.Tensor, hs: int, ws: int, extra: int, gen: torch.Generator
) -> torch.Tensor:
    """The most textured of ``first`` and ``extra`` more random ``hs`` x ``ws`` crops of ``img``."""
    best, best_score = first, _texture(first)
    for top_f, left_f in _rand((extra, 2), gen, "cpu").tolist():
        top = int(top_f * (img.shape[0] - hs + 1))
        left = int(left_f * (img.shape[1] - ws + 1))
        cand = img[top : top + hs, left : left + ws]
        score = _texture(cand)
        if score > best_score:
            best, best_score = cand, score
    return best


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
        gen = _make_generator(seed, None, "cpu")
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
        self.masks = _soft_ellipses((1, n), hs, ws, gen, "cpu").to(self.device) if n > 1 else None
        # Two sinusoids per layer and axis, the second 1.3-2.3x faster so that the path does not
        # repeat; their peak speeds add up to max_speed.
        self._amp = amplitude / 2
        ratio = 1.3 + _rand((n, 2), gen, "cpu")
        base = max_speed / (max(self._amp, 1e-9) * (1 + ratio))
        self._freq = torch.stack([base, base * ratio], -1).double()  # [L, 2 axes, 2 waves], rad/frame
        self._phase = (2 * math.pi * _rand((n, 2, 2), gen, "cpu")).double()

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
