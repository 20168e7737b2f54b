# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""``stir-ros demo``: spikes in, images out, in one command.

Starts the real pipeline — ``spike_camera_driver`` replaying a spike stream in real time and
``spike_reconstructor`` — as separate processes talking over DDS, subscribes to the images,
writes them as PNG files and prints the rates and latency the reconstructor reports.

The stream is a ``.dat`` file given with ``--dat``, or else a short simulated recording of a
moving synthetic scene, written once to the cache directory and looped.

Method: ``--method auto`` (the default) uses STIR when the shipped weights are installed and a
CUDA device is present, and TFP otherwise (STIR on a CPU reconstructs ~1 frame/s at 250x400).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from stir_ros.core.methods import METHODS
from stir_ros.core.errors import ConfigError, ros_arguments_checked
from stir_ros.core.paths import check_output_apart, make_output_folder

__all__ = ["add_arguments", "run", "demo_stream", "choose_method"]

DEFAULT_OUT = "stir_ros_demo_out"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``stir-ros demo``."""
    parser.add_argument("--method", choices=("auto", *METHODS), default="auto",
                        help="reconstruction (auto: stir with the shipped weights on CUDA, else tfp)")
    parser.add_argument("--weights", default="", help="STIR checkpoint (default: the shipped one)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--dat", default="", help="replay this .dat file instead of the simulated stream")
    parser.add_argument("--size", default="250x400", help="HEIGHTxWIDTH of the stream (default 250x400)")
    parser.add_argument("--frame-rate-hz", type=float, default=20000.0, help="sensor frame rate (default 20000)")
    parser.add_argument("--stride-frames", type=int, default=400, help="frames between images (default 400)")
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"folder for the PNG images (default ./{DEFAULT_OUT}/)")
    parser.add_argument("--images", type=int, default=50, help="stop after this many images (default 50)")
    parser.add_argument("--seconds", type=float, default=60.0, help="stop after this many seconds (default 60)")
    parser.add_argument("--cache-dir", default="", help="where the simulated stream is kept (default ~/.cache/stir_ros)")


def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--size must be HEIGHTxWIDTH, e.g. 250x400, got {text!r}") from None
    if h < 8 or w < 8:
        raise ConfigError(f"--size must be at least 8x8, got {text!r}")
    return h, w


def choose_method(method: str, weights: str = "") -> str:
    """Resolve ``auto``: stir with installed weights on CUDA, else tfp."""
    if method in METHODS:
        return method
    import torch

    from stir_ros.core.weights import default_weights_path

    has_weights = bool(weights) or default_weights_path().is_file()
    return "stir" if has_weights and torch.cuda.is_available() else "tfp"


def demo_stream(cache_dir: Path, height: int, width: int, num_frames: int = 2000, seed: int = 0) -> Path:
    """A simulated ``.dat`` recording of a moving scene, made once and kept in ``cache_dir``."""
    path = cache_dir / f"demo_sim_{height}x{width}_{num_frames}_s{seed}.dat"
    if path.is_file():
        return path
    from stir_ros.core.dat import DatWriter
    from stir_ros.core.sources import SimSource

    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    source = SimSource(height, width, seed=seed, max_speed=0.01)
    with DatWriter(tmp, height, width) as writer:
        for _ in range(0, num_frames, 250):
            block = source.read(min(250, num_frames - source.frames_read))
            if block is None:
                break
            writer.write(block.frames(height, width))
    tmp.replace(path)
    return path


def _cache_dir(arg: str) -> Path:
    if arg:
        return Path(arg)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "stir_ros"


def _write_png(path: Path, img: Any) -> None:
    from PIL import Image as PilImage

    PilImage.fromarray(img).save(path)


def run(args: argparse.Namespace) -> int:
    """Run ``stir-ros demo``."""
    import numpy as np
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import Image

    from stir_ros.ros.conversions import image_msg_to_array
    from stir_ros.ros.graph import DRIVER_NAME, RECONSTRUCTOR_NAME, build_graph, default_config, load_params_file
    from stir_ros.ros.graph_runner import GraphRunner

    height, width = _size(args.size)
    method = choose_method(args.method, args.weights)
    if args.dat:
        dat = Path(args.dat)
    else:
        print(f"stir-ros demo: preparing a simulated {height}x{width} spike stream ...", flush=True)
        dat = demo_stream(_cache_dir(args.cache_dir), height, width)
    out = Path(args.out)
    check_output_apart(out, [dat, args.weights], what="--out folder", folder=True)
    make_output_folder(out, "--out folder")

    params = load_params_file(default_config("pipeline"))
    params.setdefault(DRIVER_NAME, {}).update(wait_for_subscribers=1)
    arguments = {
        "source": "dat", "dat_path": str(dat), "height": height, "width": width, "loop": True,
        "realtime": True, "frame_rate_hz": args.frame_rate_hz, "method": method, "weights": args.weights,
        "device": args.device, "stride_frames": args.stride_frames,
    }  # fmt: skip
    graph = build_graph("pipeline", params, arguments)
    print(f"stir-ros demo: {dat} at {args.frame_rate_hz:g} Hz -> {method} -> {out}/", flush=True)

    ros_args = list(getattr(args, "ros_args", None) or [])
    with ros_arguments_checked():
        rclpy.init(args=["stir-ros", *ros_args])
    runner = GraphRunner(graph, ros_args)
    try:
        node = rclpy.create_node("stir_ros_demo")
        received: list[float] = []
        diag: dict[str, str] = {}

        def on_image(msg: Image) -> None:
            if len(received) >= args.images:
                return
            img = image_msg_to_array(msg)
            _write_png(out / f"image_{len(received):06d}.png", np.rint(img * 255).astype(np.uint8))
            received.append(time.monotonic())

        ns = node.get_namespace().rstrip("/")
        diag_name = f"{ns}/{RECONSTRUCTOR_NAME}: reconstruction"

        def on_diag(msg: DiagnosticArray) -> None:
            for status in msg.status:
                if status.name == diag_name:
                    diag.clear()
                    diag.update({kv.key: kv.value for kv in status.values})

        node.create_subscription(Image, "image", on_image, 50)
        node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)
        runner.start()
        start = time.monotonic()
        while rclpy.ok() and len(received) < args.images and time.monotonic() - start < args.seconds:
            rclpy.spin_once(node, timeout_sec=0.05)
            if any(p.poll() not in (None, 0) for _, p in runner.children):
                print("stir-ros demo: a node failed to start; see its messages above")
                return 1
        # One more diagnostics message, so that the figures cover the images received.
        end = time.monotonic() + 1.5
        while rclpy.ok() and time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.05)
    finally:
        runner.stop()
        rclpy.try_shutdown()
    return _report(received, diag, out)


def _report(received: list[float], diag: dict[str, str], out: Path) -> int:
    n = len(received)
    print(f"stir-ros demo: {n} images written to {out}/")
    if n >= 2:
        print(f"  images received      {(n - 1) / (received[-1] - received[0]):8.1f} /s")
    if diag:
        print(f"  input                {float(diag.get('input_frames_per_s', 0)):8.0f} frames/s "
              f"({diag.get('input_packets', '?')} packets, {diag.get('input_lost_packets', '?')} lost)")
        print(f"  reconstructor output {float(diag.get('output_images_per_s', 0)):8.1f} images/s "
              f"({diag.get('windows_dropped', '?')} windows dropped)")
        print(f"  latency (packet in -> image out) p50 {float(diag.get('latency_ms_p50', 0)):.1f} ms, "
              f"p95 {float(diag.get('latency_ms_p95', 0)):.1f} ms, p99 {float(diag.get('latency_ms_p99', 0)):.1f} ms")
        print(f"  method {diag.get('method')} on {diag.get('device')}, window {diag.get('window_length')} "
              f"frames, stride {diag.get('stride_frames')} frames")
    return 0 if n else 1
