# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Vidar .dat reading and writing (stir_ros.core.dat)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stir_ros.core.classical import tfp
from stir_ros.core.dat import DatReader, DatWriter, dat_num_frames, read_dat, write_dat
from stir_ros.core.errors import DatFileError, SpikeFormatError
from stir_ros.core.packing import pack_frames

DATA = Path(__file__).parent / "data"


# test/data/golden_4x8_3frames.dat, written by hand from DESIGN.md §4 (not by our writer): every
# 8-pixel row is one byte, LSB = leftmost pixel, and the file stores the BOTTOM image row first.
GOLDEN_HEX = "00000001800000ff00200400"


def golden_frames() -> np.ndarray:
    frames = np.zeros((3, 4, 8), np.uint8)
    frames[0, 0, 0] = 1  # top-left -> last byte of the frame (image row 0 is stored last), bit 0
    frames[1, 0, :] = 1  # whole top row -> last byte 0xff
    frames[1, 3, 7] = 1  # bottom-right -> first byte (image row 3 is stored first), bit 7 -> 0x80
    frames[2, 1, 2] = 1  # row 1 -> third byte, bit 2 -> 0x04
    frames[2, 2, 5] = 1  # row 2 -> second byte, bit 5 -> 0x20
    return frames


def random_frames(n: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2, (n, h, w), dtype=np.uint8)


def test_golden_file_bytes_and_frames(tmp_path: Path) -> None:
    golden = DATA / "golden_4x8_3frames.dat"
    assert golden.read_bytes() == bytes.fromhex(GOLDEN_HEX)
    with DatReader(golden, 4, 8) as reader:
        assert len(reader) == reader.num_frames == 3
        np.testing.assert_array_equal(reader.read(), golden_frames())
        # Packet layout: same bits, top row first.
        assert reader.read_packed().tobytes() == bytes.fromhex("01000000ff00008000042000")
    write_dat(tmp_path / "out.dat", golden_frames())
    assert (tmp_path / "out.dat").read_bytes() == bytes.fromhex(GOLDEN_HEX)


def test_golden_unaligned_bit_stream(tmp_path: Path) -> None:
    # 3x5 frames are 15 bits, packed back to back without per-frame padding.
    frames = np.zeros((2, 3, 5), np.uint8)
    frames[0, 0, 0] = 1  # stored row 2 (image rows flipped), pixel 10 -> byte 1, bit 2
    frames[1, 2, 4] = 1  # stored row 0 of frame 1: bit 15 + 4 = 19 -> byte 2, bit 3
    path = tmp_path / "odd.dat"
    path.write_bytes(bytes.fromhex("00040800"))  # 30 bits -> 4 bytes, last 2 bits padding
    np.testing.assert_array_equal(read_dat(path, 3, 5), frames)
    write_dat(tmp_path / "odd2.dat", frames)
    assert (tmp_path / "odd2.dat").read_bytes() == bytes.fromhex("00040800")


@pytest.mark.parametrize(("h", "w"), [(4, 8), (3, 5), (7, 9), (10, 10), (2, 4), (250, 400), (20, 1024)])
def test_round_trip_and_partial_reads(tmp_path: Path, h: int, w: int) -> None:
    n = 9 if h * w > 10_000 else 23
    frames = random_frames(n, h, w, seed=h + w)
    path = tmp_path / "rec.dat"
    write_dat(path, frames[:5])
    write_dat(path, frames[5:], append=True)
    assert path.stat().st_size == -(-n * h * w // 8)
    with DatReader(path, h, w) as reader:
        assert len(reader) == n
        np.testing.assert_array_equal(reader.read(), frames)
        np.testing.assert_array_equal(reader.read(3, 4), frames[3:7])
        np.testing.assert_array_equal(reader.read(n - 1, 1), frames[-1:])
        assert reader.read(2, 0).shape == (0, h, w)
        np.testing.assert_array_equal(reader.read_packed(2, 5), pack_frames(frames[2:7]))
        np.testing.assert_array_equal(np.concatenate(list(reader.iter_chunks(4))), frames)
        np.testing.assert_array_equal(
            np.concatenate(list(reader.iter_chunks(3, start=1, stop=8))), frames[1:8]
        )
        packed_chunks = np.concatenate(list(reader.iter_chunks(5, packed=True)))
        np.testing.assert_array_equal(packed_chunks, pack_frames(frames))


@pytest.mark.parametrize(("h", "w"), [(4, 8), (3, 5), (7, 9), (10, 10)])
def test_streaming_writer(tmp_path: Path, h: int, w: int) -> None:
    frames = random_frames(17, h, w, seed=3)
    path = tmp_path / "s.dat"
    with DatWriter(path, h, w) as writer:
        writer.write(frames[:1])
        writer.write_packed(pack_frames(frames[1:6]))
        writer.write(frames[6:6])  # empty block is fine
        writer.write(frames[6:11])
        writer.write_packed(pack_frames(frames[11:]).tobytes())
        assert writer.num_frames == 17
    np.testing.assert_array_equal(read_dat(path, h, w), frames)
    with DatWriter(path, h, w, append=True) as writer:  # appending after a partial last byte
        assert writer.num_frames == 17
        writer.write(frames[:3])
    np.testing.assert_array_equal(read_dat(path, h, w), np.concatenate([frames, frames[:3]]))


@settings(max_examples=30, deadline=None)
@given(
    h=st.integers(1, 12),
    w=st.integers(8, 24),
    cuts=st.lists(st.integers(0, 12), min_size=0, max_size=4),
    seed=st.integers(0, 1000),
)
def test_fuzz_chunked_writes_equal_one_shot(
    tmp_path_factory: pytest.TempPathFactory, h: int, w: int, cuts: list[int], seed: int
) -> None:
    frames = random_frames(12, h, w, seed)
    path = tmp_path_factory.mktemp("fuzz") / "f.dat"
    with DatWriter(path, h, w) as writer:
        for a, b in zip([0, *sorted(cuts)], [*sorted(cuts), 12], strict=True):
            writer.write(frames[a:b])
    with DatReader(path, h, w) as reader:
        np.testing.assert_array_equal(reader.read(), frames)
        for start, count in ((0, 12), (5, 7), (11, 1)):
            np.testing.assert_array_equal(reader.read(start, count), frames[start : start + count])


def test_size_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.dat"
    path.write_bytes(bytes(12_500 * 3 + 100))
    with pytest.raises(
        DatFileError, match=r"bad.dat' has 37600 bytes.*3 frames = 37500 bytes and 4 frames = 50000"
    ):
        DatReader(path, 250, 400)
    with pytest.raises(DatFileError, match="does not exist"):
        DatReader(tmp_path / "missing.dat", 250, 400)
    with pytest.raises(DatFileError, match="height must be positive"):
        DatReader(path, 0, 400)
    with pytest.raises(DatFileError, match="at least 8 pixels"):
        DatReader(path, 1, 3)
    with pytest.raises(DatFileError, match="not a regular file"):
        DatReader(tmp_path, 4, 8)
    assert dat_num_frames(4, 3, 5) == 2
    with pytest.raises(DatFileError, match="not a whole number of 3x5 frames"):
        dat_num_frames(3, 3, 5)
    path.write_bytes(bytes(12_500 * 3 + 100))
    with pytest.raises(DatFileError, match="not a whole number"):
        DatWriter(path, 250, 400, append=True)


def test_range_and_state_errors(tmp_path: Path) -> None:
    path = tmp_path / "r.dat"
    write_dat(path, random_frames(4, 4, 8))
    reader = DatReader(path, 4, 8)
    with pytest.raises(DatFileError, match=r"frames \[3, 5\).*has 4 frames"):
        reader.read(3, 2)
    with pytest.raises(DatFileError, match="chunk_frames"):
        list(reader.iter_chunks(0))
    reader.close()
    with pytest.raises(DatFileError, match="closed"):
        reader.read(0, 1)
    with DatWriter(path, 4, 8) as writer:
        with pytest.raises(SpikeFormatError, match=r"\[N, 4, 8\]"):
            writer.write(random_frames(2, 4, 9))
        with pytest.raises(SpikeFormatError, match="whole number"):
            writer.write_packed(bytes(5))
    with pytest.raises(DatFileError, match="closed"):
        writer.write(random_frames(1, 4, 8))


def test_empty_file_has_zero_frames(tmp_path: Path) -> None:
    path = tmp_path / "empty.dat"
    DatWriter(path, 4, 8).close()
    with DatReader(path, 4, 8) as reader:
        assert len(reader) == 0
        assert reader.read().shape == (0, 4, 8)
        assert list(reader.iter_chunks(10)) == []


def _authors_spike_utils(spikezoo_package: Path | None):
    """Spikezoo's spike_utils.py, loaded by path: the package __init__ pulls in heavy extras."""
    import importlib.util

    path = None if spikezoo_package is None else spikezoo_package / "utils" / "spike_utils.py"
    if path is None or not path.is_file():
        pytest.skip("spikezoo is not installed")
    for dep in ("cv2", "imageio"):
        pytest.importorskip(dep, reason=f"spikezoo's spike_utils imports {dep}")
    spec = importlib.util.spec_from_file_location("_spikezoo_spike_utils", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_matches_authors_reader(tmp_path: Path, spikezoo_package: Path | None) -> None:
    load_vidar_dat = _authors_spike_utils(spikezoo_package).load_vidar_dat
    np.testing.assert_array_equal(load_vidar_dat(str(DATA / "golden_4x8_3frames.dat"), 4, 8), golden_frames())
    frames = random_frames(5, 24, 40, seed=9)
    write_dat(tmp_path / "r.dat", frames)
    np.testing.assert_array_equal(load_vidar_dat(str(tmp_path / "r.dat"), 24, 40), frames)
    train = spikezoo_package / "data" / "base" / "train"
    if train.is_dir():
        dat = sorted((train / "spike").glob("*.dat"))[0]
        np.testing.assert_array_equal(
            load_vidar_dat(str(dat), 250, 400)[100:110], read_dat(dat, 250, 400, 100, 10)
        )


def test_real_recording(spikezoo_train: Path) -> None:
    from PIL import Image

    dat = sorted((spikezoo_train / "spike").glob("*.dat"))[0]
    gt = np.asarray(Image.open(spikezoo_train / "gt" / (dat.stem + ".png")).convert("L"), np.float32) / 255
    with DatReader(dat, 250, 400) as reader:
        assert len(reader) == 301
        window = reader.read(150 - 30, 61)
        np.testing.assert_array_equal(
            window[::7], np.stack([reader.read(120 + i, 1)[0] for i in range(0, 61, 7)])
        )
        np.testing.assert_array_equal(reader.read_packed(120, 61), pack_frames(window))
    # The rate is alpha * intensity with alpha = 0.6 (DESIGN.md §4).
    assert abs(window.mean() - 0.6 * gt.mean()) < 0.02
    est = np.clip(tfp(window, alpha=0.6), 0, 1)
    assert np.corrcoef(est.ravel(), gt.ravel())[0, 1] > 0.85
    # Reading without undoing the flip would decorrelate the image: the orientation is right.
    assert np.corrcoef(est[::-1].ravel(), gt.ravel())[0, 1] < 0.6


@pytest.mark.parametrize(("h", "w"), [(6, 16), (5, 7)])
def test_read_packed_into_writes_what_read_packed_returns(tmp_path, h, w):
    frames = (np.random.default_rng(5).random((9, h, w)) < 0.4).astype(np.uint8)
    write_dat(tmp_path / "a.dat", frames)
    fb = (h * w + 7) // 8
    with DatReader(tmp_path / "a.dat", h, w) as reader:
        out = np.full(4 * fb + 3, 0xAA, np.uint8)  # larger than needed: the tail is left alone
        reader.read_packed_into(2, 4, out)
        np.testing.assert_array_equal(out[: 4 * fb], reader.read_packed(2, 4))
        assert (out[4 * fb :] == 0xAA).all()
        with pytest.raises(SpikeFormatError, match="at least"):
            reader.read_packed_into(0, 5, out)
        with pytest.raises(SpikeFormatError, match="read-only"):
            reader.read_packed_into(0, 1, np.frombuffer(bytes(fb), np.uint8))
        with pytest.raises(DatFileError):
            reader.read_packed_into(8, 2, out)
