# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""PSNR of tfp, tfi and stir on Spike-Zoo clips: clean, with injected hot/dead pixels, and those repaired.

    python bench/bench_defects.py [DATA_DIR] [--hot 0.003] [--dead 0.01] [--seeds 1 2] [--methods tfp tfi stir]

DATA_DIR defaults to Spike-Zoo's base/train clips (never base/test for choosing). Hot pixels fire
every frame, dead ones never; the repair is the one ``stir-ros eval`` and the node use (the map
estimated from each whole clip, each defective pixel given a spike train at its good neighbours' mean rate).
Not a test: it prints a table.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from stir_ros.core.dat import DatReader
from stir_ros.core.defects import estimate_defects
from stir_ros.core.metrics import psnr
from stir_ros.engine import EngineConfig, ReconstructionEngine
from stir_ros.evaluation import find_pairs, load_gt, spikezoo_data


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("data_dir", nargs="?", default=None)
    p.add_argument("--hot", type=float, default=0.003)
    p.add_argument("--dead", type=float, default=0.01)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    p.add_argument("--methods", nargs="+", default=["tfp", "tfi", "stir"])
    args = p.parse_args()
    data = args.data_dir or spikezoo_data("train")
    if data is None:
        print("no DATA_DIR and no spikezoo package", file=sys.stderr)
        return 1
    rows: dict[str, dict[str, list[float]]] = {m: {"clean": [], "faulted": [], "repaired": [], "clean+repair": []}
                                               for m in args.methods}  # fmt: skip
    found = []
    for method in args.methods:
        engine = ReconstructionEngine(EngineConfig(method=method, device="cpu", max_batch=1))
        t = engine.window_length
        for name, dat, png in find_pairs(data):
            gt = load_gt(png)
            h, w = gt.shape
            with DatReader(dat, h, w) as r:
                clean = r.read(0, len(r))
            first = len(clean) // 2 - t // 2

            def score(frames: np.ndarray, repair: bool, first: int = first, gt: np.ndarray = gt, t: int = t,
                      engine: ReconstructionEngine = engine) -> float:
                window = frames[first : first + t].copy()
                if repair:
                    estimate_defects(frames.sum(0, dtype=np.uint32), len(frames)).repair.apply(window)
                return psnr(engine.reconstruct(window[None])[0], gt)

            rows[method]["clean"].append(score(clean, False))
            rows[method]["clean+repair"].append(score(clean, True))
            for seed in args.seeds:
                u = np.random.default_rng(seed).random((h, w))
                hot, dead = u < args.hot, (u >= args.hot) & (u < args.hot + args.dead)
                faulty = clean.copy()
                faulty[:, hot], faulty[:, dead] = 1, 0
                rows[method]["faulted"].append(score(faulty, False))
                rows[method]["repaired"].append(score(faulty, True))
                if method == args.methods[0]:
                    m = estimate_defects(faulty.sum(0, dtype=np.uint32), len(faulty))
                    found.append(f"{name} seed {seed}: hot {m.hot_count}/{int(hot.sum())} "
                                 f"(true {int((m.hot & hot).sum())}), dead {m.dead_count}/{int(dead.sum())} "
                                 f"(true {int((m.dead & dead).sum())})")  # fmt: skip
    print(f"{data}: hot {args.hot:.2%}, dead {args.dead:.2%}, seeds {args.seeds}; mean PSNR (dB)")
    print("| method | clean | clean, repair on | faulted | faulted, repaired |")
    print("|---|---|---|---|---|")
    for method, r in rows.items():
        print(f"| {method} | {np.mean(r['clean']):.2f} | {np.mean(r['clean+repair']):.2f} | "
              f"{np.mean(r['faulted']):.2f} | {np.mean(r['repaired']):.2f} |")
    print("\n".join(found))
    return 0


if __name__ == "__main__":
    sys.exit(main())
