# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Intensity images in [0, 1] to the pixel bytes of a ``sensor_msgs/Image`` (and back).

Used by the reconstruction node and the offline bag tools, so that both publish the same bytes,
with the same ``frame_id`` (:func:`image_frame_id`) and, for a camera without calibration, the
same ``camera_info`` (:func:`uncalibrated_camera_info`).
Encodings follow ``sensor_msgs/image_encodings``: ``mono8`` and ``mono16`` are scaled to the
full integer range with rounding to nearest, ``32FC1`` is the float value itself. Multi-byte
pixels are little-endian (``is_bigendian = 0``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from stir_ros.core.errors import ConfigError, SpikeFormatError

__all__ = [
    "IMAGE_ENCODINGS", "from_image_bytes", "image_frame_id", "to_image_array", "to_image_bytes",
    "uncalibrated_camera_info",
]  # fmt: skip

#: Output encoding -> (numpy dtype, full-scale value or None for float).
IMAGE_ENCODINGS: dict[str, tuple[np.dtype[Any], float | None]] = {
    "mono8": (np.dtype(np.uint8), 255.0),
    "mono16": (np.dtype("<u2"), 65535.0),
    "32FC1": (np.dtype("<f4"), None),
}


def _check_encoding(encoding: str) -> tuple[np.dtype[Any], float | None]:
    try:
        return IMAGE_ENCODINGS[encoding]
    except (KeyError, TypeError):
        raise ConfigError(
            f"output encoding must be one of {', '.join(IMAGE_ENCODINGS)}, got {encoding!r}"
        ) from None


def to_image_array(img: np.ndarray, encoding: str) -> np.ndarray:
    """Convert a float ``[H, W]`` image in [0, 1] to the pixel array of ``encoding``.

    Values outside [0, 1] are clamped and NaN becomes 0, so a bad pixel cannot wrap around.
    """
    dtype, scale = _check_encoding(encoding)
    img = np.asarray(img)
    if img.ndim != 2:
        raise SpikeFormatError(f"image must be [H, W], got shape {img.shape}")
    x = np.clip(np.nan_to_num(img.astype(np.float32, copy=False), nan=0.0), 0.0, 1.0)
    if scale is None:
        return x.astype(dtype)
    return np.rint(x * np.float32(scale)).astype(dtype)


def to_image_bytes(img: np.ndarray, encoding: str = "mono8") -> tuple[bytes, int]:
    """Pixel bytes and row step (bytes per row) of ``img`` in ``encoding``.

    Args:
        img: float ``[H, W]`` intensity in [0, 1].
        encoding: ``mono8``, ``mono16`` or ``32FC1``.

    Returns:
        ``(data, step)`` with ``len(data) == H * step``; rows are not padded.

    Raises:
        ConfigError: For an unknown encoding. SpikeFormatError: For a wrong shape.
    """
    arr = to_image_array(img, encoding)
    return arr.tobytes(), arr.shape[1] * arr.itemsize


def from_image_bytes(data: Any, height: int, width: int, step: int, encoding: str) -> np.ndarray:
    """Inverse of :func:`to_image_bytes`: the float32 ``[H, W]`` image in [0, 1].

    Row padding (``step`` larger than the pixel bytes of a row) is skipped.
    """
    dtype, scale = _check_encoding(encoding)
    raw = np.frombuffer(memoryview(data), np.uint8)
    row = width * dtype.itemsize
    if step < row or raw.size < height * step:
        raise SpikeFormatError(
            f"image data of {raw.size} bytes with step {step} cannot hold {height}x{width} {encoding}"
        )
    rows = raw[: height * step].reshape(height, step)[:, :row]
    pixels = np.ascontiguousarray(rows).view(dtype).reshape(height, width)
    out = pixels.astype(np.float32)
    return out if scale is None else out / np.float32(scale)


def image_frame_id(frame_id_setting: str, packet_frame_id: str) -> str:
    """The ``frame_id`` of an image: the ``frame_id`` setting, or (empty) that of the packet completing its window."""
    return frame_id_setting or packet_frame_id


def uncalibrated_camera_info(height: int, width: int) -> dict[str, Any]:
    """The fields of a ``sensor_msgs/CameraInfo`` that says only the image size (K, P all zero, R identity).

    What the node and ``bag reconstruct`` publish when the camera sent no calibration; the header
    and the region of interest (all zero) are left to the message's own defaults.
    """
    return {
        "height": int(height), "width": int(width), "distortion_model": "plumb_bob",
        "d": np.zeros(0, np.float64), "k": np.zeros(9, np.float64), "r": np.eye(3).reshape(-1),
        "p": np.zeros(12, np.float64), "binning_x": 0, "binning_y": 0,
    }  # fmt: skip
