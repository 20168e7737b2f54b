# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""From cut windows to images: the batch path that the live node and ``bag reconstruct`` share.

The node's inference worker (:mod:`stir_ros.runtime.inference_worker`) and the offline
reconstruction (:mod:`stir_ros.bag.reconstruct`) cut the same windows (the stream processor) and
turn them into images with these three steps, so that they give the same images byte for byte:

1. :func:`take_batch`: the windows at the head of a queue that go into one forward pass (one
   window size, at most a limit);
2. :func:`batch_input`: the engine's input for them, the packed bits where the method counts
   spikes from them (TFP on the CPU: no window is unpacked) and the stacked frames otherwise,
   with each window's first frame index (overlapping windows share the network's features);
3. :func:`run_batch`: the engine's images, its warnings handed to a callback.

The live worker does all three on its thread; ``bag reconstruct`` does the first two on its reader
thread (which then lets the windows go) and the third on its inference thread.

ROS-free and torch-free: the engine is anything with the attributes :class:`Engine` names.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from stir_ros.core.methods import method_spec
from stir_ros.core.stream import Window, packed_windows, stack_windows

__all__ = ["BatchInput", "Engine", "batch_input", "counts_packed", "run_batch", "same_size", "take_batch"]

_Item = TypeVar("_Item")


class Engine(Protocol):
    """What the batch path uses of :class:`stir_ros.engine.ReconstructionEngine`."""

    method: str
    window_length: int
    batch_size: int

    @property
    def device(self) -> Any: ...

    def reconstruct(self, windows: Any, starts: Sequence[int] | None = None) -> Any: ...

    def pop_warnings(self) -> list[str]: ...


def same_size(a: Window, b: Window) -> bool:
    """Whether two windows can share a batch (same length, height and width)."""
    return (a.length, a.height, a.width) == (b.length, b.height, b.width)


def take_batch(items: deque[_Item], limit: int, window: Callable[[_Item], Window]) -> list[_Item]:
    """Take from the head of ``items`` the next batch: windows of the first one's size, at most ``limit``.

    ``window(item)`` is an item's window. A size change ends the batch (the next batch starts there).
    """
    batch: list[_Item] = []
    if not items:
        return batch
    first = window(items[0])
    while items and len(batch) < limit and same_size(window(items[0]), first):
        batch.append(items.popleft())
    return batch


@dataclass
class BatchInput:
    """One batch as the engine takes it: ``[B, T, H, W]`` spikes and each window's first frame index."""

    spikes: Any
    starts: list[int]

    def __len__(self) -> int:
        return len(self.starts)


def counts_packed(engine: Engine) -> bool:
    """Whether ``engine`` takes bit-packed windows (its method counts spikes from them, on the CPU)."""
    return method_spec(engine.method).counts_packed and engine.device.type == "cpu"


def batch_input(engine: Engine, windows: Sequence[Window]) -> BatchInput:
    """The engine's input for equally sized ``windows``: packed bits where its method counts them, else frames."""
    spikes: Any = None
    if counts_packed(engine):
        # The spikes are counted from the packed frames: no window is unpacked, the image is the same.
        spikes = packed_windows(windows)  # None where a window is not bit-packed
    if spikes is None:
        spikes = stack_windows(windows)
    return BatchInput(spikes, [int(w.first_frame_index) for w in windows])


def run_batch(engine: Engine, batch: BatchInput, on_warning: Callable[[str], Any]) -> Any:
    """Reconstruct one batch: float32 ``[B, H, W]`` images; each new engine warning goes to ``on_warning``."""
    images = engine.reconstruct(batch.spikes, starts=batch.starts)  # starts: used with feature_reuse only
    for warning in engine.pop_warnings():
        on_warning(warning)
    return images
