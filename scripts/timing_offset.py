#!/usr/bin/env python3
# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""When, inside the window, does a data set's ground truth lie? Measured with a network.

    python scripts/timing_offset.py [--data DATA_DIR] [--weights W.pt] [--shift 1]

For every clip, the network reconstructs the windows centred on frames ``N // 2 - k`` ..
``N // 2 + k`` and each is scored against the clip's one ground-truth image. With motion, the
score peaks where the window's time matches the ground truth's. A parabola through the three
scores around ``N // 2`` gives the peak to a fraction of a frame: about 0 when the data's
ground truth is at the centre frame (as in this package's simulator, the check ``--synthetic``
runs), about +0.5 when it lies half a frame later.

``--synthetic`` renders each clip's ground truth moving linearly (9 px per 60 frames, the
median motion of the Spike-Zoo ``base/train`` clips), simulates its spikes with the ground truth
exactly at the centre frame, and measures the same peak: the network's own time convention (about
0 for weights trained on the centre frame, about -0.5 for the shipped weights, which show the scene
half a frame later, ``stir-ros train --target-offset 0.5``).
Without ``--data`` the Spike-Zoo ``base/train`` clips are used (installed with the test tools).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def spikezoo_train_split() -> Path:
    from stir_ros.evaluation import spikezoo_data

    data = spikezoo_data("train")
    if data is None:
        sys.exit("timing_offset: spikezoo is not installed; pass --data DATA_DIR")
    return data


def peak(scores: dict[int, float]) -> float:
    """Vertex of the parabola through the scores at -1, 0 and +1."""
    lo, mid, hi = scores[-1], scores[0], scores[1]
    curve = lo - 2 * mid + hi
    return 0.5 * (lo - hi) / curve if curve < 0 else float("nan")


def synthetic_stream(gt: np.ndarray, frames: int, seed: int) -> np.ndarray:
    """Spikes of ``gt`` moving 9 px per 60 frames to the right, ``gt`` exactly at frame ``frames // 2``."""
    import torch

    from stir_ros.core.simulator import simulate_spikes
    from stir_ros.training.video import warp

    img = torch.from_numpy(gt)
    centre = frames // 2
    flow = torch.zeros(frames, *gt.shape, 2)
    flow[..., 0] = (torch.arange(frames, dtype=torch.float32) - centre)[:, None, None] * (9.0 / 60)
    intensity = warp(img, flow, 0, 0).numpy()
    return simulate_spikes(intensity, alpha=0.6, seed=seed)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--data", type=Path, default=None, help="spike/*.dat + gt/*.png folder")
    parser.add_argument("--weights", default=None, help="STIR checkpoint (default: the shipped weights)")
    parser.add_argument("--shift", type=int, default=1, help="windows from -SHIFT to +SHIFT frames")
    parser.add_argument("--synthetic", action="store_true", help="the same on simulated linear motion")
    args = parser.parse_args()
    from stir_ros.core.dat import DatReader
    from stir_ros.core.metrics import psnr
    from stir_ros.engine import EngineConfig, ReconstructionEngine
    from stir_ros.evaluation import find_pairs, load_gt

    data = args.data or spikezoo_train_split()
    engine = ReconstructionEngine(EngineConfig(method="stir", weights=args.weights, device="cpu", max_batch=1))
    half = engine.window_length // 2
    shifts = range(-max(1, args.shift), max(1, args.shift) + 1)
    peaks = []
    for name, dat, png in find_pairs(data):
        gt = load_gt(png)
        if args.synthetic:
            stream = synthetic_stream(gt, 2 * half + 2 * len(shifts) + 1, seed=0)
        else:
            with DatReader(dat, gt.shape[0], gt.shape[1]) as reader:
                stream = reader.read(0, len(reader))
        mid = stream.shape[0] // 2
        scores = {k: psnr(engine.reconstruct(stream[None, mid + k - half : mid + k + half + 1])[0], gt) for k in shifts}
        peaks.append(peak(scores))
        row = "  ".join(f"{k:+d}: {v:.2f}" for k, v in scores.items())
        print(f"{name}: PSNR by window centre  {row}  -> peak at {peaks[-1]:+.2f} frame", flush=True)
    print(f"mean peak: {np.nanmean(peaks):+.2f} frame after the centre frame ({'synthetic' if args.synthetic else data})")
    return 0


if __name__ == "__main__":
    from stir_ros.core.errors import StirRosError

    try:
        sys.exit(main())
    except StirRosError as err:  # bad data folder or weights file: one line, no traceback
        sys.exit(f"timing_offset: {err}")
