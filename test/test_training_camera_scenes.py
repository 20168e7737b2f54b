# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Tests of the camera scene model of the training data (``DataConfig.scene = "camera"``).

ROS-free and without the photo cache: the images are made by :func:`synthetic_image`.
"""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stir_ros.core.errors import ConfigError
from stir_ros.core.scenes import synthetic_image
from stir_ros.training import photos
from stir_ros.training import train as train_mod
from stir_ros.training.data_args import data_config
from stir_ros.training.camera import CameraConfig, heavy_tail, make_camera_batch, render_camera_scene
from stir_ros.training.data import DataConfig, SyntheticSpikeData, describe, load_cutouts, step_batch
from stir_ros.training.windows import WindowShape

IMAGES = [synthetic_image(160, 224, seed) for seed in range(3)]


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Small tensors: one thread is faster, and much faster on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_shapes_dtypes_and_determinism() -> None:
    a = make_camera_batch(IMAGES, WindowShape(3, 21, 32, 48), alpha=0.6, generator=_gen(1), noise_std=0.01)
    b = make_camera_batch(IMAGES, WindowShape(3, 21, 32, 48), alpha=0.6, generator=_gen(1), noise_std=0.01)
    c = make_camera_batch(IMAGES, WindowShape(3, 21, 32, 48), alpha=0.6, generator=_gen(2), noise_std=0.01)
    spikes, gt = a
    assert spikes.shape == (3, 21, 32, 48) and spikes.dtype == torch.float32
    assert gt.shape == (3, 1, 32, 48) and gt.dtype == torch.float32
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}
    assert 0.0 <= float(gt.min()) and float(gt.max()) <= 1.0
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])


def test_target_is_the_unresampled_centre_frame() -> None:
    # An image of exact 1/255 levels, used at full scale (no downscale), no objects: the centre
    # frame holds only the image's own values (no interpolation), the other frames do not.
    img = (np.random.default_rng(0).integers(0, 256, (96, 96)) / 255.0).astype(np.float32)
    cfg = CameraConfig(max_objects=0, source_size=(512.0, 512.0), static_prob=0.0, tail_prob=1.0)
    scene = render_camera_scene([img], WindowShape(4, 21, 32, 32), cfg, _gen(3))
    levels = np.round(scene.frames.numpy() * 255)
    centre = scene.frames[:, 10].numpy()
    assert np.allclose(centre * 255, levels[:, 10], atol=1e-4)
    assert not np.allclose(scene.frames[:, 0].numpy() * 255, levels[:, 0], atol=1e-3)
    # make_camera_batch returns that frame as the target (same draws, same order).
    _, gt = make_camera_batch([img], WindowShape(4, 21, 32, 32), generator=_gen(3), config=cfg)
    assert torch.equal(gt[:, 0], scene.frames[:, 10])
    # A still window: every frame is the centre one (resampled at the identity, objects included).
    still = render_camera_scene(IMAGES, WindowShape(4, 5, 32, 32), CameraConfig(static_prob=1.0), _gen(3))
    assert torch.allclose(still.frames, still.frames[:, 2:3].expand(-1, 5, -1, -1), atol=1e-4)
    assert float(still.coverage.amax()) > 0.5 and float(still.flow.abs().max()) < 1e-4
    # With objects too, the target is the centre frame of the rendered sequence.
    scene = render_camera_scene(IMAGES, WindowShape(4, 21, 32, 32), None, _gen(4))
    _, gt = make_camera_batch(IMAGES, WindowShape(4, 21, 32, 32), generator=_gen(4))
    assert torch.equal(gt[:, 0], scene.frames[:, 10])


def test_motion_is_mostly_small_with_a_heavy_tail() -> None:
    # The first-to-last displacement is the same for any window length (time is normalised to
    # [-1/2, 1/2] and the draws do not depend on it): three frames stand for 61.
    gen = _gen(5)
    tiles = []
    for _ in range(25):
        scene = render_camera_scene(IMAGES, WindowShape(16, 3, 64, 64), None, gen)
        tiles.append(scene.flow.mean((1, 2)).norm(dim=-1))
    d = torch.cat(tiles)
    assert float(d.median()) < 1.5
    assert float(torch.quantile(d, 0.9)) < 6.0
    assert float(d.max()) > 6.0
    assert float(d.max()) < 16.0 * 1.5  # camera and object shifts are bounded
    # The draws themselves: the tail exists and is bounded.
    m = heavy_tail((20000,), _gen(0), 0.4, 1.0, 0.05, 4.0, 16.0)
    assert float(m.max()) <= 16.0 and 0.3 < float(m.median()) < 0.6 and float((m > 6).float().mean()) > 0.02


def test_camera_is_still_at_the_centre_and_the_flow_matches_the_frames() -> None:
    # Translation only (no rotation, zoom, perspective, deformation, objects): the last frame is
    # the first one moved by the flow.
    cfg = CameraConfig(max_objects=0, edge_median=0.0, max_deformation=0.0, static_prob=0.0, tail_prob=1.0)
    img = synthetic_image(256, 256, 7)
    scene = render_camera_scene([img], WindowShape(2, 21, 48, 48), cfg, _gen(6))
    flow = scene.flow[:, 0, 0]  # uniform
    assert torch.allclose(scene.flow, flow[:, None, None], atol=1e-3) and float(flow.norm(dim=-1).min()) > 3.5
    for b in range(2):
        first, last = scene.frames[b, 0].numpy(), scene.frames[b, -1].numpy()
        dx, dy = (round(v) for v in flow[b].tolist())
        # What the first frame shows at p + flow, the last frame shows at p.
        ys, xs = slice(max(0, -dy) + 2, 48 - max(0, dy) - 2), slice(max(0, -dx) + 2, 48 - max(0, dx) - 2)
        moved = first[ys.start + dy : ys.stop + dy, xs.start + dx : xs.stop + dx]
        err_moved = np.abs(last[ys, xs] - moved).mean()
        err_still = np.abs(last[ys, xs] - first[ys, xs]).mean()
        assert err_moved < 0.5 * err_still


def _cutout_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "cutouts"
    folder.mkdir()
    gray = np.full((40, 40), 230, np.uint8)
    alpha = np.zeros((40, 40), np.uint8)
    alpha[5:35, 5:35] = 255
    Image.fromarray(np.stack([gray, alpha], -1)).save(folder / "block.png")
    return folder


def test_objects_occlude_the_background(tmp_path: Path) -> None:
    background = np.full((200, 200), 0.2, np.float32)
    cutouts = load_cutouts(str(_cutout_folder(tmp_path)))
    assert cutouts[0].shape == (2, 40, 40)
    scene = render_camera_scene([background], WindowShape(16, 21, 48, 48), CameraConfig(max_objects=3), _gen(8), cutouts)
    centre = scene.frames[:, 10]
    free = scene.coverage < 1e-3
    assert free.any() and torch.allclose(centre[free], torch.tensor(0.2), atol=1e-4)
    # Opaque cut-outs (gray 230/255) hide the background where they cover it (soft-ellipse objects
    # are crops of the same flat image: they show as 0.2, also over a cut-out).
    hidden = (centre - 230 / 255).abs() < 1e-4
    assert hidden.sum() > 100 and bool((scene.coverage[hidden] > 0.999).all())
    assert bool((scene.coverage[(centre - 0.2).abs() > 1e-3] > 0).all())
    # The objects move: somewhere a pixel is covered at one end of the window and not at the other.
    assert float((scene.frames[:, 0] - scene.frames[:, -1]).abs().max()) > 0.5
    # Soft-ellipse objects over textured crops: part of the centre frame is covered.
    scene = render_camera_scene(IMAGES, WindowShape(8, 9, 32, 32), CameraConfig(max_objects=3), _gen(9))
    assert float(scene.coverage.amax()) > 0.9


def test_data_config_stream_workers_and_cli(tmp_path: Path) -> None:
    cfg = DataConfig(window_length=21, crop=32, scene="camera", cutouts=str(_cutout_folder(tmp_path)))
    spikes, target, alpha = SyntheticSpikeData(IMAGES, cfg, _gen(10)).sample(3)
    assert spikes.shape == (3, 21, 32, 32) and target.shape == (3, 1, 32, 32) and alpha.shape == (3,)
    assert float((target / alpha[:, None, None, None]).max()) <= 1.0 + 1e-6
    first = step_batch(IMAGES, cfg, seed=4, step=7, batch=2)
    again = step_batch(IMAGES, cfg, seed=4, step=7, batch=2)
    assert all(np.array_equal(x, y) for x, y in zip(first, again, strict=True))
    assert "camera" in describe(cfg, ["photos/train"]) and "cut-outs" in describe(cfg, None)
    assert "camera" not in describe(DataConfig(), None)
    assert DataConfig().scene == "layers"
    with pytest.raises(ConfigError, match="scene"):
        DataConfig(scene="video")
    with pytest.raises(ConfigError, match="source_size"):
        CameraConfig(source_size=(300.0, 100.0))
    parser = argparse.ArgumentParser()
    train_mod.add_arguments(parser)
    args = parser.parse_args(["--out", str(tmp_path), "--scene", "camera", "--cutouts", "objs"])
    made = data_config(args, 64)
    assert made.scene == "camera" and made.cutouts == "objs" and made.crop == 64
    assert data_config(parser.parse_args(["--out", str(tmp_path)]), 64) == DataConfig(crop=64)
    assert made.camera == CameraConfig()  # the validation clips' motion unless told otherwise
    bigger = data_config(parser.parse_args(
        ["--out", str(tmp_path), "--scene", "camera", "--camera-shift", "6", "0.3", "--max-displacement", "12"]), 64)
    assert (bigger.camera.shift_median, bigger.camera.object_shift_median, bigger.camera.tail_prob,
            bigger.camera.max_shift) == (6.0, 6.0, 0.3, 12.0)  # fmt: skip


def test_photographic_stamp_selection() -> None:
    rng = np.random.default_rng(0)
    photo = np.zeros((80, 80, 4), np.uint8)
    photo[..., :3] = rng.integers(0, 256, (80, 80, 3))
    photo[10:70, 10:70, 3] = 255
    drawing = photo.copy()
    drawing[..., :3] = 40
    drawing[30:50, 30:50, :3] = 200
    assert photos.is_photographic(photo, "animals/cat.png")
    assert not photos.is_photographic(drawing, "animals/cat.png")
    assert not photos.is_photographic(photo, "animals/cartoon/cat.png")
    assert not photos.is_photographic(photo, "animals/cat_outline.png")


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs Debian's dpkg-deb")
def test_cutout_cache_from_a_real_deb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, debian_package) -> None:
    root = tmp_path / "pkgroot"
    stamps = root / "usr/share/tuxpaint/stamps/animals"
    stamps.mkdir(parents=True)
    rng = np.random.default_rng(1)
    rgba = np.zeros((90, 120, 4), np.uint8)
    rgba[..., :3] = rng.integers(0, 256, (90, 120, 3))
    rgba[10:80, 10:110, 3] = 255
    Image.fromarray(rgba).save(stamps / "cat.png")  # a photograph
    drawn = rgba.copy()
    drawn[..., :3] = 90
    Image.fromarray(drawn).save(stamps / "dog.png")  # a flat drawing
    Image.fromarray(rgba).save(stamps / "cow.png")  # the PNG preview of an SVG stamp
    (stamps / "cow.svg").write_text("<svg/>")
    cache = tmp_path / "cache"
    debian_package(root, cache, "stir-test-stamps", "2.0-1", "Files: *\nCopyright: someone\nLicense: GPL-2\n")
    monkeypatch.setattr(photos, "CUTOUT_SOURCE", photos.PhotoSource("stir-test-stamps", "usr/share/tuxpaint/stamps",
                                                                     ("**/*.png",)))  # fmt: skip
    records = photos.build_cutouts(cache, max_size=64, log=lambda m: None)
    assert [r["name"] for r in records] == ["stir-test-stamps__animals_cat.png"]
    assert records[0]["licence"] == "GPL-2" and records[0]["version"] == "2.0-1"
    assert "stir-test-stamps__animals_cat.png" in (cache / "cutouts/ATTRIBUTION.md").read_text()
    (cut,) = load_cutouts(str(cache / "cutouts"))
    assert cut.shape == (2, 48, 64) and float(cut[1].min()) == 0.0 and float(cut[1].max()) == 1.0
