# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Shared pytest fixtures.

ROS tests run real rclpy nodes in several processes over Fast DDS. Each test session picks its
own ROS domain and keeps discovery on this host, so that parallel sessions (and other machines on
the network) never see each other's topics.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# Decided once per session, before any test imports rclpy, and inherited by child processes.
os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random(os.getpid()).randint(1, 100)))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
os.environ.setdefault("PYTHONUNBUFFERED", "1")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "ros: needs rclpy and the colcon-built messages")
    config.addinivalue_line("markers", "cuda: needs a CUDA device (skipped without one)")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:  # the ROS-free core can be tested without torch for some modules
        has_cuda = False
    skip_cuda = pytest.mark.skip(reason="no CUDA device on this machine")
    for item in items:
        if "cuda" in item.keywords and not has_cuda:
            item.add_marker(skip_cuda)


@pytest.fixture()
def ros_env() -> dict[str, str]:
    """Environment for child processes that run ROS nodes (same domain as this session)."""
    return dict(os.environ)


@pytest.fixture()
def nodes(tmp_path, ros_env):
    """Node processes started by a test (``ros_support.Nodes``), stopped when it ends."""
    pytest.importorskip("rclpy")
    from ros_support import Nodes

    n = Nodes(tmp_path, ros_env)
    try:
        yield n
    finally:
        n.stop()


@pytest.fixture()
def ros_node():
    """An rclpy node in this test process (subscriptions, publishers, service calls)."""
    rclpy = pytest.importorskip("rclpy")
    rclpy.init()
    node = rclpy.create_node(f"test_{uuid.uuid4().hex[:8]}")
    try:
        yield node
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


# --------------------------------------------------------------------------- models and training


def _spikezoo_package() -> Path | None:
    # find_spec locates the package without importing it (spikezoo's __init__ needs extra deps).
    spec = importlib.util.find_spec("spikezoo")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


@pytest.fixture(scope="session")
def spikezoo_package() -> Path | None:
    """The installed spikezoo package's folder, found without importing it; None where not installed."""
    return _spikezoo_package()


@pytest.fixture(scope="session")
def spikezoo_train(spikezoo_package) -> Path:
    """Spikezoo's bundled REDS-derived training clips (``spike/*.dat``, ``gt/*.png``); skips without them."""
    train = None if spikezoo_package is None else spikezoo_package / "data" / "base" / "train"
    if train is None or not train.is_dir():
        pytest.skip("spikezoo's bundled REDS-derived data is not installed")
    return train


@pytest.fixture(scope="session")
def authors_stir(spikezoo_package) -> type:
    """The authors' STIR class (the oracle), from the installed spikezoo package.

    Loaded without importing spikezoo (its ``__init__`` needs extras): spikezoo's ``archs``
    folder holds the authors' code as the top-level package ``stir``. Skips where spikezoo or its
    ``archs/stir`` is not installed.
    """
    if spikezoo_package is None:
        pytest.skip("spikezoo (the authors' STIR oracle) is not installed")
    archs = str(spikezoo_package / "archs")
    if not os.path.isdir(os.path.join(archs, "stir")):
        pytest.skip(f"spikezoo has no archs/stir at {archs}")
    if archs not in sys.path:
        sys.path.insert(0, archs)
    from stir.models.networks_STIR import STIR  # type: ignore[import-not-found]

    return STIR


def randomise_weights(model: Any, seed: int) -> None:
    """Random weights of a STIR network (ours or the authors') that keep activations O(1).

    Convolutions uniform in ``+-sqrt(3 / fan_in)``; temperatures in [0.5, 2]; PReLU slopes in
    [0.05, 0.5]; norm scales in [0.5, 1.5]; biases in [-0.1, 0.1]; batch-norm statistics far from
    the identity (means in [-0.2, 0.2], variances in [0.5, 2]). Deterministic in ``seed``.
    """
    import torch

    gen = torch.Generator().manual_seed(seed)

    def uniform(t: Any, lo: float, hi: float) -> None:
        t.copy_(torch.rand(t.shape, generator=gen) * (hi - lo) + lo)

    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 4:
                fan_in = p.shape[1] * p.shape[2] * p.shape[3]
                bound = (3.0 / fan_in) ** 0.5
                uniform(p, -bound, bound)
            elif "temperature" in name:
                uniform(p, 0.5, 2.0)
            elif p.numel() == 1 or name.endswith("act.weight") or ".1.weight" in name:
                uniform(p, 0.05, 0.5)  # PReLU slopes
            elif name.endswith("weight"):
                uniform(p, 0.5, 1.5)  # norm scales
            else:
                uniform(p, -0.1, 0.1)  # biases
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                uniform(b, -0.2, 0.2)
            elif name.endswith("running_var"):
                uniform(b, 0.5, 2.0)
            elif name.endswith("num_batches_tracked"):
                b.fill_(int(torch.randint(1, 10_000, (1,), generator=gen)))


@pytest.fixture(scope="session")
def randomise() -> Callable[[Any, int], None]:
    """:func:`randomise_weights`: ``randomise(model, seed)``."""
    return randomise_weights


@pytest.fixture(scope="session")
def random_stir41_weights(tmp_path_factory) -> Path:
    """A real STIR-41 network with random weights, saved as a checkpoint (test-only).

    Random batch-norm statistics too, so that the output is not trivially flat.
    """
    import torch

    from stir_ros.models import build_model, save_checkpoint

    torch.manual_seed(0)
    model = build_model({"type": "stir_41"})
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.1, 0.1)
                mod.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("weights") / "random_stir41.pt"
    save_checkpoint(path, model, {"window_length": 41, "alpha": 0.6, "notes": "random weights for tests"},
                    model_config={"type": "stir_41"})  # fmt: skip
    return path


@pytest.fixture(scope="session")
def train_args() -> Callable[..., argparse.Namespace]:
    """``train_args(out, *flags)``: the arguments of a tiny CPU training run (3 steps, 32x32 crops)."""
    from stir_ros.training import train as train_mod

    def make(out, *extra: str) -> argparse.Namespace:
        parser = argparse.ArgumentParser()
        train_mod.add_arguments(parser)
        return parser.parse_args([
            "--out", str(out), "--steps", "3", "--crop", "32", "--batch-size", "1", "--threads", "1",
            "--device", "cpu", "--val-every", "0", "--log-every", "0", "--no-progress", "--seed", "7",
            "--max-layers", "2", *extra,
        ])  # fmt: skip

    return make


@pytest.fixture(scope="session")
def debian_package() -> Callable[..., Path]:
    """``debian_package(root, cache, package, version, copyright)``: build ``root`` into a real .deb.

    Writes ``root/usr/share/doc/PACKAGE/copyright`` (the given DEP-5 text) and ``DEBIAN/control``,
    and builds ``cache/debs/PACKAGE_VERSION_all.deb`` with ``dpkg-deb``, where ``stir-ros data``
    looks for downloaded packages. Returns the .deb's path.
    """
    import subprocess

    def make(root: Path, cache: Path, package: str, version: str, copyright: str) -> Path:
        doc = root / "usr/share/doc" / package
        doc.mkdir(parents=True, exist_ok=True)
        (doc / "copyright").write_text(copyright)
        (root / "DEBIAN").mkdir(exist_ok=True)
        (root / "DEBIAN/control").write_text(
            f"Package: {package}\nVersion: {version}\nArchitecture: all\nMaintainer: t <t@example.org>\n"
            f"Description: test package\n"
        )
        (cache / "debs").mkdir(parents=True, exist_ok=True)
        deb = cache / "debs" / f"{package}_{version}_all.deb"
        subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(root), str(deb)], check=True,
                       capture_output=True)  # fmt: skip
        return deb

    return make
