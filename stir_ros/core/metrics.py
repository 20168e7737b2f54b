# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Image quality metrics: PSNR and SSIM for single-channel images in [0, data_range]."""

from __future__ import annotations

from typing import Any

import numpy as np

from stir_ros.core.errors import SpikeFormatError

__all__ = ["psnr", "ssim"]


def _pair(pred: Any, gt: Any) -> tuple[np.ndarray, np.ndarray]:
    # Accept torch tensors without importing torch here: they all offer .detach().cpu().numpy().
    arrays = []
    for a in (pred, gt):
        if hasattr(a, "detach"):
            a = a.detach().cpu().numpy()
        arrays.append(np.asarray(a, dtype=np.float64))
    pred, gt = arrays
    if pred.shape != gt.shape or pred.ndim != 2 or pred.size == 0:
        raise SpikeFormatError(
            f"pred and gt must be non-empty 2-D images of the same shape, got {pred.shape} and {gt.shape}"
        )
    return pred, gt


def psnr(pred: Any, gt: Any, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB, ``10 log10(data_range^2 / MSE)``.

    Args:
        pred: Reconstruction ``[H, W]`` (numpy or torch); not clipped here.
        gt: Ground truth ``[H, W]``.
        data_range: Peak value (1.0 for images in [0, 1]).

    Returns:
        PSNR in dB; ``inf`` for identical images.
    """
    pred, gt = _pair(pred, gt)
    mse = float(np.mean((pred - gt) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(data_range**2 / mse))


def ssim(pred: Any, gt: Any, data_range: float = 1.0) -> float:
    """Structural similarity (Wang et al. 2004) with the common Gaussian window.

    ``skimage.metrics.structural_similarity`` with ``gaussian_weights=True``, ``sigma=1.5``,
    ``use_sample_covariance=False`` (11x11 window, K1 = 0.01, K2 = 0.03): the definition of the
    original paper and of most reconstruction papers' tables.

    Args:
        pred: Reconstruction ``[H, W]`` (numpy or torch).
        gt: Ground truth ``[H, W]``.
        data_range: Peak value (1.0 for images in [0, 1]).

    Returns:
        Mean SSIM over the image.
    """
    from skimage.metrics import structural_similarity

    pred, gt = _pair(pred, gt)
    return float(
        structural_similarity(
            gt, pred, data_range=data_range, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
        )
    )
