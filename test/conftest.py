"""Shared pytest fixtures.

ROS tests run real rclpy nodes in several processes over Fast DDS. Each test session picks its
own ROS domain and keeps discovery on this host, so that parallel sessions (and other machines on
the network) never see each other's topics.
"""

from __future__ import annotations

import os
import random
import uuid

import pytest

# Decided once per session, before any test imports rclpy, and inherited by child processes.
os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random(os.getpid()).randint(1, 100)))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
os.environ.setdefault("PYTHONUNBUFFERED", "1")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "ros: needs rclpy and the colcon-built messages")
    config.addinivalue_line("markers", "cuda: needs a CUDA device (skipped without one)")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:  # the ROS-free core can be tested without torch for some modules
        has_cuda = False
    skip_cuda = pytest.mark.skip(reason="no CUDA device on this machine")
    for item in items:
        if "cuda" in item.keywords and not has_cuda:
            item.add_marker(skip_cuda)


@pytest.fixture()
def ros_env() -> dict[str, str]:
    """Environment for child processes that run ROS nodes (same domain as this session)."""
    return dict(os.environ)


@pytest.fixture()
def nodes(tmp_path, ros_env):
    """Node processes started by a test (``ros_support.Nodes``), stopped when it ends."""
    pytest.importorskip("rclpy")
    from ros_support import Nodes

    n = Nodes(tmp_path, ros_env)
    try:
        yield n
    finally:
        n.stop()


@pytest.fixture()
def ros_node():
    """An rclpy node in this test process (subscriptions, publishers, service calls)."""
    rclpy = pytest.importorskip("rclpy")
    rclpy.init()
    node = rclpy.create_node(f"test_{uuid.uuid4().hex[:8]}")
    try:
        yield node
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
