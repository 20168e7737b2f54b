# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The three launch files, run by ``launch``'s LaunchService as ``ros2 launch`` runs them.

Each launch file runs in a child process (``LaunchService`` with the file included and its
arguments given, which is what ``ros2 launch stir_ros <file> name:=value`` does), under a
namespace of this test's own, with ``method:=tfp``. The test waits for images from the graph it
started: the simulated driver's (``spike_pipeline``), packets this test publishes
(``reconstruct``), a bag played on its own clock to a subscriber that comes a second late
(``replay``, which waits for it). Then SIGINT stops the launch, which
must stop every process it started.

``launch`` and ``launch_ros`` come with a ROS 2 installation, not with the PyPI set-up; where they
are missing, these tests are skipped (test_graph.py and test_launch_support.py check the launch
files' graph and actions without them).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest


def _launch_missing() -> str | None:
    """Why the real launch and launch_ros cannot be used here, or None."""
    try:
        import launch_ros  # noqa: F401
        from launch import LaunchService  # noqa: F401  (not the checkout's launch/ folder)
    except ImportError as err:
        return (f"launch_ros is not importable ({err}): the launch files need the launch and launch_ros "
                "packages of a ROS 2 installation, which the PyPI set-up does not have")  # fmt: skip
    return None


MISSING = _launch_missing()
pytestmark = [
    pytest.mark.ros,
    pytest.mark.slow,
    pytest.mark.skipif(MISSING is not None, reason=MISSING or ""),
]

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = ROOT / "launch"

#: ``ros2 launch``'s own way of running a file: one LaunchService, the file included with its arguments.
LAUNCHER = """
import sys
from launch import LaunchDescription, LaunchService
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource

path, *pairs = sys.argv[1:]
arguments = [tuple(p.split(":=", 1)) for p in pairs]
service = LaunchService()
service.include_launch_description(LaunchDescription([
    IncludeLaunchDescription(PythonLaunchDescriptionSource(path), launch_arguments=arguments),
]))
sys.exit(service.run())
"""


def _launch(tmp_path: Path, env: dict[str, str], name: str, **arguments: object):
    from ros_support import OutputProcess

    path = LAUNCH / name
    assert path.is_file(), path
    cmd = [sys.executable, "-c", LAUNCHER, str(path), *(f"{k}:={v}" for k, v in arguments.items())]
    # Run from tmp_path: from the checkout, its launch/ folder would stand in for the launch package.
    # Its own process group, which _interrupt signals as a terminal's Ctrl-C does.
    return OutputProcess(cmd, dict(env, PYTHONUNBUFFERED="1", RCUTILS_LOGGING_BUFFERED_STREAM="0"), cwd=tmp_path,
                         start_new_session=True)  # fmt: skip


def _interrupt(launch, timeout: float) -> int:
    """Ctrl-C: SIGINT to the launch and every process it started, then wait for the launch.

    Not SIGINT to the launch alone: launch takes its own SIGINT for a terminal's Ctrl-C, which the
    children got too, so it does not pass it on; they would stop only on its SIGTERM 5 s later.
    """
    if launch.proc.poll() is None:
        os.killpg(launch.proc.pid, signal.SIGINT)
    return launch.finish(timeout=timeout)


def _stop_and_check(launch, ns: str) -> None:
    from ros_support import processes_mentioning

    try:
        _interrupt(launch, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the launch did not stop within 30 s of SIGINT\n{launch.output()}")
    assert processes_mentioning(ns) == [], f"processes left running after the launch stopped\n{launch.output()}"


def _require(launch, ok: bool, what: str) -> None:
    """Fail with ``what`` and the whole launch output (read once the launch has stopped) unless ``ok``."""
    if ok:
        return
    try:
        _interrupt(launch, timeout=30)
    except subprocess.TimeoutExpired:
        what += " (and the launch did not stop within 30 s of SIGINT)"
    pytest.fail(f"{what}\n{launch.output()}")


@pytest.fixture()
def images(ros_node):
    """``images(ns)``: the list that the images published on ``/<ns>/image`` are appended to."""
    from ros_support import RELIABLE
    from sensor_msgs.msg import Image

    def subscribe(ns: str) -> list[Image]:
        received: list[Image] = []
        ros_node.create_subscription(Image, f"/{ns}/image", received.append, RELIABLE)
        return received

    return subscribe


def test_spike_pipeline_launch_gives_images(tmp_path, ros_env, ros_node, images):
    from ros_support import spin_until

    ns = f"launch_pipe_{uuid.uuid4().hex[:8]}"
    received = images(ns)
    launch = _launch(tmp_path, ros_env, "spike_pipeline.launch.py", namespace=ns, method="tfp", source="sim",
                     height=32, width=48, stride_frames=100)  # fmt: skip
    try:
        ok = spin_until(ros_node, lambda: len(received) >= 5 or launch.proc.poll() is not None, 120)
        _require(launch, ok and len(received) >= 5, f"{len(received)} images")
        assert (received[0].height, received[0].width) == (32, 48)
    finally:
        _stop_and_check(launch, ns)


def test_reconstruct_launch_gives_images_of_published_packets(tmp_path, ros_env, ros_node, images):
    from ros_support import RELIABLE, spike_packet, spin_until

    from stir_ros.msg import SpikePacket

    ns = f"launch_rec_{uuid.uuid4().hex[:8]}"
    received = images(ns)
    launch = _launch(tmp_path, ros_env, "reconstruct.launch.py", namespace=ns, method="tfp", stride_frames=20)
    try:
        pub = ros_node.create_publisher(SpikePacket, f"/{ns}/spikes", RELIABLE)
        up = spin_until(ros_node, lambda: pub.get_subscription_count() >= 1 or launch.proc.poll() is not None, 120)
        _require(launch, up and launch.proc.poll() is None, "no reconstructor subscribed")
        spin_until(ros_node, lambda: False, 1.0)
        for seq in range(10):  # frames 0-199: windows of 41 every 20 frames
            pub.publish(spike_packet(seq, 20 * seq))
            spin_until(ros_node, lambda: False, 0.05)
        _require(launch, spin_until(ros_node, lambda: len(received) >= 3, 30), f"{len(received)} images")
    finally:
        _stop_and_check(launch, ns)


def test_replay_launch_gives_every_image_to_a_late_subscriber(tmp_path, ros_env, ros_node, images):
    """With ``wait_for_image_subscribers:=1`` a consumer that comes a second later gets every image."""
    from ros_support import spin_until

    from stir_ros.bag.convert import dat_to_bag
    from stir_ros.bag.reconstruct import ReconstructOptions, reconstruct_bag
    from stir_ros.core.dat import write_dat

    ns = f"launch_replay_{uuid.uuid4().hex[:8]}"
    frames = (np.random.default_rng(2).random((4000, 16, 24)) < 0.3).astype(np.uint8)
    write_dat(tmp_path / "a.dat", frames)
    dat_to_bag(tmp_path / "a.dat", tmp_path / "bag", 16, 24, 2000.0, frames_per_packet=100, topic=f"/{ns}/spikes")
    expected = reconstruct_bag(tmp_path / "bag", tmp_path / "offline",
                               ReconstructOptions(method="tfp", stride_frames=100)).images
    launch = _launch(tmp_path, ros_env, "replay.launch.py", bag=tmp_path / "bag", namespace=ns, method="tfp",
                     stride_frames=100, wait_for_image_subscribers=1)  # fmt: skip
    try:
        up = spin_until(ros_node, lambda: ros_node.count_subscribers(f"/{ns}/spikes") >= 1
                        or launch.proc.poll() is not None, 120)  # fmt: skip
        _require(launch, up and launch.proc.poll() is None, "no reconstructor subscribed")
        spin_until(ros_node, lambda: False, 1.0)  # the consumer comes a second later
        received = images(ns)
        spin_until(ros_node, lambda: len(received) >= expected, 60)
        spin_until(ros_node, lambda: False, 0.5)  # and no more than expected
        _require(launch, len(received) == expected, f"{len(received)} of {expected} images")
    finally:
        _stop_and_check(launch, ns)
