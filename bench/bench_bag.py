# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Offline bag reconstruction throughput at 250x400, beside the bare model in the same run.

Usage: python bench/bench_bag.py [--tfp-frames 3000] [--stir-images 10] [--window-length 61]
                                 [--max-batch 4] [--device auto] [--precision fp32] [--threads N]
                                 [--backend torch|openvino]

For tfp and stir it generates a bag of SpikePackets (250x400, 20 kHz, 100 frames per packet),
runs ``stir-ros bag reconstruct`` on it through the library (:func:`reconstruct_bag`: read,
deserialize, decode, cut, batched inference, encode, write a bag) and prints

- pipeline: spike frames of the bag consumed per second, and images written per second,
- bare model: images per second of ``ReconstructionEngine.reconstruct`` on ready stacked windows,
  same batch size, nothing else (the ceiling for the pipeline),
- ratio = pipeline images/s / bare model images/s (1.0 = the bag I/O costs nothing),
- for stir, the authors' eager STIR (``spikezoo``'s ``networks_STIR``, imported, never copied) on
  the same window count and batch, 256x400 input as it needs, measured in this run.

STIR weights are random (a fresh stir_<T> checkpoint): the cost does not depend on their values.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stir_ros.bag.convert import dat_to_bag  # noqa: E402
from stir_ros.bag.reconstruct import ReconstructOptions, reconstruct_bag  # noqa: E402
from stir_ros.core.dat import write_dat  # noqa: E402
from stir_ros.engine import EngineConfig, ReconstructionEngine  # noqa: E402
from _common import authors_stir_class, cpu_model  # noqa: E402  (bench/ is on sys.path)

H, W = 250, 400
RATE = 20000.0
STRIDE = 20


def make_bag(tmp: Path, name: str, n_frames: int) -> Path:
    """Integrate-and-fire spikes of a smooth random scene, as a sqlite3 bag."""
    rng = np.random.default_rng(0)
    coarse = rng.random((8, 12))
    scene = np.kron(coarse, np.ones((32, 34)))[:H, :W] * 0.9 + 0.05
    acc = rng.random((H, W), dtype=np.float32)
    frames = np.empty((n_frames, H, W), np.uint8)
    for i in range(n_frames):
        acc += np.float32(0.6) * scene.astype(np.float32)
        fired = acc >= 1.0
        acc -= fired
        frames[i] = fired
    write_dat(tmp / f"{name}.dat", frames)
    dat_to_bag(tmp / f"{name}.dat", tmp / name, H, W, RATE, frames_per_packet=100, start_ns=10**18)
    return tmp / name


def stir_checkpoint(tmp: Path, window_length: int) -> Path:
    from stir_ros.models import build_model, save_checkpoint

    torch.manual_seed(0)
    path = tmp / f"random_stir{window_length}.pt"
    save_checkpoint(path, build_model({"type": f"stir_{window_length}"}), {"window_length": window_length},
                    model_config={"type": f"stir_{window_length}"})
    return path


def bare_model(engine: ReconstructionEngine, n_images: int, batch: int) -> float:
    """Images/s of the engine alone on ready windows."""
    rng = np.random.default_rng(1)
    windows = (rng.random((batch, engine.window_length, H, W)) < 0.3).astype(np.uint8)
    done = 0
    t0 = time.perf_counter()
    while done < n_images:
        b = min(batch, n_images - done)
        engine.reconstruct(windows[:b])
        done += b
    if engine.device.type == "cuda":
        torch.cuda.synchronize()
    return n_images / (time.perf_counter() - t0)


def authors_stir(window_length: int, n_images: int, batch: int, device: torch.device) -> float | None:
    """Images/s of the authors' eager STIR (spikezoo), or None when it is not installed."""
    try:
        STIR = authors_stir_class()
    except ImportError:
        return None

    model = STIR(spike_dim=window_length).eval().to(device)
    x = (torch.rand(batch, window_length, 256, W) < 0.3).float().to(device)
    with torch.no_grad():
        model(x[:1])  # warm-up
        done = 0
        t0 = time.perf_counter()
        while done < n_images:
            b = min(batch, n_images - done)
            model(x[:b])
            done += b
        if device.type == "cuda":
            torch.cuda.synchronize()
    return n_images / (time.perf_counter() - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tfp-frames", type=int, default=3000, help="frames in the tfp bag")
    ap.add_argument("--stir-images", type=int, default=8, help="images reconstructed with stir")
    ap.add_argument("--repeat", type=int, default=3, help="tfp runs (best of); stir runs once")
    ap.add_argument("--window-length", type=int, default=61, choices=(41, 61))
    ap.add_argument("--max-batch", type=int, default=4)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="fp32", choices=("fp32", "fp16", "bf16"))
    ap.add_argument("--backend", default="torch", choices=("torch", "openvino"), help="stir backend")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    print(f"CPU: {cpu_model()}, {os.cpu_count()} logical cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} torch threads")
    if torch.cuda.is_available():
        print(f"GPU: {torch.cuda.get_device_name(0)}")
    print(f"input: {H}x{W} spikes at {RATE:g} Hz in packets of 100 frames (sqlite3 bag); stride {STRIDE}, "
          f"batch {args.max_batch}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_bag_") as tmpdir:
        tmp = Path(tmpdir)
        for method in ("tfp", "stir"):
            if method == "tfp":
                cfg = EngineConfig(method="tfp", device=args.device, max_batch=args.max_batch)
                n_frames = args.tfp_frames
            else:
                weights = stir_checkpoint(tmp, args.window_length)
                cfg = EngineConfig(method="stir", window_length=args.window_length, device=args.device,
                                   precision=args.precision, max_batch=args.max_batch, weights=str(weights),
                                   backend=args.backend)
                n_frames = args.window_length + STRIDE * (args.stir_images - 1)
            engine = ReconstructionEngine(cfg)
            engine.warmup(H, W)
            bag = make_bag(tmp, method, n_frames)
            opts = ReconstructOptions(method=method, stride_frames=STRIDE, max_batch=args.max_batch,
                                      window_length=cfg.window_length)
            # Pipeline and bare model alternate, best of each: other load on the machine hits both.
            seconds, bare = float("inf"), 0.0
            for run in range(args.repeat if method == "tfp" else 1):
                out = tmp / f"{method}_out{run}"
                t0 = time.perf_counter()
                result = reconstruct_bag(bag, out, opts, engine=engine)
                seconds = min(seconds, time.perf_counter() - t0)
                bare = max(bare, bare_model(engine, result.images, args.max_batch))
            pipe_images = result.images / seconds
            rows.append((method, engine.device_name, engine.window_length, result.frames, result.images,
                         result.frames / seconds, pipe_images, bare, pipe_images / bare))
            if method == "stir":
                authors = authors_stir(engine.window_length, result.images, args.max_batch, engine.device)
                rows.append(("stir (authors, eager)", engine.device_name, engine.window_length, 0,
                             result.images, None, None, authors, None))

    print()
    print(f"{'method':<22} {'device':<8} {'T':>3} {'frames':>7} {'images':>6} {'pipeline frames/s':>18} "
          f"{'pipeline img/s':>15} {'bare model img/s':>17} {'ratio':>6}")

    def fmt(v: float | None, width: int, digits: int) -> str:
        return f"{'-':>{width}}" if v is None else f"{v:>{width}.{digits}f}"

    for method, device, t, frames, images, fps, pimg, bare, ratio in rows:
        print(f"{method:<22} {device:<8} {t:>3} {frames or '-':>7} {images:>6} {fmt(fps, 18, 1)} "
              f"{fmt(pimg, 15, 2)} {fmt(bare, 17, 2)} {fmt(ratio, 6, 2)}")
    print("\nratio = pipeline images/s / bare model images/s (same engine, same batch, this run). "
          "pipeline frames/s = spike frames of the bag consumed per second.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
