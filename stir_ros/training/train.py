# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""``stir-ros train``: train STIR on synthetic spikes, resumable and deterministic.

Recipe (DESIGN.md §5, the authors' offline losses; :mod:`stir_ros.training.recipe`): Adam (0.9,
0.999) with L2 weight decay on every parameter; L1 + multi-scale L1 (:func:`stir_loss`;
``--loss mse`` swaps the full-resolution L1 for a mean squared error scaled to L1's gradient size);
learning rate from the step (:func:`learning_rate`). The network's target is ``alpha * gt`` (the
centre frame's spike rate); see :mod:`stir_ros.training.data`.

A checkpoint (``last.pt``, ``best.pt`` by validation PSNR on a held-out synthetic set) holds the
weights, optimiser state, step and every RNG state, so ``--resume`` continues exactly where the
run stopped: a resumed run gives the same weights as an uninterrupted one.

Under ``torchrun`` the processes train one model with DistributedDataParallel; ``--batch-size``
is then the global batch (:mod:`stir_ros.training.distributed`).
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from stir_ros.core.devices import check_device
from stir_ros.core.errors import ConfigError
from stir_ros.core.paths import check_output_apart, make_output_folder
from stir_ros.models import build_model
from stir_ros.training.data import (
    StepBatches,
    SyntheticSpikeData,
    load_training_images,
    samples_of_step,
    validation_set,
)
from stir_ros.training.data_args import add_data_arguments, data_config, validation_config
from stir_ros.training.distributed import World, finish, global_batchnorm, start, world_from_env
from stir_ros.training.recipe import LOSSES, learning_rate, stir_loss, validate
from stir_ros.training.state import WeightAverage, plain_args, restore, rng_state, save_run, seed_everything

__all__ = ["WeightAverage", "add_arguments", "run", "train", "learning_rate", "stir_loss", "resolve_device"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``stir-ros train``."""
    from stir_ros.core.methods import STIR_WINDOW_LENGTHS

    parser.add_argument("--out", required=True, help="output folder for last.pt, best.pt and snapshots")
    parser.add_argument("--window-length", type=int, default=61, choices=STIR_WINDOW_LENGTHS)
    parser.add_argument("--steps", type=int, default=200_000, help="total optimiser steps (default: authors' 200k)")
    parser.add_argument("--batch-size", type=int, default=8,
                        help="samples per step; under torchrun the global batch, split across the processes")
    parser.add_argument("--crop", type=int, default=96, help="square crop, a multiple of 16")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--warmup", type=int, default=0, help="linear learning-rate warm-up steps")
    parser.add_argument("--weight-decay", type=float, default=4e-4)
    parser.add_argument("--loss", choices=LOSSES, default="l1",
                        help="full-resolution loss term: l1 (the authors') or mse (mean squared error, scaled to "
                             "L1's gradient size: PSNR's own criterion, e.g. for a last fine-tuning phase)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                        help="mixed precision (default: on for CUDA, off on the CPU)")  # fmt: skip
    parser.add_argument("--images", nargs="*", default=[], metavar="DIR", help="extra folders of training images")
    parser.add_argument("--stop-at", type=int, default=0, metavar="STEP",
                        help="stop (and save) at this step without changing the --steps schedule")
    parser.add_argument("--time-limit", type=float, default=0.0, metavar="SECONDS",
                        help="stop (and save) after this much wall time in this run")
    parser.add_argument("--val-crop", type=int, default=128, help="crop of the held-out validation windows")
    parser.add_argument("--resume", metavar="CKPT", help="continue from a checkpoint written by this command")
    parser.add_argument("--init-weights", metavar="CKPT",
                        help="start from these weights (e.g. the shipped stir_default.pt) with a fresh optimiser "
                             "and step 0: fine-tuning when no resumable last.pt is at hand")
    parser.add_argument("--checkpoint-every", type=int, default=100, help="steps between last.pt saves")
    parser.add_argument("--snapshot-every", type=int, default=0, help="steps between kept step_N.pt weight files")
    parser.add_argument("--val-every", type=int, default=100, help="steps between validations (0: never)")
    parser.add_argument("--val-samples", type=int, default=8)
    parser.add_argument("--log-every", type=int, default=10)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: torch's default)")
    add_data_arguments(parser)
    parser.add_argument("--no-skimage", action="store_true",
                        help="train on --images only, without scikit-image's bundled photographs")
    parser.add_argument("--image-max-size", type=int, default=512,
                        help="downscale training images to this longer side (detail density)")
    parser.add_argument("--val-images", nargs="*", default=[], metavar="DIR",
                        help="folders of held-out images for the synthetic validation set (default: the training "
                             "images with another seed)")
    parser.add_argument("--ema", type=float, default=0.0, metavar="DECAY",
                        help="keep an exponential moving average of the weights (e.g. 0.999); validation, "
                             "best.pt and snapshots then use the averaged weights (0: off)")
    parser.add_argument("--data-workers", type=int, default=0, metavar="N",
                        help="make batches ahead in N worker processes (per process under torchrun), step k's "
                             "batch seeded by (seed, k) (0: in the training process, one stream saved with the "
                             "checkpoints). A run resumes only with the same choice of 0 or not 0")
    parser.add_argument("--no-progress", action="store_true", help="plain log lines instead of a tqdm bar")


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when available; a name other than auto, cpu, cuda or cuda:N is a :class:`ConfigError`."""
    check_device(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


# --------------------------------------------------------------------------- training loop


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Run training as configured by the ``stir-ros train`` arguments (one process, or one of torchrun's).

    Returns:
        Summary: ``step``, ``best_val_psnr``, ``last_val_psnr``, ``wall_time_s``, paths, ``rank`` and
        ``interrupted`` (stopped by SIGINT or SIGTERM).
    """
    world = world_from_env()
    try:
        summary = _train(args, world)
    except BaseException:
        finish(world, clean=False)  # also after a refusal: the process group is left
        raise
    finish(world, clean=not summary["interrupted"])  # an interrupted rank's peers may be mid-step
    return summary


def _train(args: argparse.Namespace, world: World) -> dict[str, Any]:
    if args.crop % 16:
        raise ConfigError(f"--crop must be a multiple of 16, got {args.crop}")
    if args.texture_candidates < 1:
        raise ConfigError(f"--texture-candidates must be >= 1, got {args.texture_candidates}")
    if args.image_max_size < 16:
        raise ConfigError(f"--image-max-size must be >= 16 pixels, got {args.image_max_size}")
    workers = int(getattr(args, "data_workers", 0) or 0)
    if workers < 0:
        raise ConfigError(f"--data-workers must be >= 0, got {workers}")
    if args.no_skimage and not args.images:
        raise ConfigError("--no-skimage needs --images DIR (there would be nothing to train on)")
    data_cfg = data_config(args, args.crop)  # every data option is checked before anything is written
    first, count = world.share(args.batch_size)  # this process's samples of each step's (global) batch
    if args.threads:
        torch.set_num_threads(args.threads)
    device = start(world, resolve_device(args.device))
    use_amp = (device.type == "cuda") if args.amp is None else bool(args.amp)
    amp_dtype = torch.bfloat16 if device.type != "cuda" or torch.cuda.is_bf16_supported() else torch.float16
    out = Path(args.out)
    data_inputs = [*args.images, *(getattr(args, "val_images", None) or []), getattr(args, "cutouts", None),
                   getattr(args, "videos", None), getattr(args, "init_weights", None)]
    check_output_apart(out, data_inputs, what="--out folder", folder=True)
    check_output_apart(out, [getattr(args, "resume", None)], what="--out folder")  # resuming from OUT/last.pt is the usual case
    if world.is_main:  # rank 0 alone writes
        make_output_folder(out, "--out folder")

    data_gen = seed_everything(args.seed)
    model = build_model({"type": "stir", "window_length": args.window_length})
    model = (global_batchnorm(model) if world.distributed else model).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.999), weight_decay=args.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    resumed = restore(args, model, optimizer, scaler, data_gen, world.size if world.distributed else 0)
    step, best = int(resumed.get("step", 0)), float(resumed.get("best_val_psnr", -math.inf))
    wall_before = float(resumed.get("wall_time_s", 0.0))
    net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                  broadcast_buffers=False) if world.distributed else model  # fmt: skip

    ema_decay = float(getattr(args, "ema", 0.0) or 0.0)
    ema = WeightAverage(model, ema_decay) if ema_decay else None
    if ema is not None and args.resume:
        ema.load_state_dict(resumed["ema"])
    # Validation, best.pt and snapshots use the averaged weights when there are any.
    averaged = copy.deepcopy(model) if ema is not None else None

    def weights_to_judge() -> nn.Module:
        if ema is None or averaged is None:
            return model
        ema.copy_to(averaged)
        return averaged

    images = load_training_images(args.images, max_size=args.image_max_size, skimage=not args.no_skimage)
    data = SyntheticSpikeData(images, data_cfg, data_gen, device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    val_cfg = validation_config(args)
    val_images = (
        load_training_images(args.val_images, max_size=args.image_max_size, skimage=False)
        if args.val_images else images
    )  # fmt: skip
    validating = args.val_every > 0 and world.is_main
    val_samples = validation_set(val_images, val_cfg, count=args.val_samples) if validating else []

    def training_state(wall: float) -> dict[str, Any]:
        state = {
            "step": step,
            "optimizer": optimizer.state_dict(),
            "rng": rng_state(data_gen),
            "best_val_psnr": best,
            "wall_time_s": wall,
            "args": plain_args(args),
        }
        if world.distributed:
            state["world_size"] = world.size
        if scaler.is_enabled():
            state["scaler"] = scaler.state_dict()
        if ema is not None:
            state["ema"] = ema.state_dict()
        return state

    def save(name: str, module: nn.Module, wall: float | None = None) -> None:
        """Rank 0 writes; ``wall`` given: with the training state (last.pt)."""
        if world.is_main:
            save_run(out / name, module, step, args, data_cfg, None if wall is None else training_state(wall), world.size)

    def log(line: str) -> None:
        if world.is_main:
            print(line, flush=True)

    def batch_of_step() -> tuple[Tensor, Tensor, Tensor]:
        if batches is not None:
            return batches.get(step)
        if world.distributed:
            return samples_of_step(images, data_cfg, args.seed, step, first, count, device)
        return data.sample(args.batch_size)

    # SIGTERM (e.g. `kill PID`) saves last.pt before exiting, like Ctrl-C.
    def _terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    if workers:
        samples = (first, count) if world.distributed else None
        batches = StepBatches(images, data_cfg, args.seed, args.batch_size, workers, device, samples=samples)
    else:
        batches = None
    previous = signal.signal(signal.SIGTERM, _terminate) if hasattr(signal, "SIGTERM") else None
    model.train()
    start_time = time.time()
    last_val = float("nan")
    bar = None
    if not args.no_progress and world.is_main:
        from tqdm import tqdm

        bar = tqdm(total=args.steps, initial=step, desc="train", dynamic_ncols=True, mininterval=5.0, file=sys.stderr)
    smooth = None
    saved_step = step
    interrupted = False
    try:
        stop = min(args.steps, args.stop_at) if args.stop_at else args.steps
        while step < stop:
            if args.time_limit and world.any(time.time() - start_time > args.time_limit, device):
                log(f"time limit reached at step {step}")
                break
            lr = learning_rate(step, args.steps, args.lr, args.warmup)
            for group in optimizer.param_groups:
                group["lr"] = lr
            spikes, target, _ = batch_of_step()
            with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                pred, pyramid = net(spikes, return_pyramid=True)
            loss, rec = stir_loss(pred.float(), [p.float() for p in pyramid], target, getattr(args, "loss", "l1"))
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss is {loss.item()} at step {step}")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()  # under torchrun, DDP averages the gradients over the ranks here
            scaler.step(optimizer)
            scaler.update()
            if ema is not None:
                ema.update(model)
            step += 1
            value, l1 = world.mean(loss, rec)  # the global batch's, under torchrun
            smooth = value if smooth is None else 0.95 * smooth + 0.05 * value
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{smooth:.4f}", lr=f"{lr:.1e}", refresh=False)
            elapsed = time.time() - start_time
            if args.log_every and (step % args.log_every == 0 or step == stop):
                log(f"step {step} loss {value:.5f} (avg {smooth:.5f}) l1 {l1:.5f} lr {lr:.2e} "
                    f"wall {wall_before + elapsed:.1f}s")  # fmt: skip
            if val_samples and (step % args.val_every == 0 or step == stop):
                judged = weights_to_judge()
                last_val = validate(judged, val_samples, device)
                improved = last_val > best
                best = max(best, last_val)
                label = "ema val_psnr" if ema is not None else "val_psnr"
                log(f"step {step} {label} {last_val:.3f} dB (best {best:.3f})")
                if improved:
                    save("best.pt", judged)
            if step % args.checkpoint_every == 0 or step == stop:
                save("last.pt", model, wall_before + elapsed)
                saved_step = step
            if args.snapshot_every and step % args.snapshot_every == 0:
                save(f"step_{step:06d}.pt", weights_to_judge())
        if saved_step != step:  # stopped by --time-limit
            save("last.pt", model, wall_before + time.time() - start_time)
    except KeyboardInterrupt:
        interrupted = True
        log(f"interrupted at step {step}; saving {out / 'last.pt'}")
        save("last.pt", model, wall_before + time.time() - start_time)
    finally:
        if batches is not None:
            batches.close()
        if bar is not None:
            bar.close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return {
        "step": step,
        "best_val_psnr": best,
        "last_val_psnr": last_val,
        "wall_time_s": wall_before + time.time() - start_time,
        "last": os.fspath(out / "last.pt"),
        "best": os.fspath(out / "best.pt"),
        "rank": world.rank,
        "interrupted": interrupted,
    }


def run(args: argparse.Namespace) -> int:
    """Entry point of ``stir-ros train``."""
    summary = train(args)
    if summary["rank"]:
        return 0  # rank 0 reports
    print(
        f"done: step {summary['step']}, best validation PSNR {summary['best_val_psnr']:.3f} dB, "
        f"wall time {summary['wall_time_s']:.0f} s; weights in {summary['last']}"
    )
    return 0
