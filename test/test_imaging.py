# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Float images to sensor_msgs/Image pixel bytes (stir_ros.core.imaging)."""

from __future__ import annotations

import numpy as np
import pytest

from stir_ros.core.errors import ConfigError, SpikeFormatError
from stir_ros.core.imaging import from_image_bytes, to_image_array, to_image_bytes


@pytest.mark.parametrize(
    ("encoding", "itemsize", "tol"), [("mono8", 1, 0.5 / 255), ("mono16", 2, 0.5 / 65535), ("32FC1", 4, 0.0)]
)
@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (25, 41)])
def test_round_trip(encoding, itemsize, tol, shape):
    img = np.random.default_rng(1).random(shape, dtype=np.float32)
    data, step = to_image_bytes(img, encoding)
    assert step == shape[1] * itemsize and len(data) == shape[0] * step
    back = from_image_bytes(data, *shape, step, encoding)
    np.testing.assert_allclose(back, img, atol=tol + 1e-7)


def test_exact_values_and_clamping():
    img = np.array([[0.0, 0.5, 1.0, 1.7, -0.2, np.nan]], np.float32)
    assert to_image_array(img, "mono8").tolist() == [[0, 128, 255, 255, 0, 0]]
    assert to_image_array(img, "mono16").tolist() == [[0, 32768, 65535, 65535, 0, 0]]
    assert to_image_array(img, "32FC1").tolist() == [[0.0, 0.5, 1.0, 1.0, 0.0, 0.0]]


def test_little_endian_bytes():
    data, _ = to_image_bytes(np.array([[1.0]], np.float32), "mono16")
    assert data == b"\xff\xff"
    data, _ = to_image_bytes(np.array([[0.5]], np.float32), "32FC1")
    assert data == np.float32(0.5).tobytes() == b"\x00\x00\x00\x3f"


def test_row_padding_is_skipped():
    img = np.array([[0.0, 1.0], [1.0, 0.0]], np.float32)
    data = bytes([0, 255, 9, 9, 255, 0, 9, 9])  # step 4 with 2 padding bytes per row
    np.testing.assert_array_equal(from_image_bytes(data, 2, 2, 4, "mono8"), img)


def test_errors():
    with pytest.raises(ConfigError, match="mono8"):
        to_image_bytes(np.zeros((2, 2)), "rgb8")
    with pytest.raises(SpikeFormatError):
        to_image_bytes(np.zeros((2, 2, 2)), "mono8")
    with pytest.raises(SpikeFormatError):
        from_image_bytes(b"\0" * 3, 2, 2, 2, "mono8")
