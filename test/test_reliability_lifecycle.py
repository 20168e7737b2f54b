# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Managed nodes under requests they do not expect, in node processes over DDS (real rclpy).

Any transition request, in any primary state, is answered and leaves the node where it was;
deactivate does not wait out the publishing thread's sleep; a reconstructor configured and
cleaned up again and again while packets stream never handles a packet half-configured.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest

rclpy = pytest.importorskip("rclpy")

from lifecycle_msgs.msg import State, Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402

from rclpy.parameter import Parameter  # noqa: E402
from ros_support import call_service, spike_packet, spin_until  # noqa: E402

from stir_ros.msg import SpikePacket  # noqa: E402
from stir_ros.ros.reconstructor_node import ManagedSpikeReconstructor  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow]

DRIVER = {"source": "sim", "height": 32, "width": 48, "frame_rate_hz": 400.0, "frames_per_packet": 20}
RECON = {"method": "tfp", "stride_frames": 100, "diagnostics_period_s": 0.2}
NODES = {
    "driver": ("spike_camera_driver_lifecycle", "spike_camera_driver", DRIVER),
    "reconstructor": ("spike_reconstructor_lifecycle", "spike_reconstructor", RECON),
}
#: Every transition id lifecycle_msgs names (intermediate ones included), and some it does not.
IDS = sorted({v for k, v in vars(Transition).items() if k.startswith("TRANSITION_")} | {9, 99, 200, 255})
LABELS = ["configure", "cleanup", "activate", "deactivate", "shutdown", "create", "destroy",
          "transition_success", "transition_failure", "transition_error", "bogus", "x" * 300]  # fmt: skip
#: What each primary state offers: (ids, labels).
OFFERED = {
    State.PRIMARY_STATE_UNCONFIGURED: ({1, 5}, {"configure", "shutdown"}),
    State.PRIMARY_STATE_INACTIVE: ({2, 3, 6}, {"cleanup", "activate", "shutdown"}),
    State.PRIMARY_STATE_ACTIVE: ({4, 7}, {"deactivate", "shutdown"}),
}


class Managed:
    def __init__(self, ros_node, fqn: str) -> None:
        self.node = ros_node
        self.change = ros_node.create_client(ChangeState, f"{fqn}/change_state")
        self.get = ros_node.create_client(GetState, f"{fqn}/get_state")

    def state(self) -> int:
        return call_service(self.node, self.get, GetState.Request(), timeout=30).current_state.id

    def request(self, transition_id: int = 0, label: str = "") -> bool:
        request = ChangeState.Request(transition=Transition(id=transition_id, label=label))
        return call_service(self.node, self.change, request, timeout=30, resend_every=None).success


@pytest.mark.parametrize("which", sorted(NODES))
def test_every_refused_transition_is_answered_and_leaves_the_state(which, nodes, ros_node):
    exe, name, params = NODES[which]
    ns = f"lcr_{uuid.uuid4().hex[:8]}"
    proc = nodes.start(exe, ns, params)
    node = Managed(ros_node, f"/{ns}/{name}")
    walk = [(State.PRIMARY_STATE_UNCONFIGURED, None), (State.PRIMARY_STATE_INACTIVE, 1), (State.PRIMARY_STATE_ACTIVE, 3)]
    for state, into in walk:
        if into is not None:
            assert node.request(into), nodes.logs()
        assert node.state() == state, nodes.logs()
        ids, labels = OFFERED[state]
        for transition_id in IDS:
            if transition_id not in ids:
                assert node.request(transition_id) is False, f"{transition_id} in {state}"
                assert proc.poll() is None and node.state() == state, f"after {transition_id}:\n{nodes.logs()}"
        for label in LABELS:
            if label not in labels:
                assert node.request(1, label) is False, f"{label[:20]} in {state}"
                assert proc.poll() is None and node.state() == state, f"after {label[:20]}:\n{nodes.logs()}"
    assert "refused transition" in nodes.logs()
    # Still fully working: the allowed way down and out.
    assert node.request(Transition.TRANSITION_ACTIVE_SHUTDOWN), nodes.logs()
    assert proc.wait(timeout=30) == 0, nodes.logs()


def test_driver_deactivate_does_not_wait_out_the_stream(nodes, ros_node):
    """realtime: deactivate wakes the publishing thread instead of waiting for it (it took 2.0 s)."""
    ns = f"lcd_{uuid.uuid4().hex[:8]}"
    nodes.start("spike_camera_driver_lifecycle", ns, {**DRIVER, "realtime": True})
    packets: list[SpikePacket] = []
    ros_node.create_subscription(SpikePacket, f"/{ns}/spikes", packets.append, 50)
    driver = Managed(ros_node, f"/{ns}/spike_camera_driver")
    assert driver.request(Transition.TRANSITION_CONFIGURE), nodes.logs()
    took = []
    for _ in range(3):
        assert driver.request(Transition.TRANSITION_ACTIVATE), nodes.logs()
        seen = len(packets)
        assert spin_until(ros_node, lambda seen=seen: len(packets) >= seen + 5, 30), nodes.logs()
        started = time.monotonic()
        assert driver.request(Transition.TRANSITION_DEACTIVATE), nodes.logs()
        took.append(time.monotonic() - started)
        assert driver.state() == State.PRIMARY_STATE_INACTIVE
    print(f"deactivate answered in {', '.join(f'{t * 1000:.0f} ms' for t in took)}")
    # Not a speed assertion: a bound for a hang, far above the publish period (50 ms).
    assert max(took) < 1.5, took


@pytest.mark.parametrize("executor", ["events", "single_threaded"])
def test_reconstructor_cycled_while_packets_stream_never_sees_half_a_configuration(executor, nodes, ros_node):
    """configure/activate/deactivate/cleanup 50 times under a dense stream: no packet meets a cleaned-up node."""
    ns = f"lcc_{uuid.uuid4().hex[:8]}"
    # 1,000 packets/s of 2 frames: a packet waits in the executor at nearly every transition.
    nodes.start("spike_camera_driver", ns, {**DRIVER, "frame_rate_hz": 2000.0, "frames_per_packet": 2})
    proc = nodes.start("spike_reconstructor_lifecycle", ns, {**RECON, "stride_frames": 20, "executor": executor})
    recon = Managed(ros_node, f"/{ns}/spike_reconstructor")
    seen: list[SpikePacket] = []
    ros_node.create_subscription(SpikePacket, f"/{ns}/spikes", seen.append, 50)
    assert spin_until(ros_node, lambda: len(seen) >= 20, 40), nodes.logs()
    steps = (Transition.TRANSITION_CONFIGURE, Transition.TRANSITION_ACTIVATE, Transition.TRANSITION_DEACTIVATE,
             Transition.TRANSITION_CLEANUP)  # fmt: skip
    for cycle in range(50):
        for step in steps:
            assert recon.request(step), f"cycle {cycle}, transition {step}:\n{nodes.logs()}"
    assert recon.state() == State.PRIMARY_STATE_UNCONFIGURED and proc.poll() is None, nodes.logs()
    logs = "".join(log.read_text() for _, _, log in nodes.procs)  # whole logs: nodes.logs() keeps their ends
    assert logs.count("cleaned up: model released") == 50, logs[-4000:]
    errors = [line for line in logs.splitlines() if "unexpected error" in line or "Traceback" in line]
    assert not errors, "\n".join(errors[:10])


def test_packets_from_another_thread_while_cycling_meet_a_whole_configuration_or_none(ros_node):
    """The class behind the 50-cycle race: a packet callback concurrent with (or later than) a transition.

    A second thread calls the subscription callback as fast as it can (as a multi-threaded
    executor, or an events executor delivering a queued packet late, would) while this one runs
    configure/activate/deactivate/cleanup; no packet may fail on a configuration half taken down.
    """
    params = [Parameter(k, value=v) for k, v in {**RECON, "stride_frames": 20, "window_length": 21}.items()]
    node = ManagedSpikeReconstructor(namespace=f"/lct_{uuid.uuid4().hex[:8]}", parameter_overrides=params)
    errors: list[str] = []
    node._error = lambda kind, message: errors.append(f"{kind}: {message}")  # every error the node would log
    done = threading.Event()

    def feed() -> None:
        seq = 0
        while not done.is_set():
            node._on_spikes(spike_packet(seq, 20 * seq))
            seq += 1

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        for _ in range(50):
            for step in (node.trigger_configure, node.trigger_activate, node.trigger_deactivate, node.trigger_cleanup):
                assert step() == rclpy.lifecycle.TransitionCallbackReturn.SUCCESS
    finally:
        done.set()
        feeder.join(timeout=10)
        node.destroy_node()
    assert not feeder.is_alive()
    assert not errors, errors[:5]
    assert node.late_callbacks > 0  # the feeder did meet inactive states
