# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""``stir-ros simulate``: write a simulated ``.dat`` recording (a moving synthetic scene).

For trying the driver, the bag tools and the reconstructor without a camera or a recording::

    stir-ros simulate rec.dat --frames 2000 --height 250 --width 400
    spike_camera_driver --ros-args -p source:=dat -p dat_path:=rec.dat -p wait_for_subscribers:=1
"""

from __future__ import annotations

import argparse
import sys

from stir_ros.core import defaults
from stir_ros.core.errors import ConfigError
from stir_ros.core.sensor_model import SensorModel, parse_sensor

__all__ = ["add_arguments", "run", "write_simulated_dat"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``stir-ros simulate``."""
    parser.add_argument("output", metavar="OUT.dat", help="the .dat file to write")
    parser.add_argument("--frames", type=int, default=2000, help="number of frames (default 2000: 0.1 s at 20 kHz)")
    parser.add_argument("--height", type=int, default=250)
    parser.add_argument("--width", type=int, default=400)
    parser.add_argument("--alpha", type=float, default=defaults.ALPHA, help=f"sensor alpha (default {defaults.ALPHA:g})")
    parser.add_argument("--max-speed", type=float, default=0.02, help="peak scene speed, pixels per frame")
    parser.add_argument("--noise-std", type=float, default=0.0, help="noise of the integrate-and-fire increments")
    parser.add_argument("--sensor", nargs="+", default=["ideal"], metavar="PRESET|FIELD=VALUE",
                        help="the sensor's imperfections: a preset (ideal, realistic) and/or FIELD=VALUE changes "
                             "(dark_rate_hz, dark_rate_spread, gain_spread, threshold_spread, shot_electrons, "
                             "threshold_jitter, hot_fraction, dead_fraction); dark rates at --frame-rate-hz")  # fmt: skip
    parser.add_argument("--frame-rate-hz", type=float, default=defaults.FRAME_RATE_HZ,
                        help="sensor frame rate (sets the scene's time and the dark rate per frame)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)


def write_simulated_dat(path: str, frames: int, height: int, width: int, *, alpha: float = defaults.ALPHA,
                        max_speed: float = 0.02, noise_std: float = 0.0, seed: int = 0,
                        sensor: SensorModel | None = None, frame_rate_hz: float = defaults.FRAME_RATE_HZ) -> int:
    """Write ``frames`` simulated frames to ``path``; returns the number written."""
    if frames < 1:
        raise ConfigError(f"--frames must be >= 1, got {frames}")
    from stir_ros.core.dat import DatWriter
    from stir_ros.core.sources import SimSource

    source = SimSource(height, width, frame_rate_hz, alpha=alpha, seed=seed, max_speed=max_speed,
                       noise_std=noise_std, max_frames=frames, sensor=sensor)  # fmt: skip
    written = 0
    with DatWriter(path, height, width) as writer:
        while written < frames:
            block = source.read(min(250, frames - written))
            if block is None:
                break
            writer.write(block.frames(height, width))
            written += block.num_frames
    return written


def run(args: argparse.Namespace) -> int:
    """Run ``stir-ros simulate``."""
    n = write_simulated_dat(args.output, args.frames, args.height, args.width, alpha=args.alpha,
                            max_speed=args.max_speed, noise_std=args.noise_std, seed=args.seed,
                            sensor=parse_sensor(args.sensor), frame_rate_hz=args.frame_rate_hz)  # fmt: skip
    print(f"wrote {n} frames of {args.height}x{args.width} to '{args.output}' (sensor: "
          f"{parse_sensor(args.sensor).describe()}; read it at --frame-rate-hz {args.frame_rate_hz:g})", file=sys.stderr)
    return 0
