# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Training windows rendered between two frames of real video (stir_ros.training.video)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stir_ros.core.errors import ConfigError
from stir_ros.models import read_checkpoint
from stir_ros.training import photos
from stir_ros.training import train as train_mod
from stir_ros.training.data import DataConfig, SyntheticSpikeData
from stir_ros.training.sources import load_clips
from stir_ros.training.video import interpolate_frames, make_video_batch, optical_flow
from stir_ros.training.windows import WindowShape

cv2 = pytest.importorskip("cv2")


def _texture(size: tuple[int, int], seed: int = 0) -> np.ndarray:
    """Smooth random texture in [0, 1] (blurred noise: optical flow can lock on to it)."""
    rng = np.random.default_rng(seed)
    noise = rng.uniform(0, 1, size).astype(np.float32)
    return np.clip(cv2.GaussianBlur(noise, (0, 0), 2.0) * 3 - 1, 0, 1).astype(np.float32)


def _panning_clip(frames: int, step_px: int, seed: int = 0) -> np.ndarray:
    """A camera panning right by ``step_px`` per frame over a wide texture: ``[N, 96, 128]``."""
    wide = _texture((96, 128 + frames * step_px), seed)
    return np.stack([wide[:, k * step_px : k * step_px + 128] for k in range(frames)])


def _write_clips(folder: Path, clips: dict[str, np.ndarray]) -> Path:
    for name, frames in clips.items():
        (folder / name).mkdir(parents=True)
        for k, f in enumerate(frames):
            Image.fromarray(np.round(f * 255).astype(np.uint8)).save(folder / name / f"{k:05d}.png")
    return folder


def test_flow_and_interpolation_follow_a_pan() -> None:
    clip = torch.from_numpy(_panning_clip(2, 6))
    a, b = clip[0], clip[1]
    f_ab, f_ba = optical_flow(a, b), optical_flow(b, a)
    inner = (slice(16, -16), slice(16, -16))
    # The view pans right, so content moves 6 px left: a(p) = b(p - (6, 0)).
    assert abs(float(f_ab[inner][..., 0].median()) + 6) < 0.3 and abs(float(f_ab[inner][..., 1].median())) < 0.3
    assert abs(float(f_ba[inner][..., 0].median()) - 6) < 0.3
    ends = interpolate_frames(a, b, f_ab, f_ba, torch.tensor([0.0, 1.0]))
    assert torch.allclose(ends[0], a, atol=1e-5) and torch.allclose(ends[1], b, atol=1e-5)
    # Halfway: the view has panned 3 px, which this clip knows exactly.
    mid = interpolate_frames(a, b, f_ab, f_ba, torch.tensor([0.5]), top=16, left=16, size=(64, 96))[0]
    truth = torch.from_numpy(_texture((96, 128 + 12), 0)[16:80, 19 : 19 + 96])
    blend = 0.5 * (a + b)[16:80, 16:112]
    err_mid, err_blend = (mid - truth).abs().mean(), (blend - truth).abs().mean()
    assert err_mid < 0.02 and err_mid < err_blend / 4, (err_mid, err_blend)


def test_video_windows_are_deterministic_and_capped() -> None:
    clips = [torch.from_numpy(_panning_clip(6, 5, seed)) for seed in (1, 2)]

    def draw(seed: int, **kw: float) -> tuple[torch.Tensor, torch.Tensor]:
        return make_video_batch(clips, WindowShape(3, 21, 32, 32), alpha=0.6, generator=torch.Generator().manual_seed(seed), **kw)

    s1, gt1 = draw(4, max_displacement=8.0, texture_candidates=3)
    s2, gt2 = draw(4, max_displacement=8.0, texture_candidates=3)
    assert s1.shape == (3, 21, 32, 32) and gt1.shape == (3, 1, 32, 32)
    assert torch.equal(s1, s2) and torch.equal(gt1, gt2)
    assert set(torch.unique(s1).tolist()) <= {0.0, 1.0} and 0 <= float(gt1.min()) and float(gt1.max()) <= 1
    # No displacement allowed: every frame is the target, so each pixel fires alpha * gt per frame.
    for offset in (0.0, 0.5):
        spikes, gt = draw(5, max_displacement=0.0, target_offset=offset)
        rate = spikes.mean(1, keepdim=True)
        assert (rate - 0.6 * gt).abs().max() <= 1 / 21 + 1e-6
    # Half a frame later: the same draws and target time, the frames half a frame earlier.
    (s0, gt0), (s5, gt5) = draw(4, max_displacement=8.0), draw(4, max_displacement=8.0, target_offset=0.5)
    assert torch.equal(gt0, gt5) and not torch.equal(s0, s5)
    with pytest.raises(ConfigError, match="at least one clip"):
        make_video_batch([], WindowShape(1, 5, 16, 16))


def test_load_clips_reads_folders_and_refuses_what_is_not_a_clip(tmp_path: Path) -> None:
    root = _write_clips(tmp_path / "video", {"pan": _panning_clip(3, 4), "still": _panning_clip(1, 4)})
    clips = load_clips(root, max_size=64)
    assert len(clips) == 1 and clips[0].shape == (3, 48, 64)  # a one-frame folder is not a clip
    with pytest.raises(ConfigError, match="stir-ros data --videos"):
        load_clips(tmp_path / "missing")
    with pytest.raises(ConfigError, match="no clip"):
        load_clips(_write_clips(tmp_path / "single", {"one": _panning_clip(1, 4)}))
    odd = _write_clips(tmp_path / "odd", {"pan": _panning_clip(2, 4)})
    Image.new("L", (10, 10)).save(odd / "pan" / "00002.png")
    with pytest.raises(ConfigError, match="differ in size"):
        load_clips(odd)


def test_video_fraction_mixes_and_leaves_other_streams_alone(tmp_path: Path) -> None:
    root = _write_clips(tmp_path / "video", {"pan": _panning_clip(4, 4)})
    img = np.random.default_rng(3).uniform(0, 1, (128, 128)).astype(np.float32)
    plain = DataConfig(crop=32, window_length=9)
    off = DataConfig(crop=32, window_length=9, videos=str(root), video_fraction=0.0)
    a = SyntheticSpikeData([img], plain, torch.Generator().manual_seed(2)).sample(3)
    b = SyntheticSpikeData([img], off, torch.Generator().manual_seed(2)).sample(3)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    # All video: the targets are crops of the clip (smooth texture), never the uniform noise image.
    only = DataConfig(crop=32, window_length=9, videos=str(root), video_fraction=1.0, max_displacement=4.0)
    _, target, alpha = SyntheticSpikeData([img], only, torch.Generator().manual_seed(2)).sample(3)
    gt = target / alpha[:, None, None, None]
    assert float((gt[..., 1:, :] - gt[..., :-1, :]).abs().mean()) < 0.1  # the noise image: about 0.33
    with pytest.raises(ConfigError, match="video_fraction"):
        DataConfig(videos=str(root), video_fraction=1.5)
    with pytest.raises(ConfigError, match="needs a folder"):
        DataConfig(video_fraction=0.5)


def test_train_with_videos_records_them(tmp_path: Path, train_args) -> None:
    root = _write_clips(tmp_path / "video", {"pan": _panning_clip(4, 4)})
    out = tmp_path / "run"
    summary = train_mod.train(train_args(out, "--videos", str(root), "--video-fraction", "0.5"))
    assert summary["step"] == 3
    meta = read_checkpoint(out / "last.pt")["metadata"]
    assert "50% of the samples between two frames of the clips in video" in meta["training_data"]
    with pytest.raises(ConfigError, match="video_fraction"):
        train_mod.train(train_args(tmp_path / "bad", "--videos", str(root), "--video-fraction", "-0.1"))
    with pytest.raises(ConfigError, match="needs --videos"):  # not silently ignored
        train_mod.train(train_args(tmp_path / "bad2", "--video-fraction", "0.5"))
    assert not (tmp_path / "bad2").exists()


def _video_package(tmp_path: Path, cache: Path, debian_package) -> photos.PhotoSource:
    """A real Debian package holding one 5-frame panning clip, pan.avi (MJPG)."""
    root = tmp_path / "pkgroot"
    data = root / "usr/share/doc/stir-test-videos/examples"
    data.mkdir(parents=True)
    writer = cv2.VideoWriter(str(data / "pan.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (128, 96))
    for frame in _panning_clip(5, 4):
        writer.write(cv2.cvtColor(np.round(frame * 255).astype(np.uint8), cv2.COLOR_GRAY2BGR))
    writer.release()
    debian_package(root, cache, "stir-test-videos", "2.0-1",
                   "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
                   "Files: *\nCopyright: someone\nLicense: Apache-2.0\n")  # fmt: skip
    return photos.PhotoSource("stir-test-videos", "usr/share/doc/stir-test-videos/examples", ("pan.avi",))


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs Debian's dpkg-deb")
def test_video_cache_from_a_real_deb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, debian_package) -> None:
    cache = tmp_path / "cache"
    source = _video_package(tmp_path, cache, debian_package)
    monkeypatch.setattr(photos, "VIDEO_SOURCE", source)
    records = photos.build_videos(cache, max_size=64, log=lambda m: None)
    assert records == [{
        "name": "pan", "package": "stir-test-videos", "version": "2.0-1",
        "file": "/usr/share/doc/stir-test-videos/examples/pan.avi", "licence": "Apache-2.0", "frames": "5",
    }]  # fmt: skip
    clips = load_clips(cache / "video")
    assert len(clips) == 1 and clips[0].shape == (5, 48, 64)
    # The frames are the video's, not a blank decode: the pan shows as a shift between frames.
    assert float((clips[0][1] - clips[0][0]).abs().mean()) > 0.02
    assert "| pan | 5 | stir-test-videos | 2.0-1 |" in (cache / "video" / "ATTRIBUTION.md").read_text()
    monkeypatch.setattr(photos, "VIDEO_SOURCE", photos.PhotoSource(source.package, source.folder, ("nope.avi",)))
    with pytest.raises(ConfigError, match="stir-test-videos 2.0-1 has no"):
        photos.build_videos(cache, max_size=64, log=lambda m: None)


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs Debian's dpkg-deb")
def test_video_cache_replaces_only_a_clip_folder_it_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         debian_package) -> None:  # fmt: skip
    """A clip of the user's named like one it writes (video/pan) is refused, never removed."""
    cache = tmp_path / "cache"
    monkeypatch.setattr(photos, "VIDEO_SOURCE", _video_package(tmp_path, cache, debian_package))
    clip = cache / "video" / "pan"
    clip.mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(clip / "00000.png")
    mine = (clip / "00000.png").read_bytes()
    with pytest.raises(ConfigError, match=re.escape(f"'{clip}' exists and was not made by stir-ros data")):
        photos.build_videos(cache, max_size=64, log=lambda m: None)
    assert sorted(p.name for p in clip.iterdir()) == ["00000.png"] and (clip / "00000.png").read_bytes() == mine
    # A decode of its own that was interrupted (its marker, no .complete) is made again.
    (clip / photos.MARKER).write_text("")
    assert photos.build_videos(cache, max_size=64, log=lambda m: None)[0]["frames"] == "5"
    assert (clip / "00000.png").read_bytes() != mine and (clip / ".complete").read_text() == "5\n"
