# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Driver sources (stir_ros.core.sources)."""

from __future__ import annotations

import numpy as np
import pytest

from stir_ros.core.dat import write_dat
from stir_ros.core.errors import ConfigError, DatFileError
from stir_ros.core.packing import unpack_frames
from stir_ros.core.sources import DatSource, SimSource, SpikeBlock, SpikeSource


def _frames(n, h, w, seed=0):
    return (np.random.default_rng(seed).random((n, h, w)) < 0.4).astype(np.uint8)


def _read_all(source, chunk, limit):
    blocks = []
    total = 0
    while total < limit:
        b = source.read(chunk)
        if b is None:
            break
        blocks.append(b.frames(source.height, source.width))
        total += b.num_frames
    return np.concatenate(blocks) if blocks else np.zeros((0, source.height, source.width), np.uint8)


@pytest.mark.parametrize(("h", "w"), [(6, 16), (5, 7)])
def test_dat_source_reads_the_file_in_order(tmp_path, h, w):
    frames = _frames(53, h, w)
    write_dat(tmp_path / "a.dat", frames)
    src = DatSource(tmp_path / "a.dat", h, w, frame_rate_hz=40000.0)
    assert isinstance(src, SpikeSource)
    assert (src.height, src.width, src.frame_rate_hz) == (h, w, 40000.0)
    got = _read_all(src, 10, 10_000)
    np.testing.assert_array_equal(got, frames)
    assert src.read(10) is None
    src.close()


def test_dat_source_loops_across_the_end(tmp_path):
    frames = _frames(25, 4, 8)
    write_dat(tmp_path / "a.dat", frames)
    src = DatSource(tmp_path / "a.dat", 4, 8, loop=True)
    got = _read_all(src, 10, 60)  # blocks 20-29 and 40-49 span the wrap
    np.testing.assert_array_equal(got, np.concatenate([frames, frames, frames[:10]]))
    assert src.frames_read == 60


def test_dat_source_errors(tmp_path):
    with pytest.raises(DatFileError):
        DatSource(tmp_path / "missing.dat", 4, 8)
    (tmp_path / "odd.dat").write_bytes(b"\0" * 5)
    with pytest.raises(DatFileError):
        DatSource(tmp_path / "odd.dat", 4, 8)
    (tmp_path / "empty.dat").write_bytes(b"")
    with pytest.raises(DatFileError, match="no frames"):
        DatSource(tmp_path / "empty.dat", 4, 8)
    write_dat(tmp_path / "ok.dat", _frames(2, 4, 8))
    with pytest.raises(ConfigError):
        DatSource(tmp_path / "ok.dat", 4, 8, frame_rate_hz=0.0)


def test_sim_source_streams_deterministically_with_ground_truth():
    a = SimSource(16, 24, seed=3, max_frames=90)
    b = SimSource(16, 24, seed=3)
    fa = _read_all(a, 40, 1000)
    assert fa.shape == (90, 16, 24)  # 40 + 40 + 10, then the end
    assert a.read(10) is None
    fb = _read_all(b, 90, 90)
    np.testing.assert_array_equal(fa, fb)  # packetisation does not change the spikes
    gt = a.ground_truth(45)
    assert gt.shape == (16, 24) and gt.dtype == np.float32 and 0 <= gt.min() and gt.max() <= 1
    # The spike rate follows alpha * intensity.
    rate = fa.mean(axis=0)
    assert abs(rate.mean() - 0.6 * gt.mean()) < 0.05


def test_spike_block_decodes():
    frames = _frames(3, 3, 5)
    from stir_ros.core.packing import pack_frames

    block = SpikeBlock(pack_frames(frames), 3)
    np.testing.assert_array_equal(block.frames(3, 5), frames)
    np.testing.assert_array_equal(unpack_frames(block.data, 3, 5), frames)


@pytest.mark.parametrize(("h", "w"), [(4, 8), (5, 7)])
def test_dat_source_read_into_matches_read_across_the_wrap(tmp_path, h, w):
    frames = _frames(25, h, w)
    write_dat(tmp_path / "a.dat", frames)
    a = DatSource(tmp_path / "a.dat", h, w, loop=True)
    b = DatSource(tmp_path / "a.dat", h, w, loop=True)
    fb = (h * w + 7) // 8
    buf = np.empty(10 * fb, np.uint8)
    for _ in range(6):  # blocks 20-29 and 40-49 span the wrap
        block = a.read(10)
        assert b.read_into(buf, 10) == 10
        np.testing.assert_array_equal(buf, block.data)
    assert (a.frames_read, a.position) == (b.frames_read, b.position)


def test_dat_source_read_into_ends_with_the_file(tmp_path):
    write_dat(tmp_path / "a.dat", _frames(13, 4, 8))
    src = DatSource(tmp_path / "a.dat", 4, 8)
    buf = np.empty(10 * 4, np.uint8)
    assert src.read_into(buf, 10) == 10
    assert src.read_into(buf, 10) == 3  # the rest of the file
    np.testing.assert_array_equal(unpack_frames(buf[:12], 4, 8), _frames(13, 4, 8)[10:])
    assert src.read_into(buf, 10) is None
    with pytest.raises(ConfigError):
        src.read_into(buf, 0)
