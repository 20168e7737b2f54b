# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The run scaffolding of both nodes: init, make the node, spin until asked to stop, take it down.

``spike_camera_driver`` and ``spike_reconstructor`` (plain and managed) start and stop the same
way; only the executor, the spin period, when the plain node is done and the exit status differ,
and those are what :func:`run_node` takes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import rclpy
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.timer import Timer

from stir_ros.runtime.dds_profile import apply_fastdds_profile
from stir_ros.core.errors import StirRosError, ros_arguments_checked
from stir_ros.runtime.signals import install_stop_handlers

__all__ = ["destroy_entities", "make_executor", "run_node"]


def destroy_entities(node: Any, entities: list[Any]) -> None:
    """Destroy the publishers and timers a node's configure step made."""
    for entity in entities:
        if isinstance(entity, Timer):
            node.destroy_timer(entity)
        else:
            node.destroy_publisher(entity)


def make_executor(kind: str, logger: Any) -> Any:
    """The executor named by ``kind`` (``events`` or ``single_threaded``; falls back to the default with a warning)."""
    if kind == "events":
        try:
            from rclpy.experimental import EventsExecutor
        except ImportError as err:  # rclpy without the C++ events executor (before 7.1 / Jazzy backport)
            logger.warning(f"executor 'events' is not available in this rclpy ({err}); using single_threaded")
        else:
            return EventsExecutor()
    return SingleThreadedExecutor()


def run_node(
    name: str,
    make_node: Callable[[], Any],
    args: list[str] | None,
    *,
    spin_period_s: float,
    executor_kind: Callable[[Any], str] = lambda node: "single_threaded",
    done: Callable[[Any], bool] = lambda node: False,
    exit_status: Callable[[Any], int] = lambda node: 0,
    report_unexpected: bool = True,
) -> int:
    """Run one node until SIGINT/SIGTERM, shutdown (managed) or ``done(node)``; return the exit status.

    Args:
        name: The node's name, for the one line logged when it cannot start.
        make_node: Makes the node (after ``rclpy.init``).
        args: Command-line arguments for ``rclpy.init``.
        spin_period_s: Longest wait of one ``spin_once``.
        executor_kind: The executor to spin the node with (:func:`make_executor`).
        done: Whether the node has finished (the plain driver at the end of its stream).
        exit_status: The status once the loop ends.
        report_unexpected: Anything else raised at start is logged as one fatal line (exit 1);
            ``False``: raised.
    """
    node = None
    executor = None
    initialized = False  # rclpy.init returned: a context shut down after it is a stop, not a failure
    stop = threading.Event()
    restore = install_stop_handlers(stop)  # SIGINT/SIGTERM end the loop below, never raise inside a callback
    try:
        profile = apply_fastdds_profile()  # before rclpy.init creates the participant
        with ros_arguments_checked():  # a malformed --ros-args: one line, as for a bad parameter
            rclpy.init(args=args)
        initialized = True
        node = make_node()
        node.get_logger().info(profile.message)  # under the node's own (namespaced) name
        # An executor of its own: rclpy.spin_once's global one is gone (None) once a signal has
        # shut the context down between the loop's check and the call.
        if not rclpy.ok():  # stopped while the node was made: an executor of a shut-down context cannot be made
            return 0
        executor = make_executor(executor_kind(node), node.get_logger())
        executor.add_node(node)
        # spin_once in a loop: EventsExecutor.spin() of rclpy 7.1.6 busy-waits at 100 % CPU without
        # running callbacks, and does not return on SIGINT/SIGTERM.
        while rclpy.ok() and not stop.is_set() and not done(node):
            executor.spin_once(timeout_sec=spin_period_s)
            finalized = getattr(node, "finalized_at", None)
            if finalized is not None and time.monotonic() - finalized > 1.0:  # shut down: answered, now exit
                break
        return exit_status(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        return 0
    except (StirRosError, ParameterException) as err:  # ParameterException: a value of the wrong type
        rclpy.logging.get_logger(name).error(f"cannot start: {err}")
        return 1
    except Exception as err:  # noqa: BLE001 - anything else at start: one line and a non-zero exit, never silent
        # SIGINT/SIGTERM while starting: the context went away under the constructor or the executor.
        # rclpy's own handler shuts the context down at once; ours may not have run yet.
        if stop.is_set() or (initialized and not rclpy.ok()):
            return 0
        if not report_unexpected:
            raise
        rclpy.logging.get_logger(name).fatal(f"cannot start: {type(err).__name__}: {err}")
        return 1
    finally:
        if node is not None:
            node.stop()  # the worker or publishing thread first: nothing publishes while the node goes
        if executor is not None:
            executor.shutdown()
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
        restore()
