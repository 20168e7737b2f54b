# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""STIR's dark-robust second network (stir_ros.models.dark_routing), with the shipped weights."""

from __future__ import annotations

import numpy as np
import pytest

from stir_ros.core.dark_events import DARK_EVENT_SWITCH, dark_event_rate
from stir_ros.core.errors import CheckpointError, ConfigError
from stir_ros.core.scenes import MovingScene
from stir_ros.core.sensor_model import SensorModel
from stir_ros.core.simulator import simulate_spikes
from stir_ros.core.weights import dark_weights_path
from stir_ros.engine import EngineConfig, ReconstructionEngine, default_weights_path

H, W = 64, 96


@pytest.fixture(scope="module")
def windows() -> np.ndarray:
    """Two 61-frame windows of one moving scene: clean, and with 40 Hz of dark current (20 kHz)."""
    light = MovingScene(H, W, seed=5).render(0, 61).numpy()
    clean = simulate_spikes(light, seed=6)
    dark = simulate_spikes(light, seed=6, sensor=SensorModel(dark_rate_hz=40.0, dark_rate_spread=0.4))
    out = np.stack([clean, dark]).astype(np.uint8)
    rates = dark_event_rate(out)
    assert rates[0] < DARK_EVENT_SWITCH < rates[1], rates
    return out


def _engine(**kw: object) -> ReconstructionEngine:
    return ReconstructionEngine(EngineConfig(method="stir", device="cpu", backend="torch", precision="fp32", **kw))


@pytest.fixture(scope="module")
def routed() -> ReconstructionEngine:
    return _engine()


def test_the_shipped_pair_routes_each_window_to_its_network(routed, windows) -> None:
    assert routed.dark is not None and routed.dark.path == dark_weights_path()
    main_only = _engine(dark_weights="none")
    dark_only = _engine(weights=str(dark_weights_path()), dark_weights="none")
    assert main_only.dark is None and dark_only.dark is None
    expected = np.stack([main_only.reconstruct(windows[:1])[0], dark_only.reconstruct(windows[1:])[0]])
    # Mixed in one batch, alone, and in the other order: each window always gets its own network.
    np.testing.assert_array_equal(routed.reconstruct(windows), expected)
    np.testing.assert_array_equal(routed.reconstruct(np.ascontiguousarray(windows[::-1])), expected[::-1])
    np.testing.assert_array_equal(routed.reconstruct(windows[:1]), expected[:1])
    assert routed.dark.windows == 2  # the dark window, twice
    assert routed.dark.last_rate < DARK_EVENT_SWITCH  # the last window scored was the clean one
    # The two networks differ on the dark window, else this test could not tell them apart.
    assert np.abs(main_only.reconstruct(windows[1:]) - expected[1:]).max() > 0.01


def test_a_users_own_weights_run_alone_unless_dark_weights_are_named(windows) -> None:
    own = str(default_weights_path())  # any file the user names is "their own"
    assert _engine(weights=own).dark is None
    named = _engine(weights=own, dark_weights=str(dark_weights_path()))
    assert named.dark is not None
    named.reconstruct(windows)
    assert named.dark.windows == 1


def test_bad_dark_weights_are_refused_and_feature_reuse_turns_it_off(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        _engine(dark_weights=str(tmp_path / "absent.pt"))
    for bad in ("", 3, None):
        with pytest.raises(ConfigError, match="dark_weights"):
            EngineConfig(dark_weights=bad)  # type: ignore[arg-type]
    reuse = _engine(feature_reuse=True)
    assert reuse.dark is None
    assert any("feature_reuse" in w and "dark_weights" in w for w in reuse.pop_warnings())


def test_warm_up_prepares_both_networks() -> None:
    # A compile on the first dark window once held rate_policy even at a stretched stride for seconds.
    engine = _engine()
    assert engine.dark is not None and engine.dark.predictor is None
    engine.warmup(H, W)
    assert engine.dark.predictor is not None and engine.dark.windows == 0
