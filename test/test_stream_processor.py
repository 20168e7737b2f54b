# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The packet path shared by the node and ``bag reconstruct`` (stir_ros.core.stream_processor), without ROS."""

from __future__ import annotations

import array
from types import SimpleNamespace

import numpy as np
import pytest

from stir_ros.core.limits import MAX_WINDOW_BYTES, MAX_WINDOW_LENGTH
from stir_ros.core.packing import ENCODING_UNPACKED_U8, ENCODING_VIDAR_BITPACKED, encode_frames
from stir_ros.core.packet import PacketHeader
from stir_ros.core.stream import stack_windows
from stir_ros.core.stream_processor import (
    ACCEPTED,
    DROPPED,
    IDLE,
    REJECTED,
    StreamProcessor,
    packet_header,
    packet_payload,
)

RATE = 20000.0
T0 = 1_000_000_000
H, W = 5, 7


def _frames(n: int, h: int = H, w: int = W, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((n, h, w)) < 0.3).astype(np.uint8)


def _packet(frames: np.ndarray, seq: int, first: int, stamp: int | None = None,
            encoding: str = ENCODING_VIDAR_BITPACKED, rate: float = RATE) -> tuple[PacketHeader, np.ndarray]:
    n, h, w = frames.shape
    stamp = T0 + round(first * 1e9 / rate) if stamp is None else stamp
    header = PacketHeader(seq=seq, first_frame_index=first, num_frames=n, height=h, width=w, encoding=encoding,
                          stamp_ns=stamp, frame_rate_hz=rate)
    return header, encode_frames(frames, encoding)


def _packets(frames: np.ndarray, size: int, seq0: int = 0, first0: int = 0) -> list[tuple[PacketHeader, np.ndarray]]:
    return [_packet(frames[i : i + size], seq0 + k, first0 + i) for k, i in enumerate(range(0, len(frames), size))]


def _run(proc: StreamProcessor, packets):
    outcomes = [proc.push(h, p) for h, p in packets]
    return outcomes, [w for o in outcomes for w in o.windows]


def _check_windows(windows, frames: np.ndarray, first0: int = 0) -> None:
    for w in windows:
        a = w.first_frame_index - first0
        np.testing.assert_array_equal(w.frames, frames[a : a + w.length])
        assert w.centre_frame_index == w.first_frame_index + w.length // 2
        assert w.centre_stamp_ns == T0 + round(w.centre_frame_index * 1e9 / RATE)


@pytest.mark.parametrize("decode", [False, True])
@pytest.mark.parametrize("encoding", [ENCODING_VIDAR_BITPACKED, ENCODING_UNPACKED_U8])
def test_packets_in_windows_out_on_the_stride_grid(decode, encoding):
    frames = _frames(300)
    proc = StreamProcessor(41, 20, decode=decode)
    packets = [_packet(frames[i : i + 37], k, i, encoding=encoding) for k, i in enumerate(range(0, 300, 37))]
    outcomes, windows = _run(proc, packets)
    assert [o.status for o in outcomes] == [ACCEPTED] * len(packets)
    assert outcomes[0].event == "start" and outcomes[0].notable_event is None
    assert all(o.event is None for o in outcomes[1:])
    assert [w.first_frame_index for w in windows] == list(range(0, 300 - 41 + 1, 20))
    _check_windows(windows, frames)
    assert (proc.packets, proc.frames, proc.windows_cut) == (len(packets), 300, len(windows))
    assert proc.events == {} and proc.buffer_resets == 0 and not proc.rejected


@pytest.mark.parametrize(("rate", "fpp"), [(30000.0, 6), (24000.0, 9), (7000.0, 14)])
def test_centre_stamps_are_rounded_at_rates_without_whole_ns_frames(rate, fpp):
    """33 333.3 ns a frame at 30 kHz: a truncated offset would be a nanosecond early in 2 of 3 windows.

    Packets hold a multiple of the frames that make whole nanoseconds, so every packet stamp is
    exact and the centre's stamp is the rounded time of its frame.
    """
    frames = _frames(300)
    proc = StreamProcessor(41, 19)  # the centres fall on every offset in a packet
    _, windows = _run(proc, [_packet(frames[i : i + fpp], k, i, rate=rate) for k, i in enumerate(range(0, 300, fpp))])
    assert len(windows) == 14
    centre_ns = [w.centre_frame_index * 1e9 / rate for w in windows]
    assert [w.centre_stamp_ns for w in windows] == [T0 + round(t) for t in centre_ns]
    assert any(round(t) != int(t) for t in centre_ns)  # truncation would show


def test_decoded_and_encoded_payloads_give_the_same_windows():
    frames = _frames(250, seed=3)
    stacks = []
    for decode in (False, True):
        _, windows = _run(StreamProcessor(41, 20, decode=decode), _packets(frames, 50))
        stacks.append(stack_windows(windows))
    np.testing.assert_array_equal(stacks[0], stacks[1])


def test_seq_gap_is_counted_as_loss_and_resets_the_buffer():
    frames = _frames(400)
    packets = _packets(frames, 50)
    del packets[3]  # seq 3 (frames 150..199) lost
    proc = StreamProcessor(41, 20)
    outcomes, windows = _run(proc, packets)
    gap = outcomes[3]
    assert (gap.status, gap.event, gap.notable_event) == (ACCEPTED, "gap", "gap")
    assert "1 packet(s) lost" in gap.message
    assert proc.monitor.lost_packets == 1 and proc.events == {"gap": 1} and proc.buffer_resets == 1
    assert proc.counters()["lost_packets"] == 1
    # No window straddles the hole; cutting resumes at the first grid point after it.
    starts = [w.first_frame_index for w in windows]
    assert starts == list(range(0, 150 - 41 + 1, 20)) + list(range(200, 400 - 41 + 1, 20))
    _check_windows(windows, frames)


@pytest.mark.parametrize("decode", [False, True])
def test_duplicate_packet_is_dropped(decode):
    frames = _frames(300)
    packets = _packets(frames, 30)
    clean = StreamProcessor(41, 20, decode=decode)
    _, expected = _run(clean, packets)

    proc = StreamProcessor(41, 20, decode=decode)
    got = []
    for k, (header, payload) in enumerate(packets):
        got += proc.push(header, payload).windows
        if k == 4:
            buffered, cut, accepted = proc.cutter.buffered_frames, proc.windows_cut, proc.packets
            dup = proc.push(header, payload.copy())
            assert (dup.status, dup.event, list(dup.windows)) == (DROPPED, "duplicate", [])
            # Dropped: nothing buffered, cut or counted as accepted; the stream goes on unbroken.
            assert (proc.cutter.buffered_frames, proc.windows_cut, proc.packets) == (buffered, cut, accepted)
    assert proc.monitor.duplicates == 1 and proc.events == {"duplicate": 1}
    assert proc.buffer_resets == 0 and proc.monitor.lost_packets == 0
    assert [w.first_frame_index for w in got] == [w.first_frame_index for w in expected]
    np.testing.assert_array_equal(stack_windows(got), stack_windows(expected))
    assert (proc.packets, proc.frames, proc.windows_cut) == (clean.packets, clean.frames, clean.windows_cut)


def test_late_packet_is_dropped():
    frames = _frames(200)
    packets = _packets(frames, 20)
    proc = StreamProcessor(41, 20)
    _run(proc, packets[:6])
    cut = proc.windows_cut
    late = proc.push(*packets[3])
    assert (late.status, late.event, list(late.windows)) == (DROPPED, "reordered", [])
    assert proc.windows_cut == cut and proc.events == {"reordered": 1}
    _, rest = _run(proc, packets[6:])
    assert proc.buffer_resets == 0 and [w.first_frame_index for w in rest] == list(range(80, 200 - 41 + 1, 20))


def test_shape_change_resets_and_no_window_mixes_sizes():
    small, large = _frames(120, 4, 4, seed=1), _frames(120, 6, 8, seed=2)
    proc = StreamProcessor(41, 20)
    _, before = _run(proc, _packets(small, 40))
    outcomes, after = _run(proc, _packets(large, 40, seq0=3, first0=120))
    assert (outcomes[0].status, outcomes[0].event) == (ACCEPTED, "size_change")
    assert proc.events == {"size_change": 1} and proc.buffer_resets == 1
    assert {(w.height, w.width) for w in before} == {(4, 4)} and {(w.height, w.width) for w in after} == {(6, 8)}
    assert after[0].first_frame_index == 120
    _check_windows(after, large, first0=120)


@pytest.mark.parametrize("jump", ["stamp_backwards", "frame_gap"])
def test_time_jump_resets(jump):
    frames = _frames(200)
    proc = StreamProcessor(41, 20)
    _, before = _run(proc, _packets(frames[:100], 50))
    if jump == "stamp_backwards":  # the header clock goes back: windows must not straddle it
        header, payload = _packet(frames[100:150], 2, 100, stamp=T0 - 10**6)
    else:  # consecutive seq, frame index jumps ahead
        header, payload = _packet(frames[100:150], 2, 130)
    out = proc.push(header, payload)
    assert (out.status, out.event) == (ACCEPTED, jump)
    assert proc.events == {jump: 1} and proc.buffer_resets == 1 and proc.monitor.lost_packets == 0
    assert all(w.first_frame_index >= header.first_frame_index for w in out.windows)


def test_rejected_packet_changes_nothing_but_the_reject_counter():
    frames = _frames(100)
    proc = StreamProcessor(41, 20)
    _run(proc, _packets(frames[:50], 50))
    header, payload = _packet(frames[50:], 1, 50)
    out = proc.push(header, payload[:-1])
    assert (out.status, list(out.windows), out.event) == (REJECTED, [], None)
    assert out.error is not None and out.error.kind == "payload_length" and out.message == str(out.error)
    assert proc.rejected == {"payload_length": 1} and proc.packets == 1 and proc.counters()["rejected"] == 1
    assert proc.push(header, payload).status == ACCEPTED  # the good copy follows without a gap
    assert proc.monitor.lost_packets == 0 and proc.events == {}


def test_window_too_large_is_rejected_unless_unlimited():
    header, payload = _packet(_frames(10, 64, 64), 0, 0)
    proc = StreamProcessor(41, 20, max_window_bytes=41 * 64 * 64 - 1)
    out = proc.push(header, payload)
    assert out.status == REJECTED and out.error.kind == "window_too_large"
    assert str(out.error) == (f"a window of 41 frames of 64x64 would take {41 * 64 * 64} bytes, more than the limit "
                              f"of {41 * 64 * 64 - 1}")
    assert proc.cutter is None and proc.packets == 0
    assert StreamProcessor(41, 20, max_window_bytes=None).push(header, payload).status == ACCEPTED


@pytest.mark.parametrize(
    ("window", "h", "w", "limit", "accepted"),
    [
        (41, 64, 64, 41 * 64 * 64, True),  # exactly at the limit
        (41, 64, 64, 41 * 64 * 64 - 1, False),  # one byte over
        (MAX_WINDOW_LENGTH, 512, 512, None, True),  # the default limit: 1024 x 512 x 512 is exactly MAX_WINDOW_BYTES
        (MAX_WINDOW_LENGTH, 512, 513, None, False),
    ],
)
def test_window_size_exactly_at_the_limit_is_accepted_and_over_it_rejected(window, h, w, limit, accepted):
    assert MAX_WINDOW_LENGTH * 512 * 512 == MAX_WINDOW_BYTES
    header, payload = _packet(_frames(1, h, w), 0, 0)
    proc = StreamProcessor(window, 20) if limit is None else StreamProcessor(window, 20, max_window_bytes=limit)
    out = proc.push(header, payload)
    assert out.status == (ACCEPTED if accepted else REJECTED), out.message
    assert proc.rejected.get("window_too_large", 0) == (0 if accepted else 1)


def test_idle_packets_are_counted_not_cut():
    frames = _frames(200)
    packets = _packets(frames, 50)
    proc = StreamProcessor(41, 20)
    asked = []

    def idle() -> bool:
        asked.append(True)
        return True

    outcomes = [proc.push(h, p, idle=idle) for h, p in packets]
    assert [o.status for o in outcomes] == [IDLE] * 4 and len(asked) == 4
    assert proc.cutter is None and proc.windows_cut == 0 and proc.packets == 4
    assert proc.push(*packets[-1], idle=idle).status == DROPPED and len(asked) == 4  # not asked for a drop
    _, windows = _run(proc, _packets(frames, 50, seq0=4, first0=200))
    assert windows[0].first_frame_index == 200  # cutting starts afresh


def test_window_settings_change_starts_a_new_cutter():
    frames = _frames(400)
    packets = _packets(frames, 50)
    proc = StreamProcessor(41, 20)
    _, first = _run(proc, packets[:4])
    proc.set_windows(41, 50)
    _, second = _run(proc, packets[4:])
    assert proc.buffer_resets == 0 and proc.cutter.stride_frames == 50
    assert [w.first_frame_index for w in second] == list(range(200, 400 - 41 + 1, 50))
    proc.set_windows(41, 20, output_rate_hz=RATE / 25)
    assert proc.stride_for(RATE) == 25


def test_reset_forgets_the_stream_but_keeps_counters():
    frames = _frames(200)
    packets = _packets(frames, 50)
    proc = StreamProcessor(41, 20)
    _run(proc, packets[:2])
    old = proc.cutter
    proc.reset()  # the node deactivated: missed packets are not lost ones
    assert proc.cutter is None
    out = proc.push(*packets[3])
    assert out.event == "start" and proc.monitor.lost_packets == 0 and proc.packets == 3 and not proc.events
    assert proc.buffer_resets == 0 and proc.cutter is not old and proc.cutter.buffered_frames == 50


@pytest.mark.parametrize("data", [
    lambda raw: array.array("B", raw.tobytes()),  # rclpy
    lambda raw: raw.copy(),  # rosbags
    lambda raw: raw.tobytes(),
])  # fmt: skip
def test_header_and_payload_of_a_message(data):
    raw = encode_frames(_frames(10), ENCODING_VIDAR_BITPACKED)
    msg = SimpleNamespace(
        seq=7, first_frame_index=70, num_frames=10, height=H, width=W, encoding=ENCODING_VIDAR_BITPACKED,
        frame_rate_hz=RATE, data=data(raw), header=SimpleNamespace(stamp=SimpleNamespace(sec=3, nanosec=5)),
    )  # fmt: skip
    assert packet_header(msg) == PacketHeader(7, 70, 10, H, W, ENCODING_VIDAR_BITPACKED, 3_000_000_005, RATE)
    payload = packet_payload(msg)
    assert payload.dtype == np.uint8 and payload.ndim == 1
    np.testing.assert_array_equal(payload, raw)
