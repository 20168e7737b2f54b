# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""How a node process ends when it is stopped while it starts (stir_ros.ros.node_main)."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("rclpy")

#: A node whose context is shut down while it starts, as rclpy's SIGTERM handler does before ours has
#: run: the executor made next cannot be made (RCLError). Seen once as a traceback and exit 1 from a
#: driver stopped right after it started (test_reliability_shared_files, a fresh clone).
STOPPED_WHILE_STARTING = """
import sys
import rclpy
from rclpy.node import Node
from stir_ros.ros.node_main import run_node

class Quiet(Node):
    def stop(self):
        pass

def make():
    node = Quiet("stopped_while_starting")
    rclpy.shutdown()  # what the signal does to the context
    return node

sys.exit(run_node("stopped_while_starting", make, [], spin_period_s=0.1, report_unexpected=bool(int(sys.argv[1]))))
"""

#: The same failure without a shutdown is a failure: one line, exit 1 (or raised, for the driver).
BROKEN_WHILE_STARTING = """
import sys
from stir_ros.ros.node_main import run_node

def make():
    raise RuntimeError("injected: the node cannot be made")

sys.exit(run_node("broken_while_starting", make, [], spin_period_s=0.1))
"""


@pytest.mark.parametrize("report_unexpected", [0, 1])
def test_a_node_stopped_while_it_starts_exits_cleanly(ros_env, report_unexpected):
    done = subprocess.run([sys.executable, "-c", STOPPED_WHILE_STARTING, str(report_unexpected)], env=ros_env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "cannot start" not in done.stderr, done.stderr


def test_a_node_that_fails_to_start_still_says_so(ros_env):
    done = subprocess.run([sys.executable, "-c", BROKEN_WHILE_STARTING], env=ros_env, capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 1 and "cannot start: RuntimeError: injected" in done.stderr, done.stderr
