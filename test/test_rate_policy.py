# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""``rate_policy``: the stride that inference sustains (``even``) or the one asked for (``drop_oldest``)."""

from __future__ import annotations

import pytest

from stir_ros.runtime.rate_policy import HEADROOM, RATE_POLICIES, RatePacer, paced_stride
from stir_ros.core.stream_processor import StreamProcessor


def test_paced_stride_is_the_smallest_sustained_multiple():
    # 20 kHz, stride 200 (100 images/s asked), 0.3 s per window: 0.375 s with headroom = 7500 frames.
    assert paced_stride(200, 0.3, 20000.0) == 7600
    assert paced_stride(200, 0.3, 20000.0) % 200 == 0
    assert paced_stride(200, 0.001, 20000.0) == 200  # keeps up: as asked
    assert paced_stride(200, 0.0, 20000.0) == 200  # not measured: as asked
    assert paced_stride(10, 0.01, 1000.0) == 20  # 12.5 frames of work -> 2 strides
    with pytest.raises(ValueError):
        paced_stride(0, 0.1, 20000.0)


def test_even_stretches_and_drop_oldest_does_not():
    assert RATE_POLICIES[0] == "even"
    even, drop = RatePacer("even"), RatePacer("drop_oldest")
    assert even.stride(200, 20000.0) == 200  # nothing measured yet
    for pacer in (even, drop):
        pacer.observe(0.6, 2)  # 0.3 s per window
    assert even.seconds_per_window == pytest.approx(0.3)
    assert even.stride(200, 20000.0) == 7600
    assert drop.stride(200, 20000.0) == 200
    with pytest.raises(ValueError):
        RatePacer("fastest")


def test_even_shrinks_only_with_room_to_spare():
    pacer = RatePacer("even", samples=1)
    pacer.observe(0.3)
    assert pacer.stride(200, 20000.0) == 7600
    pacer.observe(0.295)  # a little faster: needs 7400, but no room to spare -> stays
    assert pacer.stride(200, 20000.0) == 7600
    pacer.observe(0.1)  # much faster: shrinks
    assert pacer.stride(200, 20000.0) == paced_stride(200, 0.1, 20000.0) == 2600


def test_statement_says_what_is_sustainable():
    pacer = RatePacer("even")
    pacer.observe(0.3)
    text = pacer.statement(200, 20000.0)
    assert "3.33 images/s" in text and "asked for 100 images/s" in text and "NOT sustainable" in text
    assert "stride 7600" in text
    fast = RatePacer("drop_oldest")
    fast.observe(0.001)
    assert "sustainable" in fast.statement(200, 20000.0) and "NOT" not in fast.statement(200, 20000.0)
    assert 1 / 0.3 < 100 / HEADROOM


def test_stream_processor_cuts_on_the_paced_grid():
    proc = StreamProcessor(41, 20)
    assert proc.stride_for(20000.0) == 20
    proc.pace = lambda stride, rate: stride * 3
    assert proc.requested_stride(20000.0) == 20 and proc.stride_for(20000.0) == 60
