# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Hot and dead pixels: estimated from the spike stream itself, and repaired before any method sees a window.

- :func:`estimate_defects` turns per-pixel spike counts over ``frames`` frames into a
  :class:`DefectMap`. **Hot**: fires at a rate light cannot produce (``rate >= hot_rate``; light
  at intensity 1 gives ``alpha``, about 0.6 spikes per frame), or ``hot_margin`` spikes per frame
  above the second-highest of its 8 neighbours (a thin bright line has two bright neighbours, an
  isolated hot pixel none); but not three or more such fast pixels touching, which is a light
  bright enough to saturate (a lamp), not a defect. **Dead**: at most ``1/dead_ratio`` of the second-lowest of its 8
  neighbours, while that neighbour fired at least ``dead_min_count`` times; or, for a clump of two
  or three dead pixels side by side (whose second-lowest neighbour is dead too), the same against
  the second-lowest of the 16 pixels two away, which a thin dark line (two of them dark) fails.
  Neighbours off the frame do not count. Before the clump rule, a pixel with two dead neighbours
  was missed, and each one missed cost up to 1.4 dB on a clean validation clip.
- :class:`DefectTracker` samples the stream on the sensor clock (the frames ``f`` with
  ``f % sample_period_frames < SAMPLE_FRAMES``, whatever the packets), counts their spikes
  straight from the bit-packed payload and re-estimates the map every ``update_frames``
  sampled frames. Live and offline see the same frames, hence the same maps at the same packets.
- The map in force is immutable; each window carries the one in force when it was cut.

ROS-free: no rclpy here.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np

from stir_ros.core.classical import spike_counts_packed
from stir_ros.core.errors import ConfigError, check_choice
from stir_ros.core.packet import PacketHeader
from stir_ros.core.packing import ENCODING_VIDAR_BITPACKED
from stir_ros.core.pixel_repair import PixelRepair

__all__ = [
    "DEFECT_CORRECTIONS", "SAMPLE_FRAMES", "DefectMap", "DefectTracker", "estimate_defects", "neighbour_ranks",
    "HOT_WARN_FRACTION", "DEAD_WARN_FRACTION", "DARK_RATE_WARN_HZ", "DEAD_MIN_COUNT", "payload_counts",
    "FRAME_RATE_TOLERANCE",
]  # fmt: skip

#: ``defect_correction`` values: estimate online (plus a file's map), only a file's map, none
#: (not "off": ROS parses ``-p defect_correction:=off`` as a boolean).
DEFECT_CORRECTIONS = ("auto", "file", "none")
#: Consecutive frames counted per sampling period.
SAMPLE_FRAMES = 20
#: /diagnostics go to WARN above these (fractions of the pixels; dark-current rate in Hz).
HOT_WARN_FRACTION = 0.001
DEAD_WARN_FRACTION = 0.005
DARK_RATE_WARN_HZ = 20.0
#: Spikes the second-darkest neighbour must have fired before a pixel can be judged dead.
DEAD_MIN_COUNT = 10
#: Percentile of the good pixels' rates reported as the dark-current rate (an upper bound from a scene).
DARK_PERCENTILE = 0.1
#: A file's map and the stream differ in frame rate when they differ by more than this fraction
#: (the dark rates it holds would be off by as much: less is no matter, a camera's rate may wobble).
FRAME_RATE_TOLERANCE = 0.01


#: The offsets of the 8 neighbours (ring 1) and of the 16 pixels two away (ring 2).
_RINGS = {r: tuple((dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1) if max(abs(dy), abs(dx)) == r)
          for r in (1, 2)}  # fmt: skip


def neighbour_ranks(
    values: np.ndarray, missing: np.ndarray | None = None, at: tuple[np.ndarray, np.ndarray] | None = None,
    ring: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Second-lowest and second-highest of the 8 neighbours of every pixel (or of the pixels ``at``).

    ``ring`` 2: of the 16 pixels two away instead.

    Neighbours off the frame and those ``missing`` (bool ``[H, W]``) do not count: a pixel with
    fewer than two that count gets ``inf`` (lowest) and ``-inf`` (highest), which no rule flags.
    ``at``: ``(ys, xs)`` of the pixels wanted (results ``[n]``); all pixels by default (``[H, W]``).
    """
    h, w = values.shape
    offsets = _RINGS[ring]
    values = np.asarray(values, np.float32)  # exact for counts below 2**24
    low_src = values if missing is None else np.where(missing, np.float32(np.inf), values)
    high_src = values if missing is None else np.where(missing, np.float32(-np.inf), values)
    if at is None:  # the whole frame: shifted views of the padded frame
        lo, hi = np.pad(low_src, ring, constant_values=np.inf), np.pad(high_src, ring, constant_values=-np.inf)
        lows = np.stack([lo[ring + dy : ring + dy + h, ring + dx : ring + dx + w] for dy, dx in offsets])
        highs = np.stack([hi[ring + dy : ring + dy + h, ring + dx : ring + dx + w] for dy, dx in offsets])
    else:  # a few pixels: gathers
        ys, xs = at
        lows = np.empty((len(offsets), len(ys)), np.float32)
        highs = np.empty_like(lows)
        for k, (dy, dx) in enumerate(offsets):
            y, x = ys + dy, xs + dx
            ok = (y >= 0) & (y < h) & (x >= 0) & (x < w)
            y, x = np.where(ok, y, 0), np.where(ok, x, 0)
            lows[k], highs[k] = np.where(ok, low_src[y, x], np.inf), np.where(ok, high_src[y, x], -np.inf)
    return np.partition(lows, 1, axis=0)[1], np.partition(highs, -2, axis=0)[-2]


@dataclass(frozen=True, eq=False)
class DefectMap:
    """Hot and dead pixels of one sensor, and how to repair them (immutable).

    Attributes:
        hot: bool ``[H, W]``.
        dead: bool ``[H, W]``.
        frames: Frames the map was estimated from (0: from a file only).
        dark_rate_hz: Dark-current rate: per pixel from a lens-cap calibration, else ``None``.
        dark_estimate_hz: A low percentile of the good pixels' rates in Hz (an upper bound of the
            dark-current rate from a scene; exact from a lens-cap calibration); NaN if unknown.
        frame_rate_hz: The frame rate the counts were taken at, which turned them into the rates
            per second above (0: unknown).
    """

    hot: np.ndarray = field(repr=False)
    dead: np.ndarray = field(repr=False)
    frames: int = 0
    dark_rate_hz: np.ndarray | None = field(default=None, repr=False)
    dark_estimate_hz: float = float("nan")
    frame_rate_hz: float = 0.0

    def __post_init__(self) -> None:
        for a in (self.hot, self.dead, self.dark_rate_hz):
            if a is not None:
                a.setflags(write=False)
        object.__setattr__(self, "repair", PixelRepair.from_mask(self.hot | self.dead))

    repair: PixelRepair = field(init=False, repr=False)

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.hot.shape[0]), int(self.hot.shape[1]))

    @property
    def hot_count(self) -> int:
        return int(self.hot.sum())

    @property
    def dead_count(self) -> int:
        return int(self.dead.sum())

    def union(self, other: DefectMap | None) -> DefectMap:
        """The pixels defective in either map (``other`` of another size is ignored)."""
        if other is None or other.shape != self.shape:
            return self
        # A lens-cap calibration's dark rates are measured; a scene's are an upper bound.
        dark = other if other.dark_rate_hz is not None and self.dark_rate_hz is None else self
        return DefectMap(self.hot | other.hot, self.dead | other.dead, max(self.frames, other.frames),
                         dark.dark_rate_hz, dark.dark_estimate_hz, dark.frame_rate_hz)


def estimate_defects(
    counts: np.ndarray, frames: int, *, hot_rate: float = 0.9, hot_margin: float = 0.3, dead_ratio: float = 20.0,
    dead_min_count: int = DEAD_MIN_COUNT, frame_rate_hz: float = 0.0, dark: bool = False,
) -> DefectMap:
    """The defect map of per-pixel spike ``counts`` ``[H, W]`` over ``frames`` frames (rules: module docstring).

    ``dark``: the frames were recorded with the lens covered; every pixel's rate is then its
    dark-current rate (stored in the map, Hz with ``frame_rate_hz``).
    """
    if frames <= 0:
        raise ConfigError(f"a defect map needs counted frames, got {frames}")
    counts = np.asarray(counts, np.float64)
    rate = counts / frames
    fast = rate >= hot_rate
    # A light bright enough to saturate fires as fast, but over three or more pixels side by side (a lamp,
    # a lit wire); hot pixels are alone or, rarely, two together. Taken for hot, a lamp was "repaired"
    # from the darker pixels around it.
    light = _in_clumps_of_three(fast)
    hot = fast & ~light
    low2, high2 = neighbour_ranks(counts, hot)
    hot |= (counts - high2 >= hot_margin * frames) & np.isfinite(high2) & ~light
    dead = (counts * dead_ratio <= low2) & (low2 >= dead_min_count) & np.isfinite(low2) & ~hot
    # A clump: dark, with a bright neighbour, but with two or three dark ones (two or three dead pixels
    # side by side); its pixels two away are bright, where a thin dark line's are not.
    ys, xs = np.nonzero((counts * dead_ratio <= high2) & ~(hot | dead))
    at = (ys, xs)
    far2, _ = neighbour_ranks(counts, None, at, ring=2)
    dead[at] |= (counts[at] * dead_ratio <= far2) & (far2 >= dead_min_count) & np.isfinite(far2)
    good = rate[~(hot | dead)]
    dark_hz = float("nan")
    if frame_rate_hz > 0 and good.size:
        dark_hz = float(np.percentile(good, 50.0 if dark else DARK_PERCENTILE) * frame_rate_hz)
    per_pixel = (rate * frame_rate_hz).astype(np.float32) if dark and frame_rate_hz > 0 else None
    return DefectMap(hot, dead, int(frames), per_pixel, dark_hz, max(float(frame_rate_hz), 0.0))


def _in_clumps_of_three(mask: np.ndarray) -> np.ndarray:
    """The ``True`` pixels of ``mask`` in groups of three or more touching (8-connected) ones.

    A pixel is in such a group when it touches two, or touches one that touches two.
    """
    def touching(m: np.ndarray) -> np.ndarray:  # how many of the 8 neighbours are set
        h, w = m.shape
        padded = np.pad(m.astype(np.uint8), 1)
        out = np.zeros((h, w), np.uint8)
        for dy, dx in _RINGS[1]:
            out += padded[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
        return out

    branch = mask & (touching(mask) >= 2)
    return branch | (mask & (touching(branch) >= 1))


def payload_counts(raw: np.ndarray, height: int, width: int, encoding: str, a: int, b: int) -> np.ndarray:
    """Spikes per pixel of frames ``[a, b)`` of a validated payload."""
    if encoding == ENCODING_VIDAR_BITPACKED:
        fb = (height * width + 7) // 8
        return spike_counts_packed([raw[a * fb : b * fb].reshape(b - a, fb)], height, width)
    hw = height * width
    return raw[a * hw : b * hw].reshape(b - a, height, width).sum(axis=0, dtype=np.uint32)


class DefectTracker:
    """The defect map of one stream: a file's, estimated from the stream, or both (``mode``).

    Args:
        mode: ``auto`` (estimate; with ``file_map`` the union of both), ``file`` (``file_map`` only)
            or ``none``.
        file_map: A map read from a file (:mod:`stir_ros.core.defect_file`), or ``None``.
        sample_period_frames: Sensor-clock period of the sampling (``SAMPLE_FRAMES`` counted per period).
        hot_rate: Spikes per frame above which a pixel is hot (unless three or more such pixels touch).
        update_frames: Sampled frames between re-estimates (the first map after as many).
        max_frames: When more sampled frames are held, the counts are halved (a slow forgetting).
    """

    def __init__(self, mode: str = "auto", file_map: DefectMap | None = None, *, sample_period_frames: int = 2000,
                 hot_rate: float = 0.9, update_frames: int = 1000, max_frames: int = 20000) -> None:
        check_choice("defect_correction", mode, DEFECT_CORRECTIONS)
        if mode == "file" and file_map is None:
            raise ConfigError("defect_correction 'file' needs a defect map file (defect_map_url)")
        if sample_period_frames < SAMPLE_FRAMES:
            raise ConfigError(f"defect_sample_period_frames must be >= {SAMPLE_FRAMES}, got {sample_period_frames}")
        self.mode, self.file_map = mode, file_map
        self.period, self.hot_rate = int(sample_period_frames), float(hot_rate)
        self.update_frames, self.max_frames = int(update_frames), int(max_frames)
        self.updates = 0  # maps estimated
        self.frames_sampled = 0
        self._size: tuple[int, int] | None = None
        self._rate = 0.0  # the stream's frame rate (Hz), from its latest packet
        self._counts: np.ndarray | None = None
        self._held = 0  # frames in _counts
        self._since = 0  # frames sampled since the last estimate
        self.estimated: DefectMap | None = None
        self.current: DefectMap | None = None if mode == "none" else file_map

    @property
    def repair(self) -> PixelRepair | None:
        """The repair in force (``None``: nothing to repair)."""
        m = self.current
        return None if m is None or m.repair.count == 0 else m.repair

    def with_file_map(self, file_map: DefectMap | None) -> DefectTracker:
        """A copy with another file's map (a new ``defect_map_url``): the counts and the estimate go on.

        Raises:
            ConfigError: ``file`` mode without a map.
        """
        if self.mode == "file" and file_map is None:
            raise ConfigError("defect_correction 'file' needs a defect map file (defect_map_url)")
        new = copy.copy(self)
        new._counts = None if self._counts is None else self._counts.copy()
        new.file_map = file_map
        if self.mode != "none":
            fits = file_map if file_map is not None and self._size in (None, file_map.shape) else None
            new.current = self.estimated.union(fits) if self.estimated is not None else fits
        return new

    @property
    def unfit(self) -> str:
        """How the file's map does not fit the stream, with what to do; empty if it fits, or there is none.

        Another frame size: another camera's map, not used. Another frame rate: used, since a hot
        or dead pixel is broken at any rate; its dark rates are per second, as a dark current is,
        so they are not rescaled, but they are right only if the camera ran at the file's rate
        when calibrated, which a ``.dat`` calibrated with another ``--frame-rate-hz`` did not.
        """
        f, size, rate = self.file_map, self._size, self._rate
        if self.mode == "none" or f is None or size is None:
            return ""
        if f.shape != size:
            return (f"defect map file is {f.shape[0]}x{f.shape[1]}, the stream {size[0]}x{size[1]}: not used; "
                    f"calibrate this camera (stir-ros calibrate-defects --height {size[0]} --width {size[1]})")
        if not (f.frame_rate_hz > 0 and rate > 0) or math.isclose(f.frame_rate_hz, rate, rel_tol=FRAME_RATE_TOLERANCE):
            return ""
        return (f"defect map file was calibrated at {f.frame_rate_hz:g} Hz, the stream runs at {rate:g} Hz: its hot and "
                f"dead pixels are used, its dark rates (per second) hold only if {f.frame_rate_hz:g} Hz was the camera's "
                f"rate then; calibrate on a recording at this rate (stir-ros calibrate-defects: a bag's packets carry it, "
                f"a .dat needs --frame-rate-hz {rate:g})")

    def observe(self, raw: np.ndarray, header: PacketHeader) -> None:
        """Count the sampled frames of one accepted packet (its checked payload); re-estimate when enough are held."""
        if self.mode == "none":
            return
        height, width, encoding = header.height, header.width, header.encoding
        first_frame_index, num_frames, frame_rate_hz = header.first_frame_index, header.num_frames, header.frame_rate_hz
        self._rate = float(frame_rate_hz)
        if self._size != (height, width):
            self._size, self._counts, self._held, self._since = (height, width), None, 0, 0
            self.estimated = None
            # A file's map of another size repairs nothing: not in force (``unfit`` says why).
            self.current = self.file_map if self.file_map is not None and self.file_map.shape == (height, width) else None
        if self.mode != "auto":
            return
        start, stop, p = first_frame_index, first_frame_index + num_frames, self.period
        k = start - start % p
        while k < stop:
            a, b = max(start, k), min(stop, k + SAMPLE_FRAMES)
            if a < b:
                c = payload_counts(raw, height, width, encoding, a - start, b - start)
                self._counts = c.astype(np.uint32) if self._counts is None else self._counts + c
                self._held += b - a
                self._since += b - a
                self.frames_sampled += b - a
            k += p
        if self._since >= self.update_frames and self._counts is not None:
            self._estimate(frame_rate_hz)

    def _estimate(self, frame_rate_hz: float) -> None:
        assert self._counts is not None
        est = estimate_defects(self._counts, self._held, hot_rate=self.hot_rate, frame_rate_hz=frame_rate_hz)
        self.estimated, self._since = est, 0
        self.current = est.union(self.file_map)
        self.updates += 1
        if self._held >= self.max_frames:
            self._counts //= 2
            self._held //= 2

    def values(self) -> dict[str, object]:
        """What /diagnostics report of it."""
        m = self.current
        n = m.shape[0] * m.shape[1] if m is not None else 0
        hot, dead = (m.hot_count, m.dead_count) if m is not None else (0, 0)
        return {
            "defect_correction": self.mode,
            "hot_pixels": hot,
            "dead_pixels": dead,
            "hot_fraction": hot / n if n else 0.0,
            "dead_fraction": dead / n if n else 0.0,
            "pixels_repaired": m.repair.count if m is not None else 0,
            "pixels_unrepaired": m.repair.unrepaired if m is not None else 0,
            "dark_rate_hz": m.dark_estimate_hz if m is not None else float("nan"),
            "dark_rate_measured": bool(m is not None and m.dark_rate_hz is not None),
            "defect_frames_sampled": self.frames_sampled,
            "defect_map_updates": self.updates,
            "defect_map_unfit": self.unfit,
        }
