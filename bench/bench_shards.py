# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""``bag reconstruct`` of two recordings on two Ray workers against one worker, side by side (issue 31).

Usage: python bench/bench_shards.py [--frames 4000] [--height 250] [--width 400] [--stride-frames 5]
                                    [--shard-windows 0] [--repeat 2]

It writes two bags of SpikePackets (integrate-and-fire spikes of a smooth random scene, 100
frames per packet) and reconstructs both with tfp through the job of ``stir-ros bag reconstruct
A B OUT`` (:func:`stir_ros.bag.jobs.run_job`), in turns:

- 1 worker: the shards one after the other in this process (what ``--workers 1`` does);
- 2 workers: a local Ray instance of 2 CPUs (``--workers 2``), started once; its start-up and
  the first tasks (each worker imports stir_ros and torch) are timed apart, then the job.

It prints images/s and the workers' CPU seconds (process time, all threads) of each run, the
ratio of the medians (2 workers / 1 worker) with the Ray start-up excluded (what a long job sees)
and included (what this short job's command sees), and the costs for BENCHMARKS.md's scaling
argument: wall and CPU time per window, and the CPU cost of splitting one bag into shards of
``--split-windows``: the planning pass, each extra shard and the merge.
On a machine shared with other jobs the CPU seconds are the steadier figure.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stir_ros.bag.convert import dat_to_bag  # noqa: E402
from stir_ros.bag.jobs import Recording, run_job  # noqa: E402
from stir_ros.bag.ray_runner import LocalRunner, RayRunner, Runner  # noqa: E402
from stir_ros.bag.reconstruct import ReconstructOptions, reconstruct_bag  # noqa: E402
from stir_ros.bag.shards import ShardTask, merge_shards, plan_recording, run_shard, shard_path  # noqa: E402
from stir_ros.core.dat import DatWriter  # noqa: E402
from _common import cpu_model  # noqa: E402  (bench/ is on sys.path)


def make_bag(folder: Path, name: str, frames: int, height: int, width: int, seed: int) -> Path:
    """Integrate-and-fire spikes of a smooth random scene, as a sqlite3 bag of 100-frame packets."""
    rng = np.random.default_rng(seed)
    scene = np.kron(rng.random((height // 10 + 1, width // 10 + 1)), np.ones((10, 10)))[:height, :width] * 0.6
    acc = rng.random((height, width))
    dat = folder / f"{name}.dat"
    with DatWriter(dat, height, width) as out:
        for start in range(0, frames, 500):
            n = min(500, frames - start)
            block = np.empty((n, height, width), np.uint8)
            for i in range(n):
                acc += scene
                block[i] = acc >= 1.0
                acc -= block[i]
            out.write(block)
    dat_to_bag(dat, folder / name, height, width, 20000.0, frames_per_packet=100)
    os.remove(dat)
    return folder / name


def timed_job(bags: list[Path], out: Path, opts: ReconstructOptions, runner: Runner, shard_windows: int) -> tuple[
        float, int, float]:  # fmt: skip
    """Seconds, images and the workers' CPU seconds of one job over ``bags`` into a fresh ``out``."""
    shutil.rmtree(out, ignore_errors=True)
    for leftover in out.parent.glob(f"{out.name}*"):
        shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink()
    jobs = [Recording(str(b), str(out / b.name)) for b in bags]
    t0 = time.perf_counter()
    summary = run_job(jobs, opts, runner, shard_windows=shard_windows, progress=False, on_note=lambda _: None)
    seconds = time.perf_counter() - t0
    if summary.failures:
        raise SystemExit(f"the job failed: {summary.failures}")
    timed_job.shape = (len(summary.worker_processes), summary.shard_seconds / seconds)  # type: ignore[attr-defined]
    return seconds, summary.images, summary.cpu_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=4000, help="frames per bag (default 4000)")
    parser.add_argument("--height", type=int, default=250)
    parser.add_argument("--width", type=int, default=400)
    parser.add_argument("--stride-frames", type=int, default=5, help="default 5: 8 windows share each frame")
    parser.add_argument("--shard-windows", type=int, default=0, help="0 (default): one shard per bag")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--split-windows", type=int, default=100, help="shard size of the split costs (default 100)")
    args = parser.parse_args()
    opts = ReconstructOptions(method="tfp", stride_frames=args.stride_frames, device="cpu")
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} at the start")
    with tempfile.TemporaryDirectory(prefix="bench_shards_") as tmp:
        folder = Path(tmp)
        bags = [make_bag(folder, f"rec{i}", args.frames, args.height, args.width, seed=i) for i in range(2)]
        mb = sum(f.stat().st_size for b in bags for f in b.iterdir()) / 1e6
        print(f"two bags of {args.frames} frames of {args.height}x{args.width} ({mb:.0f} MB), tfp, stride "
              f"{args.stride_frames}, shard_windows {args.shard_windows}")
        t0 = time.perf_counter()
        ray = RayRunner(2)
        started = time.perf_counter() - t0
        warm_bags = [make_bag(folder, f"warm{i}", 200, 32, 48, seed=9) for i in range(2)]
        t0 = time.perf_counter()
        timed_job(warm_bags, folder / "warm_out", opts, ray, 0)
        warm = time.perf_counter() - t0
        print(f"Ray: local instance of {ray.workers} CPUs started in {started:.1f} s, first tasks {warm:.1f} s")
        runs: dict[str, list[float]] = {"1 worker": [], "2 workers": []}
        cpu: dict[str, list[float]] = {"1 worker": [], "2 workers": []}
        images = 0
        try:
            for r in range(args.repeat):
                for label, runner in (("1 worker", LocalRunner()), ("2 workers", ray)):
                    seconds, images, cpu_s = timed_job(bags, folder / "out", opts, runner, args.shard_windows)
                    runs[label].append(seconds)
                    cpu[label].append(cpu_s)
                    print(f"  run {r + 1} {label:9s}: {images} images in {seconds:6.2f} s = "
                          f"{images / seconds:7.1f} images/s, workers' CPU {cpu_s:.2f} s = {cpu_s / seconds:.2f} "
                          f"cores, {timed_job.shape[0]} worker process(es), {timed_job.shape[1]:.2f} shards at once "  # type: ignore[attr-defined]
                          f"(load {os.getloadavg()[0]:.1f})")
        finally:
            ray.close()
        one, two = (statistics.median(runs[k]) for k in ("1 worker", "2 workers"))
        print(f"median: 1 worker {images / one:.1f} images/s, 2 workers {images / two:.1f} images/s")
        print(f"ratio 2 workers / 1 worker: {one / two:.2f}x (Ray already started); "
              f"{one / (two + started + warm):.2f}x with this job paying the Ray start-up ({started + warm:.1f} s)")
        cpu_one, cpu_two = (statistics.median(cpu[k]) for k in ("1 worker", "2 workers"))
        print(f"per window, 1 worker: {one / images * 1e3:.2f} ms of wall time, {cpu_one / images * 1e3:.2f} ms of "
              f"CPU; 2 workers: {cpu_two / images * 1e3:.2f} ms of CPU ({cpu_two / cpu_one:.2f}x the work of one)")
        split_costs(bags[0], folder, opts, args.split_windows)


def split_costs(bag: Path, folder: Path, opts: ReconstructOptions, shard_windows: int) -> None:
    """CPU seconds of this process for one bag as one shard, and split: plan, shards, merge."""
    cpu0 = time.process_time()
    whole = reconstruct_bag(bag, folder / "whole", opts)
    cpu_whole = time.process_time() - cpu0
    cpu0 = time.process_time()
    plan = plan_recording(str(bag), opts, shard_windows)
    cpu_plan = time.process_time() - cpu0
    out = str(folder / "split")
    os.makedirs(f"{out}.shards")
    paths = [shard_path(out, i) for i in range(len(plan.spans))]
    cpu0 = time.process_time()
    for i, (span, path) in enumerate(zip(plan.spans, paths)):
        done = run_shard(ShardTask(0, i, str(bag), path, opts, span))
        assert not done.error, done.error
    cpu_shards = time.process_time() - cpu0
    cpu0 = time.process_time()
    merge_shards(out, paths, opts, "sqlite3", {})
    cpu_merge = time.process_time() - cpu0
    n, k = whole.images, len(plan.spans)
    print(f"one bag ({n} windows), CPU seconds of this process: as one shard {cpu_whole:.2f} s "
          f"({cpu_whole / n * 1e3:.2f} ms per window); in {k} shards of {shard_windows}: plan {cpu_plan:.2f} s "
          f"({cpu_plan / n * 1e3:.3f} ms per window), shards {cpu_shards:.2f} s "
          f"({(cpu_shards - cpu_whole) / (k - 1) * 1e3:+.0f} ms per extra shard), merge {cpu_merge:.2f} s "
          f"({cpu_merge / n * 1e3:.3f} ms per window)")

if __name__ == "__main__":
    main()
