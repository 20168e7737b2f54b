# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Debian version order (stir_ros.training.deb_versions): which downloaded .deb ``stir-ros data`` unpacks."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stir_ros.core.errors import ConfigError
from stir_ros.training import photos
from stir_ros.training.deb_versions import compare_versions, deb_version, newest_deb

#: ``(a, b, sign of a - b)`` in Debian's order (deb-version(7)).
ORDERED = [
    ("1.9", "1.10", -1),  # numbers compare as numbers, not as text
    ("1.0~rc1", "1.0", -1),  # a tilde sorts before anything, even the end
    ("1.0~rc1", "1.0~rc2", -1),
    ("1.0~~", "1.0~", -1),
    ("1.0", "1.0+b1", -1),  # a binary rebuild comes after
    ("1.0", "1.0a", -1),
    ("1.0a", "1.0.1", -1),  # a letter sorts before any other non-digit
    ("1.0-1", "1.0-10", -1),
    ("1.0-9", "1.0-10", -1),
    ("2:1.0", "10.0", 1),  # an epoch outweighs every upstream version
    ("1:0.1", "2:0.0", -1),
    ("0:1.0", "1.0", 0),  # no epoch is epoch 0
    ("1.0", "1.0-0", 0),  # no revision compares as "0"
    ("1.01", "1.1", 0),  # leading zeros do not count
    ("1.2-3", "1.2-3", 0),
    ("7.4.2+dfsg-1", "7.4.2-1", 1),
    ("1.0-1~bpo1", "1.0-1", -1),
]


@pytest.mark.parametrize(("a", "b", "sign"), ORDERED)
def test_debian_version_order(a: str, b: str, sign: int) -> None:
    assert compare_versions(a, b) == sign
    assert compare_versions(b, a) == -sign


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="needs Debian's dpkg")
@pytest.mark.parametrize(("a", "b", "sign"), ORDERED)
def test_the_order_is_dpkgs(a: str, b: str, sign: int) -> None:
    """The table above is what dpkg itself says, not only what this module says."""
    op = {-1: "lt", 0: "eq", 1: "gt"}[sign]
    assert subprocess.run(["dpkg", "--compare-versions", a, op, b]).returncode == 0, (a, op, b)


def test_the_newest_deb_by_version_not_by_name() -> None:
    names = ["pkg_1.9-1_all.deb", "pkg_1.10-1_all.deb", "pkg_1.10~rc1-1_all.deb"]
    assert newest_deb([Path("debs", n) for n in names]) == (Path("debs", "pkg_1.10-1_all.deb"), "1.10-1")
    # apt-get download writes an epoch's colon as %3a
    epoch = ["pkg_9.9-1_all.deb", "pkg_1%3a0.5-1_amd64.deb"]
    assert newest_deb([Path(n) for n in epoch]) == (Path("pkg_1%3a0.5-1_amd64.deb"), "1:0.5-1")
    assert deb_version("pkg_1%3a0.5-1_amd64.deb") == "1:0.5-1"


@pytest.mark.parametrize("name", ["pkg.deb", "pkg_1.0.deb", "pkg_x%3a1.0_all.deb", "pkg__all.deb"])
def test_a_deb_not_named_package_version_arch_is_refused(name: str) -> None:
    with pytest.raises(ConfigError, match=f"'{name}' is not named PACKAGE_VERSION_ARCH.deb"):
        deb_version(name)


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs Debian's dpkg-deb")
def test_stir_ros_data_unpacks_the_newest_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  debian_package) -> None:  # fmt: skip
    """1.10 is newer than 1.9, though its file name sorts first."""
    cache = tmp_path / "cache"
    for version, licence in (("1.9-1", "GPL-2+"), ("1.10-1", "MIT")):
        root = tmp_path / version
        (root / "usr/share/backgrounds").mkdir(parents=True)
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (80, 120), dtype=np.uint8)).save(
            root / "usr/share/backgrounds/photo_by_A.png")
        debian_package(root, cache, "stir-test-photos", version, f"Files: *\nCopyright: A\nLicense: {licence}\n")
    source = photos.PhotoSource("stir-test-photos", "usr/share/backgrounds", ("*_by_*",))
    monkeypatch.setattr(photos, "SOURCES", (source,))
    records = photos.build(cache, max_size=64, log=lambda m: None)
    assert [(r["version"], r["licence"]) for r in records["train"] + records["val"]] == [("1.10-1", "MIT")]
