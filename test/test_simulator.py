# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Integrate-and-fire simulation and synthetic scenes (stir_ros.core.simulator, stir_ros.core.scenes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from stir_ros.core.classical import tfp
from stir_ros.core.errors import ConfigError, SpikeFormatError
from stir_ros.core.metrics import psnr
from stir_ros.core.scenes import MovingScene, Trajectory, render_moving_layers, synthetic_image
from stir_ros.core.simulator import IntegrateAndFire, _integrate_numpy, _integrate_torch, simulate_spikes
from stir_ros.training.scenes import make_training_batch, random_trajectory
from stir_ros.training.sources import load_images
from stir_ros.training.windows import WindowShape


@pytest.mark.parametrize("intensity", [0.0, 0.1, 0.37, 0.5, 0.8, 1.0])
def test_firing_rate_is_alpha_times_intensity(intensity: float) -> None:
    x = np.full((2000, 12, 12), intensity, np.float32)
    spikes = simulate_spikes(x, alpha=0.6, seed=1)
    assert spikes.dtype == np.uint8 and spikes.shape == x.shape
    assert set(np.unique(spikes)) <= {0, 1}
    # Each pixel fires floor(a0 + 0.6 * I * T) times: the rate is exact up to 1/T.
    assert abs(spikes.mean() - 0.6 * intensity) < 1.0 / 2000


def test_rate_with_noise_and_threshold() -> None:
    x = torch.full((2000, 10, 10), 0.5)
    spikes = simulate_spikes(x, alpha=0.6, threshold=2.0, noise_std=0.05, seed=0)
    assert spikes.dtype == torch.uint8
    assert abs(spikes.float().mean().item() - 0.15) < 0.005


def test_deterministic_with_seed() -> None:
    x = np.random.default_rng(0).random((50, 8, 9), dtype=np.float32)
    a = simulate_spikes(x, seed=5, noise_std=0.1)
    np.testing.assert_array_equal(a, simulate_spikes(x, seed=5, noise_std=0.1))
    assert (a != simulate_spikes(x, seed=6, noise_std=0.1)).any()
    gen = torch.Generator().manual_seed(5)
    np.testing.assert_array_equal(a, simulate_spikes(x, generator=gen, noise_std=0.1))


@pytest.mark.parametrize("noise_std", [0.0, 0.2])
def test_streaming_equals_one_shot(noise_std: float) -> None:
    x = torch.rand(100, 6, 7, generator=torch.Generator().manual_seed(0))
    one_shot = simulate_spikes(x, noise_std=noise_std, seed=3)
    sensor = IntegrateAndFire(6, 7, noise_std=noise_std, seed=3)
    packets = [sensor.step(x[a:b]) for a, b in ((0, 1), (1, 40), (40, 41), (41, 100))]
    torch.testing.assert_close(torch.cat(packets), one_shot, rtol=0, atol=0)
    assert sensor.frames_done == 100
    sensor.reset()
    torch.testing.assert_close(sensor.step(x), one_shot, rtol=0, atol=0)
    np.testing.assert_array_equal(
        IntegrateAndFire(6, 7, noise_std=noise_std, seed=3).step(x.numpy()), one_shot.numpy()
    )


@pytest.mark.parametrize(("noise_std", "threshold"), [(0.0, 1.0), (0.1, 1.7)])
def test_gpu_code_path_equals_cpu_path(noise_std: float, threshold: float) -> None:
    # CPU tensors are simulated with numpy; the torch loop that GPUs run must agree bit for bit.
    x = torch.rand(2, 300, 24, 24, generator=torch.Generator().manual_seed(1))
    start = torch.rand(2, 24, 24, generator=torch.Generator().manual_seed(2))
    acc_t, acc_n = start.clone(), start.clone()
    spikes_t = _integrate_torch(x, acc_t, 0.6, threshold, noise_std, torch.Generator().manual_seed(3))
    spikes_n = _integrate_numpy(
        x.numpy(), acc_n.numpy(), 0.6, threshold, noise_std, torch.Generator().manual_seed(3)
    )
    np.testing.assert_array_equal(spikes_t.numpy(), spikes_n)
    torch.testing.assert_close(acc_t, acc_n, rtol=0, atol=0)


def test_state_continuation_and_batches() -> None:
    x = np.random.default_rng(1).random((2, 80, 5, 6), dtype=np.float32)
    full = simulate_spikes(x, seed=0)
    assert full.shape == x.shape
    init = np.random.default_rng(2).random((2, 5, 6), dtype=np.float32)
    whole = simulate_spikes(x, initial_accumulator=init)
    first, state = simulate_spikes(x[:, :30], initial_accumulator=init, return_state=True)
    rest = simulate_spikes(x[:, 30:], initial_accumulator=state)
    np.testing.assert_array_equal(np.concatenate([first, rest], 1), whole)
    with pytest.raises(SpikeFormatError, match="initial_accumulator"):
        simulate_spikes(x, initial_accumulator=init[0])
    with pytest.raises(SpikeFormatError, match=r"\[T, H, W\]"):
        simulate_spikes(x[0, 0])
    with pytest.raises(ConfigError, match="alpha"):
        simulate_spikes(x, alpha=0)
    with pytest.raises(SpikeFormatError, match=r"\[T, 5, 6\]"):
        IntegrateAndFire(5, 6).step(x[0, :, :4])


def test_tfp_of_static_scene_exceeds_30_db() -> None:
    # With a random start, 61 frames give floor(a0 + 36.6 I) spikes: error std at most
    # 0.5 / 36.6 (37 dB), about 39 dB on average, whatever the texture.
    for img in (synthetic_image(96, 128, seed=4), load_images(max_size=128)[1]):
        spikes = simulate_spikes(np.repeat(img[None], 61, 0), alpha=0.6, seed=0)
        assert psnr(np.clip(tfp(spikes, alpha=0.6), 0, 1), img) > 30


def test_synthetic_image() -> None:
    img = synthetic_image(64, 80, seed=7)
    assert img.shape == (64, 80) and img.dtype == np.float32
    assert 0.0 <= img.min() and img.max() <= 1.0 and img.std() > 0.1
    np.testing.assert_array_equal(img, synthetic_image(64, 80, seed=7))
    assert not np.array_equal(img, synthetic_image(64, 80, seed=8))
    # Textured: plenty of local detail, not just a smooth ramp.
    assert np.abs(np.diff(img, axis=1)).mean() > 0.005


def test_load_images(tmp_path: Path) -> None:
    from PIL import Image

    images = load_images("skimage", max_size=64)
    assert len(images) >= 10
    assert all(im.ndim == 2 and im.dtype == np.float32 and max(im.shape) <= 64 for im in images)
    assert all(0 <= im.min() and im.max() <= 1 for im in images)
    Image.fromarray(np.full((10, 12, 3), (255, 0, 0), np.uint8)).save(tmp_path / "red.png")
    Image.fromarray(np.full((5, 6), 128, np.uint8)).save(tmp_path / "gray.jpg")
    (tmp_path / "notes.txt").write_text("not an image")
    loaded = load_images(tmp_path)
    assert [im.shape for im in loaded] == [(5, 6), (10, 12)]  # sorted by name
    assert abs(loaded[1].mean() - 0.299) < 0.01 and abs(loaded[0].mean() - 128 / 255) < 0.02
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    with pytest.raises(ConfigError, match="no image files"):
        load_images(empty)
    with pytest.raises(ConfigError, match="cannot read image"):
        load_images([tmp_path / "notes.txt"])


def test_random_trajectory_bounds() -> None:
    traj = random_trajectory(61, max_displacement=4.0, static_prob=0.0, batch_shape=(500,), seed=0)
    assert traj.shift.shape == (500, 61, 2) and traj.angle.shape == (500, 61)
    assert traj.shift[:, 30].abs().max() == 0 and (traj.scale[:, 30] == 1).all()
    end_to_end = (traj.shift[:, -1] - traj.shift[:, 0]).norm(dim=-1)
    assert end_to_end.max() <= 4.0 + 1e-5 and end_to_end.mean() > 1.5
    step = traj.shift.diff(dim=1).norm(dim=-1)
    assert step.max() < 0.15  # smooth: a small fraction of a pixel per frame
    static = random_trajectory(61, static_prob=1.0, batch_shape=(10,), seed=0)
    assert static.shift.abs().max() == 0
    rotating = random_trajectory(
        21, max_rotation=0.1, max_zoom=0.1, static_prob=0.0, batch_shape=(50,), seed=1
    )
    assert rotating.angle.abs().max() <= 0.05 + 1e-6 and rotating.angle.abs().max() > 0
    assert (rotating.scale - 1).abs().max() <= 0.05


def test_render_identity_and_integer_shifts() -> None:
    src = torch.rand(1, 1, 20, 30, generator=torch.Generator().manual_seed(0))
    shift = torch.tensor([[[[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]]]])
    traj = Trajectory(shift=shift, angle=torch.zeros(1, 1, 3), scale=torch.ones(1, 1, 3))
    out = render_moving_layers(src, traj, 10, 20)
    assert out.shape == (1, 3, 10, 20)
    crop = src[0, 0]
    torch.testing.assert_close(out[0, 0], crop[5:15, 5:25], atol=1e-5, rtol=0)
    torch.testing.assert_close(out[0, 1], crop[5:15, 6:26], atol=1e-5, rtol=0)
    torch.testing.assert_close(out[0, 2], crop[7:17, 5:25], atol=1e-5, rtol=0)


def test_render_composites_foreground_over_background() -> None:
    layers = torch.stack([torch.zeros(12, 12), torch.ones(12, 12)])[None]
    masks = torch.zeros(1, 2, 12, 12)
    masks[0, 1, 4:8, 4:8] = 1
    still = Trajectory(torch.zeros(1, 2, 1, 2), torch.zeros(1, 2, 1), torch.ones(1, 2, 1))
    out = render_moving_layers(layers, still, 12, 12, masks)[0, 0]
    torch.testing.assert_close(out, masks[0, 1], atol=1e-5, rtol=0)


def test_make_training_batch() -> None:
    images = [synthetic_image(128, 160, seed=s) for s in range(3)]
    gen = torch.Generator().manual_seed(0)
    spikes, gt = make_training_batch(images, WindowShape(4, 61, 48, 64), alpha=0.6, generator=gen, num_layers=2)
    assert spikes.shape == (4, 61, 48, 64) and gt.shape == (4, 1, 48, 64)
    assert spikes.dtype == torch.float32 and gt.dtype == torch.float32
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}
    assert 0 <= gt.min() and gt.max() <= 1
    assert abs(spikes.mean().item() - 0.6 * gt.mean().item()) < 0.01
    again = make_training_batch(
        images, WindowShape(4, 61, 48, 64), alpha=0.6, generator=torch.Generator().manual_seed(0), num_layers=2
    )
    torch.testing.assert_close(again[0], spikes, rtol=0, atol=0)
    torch.testing.assert_close(again[1], gt, rtol=0, atol=0)
    # Without motion the window's TFP recovers the ground truth.
    spikes, gt = make_training_batch(images, WindowShape(2, 61, 32, 32), generator=gen, max_displacement=0.0)
    for i in range(2):
        assert psnr(tfp(spikes[i], 0.6).clamp(0, 1), gt[i, 0]) > 30
    # Small images are enlarged to fit the crop.
    spikes, gt = make_training_batch([synthetic_image(20, 20, seed=0)], WindowShape(1, 9, 40, 40), generator=gen)
    assert spikes.shape == (1, 9, 40, 40)
    with pytest.raises(ConfigError):
        make_training_batch([], WindowShape(1, 9, 40, 40))


def test_moving_scene_is_chunking_independent() -> None:
    scene = MovingScene(40, 56, seed=1, max_speed=0.2)
    frames = scene.render(0, 100)
    assert frames.shape == (100, 40, 56) and 0 <= frames.min() and frames.max() <= 1
    torch.testing.assert_close(
        torch.cat([scene.render(0, 33), scene.render(33, 67)]), frames, rtol=0, atol=1e-6
    )
    assert (frames[-1] - frames[0]).abs().mean() > 0.005  # it moves
    sensor = IntegrateAndFire(40, 56, seed=0)
    spikes = sensor.step(frames)
    assert abs(spikes.float().mean().item() - 0.6 * frames.mean().item()) < 0.02
    exact = MovingScene(40, 56, seed=1, max_speed=0.2, keyframe_stride=1)
    assert (exact.render(0, 100) - frames).abs().mean() < 0.01
    custom = MovingScene(40, 56, images=[synthetic_image(30, 200, seed=0)], num_foregrounds=0)
    assert custom.render(10, 3).shape == (3, 40, 56)


@pytest.mark.cuda
def test_cuda_simulation_and_batch() -> None:
    x = torch.rand(200, 16, 16, device="cuda")
    spikes = simulate_spikes(x, seed=0)
    assert spikes.is_cuda
    sensor = IntegrateAndFire(16, 16, seed=0, device="cuda")
    torch.testing.assert_close(torch.cat([sensor.step(x[:50]), sensor.step(x[50:])]), spikes, rtol=0, atol=0)
    images = [synthetic_image(128, 128, seed=0)]
    s, gt = make_training_batch(
        images, WindowShape(2, 61, 32, 32), generator=torch.Generator().manual_seed(0), device="cuda"
    )
    assert s.is_cuda and gt.is_cuda
