#!/usr/bin/env python3
# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""What STIR's dark routing costs per window: the engine with ``dark_weights: auto`` against ``none``.

    python bench/bench_dark_routing.py [--size 250x400] [--repeat 20] [--sensor realistic] [--device cuda]

Both engines (the node's defaults otherwise: backend and precision ``auto``) reconstruct the same
61-frame window of a simulated moving scene, interleaved, after a warm-up; the script prints the
minimum and median time per window of each, their ratio, and the dark-event count alone
(:func:`stir_ros.core.dark_events.dark_event_rate`). With ``--sensor`` the window holds that sensor's
dark current, so the routed engine runs the dark-robust network. Not a test: a benchmark of this machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="250x400")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--sensor", nargs="*", default=[], help="a sensor model for the window (default: ideal)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N: on a GPU the count stays on the CPU")
    args = parser.parse_args()
    h, w = (int(v) for v in args.size.split("x"))

    from stir_ros.core.dark_events import dark_event_rate
    from stir_ros.core.scenes import MovingScene
    from stir_ros.core.sensor_model import parse_sensor
    from stir_ros.core.simulator import simulate_spikes
    from stir_ros.engine import EngineConfig
    from stir_ros.reconstructor_settings import build_engine

    light = MovingScene(h, w, seed=1).render(0, 61).numpy()
    window = np.asarray(simulate_spikes(light, seed=2, sensor=parse_sensor(args.sensor)), np.uint8)[None]
    engines = {name: build_engine(EngineConfig(precision="auto", backend="auto", device=args.device, dark_weights=name),
                                  lambda message, _summary: None) for name in ("auto", "none")}  # fmt: skip
    times: dict[str, list[float]] = {name: [] for name in (*engines, "count")}
    for engine in engines.values():
        engine.reconstruct(window)  # warm-up: compile, first allocation
    for _ in range(args.repeat):
        for name, engine in engines.items():
            start = time.perf_counter()
            engine.reconstruct(window)  # returns numpy: on CUDA the copy back synchronises
            times[name].append(time.perf_counter() - start)
        start = time.perf_counter()
        rate = float(dark_event_rate(window)[0])
        times["count"].append(time.perf_counter() - start)
    print(f"hardware: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"{h}x{w}, sensor {' '.join(args.sensor) or 'ideal'}; dark events {rate * 1e6:.1f} per million pixel-frames; "
          f"inference path {engines['auto'].backend} {engines['auto'].precision} on {engines['auto'].device_name}")
    for name, ts in times.items():
        print(f"  {name:6s} min {1000 * min(ts):7.1f} ms  median {1000 * float(np.median(ts)):7.1f} ms")
    ratio = float(np.median(times["auto"]) / np.median(times["none"]))
    print(f"dark_weights auto / none (medians): {ratio:.3f}x; windows routed to the dark network: "
          f"{engines['auto'].dark.windows if engines['auto'].dark else 0}")


if __name__ == "__main__":
    main()
