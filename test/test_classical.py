# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Classical reconstructions TFP and TFI (stir_ros.core.classical)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from stir_ros.core.classical import PackedWindows, spike_counts_packed, tfi, tfp, tfp_packed
from stir_ros.core.errors import ConfigError, SpikeFormatError
from stir_ros.core.packing import pack_frames
from stir_ros.core.simulator import simulate_spikes


def test_tfp_mean_over_centred_window() -> None:
    spikes = np.zeros((7, 1, 2), np.uint8)
    spikes[[1, 3, 4], 0, 0] = 1  # frames 1, 3 and 4
    np.testing.assert_allclose(tfp(spikes, alpha=0.5), [[6 / 7, 0.0]], rtol=1e-6)
    # window 3 around the centre frame 3: frames 2, 3, 4.
    np.testing.assert_allclose(tfp(spikes, alpha=0.5, window=3), [[4 / 3, 0.0]], rtol=1e-6)
    # window 4: frames 1..4 (t//2 - window//2 onwards); the result is not clipped.
    np.testing.assert_allclose(tfp(spikes, alpha=0.5, window=4), [[1.5, 0.0]], rtol=1e-6)
    assert tfp(spikes).dtype == np.float32


def _frames_used(t: int, window: int, kind: str) -> list[int]:
    """The frames ``tfp`` averages: pixel ``j`` fires in frame ``j`` only, so pixel ``j`` is lit iff frame ``j`` was used."""
    spikes = np.eye(t, dtype=np.uint8).reshape(t, 1, t)
    if kind == "int32":  # the wide-integer path (not uint8)
        spikes = spikes.astype(np.int32)
    elif kind == "torch":
        spikes = torch.from_numpy(spikes)
    image = np.asarray(tfp(spikes, alpha=0.5, window=window))[0]
    used = np.flatnonzero(image)
    np.testing.assert_allclose(image[used], 1 / (window * 0.5), rtol=1e-6)  # the mean over exactly ``window`` frames
    return used.tolist()


@pytest.mark.parametrize("kind", ["uint8", "int32", "torch"])
@pytest.mark.parametrize(
    ("t", "window", "frames"),
    [
        (8, 3, [3, 4, 5]),  # even T: centre frame 4 (T // 2), one frame either side
        (8, 5, [2, 3, 4, 5, 6]),
        (8, 1, [4]),
        (8, 4, [2, 3, 4, 5]),  # even window: T//2 - window//2 onwards
        (8, 7, [1, 2, 3, 4, 5, 6, 7]),
        (42, 41, list(range(1, 42))),  # STIR's 41 inside a 42-frame window: the first frame is left out
        (40, 3, [19, 20, 21]),
        (7, 3, [2, 3, 4]),  # odd T, for comparison
    ],
)
def test_tfp_sub_window_of_an_even_length_window_uses_the_centred_frames(t, window, frames, kind) -> None:
    assert _frames_used(t, window, kind) == frames


def test_tfp_even_length_window_against_a_hand_computed_mean() -> None:
    spikes = np.zeros((6, 1, 1), np.uint8)  # centre frame 3
    spikes[[1, 2, 3], 0, 0] = 1
    # window 3: frames 2, 3, 4 -> 2 spikes; starting a frame early (1, 2, 3) would give 3.
    np.testing.assert_allclose(tfp(spikes, alpha=0.5, window=3), [[2 / 3 / 0.5]], rtol=1e-6)
    spikes_packed = spikes.reshape(1, 6, 1, 1)
    packed = PackedWindows([[pack_frames(spikes_packed[0]).reshape(6, -1)]], 6, 1, 1)
    np.testing.assert_allclose(tfp(packed, alpha=0.5, window=3), [[[2 / 3 / 0.5]]], rtol=1e-6)


def test_tfi_handmade_intervals() -> None:
    spikes = np.zeros((9, 1, 5), np.uint8)  # centre frame 4
    spikes[[2, 5], 0, 0] = 1  # interval 3
    spikes[[4, 8], 0, 1] = 1  # spike at the centre counts as the left one: interval 4
    spikes[[0, 1], 0, 2] = 1  # no spike after the centre: right side put at T = 9 -> 8
    spikes[[6], 0, 3] = 1  # no spike up to the centre: left side at -1 -> 7
    # pixel 4 never fires: interval T + 1 = 10
    expected = 1 / (0.5 * np.array([[3, 4, 8, 7, 10]], np.float32))
    np.testing.assert_allclose(tfi(spikes, alpha=0.5), expected, rtol=1e-6)
    np.testing.assert_allclose(tfi(torch.from_numpy(spikes), alpha=0.5).numpy(), expected, rtol=1e-6)


@pytest.mark.parametrize("intensity", [1.0, 0.5, 0.25])
def test_tfi_of_constant_scene_returns_the_intensity(intensity: float) -> None:
    # alpha * intensity = 1 / k with k whole: every interval is exactly k frames.
    x = np.full((61, 16, 16), intensity, np.float32)
    spikes = simulate_spikes(x, alpha=0.5, seed=0)
    np.testing.assert_allclose(tfi(spikes, alpha=0.5), intensity, rtol=1e-6)


def test_tfi_constant_scene_non_integer_period() -> None:
    # alpha * I = 0.3: intervals of 3 or 4 frames, so single pixels are off; the median is close.
    spikes = simulate_spikes(np.full((61, 32, 32), 0.5, np.float32), alpha=0.6, seed=0)
    est = tfi(spikes, alpha=0.6)
    values = np.unique(est)
    assert np.isclose(values[:, None], [1 / 1.8, 1 / 2.4]).any(axis=1).all(), values
    assert abs(np.median(est) - 0.5) < 0.1


def test_numpy_and_torch_agree_with_batch_dims() -> None:
    spikes = (np.random.default_rng(0).random((2, 3, 21, 5, 6)) < 0.3).astype(np.uint8)
    t = torch.from_numpy(spikes)
    for fn, kwargs in ((tfp, {}), (tfp, {"window": 7}), (tfi, {})):
        a, b = fn(spikes, alpha=0.6, **kwargs), fn(t, alpha=0.6, **kwargs)
        assert a.shape == (2, 3, 5, 6) and b.shape == (2, 3, 5, 6)
        assert a.dtype == np.float32 and b.dtype == torch.float32
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-6)
    np.testing.assert_allclose(tfp(t.float(), 0.6).numpy(), tfp(spikes, 0.6), rtol=1e-6)


def test_single_frame_and_errors() -> None:
    one = np.ones((1, 2, 2), np.uint8)
    np.testing.assert_allclose(tfp(one, alpha=0.5), 2.0)
    np.testing.assert_allclose(tfi(one, alpha=0.5), 2.0)  # left 0, right T = 1
    np.testing.assert_allclose(tfi(torch.from_numpy(one), alpha=0.5).numpy(), 2.0)
    with pytest.raises(SpikeFormatError, match=r"\[\.\.\., T, H, W\]"):
        tfp(np.zeros((4, 4)))
    with pytest.raises(SpikeFormatError, match="no frames"):
        tfi(np.zeros((0, 4, 4)))
    with pytest.raises(ConfigError, match="window"):
        tfp(one, window=2)
    with pytest.raises(ConfigError, match="alpha"):
        tfi(one, alpha=0.0)


@pytest.mark.parametrize("fn", [tfp, tfi])
def test_values_that_are_not_spikes_are_refused(fn) -> None:
    """Public API: NaN, infinities and anything but 0/1 (packed bytes, an image) are refused, not estimated."""
    spikes = (np.random.default_rng(3).random((2, 9, 4, 5)) < 0.4).astype(np.uint8)
    for dtype, value, needle in [
        (np.uint8, 255, "(255 x1)"), (np.int16, -1, "(-1 x1)"), (np.float32, 0.5, "(0.5 x1)"),
        (np.float32, np.nan, "(nan x1; NaN or infinite)"), (np.float64, -np.inf, "(-inf x1; NaN or infinite)"),
    ]:
        bad = spikes.astype(dtype)
        bad[1, 4, 2, 3] = value
        for given in (bad, torch.from_numpy(bad)):
            with pytest.raises(SpikeFormatError, match=re.escape(f"spikes hold 1 value other than 0 and 1 {needle}")):
                fn(given, alpha=0.6)
    with pytest.raises(SpikeFormatError, match="numpy array or a torch tensor, got list"):
        fn(spikes.tolist(), alpha=0.6)
    with pytest.raises(SpikeFormatError, match="got dtype complex64"):
        fn(spikes.astype(np.complex64), alpha=0.6)


def _tfp_int32(spikes: np.ndarray, alpha: float) -> np.ndarray:
    """TFP over all frames as it was computed before the uint16 and packed paths (the reference)."""
    return (spikes.sum(axis=-3, dtype=np.int32) / np.float32(spikes.shape[-3] * alpha)).astype(np.float32)


@pytest.mark.parametrize(("t", "h", "w"), [(41, 25, 40), (61, 5, 7), (1, 3, 8), (300, 4, 9), (257, 2, 8)])
def test_tfp_fast_paths_give_the_same_bits(t: int, h: int, w: int) -> None:
    rng = np.random.default_rng(t)
    spikes = (rng.random((t, h, w)) < 0.3).astype(np.uint8)
    ref = _tfp_int32(spikes, 0.6)
    np.testing.assert_array_equal(tfp(spikes, alpha=0.6), ref)  # uint16 sum + table for t <= 257
    np.testing.assert_array_equal(tfp(spikes.astype(bool), alpha=0.6), ref)
    np.testing.assert_array_equal(tfp(np.stack([spikes, spikes]), alpha=0.6), np.stack([ref, ref]))
    packed = pack_frames(spikes).reshape(t, -1)
    cut = max(1, t // 3)
    parts = [packed[:cut], packed[cut:]] if t > 1 else [packed]
    got = tfp_packed(parts, h, w, alpha=0.6)
    assert got.dtype == np.float32 and got.shape == (h, w)
    np.testing.assert_array_equal(got, ref)
    counts = spike_counts_packed(parts, h, w)
    assert counts.dtype == (np.uint8 if t <= 255 else np.uint32)
    np.testing.assert_array_equal(counts, spikes.sum(axis=0))


def test_tfp_uint8_values_above_one_are_summed_exactly() -> None:
    spikes = np.full((41, 2, 3), 255, np.uint8)  # not spikes: refused, and unchecked the sum must not wrap
    with pytest.raises(SpikeFormatError, match=re.escape("246 values other than 0 and 1 (255 x246)")):
        tfp(spikes, alpha=0.6)
    np.testing.assert_array_equal(tfp(spikes, alpha=0.6, check_values=False), _tfp_int32(spikes, 0.6))


def test_tfp_packed_over_several_cache_blocks_and_errors() -> None:
    rng = np.random.default_rng(1)
    spikes = (rng.random((7, 300, 250)) < 0.5).astype(np.uint8)  # 9375 bytes per frame: 3 blocks
    parts = [pack_frames(spikes[:2]).reshape(2, -1), pack_frames(spikes[2:]).reshape(5, -1)]
    np.testing.assert_array_equal(tfp_packed(parts, 300, 250, 0.5), _tfp_int32(spikes, 0.5))
    with pytest.raises(SpikeFormatError):
        spike_counts_packed([], 300, 250)
    with pytest.raises(ConfigError):
        tfp_packed(parts, 300, 250, alpha=0.0)


def test_tfp_of_packed_windows_and_a_centred_sub_window() -> None:
    from stir_ros.core.classical import PackedWindows

    rng = np.random.default_rng(3)
    spikes = (rng.random((2, 9, 5, 7)) < 0.4).astype(np.uint8)
    packed = PackedWindows([[pack_frames(s[:4]).reshape(4, -1), pack_frames(s[4:]).reshape(5, -1)] for s in spikes],
                           9, 5, 7)
    assert packed.shape == (2, 9, 5, 7) and len(packed[1:]) == 1
    np.testing.assert_array_equal(tfp(packed, alpha=0.6), tfp(spikes, alpha=0.6))
    np.testing.assert_array_equal(tfp(packed, alpha=0.6, window=3), tfp(spikes, alpha=0.6, window=3))  # decoded
    np.testing.assert_array_equal(tfi(packed, alpha=0.6), tfi(spikes, alpha=0.6))
    with pytest.raises(SpikeFormatError):
        PackedWindows([[pack_frames(spikes[0]).reshape(9, -1)]], 8, 5, 7)
