# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""STIR network: equivalence with the authors' implementation, shapes, training mode."""

from __future__ import annotations


import pytest
import torch

from stir_ros.core.errors import CheckpointError, ConfigError, SpikeFormatError
from stir_ros.models import STIR, build_model, count_parameters, load_official
from stir_ros.models.blocks import BackwardWarp, pad_tail
from stir_ros.models.official import official_prefix_map

torch.set_num_threads(2)

PARAMS = {61: 5_107_960, 41: 5_078_698}


def _spikes(b: int, t: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    rate = torch.rand(b, 1, h, w, generator=gen) * 0.6
    return (torch.rand(b, t, h, w, generator=gen) < rate).float()


@pytest.fixture(scope="module", params=[61, 41])
def pair(request, authors_stir, randomise):
    """(window_length, authors' model, our model converted from the authors' weights)."""
    official_cls = authors_stir
    t = request.param
    torch.manual_seed(1)
    official = official_cls(spike_dim=t)
    randomise(official, seed=t)
    ours = load_official(official.state_dict(), window_length=t)
    return t, official.eval(), ours


def test_parameter_counts(pair):
    t, official, ours = pair
    assert count_parameters(ours) == PARAMS[t]
    assert sum(p.numel() for p in official.parameters()) == PARAMS[t]
    assert count_parameters(STIR(window_length=t)) == PARAMS[t]


@pytest.mark.parametrize("size", [(32, 48), (16, 16)])
def test_equivalence_eval(pair, size):
    t, official, ours = pair
    x = _spikes(2, t, *size, seed=3)
    with torch.no_grad():
        expected = official(x)
        got = ours(x)
    assert got.shape == expected.shape == (2, 1, *size)
    assert expected.abs().max() > 1e-2  # a meaningful comparison, not two zero images
    assert (got - expected).abs().max().item() <= 1e-4


def test_equivalence_padded(pair):
    """Sizes off the multiple of 16: ours pads internally like the authors' wrapper (tail rows/cols)."""
    t, official, ours = pair
    x = _spikes(1, t, 30, 45, seed=4)
    padded = torch.cat([x, x[:, :, -2:]], dim=2)
    padded = torch.cat([padded, padded[:, :, :, -3:]], dim=3)
    with torch.no_grad():
        expected = official(padded)[:, :, :30, :45]
        got = ours(x)
    assert got.shape == (1, 1, 30, 45)
    assert (got - expected).abs().max().item() <= 1e-4


def test_equivalence_train_pyramid(pair):
    """Training mode (batch statistics, clamping) and the multi-scale outputs match too."""
    t, official, ours = pair
    x = _spikes(2, t, 32, 32, seed=5)
    official.train()
    ours.train()
    try:
        with torch.no_grad():
            out = official(x)
            image, pyramid = ours(x, return_pyramid=True)
    finally:
        official.eval()
        ours.eval()
    assert (image - out[0]).abs().max().item() <= 1e-4
    for level, got in enumerate(pyramid, start=1):
        assert (got - out[1 + level][0]).abs().max().item() <= 1e-4


def test_key_map_covers_everything(authors_stir):
    official_cls = authors_stir
    for t in (61, 41):
        official_keys = official_cls(spike_dim=t).state_dict().keys()
        sources = [src for src, _ in official_prefix_map()]
        for key in official_keys:
            assert sum(key.startswith(s) and (s.endswith(".") or key == s) for s in sources) == 1, key


def test_load_official_wrapped_and_strict(pair):
    t, official, _ = pair
    state = official.state_dict()
    wrapped = {"epoch": 3, "state_dict": {f"module.{k}": v for k, v in state.items()}}
    model = load_official(wrapped, window_length=t)
    assert not model.training
    with pytest.raises(CheckpointError, match="window_length"):
        load_official(state, window_length=102 - t)
    broken = dict(state)
    del broken["decorder_1st.predict_img.bias"]
    broken["extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match=r"decoder\.full\.head\.bias.*extra\.weight"):
        load_official(broken, window_length=t)
    reshaped = dict(state)
    reshaped["transformer.attn.temperature1"] = torch.ones(3, 1, 1)
    with pytest.raises(CheckpointError, match="temperature1"):
        load_official(reshaped, window_length=t)


@pytest.fixture(scope="module")
def default_models() -> dict[int, STIR]:
    torch.manual_seed(0)
    return {t: STIR(window_length=t).eval() for t in (61, 41)}


@pytest.mark.parametrize("t", [61, 41])
@pytest.mark.parametrize("size", [(16, 16), (17, 33), (64, 64), (5, 7)])
def test_shapes_and_finite(default_models, t, size):
    model = default_models[t]
    x = _spikes(1, t, *size)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (1, 1, *size)
    assert torch.isfinite(y).all()


def test_bool_input_and_bad_shapes(default_models):
    model = default_models[41]
    x = _spikes(1, 41, 16, 16)
    with torch.no_grad():
        assert torch.equal(model(x.bool()), model(x))
    with pytest.raises(SpikeFormatError, match="41"):
        model(_spikes(1, 61, 16, 16))
    with pytest.raises(SpikeFormatError):
        model(x[0])


def test_train_pyramid_shapes_and_gradient_step():
    torch.manual_seed(0)
    model = build_model({"type": "stir_41"})
    model.train()
    x = _spikes(1, 41, 32, 32)
    target = torch.rand(1, 1, 32, 32)
    image, pyramid = model(x, return_pyramid=True)
    assert image.shape == (1, 1, 32, 32)
    assert [p.shape[-2:] for p in pyramid] == [(16, 16), (8, 8), (4, 4), (2, 2)]
    assert float(image.detach().min()) >= 0.0 and float(image.detach().max()) <= 1.0
    loss = (image - target).abs().mean()
    for k, p in enumerate(pyramid, start=1):
        loss = loss + (p - torch.nn.functional.avg_pool2d(target, 2**k)).abs().mean()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    before = model.decoder.full.head.weight.detach().clone()
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    opt.step()
    assert not torch.equal(before, model.decoder.full.head.weight)


def test_registry():
    assert build_model({"type": "stir", "window_length": 41}).window_length == 41
    assert build_model({"type": "stir_61"}).window_length == 61
    model = build_model({"type": "stir_41"})
    assert build_model(model.model_config).model_config == model.model_config
    with pytest.raises(ConfigError, match="unknown model type"):
        build_model({"type": "nope"})
    with pytest.raises(ConfigError):
        build_model({"type": "stir", "window_length": 50})
    with pytest.raises(ConfigError):
        build_model({"window_length": 61})


def test_pad_tail_matches_authors_rule():
    x = torch.arange(250 * 3, dtype=torch.float32).reshape(1, 1, 250, 3)
    padded, h, w = pad_tail(x, 16)
    assert (h, w) == (250, 3) and padded.shape == (1, 1, 256, 16)
    assert torch.equal(padded[:, :, :, :3], torch.cat([x, x[:, :, -6:]], dim=2))


def test_warp_grid_cached_and_identity():
    warp = BackwardWarp()
    feat = torch.rand(2, 3, 8, 12)
    zero = torch.zeros(2, 2, 8, 12)
    assert torch.allclose(warp(feat, zero), feat, atol=1e-6)
    assert len(warp._grids) == 1
    warp(feat, zero)
    assert len(warp._grids) == 1
    shift = zero.clone()
    shift[:, 0] = 1.0  # read one pixel to the right
    assert torch.allclose(warp(feat, shift)[..., :-1], feat[..., 1:], atol=1e-5)
