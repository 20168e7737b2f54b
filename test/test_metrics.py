# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""PSNR and SSIM (stir_ros.core.metrics)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from stir_ros.core.errors import SpikeFormatError
from stir_ros.core.metrics import psnr, ssim
from stir_ros.core.scenes import synthetic_image


def test_psnr_known_values() -> None:
    gt = np.zeros((8, 8))
    assert psnr(gt, gt) == math.inf
    assert psnr(gt + 0.1, gt) == pytest.approx(20.0)
    assert psnr(gt + 25.5, gt, data_range=255.0) == pytest.approx(20.0)
    assert psnr(torch.full((8, 8), 0.01), torch.zeros(8, 8)) == pytest.approx(40.0)


def test_ssim_properties() -> None:
    img = synthetic_image(64, 64, seed=0)
    assert ssim(img, img) == pytest.approx(1.0)
    noisy = np.clip(img + np.random.default_rng(0).normal(0, 0.05, img.shape), 0, 1)
    very_noisy = np.clip(img + np.random.default_rng(0).normal(0, 0.2, img.shape), 0, 1)
    assert 0 < ssim(very_noisy, img) < ssim(noisy, img) < 1
    assert ssim(torch.from_numpy(noisy), torch.from_numpy(img)) == pytest.approx(ssim(noisy, img))
    # Same as scikit-image with the Gaussian window of Wang et al.
    from skimage.metrics import structural_similarity

    ref = structural_similarity(
        img, noisy, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert ssim(noisy, img) == pytest.approx(ref)


def test_shape_errors() -> None:
    with pytest.raises(SpikeFormatError, match="same shape"):
        psnr(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(SpikeFormatError, match="2-D"):
        ssim(np.zeros((1, 16, 16)), np.zeros((1, 16, 16)))
