# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Bit-packing of spike frames for SpikePacket payloads (stir_ros.core.packing)."""

from __future__ import annotations

import array
import tracemalloc

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from stir_ros.core.errors import PacketError, SpikeFormatError
from stir_ros.core.packing import (
    ENCODING_UNPACKED_U8,
    ENCODING_VIDAR_BITPACKED,
    ENCODINGS,
    _pack_bits_torch,
    _unpack_bits_torch,
    decode_payload,
    encode_frames,
    pack_frames,
    pack_frames_torch,
    packed_frame_bytes,
    payload_size,
    unpack_frames,
    unpack_frames_torch,
)

SIZES = [(1, 1), (3, 5), (7, 9), (4, 8), (2, 4), (16, 16), (250, 400), (1, 13)]


def random_frames(n: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2, (n, h, w), dtype=np.uint8)


def test_constants_match_the_message_definition() -> None:
    assert ENCODING_VIDAR_BITPACKED == "vidar_bitpacked"
    assert ENCODING_UNPACKED_U8 == "unpacked_u8"
    assert set(ENCODINGS) == {ENCODING_VIDAR_BITPACKED, ENCODING_UNPACKED_U8}


def test_sizes() -> None:
    assert packed_frame_bytes(250, 400) == 12_500
    assert packed_frame_bytes(3, 5) == 2
    assert packed_frame_bytes(1, 1) == 1
    assert payload_size(250, 400, 10, ENCODING_VIDAR_BITPACKED) == 125_000
    assert payload_size(3, 5, 4, ENCODING_VIDAR_BITPACKED) == 8  # padded per frame
    assert payload_size(3, 5, 4, ENCODING_UNPACKED_U8) == 60
    with pytest.raises(SpikeFormatError, match="unknown encoding"):
        payload_size(3, 5, 4, "jpeg")


def test_bit_order_is_lsb_first_top_row_first() -> None:
    # Hand-written layout: pixel i is bit i % 8 of byte i // 8, top row first, no flip.
    frame = np.zeros((1, 2, 8), np.uint8)
    frame[0, 0, 0] = 1  # pixel 0 -> byte 0, bit 0
    frame[0, 0, 7] = 1  # pixel 7 -> byte 0, bit 7
    frame[0, 1, 1] = 1  # pixel 9 -> byte 1, bit 1
    assert pack_frames(frame).tobytes() == bytes([0x81, 0x02])
    odd = np.zeros((2, 3, 3), np.uint8)
    odd[0, 2, 2] = 1  # pixel 8 of frame 0 -> byte 1, bit 0; frame padded to 2 bytes
    odd[1, 0, 1] = 1  # pixel 1 of frame 1 -> byte 2, bit 1
    assert pack_frames(odd).tobytes() == bytes([0x00, 0x01, 0x02, 0x00])


@pytest.mark.parametrize(("h", "w"), SIZES)
def test_round_trip_numpy_and_torch(h: int, w: int) -> None:
    frames = random_frames(5, h, w, seed=h * 1000 + w)
    packed = pack_frames(frames)
    assert packed.dtype == np.uint8 and packed.shape == (5 * packed_frame_bytes(h, w),)
    np.testing.assert_array_equal(unpack_frames(packed, h, w), frames)
    np.testing.assert_array_equal(unpack_frames(packed.tobytes(), h, w, num_frames=5), frames)
    packed_t = pack_frames_torch(torch.from_numpy(frames))
    np.testing.assert_array_equal(packed_t.numpy(), packed)
    unpacked_t = unpack_frames_torch(torch.from_numpy(packed), h, w, num_frames=5)
    assert unpacked_t.dtype == torch.uint8
    np.testing.assert_array_equal(unpacked_t.numpy(), frames)
    # CPU tensors go through numpy; the shift-and-mask path that GPUs take is checked here too.
    np.testing.assert_array_equal(_pack_bits_torch(torch.from_numpy(frames)).numpy(), packed)
    np.testing.assert_array_equal(_unpack_bits_torch(torch.from_numpy(packed), h, w, 5).numpy(), frames)


def test_padding_bits_are_zero() -> None:
    frames = np.ones((4, 3, 5), np.uint8)  # 15 bits per frame: the 16th must be 0
    packed = pack_frames(frames).reshape(4, 2)
    assert (packed[:, 0] == 0xFF).all() and (packed[:, 1] == 0x7F).all()
    np.testing.assert_array_equal(pack_frames_torch(torch.ones(4, 3, 5)).numpy(), packed.ravel())
    np.testing.assert_array_equal(_pack_bits_torch(torch.ones(4, 3, 5)).numpy(), packed.ravel())


def test_inputs_bool_float_and_buffers() -> None:
    frames = random_frames(3, 7, 9)
    packed = pack_frames(frames)
    np.testing.assert_array_equal(pack_frames(frames.astype(bool)), packed)
    np.testing.assert_array_equal(pack_frames(frames.astype(np.float32)), packed)
    np.testing.assert_array_equal(pack_frames_torch(torch.from_numpy(frames).bool()).numpy(), packed)
    for buf in (
        packed.tobytes(),
        bytearray(packed.tobytes()),
        memoryview(packed),
        array.array("B", packed.tobytes()),
    ):
        np.testing.assert_array_equal(unpack_frames(buf, 7, 9), frames)
    as_float = unpack_frames_torch(torch.from_numpy(packed), 7, 9, dtype=torch.float32)
    assert as_float.dtype == torch.float32
    np.testing.assert_array_equal(as_float.numpy(), frames)


def test_unpack_errors() -> None:
    with pytest.raises(SpikeFormatError, match="expected 2 frames"):
        unpack_frames(b"\x00" * 5, 3, 5, num_frames=2)
    with pytest.raises(SpikeFormatError, match="whole number of frames"):
        unpack_frames(b"\x00" * 5, 3, 5)
    with pytest.raises(SpikeFormatError, match="uint8"):
        unpack_frames(np.zeros(4, np.int16), 3, 5)
    with pytest.raises(SpikeFormatError, match="uint8"):
        unpack_frames_torch(torch.zeros(4, dtype=torch.int16), 3, 5)
    with pytest.raises(SpikeFormatError, match="shape"):
        pack_frames(np.zeros((3, 5), np.uint8))


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_encode_decode_round_trip(encoding: str) -> None:
    frames = random_frames(6, 7, 9)
    payload = encode_frames(frames, encoding)
    assert payload.size == payload_size(7, 9, 6, encoding)
    np.testing.assert_array_equal(decode_payload(payload.tobytes(), 7, 9, 6, encoding), frames)
    np.testing.assert_array_equal(
        decode_payload(array.array("B", payload.tobytes()), 7, 9, 6, encoding), frames
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((b"\x00" * 16, 4, 8, 2, "png"), "unknown encoding"),
        ((b"\x00" * 16, 4, 8, 0, ENCODING_VIDAR_BITPACKED), "num_frames must be a positive"),
        ((b"\x00" * 16, 0, 8, 4, ENCODING_VIDAR_BITPACKED), "height must be positive"),
        ((b"\x00" * 16, 4, -8, 4, ENCODING_VIDAR_BITPACKED), "width must be positive"),
        ((b"\x00" * 15, 4, 8, 4, ENCODING_VIDAR_BITPACKED), "expected 4 frames x 4 bytes = 16"),
        ((b"\x00" * 17, 4, 8, 4, ENCODING_VIDAR_BITPACKED), "payload has 17 bytes"),
        ((b"\x00" * 16, 4, 8, 4, ENCODING_UNPACKED_U8), "expected 4 frames x 32 bytes"),
        ((b"\x02" * 32, 4, 8, 1, ENCODING_UNPACKED_U8), "other than 0 and 1"),
        ((b"\x00" * 16, 4.0, 8, 4, ENCODING_VIDAR_BITPACKED), "height must be an integer"),
        ((b"\x00" * 16, 4, 8, 2**32 - 1, ENCODING_VIDAR_BITPACKED), "payload has 16 bytes"),
        (([0] * 16, 4, 8, 4, ENCODING_VIDAR_BITPACKED), "bytes-like"),
    ],
)
def test_decode_payload_validation(args: tuple, message: str) -> None:
    with pytest.raises(PacketError, match=message):
        decode_payload(*args)


def test_corrupt_header_does_not_allocate() -> None:
    payload = bytes(1000)
    tracemalloc.start()
    try:
        for encoding in ENCODINGS:
            with pytest.raises(PacketError, match="exceeds the limit"):
                decode_payload(payload, 65535, 65535, 1, encoding)  # 4.3 billion pixels
            with pytest.raises(PacketError, match="payload has 1000 bytes"):
                decode_payload(payload, 8000, 8000, 4_000_000_000, encoding)  # in limit, huge count
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


def test_encode_frames_validation() -> None:
    with pytest.raises(PacketError, match="unknown encoding"):
        encode_frames(np.zeros((1, 2, 4), np.uint8), "raw")
    with pytest.raises(PacketError, match="N >= 1"):
        encode_frames(np.zeros((0, 2, 4), np.uint8), ENCODING_VIDAR_BITPACKED)
    np.testing.assert_array_equal(encode_frames(np.full((1, 1, 3), 7), ENCODING_UNPACKED_U8), [1, 1, 1])


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 4),
    h=st.integers(1, 40),
    w=st.integers(1, 40),
    seed=st.integers(0, 2**32 - 1),
    density=st.sampled_from([0.0, 0.1, 0.5, 1.0]),
)
def test_fuzz_round_trip(n: int, h: int, w: int, seed: int, density: float) -> None:
    frames = (np.random.default_rng(seed).random((n, h, w)) < density).astype(np.uint8)
    packed = pack_frames(frames)
    np.testing.assert_array_equal(pack_frames_torch(torch.from_numpy(frames)).numpy(), packed)
    np.testing.assert_array_equal(_pack_bits_torch(torch.from_numpy(frames)).numpy(), packed)
    np.testing.assert_array_equal(unpack_frames(packed, h, w), frames)
    np.testing.assert_array_equal(unpack_frames_torch(torch.from_numpy(packed), h, w).numpy(), frames)
    np.testing.assert_array_equal(_unpack_bits_torch(torch.from_numpy(packed), h, w, n).numpy(), frames)
    # Every bit past H*W in each frame is zero.
    bits = np.unpackbits(packed.reshape(n, -1), axis=1, bitorder="little")
    assert not bits[:, h * w :].any()


@settings(max_examples=60, deadline=None)
@given(
    data=st.binary(min_size=0, max_size=64), h=st.integers(1, 9), w=st.integers(1, 9), n=st.integers(-1, 9)
)
def test_fuzz_decode_never_crashes_unexpectedly(data: bytes, h: int, w: int, n: int) -> None:
    for encoding in ENCODINGS:
        try:
            frames = decode_payload(data, h, w, n, encoding)
        except PacketError:
            continue
        assert frames.shape == (n, h, w)


@pytest.mark.cuda
def test_torch_on_cuda_is_bit_identical() -> None:
    frames = random_frames(7, 250, 400)
    packed = pack_frames(frames)
    on_gpu = pack_frames_torch(torch.from_numpy(frames).cuda())
    np.testing.assert_array_equal(on_gpu.cpu().numpy(), packed)
    back = unpack_frames_torch(torch.from_numpy(packed).cuda(), 250, 400)
    assert back.is_cuda
    np.testing.assert_array_equal(back.cpu().numpy(), frames)
