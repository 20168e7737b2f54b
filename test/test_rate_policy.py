# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""``rate_policy``: the stride that inference sustains (``even``) or the one asked for (``drop_oldest``)."""

from __future__ import annotations

import pytest

from stir_ros.runtime.rate_policy import DWELL, HEADROOM, RATE_POLICIES, RatePacer, ladder_step, paced_stride
from stir_ros.core.stream_processor import StreamProcessor


def test_paced_stride_is_the_smallest_sustained_multiple():
    # 20 kHz, stride 200 (100 images/s asked), 0.3 s per window: 0.33 s with headroom = 33 strides -> the step 34.
    assert paced_stride(200, 0.3, 20000.0) == 6800
    assert paced_stride(200, 0.33, 20000.0) == 7600  # 36.3 strides -> the next step, 38
    assert paced_stride(200, 0.3, 20000.0) % 200 == 0
    assert paced_stride(200, 0.001, 20000.0) == 200  # keeps up: as asked
    assert paced_stride(200, 0.0, 20000.0) == 200  # not measured: as asked
    assert paced_stride(10, 0.01, 1000.0) == 20  # 11 frames of work -> 2 strides
    with pytest.raises(ValueError):
        paced_stride(0, 0.1, 20000.0)


def test_even_stretches_and_drop_oldest_does_not():
    assert set(RATE_POLICIES) == {"even", "drop_oldest"}
    even, drop = RatePacer("even"), RatePacer("drop_oldest")
    assert even.stride(200, 20000.0) == 200  # nothing measured yet
    for pacer in (even, drop):
        pacer.observe(0.6, 2)  # 0.3 s per window
    assert even.seconds_per_window == pytest.approx(0.3)
    assert even.stride(200, 20000.0) == 6800
    assert drop.stride(200, 20000.0) == 200
    with pytest.raises(ValueError):
        RatePacer("fastest")


def test_ladder_steps_are_at_most_one_sixteenth_apart():
    steps = sorted({ladder_step(x / 4) for x in range(1, 8000)})
    assert steps[:34] == [*range(1, 33), 34, 36] and ladder_step(65) == 68 and ladder_step(1000) == 1024
    assert all(b / a <= 1 + 1 / 16 + 1e-9 for a, b in zip(steps[32:], steps[33:]))


def test_even_shrinks_only_with_room_to_spare_and_after_a_dwell():
    pacer = RatePacer("even", samples=1)
    pacer.observe(0.3)
    assert pacer.stride(200, 20000.0) == 6800
    for _ in range(DWELL - 1):
        pacer.observe(0.1)  # much faster, but too few windows timed at this stride: stays
        assert pacer.stride(200, 20000.0) == 6800
    pacer.observe(0.1)
    assert pacer.stride(200, 20000.0) == paced_stride(200, 0.1, 20000.0) == 2200
    for _ in range(2 * DWELL):
        pacer.observe(0.09)  # a little faster: 2000 would do, but no room to spare -> stays
        assert pacer.stride(200, 20000.0) == 2200
    pacer.observe(0.25)  # slower than the stride's period: grows at once
    assert pacer.stride(200, 20000.0) == paced_stride(200, 0.25, 20000.0) == 5600


def test_statement_says_what_is_sustainable():
    pacer = RatePacer("even")
    pacer.observe(0.3)
    text = pacer.statement(200, 20000.0)
    assert "3.33 images/s" in text and "asked for 100 images/s" in text and "NOT sustainable" in text
    assert "stride 6800" in text
    fast = RatePacer("drop_oldest")
    fast.observe(0.001)
    assert "sustainable" in fast.statement(200, 20000.0) and "NOT" not in fast.statement(200, 20000.0)
    assert 1 / 0.3 < 100 / HEADROOM


def test_stream_processor_cuts_on_the_paced_grid():
    proc = StreamProcessor(41, 20)
    assert proc.stride_for(20000.0) == 20
    proc.pace = lambda stride, rate: stride * 3
    assert proc.requested_stride(20000.0) == 20 and proc.stride_for(20000.0) == 60
