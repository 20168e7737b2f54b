# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""What training scenes are made of: photographs, object cut-outs and video clips, read from files.

:func:`load_images` reads photographs (scikit-image's bundled ones or a folder) as grayscale,
:func:`load_clips` folders of video frames; the ``*_once`` and ``load_training_images`` helpers
are what the training loop and its worker processes call, each source loaded once per process.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from stir_ros.core.errors import ConfigError, SpikeFormatError

__all__ = [
    "SKIMAGE_IMAGES",
    "load_clips",
    "load_clips_once",
    "load_cutouts",
    "load_images",
    "load_training_images",
    "to_gray",
]

# Photographs bundled with scikit-image (no download needed).
SKIMAGE_IMAGES = (
    "astronaut", "camera", "coffee", "chelsea", "rocket", "brick", "grass", "gravel", "moon",
    "coins", "clock", "cell", "page", "text", "hubble_deep_field", "immunohistochemistry",
)  # fmt: skip

_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}


def to_gray(arr: np.ndarray) -> np.ndarray:
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

        images = [to_gray(getattr(skimage.data, name)()) for name in SKIMAGE_IMAGES]
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
                    images.append(to_gray(np.asarray(im.convert("RGB"))))
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


def load_clips(folder: str | Path, max_size: int | None = None) -> list[torch.Tensor]:
    """Load every clip under ``folder``: one sub-folder of frame images (sorted by name) per clip.

    Returns:
        One ``[N, H, W]`` float32 tensor in [0, 1] per clip, longer side at most ``max_size``.

    Raises:
        ConfigError: If ``folder`` has no clip of at least two frames, or the frames of a clip
            differ in size.
    """
    root = Path(folder)
    if not root.is_dir():
        raise ConfigError(f"video folder '{folder}' does not exist (make it with: stir-ros data --videos)")
    clips = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        frames = load_images(sub, max_size=max_size)
        if len({f.shape for f in frames}) != 1:
            raise ConfigError(f"the frames of clip '{sub}' differ in size")
        if len(frames) >= 2:
            clips.append(torch.from_numpy(np.stack(frames)))
    if not clips:
        raise ConfigError(f"no clip of two or more frames under '{folder}' (one sub-folder of frames per clip)")
    return clips


def load_training_images(
    folders: Sequence[str] | None = None, max_size: int = 512, skimage: bool = True
) -> list[np.ndarray]:
    """Load scikit-image's bundled photographs (unless ``skimage`` is false) and the images in ``folders``.

    Grayscale, in [0, 1], longer side at most ``max_size``.
    """
    images = load_images("skimage", max_size=max_size) if skimage else []
    for folder in folders or ():
        images.extend(load_images(folder, max_size=max_size))
    if not images:
        raise ConfigError("no training images")
    return images


@functools.lru_cache(maxsize=4)
def load_cutouts(folder: str) -> tuple[torch.Tensor, ...]:
    """Object cut-outs of a folder: each PNG with an alpha channel as ``[2, h, w]`` (gray, alpha) in [0, 1].

    Loaded once per process (the worker processes make a batch per step).
    """
    from PIL import Image

    paths = sorted(Path(folder).glob("*.png"))
    out = []
    for p in paths:
        with Image.open(p) as im:
            rgba = np.asarray(im.convert("RGBA"), dtype=np.float32) / 255.0
        out.append(torch.from_numpy(np.stack([to_gray(rgba[..., :3]), rgba[..., 3]])))
    if not out:
        raise ConfigError(f"no cut-outs (*.png with alpha) in '{folder}'")
    return tuple(out)


@functools.lru_cache(maxsize=2)
def load_clips_once(folder: str, max_size: int | None) -> tuple[torch.Tensor, ...]:
    """The clips of a folder, loaded once per process."""
    return tuple(load_clips(folder, max_size=max_size))
