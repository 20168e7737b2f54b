# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""What training scenes are made of: photographs, object cut-outs and video clips, loaded once per process."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from stir_ros.core.errors import ConfigError
from stir_ros.training.scenes import load_images

__all__ = ["load_clips_once", "load_cutouts", "load_training_images"]


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

    from stir_ros.training.scenes import to_gray

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
    from stir_ros.training.video import load_clips

    return tuple(load_clips(folder, max_size=max_size))
