# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The engine's optional STIR speed-ups (``compile``, ``cuda_graphs``) reach the predictor."""

from __future__ import annotations

import numpy as np
import pytest

from stir_ros.core.errors import ConfigError
from stir_ros.engine import COMPILE_MODES, EngineConfig, ReconstructionEngine


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [({"compile": "fastest"}, "compile must be one of"), ({"cuda_graphs": "yes"}, "cuda_graphs must be true or false")],
)
def test_bad_options_are_refused(kwargs, needle) -> None:
    with pytest.raises(ConfigError, match=needle):
        EngineConfig(**kwargs)


def test_defaults_are_eager_without_graphs() -> None:
    config = EngineConfig()
    assert config.compile == "none" and config.cuda_graphs is False
    assert COMPILE_MODES[0] == "none"


def test_options_reach_the_predictor(random_stir41_weights) -> None:
    eager = ReconstructionEngine(EngineConfig(method="stir", weights=str(random_stir41_weights), device="cpu"))
    assert eager._stir_predictor().compile is False
    # Compilation happens at the first call, so building the predictor is cheap.
    compiled = ReconstructionEngine(
        EngineConfig(method="stir", weights=str(random_stir41_weights), device="cpu", compile="default")
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
    assert config.compile == "max-autotune" and config.cuda_graphs is True
    with pytest.raises(ConfigError, match="compile must be one of"):
        ReconstructorSettings(torch_compile="fastest")
