# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The method registry (stir_ros/core/methods.py): the one place that says what a method is."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from stir_ros.core.errors import ConfigError
from stir_ros.core.methods import METHOD_TABLE, METHODS, STIR_WINDOW_LENGTHS, ReconstructionMethod, method_spec
from stir_ros.engine import EngineConfig
from stir_ros.reconstructor_settings import ReconstructorSettings, build_engine, warm_up

PACKAGE = Path(__file__).resolve().parents[1] / "stir_ros"
#: A comparison of a method's name: what the registry replaces (`method == "stir"`, `spec.method != x`).
NAME_COMPARISON = re.compile(r"\bmethod\s*(==|!=)|(==|!=)\s*[\w.]*\bmethod\b")


def test_no_code_compares_a_methods_name_outside_the_registry():
    found = [f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}"
             for path in sorted(PACKAGE.rglob("*.py")) if path.name != "methods.py"
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if NAME_COMPARISON.search(line)]  # fmt: skip
    assert not found, "branch on the method's entry (core/methods.py), not its name:\n" + "\n".join(found)


def test_every_entry_is_a_network_or_an_estimate():
    assert METHODS == tuple(METHOD_TABLE) == ("stir", "tfp", "tfi")
    for name, spec in METHOD_TABLE.items():
        assert spec.name == name
        assert (spec.network is None) != (spec.estimate is None), f"{name}: exactly one of network and estimate"
        assert spec.auto_device in ("auto", "cpu")
        assert spec.default_window_length > 0
    with pytest.raises(ConfigError, match="method must be one of stir, tfp, tfi, got 'nope'"):
        method_spec("nope")
    with pytest.raises(ConfigError, match=r"method must be one of stir, tfp, tfi, got \['stir'\]"):
        EngineConfig(method=["stir"])  # type: ignore[arg-type]  # a YAML list, say: refused, not a TypeError


def test_networks_name_registered_models_with_the_window_lengths_they_are_built_for():
    pytest.importorskip("torch")
    from stir_ros.models import list_models
    from stir_ros.models.stir import BLOCK_SPLITS

    assert STIR_WINDOW_LENGTHS == tuple(sorted(BLOCK_SPLITS))
    for spec in METHOD_TABLE.values():
        if spec.needs_weights:
            assert spec.network in list_models()
    with pytest.raises(ConfigError, match="STIR supports window_length 41 or 61"):
        EngineConfig(method="stir", window_length=51)


def test_a_new_classical_method_is_one_entry(monkeypatch):
    """An estimate function and one table entry: the engine, the batch path and the settings take it."""
    calls: list[tuple[int, ...]] = []

    def brightest(windows, alpha=0.6):  # numpy or torch, [B, T, H, W] -> [B, H, W] / alpha
        calls.append(tuple(windows.shape))
        return windows.max(axis=1) / alpha if isinstance(windows, np.ndarray) else windows.amax(dim=1) / alpha

    monkeypatch.setitem(METHOD_TABLE, "brightest", ReconstructionMethod("brightest", estimate=brightest,
                                                                        default_window_length=9))
    engine = build_engine(ReconstructorSettings(method="brightest", device="cpu"), lambda *_: None)
    assert engine.window_length == 9 and engine.weights_path is None
    windows = np.zeros((2, 9, 4, 5), np.uint8)
    windows[0, 3, 1, 2] = 1
    images = engine.reconstruct(windows)
    assert calls == [(2, 9, 4, 5)]
    assert images[0, 1, 2] == 1.0 and images.sum() == 1.0  # 1 / 0.6, clipped to [0, 1]
    assert warm_up(engine, 4, 5, set()) is None  # no timing statement: that is for networks
