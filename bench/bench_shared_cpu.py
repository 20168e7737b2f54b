#!/usr/bin/env python3
# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""STIR's time per window when another process takes part of a core: what a small robot computer leaves it.

    python bench/bench_shared_cpu.py [--size 250x400] [--repeat 12] [--loads 0 0.3 0.6] [--threads 2 1]

On a robot the camera driver and the reconstructor's own receive path run beside inference (on this
2-core machine, 250x400 at 20 kHz: the driver about 23 % of a core, the reconstructor's receive
threads about 20 %; ``bench_live.py`` prints both). Here a busy-loop process takes a given share of one
core (``--loads``: busy that fraction of every 10 ms) while the engine (``auto``: OpenVINO bf16 where the
CPU has native bf16, else its exact path; one network, no dark routing) reconstructs one random 61-frame
window again and again. Per thread count and load: median and p75 time per window, and the ratio of the
median to the first load's (the quiet one by default) with as many threads. Not a test: a benchmark of this machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import numpy as np
from _common import cpu_model  # noqa: E402  (bench/ is on sys.path)

#: The load: busy for DUTY of every 10 ms, asleep for the rest.
LOAD = """
import sys, time
duty = float(sys.argv[1])
while True:
    t = time.perf_counter()
    while time.perf_counter() - t < 0.01 * duty:
        pass
    time.sleep(0.01 * (1 - duty))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="250x400")
    parser.add_argument("--repeat", type=int, default=12)
    parser.add_argument("--loads", type=float, nargs="+", default=[0.0, 0.3, 0.6], help="shares of one core taken")
    parser.add_argument("--threads", type=int, nargs="+", default=[2, 1], help="inference threads")
    args = parser.parse_args()
    h, w = (int(v) for v in args.size.split("x"))
    import torch

    from stir_ros.engine import EngineConfig
    from stir_ros.reconstructor_settings import build_engine

    print(f"hardware: {cpu_model()}, {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f} at start", flush=True)
    window = (np.random.default_rng(0).random((1, 61, h, w)) < 0.2).astype(np.uint8)
    for threads in args.threads:
        torch.set_num_threads(threads)
        config = EngineConfig(method="stir", precision="auto", backend="auto", device="cpu", dark_weights="none")
        engine = build_engine(config, lambda message, summary: None)
        engine.warmup(h, w)
        quiet = None
        for load in args.loads:
            busy = subprocess.Popen([sys.executable, "-c", LOAD, str(load)]) if load > 0 else None
            try:
                time.sleep(0.5)
                times = []
                for _ in range(args.repeat):
                    t = time.perf_counter()
                    engine.reconstruct(window)
                    times.append(time.perf_counter() - t)
            finally:
                if busy is not None:
                    busy.kill()
                    busy.wait()
            med, p75 = statistics.median(times), sorted(times)[int(0.75 * (len(times) - 1))]
            quiet = quiet if quiet is not None else med
            print(f"{engine.backend} {engine.precision}, {threads} thread(s), {load:.0%} of a core taken: "
                  f"median {med * 1e3:.0f} ms, p75 {p75 * 1e3:.0f} ms, {med / quiet:.2f}x quiet", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
