# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The engine's optional STIR speed-ups (``torch_compile``, ``cuda_graphs``, ``feature_reuse``) reach the predictor."""

from __future__ import annotations

import numpy as np
import pytest

from stir_ros.core.errors import ConfigError
from stir_ros.engine import COMPILE_MODES, EngineConfig, ReconstructionEngine


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [({"torch_compile": "fastest"}, "torch_compile must be one of"),
     ({"cuda_graphs": "yes"}, "cuda_graphs must be true or false")],
)
def test_bad_options_are_refused(kwargs, needle) -> None:
    with pytest.raises(ConfigError, match=needle):
        EngineConfig(**kwargs)


def test_defaults_are_eager_without_graphs() -> None:
    config = EngineConfig()
    assert config.torch_compile == "none" and config.cuda_graphs is False
    assert COMPILE_MODES[0] == "none"


def test_options_reach_the_predictor(random_stir41_weights) -> None:
    eager = ReconstructionEngine(EngineConfig(method="stir", weights=str(random_stir41_weights), device="cpu"))
    assert eager._stir_predictor().compile is False
    # Compilation happens at the first call, so building the predictor is cheap.
    compiled = ReconstructionEngine(
        EngineConfig(method="stir", weights=str(random_stir41_weights), device="cpu", torch_compile="default")
    )
    assert compiled._stir_predictor().compile == "default"


def test_cuda_graphs_on_the_cpu_warn_and_change_nothing(random_stir41_weights) -> None:
    windows = (np.random.default_rng(0).random((2, 41, 32, 48)) < 0.3).astype(np.uint8)
    plain = ReconstructionEngine(EngineConfig(method="stir", weights=str(random_stir41_weights), device="cpu"))
    graphs = ReconstructionEngine(
        EngineConfig(method="stir", weights=str(random_stir41_weights), device="cpu", cuda_graphs=True)
    )
    np.testing.assert_array_equal(plain.reconstruct(windows), graphs.reconstruct(windows))
    assert any("cuda_graphs ignored on cpu" in w for w in graphs.pop_warnings())


def test_node_parameters_reach_the_engine_config() -> None:
    pytest.importorskip("rclpy")
    from stir_ros.ros.reconstructor_node import ReconstructorSettings

    config = ReconstructorSettings(method="stir", torch_compile="max-autotune", cuda_graphs=True).engine_config()
    assert config.torch_compile == "max-autotune" and config.cuda_graphs is True
    with pytest.raises(ConfigError, match="compile must be one of"):
        ReconstructorSettings(torch_compile="fastest")


# --------------------------------------------------------------------------- feature_reuse (StreamingSTIR)


def _stream_windows(t: int, stride: int, n: int, h: int = 24, w: int = 40, seed: int = 0) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    frames = (rng.random(((n - 1) * stride + t, h, w)) < rng.random((1, h, w)) * 0.6).astype(np.uint8)
    starts = [i * stride for i in range(n)]
    return np.stack([frames[s : s + t] for s in starts]), starts


def test_feature_reuse_gives_the_same_images(random_stir41_weights) -> None:
    """Overlapping windows, in batches and across batches, and a restarted stream: the plain engine's images."""
    weights = str(random_stir41_weights)
    plain = ReconstructionEngine(EngineConfig(method="stir", weights=weights, device="cpu", max_batch=3))
    reuse = ReconstructionEngine(EngineConfig(method="stir", weights=weights, device="cpu", max_batch=3,
                                              feature_reuse=True))  # fmt: skip
    assert reuse.feature_reuse and not plain.feature_reuse and reuse.pop_warnings() == []
    stride = reuse.model.blocks[1][0]  # 13 for 41-frame windows: consecutive windows share two blocks
    windows, starts = _stream_windows(41, stride, 7)
    expected = plain.reconstruct(windows)
    got = np.concatenate([reuse.reconstruct(windows[:4], starts=starts[:4]), reuse.reconstruct(windows[4:], starts=starts[4:])])
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)  # the StreamingSTIR tests' tolerance
    stream = reuse._stream
    assert stream.blocks_reused > 0 and stream.blocks_computed == 7 + 2  # each distinct block once
    # Another stream at the same frame indices (a restart): no block of the first is reused.
    other, _ = _stream_windows(41, stride, 3, seed=1)
    np.testing.assert_allclose(reuse.reconstruct(other, starts=starts[:3]), plain.reconstruct(other), atol=1e-5, rtol=0)
    # Without starts, or one window at a time: the plain path.
    np.testing.assert_array_equal(reuse.reconstruct(windows[:2]), plain.reconstruct(windows[:2]))
    np.testing.assert_allclose(reuse.reconstruct(windows[0], starts=[0]), expected[:1], atol=1e-5, rtol=0)


def test_feature_reuse_is_refused_or_noted_where_it_does_not_apply(random_stir41_weights) -> None:
    with pytest.raises(ConfigError, match="feature_reuse must be true or false"):
        EngineConfig(feature_reuse="yes")
    tfp = ReconstructionEngine(EngineConfig(method="tfp", device="cpu", feature_reuse=True))
    assert not tfp.feature_reuse and any("feature_reuse applies to stir" in w for w in tfp.pop_warnings())
    compiled = ReconstructionEngine(EngineConfig(method="stir", weights=str(random_stir41_weights), device="cpu",
                                                 feature_reuse=True, torch_compile="default"))  # fmt: skip
    assert any("feature_reuse runs the eager network" in w for w in compiled.pop_warnings())


def test_bag_reconstruct_with_feature_reuse_writes_the_same_images(tmp_path, random_stir41_weights) -> None:
    from stir_ros.bag.convert import dat_to_bag
    from stir_ros.bag.reader import BagReader
    from stir_ros.bag.reconstruct import ReconstructOptions, reconstruct_bag
    from stir_ros.core.dat import write_dat

    windows, _ = _stream_windows(41, 13, 6, h=16, w=24, seed=2)
    frames = np.concatenate([windows[0], *(win[-13:] for win in windows[1:])])
    write_dat(tmp_path / "in.dat", frames)
    dat_to_bag(tmp_path / "in.dat", tmp_path / "in", 16, 24, 20000.0, frames_per_packet=10, storage="sqlite3")
    images = {}
    for reuse in (False, True):
        opts = ReconstructOptions(method="stir", weights=str(random_stir41_weights), device="cpu", stride_frames=13,
                                  max_batch=2, output_encoding="32FC1", feature_reuse=reuse)  # fmt: skip
        result = reconstruct_bag(tmp_path / "in", tmp_path / f"out{reuse}", opts)
        assert result.images == 6 and result.problems == []
        with BagReader(tmp_path / f"out{reuse}") as bag:
            images[reuse] = [np.frombuffer(bytes(bag.deserialize(m).data), np.float32) for m in bag.messages(["/image"])]
    np.testing.assert_allclose(np.stack(images[True]), np.stack(images[False]), atol=1e-5, rtol=0)


def test_node_feature_reuse_reaches_the_engine_config() -> None:
    from stir_ros.reconstructor_settings import ENGINE_FIELDS, ReconstructorSettings

    assert "feature_reuse" in ENGINE_FIELDS  # a change builds a new engine
    assert ReconstructorSettings(feature_reuse=True).engine_config().feature_reuse is True
    assert ReconstructorSettings().engine_config().feature_reuse is False
