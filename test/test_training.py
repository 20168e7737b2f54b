# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Tests of ``stir-ros train``: a few tiny steps, determinism, exact resume, checkpoint contents."""

from __future__ import annotations

import math
import shutil

import pytest
import torch

from stir_ros.core.errors import ConfigError
from stir_ros.models import read_checkpoint
from stir_ros.training import train as train_mod
from stir_ros.training.data import DataConfig, SyntheticSpikeData, load_training_images


def _weights(path) -> dict[str, torch.Tensor]:
    return read_checkpoint(path)["state_dict"]


def _assert_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.fixture(scope="module")
def runs(tmp_path_factory, train_args):
    """An uninterrupted 3-step run, and a run stopped at step 2 then resumed to step 3."""
    root = tmp_path_factory.mktemp("train")
    full = train_mod.train(train_args(root / "full", "--snapshot-every", "1"))
    first = train_mod.train(train_args(root / "split", "--stop-at", "2"))
    shutil.copy(root / "split" / "last.pt", root / "split_step2.pt")
    resumed = train_mod.train(train_args(root / "split", "--resume", str(root / "split" / "last.pt")))
    return root, full, first, resumed


def test_data_target_is_alpha_times_gt() -> None:
    images = load_training_images()
    cfg = DataConfig(window_length=41, crop=32, max_noise_std=0.0, static_prob=1.0, max_layers=1)
    spikes, target, alpha = SyntheticSpikeData(images, cfg, torch.Generator().manual_seed(0)).sample(2)
    assert spikes.shape == (2, 41, 32, 32) and target.shape == (2, 1, 32, 32)
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}
    assert ((alpha >= 0.5) & (alpha <= 0.7)).all()
    # A static scene's mean spike rate estimates the target alpha * gt.
    assert (spikes.mean(1, keepdim=True) - target).abs().mean() < 0.05


def test_learning_rate_schedule() -> None:
    assert train_mod.learning_rate(0, 100, 1e-3, warmup=10) == pytest.approx(1e-4)
    assert train_mod.learning_rate(20, 100, 1e-3) == pytest.approx(1e-3)
    assert train_mod.learning_rate(25, 100, 1e-3) == pytest.approx(7e-4)
    assert train_mod.learning_rate(99, 100, 1e-3) == pytest.approx(1e-3 * 0.7**3)


def test_mse_loss_weighs_errors_by_size_at_l1_gradient_scale() -> None:
    target = torch.zeros(1, 1, 16, 16)
    pred = torch.full_like(target, 0.01)
    pred[0, 0, 0, 0] = 0.2  # one large error among small ones
    pyramid = [torch.zeros(1, 1, 16 >> k, 16 >> k) for k in range(1, 5)]
    grads = {}
    for kind in ("l1", "mse"):
        p = pred.clone().requires_grad_(True)
        loss, rec = train_mod.stir_loss(p, pyramid, target, kind)
        loss.backward()
        assert float(rec.detach()) == pytest.approx(float((pred - target).abs().mean()))  # the logged L1 either way
        grads[kind] = p.grad[0, 0]
    # L1 pushes every pixel equally; the MSE term pushes the large error 20x harder than a small one.
    assert float(grads["l1"][0, 0]) == pytest.approx(float(grads["l1"][5, 5]))
    assert float(grads["mse"][0, 0] / grads["mse"][5, 5]) == pytest.approx(20.0, rel=1e-4)
    # ... and its gradients are of L1's size (2 * error / mean |error| / pixels).
    assert 0.5 < float(grads["mse"].abs().mean() / grads["l1"].abs().mean()) < 2.5
    with pytest.raises(ConfigError, match="loss must be one of"):
        train_mod.stir_loss(pred, pyramid, target, "l2")


def test_loss_finite_and_checkpoint_metadata(runs) -> None:
    root, full, _, _ = runs
    assert full["step"] == 3
    ckpt = read_checkpoint(root / "full" / "last.pt")
    meta = ckpt["metadata"]
    assert meta["steps"] == 3 and meta["window_length"] == 61 and meta["alpha"] == 0.6
    assert "alpha*gt" in meta["training_data"]
    extra = ckpt["extra"]
    assert extra["step"] == 3 and {"python", "numpy", "torch", "data"} <= set(extra["rng"])
    assert "state" in extra["optimizer"]
    for t in ckpt["state_dict"].values():
        assert torch.isfinite(t.float()).all()


def test_same_seed_same_weights(runs) -> None:
    root, _, first, _ = runs
    assert first["step"] == 2
    # The uninterrupted run's snapshot at step 2 equals the other run's weights at step 2.
    _assert_equal(_weights(root / "full" / "step_000002.pt"), _weights(root / "split_step2.pt"))


def test_resume_equals_uninterrupted(runs) -> None:
    root, full, _, resumed = runs
    assert resumed["step"] == 3
    _assert_equal(_weights(root / "full" / "last.pt"), _weights(root / "split" / "last.pt"))
    full_opt = read_checkpoint(root / "full" / "last.pt")["extra"]["optimizer"]["state"]
    res_opt = read_checkpoint(root / "split" / "last.pt")["extra"]["optimizer"]["state"]
    for k in full_opt:
        assert torch.equal(full_opt[k]["exp_avg"], res_opt[k]["exp_avg"])


def test_resume_refuses_weights_only_file(tmp_path, runs, train_args) -> None:
    root = runs[0]
    from stir_ros.core.errors import ConfigError

    with pytest.raises(ConfigError, match="cannot be resumed"):
        train_mod.train(train_args(tmp_path, "--resume", str(root / "full" / "step_000001.pt")))


def test_mse_loss_run_trains_and_says_so(tmp_path, train_args) -> None:
    out = train_mod.train(train_args(tmp_path, "--steps", "1", "--loss", "mse"))
    assert out["step"] == 1
    meta = read_checkpoint(tmp_path / "last.pt")["metadata"]
    assert "loss MSE (scaled to L1) + multi-scale L1" in meta["notes"]


def test_val_psnr_reported(tmp_path, train_args) -> None:
    out = train_mod.train(train_args(tmp_path, "--steps", "1", "--val-every", "1", "--val-samples", "1", "--val-crop", "32"))
    assert math.isfinite(out["best_val_psnr"]) and (tmp_path / "best.pt").is_file()


def test_init_weights_starts_a_fresh_run_from_a_weights_only_file(tmp_path, runs, train_args) -> None:
    root = runs[0]
    from stir_ros.core.errors import ConfigError

    start = root / "full" / "step_000001.pt"  # weights only, like the shipped stir_default.pt
    out = train_mod.train(train_args(tmp_path / "ft", "--steps", "1", "--init-weights", str(start)))
    assert out["step"] == 1  # a fresh schedule: step 0 -> 1
    tuned, initial = _weights(tmp_path / "ft" / "last.pt"), _weights(start)
    assert any(not torch.equal(tuned[k], initial[k]) for k in tuned)  # it trained from there
    # ... and from there, not from a random initialisation: one small step stays close.
    learned = [k for k in tuned if tuned[k].is_floating_point() and "running_" not in k]  # not BN statistics
    diff = max((tuned[k].float() - initial[k].float()).abs().max().item() for k in learned)
    assert diff < 0.01
    with pytest.raises(ConfigError, match="exclude each other"):
        train_mod.train(train_args(tmp_path / "x", "--init-weights", str(start), "--resume", str(root / "full" / "last.pt")))


def test_image_max_size_out_of_range_is_refused(tmp_path, train_args) -> None:
    from stir_ros.core.errors import ConfigError

    for bad in ("0", "-256", "8"):
        with pytest.raises(ConfigError, match="--image-max-size must be >= 16"):
            train_mod.train(train_args(tmp_path / "x", "--image-max-size", bad))
    assert not (tmp_path / "x" / "last.pt").exists()  # refused before anything was written


def test_a_device_name_torch_does_not_know_is_refused_in_one_line(tmp_path, train_args) -> None:
    # "gpu" reached torch.device and ended in a RuntimeError traceback listing torch's device types.
    for bad in ("gpu", "cuda:x", "cuda0"):
        with pytest.raises(ConfigError, match="device must be auto, cpu, cuda or cuda:N"):
            train_mod.train(train_args(tmp_path / "x", "--device", bad))
    assert not (tmp_path / "x" / "last.pt").exists()


def test_worker_batches_depend_on_seed_and_step_only() -> None:
    from stir_ros.training.data import StepBatches, step_batch

    images = load_training_images()
    cfg = DataConfig(window_length=41, crop=32, max_layers=2)
    batches = StepBatches(images, cfg, seed=3, batch=2, workers=2, prefetch=3)
    try:
        made = [batches.get(k) for k in (5, 6, 7)]
        again = batches.get(6)  # a jump back restarts the queue at that step
    finally:
        batches.close()
    for k, (spikes, target, alpha) in zip((5, 6, 7), made):
        ref = step_batch(images, cfg, 3, k, 2)
        assert torch.equal(spikes, torch.from_numpy(ref[0]).float())
        assert torch.equal(target, torch.from_numpy(ref[1])) and torch.equal(alpha, torch.from_numpy(ref[2]))
    assert torch.equal(again[0], made[1][0])
    assert not torch.equal(made[0][0], made[1][0])


def test_resume_with_data_workers_equals_uninterrupted(tmp_path, train_args) -> None:
    full = train_mod.train(train_args(tmp_path / "full", "--data-workers", "2"))
    train_mod.train(train_args(tmp_path / "split", "--data-workers", "1", "--stop-at", "2"))
    resumed = train_mod.train(train_args(tmp_path / "split", "--data-workers", "2",
                                    "--resume", str(tmp_path / "split" / "last.pt")))  # fmt: skip
    assert full["step"] == resumed["step"] == 3
    _assert_equal(_weights(full["last"]), _weights(resumed["last"]))
    with pytest.raises(ConfigError, match="trained with --data-workers 2"):
        train_mod.train(train_args(tmp_path / "split", "--resume", str(tmp_path / "split" / "last.pt")))
