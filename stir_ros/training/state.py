# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Training state kept beside the weights: the weight average and every RNG state (exact resume)."""

from __future__ import annotations

import argparse
import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from stir_ros.core.defaults import ALPHA
from stir_ros.core.errors import ConfigError
from stir_ros.models import read_checkpoint, save_checkpoint
from stir_ros.models.checkpoint import check_weights_file
from stir_ros.training.data import DataConfig, describe

__all__ = ["WeightAverage", "plain_args", "restore", "rng_state", "save_run", "seed_everything", "set_rng_state"]


class WeightAverage:
    """Exponential moving average of a model's parameters and buffers (kept in fp32).

    The decay ramps up as ``min(decay, (1 + n) / (10 + n))`` over the first updates so that an
    average started from fresh weights is not dominated by them. BatchNorm statistics and other
    buffers are averaged the same way (integer buffers are copied).
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ConfigError(f"--ema must be in (0, 1), got {decay}")
        self.decay = float(decay)
        self.updates = 0
        self.state = {k: v.detach().float().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Blend the model's current weights into the average."""
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for k, v in model.state_dict().items():
            avg = self.state[k]
            if v.is_floating_point():
                avg.mul_(d).add_(v.detach().float(), alpha=1 - d)
            else:
                avg.copy_(v)
        self.updates += 1

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "updates": self.updates, "weights": self.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.updates = int(state["updates"])
        self.state = {k: v.float().clone() for k, v in state["weights"].items()}

    def copy_to(self, model: nn.Module) -> None:
        """Load the averaged weights into ``model`` (e.g. a copy used for validation)."""
        model.load_state_dict({k: v.to(model.state_dict()[k].dtype) for k, v in self.state.items()})


def rng_state(data_gen: torch.Generator) -> dict[str, Any]:
    np_state = np.random.get_state()
    assert isinstance(np_state, tuple)  # the legacy form: (name, keys, pos, has_gauss, cached)
    py_version, py_state, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "python": [py_version, list(py_state), py_gauss],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].copy()), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "torch": torch.get_rng_state(),
        "data": data_gen.get_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any], data_gen: torch.Generator) -> None:
    version, py_state, gauss = state["python"]
    random.setstate((version, tuple(py_state), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    data_gen.set_state(state["data"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def plain_args(args: argparse.Namespace) -> dict[str, Any]:
    keep = (bool, int, float, str, type(None))
    out: dict[str, Any] = {}
    for k, v in vars(args).items():
        if isinstance(v, keep):
            out[k] = v
        elif isinstance(v, (list, tuple)) and all(isinstance(x, keep) for x in v):
            out[k] = list(v)
    return out


def restore(args: argparse.Namespace, model: nn.Module, optimizer: torch.optim.Optimizer,
            scaler: torch.amp.GradScaler, data_gen: torch.Generator, world_size: int) -> dict[str, Any]:  # fmt: skip
    """Load ``--init-weights`` or ``--resume`` into the model, the optimiser and the RNGs.

    ``world_size``: processes under torchrun, 0 for a plain run (a checkpoint resumes only in the
    kind of run that wrote it: their batch streams differ). Returns the resumed training state
    (``step``, ``best_val_psnr``, ``wall_time_s``, ``ema``, ...), empty for a fresh run.
    """
    init_weights = getattr(args, "init_weights", None)
    if args.resume and init_weights:
        raise ConfigError("--resume and --init-weights exclude each other: resume restores the weights too")
    if init_weights:
        check_weights_file(init_weights)  # the same one-line refusals as the node and bag reconstruct
        init = read_checkpoint(init_weights)
        if init["model_config"].get("window_length") != args.window_length:
            raise ConfigError(
                f"{init_weights} is for window_length {init['model_config'].get('window_length')}, "
                f"not {args.window_length}"
            )
        model.load_state_dict(init["state_dict"], strict=True)  # fp16-stored weights are cast to fp32
    if not args.resume:
        return {}
    ckpt = read_checkpoint(args.resume)
    extra = ckpt.get("extra") or {}
    if "optimizer" not in extra:
        raise ConfigError(f"{args.resume} holds no training state (optimizer, step, RNG); it cannot be resumed")
    if ckpt["model_config"].get("window_length") != args.window_length:
        raise ConfigError(f"{args.resume} is for window_length {ckpt['model_config'].get('window_length')}")
    saved_world = int(extra.get("world_size", 0))
    if bool(saved_world) != bool(world_size):
        raise ConfigError(
            f"{args.resume} was trained under torchrun ({saved_world} processes), whose batches are drawn per "
            "sample: resume it under torchrun, with any number of processes" if saved_world else
            f"{args.resume} was trained in a plain process: resume it without torchrun (a run under torchrun "
            "draws another batch stream)"
        )  # fmt: skip
    model.load_state_dict(ckpt["state_dict"], strict=True)
    optimizer.load_state_dict(extra["optimizer"])
    if "scaler" in extra and scaler.is_enabled():
        scaler.load_state_dict(extra["scaler"])
    saved_workers = int((extra.get("args") or {}).get("data_workers", 0) or 0)
    if (saved_workers > 0) != (int(getattr(args, "data_workers", 0) or 0) > 0):
        raise ConfigError(
            f"{args.resume} was trained with --data-workers {saved_workers}: the batches of a run made "
            "in worker processes and of one made in-process are different streams; resume with "
            + ("--data-workers N (any N >= 1)" if saved_workers else "--data-workers 0")
        )
    if bool(getattr(args, "ema", 0.0)) and extra.get("ema") is None:
        raise ConfigError(f"{args.resume} was trained without --ema; resume it without --ema")
    set_rng_state(extra["rng"], data_gen)
    extra.setdefault("best_val_psnr", -math.inf)
    return extra


def save_run(path: Path, model: nn.Module, step: int, args: argparse.Namespace, data_cfg: DataConfig,
             extra: dict[str, Any] | None, world_size: int = 1) -> None:  # fmt: skip
    """Write ``model`` with the run's metadata (and ``extra``, the training state of last.pt)."""
    loss = "MSE (scaled to L1)" if getattr(args, "loss", "l1") == "mse" else "L1"
    batch = f"{args.batch_size} over {world_size} processes" if world_size > 1 else f"{args.batch_size}"
    meta = {
        "window_length": args.window_length,
        "alpha": ALPHA,
        "training_data": describe(data_cfg, args.images, skimage=not getattr(args, "no_skimage", False)),
        "steps": step,
        "notes": (
            f"stir-ros train: batch {batch}, crop {args.crop}, lr {args.lr}, warmup {args.warmup}, "
            f"weight decay {args.weight_decay}, seed {args.seed}; loss {loss} + multi-scale L1; "
            "network target alpha*gt (engine: clamp(raw / alpha, 0, 1))"
        ),
    }
    save_checkpoint(path, model, meta, extra=extra)
