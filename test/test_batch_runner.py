# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The batch path shared by the live worker and bag reconstruct (stir_ros/core/batch_runner.py)."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest

from stir_ros.core.batch_runner import batch_input, run_batch, take_batch
from stir_ros.core.classical import PackedWindows
from stir_ros.core.packing import ENCODING_VIDAR_BITPACKED, encode_frames
from stir_ros.core.stream import PacketHeader, stack_windows
from stir_ros.core.stream_processor import StreamProcessor
from stir_ros.engine import EngineConfig, ReconstructionEngine

RATE = 20000.0
T0 = 1_000_000_000


def _windows(n_frames: int, stride: int, length: int, h: int = 6, w: int = 8, first: int = 0, seed: int = 0):
    """The windows a StreamProcessor cuts from one bit-packed packet."""
    frames = (np.random.default_rng(seed).random((n_frames, h, w)) < 0.3).astype(np.uint8)
    proc = StreamProcessor(length, stride)
    header = PacketHeader(seq=0, first_frame_index=first, num_frames=n_frames, height=h, width=w,
                          encoding=ENCODING_VIDAR_BITPACKED, stamp_ns=T0, frame_rate_hz=RATE)  # fmt: skip
    return proc.push(header, encode_frames(frames, ENCODING_VIDAR_BITPACKED)).windows


def test_a_batch_is_the_head_of_the_queue_of_one_size_up_to_the_limit():
    small, large = _windows(30, 5, 10), _windows(30, 5, 10, h=8)
    assert len(small) == len(large) == 5
    queue = deque([*small[:3], *large, *small[3:]])
    sizes = []
    while queue:
        batch = take_batch(queue, 2, lambda w: w)
        sizes.append([(w.height, len(batch)) for w in batch][:1] + [len(batch)])
    # 3 small: 2 + 1 (the size change ends the batch), 5 large: 2 + 2 + 1, 2 small: 2.
    assert [s[-1] for s in sizes] == [2, 1, 2, 2, 1, 2]
    assert [s[0][0] for s in sizes] == [6, 6, 8, 8, 8, 6]
    assert take_batch(deque(), 4, lambda w: w) == []


@pytest.mark.parametrize("method", ["tfp", "tfi"])
def test_the_engine_gets_packed_bits_where_its_method_counts_them_and_the_same_images(method):
    windows = _windows(60, 10, 41, first=100)
    engine = ReconstructionEngine(EngineConfig(method=method, device="cpu"))
    batch = batch_input(engine, windows)
    assert isinstance(batch.spikes, PackedWindows) == (method == "tfp")  # no window unpacked for tfp
    assert batch.starts == [100 + 10 * i for i in range(len(windows))] and len(batch) == len(windows) == 2
    heard: list[str] = []
    images = run_batch(engine, batch, heard.append)
    expected = engine.reconstruct(stack_windows(windows))
    assert images.dtype == np.float32 and np.array_equal(images, expected)
    assert heard == []


def test_run_batch_hands_the_starts_on_and_drains_the_engines_warnings():
    class Recording:
        method, window_length, batch_size = "tfi", 10, 4
        device = ReconstructionEngine(EngineConfig(method="tfi", device="cpu")).device

        def __init__(self) -> None:
            self.warnings = ["CUDA out of memory; batch size reduced to 2"]
            self.starts: list[int] | None = None

        def reconstruct(self, windows, starts=None):
            self.starts = list(starts)
            return np.zeros((len(windows), 6, 8), np.float32)

        def pop_warnings(self) -> list[str]:
            out, self.warnings = self.warnings, []
            return out

    engine = Recording()
    heard: list[str] = []
    batch = batch_input(engine, _windows(30, 5, 10, first=7))
    assert len(run_batch(engine, batch, heard.append)) == 4
    assert engine.starts == [10, 15, 20, 25]  # the stream's frame indices of the windows on the grid
    assert heard == ["CUDA out of memory; batch size reduced to 2"]
    run_batch(engine, batch, heard.append)
    assert len(heard) == 1, "a warning is handed on once"
