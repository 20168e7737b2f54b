# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Bounded queues between the threads of a pipeline that a failure in any stage stops.

``bag reconstruct`` (:mod:`stir_ros.bag.reconstruct`) runs reader, inference and writer as three
threads joined by bounded queues: a stage waits on a full or empty queue, but gives up with
:class:`Stopped` as soon as its ``stop`` event is set (another stage failed, or Ctrl-C), so that
no thread is left blocked on a queue nobody serves.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

__all__ = ["Stopped", "get", "put"]


class Stopped(Exception):
    """Another stage failed: leave quietly, the failure is reported by the caller."""


def put(q: queue.Queue[Any], item: Any, stop: threading.Event) -> None:
    """Put ``item`` into ``q``, waiting while it is full; :class:`Stopped` once ``stop`` is set."""
    while True:
        if stop.is_set():
            raise Stopped
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


def get(q: queue.Queue[Any], stop: threading.Event) -> Any:
    """The next item of ``q``, waiting while it is empty; :class:`Stopped` once ``stop`` is set."""
    while True:
        if stop.is_set():
            raise Stopped
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            continue
