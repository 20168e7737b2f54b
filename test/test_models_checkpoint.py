# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""stir_ros checkpoint format: round trip, safety and every error case."""

from __future__ import annotations

import pickle
import random

import pytest
import torch

from stir_ros.core.errors import CheckpointError, ConfigError
from stir_ros.models import STIR, CheckpointMetadata, load_checkpoint, read_checkpoint, save_checkpoint
from stir_ros.models.checkpoint import FORMAT, state_dict_sha256

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def model41() -> STIR:
    torch.manual_seed(0)
    model = STIR(window_length=41)
    with torch.no_grad():  # non-default batch-norm statistics, so buffers are checked too
        model.embedding.implicit.bn1.running_mean.uniform_(-1, 1)
        model.embedding.implicit.bn1.num_batches_tracked.fill_(7)
    return model.eval()


@pytest.fixture()
def saved(tmp_path, model41):
    path = tmp_path / "stir41.pt"
    save_checkpoint(path, model41, {"alpha": 0.6, "training_data": "synthetic", "steps": 12, "notes": "test"})
    return path


class _CreatesFile:
    """Unpickling this would create ``marker`` (stands in for arbitrary code)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_round_trip_bit_exact(saved, model41):
    model, meta = load_checkpoint(saved, expected_window_length=41)
    assert isinstance(model, STIR) and not model.training
    ref = model41.state_dict()
    got = model.state_dict()
    assert ref.keys() == got.keys()
    assert all(torch.equal(ref[k], got[k]) and ref[k].dtype == got[k].dtype for k in ref)
    assert meta.window_length == 41 and meta.alpha == 0.6 and meta.steps == 12
    assert meta.training_data == "synthetic" and meta.notes == "test"
    import stir_ros

    assert meta.code_version == stir_ros.__version__ and meta.created
    x = (torch.rand(1, 41, 16, 16) < 0.3).float()
    with torch.no_grad():
        assert torch.equal(model(x), model41(x))


def test_file_contents(saved):
    raw = torch.load(saved, map_location="cpu", weights_only=True)
    assert raw["format"] == FORMAT and raw["format_version"] == 1
    assert raw["model_config"]["type"] == "stir" and raw["model_config"]["window_length"] == 41
    assert raw["sha256"] == state_dict_sha256(raw["state_dict"])
    assert set(raw["metadata"]) == {
        "window_length", "alpha", "training_data", "steps", "code_version", "created", "notes"
    }


def test_checksum_is_deterministic(model41):
    state = model41.state_dict()
    shuffled = dict(reversed(list(state.items())))
    assert state_dict_sha256(state) == state_dict_sha256(shuffled)
    changed = dict(state)
    changed["decoder.full.head.bias"] = changed["decoder.full.head.bias"] + 1e-6
    assert state_dict_sha256(changed) != state_dict_sha256(state)


def test_extra_training_state(tmp_path, model41):
    opt = torch.optim.Adam(model41.parameters(), lr=1e-4)
    extra = {
        "optimizer": opt.state_dict(),
        "step": 5,
        "torch_rng": torch.get_rng_state(),
        "python_rng": random.getstate(),
    }
    path = tmp_path / "resume.pt"
    save_checkpoint(path, model41, CheckpointMetadata(window_length=41, steps=5), extra=extra)
    back = read_checkpoint(path)["extra"]
    assert back["step"] == 5 and torch.equal(back["torch_rng"], extra["torch_rng"])
    random.setstate(back["python_rng"])
    torch.optim.Adam(model41.parameters(), lr=1e-4).load_state_dict(back["optimizer"])
    with pytest.raises(ConfigError, match="weights_only"):
        save_checkpoint(tmp_path / "bad.pt", model41, extra={"thing": object()})
    assert not (tmp_path / "bad.pt").exists()


def test_save_rejects_inconsistent_metadata(tmp_path, model41):
    with pytest.raises(ConfigError, match="window_length"):
        save_checkpoint(tmp_path / "x.pt", model41, {"window_length": 61})
    with pytest.raises(ConfigError, match="unknown metadata"):
        save_checkpoint(tmp_path / "x.pt", model41, {"colour": "red"})


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found.*nothing.pt"):
        load_checkpoint(tmp_path / "nothing.pt")


def test_truncated_and_garbage(tmp_path, saved):
    data = saved.read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cut.pt"):
        load_checkpoint(cut)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00this is not a checkpoint" * 10)
    with pytest.raises(CheckpointError, match="junk.pt"):
        load_checkpoint(junk)


def test_not_our_format(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weights": [1, 2, 3]}, path)
    with pytest.raises(CheckpointError, match=r"not a stir_ros checkpoint.*stir_ros\.checkpoint"):
        load_checkpoint(path)
    torch.save(torch.zeros(3), path)
    with pytest.raises(CheckpointError, match="not a stir_ros checkpoint"):
        load_checkpoint(path)


def test_newer_format_version(tmp_path, saved):
    raw = torch.load(saved, weights_only=True)
    raw["format_version"] = 99
    path = tmp_path / "future.pt"
    torch.save(raw, path)
    with pytest.raises(CheckpointError, match="format_version 99"):
        load_checkpoint(path)


def _resave(raw, path):
    raw["sha256"] = state_dict_sha256(raw["state_dict"])
    torch.save(raw, path)
    return path


def test_wrong_architecture_keys(tmp_path, saved):
    raw = torch.load(saved, weights_only=True)
    del raw["state_dict"]["decoder.full.head.bias"]
    raw["state_dict"]["surprise.weight"] = torch.zeros(2)
    path = _resave(raw, tmp_path / "keys.pt")
    with pytest.raises(CheckpointError, match=r"decoder\.full\.head\.bias.*surprise\.weight"):
        load_checkpoint(path)
    raw = torch.load(saved, weights_only=True)
    raw["state_dict"]["decoder.full.head.bias"] = torch.zeros(2)
    path = _resave(raw, tmp_path / "shape.pt")
    with pytest.raises(CheckpointError, match=r"shape mismatch.*decoder\.full\.head\.bias"):
        load_checkpoint(path)
    raw = torch.load(saved, weights_only=True)
    raw["model_config"] = {"type": "resnet50"}
    path = _resave(raw, tmp_path / "arch.pt")
    with pytest.raises(CheckpointError, match="resnet50"):
        load_checkpoint(path)
    raw = torch.load(saved, weights_only=True)
    raw["model_config"]["window_length"] = 61
    raw["metadata"]["window_length"] = 61
    path = _resave(raw, tmp_path / "window_cfg.pt")
    with pytest.raises(CheckpointError, match="shape mismatch"):
        load_checkpoint(path)


def test_wrong_window_length(saved):
    with pytest.raises(CheckpointError, match="window_length 41, expected 61"):
        load_checkpoint(saved, expected_window_length=61)


def test_checksum_tamper(tmp_path, saved):
    raw = torch.load(saved, weights_only=True)
    raw["state_dict"]["encoder.stem.conv.weight"][0, 0, 0, 0] += 1.0
    path = tmp_path / "tampered.pt"
    torch.save(raw, path)
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        read_checkpoint(path)


@pytest.mark.parametrize("writer", ["torch", "pickle"])
def test_malicious_pickle_is_not_executed(tmp_path, writer):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    payload = {"format": FORMAT, "payload": _CreatesFile(str(marker))}
    if writer == "torch":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=2))
    # A bare pickle is not a torch file: refused from its first bytes, before any unpickling.
    expected = "refusing to load.*evil.pt" if writer == "torch" else "evil.pt is not a torch file: it is a bare pickle"
    with pytest.raises(CheckpointError, match=expected):
        load_checkpoint(path)
    assert not marker.exists()


def test_authors_state_dict_file_is_accepted(tmp_path, authors_stir):
    torch.manual_seed(0)
    official = authors_stir(spike_dim=41).eval()
    path = tmp_path / "authors.pth"
    torch.save({"module." + k: v for k, v in official.state_dict().items()}, path)
    model, meta = load_checkpoint(path, expected_window_length=41)
    assert meta.window_length == 41 and "authors" in meta.notes
    x = (torch.rand(1, 41, 16, 16) < 0.3).float()
    with torch.no_grad():
        assert (model(x) - official(x)).abs().max().item() <= 1e-4
    with pytest.raises(CheckpointError, match="expected 61"):
        load_checkpoint(path, expected_window_length=61)


@pytest.mark.parametrize(
    ("kind", "needle"),
    [
        ("empty", "is not a torch file: it is an empty file"),
        ("lfs", "is not a torch file: it is a Git LFS pointer"),
        ("html", "is not a torch file: it is an HTML/XML page"),
        ("random", "is not a torch file: it is unknown binary data"),
        ("gzip", "is not a torch file: it is a compressed archive"),
        ("directory", "is not a regular file"),
        ("deflated", "inflates"),  # 50 MB of zeros deflated to 50 kB: under the size limit, over the ratio
        ("zip_without_pickle", "is a zip archive but not a torch file"),
        ("truncated_zip", "is truncated or corrupt"),
    ],
)
def test_weights_files_are_judged_before_torch_load(tmp_path, saved, monkeypatch, kind, needle):
    import gzip
    import zipfile

    path = tmp_path / "w.pt"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "lfs":
        path.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 10261641\n")
    elif kind == "html":
        path.write_text("<html><body>Sign in to continue</body></html>")
    elif kind == "random":
        path.write_bytes(bytes(random.Random(0).randrange(128, 256) for _ in range(4096)))
    elif kind == "gzip":
        path.write_bytes(gzip.compress(saved.read_bytes()[:1000]))
    elif kind == "directory":
        path.mkdir()
    elif kind == "deflated":
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
            z.writestr("archive/data.pkl", bytes(50_000_000))
    elif kind == "zip_without_pickle":
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("readme.txt", "hello")
    else:
        path.write_bytes(saved.read_bytes()[:-100])

    def never(*args, **kwargs):
        raise AssertionError("torch.load must not see this file")

    monkeypatch.setattr(torch, "load", never)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert str(path) in message and needle in message and "\n" not in message


def test_the_legacy_torch_format_is_still_read(tmp_path, model41):
    path = tmp_path / "legacy.pt"
    torch.save({"state_dict": model41.state_dict()}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointError, match="not a stir_ros checkpoint"):  # read, then judged by its content
        load_checkpoint(path)
