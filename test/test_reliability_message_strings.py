# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""What a held packet keeps alive besides its spike data (real serialised SpikePackets).

The memory bound counts spike data; a packet's other variable-length fields (a huge
``header.frame_id``, bytes after the payload) were kept alive with it while its window waited.
"""

from __future__ import annotations

import uuid

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from rclpy.parameter import Parameter  # noqa: E402
from rclpy.serialization import serialize_message  # noqa: E402

from stir_ros.core.limits import MAX_FRAME_ID_CHARS  # noqa: E402
from stir_ros.ros.conversions import frames_to_packet  # noqa: E402
from stir_ros.ros.reconstructor_node import SpikeReconstructor  # noqa: E402

pytestmark = pytest.mark.ros


@pytest.fixture()
def node():
    rclpy.init()
    params = {"method": "tfp", "window_length": 41, "stride_frames": 40}
    n = SpikeReconstructor(namespace=f"/strings_{uuid.uuid4().hex[:8]}",
                           parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])  # fmt: skip
    try:
        yield n
    finally:
        n.stop()
        n.destroy_node()
        rclpy.try_shutdown()


def _raw(seq: int, frame_id: str = "cam") -> bytes:
    frames = (np.random.default_rng(seq).random((10, 4, 6)) < 0.4).astype(np.uint8)
    msg = frames_to_packet(frames, seq=seq, first_frame_index=10 * seq, frame_rate_hz=20000.0,
                           stamp_ns=10**15 + seq * 500_000, frame_id=frame_id)  # fmt: skip
    return serialize_message(msg)


def test_a_huge_frame_id_is_rejected_with_its_reason(node):
    node._on_spikes(_raw(0, frame_id="x" * (8 * 2**20)))  # an 8 MB frame name
    node._on_spikes(_raw(4, frame_id="y" * MAX_FRAME_ID_CHARS))  # at the limit: accepted (frame 40, on the grid)
    assert node.bad_packets["string_too_long"] == 1, node.bad_packets
    assert sum(node.bad_packets.values()) == 1 and node.errors["packet_handling"] == 0
    assert len(node.stream.cutter._chunks) == 1  # the second one is held


def test_a_held_packet_does_not_keep_what_it_carries_besides_its_payload(node):
    raw = bytearray(_raw(0))
    raw += bytes(4 * 2**20)  # 4 MB after the payload: CDR readers ignore trailing bytes
    node._on_spikes(raw)
    assert node.bad_packets.total() == 0, node.bad_packets
    held = [c._payload for c in node.stream.cutter._chunks]
    assert held and not any(np.shares_memory(p, np.frombuffer(raw, np.uint8)) for p in held)
    # An ordinary packet is held in place (no copy): only a message that carries more is copied.
    ordinary = bytearray(_raw(1))
    node._on_spikes(ordinary)
    assert np.shares_memory(node.stream.cutter._chunks[-1]._payload, np.frombuffer(ordinary, np.uint8))
