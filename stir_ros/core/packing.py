# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Bit-packing of binary spike frames for SpikePacket payloads.

Packet layout (msg/SpikePacket.msg): with ``vidar_bitpacked`` every frame is ``height * width``
bits, 8 pixels per byte, least significant bit first (pixel ``i`` of a frame is bit ``i % 8`` of
byte ``i // 8``), row-major with the TOP image row first, padded with zero bits to
``ceil(height * width / 8)`` bytes. With ``unpacked_u8`` every pixel is one uint8 (0 or 1).

The numpy functions use ``np.packbits``/``np.unpackbits`` with ``bitorder="little"`` over a whole
block at once; the torch functions use shifts and masks so that they run on any device and give
bit-identical results.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from stir_ros.core.errors import PacketError, SpikeFormatError

if TYPE_CHECKING:  # torch is imported where it is used: the driver and the bag tools need only numpy
    import torch

__all__ = [
    "ENCODINGS",
    "ENCODING_UNPACKED_U8",
    "ENCODING_VIDAR_BITPACKED",
    "MAX_FRAME_PIXELS",
    "as_byte_array",
    "check_frame_size",
    "decode_payload",
    "encode_frames",
    "pack_frames",
    "pack_frames_torch",
    "packed_frame_bytes",
    "payload_size",
    "unpack_frames",
    "unpack_frames_torch",
]

ENCODING_VIDAR_BITPACKED = "vidar_bitpacked"
ENCODING_UNPACKED_U8 = "unpacked_u8"
ENCODINGS = (ENCODING_VIDAR_BITPACKED, ENCODING_UNPACKED_U8)

# 32x the largest sensor in use (2000x1000): anything above is a corrupt header, and rejecting it
# early gives a better message than a failed multi-gigabyte allocation.
MAX_FRAME_PIXELS = 1 << 26


def check_frame_size(height: Any, width: Any, error: type[SpikeFormatError]) -> tuple[int, int]:
    """Return ``(height, width)`` as ints, or raise ``error`` if they are not a usable frame size."""
    for name, value in (("height", height), ("width", width)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise error(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
        if value <= 0:
            raise error(f"{name} must be positive, got {value}")
    height, width = int(height), int(width)
    if height * width > MAX_FRAME_PIXELS:
        raise error(
            f"frame size {height}x{width} ({height * width} pixels) exceeds the limit of "
            f"{MAX_FRAME_PIXELS} pixels; the header is probably corrupt"
        )
    return height, width


def packed_frame_bytes(height: int, width: int) -> int:
    """Bytes of one bit-packed frame: ``ceil(height * width / 8)``.

    Args:
        height: Frame height in pixels.
        width: Frame width in pixels.

    Returns:
        The number of bytes, padding included.
    """
    height, width = check_frame_size(height, width, SpikeFormatError)
    return (height * width + 7) // 8


def payload_size(height: int, width: int, num_frames: int, encoding: str) -> int:
    """Bytes of a packet payload of ``num_frames`` frames in ``encoding``.

    Args:
        height: Frame height in pixels.
        width: Frame width in pixels.
        num_frames: Number of frames in the payload.
        encoding: One of :data:`ENCODINGS`.

    Returns:
        The exact payload length in bytes.

    Raises:
        SpikeFormatError: For an unknown encoding, a bad frame size or a negative frame count.
    """
    height, width = check_frame_size(height, width, SpikeFormatError)
    if num_frames < 0:
        raise SpikeFormatError(f"num_frames must be >= 0, got {num_frames}")
    if encoding == ENCODING_VIDAR_BITPACKED:
        return int(num_frames) * ((height * width + 7) // 8)
    if encoding == ENCODING_UNPACKED_U8:
        return int(num_frames) * height * width
    raise SpikeFormatError(f"unknown encoding {encoding!r}; expected one of {ENCODINGS}")


def _check_frames(frames: Any) -> None:
    if frames.ndim != 3:
        raise SpikeFormatError(f"frames must have shape [N, H, W], got shape {tuple(frames.shape)}")
    if 0 in frames.shape[1:]:
        raise SpikeFormatError(f"frames must have a non-empty H and W, got {tuple(frames.shape)}")


def pack_frames(frames: np.ndarray) -> np.ndarray:
    """Bit-pack a block of binary frames into the packet layout.

    Args:
        frames: ``[N, H, W]`` array, top image row first; any nonzero value is a spike
            (bool and uint8 0/1 are packed without conversion).

    Returns:
        1-D uint8 array of ``N * ceil(H * W / 8)`` bytes, padding bits zero.

    Raises:
        SpikeFormatError: If ``frames`` is not 3-D.
    """
    frames = np.asarray(frames)
    _check_frames(frames)
    n, h, w = frames.shape
    if frames.dtype not in (np.bool_, np.uint8):
        frames = frames != 0
    # packbits pads every row of the 2-D view to whole bytes with zeros: exactly the per-frame
    # padding of the packet layout.
    return np.packbits(frames.reshape(n, h * w), axis=1, bitorder="little").reshape(-1)


def as_byte_array(data: Any, error: type[SpikeFormatError]) -> np.ndarray:
    """View a payload (bytes-like, array.array('B') or uint8 ndarray) as a 1-D uint8 array."""
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8:
            raise error(f"payload array must be uint8, got {data.dtype}")
        return data.reshape(-1)
    try:
        return np.frombuffer(memoryview(data), dtype=np.uint8)
    except (TypeError, ValueError) as err:
        raise error(f"payload must be bytes-like or a uint8 array, got {type(data).__name__}") from err


def _frame_count(length: int, frame_bytes: int, num_frames: int | None, error: type[SpikeFormatError]) -> int:
    if num_frames is None:
        if length == 0 or length % frame_bytes:
            raise error(
                f"payload of {length} bytes is not a positive whole number of frames of {frame_bytes} bytes"
            )
        return length // frame_bytes
    if num_frames <= 0:
        raise error(f"num_frames must be positive, got {num_frames}")
    if length != num_frames * frame_bytes:
        raise error(
            f"payload has {length} bytes, expected {num_frames} frames x {frame_bytes} bytes = "
            f"{num_frames * frame_bytes} bytes"
        )
    return int(num_frames)


def unpack_frames(data: Any, height: int, width: int, num_frames: int | None = None) -> np.ndarray:
    """Unpack a bit-packed payload into binary frames.

    Args:
        data: Payload in the packet layout: bytes, bytearray, memoryview, array.array('B') or a
            uint8 numpy array.
        height: Frame height in pixels.
        width: Frame width in pixels.
        num_frames: Expected frame count; ``None`` infers it from the payload length.

    Returns:
        uint8 array ``[N, H, W]`` of 0/1, top row first.

    Raises:
        SpikeFormatError: If the payload length does not match the frame size and count.
    """
    height, width = check_frame_size(height, width, SpikeFormatError)
    raw = as_byte_array(data, SpikeFormatError)
    frame_bytes = (height * width + 7) // 8
    n = _frame_count(raw.size, frame_bytes, num_frames, SpikeFormatError)
    bits = np.unpackbits(raw.reshape(n, frame_bytes), axis=1, count=height * width, bitorder="little")
    return bits.reshape(n, height, width)


def pack_frames_torch(frames: torch.Tensor) -> torch.Tensor:
    """Torch version of :func:`pack_frames`, on the device of ``frames``; bit-identical output.

    Args:
        frames: ``[N, H, W]`` tensor of any dtype; nonzero is a spike.

    Returns:
        1-D uint8 tensor of ``N * ceil(H * W / 8)`` bytes.
    """
    import torch

    _check_frames(frames)
    if frames.device.type == "cpu":
        # numpy's packbits is several times faster than any torch formulation on a CPU.
        return torch.from_numpy(pack_frames(frames.detach().numpy()))
    return _pack_bits_torch(frames)


def _pack_bits_torch(frames: torch.Tensor) -> torch.Tensor:
    """Device-agnostic packing with shifts and ors (the path taken on GPUs)."""
    import torch

    n, h, w = frames.shape
    frame_bytes = (h * w + 7) // 8
    bits = (frames.reshape(n, h * w) != 0).to(torch.uint8)
    pad = frame_bytes * 8 - h * w
    if pad:
        bits = torch.nn.functional.pad(bits, (0, pad))
    bits = bits.reshape(n, frame_bytes, 8)
    # Eight shift-or passes over 1/8-size tensors: cheaper in memory than a weighted int64 sum.
    out = bits[..., 0].clone()
    for b in range(1, 8):
        out |= bits[..., b] << b
    return out.reshape(-1)


def unpack_frames_torch(
    data: torch.Tensor,
    height: int,
    width: int,
    num_frames: int | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Torch version of :func:`unpack_frames`, on the device of ``data``; bit-identical output.

    Args:
        data: uint8 tensor holding the payload (any shape; it is flattened).
        height: Frame height in pixels.
        width: Frame width in pixels.
        num_frames: Expected frame count; ``None`` infers it from the payload length.
        dtype: dtype of the result (uint8, bool, float32, ...); ``None`` means uint8.

    Returns:
        ``[N, H, W]`` tensor of 0/1 on ``data.device``.

    Raises:
        SpikeFormatError: If ``data`` is not uint8 or its length does not match.
    """
    import torch

    dtype = torch.uint8 if dtype is None else dtype
    height, width = check_frame_size(height, width, SpikeFormatError)
    if data.dtype != torch.uint8:
        raise SpikeFormatError(f"payload tensor must be uint8, got {data.dtype}")
    frame_bytes = (height * width + 7) // 8
    n = _frame_count(data.numel(), frame_bytes, num_frames, SpikeFormatError)
    if data.device.type == "cpu":
        # numpy's unpackbits is several times faster than any torch formulation on a CPU.
        frames = unpack_frames(data.detach().reshape(-1).contiguous().numpy(), height, width, n)
        return torch.from_numpy(frames).to(dtype)
    return _unpack_bits_torch(data, height, width, n).to(dtype)


def _unpack_bits_torch(data: torch.Tensor, height: int, width: int, num_frames: int) -> torch.Tensor:
    """Device-agnostic unpacking with shifts and masks (the path taken on GPUs); uint8 result."""
    import torch

    frame_bytes = (height * width + 7) // 8
    shifts = torch.arange(8, dtype=torch.uint8, device=data.device)
    bits = (data.reshape(num_frames, frame_bytes, 1) >> shifts) & 1
    bits = bits.reshape(num_frames, frame_bytes * 8)[:, : height * width]
    return bits.reshape(num_frames, height, width)


def encode_frames(frames: np.ndarray, encoding: str) -> np.ndarray:
    """Encode a block of binary frames as a packet payload.

    Args:
        frames: ``[N, H, W]`` array (N >= 1), top row first; nonzero is a spike.
        encoding: One of :data:`ENCODINGS`.

    Returns:
        1-D uint8 payload of :func:`payload_size` bytes.

    Raises:
        PacketError: For an unknown encoding, an empty block or a bad frame size.
    """
    if encoding not in ENCODINGS:
        raise PacketError(f"unknown encoding {encoding!r}; expected one of {ENCODINGS}")
    frames = np.asarray(frames)
    if frames.ndim != 3 or frames.shape[0] == 0:
        raise PacketError(f"frames must have shape [N, H, W] with N >= 1, got {frames.shape}")
    check_frame_size(frames.shape[1], frames.shape[2], PacketError)
    if encoding == ENCODING_VIDAR_BITPACKED:
        return pack_frames(frames)
    if frames.dtype == np.bool_:
        return frames.view(np.uint8).reshape(-1).copy()
    return (frames != 0).astype(np.uint8).reshape(-1)


def decode_payload(data: Any, height: int, width: int, num_frames: int, encoding: str) -> np.ndarray:
    """Decode a packet payload into binary frames, validating the header first.

    Everything is checked before anything is allocated, so a corrupt header (say 65535x65535
    pixels) fails with a message instead of a huge allocation.

    Args:
        data: The payload (bytes-like, array.array('B') or uint8 ndarray).
        height: Frame height from the packet header.
        width: Frame width from the packet header.
        num_frames: Frame count from the packet header (>= 1).
        encoding: Encoding from the packet header.

    Returns:
        uint8 array ``[num_frames, height, width]`` of 0/1, top row first. For ``unpacked_u8``
        it is a read-only view of ``data`` when possible; values other than 0/1 are reported.

    Raises:
        PacketError: If any header field is invalid or disagrees with the payload length.
    """
    if encoding not in ENCODINGS:
        raise PacketError(f"unknown encoding {encoding!r}; expected one of {ENCODINGS}")
    height, width = check_frame_size(height, width, PacketError)
    if isinstance(num_frames, bool) or not isinstance(num_frames, (int, np.integer)) or num_frames <= 0:
        raise PacketError(f"num_frames must be a positive integer, got {num_frames!r}")
    raw = as_byte_array(data, PacketError)
    if encoding == ENCODING_VIDAR_BITPACKED:
        frame_bytes = (height * width + 7) // 8
        _frame_count(raw.size, frame_bytes, num_frames, PacketError)
        return unpack_frames(raw, height, width, num_frames)
    _frame_count(raw.size, height * width, num_frames, PacketError)
    if raw.size and int(raw.max()) > 1:
        raise PacketError(f"{ENCODING_UNPACKED_U8} payload holds values other than 0 and 1")
    return raw.reshape(int(num_frames), height, width)
