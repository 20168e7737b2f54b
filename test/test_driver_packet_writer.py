# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The driver's reused message and payload buffer (stir_ros.ros.driver_node.PacketWriter)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rclpy")

from stir_ros.core.dat import write_dat  # noqa: E402
from stir_ros.core.packing import decode_payload, pack_frames  # noqa: E402
from stir_ros.core.sources import DatSource, SpikeBlock  # noqa: E402
from stir_ros.ros.driver_node import DriverSettings, PacketWriter  # noqa: E402


def _frames(n: int, h: int, w: int) -> np.ndarray:
    return (np.random.default_rng(n).random((n, h, w)) < 0.4).astype(np.uint8)


class _BlockSource:
    """A source with ``read`` only (as a vendor SDK wrapper would be)."""

    def __init__(self, frames: np.ndarray) -> None:
        self.frames, self.position = frames, 0
        self.height, self.width = frames.shape[1:]
        self.frame_rate_hz = 20000.0

    def read(self, max_frames: int) -> SpikeBlock | None:
        block = self.frames[self.position : self.position + max_frames]
        self.position += len(block)
        return SpikeBlock(pack_frames(block), len(block)) if len(block) else None

    def close(self) -> None:
        pass


@pytest.mark.parametrize("direct", [True, False])
def test_packets_carry_the_frames_in_one_reused_buffer(tmp_path, direct: bool) -> None:
    frames = _frames(25, 6, 16)
    write_dat(tmp_path / "a.dat", frames)
    source = DatSource(tmp_path / "a.dat", 6, 16) if direct else _BlockSource(frames)
    settings = DriverSettings(source="dat", dat_path=str(tmp_path / "a.dat"), height=6, width=16, frames_per_packet=10)
    writer = PacketWriter(source, settings)
    assert writer.direct is direct
    got, buffers = [], []
    while (msg := writer.read(10)) is not None:
        assert (msg.height, msg.width, msg.encoding, msg.frame_rate_hz) == (6, 16, "vidar_bitpacked", 20000.0)
        got.append(decode_payload(msg.data, 6, 16, msg.num_frames, msg.encoding))
        buffers.append(msg.data)
    assert [len(g) for g in got] == [10, 10, 5]  # the last, short packet in a buffer of its own
    np.testing.assert_array_equal(np.concatenate(got), frames)
    assert buffers[0] is buffers[1] and buffers[2] is not buffers[0]


def test_a_full_packet_after_a_short_one_is_whole(tmp_path) -> None:
    frames = _frames(20, 4, 8)
    write_dat(tmp_path / "a.dat", frames)
    source = DatSource(tmp_path / "a.dat", 4, 8, loop=True)
    writer = PacketWriter(source, DriverSettings(source="dat", dat_path="x", height=4, width=8, frames_per_packet=10))
    first = writer.read(7)
    assert first.num_frames == 7
    np.testing.assert_array_equal(decode_payload(first.data, 4, 8, 7, first.encoding), frames[:7])
    second = writer.read(10)
    np.testing.assert_array_equal(decode_payload(second.data, 4, 8, 10, second.encoding), frames[7:17])
    assert second.data is writer.buffer


def test_probe_does_not_consume_the_stream(tmp_path) -> None:
    frames = _frames(30, 4, 8)
    write_dat(tmp_path / "a.dat", frames)
    source = DatSource(tmp_path / "a.dat", 4, 8, loop=True)
    writer = PacketWriter(source, DriverSettings(source="dat", dat_path="x", height=4, width=8, frames_per_packet=10))
    fps, what = writer.probe()  # without a publisher: serialize_message
    assert fps > 0 and "read + publish" in what
    published = []
    fps, _ = writer.probe(lambda msg: published.append(msg.num_frames))
    assert fps > 0 and published and set(published) == {10}
    assert (source.position, source.frames_read) == (0, 0)
    msg = writer.read(10)
    np.testing.assert_array_equal(decode_payload(msg.data, 4, 8, 10, msg.encoding), frames[:10])


def test_probe_of_a_simulation_times_the_simulator_on_a_copy() -> None:
    """The simulator is timed (it limits a simulated mode), and the stream's own frames stay as they would have been."""
    from stir_ros.core.sensor_model import parse_sensor
    from stir_ros.core.sources import SimSource

    def source() -> SimSource:
        return SimSource(8, 16, sensor=parse_sensor(["realistic"]), seed=5, max_frames=40)

    settings = DriverSettings(source="sim", height=8, width=16, frames_per_packet=10)
    probed, untouched = PacketWriter(source(), settings), PacketWriter(source(), settings)
    published = []
    fps, what = probed.probe(lambda msg: published.append(msg.num_frames))
    assert fps > 0 and what.startswith("simulate + publish") and published and set(published) == {10}
    got, want = [], []
    for writer, out in ((probed, got), (untouched, want)):
        while (msg := writer.read(10)) is not None:
            out.append(bytes(msg.data))
    assert len(got) == 4 and got == want  # every frame, and max_frames still ends it


def test_unpacked_encoding_goes_through_read(tmp_path) -> None:
    frames = _frames(12, 4, 8)
    write_dat(tmp_path / "a.dat", frames)
    settings = DriverSettings(source="dat", dat_path="x", height=4, width=8, frames_per_packet=6, encoding="unpacked_u8")
    writer = PacketWriter(DatSource(tmp_path / "a.dat", 4, 8), settings)
    assert not writer.direct
    msg = writer.read(6)
    assert msg.encoding == "unpacked_u8"
    np.testing.assert_array_equal(np.frombuffer(msg.data, np.uint8).reshape(6, 4, 8), frames[:6])
