# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Windows of one spike stream: frames in, windows on the sensor-clock grid out (live and offline alike).

:class:`WindowCutter` keeps the recent frames of one stream and cuts windows of ``window_length``
frames that start at frame indices ``k * stride_frames`` (counted from the stream start, the
sensor clock), so the live node and an offline pass over a bag give the same windows and therefore
the same images. Whether a packet belongs to the stream is the
:class:`~stir_ros.core.stream_monitor.StreamMonitor`'s question, and its header
(:class:`~stir_ros.core.packet.PacketHeader`) is checked against its payload in
:mod:`stir_ros.core.packet`.

Frames may be pushed decoded (``[N, H, W]`` uint8) or as a packet payload. Payloads are only
validated on arrival and decoded when a window is materialised (:attr:`Window.frames`), which the
node does in its worker thread: windows dropped from a full queue then cost nothing, and the
thread that receives spikes never unpacks bits. ROS-free.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from stir_ros.core.classical import PackedWindows
from stir_ros.core.errors import ConfigError, SpikeFormatError
from stir_ros.core.packet import PacketHeader, validate_packet
from stir_ros.core.packing import ENCODING_UNPACKED_U8, ENCODING_VIDAR_BITPACKED, unpack_frames
from stir_ros.core.pixel_repair import PixelRepair

__all__ = ["Window", "WindowCutter", "stride_for_rate", "stack_windows", "packed_parts", "packed_windows"]


# --------------------------------------------------------------------------- chunks


class _Chunk:
    """Consecutive frames of one packet, decoded or still encoded, with their clock."""

    __slots__ = ("first", "count", "stamp_ns", "rate_hz", "height", "width", "_frames", "_payload", "_encoding")

    def __init__(
        self,
        first: int,
        count: int,
        stamp_ns: int,
        rate_hz: float,
        height: int,
        width: int,
        frames: np.ndarray | None = None,
        payload: np.ndarray | None = None,
        encoding: str = ENCODING_VIDAR_BITPACKED,
    ) -> None:
        self.first, self.count, self.stamp_ns, self.rate_hz = first, count, stamp_ns, rate_hz
        self.height, self.width = height, width
        self._frames, self._payload, self._encoding = frames, payload, encoding

    @property
    def stop(self) -> int:
        return self.first + self.count

    def stamp_of(self, frame_index: int) -> int:
        """Header-clock time of ``frame_index`` (in this chunk) in nanoseconds."""
        return self.stamp_ns + round((frame_index - self.first) * 1e9 / self.rate_hz)

    def frames(self, start: int, stop: int) -> np.ndarray:
        """Frames ``[start, stop)`` (absolute indices) as uint8 ``[n, H, W]``."""
        a, b = start - self.first, stop - self.first
        if self._frames is not None:
            return self._frames[a:b]
        assert self._payload is not None
        if self._encoding == ENCODING_UNPACKED_U8:
            hw = self.height * self.width
            return self._payload[a * hw : b * hw].reshape(b - a, self.height, self.width)
        fb = (self.height * self.width + 7) // 8  # every packet frame is padded to whole bytes
        return unpack_frames(self._payload[a * fb : b * fb], self.height, self.width, b - a)

    def packed(self, start: int, stop: int) -> np.ndarray | None:
        """Frames ``[start, stop)`` still bit-packed, ``[n, ceil(H * W / 8)]`` (a view, no copy).

        ``None`` when this chunk holds decoded frames or an ``unpacked_u8`` payload.
        """
        if self._payload is None or self._encoding != ENCODING_VIDAR_BITPACKED:
            return None
        a, b = start - self.first, stop - self.first
        fb = (self.height * self.width + 7) // 8
        return self._payload[a * fb : b * fb].reshape(b - a, fb)


@dataclass(frozen=True, eq=False)
class Window:
    """``window_length`` consecutive frames for one reconstruction at the centre frame.

    Attributes:
        first_frame_index: Sensor-clock index of the first frame.
        length: Frames T in the window.
        centre_frame_index: ``first_frame_index + T // 2``, the frame the image shows.
        centre_stamp_ns: Header-clock time of the centre frame: the stamp of the packet holding
            it plus its offset in that packet divided by the frame rate.
        height: Frame height.
        width: Frame width.
        frame_rate_hz: Sensor frame rate.
        repair: The defective pixels repaired in its frames (the map in force when it was cut).
    """

    first_frame_index: int
    length: int
    centre_frame_index: int
    centre_stamp_ns: int
    height: int
    width: int
    frame_rate_hz: float
    _parts: tuple[tuple[_Chunk, int, int], ...] = field(repr=False, default=())
    repair: PixelRepair | None = field(repr=False, default=None)

    @cached_property
    def frames(self) -> np.ndarray:
        """uint8 ``[T, H, W]`` of 0/1, top row first (decoded on first access, defective pixels repaired)."""
        blocks = [chunk.frames(a, b) for chunk, a, b in self._parts]
        if len(blocks) == 1:
            out = np.ascontiguousarray(blocks[0])
            if self.repair is not None and any(np.shares_memory(out, d) for c, _, _ in self._parts
                                               for d in (c._frames, c._payload) if d is not None):
                out = out.copy()  # a view of a packet's frames or payload: never repaired in place
        else:
            out = np.concatenate(blocks, axis=0)
        return out if self.repair is None else self.repair.apply(out)


def packed_parts(window: Window) -> list[np.ndarray] | None:
    """The window's frames as bit-packed views of its packets' payloads, oldest first.

    Each part is ``[n, ceil(H * W / 8)]`` uint8; together they are the window's ``length``
    frames. ``None`` if any part is decoded already or was sent ``unpacked_u8``: then only
    :attr:`Window.frames` has them.
    """
    parts = [chunk.packed(a, b) for chunk, a, b in window._parts]
    if not parts or any(p is None for p in parts):
        return None
    return parts  # type: ignore[return-value]


def packed_windows(windows: Sequence[Window]) -> PackedWindows | None:
    """Equally sized windows as one batch of packed frames, for ``ReconstructionEngine.reconstruct``.

    ``tfp`` on the CPU then counts the spikes of every window from its packets' bits
    (:func:`stir_ros.core.classical.tfp_packed`, the same float32 bits as over the decoded
    window) instead of unpacking ``T x H x W`` bytes per window (BENCHMARKS.md, "Issue 14").
    ``None`` if a window is not bit-packed (:func:`packed_parts`) or the sizes differ; the caller
    then stacks them (:func:`stack_windows`).
    """
    if not windows:
        return None
    first = windows[0]
    all_parts = []
    for w in windows:
        parts = packed_parts(w)
        if parts is None or (w.length, w.height, w.width) != (first.length, first.height, first.width):
            return None
        all_parts.append(parts)
    return PackedWindows(all_parts, first.length, first.height, first.width, [w.repair for w in windows])


def stride_for_rate(frame_rate_hz: float, output_rate_hz: float) -> int:
    """Frames between windows that give about ``output_rate_hz`` images per second (at least 1)."""
    if not (math.isfinite(frame_rate_hz) and frame_rate_hz > 0):
        raise ConfigError(f"frame_rate_hz must be positive, got {frame_rate_hz}")
    if not (math.isfinite(output_rate_hz) and output_rate_hz > 0):
        raise ConfigError(f"output_rate_hz must be positive, got {output_rate_hz}")
    return max(1, round(frame_rate_hz / output_rate_hz))


# --------------------------------------------------------------------------- window cutter


class WindowCutter:
    """Ring buffer of one stream's frames that cuts windows on a fixed frame grid.

    Window ``k`` covers frames ``[k * stride_frames, k * stride_frames + window_length)`` of the
    sensor clock. Frames must arrive in order and contiguous; anything else (a frame-index gap,
    a different size) resets the buffer, and cutting resumes at the next grid point that has a
    full window of frames after the discontinuity.

    Only chunks that a future window still needs are kept, so memory stays bounded by about one
    window plus one packet.
    """

    def __init__(self, window_length: int, stride_frames: int) -> None:
        """Raises ConfigError unless both are positive integers."""
        for name, value in (("window_length", window_length), ("stride_frames", stride_frames)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        self.window_length = int(window_length)
        self.stride_frames = int(stride_frames)
        self.resets = 0  # discontinuities that emptied the buffer (not counting reset())
        self.repair: PixelRepair | None = None  # given to the windows cut from now on
        self.reset()

    def reset(self) -> None:
        """Forget every frame; the next push starts a new segment."""
        self._chunks: deque[_Chunk] = deque()
        self._next_start: int | None = None  # first frame of the next window
        self._expected: int | None = None  # frame index the next push must start at
        self._size: tuple[int, int] | None = None

    @property
    def buffered_frames(self) -> int:
        """Frames currently held."""
        return sum(c.count for c in self._chunks)

    def push(
        self, frames: np.ndarray, first_frame_index: int, first_stamp_ns: int, frame_rate_hz: float
    ) -> list[Window]:
        """Add decoded frames ``[N, H, W]`` and return the windows they complete, oldest first.

        The array is kept by reference (not copied): do not modify it afterwards.
        """
        frames = np.asarray(frames)
        if frames.ndim != 3 or frames.shape[0] == 0:
            raise SpikeFormatError(f"frames must be [N, H, W] with N >= 1, got {frames.shape}")
        n, h, w = frames.shape
        if frames.dtype != np.uint8:
            frames = (frames != 0).astype(np.uint8)
        chunk = _Chunk(int(first_frame_index), n, int(first_stamp_ns), float(frame_rate_hz), h, w, frames=frames)
        return self._add(chunk)

    def push_payload(self, data: Any, header: PacketHeader) -> list[Window]:
        """Add a packet payload without decoding it; windows decode their frames on access.

        The header is validated first (:func:`~stir_ros.core.packet.validate_packet`); the
        payload is kept by reference as a uint8 view.

        Raises:
            PacketError: If the header and payload disagree or are out of range.
        """
        return self.push_checked(validate_packet(data, header), header)

    def push_checked(self, raw: np.ndarray, header: PacketHeader) -> list[Window]:
        """:meth:`push_payload` for a payload that :func:`~stir_ros.core.packet.validate_packet` has already returned.

        The stream processor validates every packet before its monitor sees it; validating again
        here would be a second pass over an ``unpacked_u8`` payload on the hot path.
        """
        h = header
        chunk = _Chunk(
            int(h.first_frame_index), int(h.num_frames), int(h.stamp_ns), float(h.frame_rate_hz),
            int(h.height), int(h.width), payload=raw, encoding=h.encoding,
        )  # fmt: skip
        return self._add(chunk)

    def _add(self, chunk: _Chunk) -> list[Window]:
        if chunk.first < 0:
            raise SpikeFormatError(f"first_frame_index must be >= 0, got {chunk.first}")
        if not (math.isfinite(chunk.rate_hz) and chunk.rate_hz > 0):
            raise SpikeFormatError(f"frame_rate_hz must be positive, got {chunk.rate_hz}")
        size = (chunk.height, chunk.width)
        if self._expected is not None and (chunk.first != self._expected or size != self._size):
            self.resets += 1
            self.reset()
        if self._next_start is None:
            s = self.stride_frames
            self._next_start = -(-chunk.first // s) * s  # first grid point inside the new segment
            self._size = size
        self._chunks.append(chunk)
        self._expected = chunk.stop
        windows = []
        end = chunk.stop
        while self._next_start + self.window_length <= end:
            windows.append(self._cut(self._next_start))
            self._next_start += self.stride_frames
        # Drop chunks that end before the next window starts.
        while self._chunks and self._chunks[0].stop <= self._next_start:
            self._chunks.popleft()
        return windows

    def _cut(self, start: int) -> Window:
        stop = start + self.window_length
        centre = start + self.window_length // 2
        parts = []
        centre_stamp = 0
        for c in self._chunks:
            a, b = max(start, c.first), min(stop, c.stop)
            if a < b:
                parts.append((c, a, b))
            if c.first <= centre < c.stop:
                centre_stamp = c.stamp_of(centre)
        h, w = self._size or (0, 0)
        return Window(
            first_frame_index=start, length=self.window_length, centre_frame_index=centre,
            centre_stamp_ns=centre_stamp, height=h, width=w,
            frame_rate_hz=self._chunks[-1].rate_hz, _parts=tuple(parts), repair=self.repair,
        )  # fmt: skip


def stack_windows(windows: Sequence[Window]) -> np.ndarray:
    """Frames of equally sized windows as one uint8 ``[B, T, H, W]`` array.

    Decodes every part straight into the batch (one copy per frame, no intermediate window
    arrays); a single window held in one chunk comes back without any copy.
    """
    if not windows:
        raise SpikeFormatError("no windows to stack")
    first = windows[0]
    shape = (first.length, first.height, first.width)
    if any((w.length, w.height, w.width) != shape for w in windows):
        raise SpikeFormatError(f"windows to stack differ in size; expected {shape}")
    if len(windows) == 1 and ("frames" in first.__dict__ or len(first._parts) == 1):
        return first.frames[None]
    out = np.empty((len(windows), *shape), np.uint8)
    for i, w in enumerate(windows):
        if "frames" in w.__dict__:  # already decoded
            out[i] = w.frames
            continue
        for chunk, a, b in w._parts:
            out[i, a - w.first_frame_index : b - w.first_frame_index] = chunk.frames(a, b)
        if w.repair is not None:
            w.repair.apply(out[i])
    return out
