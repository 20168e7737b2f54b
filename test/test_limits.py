# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Every limit of stir_ros.core.limits exactly at the limit (accepted) and one beyond it (refused).

Off-by-one is the likely bug at a limit (``>`` written ``>=``), and values far beyond a limit
cannot see it (test_reliability_bounds.py has those).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from stir_ros.core.errors import ConfigError, PacketError
from stir_ros.core.limits import (
    MAX_FRAME_RATE_HZ,
    MAX_FRAME_SIDE,
    MAX_PACKET_BYTES,
    MAX_WINDOW_BYTES,
    MIN_FRAME_RATE_HZ,
    PARAMETER_BOUNDS,
    batch_limit,
    check_parameter,
)
from stir_ros.core.packing import ENCODING_VIDAR_BITPACKED
from stir_ros.core.packet import PacketHeader, validate_packet


@pytest.mark.parametrize(
    ("h", "w", "n", "rate", "kind"),
    [
        (MAX_FRAME_SIDE, 8, 1, 20000.0, None), (MAX_FRAME_SIDE + 1, 8, 1, 20000.0, "bad_size"),
        (8, MAX_FRAME_SIDE, 1, 20000.0, None), (8, MAX_FRAME_SIDE + 1, 1, 20000.0, "bad_size"),
        (8, 8, 1, MAX_FRAME_RATE_HZ, None), (8, 8, 1, math.nextafter(MAX_FRAME_RATE_HZ, math.inf), "bad_frame_rate"),
        (8, 8, 1, MIN_FRAME_RATE_HZ, None), (8, 8, 1, math.nextafter(MIN_FRAME_RATE_HZ, 0.0), "bad_frame_rate"),
        (1, 8, MAX_PACKET_BYTES, 20000.0, None), (1, 8, MAX_PACKET_BYTES + 1, 20000.0, "bad_size"),  # 1 byte a frame
    ],
)  # fmt: skip
def test_packet_fields_exactly_at_a_limit_pass_and_one_over_fail(h, w, n, rate, kind):
    payload = np.zeros(min(n, MAX_PACKET_BYTES) * ((h * w + 7) // 8), np.uint8)
    header = PacketHeader(0, 0, n, h, w, ENCODING_VIDAR_BITPACKED, 0, rate)
    if kind is None:
        assert validate_packet(payload, header).size == payload.size
    else:
        with pytest.raises(PacketError) as info:
            validate_packet(payload, header)
        assert info.value.kind == kind


def _one_beyond(value: float, direction: float) -> float:
    return value + direction if isinstance(value, int) else math.nextafter(value, direction * math.inf)


@pytest.mark.parametrize(("node", "name"), sorted(PARAMETER_BOUNDS))
def test_parameter_exactly_at_its_bounds_passes_and_one_beyond_fails(node, name):
    bound = PARAMETER_BOUNDS[node, name]
    check_parameter(node, name, bound.low)
    check_parameter(node, name, bound.high)
    for beyond in (_one_beyond(bound.low, -1), _one_beyond(bound.high, +1)):
        if bound.zero_ok and beyond == 0:
            continue
        with pytest.raises(ConfigError):
            check_parameter(node, name, beyond)


def test_batch_limit_exactly_at_the_window_bytes_limit():
    per_window = MAX_WINDOW_BYTES // 64  # 64 windows fill the limit exactly
    assert batch_limit(64, 1, 1, per_window) == 64
    assert batch_limit(64, 1, 1, per_window + 1) == 63
    assert batch_limit(64, 1, 1, MAX_WINDOW_BYTES) == 1 and batch_limit(64, 1, 1, MAX_WINDOW_BYTES + 1) == 1
