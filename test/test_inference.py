# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Prepared STIR inference: same function as the plain model in fp32, close in bf16/fp16."""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest
import torch

from stir_ros.core.errors import ConfigError, SpikeFormatError
from stir_ros.models import STIR, load_official
from stir_ros.models.inference import InferenceModel, fold_batch_norms, prepare_for_inference
from stir_ros.models.streaming import StreamingSTIR

torch.set_num_threads(2)

H, W = 20, 36  # not multiples of 16: the padding path runs too


def _spikes(b: int, t: int, h: int = H, w: int = W, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    rate = torch.rand(b, 1, h, w, generator=gen) * 0.6
    return (torch.rand(b, t, h, w, generator=gen) < rate).to(torch.uint8)


@pytest.fixture(scope="module", params=[61, 41])
def model(request, randomise) -> STIR:
    torch.manual_seed(0)
    m = STIR(window_length=request.param)
    randomise(m, seed=request.param)
    return m.eval()


def _plain(model: STIR, spikes: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model(spikes.float())


def test_fp32_equals_plain_model(model: STIR) -> None:
    x = _spikes(1, model.window_length)
    ref = _plain(model, x)
    fast = prepare_for_inference(model, device="cpu")
    assert isinstance(fast, InferenceModel) and fast.channels_last
    out = fast(x)
    assert out.dtype == torch.float32 and out.shape == (1, 1, H, W)
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=0)
    # Every accepted input type gives the same output.
    torch.testing.assert_close(fast(x.bool()), out, atol=0, rtol=0)
    torch.testing.assert_close(fast(x.float()), out, atol=0, rtol=0)
    torch.testing.assert_close(fast(x.numpy()), out, atol=0, rtol=0)


def test_options_each_keep_fp32_exact(model: STIR) -> None:
    x = _spikes(1, model.window_length, seed=1)
    ref = _plain(model, x)
    for kwargs in ({"channels_last": False}, {"fold_batchnorm": False}, {"channels_last": True}):
        out = prepare_for_inference(model, device="cpu", **kwargs)(x)
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=0, msg=lambda m, kw=kwargs: f"{kw}: {m}")


def test_fold_batch_norms_removes_them_and_keeps_the_function(model: STIR) -> None:
    folded = copy.deepcopy(model)
    assert fold_batch_norms(folded) == 2
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert fold_batch_norms(folded) == 0
    x = _spikes(1, model.window_length, seed=2)
    torch.testing.assert_close(_plain(folded, x), _plain(model, x), atol=1e-5, rtol=0)


def test_caller_model_is_left_alone(model: STIR) -> None:
    before = {k: v.clone() for k, v in model.state_dict().items()}
    prepare_for_inference(model, device="cpu", precision="bf16")
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == 2


def test_bf16_on_cpu_is_close(model: STIR) -> None:
    x = _spikes(1, model.window_length, seed=3)
    ref = _plain(model, x)
    fast = prepare_for_inference(model, device="cpu", precision="bf16")
    out = fast(x)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    scale = float(ref.abs().max())
    # bf16 keeps 8 significant bits; errors stay at the percent level of the output's range.
    assert float((out - ref).abs().max()) < 0.05 * scale
    assert float((out - ref).abs().mean()) < 0.01 * scale


def test_bf16_makes_the_image_in_fp32_but_trains_under_autocast_as_before(model: STIR) -> None:
    """The last convolution (the image) computes in float32 under bf16 weights.

    An image value in bf16 is good to 1/256. Under autocast (training) it runs as every other layer does.
    """
    from stir_ros.models.blocks import Float32Conv2d

    fast = prepare_for_inference(model, device="cpu", precision="bf16")
    head = fast.module.decoder.full.head
    assert isinstance(head, Float32Conv2d) and head.weight.dtype == torch.bfloat16
    x = torch.randn(1, head.in_channels, 8, 8, dtype=torch.bfloat16)
    out = head(x)
    assert out.dtype == torch.float32
    exact = torch.nn.functional.conv2d(x.float(), head.weight.float(), head.bias.float(), padding=1)
    assert torch.equal(out, exact)
    plain = model.decoder.full.head
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert plain(x.float()).dtype == torch.bfloat16
    assert isinstance(plain, torch.nn.Conv2d)  # same parameters: checkpoints load unchanged


def test_bad_arguments_are_refused(model: STIR) -> None:
    with pytest.raises(ConfigError, match="fp16"):
        prepare_for_inference(model, device="cpu", precision="fp16")
    with pytest.raises(ConfigError, match="precision"):
        prepare_for_inference(model, device="cpu", precision="fp8")
    with pytest.raises(ConfigError, match="compile"):
        prepare_for_inference(model, device="cpu", compile="fastest")
    fast = prepare_for_inference(model, device="cpu", cuda_graphs=True)
    assert not fast.cuda_graphs and any("cuda_graphs" in w for w in fast.warnings)
    with pytest.raises(SpikeFormatError, match="expects spikes"):
        fast(torch.zeros(1, model.window_length - 1, H, W, dtype=torch.uint8))
    with pytest.raises(SpikeFormatError):
        fast(torch.zeros(model.window_length, H, W, dtype=torch.uint8))


def test_warmup_and_repr(model: STIR) -> None:
    fast = prepare_for_inference(model, device="cpu")
    fast.warmup(1, 20, 24)
    assert f"window_length={model.window_length}" in repr(fast)


def test_fp32_matches_the_authors(authors_stir, randomise) -> None:
    torch.manual_seed(3)
    authors = authors_stir(spike_dim=61)
    randomise(authors, seed=5)
    authors.eval()
    fast = prepare_for_inference(load_official(authors.state_dict()), device="cpu")
    x = _spikes(1, 61, 32, 48, seed=4)  # the authors' model takes multiples of 16 only
    with torch.inference_mode():
        ref = authors(x.float())
    torch.testing.assert_close(fast(x), ref, atol=1e-4, rtol=0)


@pytest.mark.skipif(not os.environ.get("STIR_ROS_TEST_COMPILE"), reason="inductor compile takes minutes on 2 cores")
def test_compiled_fp32_equals_plain_model(model: STIR) -> None:
    x = _spikes(1, model.window_length, seed=6)
    fast = prepare_for_inference(model, device="cpu", compile="default")
    torch.testing.assert_close(fast(x), _plain(model, x), atol=1e-4, rtol=0)


# ---------------------------------------------------------------------------------- CUDA


@pytest.fixture()
def no_tf32():
    """fp32 comparisons on CUDA in true fp32 (PyTorch lets cuDNN use TF32 by default)."""
    old = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old


@pytest.mark.cuda
def test_cuda_graphs_fp32_equal_plain_model(model: STIR, no_tf32: None) -> None:
    gpu_model = copy.deepcopy(model).to("cuda")
    fast = prepare_for_inference(model, device="cuda", cuda_graphs=True)
    for seed in range(3):  # replays must see each new input, not the captured one
        x = _spikes(2, model.window_length, seed=10 + seed)
        ref = _plain(gpu_model, x.cuda())
        torch.testing.assert_close(fast(x), ref, atol=1e-4, rtol=0)
    assert len(fast._graphs) == 1 and next(iter(fast._graphs.values())) is not None, fast.warnings


@pytest.mark.cuda
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_cuda_half_precision_close(model: STIR, precision: str, no_tf32: None) -> None:
    x = _spikes(2, model.window_length, seed=20)
    ref = _plain(copy.deepcopy(model).to("cuda"), x.cuda())
    out = prepare_for_inference(model, device="cuda", precision=precision, cuda_graphs=True)(x)
    assert out.dtype == torch.float32 and out.device.type == "cuda"
    scale = float(ref.abs().max())
    assert float((out - ref).abs().max()) < 0.05 * scale
    assert float((out - ref).abs().mean()) < 0.01 * scale


@pytest.mark.cuda
def test_cuda_graph_capture_failure_falls_back(model: STIR, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = prepare_for_inference(model, device="cuda", cuda_graphs=True)
    run = fast._run

    def host_sync(x: torch.Tensor) -> torch.Tensor:
        out = run(x)
        out.sum().item()  # a host synchronisation: illegal while capturing
        return out

    monkeypatch.setattr(fast, "_run", host_sync)
    x = _spikes(1, model.window_length, seed=30)
    out = fast(x)
    assert any("capture failed" in w for w in fast.warnings)
    monkeypatch.undo()
    torch.testing.assert_close(out, fast(x), atol=1e-5, rtol=0)


def test_numpy_and_device_round_trip(model: STIR) -> None:
    x = _spikes(1, model.window_length, seed=7).numpy().astype(np.uint8)
    out = prepare_for_inference(model, device=torch.device("cpu"))(x)
    assert out.device.type == "cpu" and out.shape == (1, 1, H, W)


# ---------------------------------------------------------------------------------- streaming


def _stream(model: STIR, windows: int, seed: int = 40) -> tuple[torch.Tensor, int]:
    stride = model.blocks[1][0]  # 20 for 61-frame windows, 13 for 41: consecutive windows share blocks
    frames = _spikes(1, stride * (windows - 1) + model.window_length, seed=seed)[0]
    return frames, stride


def test_streaming_reuses_blocks_and_is_exact(model: STIR) -> None:
    frames, stride = _stream(model, 4)
    t = model.window_length
    fast = prepare_for_inference(model, device="cpu")
    stream = StreamingSTIR(fast)
    for i in range(4):  # one window per call, as the node sees them
        window = frames[None, i * stride : i * stride + t]
        out = stream.reconstruct_stream(window, [i * stride])
        torch.testing.assert_close(out, fast(window), atol=1e-5, rtol=0)
    assert (stream.blocks_computed, stream.blocks_reused) == (3 + 3 * 1, 3 * 2)
    # A batch of overlapping windows computes each shared block once.
    stream.reset()
    batch = torch.stack([frames[i * stride : i * stride + t] for i in range(3)])
    out = stream.reconstruct_stream(batch, [0, stride, 2 * stride])
    torch.testing.assert_close(out, fast(batch), atol=1e-5, rtol=0)
    assert stream.blocks_computed == 6 + 5  # 3 windows, 5 distinct blocks
    with pytest.raises(SpikeFormatError, match="starts"):
        stream.reconstruct_stream(batch, [0, stride])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal without CUDA")
def test_cuda_without_cuda_is_refused(model: STIR) -> None:
    with pytest.raises(ConfigError, match="CUDA is not available"):
        prepare_for_inference(model, device="cuda")
