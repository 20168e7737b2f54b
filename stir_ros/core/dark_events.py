# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""How many dark-current spikes a window holds, measured from the spikes alone.

An integrate-and-fire pixel under steady light fires at a near constant interval. A dark-current
event adds one threshold of charge: the pixel fires once more at a random frame and the rest of its
train is unchanged (DESIGN.md §4), so the extra spike splits one interval in two. A spike is counted
as a **dark event** when taking it out leaves three consecutive intervals that agree — the one it
split and the intervals on either side — within :func:`_tolerance` frames (exact below 5 frames,
where the quantised intervals of a steady pixel (e.g. 2, 2, 1, 2) could fake it; then 20 %), its
pixel fires at least three times on each side of it inside the window, and a fourth interval agrees
as well, the one before the three or the one after (a pixel whose light changes fast, texture moving
across it, has uneven trains in which three intervals agree by chance, four far more rarely); a
split interval of 2 frames needs two more intervals of 2 on each side (:func:`_flagged`).

What it measures is a rate: dark events per pixel per frame, of which it finds a part: those in
pixels with at least three spikes on each side of the event inside the window and intervals of
about 5 to 15 frames (about 0.07 to 0.2 spikes per frame) or of exactly 2 (about 0.5); between
them the split interval is too short to tell from quantisation. An event next to a real spike may
count twice (either could be the extra one). On the validation windows (``stir-ros eval``'s
centre windows of 30 simulated clips and Spike-Zoo ``base/train``, faults seeds 0 and 1;
BENCHMARKS.md, issue 28) it finds 0-12 per million pixel-frames in clean spikes (Spike-Zoo's
recorded scenes 5-7), 0-13 with hot or dead pixels repaired, against 20-89 with dark-current spikes
of 5 Hz per pixel at 20 kHz, 28-186 with 10 Hz and 94-652 with 40 Hz. The reconstruction engine
sends a window above :data:`DARK_EVENT_SWITCH` to the dark-robust network
(:class:`~stir_ros.engine.EngineConfig` ``dark_weights``).

Counted on every :data:`SUBSAMPLE`-th row and column (a quarter of the pixels): enough events for a
clear decision, and a few milliseconds for a 250x400 window. Pure numpy, deterministic: the node and
``stir-ros bag reconstruct`` decide alike for the same window.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from stir_ros.core.optional import is_tensor

__all__ = ["DARK_EVENT_SWITCH", "SUBSAMPLE", "dark_event_rate", "dark_events"]

#: Dark events per pixel-frame above which a window counts as holding dark-current spikes: between
#: the validation windows with clean spikes (at most 1.2e-5; 1.3e-5 with hot or dead pixels) and
#: those with 5 Hz of dark current at 20 kHz (2.0e-5 and more), where the dark-robust network already
#: scores higher (33.19 against 33.13 dB on Spike-Zoo base/train, 40.38 against 39.98 on simulated clips).
DARK_EVENT_SWITCH = 1.6e-5
#: Rows and columns counted: every SUBSAMPLE-th of each.
SUBSAMPLE = 2


def _library(a: Any) -> tuple[Any, Any, Any]:
    """``(module, nonzero, to_int32)`` for ``a``: numpy's, or torch's for a tensor (on its own device, no copy to the host)."""
    if is_tensor(a):
        import torch

        return torch, lambda v: v.nonzero(as_tuple=True), lambda v: v.to(torch.int32)
    return np, np.nonzero, lambda v: v.astype(np.int32)


def _tolerance(gap: Any, xp: Any, int32: Any) -> Any:
    """Frames by which three intervals may differ and still agree: 0 below 5 frames, else 20 % (rounded down).

    ``gap * 0.2`` rounded down, not ``gap // 5``: the same numbers (0.2 is stored a little above 0.2,
    in float32 and float64) at a quarter of the time (numpy divides integers without SIMD).
    """
    return xp.where(gap >= 5, int32(gap * 0.2), 0)


def _flagged(pixel_major: Any) -> tuple[Any, Any]:
    """Pixel and frame of every dark event of ``pixel_major [P, T]`` (0/1; numpy, or a torch tensor on any device)."""
    xp, nonzero, int32 = _library(pixel_major)
    pixel, frame = nonzero(pixel_major)  # sorted by pixel, then frame: each pixel's train in order
    frame = int32(frame)
    if len(frame) < 5:
        return pixel[:0], frame[:0]
    # For the spike k = 2 .. n-3: its neighbours k-2, k-1 (before) and k+1, k+2 (after), all in its pixel.
    same = pixel[:-4] == pixel[4:]  # sorted: the ends in one pixel means all five are
    before = frame[1:-3] - frame[:-4]
    gap = frame[3:-1] - frame[1:-3]
    after = frame[4:] - frame[3:-1]
    spread = xp.maximum(xp.maximum(gap, before), after) - xp.minimum(xp.minimum(gap, before), after)
    hit = nonzero(same & (spread <= _tolerance(gap, xp, int32)))[0] + 2
    # A split interval of 2 frames (1, 1 between 2 and 2) is also a steady train above 2/3 spikes per
    # frame (2, 1, 1, 2, 1, 1); there it must have two more intervals of 2 on each side (2, 2, 1, 1, 2, 2),
    # which no steady train holds (above 2/3 the 2s stand alone, at or below 2/3 the 1s do).
    last = len(frame) - 1
    short = (frame[xp.clip(hit + 1, None, last)] - frame[hit - 1]) == 2
    if bool(short.any()):
        k = hit[short]
        inside = (k >= 3) & (k + 3 <= last)
        k3, kk = xp.clip(k - 3, 0, None), xp.clip(k + 3, None, last)
        wide = inside & (pixel[k3] == pixel[kk]) & (frame[k - 2] - frame[k3] == 2) & (frame[kk] - frame[k + 2] == 2)
        keep = ~short
        keep[short] = wide
        hit = hit[keep]
    # The pixel must have three spikes on each side of the event inside the window, and a fourth
    # interval must agree with the three, the one before them or the one after: a pixel whose light
    # changes fast (texture moving across it) has uneven trains in which three intervals agree by
    # chance now and then, four much more rarely (:data:`DARK_EVENT_SWITCH`).
    k = hit  # 2 <= k <= last - 2
    k3, kk = xp.clip(k - 3, 0, None), xp.clip(k + 3, None, last)
    b1, gap, a1 = frame[k - 1] - frame[k - 2], frame[k + 1] - frame[k - 1], frame[k + 2] - frame[k + 1]
    tol = _tolerance(gap, xp, int32)
    lo = xp.maximum(xp.maximum(b1, gap), a1) - tol
    hi = xp.minimum(xp.minimum(b1, gap), a1) + tol
    b2, a2 = frame[k - 2] - frame[k3], frame[kk] - frame[k + 2]
    deep = (k >= 3) & (k + 3 <= last) & (pixel[k3] == pixel[k]) & (pixel[kk] == pixel[k])
    hit = hit[deep & (((b2 >= lo) & (b2 <= hi)) | ((a2 >= lo) & (a2 <= hi)))]
    return pixel[hit], frame[hit]


def dark_events(spikes: np.ndarray) -> np.ndarray:
    """Boolean ``[T, ...]``: the spikes of ``spikes [T, ...]`` (0/1, time first) counted as dark events."""
    s = np.asarray(spikes).reshape(spikes.shape[0], -1)
    pixel, frame = _flagged(np.ascontiguousarray(s.T))
    out = np.zeros(s.shape, bool)
    out[frame, pixel] = True
    return out.reshape(spikes.shape)


def dark_event_rate(windows: Any) -> np.ndarray:
    """Dark events per pixel-frame of each window of ``windows [B, T, H, W]`` (0/1), float64 ``[B]``.

    A torch tensor is counted on its own device (a GPU's windows are not copied to the host first);
    the count is the same as numpy's for the same spikes.
    """
    tensor = is_tensor(windows)
    w: Any = windows if tensor else np.asarray(windows)
    if w.ndim != 4:
        raise ValueError(f"windows must be [B, T, H, W], got shape {tuple(w.shape)}")
    sub = w[:, :, ::SUBSAMPLE, ::SUBSAMPLE]
    b, frames = sub.shape[:2]
    pixels = sub.shape[2] * sub.shape[3]
    if b * frames * pixels == 0:
        return np.zeros(b)
    if tensor:  # pixel-major: [B, H', W', T], one copy
        major = sub.movedim(1, -1).contiguous().reshape(b, pixels, frames)
    else:  # in one copy (the strided view's reshape would copy once more before the transpose)
        major = np.ascontiguousarray(np.moveaxis(sub, 1, -1)).reshape(b, pixels, frames)
    counts = [len(_flagged(major[i])[0]) for i in range(b)]
    return np.asarray(counts, np.float64) / (frames * pixels)
