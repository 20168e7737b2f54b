# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Window cutting and packet-stream bookkeeping (stir_ros.core.stream)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stir_ros.core.errors import ConfigError, PacketError, SpikeFormatError
from stir_ros.core.packing import ENCODING_UNPACKED_U8, ENCODING_VIDAR_BITPACKED, encode_frames
from stir_ros.core.packet import PacketHeader, validate_packet
from stir_ros.core.stream import WindowCutter, stack_windows, stride_for_rate
from stir_ros.core.stream_monitor import StreamMonitor

RATE = 20000.0
T0 = 1_000_000_000


def _stream(n: int, h: int = 5, w: int = 7, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((n, h, w)) < 0.3).astype(np.uint8)


def _feed(cutter: WindowCutter, frames: np.ndarray, sizes: list[int], first: int = 0, payload: str | None = None):
    windows, i = [], 0
    for size in sizes:
        block = frames[i : i + size]
        stamp = T0 + round((first + i) * 1e9 / RATE)
        if payload is None:
            windows += cutter.push(block, first + i, stamp, RATE)
        else:
            data = encode_frames(block, payload)
            h, w = block.shape[1:]
            windows += cutter.push_payload(data, PacketHeader(0, first + i, len(block), h, w, payload, stamp, RATE))
        i += size
    return windows


def test_windows_on_the_stride_grid_with_centre_stamps():
    frames = _stream(300)
    windows = _feed(WindowCutter(41, 20), frames, [37] * 8 + [4])
    starts = [w.first_frame_index for w in windows]
    assert starts == list(range(0, 300 - 41 + 1, 20))
    for w in windows:
        assert w.frames.shape == (41, 5, 7)
        np.testing.assert_array_equal(w.frames, frames[w.first_frame_index : w.first_frame_index + 41])
        assert w.centre_frame_index == w.first_frame_index + 20
        assert w.centre_stamp_ns == T0 + round(w.centre_frame_index * 1e9 / RATE)


@pytest.mark.parametrize("payload", [None, ENCODING_VIDAR_BITPACKED, ENCODING_UNPACKED_U8])
@pytest.mark.parametrize("sizes", [[1] * 150, [7] * 21 + [3], [150], [61, 1, 88]])
def test_same_windows_whatever_the_packet_sizes(sizes, payload):
    frames = _stream(150, 3, 5)  # 15 pixels: frames are not whole bytes
    windows = _feed(WindowCutter(61, 20), frames, sizes, payload=payload)
    assert [w.first_frame_index for w in windows] == [0, 20, 40, 60, 80]
    np.testing.assert_array_equal(stack_windows(windows), np.stack([frames[s : s + 61] for s in range(0, 81, 20)]))


def test_stream_joined_midway_starts_at_next_grid_point():
    frames = _stream(200)
    windows = _feed(WindowCutter(41, 20), frames, [50] * 4, first=55)
    assert windows[0].first_frame_index == 60
    np.testing.assert_array_equal(windows[0].frames, frames[5:46])


def test_stride_longer_than_window_skips_frames():
    frames = _stream(400)
    windows = _feed(WindowCutter(41, 100), frames, [30] * 13 + [10])
    assert [w.first_frame_index for w in windows] == [0, 100, 200, 300]


def test_frame_gap_resets_and_resumes_on_the_grid():
    cutter = WindowCutter(41, 20)
    frames = _stream(400)
    first = _feed(cutter, frames[:100], [50, 50])
    assert [w.first_frame_index for w in first] == [0, 20, 40]
    # frames 100..129 lost: the next packet starts at 130
    later = _feed(cutter, frames[130:], [50] * 5 + [20], first=130)
    assert cutter.resets == 1
    assert [w.first_frame_index for w in later][:3] == [140, 160, 180]
    np.testing.assert_array_equal(later[0].frames, frames[140:181])


def test_size_change_resets():
    cutter = WindowCutter(5, 5)
    assert len(cutter.push(_stream(10, 4, 4), 0, T0, RATE)) == 2
    out = cutter.push(_stream(10, 6, 6), 10, T0, RATE)
    assert cutter.resets == 1
    assert [w.frames.shape for w in out] == [(5, 6, 6), (5, 6, 6)]


def test_buffer_stays_bounded():
    cutter = WindowCutter(41, 20)
    for i in range(200):
        cutter.push(_stream(10), i * 10, T0, RATE)
        assert cutter.buffered_frames <= 41 + 10


def test_invalid_cutter_settings():
    with pytest.raises(ConfigError):
        WindowCutter(0, 20)
    with pytest.raises(ConfigError):
        WindowCutter(41, 0)


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(1, 40), min_size=1, max_size=20), window=st.integers(1, 30), stride=st.integers(1, 25))
def test_cutting_is_independent_of_packetisation(sizes, window, stride):
    frames = _stream(sum(sizes), 2, 3)
    windows = _feed(WindowCutter(window, stride), frames, sizes, payload=ENCODING_VIDAR_BITPACKED)
    expected = list(range(0, len(frames) - window + 1, stride))
    assert [w.first_frame_index for w in windows] == expected
    for w in windows:
        np.testing.assert_array_equal(w.frames, frames[w.first_frame_index : w.first_frame_index + window])


# --------------------------------------------------------------------------- packet validation


def _loose(data, h, w, n, encoding, rate):
    """``validate_packet``'s arguments from the header fields it checks."""
    return data, PacketHeader(0, 0, n, h, w, encoding, 0, rate)


@pytest.mark.parametrize(
    ("args", "kind"),
    [
        ((b"\0" * 10, 4, 4, 5, "h264", RATE), "unknown_encoding"),
        ((b"", 4, 4, 0, ENCODING_VIDAR_BITPACKED, RATE), "bad_num_frames"),
        ((b"\0" * 10, 4, 4, 5, ENCODING_VIDAR_BITPACKED, 0.0), "bad_frame_rate"),
        ((b"\0" * 10, 4, 4, 5, ENCODING_VIDAR_BITPACKED, float("nan")), "bad_frame_rate"),
        ((b"\0" * 10, 4, 4, 5, ENCODING_VIDAR_BITPACKED, 5e-324), "bad_frame_rate"),  # 1e9 / rate overflows
        ((b"\0" * 10, 0, 4, 5, ENCODING_VIDAR_BITPACKED, RATE), "bad_size"),
        ((b"\0" * 11, 4, 4, 5, ENCODING_VIDAR_BITPACKED, RATE), "payload_length"),
        ((b"\0" * 79, 4, 4, 5, ENCODING_UNPACKED_U8, RATE), "payload_length"),
    ],
)
def test_validate_packet_names_the_problem(args, kind):
    with pytest.raises(PacketError) as info:
        validate_packet(*_loose(*args))
    assert info.value.kind == kind


def test_absurd_header_does_not_allocate():
    tracemalloc.start()
    try:
        for h, w, n in [(65535, 65535, 1), (4_000_000_000, 1, 1), (250, 400, 4_000_000_000)]:
            with pytest.raises(PacketError):
                validate_packet(*_loose(b"\0" * 100, h, w, n, ENCODING_VIDAR_BITPACKED, RATE))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_validate_packet_returns_a_view():
    data = encode_frames(_stream(3), ENCODING_VIDAR_BITPACKED)
    raw = validate_packet(*_loose(data, 5, 7, 3, ENCODING_VIDAR_BITPACKED, RATE))
    assert raw.base is data or np.shares_memory(raw, data)


def test_stride_for_rate():
    assert stride_for_rate(20000.0, 100.0) == 200
    assert stride_for_rate(20000.0, 1e6) == 1
    with pytest.raises(ConfigError):
        stride_for_rate(20000.0, 0.0)


# --------------------------------------------------------------------------- stream monitor


def _hdr(seq, first=None, n=10, h=4, w=4, enc=ENCODING_VIDAR_BITPACKED, stamp=None, rate=RATE):
    first = seq * n if first is None else first
    stamp = T0 + round(first * 1e9 / rate) if stamp is None else stamp
    return PacketHeader(seq, first, n, h, w, enc, stamp, rate)


def test_monitor_normal_stream():
    m = StreamMonitor()
    checks = [m.check(_hdr(s)) for s in range(5)]
    assert [c.action for c in checks] == ["reset", "accept", "accept", "accept", "accept"]
    assert checks[0].event == "start"
    assert m.packets == 5 and m.frames == 50 and m.lost_packets == 0


def test_monitor_counts_lost_packets():
    m = StreamMonitor()
    m.check(_hdr(0))
    c = m.check(_hdr(4))
    assert (c.action, c.event, c.lost_packets) == ("reset", "gap", 3)
    assert m.check(_hdr(5)).action == "accept"
    assert m.lost_packets == 3


def test_monitor_duplicate_and_reordered_are_dropped():
    m = StreamMonitor()
    for s in range(4):
        m.check(_hdr(s))
    assert (m.packets, m.frames) == (4, 40)
    dup = m.check(_hdr(3))
    assert (dup.action, dup.event, dup.lost_packets) == ("drop", "duplicate", 0)
    assert (m.packets, m.frames, m.duplicates) == (4, 40, 1)  # not counted as received
    late = m.check(_hdr(2))
    assert (late.action, late.event) == ("drop", "reordered")
    assert (m.packets, m.frames) == (4, 40)
    nxt = m.check(_hdr(4))
    assert (nxt.action, nxt.event) == ("accept", None)  # the stream goes on undisturbed: nothing lost, no reset
    assert (m.duplicates, m.reordered, m.lost_packets, m.packets) == (1, 1, 0, 5)


def test_monitor_restart():
    m = StreamMonitor()
    for s in range(100):
        m.check(_hdr(s))
    c = m.check(_hdr(0, stamp=T0 + 10**10))
    assert (c.action, c.event) == ("reset", "restart")
    assert m.check(_hdr(1, stamp=T0 + 10**10 + 500_000)).action == "accept"
    assert m.restarts == 1 and m.lost_packets == 0


def test_monitor_restart_with_the_first_packets_missed():
    # A driver restarted after a short run, whose seq 0..2 this reader missed (no
    # wait_for_subscribers): seq 3 is behind the last one but newer, so a restart, not a late packet.
    m = StreamMonitor()
    for s in range(10):
        m.check(_hdr(s))
    c = m.check(_hdr(3, stamp=T0 + 10**10))
    assert (c.action, c.event) == ("reset", "restart")
    assert m.check(_hdr(4, stamp=T0 + 10**10 + 500_000)).action == "accept"
    assert (m.restarts, m.reordered) == (1, 0)


@pytest.mark.parametrize(
    ("changed", "event"),
    [
        ({"h": 8}, "size_change"),
        ({"enc": ENCODING_UNPACKED_U8}, "encoding_change"),
        ({"rate": 40000.0}, "rate_change"),
        ({"first": 999}, "frame_gap"),
        ({"stamp": 5}, "stamp_backwards"),
    ],
)
def test_monitor_resets_on_changes(changed, event):
    m = StreamMonitor()
    m.check(_hdr(0))
    m.check(_hdr(1))
    c = m.check(_hdr(2, **changed))
    assert (c.action, c.event) == ("reset", event)
    assert c.message
    assert m.counters()[{"size_change": "size_changes", "encoding_change": "encoding_changes",
                         "rate_change": "rate_changes", "frame_gap": "frame_gaps",
                         "stamp_backwards": "stamps_backwards"}[event]] == 1  # fmt: skip


def test_stack_windows_checks_sizes():
    a = WindowCutter(5, 5).push(_stream(5, 4, 4), 0, T0, RATE)
    b = WindowCutter(5, 5).push(_stream(5, 6, 6), 0, T0, RATE)
    assert stack_windows(a).shape == (1, 5, 4, 4)
    with pytest.raises(SpikeFormatError, match="differ"):
        stack_windows(a + b)
    with pytest.raises(SpikeFormatError):
        stack_windows([])
