# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Tests of the training-data recipe.

Heavy-tailed motion, texture-weighted crops, the photo cache builder (on a real .deb made here),
and the weight average (EMA) with exact resume.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from stir_ros.core.errors import ConfigError
from stir_ros.training.scenes import (
    gaussian_blur,
    make_training_batch,
    mean_gradient,
    random_trajectory,
    spectral_lowpass,
)
from stir_ros.models import read_checkpoint
from stir_ros.training import photos
from stir_ros.training import train as train_mod
from stir_ros.training.data_args import data_config, validation_config
from stir_ros.training.data import DataConfig, describe
from stir_ros.training.windows import WindowShape


def _end_to_end(motion: str, seed: int = 0) -> torch.Tensor:
    traj = random_trajectory(
        61, max_displacement=16.0, static_prob=0.0, motion=motion, batch_shape=(4000,), seed=seed
    )
    return (traj.shift[:, -1] - traj.shift[:, 0]).norm(dim=-1)


def test_heavy_tail_motion_is_mostly_small_with_a_tail() -> None:
    uniform, heavy = _end_to_end("uniform"), _end_to_end("heavy-tail")
    assert heavy.max() <= 16.0 + 1e-4
    # Three quarters of the layers move within 3 px; the tail still reaches far.
    assert 0.70 <= (heavy <= 3.0 + 1e-4).float().mean() <= 0.85
    assert (heavy > 6).float().mean() > 0.05
    assert heavy.median() < 3.0 < uniform.median()
    with pytest.raises(ConfigError, match="motion"):
        random_trajectory(5, motion="teleport", seed=0)


def test_texture_candidates_pick_textured_crops() -> None:
    # Half flat, half textured: plain crops land on the flat half half the time.
    img = np.full((256, 512), 0.5, np.float32)
    img[:, 256:] = np.random.default_rng(0).uniform(0, 1, (256, 256))

    def flat_fraction(k: int) -> float:
        gen = torch.Generator().manual_seed(1)
        _, gt = make_training_batch([img], WindowShape(64, 5, 32, 32), generator=gen, static_prob=1.0, texture_candidates=k)
        return float(np.mean([mean_gradient(g[0]) < 0.05 for g in gt]))

    plain, picky = flat_fraction(1), flat_fraction(4)
    assert plain > 0.25 and picky < plain / 4
    with pytest.raises(ConfigError, match="texture_candidates"):
        DataConfig(texture_candidates=0)


def test_default_recipe_stream_unchanged_by_new_options() -> None:
    """motion='uniform' and one candidate draw exactly what the recipe drew before the options."""
    img = np.random.default_rng(3).uniform(0, 1, (128, 128)).astype(np.float32)
    a = make_training_batch([img], WindowShape(2, 9, 32, 32), generator=torch.Generator().manual_seed(5), num_layers=2)
    b = make_training_batch(
        [img], WindowShape(2, 9, 32, 32), generator=torch.Generator().manual_seed(5), num_layers=2,
        motion="uniform", texture_candidates=1,
    )  # fmt: skip
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


# --------------------------------------------------------------------------- photo cache


def _photo_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, debian_package) -> tuple[Path, photos.PhotoSource]:
    """A cache folder whose ``debs/`` holds a real Debian package of two photographs, the only source of ``build``."""
    cache = tmp_path / "cache"
    source = _fake_package(tmp_path, cache, debian_package)
    monkeypatch.setattr(photos, "SOURCES", (source,))
    return cache, source


def _fake_package(tmp_path: Path, cache: Path, debian_package) -> photos.PhotoSource:
    """A real Debian package holding two photographs and a DEP-5 copyright file."""
    root = tmp_path / "pkgroot"
    pics = root / "usr/share/backgrounds"
    pics.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ("forest_by_A.jpg", "river_by_B.png"):
        Image.fromarray(rng.integers(0, 255, (300, 600, 3), dtype=np.uint8)).save(pics / name)
    debian_package(root, cache, "stir-test-photos", "1.0-1",
                   "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
                   "Files: *\nCopyright: someone\nLicense: GPL-2+\n\n"
                   "Files: backgrounds/forest_by_A.jpg\nCopyright: A\nLicense: CC-BY-4.0\n")  # fmt: skip
    return photos.PhotoSource("stir-test-photos", "usr/share/backgrounds", ("*_by_*",))


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs Debian's dpkg-deb")
def test_photo_cache_from_a_real_deb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, debian_package) -> None:
    cache, source = _photo_cache(tmp_path, monkeypatch, debian_package)
    records = photos.build(cache, max_size=200, log=lambda m: None)
    items = records["train"] + records["val"]
    assert sorted(r["name"] for r in items) == [
        "stir-test-photos__forest_by_A.png", "stir-test-photos__river_by_B.png",
    ]  # fmt: skip
    by_name = {r["name"]: r for r in items}
    assert by_name["stir-test-photos__forest_by_A.png"]["licence"] == "CC-BY-4.0"
    assert by_name["stir-test-photos__river_by_B.png"]["licence"] == "GPL-2+"
    assert all(r["version"] == "1.0-1" for r in items)
    for r in items:
        split = "val" if photos.is_validation(r["name"]) else "train"
        with Image.open(cache / split / r["name"]) as im:
            assert im.mode == "L" and max(im.size) == 200
    assert "CC-BY-4.0" in (cache / "ATTRIBUTION.md").read_text()
    # A pattern that matches nothing is an error naming the package, not an empty data set.
    monkeypatch.setattr(photos, "SOURCES", (photos.PhotoSource(source.package, source.folder, ("nope.jpg",)),))
    with pytest.raises(ConfigError, match="stir-test-photos 1.0-1 has no"):
        photos.build(cache, max_size=200, log=lambda m: None)


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs Debian's dpkg-deb")
def test_photo_cache_deletes_and_overwrites_only_what_it_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              debian_package) -> None:  # fmt: skip
    """The user's own folder or files under the names the cache uses are refused, never removed."""
    cache, source = _photo_cache(tmp_path, monkeypatch, debian_package)
    own = cache / "pkgs" / source.package
    for path, text, refused in [
        (cache / "ATTRIBUTION.md", "# My photographs\n", cache / "ATTRIBUTION.md"),
        (cache / "sources.json", "[]", cache / "sources.json"),
        (own / "notes.txt", "a folder of mine that happens to share the name", own),
    ]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        with pytest.raises(ConfigError, match=re.escape(f"'{refused}' exists and was not ") + "(made|written)"):
            photos.build(cache, max_size=200, log=lambda m: None)
        assert path.read_text() == text  # neither removed nor overwritten
        path.unlink()  # the user moves it away, as the message says
        if refused == own:
            own.rmdir()
    # An unpack of its own that was interrupted (its marker, no photographs yet) is made again.
    assert not own.exists()
    own.mkdir()
    (own / photos.MARKER).write_text("")
    (own / "half-unpacked").write_text("")
    records = photos.build(cache, max_size=200, log=lambda m: None)
    assert len(records["train"] + records["val"]) == 2
    assert not (own / "half-unpacked").exists() and (own / photos.MARKER).is_file()
    assert photos.build(cache, max_size=200, log=lambda m: None) == records  # its own files: built again


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs Debian's dpkg-deb")
@pytest.mark.parametrize("stop", [KeyboardInterrupt(), ConfigError("dpkg-deb -x failed: No space left on device")],
                         ids=["ctrl-c", "disk-full"])  # fmt: skip
def test_an_interrupted_unpack_is_unpacked_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, debian_package,
                                                 stop: BaseException) -> None:  # fmt: skip
    """dpkg-deb -x stopped half-way leaves the package's folder with part of its files: a rerun redoes it."""
    cache, source = _photo_cache(tmp_path, monkeypatch, debian_package)
    real_run = photos._run

    def stopped_half_way(cmd: list[str], cwd: Path) -> None:
        real_run(cmd, cwd)
        if cmd[0] == "dpkg-deb":  # what it leaves when stopped: the folders and some of the files
            (Path(cmd[-1]) / source.folder / "river_by_B.png").unlink()
            raise stop

    monkeypatch.setattr(photos, "_run", stopped_half_way)
    with pytest.raises(type(stop)):
        photos.build(cache, max_size=200, log=lambda m: None)
    monkeypatch.setattr(photos, "_run", real_run)
    records = photos.build(cache, max_size=200, log=lambda m: None)
    assert sorted(r["name"] for r in records["train"] + records["val"]) == [
        "stir-test-photos__forest_by_A.png", "stir-test-photos__river_by_B.png",
    ]  # fmt: skip
    # Complete now: the next run uses the unpacked files as they are (a file of them gone stays gone).
    (cache / "pkgs" / source.package / source.folder / "river_by_B.png").unlink()
    again = photos.build(cache, max_size=200, log=lambda m: None)
    assert [r["name"] for r in again["train"] + again["val"]] == ["stir-test-photos__forest_by_A.png"]
    # A newer .deb of the package is unpacked, not the old version's files used under its number.
    debian_package(tmp_path / "pkgroot", cache, source.package, "1.1-1", "Files: *\nCopyright: A\nLicense: MIT\n")
    newer = photos.build(cache, max_size=200, log=lambda m: None)
    assert [(r["version"], r["licence"]) for r in newer["train"] + newer["val"]] == [("1.1-1", "MIT")] * 2


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs Debian's dpkg-deb")
def test_an_interrupted_download_is_downloaded_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     debian_package) -> None:  # fmt: skip
    """``apt-get download`` stopped half-way (Ctrl-C, a dropped connection) leaves no .deb that every rerun fails on."""
    cache, source = _photo_cache(tmp_path, monkeypatch, debian_package)
    deb = next((cache / "debs").glob("*.deb"))
    whole = deb.read_bytes()
    deb.unlink()  # not downloaded yet: apt-get (below, as it behaves) writes it where it runs
    real_run = photos._run
    downloads: list[Path] = []

    def apt_get(cut_short: bool) -> Callable[[list[str], Path], None]:
        def run(cmd: list[str], cwd: Path) -> None:
            if cmd[0] != "apt-get":
                return real_run(cmd, cwd)
            downloads.append(cwd)
            (cwd / deb.name).write_bytes(whole[: len(whole) // 3] if cut_short else whole)
            if cut_short:
                raise KeyboardInterrupt

        return run

    monkeypatch.setattr(photos, "_run", apt_get(cut_short=True))
    with pytest.raises(KeyboardInterrupt):
        photos.build(cache, max_size=200, log=lambda m: None)
    monkeypatch.setattr(photos, "_run", apt_get(cut_short=False))
    records = photos.build(cache, max_size=200, log=lambda m: None)  # was: dpkg-deb failed on the third of a .deb
    assert len(records["train"] + records["val"]) == 2
    assert len(downloads) == 2 and (cache / "debs" / deb.name).read_bytes() == whole
    # A .deb damaged some other way is named in the error, with what to do.
    (cache / "debs" / deb.name).write_bytes(whole[: len(whole) // 3])
    (cache / "pkgs" / source.package / photos._COMPLETE).unlink()
    with pytest.raises(ConfigError, match=re.escape(f"'{cache / 'debs' / deb.name}' is damaged") + ".*delete it"):
        photos.build(cache, max_size=200, log=lambda m: None)


def _unlink_stopped_after(count: int, removed: list[str]) -> Callable[..., None]:
    """``os.unlink`` that is stopped (KeyboardInterrupt, as by Ctrl-C) right after its ``count``-th removal."""
    real_unlink = os.unlink

    def unlink(path: str, *args: Any, **kwargs: Any) -> None:
        real_unlink(path, *args, **kwargs)
        removed.append(os.fspath(path))
        if len(removed) == count:
            raise KeyboardInterrupt

    return unlink


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs Debian's dpkg-deb")
def test_a_folder_whose_removal_was_interrupted_is_still_ours(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              debian_package) -> None:  # fmt: skip
    """Ctrl-C at any point while an incomplete unpack of ours is removed: the rerun still knows the folder as its own."""
    cache, source = _photo_cache(tmp_path, monkeypatch, debian_package)
    own = cache / "pkgs" / source.package
    for stop_after in (1, 2, 3):  # the marker and two files: whatever order the removal takes them in
        shutil.rmtree(own, ignore_errors=True)
        (own / "usr/share/backgrounds").mkdir(parents=True)
        for name in (photos.MARKER, "usr/share/backgrounds/forest_by_A.jpg", "usr/share/backgrounds/river_by_B.png"):
            (own / name).write_text("")  # an unpack of ours that was stopped half-way (no .complete)
        removed: list[str] = []
        with monkeypatch.context() as patch, contextlib.suppress(KeyboardInterrupt):
            patch.setattr(os, "unlink", _unlink_stopped_after(stop_after, removed))
            photos.build(cache, max_size=200, log=lambda m: None)
        records = photos.build(cache, max_size=200, log=lambda m: None)
        assert len(records["train"] + records["val"]) == 2, f"stopped after removing {removed}"
        assert (own / photos.MARKER).is_file()


def test_validation_split_is_stable_and_about_the_configured_fraction() -> None:
    names = [f"pkg__image_{i}.png" for i in range(2000)]
    held = [n for n in names if photos.is_validation(n)]
    assert abs(len(held) / len(names) - photos.VAL_FRACTION) < 0.03
    assert held == [n for n in names if photos.is_validation(n)]


# --------------------------------------------------------------------------- weight average


#: On top of the shared tiny run (conftest ``train_args``): a weight average, heavy-tailed motion
#: and two texture candidates.
EMA_RUN = ("--ema", "0.9", "--motion", "heavy-tail", "--texture-candidates", "2")


def test_weight_average_math() -> None:
    model = torch.nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.fill_(0.0)
    avg = train_mod.WeightAverage(model, 0.5)
    with torch.no_grad():
        model.weight.fill_(1.0)
    avg.update(model)  # first update: decay min(0.5, 1/10) = 0.1
    assert torch.allclose(avg.state["weight"], torch.full((1, 2), 0.9))
    with pytest.raises(ConfigError, match="--ema"):
        train_mod.WeightAverage(model, 1.0)


def test_ema_snapshots_and_exact_resume(tmp_path: Path, train_args) -> None:
    full = tmp_path / "full"
    train_mod.train(train_args(full, *EMA_RUN, "--snapshot-every", "3"))
    split = tmp_path / "split"
    train_mod.train(train_args(split, *EMA_RUN, "--stop-at", "2"))
    train_mod.train(train_args(split, *EMA_RUN, "--resume", str(split / "last.pt")))
    a, b = read_checkpoint(full / "last.pt"), read_checkpoint(split / "last.pt")
    for k, v in a["extra"]["ema"]["weights"].items():
        assert torch.equal(v, b["extra"]["ema"]["weights"][k]), k
    # The snapshot holds the averaged weights, not the raw ones.
    snap = read_checkpoint(full / "step_000003.pt")["state_dict"]
    raw = a["state_dict"]
    ema = a["extra"]["ema"]["weights"]
    key = next(k for k in raw if raw[k].is_floating_point() and "running" not in k)
    assert torch.allclose(snap[key].float(), ema[key], atol=1e-3)
    assert not torch.equal(snap[key].float(), raw[key].float())
    # Resuming a run without an average with --ema is refused, not silently restarted.
    plain = tmp_path / "plain"
    train_mod.train(train_args(plain, *EMA_RUN, "--ema", "0"))
    with pytest.raises(ConfigError, match="without --ema"):
        train_mod.train(train_args(plain, *EMA_RUN, "--resume", str(plain / "last.pt")))


def test_target_offset_puts_the_target_between_two_frames() -> None:
    img = np.random.default_rng(4).uniform(0, 1, (128, 128)).astype(np.float32)

    def batch(offset: float) -> tuple[torch.Tensor, torch.Tensor]:
        gen = torch.Generator().manual_seed(6)
        return make_training_batch([img], WindowShape(3, 9, 32, 32), generator=gen, num_layers=2, max_displacement=8.0,
                                   static_prob=0.0, target_offset=offset)  # fmt: skip

    (s0, gt0), (s5, gt5) = batch(0.0), batch(0.5)
    # The same draws: the target is the same unwarped crop, only the frames' times move.
    assert torch.equal(gt0, gt5) and not torch.equal(s0, s5)
    # The identity falls between frames 30 and 31 of a 61-frame window: every moving layer's
    # shift changes sign there (the linear term dominates a half-frame step).
    traj = random_trajectory(61, max_displacement=16.0, static_prob=0.0, batch_shape=(500,), centre=30.5, seed=1)
    before, after = traj.shift[:, 30], traj.shift[:, 31]
    assert float(((before * after) <= 0).all(-1).float().mean()) > 0.95
    assert torch.allclose(before, -after, atol=0.02)
    with pytest.raises(ConfigError, match="target_offset"):
        DataConfig(target_offset=1.0)
    with pytest.raises(ConfigError, match="camera"):
        DataConfig(target_offset=0.5, scene="camera")
    with pytest.raises(ConfigError, match="target_offset"):
        make_training_batch([img], WindowShape(1, 9, 32, 32), target_offset=-1.5)


def test_curvature_zero_gives_straight_paths_at_constant_speed() -> None:
    curved = random_trajectory(61, max_displacement=16.0, static_prob=0.0, batch_shape=(200,), seed=2)
    straight = random_trajectory(61, max_displacement=16.0, static_prob=0.0, batch_shape=(200,), seed=2, curvature=0.0)
    steps = straight.shift.diff(dim=-2)
    assert torch.allclose(steps, steps[:, :1].expand_as(steps), atol=1e-4)  # the same step every frame
    assert torch.allclose(straight.shift[:, 0], -straight.shift[:, -1], atol=1e-4)
    # Same draws: the linear term (first-to-last displacement) is unchanged, only the bend goes.
    assert torch.allclose(curved.shift[:, -1] - curved.shift[:, 0], straight.shift[:, -1] - straight.shift[:, 0], atol=1e-4)
    assert float((curved.shift[:, 0] + curved.shift[:, -1]).norm(dim=-1).mean()) > 1.0
    with pytest.raises(ConfigError, match="curvature"):
        DataConfig(curvature=-1.0)



def test_min_displacement_keeps_moving_layers_in_a_ring() -> None:
    def shifts(**kw: float) -> torch.Tensor:
        traj = random_trajectory(61, max_displacement=12.0, batch_shape=(2000,), seed=4, curvature=0.0, **kw)
        return (traj.shift[:, -1] - traj.shift[:, 0]).norm(dim=-1)

    whole, ring = shifts(), shifts(min_displacement=6.0)
    assert torch.equal(whole, shifts(min_displacement=0.0))  # the default draws what it drew before
    moving = ring[ring > 0]
    assert 0.85 < len(moving) / len(ring) < 0.95  # static windows stay (static_prob 0.1)
    assert float(moving.min()) >= 6.0 - 1e-3 and float(moving.max()) <= 12.0 + 1e-3
    # Uniform in the ring's area: (9^2 - 6^2) / (12^2 - 6^2) of it lies inside 9 px.
    assert abs(float((moving < 9).float().mean()) - 45 / 108) < 0.04
    assert float((whole[whole > 0] < 6).float().mean()) > 0.2  # the disc has the small shifts
    for bad in ({"min_displacement": 13.0}, {"min_displacement": -1.0}):
        with pytest.raises(ConfigError, match="min_displacement"):
            DataConfig(max_displacement=12.0, **bad)
    with pytest.raises(ConfigError, match="min_displacement"):
        DataConfig(max_displacement=12.0, min_displacement=4.0, motion="heavy-tail")
    with pytest.raises(ConfigError, match="min_displacement"):
        random_trajectory(9, max_displacement=4.0, min_displacement=2.0, motion="heavy-tail", seed=0)


def test_validation_windows_follow_the_target_offset(tmp_path: Path, train_args) -> None:
    """The target's time is part of the task: a run trained half a frame later is validated so."""
    later = validation_config(train_args(tmp_path, "--target-offset", "0.5", "--scene", "camera"))
    assert later.target_offset == 0.5 and later.scene == "layers"  # the recipe's scene does not carry over
    assert validation_config(train_args(tmp_path)).target_offset == 0.0


def test_input_blur_softens_the_spikes_not_the_target() -> None:
    stripes = np.zeros((128, 128), np.float32)
    stripes[:, ::2] = 1.0  # one-pixel stripes: a blur of 1 px all but removes them

    def batch(blur: float) -> tuple[torch.Tensor, torch.Tensor]:
        gen = torch.Generator().manual_seed(3)
        return make_training_batch([stripes], WindowShape(4, 41, 32, 32), generator=gen, static_prob=1.0, input_blur=blur)

    (s0, gt0), (s1, gt1) = batch(0.0), batch(3.0)
    assert torch.equal(gt0, gt1)  # the same sharp target
    contrast = lambda s: float((s.mean(1)[..., 1:] - s.mean(1)[..., :-1]).abs().mean())  # noqa: E731
    assert contrast(s1) < 0.5 * contrast(s0)  # the spike rates lose the stripes
    # The kernel: normalised, Gaussian, and a no-op at sigma 0.
    impulse = torch.zeros(1, 21, 21)
    impulse[0, 10, 10] = 1.0
    blurred = gaussian_blur(impulse, 1.0)
    assert abs(float(blurred.sum()) - 1) < 1e-5 and abs(float(blurred[0, 10, 11] / blurred[0, 10, 10]) - np.exp(-0.5)) < 1e-5
    assert torch.equal(gaussian_blur(impulse, 0.0), impulse)
    with pytest.raises(ConfigError, match="input_blur"):
        DataConfig(input_blur=-0.5)


def test_input_lowpass_removes_fine_detail_keeps_coarse_and_the_target() -> None:
    def batch(period: int, lowpass: tuple[float, float] | None) -> tuple[torch.Tensor, torch.Tensor]:
        stripes = np.zeros((128, 128), np.float32)
        stripes[:, (np.arange(128) % period) < period // 2] = 1.0
        gen = torch.Generator().manual_seed(3)
        return make_training_batch([stripes], WindowShape(4, 41, 32, 32), generator=gen, static_prob=1.0, input_lowpass=lowpass)

    contrast = lambda s: float(s.mean(1).std(-1).mean())  # noqa: E731
    for period, kept in ((2, False), (16, True)):
        (s0, gt0), (s1, gt1) = batch(period, None), batch(period, (0.45, 0.5))
        assert torch.equal(gt0, gt1)  # the same sharp target
        ratio = contrast(s1) / contrast(s0)
        # Unlike a Gaussian blur, the filter is flat at low frequencies and steep near Nyquist.
        assert (ratio > 0.9) if kept else (ratio < 0.5), (period, ratio)
    # Hard edges ring under the filter; the frames the spikes are made from stay in [0, 1].
    step = torch.zeros(32, 32)
    step[:, 16:] = 1.0
    assert float(spectral_lowpass(step, 0.45).min()) < -0.01
    edges = np.zeros((128, 128), np.float32)
    edges[:, (np.arange(128) % 6) < 3] = 1.0  # unfiltered, the light ones' rate is alpha; filtered, 1.12 alpha
    spikes, _ = make_training_batch([edges], WindowShape(2, 401, 32, 32), generator=torch.Generator().manual_seed(1),
                                    static_prob=1.0, input_lowpass=(0.45, 0.45))  # fmt: skip
    assert float(spikes.mean(1).max()) <= 0.6 + 0.01  # alpha * 1 at most: no intensity above 1
    # The gain is exp(-(f / cutoff) ** 3.6): 1/e at the cutoff, ~1 at a quarter of it.
    x = torch.arange(64, dtype=torch.float32)
    for freq, cutoff in ((0.25, 0.25), (0.0625, 0.25), (0.5, 0.45)):
        wave = torch.cos(2 * np.pi * freq * x)[None].expand(64, 64)
        inner = (slice(16, -16), slice(16, -16))
        gain = float((spectral_lowpass(wave, cutoff) * wave)[inner].sum() / (wave * wave)[inner].sum())
        assert abs(gain - np.exp(-((freq / cutoff) ** 3.6))) < 1e-3, (freq, cutoff, gain)
    for bad in ((0.6, 0.5), (0.0, 0.5), (0.5, 9.0)):
        with pytest.raises(ConfigError, match="input_lowpass"):
            DataConfig(input_lowpass=bad)
    with pytest.raises(ConfigError, match="cutoff"):
        spectral_lowpass(wave, 0.0)


def test_sharpness_and_motion_flags_reach_the_data_and_the_metadata(tmp_path: Path, train_args) -> None:
    args = train_args(tmp_path, "--input-lowpass", "0.45", "0.6")
    config = data_config(args, 32)
    assert config.input_lowpass == (0.45, 0.6)
    assert "input low-pass cutoff 0.45-0.6 cycles/px" in describe(config, None)
    assert data_config(train_args(tmp_path), 32).input_lowpass is None
    ring = data_config(train_args(tmp_path, "--max-displacement", "12", "--min-displacement", "6"), 32)
    assert ring.min_displacement == 6.0 and "moving layers shift>=6px" in describe(ring, None)


def _data_gap_module():  # noqa: ANN202 - a module loaded from scripts/
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "scripts" / "data_gap.py"
    spec = importlib.util.spec_from_file_location("data_gap", path)
    assert spec is not None and spec.loader is not None
    gap = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gap)
    return gap


def test_data_gap_script_recovers_a_known_low_pass() -> None:
    """scripts/data_gap.py's measurement: a transfer function and its fit, on an image filtered by a known law."""
    gap = _data_gap_module()
    gt = torch.from_numpy(np.random.default_rng(0).uniform(0, 1, (160, 224)).astype(np.float32))
    soft = spectral_lowpass(gt, 0.5).numpy()
    freqs, gains = gap.transfer(soft, gt.numpy())
    expected = np.exp(-((freqs / 0.5) ** 3.6))
    assert np.abs(gains - expected).max() < 0.03, gains
    f0, order = gap.fit_lowpass(freqs, gains)
    assert abs(f0 - 0.5) < 0.02 and abs(order - 3.6) < 0.3, (f0, order)
    _, same = gap.transfer(gt.numpy(), gt.numpy())
    assert np.allclose(same, 1.0) and all(np.isnan(gap.fit_lowpass(freqs, same)))
    # The flow in time: linear through the measured ones and zero at the ground truth's time.
    flows = {10: torch.ones(2, 2, 2), 20: 2 * torch.ones(2, 2, 2)}
    for t, expected in ((0.0, 0.0), (5.0, 0.5), (15.0, 1.5), (25.0, 2.5), (-5.0, -0.5)):
        assert torch.allclose(gap.flow_at(flows, 0.0, t), torch.full((2, 2, 2), expected)), t


def test_data_gap_by_time_tells_a_low_pass_of_the_data() -> None:
    """``data_gap.py --by-time``: spikes of the same scene match at every distance; a low-passed source does not."""
    gap = _data_gap_module()
    rng = np.random.default_rng(3)
    noise = torch.from_numpy(rng.uniform(0, 1, (160, 224)).astype(np.float32))
    gt = (0.2 + 0.6 * spectral_lowpass(noise, 0.45)).clamp(0, 1).numpy()  # textured, inside (0, 1)
    centre, gt_time = 60, 60.5
    flows = {centre + dt: torch.full((160, 224, 2), 0.08 * (centre + dt - gt_time)) for dt in gap.FLOW_TIMES}
    times = np.arange(2 * centre + 1)
    same = gap.simulated(gt, flows, gt_time, times, seed=99)
    blurred = gap.simulated(spectral_lowpass(torch.from_numpy(gt), 0.4).numpy(), flows, gt_time, times, seed=99)
    for lo, hi, real, sim in gap.detail_by_time(same, gt, flows, gt_time):
        assert 0.8 < real / sim < 1.25, (lo, hi, real, sim)
    for lo, hi, real, sim in gap.detail_by_time(blurred, gt, flows, gt_time):
        assert real / sim < 0.6, (lo, hi, real, sim)
