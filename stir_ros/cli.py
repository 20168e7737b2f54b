# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The ``stir-ros`` command line: one entry point, one module per sub-command.

Each sub-command lives in the module that implements it and exposes ``add_arguments(parser)``
and ``run(args) -> int``; this file only wires them up, importing a module when its command runs
so that ``stir-ros --help`` and the ROS-free commands work without rclpy or torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from stir_ros import __version__
from stir_ros.core.errors import StirRosError
from stir_ros.core.optional import torch_missing, torch_required
from stir_ros.core.text_output import printable

__all__ = ["COMMANDS", "build_parser", "main"]

# command -> (module, one-line help); "module:name" takes add_name_arguments / run_name from a
# module that implements several commands.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("stir_ros.demo", "run the driver -> reconstructor pipeline on a built-in stream"),
    "run": ("stir_ros.ros.graph_runner", "start the node graph from a YAML config (rclpy)"),
    "bag": ("stir_ros.bag.cli", "rosbag2 tools: info, reconstruct, from-dat, to-dat, play, record"),
    "train": ("stir_ros.training.train", "train STIR on synthetic spikes"),
    "data": ("stir_ros.training.photos", "fetch and convert the real photographs that training draws scenes from"),
    "eval": ("stir_ros.evaluation", "PSNR/SSIM of tfp, tfi or stir on .dat + ground truth"),
    "export": ("stir_ros.models.export", "export STIR to ONNX (for TensorRT, OpenVINO, ONNX Runtime), checked"),
    "perf": ("stir_ros.ros.stream_tools:perf", "live health of a spike topic: rates, loss, delay, clock drift"),
    "echo": ("stir_ros.ros.stream_tools:echo", "one line per spike packet of a topic (never the payload)"),
    "simulate": ("stir_ros.core.simulate_cli", "write a simulated .dat file"),
    "calibrate-defects": ("stir_ros.bag.calibrate", "a hot/dead pixel map (defect_map_url) from a .dat or bag recording"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Build the argument parser; with ``only`` set, import just that command's module."""
    parser = argparse.ArgumentParser(
        prog="stir-ros", description="Spiking-camera tools of the stir_ros package."
    )
    parser.add_argument("--version", action="version", version=f"stir_ros {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        if only == name:
            module_path, _, suffix = module_name.partition(":")
            module = importlib.import_module(module_path)
            if suffix:
                getattr(module, f"add_{suffix}_arguments")(cmd)
                cmd.set_defaults(_run=getattr(module, f"run_{suffix}"))
            else:
                module.add_arguments(cmd)
                cmd.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``stir-ros``; returns the process exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # `stir-ros run` passes ROS arguments through untouched.
    ros_args: list[str] = []
    if "--ros-args" in argv:
        i = argv.index("--ros-args")
        argv, ros_args = argv[:i], argv[i:]
    command = next((a for a in argv if not a.startswith("-")), None)
    try:
        parser = build_parser(only=command if command in COMMANDS else None)
    except ImportError as err:
        if not torch_missing(err):
            raise
        print(f"stir-ros {command}: error: {torch_required(f'stir-ros {command}')}", file=sys.stderr)
        return 1
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 0 if command is None else 2
    args.ros_args = ros_args
    try:
        return int(args._run(args) or 0)
    except StirRosError as err:
        print(f"stir-ros {command}: error: {printable(err)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
