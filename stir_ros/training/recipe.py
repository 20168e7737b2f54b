# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The training recipe's pieces computed from the step alone: loss, learning rate, validation PSNR.

Loss (DESIGN.md §5, the authors' offline losses): L1(full) + sum over the 1/2..1/16 pyramid
outputs of ``w_k * L1(pred_k, avgpool^k(target)) / 4`` with ``w = 0.5, 0.25, 0.25, 0.25`` (the VGG
perceptual term is left out: its weights cannot be downloaded here). Learning rate: optional
linear warm-up, then x0.7 at 25 %, 50 % and 75 % of the run (the authors' epochs 50/100/150 of
200), so that resuming needs no scheduler object.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stir_ros.core.errors import check_choice
from stir_ros.core.metrics import psnr

__all__ = ["LOSSES", "learning_rate", "stir_loss", "validate"]

PYRAMID_WEIGHTS = (0.5, 0.25, 0.25, 0.25)  # the authors' weights of levels 1/2 .. 1/16
LR_MILESTONES = (0.25, 0.5, 0.75)
LR_GAMMA = 0.7
LOSSES = ("l1", "mse")


def learning_rate(step: int, total: int, base: float, warmup: int = 0) -> float:
    """Learning rate for optimiser step ``step`` (0-based)."""
    lr = base * min(1.0, (step + 1) / warmup) if warmup > 0 else base
    drops = sum(step >= int(m * total) for m in LR_MILESTONES)
    return lr * LR_GAMMA**drops


def stir_loss(pred: Tensor, pyramid: list[Tensor], target: Tensor, kind: str = "l1") -> tuple[Tensor, Tensor]:
    """The authors' L1 + multi-scale L1; returns ``(total, full-resolution L1)``.

    ``kind="mse"`` replaces the full-resolution L1 by the mean squared error divided by the
    batch's mean absolute error (not differentiated): its minimum is the mean squared error's
    (what PSNR scores), and its gradients are as large as L1's, so the learning rate and the
    weight decay keep their meaning. The pyramid terms stay L1.
    """
    check_choice("loss", kind, LOSSES)
    rec = F.l1_loss(pred, target)
    if kind == "mse":
        full = F.mse_loss(pred, target) / rec.detach().clamp_min(1e-6)
    else:
        full = rec
    multi = pred.new_zeros(())
    t = target
    for weight, level in zip(PYRAMID_WEIGHTS, pyramid):
        t = F.avg_pool2d(t, 2, ceil_mode=True)
        multi = multi + weight * F.l1_loss(level, t[..., : level.shape[-2], : level.shape[-1]]) / len(pyramid)
    return full + multi, rec


@torch.no_grad()
def validate(model: nn.Module, samples: list[tuple[Tensor, Tensor, Tensor]], device: torch.device) -> float:
    """Mean PSNR of ``clamp(raw / alpha, 0, 1)`` against the ground truth on the held-out set."""
    was_training = model.training
    model.eval()
    values = []
    for spikes, target, alpha in samples:
        a = alpha.to(device).view(-1, 1, 1, 1)
        raw = model(spikes.to(device))
        image = (raw.float() / a).clamp(0, 1)
        gt = target.to(device) / a
        values.append(psnr(image[0, 0].cpu(), gt[0, 0].cpu()))
    model.train(was_training)
    return float(np.mean(values))
