# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Throughput of the ROS-free spike core at 250x400, against naive references in the same run.

Usage: python bench/bench_core.py [--frames 2000] [--threads N] [--repeat 3]

Prints the hardware, then frames per second (best of ``--repeat`` runs) for each operation and the
ratio to a straightforward per-frame (or per-pixel) implementation measured here and now.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

# Run from a checkout without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stir_ros.core.classical import tfi, tfp
from stir_ros.core.dat import DatReader, write_dat
from stir_ros.core.packing import (
    _unpack_bits_torch,
    pack_frames,
    pack_frames_torch,
    unpack_frames,
    unpack_frames_torch,
)
from stir_ros.core.scenes import MovingScene
from stir_ros.core.simulator import IntegrateAndFire
from _common import cpu_model  # noqa: E402  (bench/ is on sys.path)

H, W = 250, 400


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def naive_read(path: Path, n: int) -> np.ndarray:
    raw = np.fromfile(path, np.uint8)
    fb = H * W // 8
    return np.stack(
        [np.unpackbits(raw[i * fb : (i + 1) * fb], bitorder="little").reshape(H, W)[::-1] for i in range(n)]
    )


def naive_pack(frames: np.ndarray) -> np.ndarray:
    return np.concatenate([np.packbits(f.reshape(-1), bitorder="little") for f in frames])


def naive_unpack(data: np.ndarray, n: int) -> np.ndarray:
    fb = H * W // 8
    return np.stack(
        [np.unpackbits(data[i * fb : (i + 1) * fb], bitorder="little").reshape(H, W) for i in range(n)]
    )


def naive_simulate(x: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    acc = np.random.default_rng(0).random(x.shape[1:], dtype=np.float32)
    out = np.empty(x.shape, np.uint8)
    for t in range(x.shape[0]):
        acc += alpha * x[t]
        out[t] = acc >= 1.0
        acc -= out[t]
    return out


def naive_tfi(spikes: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    t_len, h, w = spikes.shape
    c = t_len // 2
    out = np.empty((h, w), np.float32)
    for i in range(h):
        for j in range(w):
            times = np.flatnonzero(spikes[:, i, j])
            left = times[times <= c].max(initial=-1)
            right = times[times > c].min(initial=t_len)
            out[i, j] = 1.0 / (alpha * (right - left))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    n, rep = args.frames, args.repeat
    print(f"CPU: {cpu_model()}, {os.cpu_count()} logical cores; load average {os.getloadavg()[0]:.2f}")
    print(f"python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads)")  # fmt: skip
    print(f"{H}x{W}, {n} frames, best of {rep}\n")
    print(f"{'operation':34s} {'frames/s':>12s} {'naive frames/s':>15s} {'ratio':>7s}")

    def row(
        name: str, n_frames: float, t: float, t_naive: float | None = None, n_naive: float | None = None
    ) -> None:
        fps = n_frames / t
        if t_naive is None:
            print(f"{name:34s} {fps:12,.0f} {'':>15s} {'':>7s}")
        else:
            naive_fps = (n_naive or n_frames) / t_naive
            print(f"{name:34s} {fps:12,.0f} {naive_fps:15,.0f} {fps / naive_fps:6.1f}x")

    rng = np.random.default_rng(0)
    frames = (rng.random((n, H, W)) < 0.2).astype(np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.dat"
        write_dat(path, frames)
        with DatReader(path, H, W) as reader:
            t = best(lambda: [None for _ in reader.iter_chunks(400)], rep)
            row("DatReader.read (400-frame chunks)", n, t, best(lambda: naive_read(path, n), 1))
            t = best(lambda: [None for _ in reader.iter_chunks(400, packed=True)], rep)
            t_naive = best(lambda: naive_pack(naive_read(path, n)), 1)
            row("DatReader.read_packed", n, t, t_naive)
    packed = pack_frames(frames)
    row("pack_frames", n, best(lambda: pack_frames(frames), rep), best(lambda: naive_pack(frames), 1))
    row(
        "unpack_frames (numpy)",
        n,
        best(lambda: unpack_frames(packed, H, W), rep),
        best(lambda: naive_unpack(packed, n), 1),
    )
    packed_t = torch.from_numpy(packed)
    row("unpack_frames_torch (cpu)", n, best(lambda: unpack_frames_torch(packed_t, H, W), rep))
    row("  its GPU path (shifts), on cpu", n, best(lambda: _unpack_bits_torch(packed_t, H, W, n), rep))
    frames_t = torch.from_numpy(frames)
    row("pack_frames_torch (cpu)", n, best(lambda: pack_frames_torch(frames_t), rep))

    k = min(n, 400)
    intensity = torch.from_numpy(rng.random((k, H, W), dtype=np.float32))
    sensor = IntegrateAndFire(H, W, seed=0)
    row("IntegrateAndFire.step (cpu)", k, best(lambda: sensor.step(intensity), rep),
        best(lambda: naive_simulate(intensity.numpy()), 1))  # fmt: skip
    scene = MovingScene(H, W, seed=0)
    row("MovingScene.render (stride 16)", k, best(lambda: scene.render(0, k), rep))

    window = frames[:61]
    t = best(lambda: tfp(window), rep)
    print(f"{'tfp, 61-frame window':34s} {61 / t:12,.0f} {'':>15s} {'':>7s}  ({1 / t:,.0f} images/s)")
    crop = window[:, :25, :40]  # the per-pixel loop is too slow for a whole frame: scale it
    t_naive = best(lambda: naive_tfi(crop), 1) * (H * W) / crop[0].size
    t = best(lambda: tfi(window), rep)
    print(f"{'tfi, 61-frame window':34s} {61 / t:12,.0f} {61 / t_naive:15,.0f} {t_naive / t:6.1f}x"
          f"  ({1 / t:,.0f} images/s; naive per-pixel loop, from a 25x40 crop)")  # fmt: skip


if __name__ == "__main__":
    main()
