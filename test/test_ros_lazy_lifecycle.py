# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Lazy reconstruction and managed (lifecycle) nodes, in node processes over DDS (real rclpy).

Each test runs its nodes in a namespace of its own and stops them in ``finally`` blocks. The
test process is the only subscriber to the images, so it decides whether the lazy ros_node has one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

rclpy = pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from lifecycle_msgs.msg import State, Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402
from rcl_interfaces.srv import GetParameters  # noqa: E402
from rclpy.qos import QoSProfile, QoSReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from ros_support import call_service, spin_until  # noqa: E402

from stir_ros.msg import SpikePacket  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow]

RELIABLE = QoSProfile(depth=50, reliability=QoSReliabilityPolicy.RELIABLE)
#: A small simulated stream in real time: 20 packets/s of 20 frames of 32x48, one TFP image per 100 frames.
DRIVER = {"source": "sim", "height": 32, "width": 48, "frame_rate_hz": 400.0, "frames_per_packet": 20}
RECON = {"method": "tfp", "stride_frames": 100, "diagnostics_period_s": 0.2}


class Diagnostics:
    """The latest reconstructor diagnostics of namespace ``ns`` (values and message)."""

    def __init__(self, ros_node, ns: str) -> None:
        self.node, self.ns = ros_node, ns
        self.values: dict[str, str] = {}
        self.message, self.level = "", b""
        self.count = 0
        ros_node.create_subscription(DiagnosticArray, "/diagnostics", self._on, 50)

    def _on(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name == f"/{self.ns}/spike_reconstructor: reconstruction":
                self.values = {kv.key: kv.value for kv in status.values}
                self.message, self.level = status.message, status.level
                self.count += 1

    def wait(self, predicate: Callable[[dict[str, str]], bool], timeout: float = 30.0) -> bool:
        return spin_until(self.node, lambda: bool(self.values) and predicate(self.values), timeout)


# --------------------------------------------------------------------------- lazy


@pytest.mark.parametrize("lazy", [True, False])
def test_lazy_reconstructs_only_for_subscribers(lazy, nodes, ros_node):
    ns = f"lazy_{uuid.uuid4().hex[:8]}"
    diag = Diagnostics(ros_node, ns)
    spikes = ros_node.create_subscription(SpikePacket, f"/{ns}/spikes", lambda _: None, RELIABLE)
    nodes.start("spike_reconstructor", ns, {**RECON, "lazy": lazy})
    nodes.start("spike_camera_driver", ns, DRIVER)
    # Packets arrive and are counted (at least 40: two seconds of stream, 8 windows' worth)...
    assert spin_until(ros_node, lambda: spikes.get_publisher_count() >= 1, 40), nodes.logs()
    assert diag.wait(lambda v: int(v["input_packets"]) >= 40, 60), f"{diag.values}\n{nodes.logs()}"
    values = diag.values
    if lazy:
        # ...but with nobody subscribed to the images, no window is cut and nothing reconstructed.
        assert values["windows_cut"] == "0" and values["images_published"] == "0", values
        assert values["idle_no_subscribers"] == "True" and values["lazy"] == "True"
        assert diag.level == b"\x00" and diag.message.startswith("idle: no subscribers"), diag.message
    else:
        assert int(values["windows_cut"]) > 0 and values["idle_no_subscribers"] == "False", values
    # A subscriber appears: images come.
    images: list[Image] = []
    ros_node.create_subscription(Image, f"/{ns}/image", images.append, RELIABLE)
    assert spin_until(ros_node, lambda: len(images) >= 3, 30), f"{diag.values}\n{nodes.logs()}"
    assert diag.wait(lambda v: v["idle_no_subscribers"] == "False" and int(v["images_published"]) > 0)
    assert diag.values["input_lost_packets"] == "0"


def test_lazy_is_a_validated_dynamic_parameter(nodes, ros_node):
    from rcl_interfaces.msg import Parameter as ParameterMsg
    from rcl_interfaces.msg import ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters

    ns = f"lazyp_{uuid.uuid4().hex[:8]}"
    diag = Diagnostics(ros_node, ns)
    nodes.start("spike_reconstructor", ns, RECON)
    assert diag.wait(lambda v: v["lazy"] == "False", 60), nodes.logs()
    client = ros_node.create_client(SetParameters, f"/{ns}/spike_reconstructor/set_parameters")
    assert client.wait_for_service(timeout_sec=30)

    def set_lazy(value: ParameterValue) -> Any:
        request = SetParameters.Request(parameters=[ParameterMsg(name="lazy", value=value)])
        return call_service(ros_node, client, request, timeout=30).results[0]

    wrong = set_lazy(ParameterValue(type=ParameterType.PARAMETER_STRING, string_value="yes"))
    assert not wrong.successful
    assert set_lazy(ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=True)).successful
    assert diag.wait(lambda v: v["lazy"] == "True" and v["idle_no_subscribers"] == "True")


# --------------------------------------------------------------------------- lifecycle


class Managed:
    """A managed node's lifecycle services, called from the test process."""

    def __init__(self, ros_node, fqn: str) -> None:
        self.node, self.fqn = ros_node, fqn
        self.change = ros_node.create_client(ChangeState, f"{fqn}/change_state")
        self.get = ros_node.create_client(GetState, f"{fqn}/get_state")
        self.params = ros_node.create_client(GetParameters, f"{fqn}/get_parameters")

    def _call(self, client, request, idempotent: bool = False):
        # A query may be sent again when its answer is lost; a transition is sent once.
        return call_service(self.node, client, request, timeout=60, resend_every=10.0 if idempotent else None)

    def state(self) -> int:
        return self._call(self.get, GetState.Request(), idempotent=True).current_state.id

    def transition(self, transition_id: int) -> bool:
        return self._call(self.change, ChangeState.Request(transition=Transition(id=transition_id))).success

    def parameter(self, name: str) -> Any:
        value = self._call(self.params, GetParameters.Request(names=[name]), idempotent=True).values[0]
        return value.integer_value or value.string_value or value.double_value


def _driver_packets(ros_node, ns: str) -> Callable[[], int]:
    """packets_published in the latest diagnostics of the driver in ``ns``."""
    latest = {"packets": -1, "count": 0}

    def on(msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name == f"/{ns}/spike_camera_driver: spikes":
                latest["packets"] = int({kv.key: kv.value for kv in status.values}["packets_published"])
                latest["count"] += 1

    ros_node.create_subscription(DiagnosticArray, "/diagnostics", on, 50)
    return lambda: (latest["packets"], latest["count"])


def test_lifecycle_transitions_over_services(nodes, ros_node):
    ns = f"lc_{uuid.uuid4().hex[:8]}"
    driver_proc = nodes.start("spike_camera_driver_lifecycle", ns, DRIVER)
    recon_proc = nodes.start("spike_reconstructor_lifecycle", ns, RECON)
    driver, recon = Managed(ros_node, f"/{ns}/spike_camera_driver"), Managed(ros_node, f"/{ns}/spike_reconstructor")
    images: list[Image] = []
    packets: list[SpikePacket] = []
    image_sub = ros_node.create_subscription(Image, f"/{ns}/image", images.append, RELIABLE)
    spikes_sub = ros_node.create_subscription(SpikePacket, f"/{ns}/spikes", packets.append, RELIABLE)
    diag = Diagnostics(ros_node, ns)
    driver_diag = _driver_packets(ros_node, ns)

    # Unconfigured: no publishers yet.
    assert driver.state() == State.PRIMARY_STATE_UNCONFIGURED, nodes.logs()
    assert recon.state() == State.PRIMARY_STATE_UNCONFIGURED
    assert spikes_sub.get_publisher_count() == 0 and image_sub.get_publisher_count() == 0

    # configure: parameters read, model loaded, publishers made; nothing flows yet.
    assert recon.transition(Transition.TRANSITION_CONFIGURE), nodes.logs()
    assert driver.transition(Transition.TRANSITION_CONFIGURE), nodes.logs()
    assert recon.state() == driver.state() == State.PRIMARY_STATE_INACTIVE
    assert spin_until(ros_node, lambda: image_sub.get_publisher_count() == 1 == spikes_sub.get_publisher_count(), 30)
    assert diag.wait(lambda v: v["method"] == "tfp") and diag.message.startswith("inactive"), diag.message

    # activate: packets and images flow.
    assert recon.transition(Transition.TRANSITION_ACTIVATE) and driver.transition(Transition.TRANSITION_ACTIVATE)
    assert recon.state() == driver.state() == State.PRIMARY_STATE_ACTIVE
    assert spin_until(ros_node, lambda: len(images) >= 3 and len(packets) >= 10, 60), nodes.logs()

    # deactivate the reconstructor: no more images although packets keep coming (10 packets are two
    # strides), counters stay; then the driver: no more packets. Parameters and model are kept.
    assert recon.transition(Transition.TRANSITION_DEACTIVATE)
    assert recon.state() == State.PRIMARY_STATE_INACTIVE
    first = diag.count
    assert spin_until(ros_node, lambda: diag.count >= first + 1, 30)
    n_images, published = len(images), diag.values["images_published"]
    n_packets = len(packets)
    assert spin_until(ros_node, lambda: len(packets) >= n_packets + 10 and diag.count >= first + 4, 30), nodes.logs()
    assert (len(images), diag.values["images_published"]) == (n_images, published)
    assert diag.level == b"\x00" and diag.message.startswith("inactive"), diag.message
    assert driver.transition(Transition.TRANSITION_DEACTIVATE)
    assert driver.state() == State.PRIMARY_STATE_INACTIVE
    seen = driver_diag()[1]
    assert spin_until(ros_node, lambda: driver_diag()[1] >= seen + 1, 30)
    n_packets, (sent, seen) = len(packets), driver_diag()
    assert spin_until(ros_node, lambda: driver_diag()[1] >= seen + 3, 30)
    assert (len(packets), driver_diag()[0]) == (n_packets, sent)
    assert recon.parameter("stride_frames") == RECON["stride_frames"] and recon.parameter("method") == "tfp"
    assert driver.parameter("height") == DRIVER["height"]

    # activate again: flows again, the stream going on where it stopped.
    assert recon.transition(Transition.TRANSITION_ACTIVATE) and driver.transition(Transition.TRANSITION_ACTIVATE)
    assert spin_until(ros_node, lambda: len(images) >= n_images + 3 and len(packets) >= n_packets + 10, 60), nodes.logs()
    seqs = [p.seq for p in packets]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "the stream resumes without a seq gap"

    # deactivate, cleanup: back to unconfigured, publishers (and the model) gone.
    assert recon.transition(Transition.TRANSITION_DEACTIVATE) and driver.transition(Transition.TRANSITION_DEACTIVATE)
    assert recon.transition(Transition.TRANSITION_CLEANUP) and driver.transition(Transition.TRANSITION_CLEANUP)
    assert recon.state() == driver.state() == State.PRIMARY_STATE_UNCONFIGURED
    assert spin_until(ros_node, lambda: image_sub.get_publisher_count() == 0 == spikes_sub.get_publisher_count(), 30)

    # shutdown: finalized, and the processes exit cleanly.
    assert recon.transition(Transition.TRANSITION_UNCONFIGURED_SHUTDOWN)
    assert driver.transition(Transition.TRANSITION_UNCONFIGURED_SHUTDOWN)
    assert recon_proc.wait(timeout=30) == 0 and driver_proc.wait(timeout=30) == 0, nodes.logs()
    assert "model released" in nodes.logs()


def _own_subscriptions(ros_node, topic: str, ns: str) -> int:
    """Subscriptions of ``/ns/spike_reconstructor`` on ``topic``, as the ROS graph shows them."""
    return sum(1 for info in ros_node.get_subscriptions_info_by_topic(topic)
               if (info.node_namespace, info.node_name) == (f"/{ns}", "spike_reconstructor"))  # fmt: skip


def test_deactivate_destroys_the_subscriptions_and_activate_makes_one_each(nodes, ros_node):
    """An inactive reconstructor receives nothing; active again, it holds one subscription, not two."""
    ns = f"lcsub_{uuid.uuid4().hex[:8]}"
    nodes.start("spike_camera_driver", ns, DRIVER)
    nodes.start("spike_reconstructor_lifecycle", ns, RECON)
    recon = Managed(ros_node, f"/{ns}/spike_reconstructor")
    diag = Diagnostics(ros_node, ns)
    topics = (f"/{ns}/spikes", f"/{ns}/spikes/camera_info")

    def counts() -> list[int]:
        return [_own_subscriptions(ros_node, t, ns) for t in topics]

    assert recon.transition(Transition.TRANSITION_CONFIGURE), nodes.logs()
    assert recon.transition(Transition.TRANSITION_ACTIVATE), nodes.logs()
    assert spin_until(ros_node, lambda: counts() == [1, 1], 30), counts()
    assert diag.wait(lambda v: int(v["images_published"]) >= 2, 60), nodes.logs()

    assert recon.transition(Transition.TRANSITION_DEACTIVATE)
    assert spin_until(ros_node, lambda: counts() == [0, 0], 30), counts()
    first = diag.count
    assert spin_until(ros_node, lambda: diag.count >= first + 2, 30)
    packets = int(diag.values["input_packets"])
    assert spin_until(ros_node, lambda: diag.count >= first + 6, 30)  # 1 s of a 20 packets/s stream
    assert int(diag.values["input_packets"]) == packets, "an inactive reconstructor received packets"

    assert recon.transition(Transition.TRANSITION_ACTIVATE)
    assert spin_until(ros_node, lambda: counts() == [1, 1], 30), counts()
    assert diag.wait(lambda v: int(v["input_packets"]) >= packets + 20, 60), nodes.logs()  # a second of the stream
    assert counts() == [1, 1]
    assert diag.values["input_duplicates"] == "0", diag.values


@pytest.mark.parametrize("configured", [False, True])
def test_lifecycle_shutdown_from_unconfigured_or_active(configured, nodes, ros_node):
    ns = f"lcs_{uuid.uuid4().hex[:8]}"
    proc = nodes.start("spike_reconstructor_lifecycle", ns, RECON)
    recon = Managed(ros_node, f"/{ns}/spike_reconstructor")
    assert recon.state() == State.PRIMARY_STATE_UNCONFIGURED, nodes.logs()
    shutdown = Transition.TRANSITION_UNCONFIGURED_SHUTDOWN
    if configured:
        assert recon.transition(Transition.TRANSITION_CONFIGURE) and recon.transition(Transition.TRANSITION_ACTIVATE)
        shutdown = Transition.TRANSITION_ACTIVE_SHUTDOWN
    assert recon.transition(shutdown), nodes.logs()
    assert proc.wait(timeout=30) == 0, nodes.logs()


def test_lifecycle_configure_refuses_bad_weights(nodes, ros_node, tmp_path):
    ns = f"lcw_{uuid.uuid4().hex[:8]}"
    nodes.start("spike_reconstructor_lifecycle", ns, {**RECON, "method": "stir", "weights": str(tmp_path / "none.pt")})
    recon = Managed(ros_node, f"/{ns}/spike_reconstructor")
    assert not recon.transition(Transition.TRANSITION_CONFIGURE)
    assert recon.state() == State.PRIMARY_STATE_UNCONFIGURED
    assert spin_until(ros_node, lambda: "does not exist" in nodes.logs(), 30), nodes.logs()


def test_graph_lifecycle_argument_picks_the_managed_executables():
    from stir_ros.core.errors import ConfigError
    from stir_ros.ros.graph import EXECUTABLE_MODULES, LAUNCH_ARGUMENTS, MODE_ARGUMENTS, build_graph

    for mode, extra in (("pipeline", {}), ("reconstruct", {}), ("replay", {"bag": "b"})):
        assert "lifecycle" in MODE_ARGUMENTS[mode] and "lazy" in MODE_ARGUMENTS[mode]
        plain = build_graph(mode, None, extra)
        managed = build_graph(mode, None, {**extra, "lifecycle": "true", "lazy": "true"})
        assert [n.executable for n in managed.nodes] == [f"{n.executable}_lifecycle" for n in plain.nodes]
        assert [n.name for n in managed.nodes] == [n.name for n in plain.nodes]  # same names: same params
        assert managed.node("spike_reconstructor").parameters["lazy"] is True
        assert all(n.executable in EXECUTABLE_MODULES for n in managed.nodes)
    assert "lifecycle" in LAUNCH_ARGUMENTS
    with pytest.raises(ConfigError, match="lifecycle"):
        build_graph("pipeline", None, {"lifecycle": "maybe"})
