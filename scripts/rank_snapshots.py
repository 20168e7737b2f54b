#!/usr/bin/env python3
# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Rank training runs by their snapshots on a Spike-Zoo style evaluation folder.

    python scripts/rank_snapshots.py RUN_DIR [RUN_DIR ...] [--data DATA_DIR] [--last 3] [--sensor FIELD=VALUE ...]

Every ``step_*.pt`` snapshot of each run (EMA weights when the run used ``--ema``) is evaluated
with ``stir-ros eval``'s code (the node's engine, fp32, CPU) and cached in
``RUN_DIR/snapshot_eval.json``. A run's score is the mean PSNR of its last ``--last`` snapshots:
single snapshots scatter by about +-0.5 dB on two clips, too much to rank recipes by.

Without ``--data`` the two REDS-derived clips of Spike-Zoo's ``base/train`` split (installed with
the test tools) are used; they are for evaluation only, never for training. ``--sensor`` scores
the snapshots on the clips with a sensor's dark, hot and dead pixels added (``stir-ros eval
--faults``' faults, seeds 0 and 1), cached under their own key.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def spikezoo_train_split() -> Path:
    from stir_ros.evaluation import spikezoo_data

    data = spikezoo_data("train")
    if data is None:
        sys.exit("rank_snapshots: spikezoo is not installed; pass --data DATA_DIR")
    return data


def evaluate_run(run: Path, data: Path, sensor: list[str] | None = None) -> dict[str, dict[str, float]]:
    from stir_ros.core.sensor_model import SensorModel, parse_sensor
    from stir_ros.core.text_output import json_text
    from stir_ros.evaluation import evaluate_faults

    model = parse_sensor(sensor) if sensor else SensorModel()
    cache_file = run / "snapshot_eval.json"
    cache = json.loads(cache_file.read_text()) if cache_file.is_file() else {}
    key = str(data.resolve()) + ("" if model.is_ideal else f" + {model.describe()}")
    done = cache.setdefault(key, {})
    for snap in sorted(run.glob("step_*.pt")):
        if snap.name in done:
            continue
        faults = evaluate_faults(data, ["stir"], [("", model)], seeds=(0, 1), weights=str(snap), device="cpu")
        result = faults["conditions"][0]["methods"]["stir"]
        done[snap.name] = {"psnr": result["psnr"], "ssim": result["ssim"]}
        print(f"{run.name} {snap.name}: {result['psnr']:.3f} dB / {result['ssim']:.4f}", flush=True)
        cache_file.write_text(json_text(cache))
    return done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR")
    parser.add_argument("--data", type=Path, default=None, help="spike/*.dat + gt/*.png folder")
    parser.add_argument("--last", type=int, default=3, help="snapshots averaged into the score")
    parser.add_argument("--sensor", nargs="+", default=None, metavar="FIELD=VALUE",
                        help="score with these faults added (dark_rate_hz, dark_rate_spread, hot_fraction, dead_fraction)")
    args = parser.parse_args()
    data = args.data or spikezoo_train_split()
    if args.last < 1:
        sys.exit(f"rank_snapshots: --last must be >= 1, got {args.last}")
    missing = [str(run) for run in args.runs if not any(run.glob("step_*.pt"))]
    if missing:  # before any evaluation: a typo must not read as a score of 0 dB
        sys.exit(f"rank_snapshots: no step_*.pt snapshots in {', '.join(missing)} (stir-ros train --snapshot-every)")
    for run in args.runs:
        done = evaluate_run(run, data, args.sensor)
        names = sorted(done)
        curve = " ".join(f"{int(n[5:11])}:{done[n]['psnr']:.2f}" for n in names)
        tail = names[-args.last :]
        score = sum(done[n]["psnr"] for n in tail) / len(tail)
        print(f"{run.name}: score {score:.3f} dB (mean of {len(tail)} last snapshot(s)); curve {curve}")
    return 0


if __name__ == "__main__":
    from stir_ros.core.errors import StirRosError

    try:
        sys.exit(main())
    except StirRosError as err:  # bad data folder or weights file: one line, no traceback
        sys.exit(f"rank_snapshots: {err}")
