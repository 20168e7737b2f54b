# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The stream health report of ``stir-ros perf``: exact numbers from known packet sequences."""

from __future__ import annotations

import pytest

from stir_ros.core.packet import PacketHeader
from stir_ros.runtime.stream_health import StreamHealth

RATE = 20000.0
FRAMES = 100  # 5 ms per packet


PAYLOAD = 1000  # bytes per packet


def _packet(seq: int, index: int, stamp_ns: int) -> PacketHeader:
    return PacketHeader(seq=seq, first_frame_index=index, num_frames=FRAMES, height=20, width=400,
                        encoding="vidar_bitpacked", stamp_ns=stamp_ns, frame_rate_hz=RATE)  # fmt: skip


def _nominal(seq: int, t0: int = 10**18) -> tuple[PacketHeader, int, int]:
    """Packet ``seq`` with nominal stamps, received 2 ms after its last frame was captured."""
    index = seq * FRAMES
    stamp = t0 + round(index / RATE * 1e9)
    last_frame = stamp + round((FRAMES - 1) / RATE * 1e9)
    return _packet(seq, index, stamp), last_frame + 2_000_000, PAYLOAD


def test_rates_delay_and_no_drift_for_a_clean_stream() -> None:
    health = StreamHealth()
    for seq in range(200):  # 1 s of stream
        packet, received, payload = _nominal(seq)
        health.add(packet, received, payload)
    first = _nominal(0)[1]
    report = health.report(first + 1_000_000_000)
    assert report.packets_per_s == pytest.approx(200)
    assert report.frames_per_s == pytest.approx(20000)
    assert report.megabytes_per_s == pytest.approx(0.2)
    assert report.lost == report.reordered == report.restarts == 0
    assert report.delay_ms_mean == pytest.approx(2.0, abs=1e-3)
    assert report.drift_ms == pytest.approx(0.0, abs=1e-6)


def test_seq_gaps_are_counted_as_lost_packets() -> None:
    health = StreamHealth()
    for seq in (0, 1, 2, 5, 6, 10):  # 3, 4 and 7, 8, 9 missing
        health.add(*_nominal(seq))
    report = health.report(_nominal(10)[1])
    assert report.lost == 5 and report.totals["lost"] == 5 and report.totals["packets"] == 6


def test_late_duplicate_and_restart() -> None:
    health = StreamHealth()
    for seq in (0, 1, 2, 3):
        health.add(*_nominal(seq))
    health.add(*_nominal(2))  # late copy: not a loss, not a restart
    health.add(*_nominal(4))
    health.add(*_nominal(0, t0=2 * 10**18))  # the driver restarted
    health.add(*_nominal(1, t0=2 * 10**18))
    report = health.report(2 * 10**18)
    assert (report.lost, report.reordered, report.restarts) == (0, 1, 1)
    assert report.drift_ms == pytest.approx(0.0, abs=1e-6)  # measured from the new origin


def test_drift_of_a_fast_header_clock() -> None:
    """A header clock running 100 ppm fast against the sensor clock shows +100 ppm."""
    health = StreamHealth()
    t0 = 10**18
    for seq in range(2001):  # 10 s
        index = seq * FRAMES
        stamp = t0 + round(index / RATE * 1e9 * (1 + 100e-6))
        health.add(_packet(seq, index, stamp), stamp + 10**7, PAYLOAD)
    report = health.report(t0 + 11 * 10**9)
    assert report.drift_ppm == pytest.approx(100.0, rel=1e-3)
    assert report.drift_ms == pytest.approx(1.0, rel=1e-3)  # 100 ppm of 10 s


def test_periods_restart_and_totals_accumulate() -> None:
    health = StreamHealth()
    for seq in range(10):
        health.add(*_nominal(seq))
    health.report(_nominal(9)[1])
    for seq in range(12, 20):
        health.add(*_nominal(seq))
    second = health.report(_nominal(19)[1])
    assert second.lost == 2 and second.totals["packets"] == 18 and second.totals["lost"] == 2
    empty = health.report(_nominal(19)[1] + 10**9)
    assert empty.packets_per_s == 0 and empty.delay_ms_mean == 0
