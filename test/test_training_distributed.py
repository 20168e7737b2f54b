# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Tests of ``stir-ros train`` under torchrun: two gloo processes on the CPU against one process.

The runs are fp32 (no ``--amp``): there the two agree to float rounding (weights to 1e-4 of the
whole update after four steps), a tolerance that a wrongly split batch, gradient or batch-norm
statistic exceeds. With bf16 autocast every activation is rounded to 8 bits of mantissa and the
split batch reaches those roundings in other orders: the weights then differed by 7e-3 of the
update (measured), too loose a bound to tell such a fault from rounding.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import torch

from stir_ros.core.errors import ConfigError
from stir_ros.models import build_model, read_checkpoint
from stir_ros.training import train as train_mod
from stir_ros.training.data import DataConfig, StepBatches, load_training_images, samples_of_step, step_batch
from stir_ros.training.distributed import World, finish, start, world_from_env

# Global batch 4: one process makes samples 0-3 of each step; of two processes, rank 0 makes 0-1, rank 1 2-3.
RUN = ["--steps", "4", "--crop", "32", "--batch-size", "4", "--threads", "1", "--device", "cpu", "--val-every", "0",
       "--log-every", "1", "--no-progress", "--seed", "7", "--max-layers", "2", "--window-length", "41"]  # fmt: skip


def _torchrun(processes: int, out, *extra: str) -> tuple[dict[int, float], str]:
    """Run ``stir-ros train`` under torchrun; returns the logged loss of each step and the output."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(processes),
               "-m", "stir_ros.cli", "train", "--out", str(out), *RUN, *extra]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    losses = {int(m[1]): float(m[2]) for m in re.finditer(r"^step (\d+) loss ([\d.]+)", done.stdout, re.M)}
    return losses, done.stdout


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One process for 4 steps; two processes for 4 steps, and stopped at step 2 and resumed to step 4."""
    root = tmp_path_factory.mktemp("ddp")
    one = _torchrun(1, root / "one")
    _torchrun(2, root / "two_uninterrupted")
    first = _torchrun(2, root / "two", "--stop-at", "2")
    resumed = _torchrun(2, root / "two", "--resume", str(root / "two" / "last.pt"))
    return root, one, first, resumed


def test_two_processes_follow_the_one_process_loss_curve(runs) -> None:
    root, (one, _), (first, first_out), (resumed, _) = runs
    two = {**first, **resumed}
    assert sorted(one) == sorted(two) == [1, 2, 3, 4]
    print("step: one process / two processes:", {k: (one[k], two[k]) for k in one})
    for k in one:
        assert two[k] == pytest.approx(one[k], abs=2e-5), k  # the log's 5 decimals
    assert len(re.findall(r"^step 1 loss", first_out, re.M)) == 1  # rank 0 alone logs
    one_ckpt, two_ckpt = read_checkpoint(root / "one" / "last.pt"), read_checkpoint(root / "two" / "last.pt")
    assert one_ckpt["extra"]["step"] == two_ckpt["extra"]["step"] == 4 and two_ckpt["extra"]["world_size"] == 2
    # Weights: Adam moves a weight of tiny gradient by about lr whatever its gradient's rounding, so
    # the difference is measured against the whole update from the initial weights (same seed).
    torch.manual_seed(7)
    model = build_model({"type": "stir", "window_length": 41})
    init, keys = model.state_dict(), [name for name, _ in model.named_parameters()]  # not the batch-norm statistics
    a, b = one_ckpt["state_dict"], two_ckpt["state_dict"]
    diff = sum(float((a[k].double() - b[k].double()).norm() ** 2) for k in keys) ** 0.5
    update = sum(float((a[k].double() - init[k].double()).norm() ** 2) for k in keys) ** 0.5
    print(f"weights: |two - one| = {diff:.3g}, |one - initial| = {update:.3g}")
    assert diff < 1e-3 * update
    for k in a:
        if "running_" in k:  # the global batch's statistics, as one process computes them
            assert torch.allclose(a[k], b[k], rtol=1e-4, atol=1e-6), k


def test_two_process_resume_equals_uninterrupted(runs) -> None:
    root = runs[0]
    a = read_checkpoint(root / "two_uninterrupted" / "last.pt")["state_dict"]
    b = read_checkpoint(root / "two" / "last.pt")["state_dict"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_checkpoint_resumes_only_in_its_kind_of_run(runs, tmp_path, train_args, monkeypatch) -> None:
    root = runs[0]
    with pytest.raises(ConfigError, match=r"trained under torchrun \(2 processes\).*resume it under torchrun"):
        train_mod.train(train_args(tmp_path / "plain", "--window-length", "41", "--resume", str(root / "two" / "last.pt")))
    plain = train_mod.train(train_args(tmp_path / "p", "--window-length", "41", "--steps", "1"))
    for name, value in {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1",
                        "MASTER_PORT": str(_free_port())}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match="trained in a plain process: resume it without torchrun"):
        train_mod.train(train_args(tmp_path / "q", "--window-length", "41", "--resume", plain["last"]))
    assert not torch.distributed.is_initialized()  # the refused run left the process group


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_global_batch_is_the_same_however_it_is_shared() -> None:
    images = load_training_images(max_size=128)
    cfg = DataConfig(window_length=41, crop=32, max_layers=2)
    whole = samples_of_step(images, cfg, 7, 5, 0, 4)
    halves = [samples_of_step(images, cfg, 7, 5, *World(rank=r, size=2, distributed=True).share(4)) for r in (0, 1)]
    for a, b0, b1 in zip(whole, *halves):
        assert torch.equal(a, torch.cat([b0, b1]))
    assert not torch.equal(halves[0][0], halves[1][0])  # the ranks draw different samples
    assert not torch.equal(whole[0], samples_of_step(images, cfg, 7, 6, 0, 4)[0])  # and each step others
    assert not torch.equal(whole[0], torch.from_numpy(step_batch(images, cfg, 7, 5, 4)[0]).float())  # not the plain stream
    batches = StepBatches(images, cfg, seed=7, batch=4, workers=1, samples=(2, 2))
    try:
        made = batches.get(5)
    finally:
        batches.close()
    for a, b in zip(made, halves[1]):
        assert torch.equal(a, b)
    with pytest.raises(ConfigError, match="multiple of the 3 processes, got 4"):
        World(rank=0, size=3, distributed=True).share(4)


def test_world_from_torchrun_variables() -> None:
    assert world_from_env({}) == World()
    assert world_from_env({"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4"}) == World(3, 1, 4, True)
    assert world_from_env({"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1"}).distributed
    with pytest.raises(ConfigError, match="LOCAL_RANK missing"):
        world_from_env({"RANK": "0", "WORLD_SIZE": "2"})
    with pytest.raises(ConfigError, match="RANK, LOCAL_RANK < WORLD_SIZE, got 2, 0, 2"):
        world_from_env({"RANK": "2", "LOCAL_RANK": "0", "WORLD_SIZE": "2"})
    with pytest.raises(ConfigError, match="must be integers"):
        world_from_env({"RANK": "x", "LOCAL_RANK": "0", "WORLD_SIZE": "2"})


def _finish_late_or_early(rank: int, port: int, out: str, clean: bool) -> None:
    """Rank 0 reaches ``finish`` 1.5 s after rank 1; each writes when it arrived and when it left."""
    import time

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2")
    world = world_from_env()
    start(world, torch.device("cpu"))
    torch.distributed.all_reduce(torch.ones(4))
    if rank == 0:
        time.sleep(1.5)  # rank 0 still writing its checkpoint
    arrived = time.time()
    finish(world, clean=clean)
    with open(f"{out}/{rank}", "w") as f:
        f.write(f"{arrived} {time.time()} {int(torch.distributed.is_initialized())}")


@pytest.mark.parametrize("clean", [True, False])
def test_a_rank_leaves_the_group_only_when_all_have_finished_cleanly(tmp_path, clean) -> None:
    """A rank that ends first waits for the others; after an error it does not wait.

    A gloo group left by one rank while another is still at work could abort the first (SIGABRT)
    although training succeeded: a CI run failed so.
    """
    import torch.multiprocessing as mp

    mp.spawn(_finish_late_or_early, args=(_free_port(), str(tmp_path), clean), nprocs=2, join=True)
    (arrived0, _, init0), (arrived1, left1, init1) = ([float(v) for v in (tmp_path / str(r)).read_text().split()] for r in (0, 1))
    assert init0 == init1 == 0  # both left the group
    if clean:
        assert left1 >= arrived0  # rank 1 waited for rank 0
    else:
        assert left1 < arrived0  # an error: no rank waits for one that may never come


def test_the_process_group_is_left_with_no_ddp_wrapper_alive(tmp_path, train_args, monkeypatch) -> None:
    """The process group is left with the DistributedDataParallel wrapper already freed.

    The wrapper sits in reference cycles; left to the collector, it would be freed at some later
    point, at worst while the interpreter exits, when gloo's threads may abort the process.
    """
    import gc

    from torch.nn.parallel import DistributedDataParallel

    for name, value in {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1",
                        "MASTER_PORT": str(_free_port())}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    gc.collect()
    gc.disable()  # only finish's own collection may free it
    try:
        summary = train_mod.train(train_args(tmp_path / "run", "--window-length", "41", "--steps", "1"))
        alive = [o for o in gc.get_objects() if isinstance(o, DistributedDataParallel)]
    finally:
        gc.enable()
    assert summary["step"] == 1 and not summary["interrupted"]
    assert not alive and not torch.distributed.is_initialized()
