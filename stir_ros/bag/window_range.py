# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""A contiguous range of a recording's windows: what one shard of ``bag reconstruct`` makes.

A shard starts at a spike packet in the middle of a recording with the state that the whole
run's :class:`~stir_ros.core.stream_processor.StreamProcessor` has just before that packet (its
stream monitor, defect maps and the frames its window cutter still holds: the
``window_length - stride`` frames of overlap) and with the camera_info in force there. From that
state the packets give exactly the windows of the whole run, so a shard's images are the whole
run's images ``first_window ... first_window + windows - 1``, byte for byte (DESIGN.md §2).

:mod:`stir_ros.bag.shards` takes these states from one cheap pass over the recording;
:func:`stir_ros.bag.reconstruct.reconstruct_bag` follows a :class:`WindowRange` when given one.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from stir_ros.bag.reader import BagReader
from stir_ros.bag.types import CAMERA_INFO
from stir_ros.core.stream import Window
from stir_ros.core.stream_processor import StreamProcessor

__all__ = ["WindowRange", "camera_info_topic", "freeze_state"]


def camera_info_topic(bag: BagReader, spike_topic: str) -> str:
    """The camera's CameraInfo topic beside ``spike_topic`` (as the driver publishes it), or ``""``."""
    name = f"{spike_topic}/camera_info"
    info = bag.topics.get(name)
    return name if info is not None and info.msgtype == CAMERA_INFO else ""


def freeze_state(processor: StreamProcessor, camera_info: Any) -> bytes:
    """The stream's state before a packet, as bytes: a copy that later packets do not change."""
    return pickle.dumps((processor, camera_info), protocol=pickle.HIGHEST_PROTOCOL)


@dataclass(frozen=True)
class WindowRange:
    """Windows ``first_window ... first_window + windows - 1`` of a recording (``windows=None``: to its end).

    Attributes:
        first_window: Number of the range's first window in the whole run (0-based).
        windows: Windows in the range; ``None``: every window to the end of the stream.
        first_packet: Number of the spike-topic message (0-based, in reading order, damaged ones
            included) to start at, counted from the first message read: from the recording's
            start, or from ``first_stamp``.
        first_stamp: Recording time of that message, where reading may start (``None``: read
            from the start; the messages before are read and skipped).
        skip_windows: Windows that this packet and the held frames complete before ``first_window``.
        state: :func:`freeze_state` of the stream just before ``first_packet``; empty for a range
            that starts with the recording (a fresh stream).
    """

    first_window: int = 0
    windows: int | None = None
    first_packet: int = 0
    skip_windows: int = 0
    state: bytes = b""
    first_stamp: int | None = None

    def cursor(self) -> RangeCursor:
        """A fresh cursor that follows this range through one reading of the recording."""
        return RangeCursor(self)


class RangeCursor:
    """Follows a :class:`WindowRange` while the spike messages are read in order."""

    def __init__(self, span: WindowRange) -> None:
        self.span = span
        self._seen = 0  # spike messages passed
        self._cut = 0  # windows cut since first_packet
        self._taken = 0  # windows handed on

    @property
    def start_ns(self) -> int | None:
        """Where reading starts (``None``: at the recording's start)."""
        return self.span.first_stamp

    def restore(self, fresh: StreamProcessor) -> tuple[StreamProcessor, Any]:
        """The stream processor and camera_info to start with (``fresh`` and none at the recording's start).

        The state was made by this job's own planning pass (never read from a file).
        """
        if not self.span.state:
            return fresh, None
        processor, camera_info = pickle.loads(self.span.state)  # noqa: S301 - made by this job, in memory
        processor.decode = True  # frames decoded once on arrival, as reconstruct_bag does
        return processor, camera_info

    def skip(self, is_spike: bool) -> bool:
        """Whether a message is before the range's first packet (then it is not read)."""
        if self._seen >= self.span.first_packet:
            return False
        self._seen += is_spike
        return True

    def take(self, windows: Sequence[Window]) -> Sequence[Window]:
        """Those of a packet's windows that lie in the range."""
        start = max(0, self.span.skip_windows - self._cut)
        self._cut += len(windows)
        wanted = windows[start:]
        if self.span.windows is not None:
            wanted = wanted[: self.span.windows - self._taken]
        self._taken += len(wanted)
        return wanted

    @property
    def finished(self) -> bool:
        """Every window of a bounded range has been handed on (the rest of the recording is not needed)."""
        return self.span.windows is not None and self._taken >= self.span.windows
