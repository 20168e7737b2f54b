# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Property-based tests (hypothesis) of everything that reads untrusted bytes or headers.

Bounded in examples and sizes so that the module runs in seconds. Fuzz targets that other modules
already cover are left to them: ``decode_payload`` on small random payloads
(``test_packing.py``), ``packet_to_frames`` on random headers (``test_conversions.py``), the window
cutter's packetisation independence (``test_stream.py``) and chunked ``.dat`` writes
(``test_dat.py``). Here: ``validate_packet`` against ``decode_payload``, ``StreamMonitor`` on
arbitrary seq/frame/stamp sequences, ``DatReader`` on arbitrary files and sizes, the SpikePacket
round trip through DDS serialization, and the reconstructor node's spikes callback on arbitrary
field values.
"""

from __future__ import annotations

import math
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from stir_ros.core.dat import DatReader, dat_num_frames
from stir_ros.core.errors import DatFileError, PacketError
from stir_ros.core.packing import ENCODING_UNPACKED_U8, ENCODING_VIDAR_BITPACKED, ENCODINGS, decode_payload, encode_frames
from stir_ros.core.limits import MIN_FRAME_RATE_HZ
from stir_ros.core.packet import PacketHeader, validate_packet
from stir_ros.core.stream_monitor import StreamMonitor

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ENCODING = st.sampled_from([ENCODING_VIDAR_BITPACKED, ENCODING_UNPACKED_U8, "", "VIDAR_BITPACKED", "h264", "vidar_bitpacked\0"])
U32 = st.integers(0, 2**32 - 1)
FRAME_RATE = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([20000.0, 0.0, -1.0, math.nan, math.inf, 5e-324, 1e-3, 1e300]),
)


# --------------------------------------------------------------------------- validate_packet


@FUZZ
@given(
    data=st.binary(max_size=200),
    h=st.one_of(st.integers(-3, 12), U32),
    w=st.one_of(st.integers(-3, 12), U32),
    n=st.one_of(st.integers(-3, 20), U32),
    encoding=ENCODING,
    rate=FRAME_RATE,
)
def test_validate_packet_agrees_with_decode(data, h, w, n, encoding, rate):
    try:
        raw = validate_packet(data, PacketHeader(0, 0, n, h, w, encoding, 0, rate))
    except PacketError as err:
        assert err.kind in {"unknown_encoding", "bad_num_frames", "bad_frame_rate", "bad_size", "payload_length", "bad_values"}
        assert str(err)
        if err.kind != "bad_frame_rate":  # the decoder does not look at the rate
            with pytest.raises(PacketError):
                decode_payload(data, h, w, n, encoding)
        return
    assert raw.dtype == np.uint8 and raw.size == len(data)
    assert rate >= MIN_FRAME_RATE_HZ and math.isfinite(rate)
    frames = decode_payload(data, h, w, n, encoding)  # what validate_packet accepts always decodes
    assert frames.shape == (n, h, w)


@FUZZ
@given(h=U32, w=U32, n=st.integers(1, 2**32 - 1), encoding=st.sampled_from(ENCODINGS), extra=st.integers(-2, 2))
def test_validate_packet_absurd_headers_never_allocate(h, w, n, encoding, extra):
    # Claims of up to 4e9 x 4e9 x 4e9 with a small payload: rejected from the header alone.
    with pytest.raises(PacketError):
        validate_packet(bytes(max(0, 64 + extra)), PacketHeader(0, 0, n, max(h, 1) | 2**20, max(w, 1), encoding, 0, 20000.0))


# --------------------------------------------------------------------------- StreamMonitor

HEADERS = st.lists(
    st.tuples(
        st.integers(0, 200),  # seq
        st.integers(0, 4000),  # first frame
        st.sampled_from([10, 20, 10]),  # frames per packet
        st.sampled_from([(4, 4), (4, 4), (8, 2)]),  # size
        st.sampled_from([ENCODING_VIDAR_BITPACKED, ENCODING_VIDAR_BITPACKED, ENCODING_UNPACKED_U8]),
        st.integers(-(10**12), 10**12),  # stamp
        st.sampled_from([20000.0, 20000.0, 40000.0]),
    ),
    max_size=40,
)
EVENT_COUNTER = {
    "duplicate": "duplicates", "reordered": "reordered", "restart": "restarts", "frame_gap": "frame_gaps",
    "size_change": "size_changes", "encoding_change": "encoding_changes", "rate_change": "rate_changes",
    "stamp_backwards": "stamps_backwards",
}  # fmt: skip


def _stream_like(draws):
    """Mostly consecutive packets (the interesting cases are rare in uniform draws)."""
    out, seq, first, stamp = [], 0, 0, 10**15
    for s, f, n, (h, w), enc, st_, rate in draws:
        if s % 3:  # two thirds: the next packet of the same stream
            out.append(PacketHeader(seq, first, n, 4, 4, ENCODING_VIDAR_BITPACKED, stamp, 20000.0))
            seq, first, stamp = seq + 1, first + n, stamp + n * 50_000
        else:
            out.append(PacketHeader(s, f, n, h, w, enc, st_, rate))
    return out


@FUZZ
@given(draws=HEADERS, consecutive=st.booleans())
def test_monitor_counters_are_consistent(draws, consecutive):
    headers = _stream_like(draws) if consecutive else [PacketHeader(s, f, n, h, w, e, t, r) for s, f, n, (h, w), e, t, r in draws]
    m = StreamMonitor()
    checks = [m.check(hd) for hd in headers]
    c = m.counters()
    kept = [hd for hd, ck in zip(headers, checks) if ck.action != "drop"]
    assert c["packets"] == len(kept) and c["frames"] == sum(hd.num_frames for hd in kept)
    assert c["lost_packets"] == sum(ck.lost_packets for ck in checks)
    for event, counter in EVENT_COUNTER.items():
        assert c[counter] == sum(ck.event == event for ck in checks), event
    for i, ck in enumerate(checks):
        assert ck.action in {"accept", "reset", "drop"}
        assert (ck.action == "drop") == (ck.event in {"duplicate", "reordered"})
        assert (ck.action == "reset") == (ck.event is not None and ck.action != "drop")
        assert (ck.event == "start") == (i == 0)
        assert (ck.event is None) or ck.message
        if ck.action == "accept":  # an accepted packet continues the last kept one exactly
            prev = [hd for hd, k in zip(headers[:i], checks[:i]) if k.action != "drop"][-1]
            hd = headers[i]
            assert hd.seq == prev.seq + 1 and hd.first_frame_index == prev.first_frame_index + prev.num_frames
            assert (hd.height, hd.width, hd.encoding, hd.frame_rate_hz) == (
                prev.height, prev.width, prev.encoding, prev.frame_rate_hz)
            assert hd.stamp_ns >= prev.stamp_ns


# --------------------------------------------------------------------------- .dat reader


@pytest.fixture(scope="module")
def dat_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz_dat")


@FUZZ
@given(
    data=st.binary(max_size=300),
    h=st.one_of(st.integers(-2, 40), st.integers(0, 2**40)),
    w=st.one_of(st.integers(-2, 40), st.integers(0, 2**40)),
    start=st.integers(-3, 30),
    count=st.one_of(st.none(), st.integers(-3, 30)),
)
def test_dat_reader_on_arbitrary_files_raises_only_dat_file_error(dat_dir, data, h, w, start, count):
    path = dat_dir / f"{uuid.uuid4().hex}.dat"
    path.write_bytes(data)
    try:
        with DatReader(path, h, w) as reader:
            assert (reader.num_frames * h * w + 7) // 8 == len(data)
            try:
                frames = reader.read(start, count)
            except DatFileError:
                return
            n = reader.num_frames - start if count is None else count
            assert frames.shape == (n, h, w) and frames.dtype == np.uint8
            assert set(np.unique(frames)) <= {0, 1}
            if n:
                np.testing.assert_array_equal(reader.read_packed(start, n), encode_frames(frames, ENCODING_VIDAR_BITPACKED))
    except DatFileError as err:
        assert str(err)
    finally:
        path.unlink()


@FUZZ
@given(num_bytes=st.integers(0, 2**62), h=st.integers(-5, 2**31), w=st.integers(-5, 2**31))
def test_dat_frame_count_of_any_size(num_bytes, h, w):
    try:
        n = dat_num_frames(num_bytes, h, w)
    except DatFileError as err:
        assert str(err)
        return
    assert (n * h * w + 7) // 8 == num_bytes


# --------------------------------------------------------------------------- ROS messages

rclpy = pytest.importorskip("rclpy")

from rclpy.parameter import Parameter  # noqa: E402
from rclpy.serialization import deserialize_message, serialize_message  # noqa: E402

from stir_ros.msg import SpikePacket  # noqa: E402
from stir_ros.ros.conversions import frames_to_packet, packet_header, packet_to_frames  # noqa: E402


@FUZZ
@given(
    n=st.integers(1, 5), h=st.integers(1, 33), w=st.integers(1, 33), encoding=st.sampled_from(ENCODINGS),
    seq=st.integers(0, 2**64 - 1), first=st.integers(0, 2**64 - 1), rate=st.floats(1e-3, 1e6),
    stamp=st.integers(0, (2**31 - 1) * 10**9),
    frame_id=st.text(st.characters(codec="utf-8", exclude_characters="\0"), max_size=12), seed=st.integers(0, 2**32 - 1),
    density=st.sampled_from([0.0, 0.3, 1.0]),
)  # fmt: skip
def test_spike_packet_round_trip_through_serialization(n, h, w, encoding, seq, first, rate, stamp, frame_id, seed, density):
    frames = (np.random.default_rng(seed).random((n, h, w)) < density).astype(np.uint8)
    msg = frames_to_packet(frames, seq=seq, first_frame_index=first, frame_rate_hz=rate, stamp_ns=stamp,
                           frame_id=frame_id, encoding=encoding)  # fmt: skip
    back = deserialize_message(serialize_message(msg), SpikePacket)
    assert packet_header(back) == PacketHeader(seq, first, n, h, w, encoding, stamp, rate)
    assert back.header.frame_id == frame_id
    np.testing.assert_array_equal(packet_to_frames(back), frames)
    validate_packet(back.data, packet_header(back))


@pytest.fixture(scope="module")
def node():
    """One reconstructor node in this process, fed directly through its spikes callback."""
    from stir_ros.ros.reconstructor_node import SpikeReconstructor

    rclpy.init()
    params = {"method": "tfp", "window_length": 5, "stride_frames": 3, "queue_size": 256, "max_batch": 64}
    n = SpikeReconstructor(namespace=f"/fuzz_{uuid.uuid4().hex[:8]}",
                           parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])  # fmt: skip
    try:
        yield n
    finally:
        n.stop()
        n.destroy_node()
        rclpy.try_shutdown()


CORRUPTIONS = st.sampled_from(["none", "none", "none", "truncate", "extend", "encoding", "num_frames", "height",
                               "width", "rate", "values"])  # fmt: skip


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(
    packets=st.lists(
        st.tuples(
            st.integers(-2, 3),  # seq step (0: duplicate, < 0: late or restart)
            st.sampled_from([1, 4, 7]),  # frames
            st.sampled_from([(3, 5), (3, 5), (2, 2)]),
            st.sampled_from([ENCODING_VIDAR_BITPACKED, ENCODING_VIDAR_BITPACKED, ENCODING_UNPACKED_U8]),
            st.integers(-(10**8), 10**9),  # stamp step
            CORRUPTIONS,
            # the corrupt value (DDS strings are UTF-8)
            st.one_of(U32, FRAME_RATE, st.text(st.characters(codec="utf-8"), max_size=8)),
        ),
        min_size=1, max_size=25,
    )
)  # fmt: skip
def test_node_spikes_callback_on_arbitrary_fields(node, packets):
    before = node.diagnostics_values()
    seq, first, stamp = 1000, 0, 10**15
    sent = bad = 0
    for step, n, (h, w), enc, dstamp, corruption, value in packets:
        seq, stamp = max(0, seq + step), max(0, stamp + dstamp)
        frames = (np.random.default_rng(seq).random((n, h, w)) < 0.5).astype(np.uint8)
        msg = frames_to_packet(frames, seq=seq, first_frame_index=first, frame_rate_hz=20000.0, stamp_ns=stamp, encoding=enc)
        first += n
        try:
            _corrupt(msg, corruption, value)
        except (TypeError, ValueError, AssertionError):
            assume(False)  # not a value the message type can hold
        bad += _invalid(msg)
        node._on_spikes(msg)
        sent += 1
    deadline = time.monotonic() + 10  # the worker thread reconstructs what was cut
    while node.images_published + node.windows_dropped < node.windows_cut and time.monotonic() < deadline:
        time.sleep(0.005)
    after = node.diagnostics_values()
    delta = {k: after[k] - before[k] for k in after if isinstance(after[k], int) and k in before}
    assert delta["packet_handling_errors"] == 0 and delta["inference_errors"] == 0
    assert delta["bad_packets"] == bad
    kept = delta["input_packets"]
    assert kept + delta["input_duplicates"] + delta["input_reordered"] + bad == sent
    assert delta["images_published"] + delta["windows_dropped"] == delta["windows_cut"]
    assert delta["windows_dropped"] == 0  # the queue holds 256 (at most 58 windows per example)


def _corrupt(msg: SpikePacket, corruption: str, value) -> None:
    if corruption == "truncate":
        msg.data = msg.data[: len(msg.data) // 2]
    elif corruption == "extend":
        msg.data = bytes(msg.data) + b"\0"
    elif corruption == "encoding":
        msg.encoding = str(value)
    elif corruption in ("num_frames", "height", "width"):
        setattr(msg, corruption, int(value) if not isinstance(value, str) and math.isfinite(value) else 0)
    elif corruption == "rate":
        msg.frame_rate_hz = float(value) if not isinstance(value, str) else math.nan
    elif corruption == "values" and msg.encoding == ENCODING_UNPACKED_U8 and len(msg.data):
        data = bytearray(msg.data)
        data[0] = 7
        msg.data = bytes(data)


def _invalid(msg: SpikePacket) -> bool:
    """Whether the node must reject the packet (header and payload disagree or are invalid)."""
    h = packet_header(msg)
    try:
        validate_packet(bytes(msg.data), h)
    except PacketError:
        return True
    return False
