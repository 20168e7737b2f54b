# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The driver's statement of whether its sensor mode can be sustained (stir_ros.runtime.throughput)."""

from __future__ import annotations

import time

from stir_ros.runtime.throughput import HEADROOM, PublishMeter, probe, recommended_frames_per_packet, verdict


def test_verdict_sustainable_with_headroom_and_a_fitting_packet() -> None:
    v = verdict(1000, 1000, 20000.0, 20, 60000.0, "read + serialise", segment_bytes=16 * 2**20)
    assert v.sustainable and v.required_fps == 20000.0 and v.measured_fps == 60000.0
    assert v.text.startswith("sustainable: 1000x1000 at 20000 Hz needs 2.50 GB/s")
    assert "3.0x" in v.text


def test_verdict_too_slow_or_too_large_a_packet_says_why() -> None:
    slow = verdict(1000, 1000, 20000.0, 20, 20000.0 / HEADROOM * 0.99, "read + serialise")
    assert not slow.sustainable and slow.text.startswith("NOT sustainable") and "% of the 20,000 required" in slow.text
    big = verdict(1000, 1000, 20000.0, 100, 1e6, "read + serialise", segment_bytes=16 * 2**20)
    assert not big.sustainable and "12.50 MB does not fit twice into the 16 MB" in big.text
    unmeasured = verdict(250, 400, 40000.0, 100, 0.0, "probe")
    assert not unmeasured.sustainable and "not measured" in unmeasured.text


def test_probe_and_meter_measure_frames_per_second() -> None:
    def work() -> int:
        sum(range(20000))  # CPU work: probe counts CPU time, not wall time
        return 10

    fps = probe(work, min_seconds=0.02, min_calls=3)
    assert fps > 0
    meter = PublishMeter()
    meter.add(100, 0.01)
    meter.add(100, 0.01)
    time.sleep(0.05)
    fps, busy = meter.take()
    assert 0 < fps <= 200 / 0.05 and 0 < busy <= 0.02 / 0.05
    assert meter.take()[0] == 0.0  # a new period


def test_recommended_packet_sizes_per_mode() -> None:
    assert recommended_frames_per_packet(250, 400) == 100  # 1.25 MB: the default, loss-free at 40 kHz
    assert recommended_frames_per_packet(1000, 1000) == 20  # 2.5 MB
    assert recommended_frames_per_packet(2000, 1000) == 10
    assert recommended_frames_per_packet(4096, 4096) == 1
    v = verdict(1000, 1000, 20000.0, 100, 1e6, "probe", segment_bytes=64 * 2**20)
    assert v.sustainable and "20 (2.5 MB) is the measured choice" in v.text
