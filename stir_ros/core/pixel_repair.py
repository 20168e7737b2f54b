# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The repair of defective pixels: each takes the spike train of a good neighbour.

A :class:`PixelRepair` is immutable: a window keeps the repair in force when it was cut
(:mod:`stir_ros.core.stream`), however late the worker thread decodes it. Numpy only, no imports
from the rest of the package (the stream and TFP's packed path both use it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["PixelRepair", "donor_pixels", "NEIGHBOUR_ORDER"]

#: Donor search order, by ring: the 4 direct neighbours, the diagonals, then ring 2 and 3.
NEIGHBOUR_ORDER: tuple[tuple[int, int], ...] = tuple(
    sorted(((dy, dx) for dy in range(-3, 4) for dx in range(-3, 4) if (dy, dx) != (0, 0)),
           key=lambda d: (max(abs(d[0]), abs(d[1])), abs(d[0]) + abs(d[1]), d))
)


def donor_pixels(bad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(dst, src)`` flat indices: each bad pixel and the first good pixel of :data:`NEIGHBOUR_ORDER`.

    Deterministic (a fixed order, no randomness). A bad pixel without a good pixel within 3 pixels
    is left out (not repaired).
    """
    h, w = bad.shape
    ys, xs = np.nonzero(bad)
    src = np.full(ys.size, -1, np.int64)
    for dy, dx in NEIGHBOUR_ORDER:
        todo = src < 0
        if not todo.any():
            break
        y, x = ys[todo] + dy, xs[todo] + dx
        ok = (y >= 0) & (y < h) & (x >= 0) & (x < w)
        y, x = np.where(ok, y, 0), np.where(ok, x, 0)
        ok &= ~bad[y, x]
        idx = np.flatnonzero(todo)[ok]
        src[idx] = y[ok] * w + x[ok]
    keep = src >= 0
    return (ys * w + xs)[keep], src[keep]


@dataclass(frozen=True, eq=False)
class PixelRepair:
    """Which pixels to repair (``dst``) from which good pixel (``src``), for frames of ``height x width``.

    Never modified after it is made (a new map makes a new object).
    """

    height: int
    width: int
    dst: np.ndarray = field(repr=False)
    src: np.ndarray = field(repr=False)
    unrepaired: int = 0  # bad pixels without a good pixel near them

    @classmethod
    def from_mask(cls, bad: np.ndarray) -> PixelRepair:
        """The repair of every ``True`` pixel of ``bad`` ``[H, W]``."""
        bad = np.asarray(bad, bool)
        dst, src = donor_pixels(bad)
        dst.setflags(write=False)
        src.setflags(write=False)
        return cls(int(bad.shape[0]), int(bad.shape[1]), dst, src, int(bad.sum()) - int(dst.size))

    @property
    def count(self) -> int:
        """Pixels repaired."""
        return int(self.dst.size)

    def fits(self, height: int, width: int) -> bool:
        """Whether it is a repair for frames of this size."""
        return (self.height, self.width) == (height, width)

    def apply(self, arr: np.ndarray) -> np.ndarray:
        """Repair ``arr`` ``[..., H, W]`` in place (frames, spike counts or a per-pixel image); returns it.

        For a per-pixel method (TFP, TFI) repairing its counts or image equals repairing the frames,
        bit for bit: a donor is never repaired itself.
        """
        if self.dst.size == 0 or not self.fits(arr.shape[-2], arr.shape[-1]):
            return arr
        flat = arr.reshape(*arr.shape[:-2], self.height * self.width)
        if not np.shares_memory(flat, arr):
            raise ValueError("repair needs a contiguous array")
        flat[..., self.dst] = flat[..., self.src]
        return arr
