#!/usr/bin/env python3
# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Write a held-out evaluation set of simulated clips in Spike-Zoo's layout.

``OUT/spike/NAME.dat`` holds ``--frames`` frames of ideal (noiseless) spikes of a moving scene
made from the photographs in ``--images``; ``OUT/gt/NAME.png`` is the scene at the centre frame
``N // 2``, as ``stir-ros eval`` expects. The motion per frame matches the training recipe's
(``--max-displacement`` over a 61-frame window), so a longer clip moves further in all.

Use photographs the weights were not trained on (``stir-ros data`` puts a validation split in
``~/.cache/stir_ros/photos/val``) and a seed of your own; then score it, with the faults added by
``stir-ros eval``::

    python scripts/make_heldout_set.py ~/.cache/stir_ros/photos/val heldout --count 6 --seed 7
    stir-ros eval heldout --method tfp tfi stir --faults --fault-seeds 2 3
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from stir_ros.core.dat import write_dat
from stir_ros.training.data import DataConfig, SyntheticSpikeData, load_training_images


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", help="folder of photographs (not the training ones)")
    parser.add_argument("out", help="folder to write spike/ and gt/ into (must not exist)")
    parser.add_argument("--count", type=int, default=6, help="clips to write (default 6)")
    parser.add_argument("--frames", type=int, default=301, help="frames per clip (default 301, as Spike-Zoo's)")
    parser.add_argument("--size", type=int, default=256, help="square frame size in pixels (default 256)")
    parser.add_argument("--alpha", type=float, default=0.6, help="sensor alpha of every clip (default 0.6)")
    parser.add_argument("--max-displacement", type=float, default=12.0,
                        help="largest layer shift over 61 frames, pixels (default 12, the recipe's)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    out = Path(args.out)
    if out.exists():
        print(f"error: {out} exists; give a new folder", file=sys.stderr)
        return 2
    if args.count < 1 or args.frames < 61 or args.size < 32:
        print("error: --count >= 1, --frames >= 61 and --size >= 32 are needed", file=sys.stderr)
        return 2
    images = load_training_images([args.images], max_size=2 * args.size, skimage=False)
    config = DataConfig(
        window_length=args.frames, crop=args.size, alpha_range=(args.alpha, args.alpha), max_layers=3,
        max_displacement=args.max_displacement * args.frames / 61, max_noise_std=0.0, texture_candidates=4,
    )  # fmt: skip
    data = SyntheticSpikeData(images, config, torch.Generator().manual_seed(args.seed))
    (out / "spike").mkdir(parents=True)
    (out / "gt").mkdir()
    for index in range(args.count):
        spikes, target, alpha = data.sample(1)
        name = f"sim_s{args.seed}_{index:02d}"
        write_dat(out / "spike" / f"{name}.dat", spikes[0].to(torch.uint8).numpy())
        gt = (target[0, 0] / alpha[0]).clamp(0, 1).numpy()
        Image.fromarray(np.round(gt * 255).astype(np.uint8)).save(out / "gt" / f"{name}.png")
        print(f"{name}: {args.frames} frames, {args.size}x{args.size}, spike rate {float(spikes.mean()):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
