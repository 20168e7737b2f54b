# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Data-parallel training over several processes started by ``torchrun``.

``stir-ros train`` started by ``torchrun --nproc-per-node K`` (one process per GPU, or CPU
processes) reads its rank from the variables torchrun sets, joins the process group (NCCL on
CUDA, gloo on the CPU) and trains one model with PyTorch's ``DistributedDataParallel``:

- ``--batch-size`` is the **global** batch, split evenly across the K ranks (it must be a
  multiple of K). Sample ``i`` of step ``k``'s global batch is drawn from its own generator,
  seeded by ``(seed, k, i)`` (:func:`~stir_ros.training.data.sample_generator`); rank ``r``
  makes samples ``r * B / K`` to ``(r + 1) * B / K - 1``. The global batch is therefore the
  same for any K, and a run may be resumed with another K.
- Gradients are averaged over the ranks (DDP) and batch norm uses the global batch's
  statistics (:class:`GlobalBatchNorm2d`), so K processes compute what one process computes
  on the whole global batch, up to float rounding.
- Rank 0 alone validates, logs and writes checkpoints; every rank restores a checkpoint.

A plain run (no torchrun) is unchanged: its own batch stream, its own checkpoints. A run under
torchrun with one process is the one-process reference of the stream described above.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn

from stir_ros.core.errors import ConfigError

__all__ = ["GlobalBatchNorm2d", "World", "finish", "global_batchnorm", "start", "world_from_env"]

TORCHRUN_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE")


@dataclass(frozen=True)
class World:
    """This process's place among the training processes.

    Attributes:
        rank: Global rank, 0 to ``size - 1``; rank 0 validates, logs and saves.
        local_rank: Rank on this machine (its GPU index).
        size: Number of processes.
        distributed: Started by torchrun (also with one process): the per-sample batch stream.
    """

    rank: int = 0
    local_rank: int = 0
    size: int = 1
    distributed: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def share(self, batch: int) -> tuple[int, int]:
        """``(first sample, count)`` of this rank's share of a global batch of ``batch`` samples."""
        if batch % self.size:
            raise ConfigError(
                f"--batch-size is the global batch under torchrun and must be a multiple of the "
                f"{self.size} processes, got {batch}"
            )
        count = batch // self.size
        return self.rank * count, count

    def mean(self, *values: Tensor) -> list[float]:
        """The mean over the ranks of each scalar (each rank's share of the batch being equal)."""
        if not self.distributed or self.size == 1:
            return [float(v.detach()) for v in values]
        packed = torch.stack([v.detach().double() for v in values])
        dist.all_reduce(packed)
        return [float(x) / self.size for x in packed.cpu()]

    def any(self, flag: bool, device: torch.device) -> bool:
        """Whether any rank's ``flag`` is set (so that all stop at the same step)."""
        if not self.distributed or self.size == 1:
            return flag
        packed = torch.tensor([float(flag)], device=device)
        dist.all_reduce(packed)
        return bool(packed.item() > 0)


def world_from_env(environ: Mapping[str, str] | None = None) -> World:
    """The :class:`World` described by torchrun's variables, or a plain single process without them."""
    env = os.environ if environ is None else environ
    present = [name for name in TORCHRUN_VARIABLES if name in env]
    if not present:
        return World()
    if len(present) != len(TORCHRUN_VARIABLES):
        missing = ", ".join(n for n in TORCHRUN_VARIABLES if n not in env)
        raise ConfigError(f"torchrun sets {', '.join(TORCHRUN_VARIABLES)}; {missing} missing from the environment")
    try:
        rank, local_rank, size = (int(env[name]) for name in TORCHRUN_VARIABLES)
    except ValueError as err:
        raise ConfigError(f"RANK, LOCAL_RANK and WORLD_SIZE must be integers: {err}") from err
    if not (size >= 1 and 0 <= rank < size and 0 <= local_rank < size):
        raise ConfigError(f"expected 0 <= RANK, LOCAL_RANK < WORLD_SIZE, got {rank}, {local_rank}, {size}")
    return World(rank=rank, local_rank=local_rank, size=size, distributed=True)


def start(world: World, device: torch.device) -> torch.device:
    """Join the process group (NCCL on CUDA, gloo on the CPU) and return this rank's device.

    On CUDA each rank takes the GPU of its local rank; an explicit ``cuda:N`` is refused when
    there are several processes.
    """
    if not world.distributed:
        return device
    if device.type == "cuda":
        if device.index is not None and world.size > 1:
            raise ConfigError(f"--device {device} under torchrun: give --device cuda, each process takes its LOCAL_RANK's GPU")
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    elif device.type != "cpu":
        raise ConfigError(f"training under torchrun runs on cuda or cpu, got --device {device}")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def finish(world: World, *, clean: bool = True) -> None:
    """Leave the process group; after a clean end, only once every rank has reached this point.

    A rank that finished first left while another still wrote its checkpoint, with its
    DistributedDataParallel reducer (kept alive by reference cycles) still holding the gloo group
    until some later collection, at worst during interpreter exit: a CI run saw such a rank abort
    (``terminate called without an active exception``, SIGABRT) although training had succeeded.
    So: a barrier, then the collection, then the group is destroyed. After an error the barrier is
    skipped: the other ranks may never arrive.
    """
    if world.distributed and dist.is_initialized():
        if clean:
            dist.barrier()
        gc.collect()  # the DistributedDataParallel wrapper sits in reference cycles: let its reducer go now, not at exit
        dist.destroy_process_group()


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """``BatchNorm2d`` that normalises by the statistics of the global batch (all ranks together).

    torch's ``SyncBatchNorm`` does this on GPUs only; this one runs on gloo and the CPU as well,
    so that the CPU test covers the path that the GPUs run. Outside training, or in a single
    process, it is a plain ``BatchNorm2d`` (same state dict, same checkpoints).

    The mean and the variance are gathered in two passes (sum, then sum of squared deviations),
    as ``BatchNorm2d`` computes them; the gathering sums are differentiable, so each rank's
    gradient holds the other ranks' losses' dependence on its samples through the statistics.
    """

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        xf = x.float()
        local = torch.cat([xf.sum((0, 2, 3)), xf.new_tensor([xf.numel() / xf.shape[1]])])
        total = all_reduce(local)
        count = total[-1].detach()
        mean = total[:-1] / count
        centred = xf - mean[None, :, None, None]
        var = all_reduce((centred * centred).sum((0, 2, 3))) / count
        y = centred * torch.rsqrt(var + self.eps)[None, :, None, None]
        if self.weight is not None and self.bias is not None:
            y = y * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                assert self.num_batches_tracked is not None
                self.num_batches_tracked.add_(1)
                factor = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), factor)
                unbiased = var.detach() * (count / (count - 1).clamp_min(1))
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), factor)
        return y.to(x.dtype)


def global_batchnorm(model: nn.Module) -> nn.Module:
    """Replace every ``BatchNorm2d`` of ``model`` (on the CPU) by a :class:`GlobalBatchNorm2d` holding its state."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.BatchNorm2d:
                bn = GlobalBatchNorm2d(child.num_features, child.eps, child.momentum, child.affine,
                                       child.track_running_stats)  # fmt: skip
                bn.load_state_dict(child.state_dict())
                setattr(parent, name, bn)
    return model
