# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""TFP from the windows' packed frames (stir_ros.core.stream.packed_windows): the engine's bits."""

from __future__ import annotations

import numpy as np
import pytest

from stir_ros.core.packing import pack_frames
from stir_ros.core.packet import PacketHeader
from stir_ros.core.stream import WindowCutter, packed_parts, packed_windows, stack_windows
from stir_ros.engine import EngineConfig, ReconstructionEngine


def _cut(frames: np.ndarray, fpp: int, window: int, stride: int, encoding: str = "vidar_bitpacked") -> list:
    n, h, w = frames.shape
    cutter = WindowCutter(window, stride)
    windows = []
    for first in range(0, n, fpp):
        block = frames[first : first + fpp]
        payload = pack_frames(block) if encoding == "vidar_bitpacked" else block.reshape(-1)
        windows += cutter.push_payload(payload, PacketHeader(0, first, len(block), h, w, encoding, first * 50_000, 20000.0))
    return windows


@pytest.mark.parametrize(("h", "w", "fpp", "window", "stride"), [(25, 40, 10, 41, 20), (5, 7, 100, 41, 200), (8, 8, 3, 61, 7)])
def test_packed_tfp_is_the_engines_tfp_bit_for_bit(h: int, w: int, fpp: int, window: int, stride: int) -> None:
    frames = (np.random.default_rng(h).random((500, h, w)) < 0.6).astype(np.uint8)  # bright: the clamp matters
    windows = _cut(frames, fpp, window, stride)
    assert windows
    engine = ReconstructionEngine(EngineConfig(method="tfp", device="cpu", window_length=window, alpha=0.6))
    expected = engine.reconstruct(stack_windows(windows))
    packed = packed_windows(windows)
    assert packed is not None and packed.shape == (len(windows), window, h, w)
    got = engine.reconstruct(packed)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)
    assert (got == 1.0).any() and (got < 1.0).any()
    np.testing.assert_array_equal(np.asarray(packed), stack_windows(windows))  # decoded on demand
    tfi = ReconstructionEngine(EngineConfig(method="tfi", device="cpu", window_length=window, alpha=0.6))
    np.testing.assert_array_equal(tfi.reconstruct(packed), tfi.reconstruct(stack_windows(windows)))


def test_no_packed_path_for_unpacked_or_decoded_windows() -> None:
    frames = (np.random.default_rng(0).random((100, 4, 8)) < 0.3).astype(np.uint8)
    unpacked = _cut(frames, 10, 41, 20, encoding="unpacked_u8")
    assert packed_parts(unpacked[0]) is None and packed_windows(unpacked) is None
    cutter = WindowCutter(41, 20)
    decoded = cutter.push(frames, 0, 0, 20000.0)
    assert packed_windows(decoded) is None
    assert packed_windows([]) is None
    parts = packed_parts(_cut(frames, 10, 41, 20)[0])
    assert parts is not None and sum(len(p) for p in parts) == 41 and all(p.shape[1] == 4 for p in parts)
