# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The reconstruction engine (stir_ros.engine)."""

from __future__ import annotations

import dataclasses
import os
import re

import numpy as np
import pytest
import torch

from stir_ros.core import classical
from stir_ros.engine import EngineConfig, ReconstructionEngine, default_weights_path
from stir_ros.core.errors import CheckpointError, ConfigError, SpikeFormatError

H, W = 32, 48


def _windows(b: int, t: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((b, t, H, W)) < 0.3).astype(np.uint8)


@pytest.fixture(scope="module")
def stir_weights(random_stir41_weights) -> str:
    """The shared random-weights STIR-41 checkpoint (conftest.py), as a string path."""
    return str(random_stir41_weights)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"method": "spk2img"}, "method"),
        ({"method": "stir", "window_length": 50}, "41 or 61"),
        ({"method": "tfp", "window_length": -1}, "window_length"),
        ({"device": "gpu"}, "device"),
        ({"device": "cuda:x"}, "device"),
        ({"precision": "int8"}, "precision"),
        ({"max_batch": 0}, "max_batch"),
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": float("nan")}, "alpha"),
    ],
)
def test_config_validation(kwargs, needle):
    with pytest.raises(ConfigError, match=needle):
        EngineConfig(**kwargs)


@pytest.mark.parametrize("method", ["tfp", "tfi"])
def test_classical_matches_core_and_is_clamped(method):
    engine = ReconstructionEngine(EngineConfig(method=method, max_batch=2))
    assert engine.window_length == 41 and engine.device.type == "cpu"
    win = _windows(5, 41)
    out = engine.reconstruct(win)
    assert out.shape == (5, H, W) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    fn = classical.tfp if method == "tfp" else classical.tfi
    np.testing.assert_allclose(out, np.clip(fn(win, alpha=0.6), 0, 1), rtol=1e-6)
    # one window [T, H, W] and torch input give the same
    np.testing.assert_allclose(engine.reconstruct(win[0])[0], out[0])
    np.testing.assert_allclose(engine.reconstruct(torch.from_numpy(win)), out)


def test_classical_torch_path_equals_numpy_path():
    numpy_engine = ReconstructionEngine(EngineConfig(method="tfp", window_length=21))
    torch_engine = ReconstructionEngine(EngineConfig(method="tfp", window_length=21))
    torch_engine.device = torch.device("cpu")
    win = _windows(3, 21)
    np.testing.assert_allclose(torch_engine._run_torch(win), numpy_engine.reconstruct(win), atol=1e-6)


def _views(win: np.ndarray) -> dict[str, np.ndarray]:
    """Odd but valid layouts of spike windows, each with its plain C-contiguous uint8 twin."""
    wide = np.concatenate([win, win], axis=3)
    return {
        "flipped columns": win[:, :, :, ::-1],
        "np.flip of time": np.flip(win, axis=1),
        "every other column": wide[:, :, :, ::2],
        "Fortran order": np.asfortranarray(win),
        "bool": win.astype(bool),
        "big-endian float": win.astype(">f4"),
        "flipped bool one window": win[0, ::-1].astype(bool),
    }


@pytest.mark.parametrize(
    "config",
    [
        {"method": "tfp"},
        {"method": "tfi"},
        {"method": "tfp", "torch_path": True},  # the path tfp/tfi take on CUDA, run here on the CPU
        {"method": "stir", "device": "cpu", "max_batch": 2},  # the shipped weights, dark routing included
    ],
    ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()),
)
def test_non_contiguous_windows_give_the_images_of_the_contiguous_array(config):
    """Negative strides, strided views, Fortran order, bool, a foreign byte order: taken, same images."""
    config = dict(config)
    torch_path = config.pop("torch_path", False)
    engine = ReconstructionEngine(EngineConfig(**config))
    # On the CPU reconstruct() takes tfp/tfi's numpy path; the torch path is called as in the test above.
    run = (lambda w: engine._run_torch(w if w.ndim == 4 else w[None])) if torch_path else engine.reconstruct
    win = _windows(3, engine.window_length, seed=4)
    for name, view in _views(win).items():
        plain = np.ascontiguousarray(view, view.dtype.newbyteorder("=")).astype(np.uint8)
        assert plain.flags.c_contiguous and not np.shares_memory(plain, view)
        expected = run(plain)
        np.testing.assert_array_equal(run(view), expected, err_msg=name)
        assert expected.shape == (3 if view.ndim == 4 else 1, H, view.shape[-1]), name


def test_wrong_window_length_is_refused():
    engine = ReconstructionEngine(EngineConfig(method="tfp", window_length=21))
    with pytest.raises(SpikeFormatError, match="expects 21"):
        engine.reconstruct(_windows(1, 41))
    with pytest.raises(SpikeFormatError):
        engine.reconstruct(np.zeros((2, 2), np.uint8))


@pytest.mark.parametrize("method", ["tfp", "stir"])
def test_what_cannot_be_spikes_is_refused_with_the_reason(method):
    engine = ReconstructionEngine(EngineConfig(method=method, device="cpu"))  # stir: the shipped weights
    t = engine.window_length
    win = _windows(2, t).astype(np.float32)
    nan, inf = win.copy(), win.copy()
    nan[1, 20, 3, 4], inf[0, 0, 0, 0] = np.nan, np.inf
    for bad, needle in [
        (nan, "NaN or infinite"),
        (inf[0], "NaN or infinite"),
        (torch.from_numpy(nan), "NaN or infinite"),
        (win.astype(np.complex64), "got dtype complex64"),
        (torch.from_numpy(win.astype(np.complex64)), "got dtype torch.complex64"),
        (win.astype(object), "got dtype object"),
        (win.astype(str), "got dtype <U32"),
        (np.zeros((1, t, 0, 8), np.uint8), "non-empty H and W"),
        (win.tolist(), "numpy array or a torch tensor, got list"),
        (win[0, 0], "must be [B, T, H, W]"),
    ]:
        with pytest.raises(SpikeFormatError, match=re.escape(needle)):
            engine.reconstruct(bad)


def _planted(dtype: object, value: object, where: tuple[int, ...] = (1, 20, 3, 4), count: int = 1) -> np.ndarray:
    """Two 0/1 windows of ``dtype`` with ``value`` planted at ``where`` and the ``count - 1`` pixels after it."""
    win = _windows(2, 41).astype(dtype)
    win[where[:3]].reshape(-1)[where[3] : where[3] + count] = value
    return win


@pytest.mark.parametrize("method", ["tfp", "tfi", "stir"])
def test_values_other_than_0_and_1_are_refused_with_value_count_and_place(method, stir_weights):
    """2, 255, 0.5 or -1 are not spikes (packed bytes not unpacked, an image, a sign): refused, not reconstructed."""
    config = {"weights": stir_weights, "device": "cpu"} if method == "stir" else {"window_length": 41}
    engine = ReconstructionEngine(EngineConfig(method=method, **config))
    big_endian = _planted(np.int16, -1).astype(">i2")
    for bad, needle in [
        (_planted(np.uint8, 255, count=3), "3 values other than 0 and 1 (255 x3), the first at [1, 20, 3, 4]"),
        (_planted(np.uint8, 2, (0, 0, 0, 0))[0], "1 value other than 0 and 1 (2 x1), the first at [0, 0, 0]"),
        (_planted(np.float32, 0.5, count=2), "2 values other than 0 and 1 (0.5 x2)"),
        (_planted(np.float64, -1.0), "(-1 x1)"),
        (_planted(np.int8, -1), "(-1 x1)"),
        (big_endian, "(-1 x1)"),
        (_planted(np.int64, 2**40), f"({2**40} x1)"),
        (torch.from_numpy(_planted(np.uint8, 2)), "(2 x1), the first at [1, 20, 3, 4]"),
        (torch.from_numpy(_planted(np.float32, 0.5)), "(0.5 x1)"),
        (torch.from_numpy(_planted(np.int16, -1)), "(-1 x1)"),
        (torch.from_numpy(_planted(np.uint16, 7)), "(7 x1)"),  # a dtype torch has few reductions for
        (_planted(np.float16, 3), "(3 x1)"),
    ]:
        with pytest.raises(SpikeFormatError, match=re.escape(needle)) as caught:
            engine.reconstruct(bad)
        assert "expected 0/1 spikes" in str(caught.value)
    # Exactly 0 and 1 in every accepted dtype still reconstruct (-0.0 is 0).
    win = _windows(2, 41)
    expected = engine.reconstruct(win)
    signed_zero = win.astype(np.float32)
    signed_zero[signed_zero == 0] = -0.0
    for good in [win.astype(bool), win.astype(np.int8), win.astype(">i2"), win.astype(np.float64), signed_zero,
                 torch.from_numpy(win.astype(np.int16)), torch.from_numpy(win.astype(np.uint16)),
                 torch.from_numpy(win).bool()]:
        np.testing.assert_array_equal(engine.reconstruct(good), expected)


@pytest.mark.parametrize("method", ["tfp", "tfi"])
def test_values_are_checked_once_per_batch_not_again_per_chunk(method, monkeypatch):
    """The engine checks a batch in one pass; tfp/tfi (which check their input as public API) do not repeat it."""
    checked: list[tuple[int, ...]] = []
    real = classical.check_spike_values
    monkeypatch.setattr(classical, "check_spike_values", lambda w, *a: checked.append(tuple(w.shape)) or real(w, *a))
    engine = ReconstructionEngine(EngineConfig(method=method, max_batch=2))
    engine.reconstruct(_windows(5, 41))  # chunks of 2 + 2 + 1
    engine._run_torch(_windows(3, 41))  # the path on CUDA, run here on the CPU
    assert checked == []
    classical.tfp(_windows(1, 41))
    assert checked == [(1, 41, H, W)]  # the public function does check


def test_missing_weights_fail_clearly(tmp_path, monkeypatch):
    import stir_ros.engine as engine_module

    with pytest.raises(CheckpointError, match="does not exist"):
        ReconstructionEngine(EngineConfig(method="stir", weights=str(tmp_path / "nope.pt")))
    # An installation without the shipped file (e.g. a trimmed package) says what to do.
    monkeypatch.setattr(engine_module, "default_weights_path", lambda: tmp_path / "absent.pt")
    with pytest.raises(CheckpointError, match="default STIR weights"):
        ReconstructionEngine(EngineConfig(method="stir"))


def test_default_engine_loads_the_shipped_weights():
    engine = ReconstructionEngine(EngineConfig(method="stir", device="cpu"))
    assert engine.weights_path == default_weights_path() and engine.window_length == 61
    assert engine.metadata.alpha == pytest.approx(0.6)


def test_stir_output_is_raw_over_alpha_clamped(stir_weights):
    engine = ReconstructionEngine(EngineConfig(method="stir", weights=stir_weights, alpha=0.5, max_batch=2, device="cpu"))
    assert engine.window_length == 41
    win = _windows(3, 41)
    out = engine.reconstruct(win)  # batches of 2 + 1
    assert out.shape == (3, H, W) and out.dtype == np.float32
    with torch.inference_mode():
        raw = engine.model(torch.from_numpy(win).float())[:, 0].numpy()
    np.testing.assert_allclose(out, np.clip(raw / 0.5, 0, 1), atol=1e-5)
    assert 0.0 <= out.min() and out.max() <= 1.0


def test_stir_window_length_must_match_checkpoint(stir_weights):
    with pytest.raises(CheckpointError, match="window_length"):
        ReconstructionEngine(EngineConfig(method="stir", weights=stir_weights, window_length=61))


def test_cpu_fp16_falls_back_and_bf16_runs(stir_weights):
    engine = ReconstructionEngine(EngineConfig(method="stir", weights=stir_weights, device="cpu", precision="fp16"))
    assert engine.precision == "fp32"
    assert any("fp16" in w for w in engine.pop_warnings())
    assert engine.pop_warnings() == []
    bf16 = ReconstructionEngine(EngineConfig(method="stir", weights=stir_weights, device="cpu", precision="bf16"))
    out = bf16.reconstruct(_windows(1, 41))
    assert out.shape == (1, H, W) and np.isfinite(out).all()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_missing_cuda_falls_back_to_cpu_with_warning():
    engine = ReconstructionEngine(EngineConfig(method="tfp", device="cuda:1"))
    assert engine.device.type == "cpu"
    assert "CUDA is not available" in engine.pop_warnings()[0]


def test_out_of_memory_halves_the_batch_then_moves_to_cpu(stir_weights, monkeypatch):
    engine = ReconstructionEngine(EngineConfig(method="stir", weights=stir_weights, device="cpu", max_batch=4))
    real = engine._run_torch
    calls: list[int] = []

    def fake(chunk):
        calls.append(len(chunk))
        if engine.device.type == "cuda":  # pretend the GPU is full at any batch size
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(chunk)

    engine.device = torch.device("cuda")  # as if it had started on a GPU
    monkeypatch.setattr(engine, "_run_torch", fake)
    out = engine.reconstruct(_windows(4, 41))
    assert out.shape == (4, H, W)
    assert calls[:3] == [4, 2, 1] and engine.device.type == "cpu"
    assert engine.oom_fallbacks == 3
    warnings = engine.pop_warnings()
    assert any("batch size reduced to 2" in w for w in warnings)
    assert any("moving the model to the CPU" in w for w in warnings)


def test_warmup_runs_once_per_size(monkeypatch):
    """The model runs at the first warm-up of a size only: a second call for that size does nothing."""
    engine = ReconstructionEngine(EngineConfig(method="tfp"))
    real = classical.tfp
    runs: list[tuple[int, ...]] = []

    def counting(windows, *args, **kwargs):  # every path of the tfp engine ends here
        runs.append(tuple(windows.shape))
        return real(windows, *args, **kwargs)

    monkeypatch.setattr(engine, "spec", dataclasses.replace(engine.spec, estimate=counting))  # the registry's tfp
    engine.warmup(H, W)
    assert runs == [(1, 41, H, W)]  # on the CPU: one window
    engine.warmup(H, W)
    engine.warmup(H, W)
    assert runs == [(1, 41, H, W)], "warm-up ran again for a size it had already warmed up"
    engine.warmup(H + 2, W)  # a new size is warmed up once too
    engine.warmup(H + 2, W)
    assert runs == [(1, 41, H, W), (1, 41, H + 2, W)]


@pytest.mark.cuda
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_cuda_reduced_precision_close_to_fp32(stir_weights, precision):
    device = os.environ.get("TORCH_DEVICE", "cuda")
    ref = ReconstructionEngine(EngineConfig(method="stir", weights=stir_weights, device=device))
    low = ReconstructionEngine(EngineConfig(method="stir", weights=stir_weights, device=device, precision=precision))
    win = _windows(2, 41)
    np.testing.assert_allclose(low.reconstruct(win), ref.reconstruct(win), atol=0.05)
