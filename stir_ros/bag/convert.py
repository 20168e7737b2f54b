# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Conversion between Vidar ``.dat`` recordings and bags of SpikePackets.

``.dat`` -> bag: the file is cut into packets of ``frames_per_packet`` frames (the last one may be
shorter), numbered from ``seq`` 0 and ``first_frame_index`` 0. Packet ``k`` is stamped (header
stamp and bag time alike) ``start_time + first_frame_index / frame_rate_hz``, the sensor clock
laid onto the header clock. Payloads are copied from the file in the packet layout without being
unpacked (:meth:`~stir_ros.core.dat.DatReader.read_packed`), so the round trip is bit-exact.

bag -> ``.dat``: packets are written in stream order. A ``.dat`` file has no time stamps, so lost
packets (a gap in ``first_frame_index``) are filled with empty frames by default to keep frame
index = time; duplicates are dropped; a restart of the stream (index going back) and a change of
frame size are reported.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import numpy as np

from stir_ros.bag.model import BagProblem, make_qos
from stir_ros.bag.reader import BagReader, check_spike_topic
from stir_ros.bag.types import SPIKE_PACKET, get_typestore
from stir_ros.bag.writer import BagWriter
from stir_ros.core import defaults
from stir_ros.core.dat import DatReader, DatWriter
from stir_ros.core.errors import BagError, ConfigError, PacketError, SpikeFormatError
from stir_ros.core.packing import (
    ENCODING_UNPACKED_U8,
    ENCODING_VIDAR_BITPACKED,
    ENCODINGS,
    decode_payload,
    payload_size,
)
from stir_ros.core.paths import check_output_apart

__all__ = ["DatToBagResult", "BagToDatResult", "dat_to_bag", "bag_to_dat", "frame_time_ns", "parse_time_ns"]

ProblemCallback = Callable[[BagProblem], None]


def frame_time_ns(start_ns: int, frame_index: int, frame_rate_hz: float) -> int:
    """Time of frame ``frame_index`` on a clock where frame 0 is at ``start_ns`` (exact rounding)."""
    return start_ns + round(Fraction(frame_index) * 10**9 / Fraction(frame_rate_hz))


def parse_time_ns(text: str) -> int:
    """Seconds as text (``"1700000000.25"``) -> integer nanoseconds, without float rounding."""
    try:
        return int(Decimal(text) * 10**9)
    except ArithmeticError as err:
        raise ConfigError(f"time must be a number of seconds, got {text!r}") from err


@dataclass
class DatToBagResult:
    """What :func:`dat_to_bag` wrote."""

    num_frames: int
    num_packets: int
    start_ns: int


@dataclass
class BagToDatResult:
    """What :func:`bag_to_dat` wrote and what it met on the way."""

    num_frames: int = 0
    num_packets: int = 0
    height: int = 0
    width: int = 0
    frame_rate_hz: float = 0.0
    filled_frames: int = 0
    problems: list[BagProblem] = field(default_factory=list)


def dat_to_bag(
    dat_path: str | os.PathLike[str],
    bag_path: str | os.PathLike[str],
    height: int,
    width: int,
    frame_rate_hz: float,
    *,
    frames_per_packet: int = defaults.FRAMES_PER_PACKET,
    topic: str = "/" + defaults.SPIKES_TOPIC,
    frame_id: str = defaults.FRAME_ID,
    start_ns: int | None = None,
    storage: str = "sqlite3",
    encoding: str = ENCODING_VIDAR_BITPACKED,
    progress: Callable[[int], None] | None = None,
) -> DatToBagResult:
    """Write a ``.dat`` recording as a bag of SpikePackets.

    Args:
        dat_path: The Vidar ``.dat`` file.
        bag_path: The bag directory to create.
        height: Frame height in pixels.
        width: Frame width in pixels (1024 for some 1000-wide sensors).
        frame_rate_hz: Sensor frame rate.
        frames_per_packet: Frames per SpikePacket.
        topic: Topic of the packets.
        frame_id: ``header.frame_id`` of the packets.
        start_ns: Header/bag time of frame 0; default: the file's modification time minus the
            recording's duration (the best guess of when it was recorded).
        storage: ``sqlite3`` or ``mcap``.
        encoding: Payload encoding, one of :data:`~stir_ros.core.packing.ENCODINGS`.
        progress: Called with the number of frames written after each packet.

    Raises:
        ConfigError: For invalid options.
        DatFileError: If the ``.dat`` file cannot be read as frames of this size.
        BagError: If the bag cannot be written.
    """
    if not frame_rate_hz > 0:
        raise ConfigError(f"frame_rate_hz must be positive, got {frame_rate_hz}")
    if frames_per_packet <= 0:
        raise ConfigError(f"frames_per_packet must be positive, got {frames_per_packet}")
    if encoding not in ENCODINGS:
        raise ConfigError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
    check_output_apart(bag_path, [dat_path], what="output bag", folder=True)
    store = get_typestore()
    packet_t = store.types[SPIKE_PACKET]
    header_t = store.types["std_msgs/msg/Header"]
    time_t = store.types["builtin_interfaces/msg/Time"]
    with DatReader(dat_path, height, width) as dat:
        if start_ns is None:
            mtime_ns = Path(dat_path).stat().st_mtime_ns
            start_ns = max(0, mtime_ns - frame_time_ns(0, dat.num_frames, frame_rate_hz))
        with BagWriter(bag_path, storage) as bag:
            bag.set_custom_data("stir_ros.source", Path(dat_path).name)
            bag.set_custom_data("stir_ros.frame_size", f"{height}x{width}")
            conn = bag.add_topic(topic, SPIKE_PACKET, [make_qos(reliable=True, depth=100)])
            seq = 0
            for first in range(0, dat.num_frames, frames_per_packet):
                count = min(frames_per_packet, dat.num_frames - first)
                if encoding == ENCODING_VIDAR_BITPACKED:
                    payload = dat.read_packed(first, count)
                else:
                    payload = dat.read(first, count).reshape(-1)
                stamp = frame_time_ns(start_ns, first, frame_rate_hz)
                sec, nanosec = divmod(stamp, 10**9)
                msg = packet_t(
                    header=header_t(stamp=time_t(sec=sec, nanosec=nanosec), frame_id=frame_id),
                    height=height, width=width, seq=seq, first_frame_index=first,
                    frame_rate_hz=float(frame_rate_hz), num_frames=count, encoding=encoding,
                    data=np.ascontiguousarray(payload),
                )
                bag.write_message(conn, stamp, msg)
                seq += 1
                if progress is not None:
                    progress(first + count)
            return DatToBagResult(dat.num_frames, seq, start_ns)


def bag_to_dat(
    bag_path: str | os.PathLike[str],
    dat_path: str | os.PathLike[str],
    *,
    topic: str | None = None,
    fill_gaps: bool = True,
    max_gap_frames: int = 10_000_000,
    on_problem: ProblemCallback | None = None,
    progress: Callable[[int], None] | None = None,
) -> BagToDatResult:
    """Write the SpikePackets of a bag as a ``.dat`` file.

    Args:
        bag_path: The bag.
        dat_path: The ``.dat`` file to create (replaced if it exists).
        topic: Spike topic; ``None`` picks ``/spikes`` or the bag's only SpikePacket topic.
        fill_gaps: Write empty frames for lost packets so that frame index stays time.
        max_gap_frames: A larger jump in ``first_frame_index`` is treated as a corrupt packet.
        on_problem: Called with each problem as it is met (also collected in the result).
        progress: Called with the number of packets read so far.

    Raises:
        BagError: If the bag has no usable spike topic, or the frame size changes mid-stream
            (the frames written up to there are kept).
    """
    check_output_apart(dat_path, [bag_path], what=".dat file")
    result = BagToDatResult()

    def problem(p: BagProblem) -> None:
        result.problems.append(p)
        if on_problem is not None:
            on_problem(p)

    writer: DatWriter | None = None
    expected: int | None = None
    try:
        with BagReader(bag_path, on_problem=problem) as bag:
            topic = check_spike_topic(bag, topic)
            for raw in bag.messages([topic]):
                result.num_packets += 1
                if progress is not None:
                    progress(result.num_packets)
                where = f"{topic} t={raw.timestamp}"
                try:
                    msg = bag.deserialize(raw)
                    payload = np.asarray(msg.data, dtype=np.uint8)
                    h, w, n = int(msg.height), int(msg.width), int(msg.num_frames)
                    if msg.encoding == ENCODING_UNPACKED_U8:
                        frames = decode_payload(payload, h, w, n, msg.encoding)
                    else:
                        _check_payload(payload, h, w, n, msg.encoding)
                        frames = None
                except (BagError, SpikeFormatError) as err:
                    problem(BagProblem("bad_message", where, f"{err}; skipped"))
                    continue
                if writer is None:
                    writer = DatWriter(dat_path, h, w)
                    result.height, result.width, result.frame_rate_hz = h, w, float(msg.frame_rate_hz)
                elif (h, w) != (writer.height, writer.width):
                    raise BagError(
                        f"frame size changes from {writer.height}x{writer.width} to {h}x{w} at {where}; "
                        f"a .dat file holds one size: {writer.num_frames} frames written to '{dat_path}', "
                        "convert the rest with a time range of its own"
                    )
                first = int(msg.first_frame_index)
                if expected is not None and first != expected:
                    if first > expected and first - expected <= max_gap_frames:
                        gap = first - expected
                        problem(BagProblem("gap", where, f"{gap} frames missing before frame {first}"
                                           + (" (filled with empty frames)" if fill_gaps else "")))
                        if fill_gaps:
                            _write_empty(writer, gap)
                            result.filled_frames += gap
                    elif first < expected and first + n <= expected and int(msg.seq) != 0 and first != 0:
                        problem(BagProblem("duplicate", where, f"frames {first}..{first + n - 1} were already "
                                           "written (duplicate or reordered packet); skipped"))
                        continue
                    else:
                        problem(BagProblem("restart", where, f"stream jumps from frame {expected} to {first} "
                                           "(restarted driver?); appended as is"))
                if frames is not None:
                    writer.write(frames)
                else:
                    writer.write_packed(payload)
                expected = first + n
                result.num_frames = writer.num_frames
    finally:
        if writer is not None:
            writer.close()
            result.num_frames = writer.num_frames
    if writer is None:
        raise BagError(f"no readable SpikePacket in bag '{bag_path}'; nothing written")
    return result


def _check_payload(payload: np.ndarray, height: int, width: int, num_frames: int, encoding: str) -> None:
    """Validate a packet's header against its payload without unpacking it."""
    if num_frames <= 0:
        raise PacketError(f"num_frames must be positive, got {num_frames}")
    expected = payload_size(height, width, num_frames, encoding)
    if payload.size != expected:
        raise PacketError(f"payload has {payload.size} bytes, expected {expected} for {num_frames} "
                          f"frames of {height}x{width} in {encoding}")


def _write_empty(writer: DatWriter, count: int) -> None:
    block = 1024
    zeros = np.zeros((min(block, count), writer.height, writer.width), np.uint8)
    while count > 0:
        writer.write(zeros[: min(block, count)])
        count -= block
