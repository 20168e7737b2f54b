# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""``stir-ros data --permissive``: the training photographs a licence-clean model may be trained from."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stir_ros.core.errors import ConfigError
from stir_ros.training import photos
from stir_ros.training.photo_licences import PERMISSIVE_FOLDER, is_permissive


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs Debian's dpkg-deb")
def test_permissive_copies_only_training_photographs_under_permissive_licences(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, debian_package) -> None:  # fmt: skip
    root, cache = tmp_path / "pkgroot", tmp_path / "cache"
    pics = root / "usr/share/backgrounds"
    pics.mkdir(parents=True)
    licences = {"lake_by_C": "CC0-1.0", "hill_by_D": "CC-BY-SA-4.0", "road_by_E": "Expat", "tree_by_F": "CC-BY-4.0",
                "sea_by_G": "GPL-2+"}  # fmt: skip
    for i, name in enumerate(licences):
        Image.fromarray(np.full((80, 120), 40 * i, np.uint8)).save(pics / f"{name}.png")
    copyright = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
    copyright += "".join(f"Files: backgrounds/{n}.png\nCopyright: x\nLicense: {lic}\n\n" for n, lic in licences.items())
    debian_package(root, cache, "stir-lic-photos", "1.0-1", copyright)
    monkeypatch.setattr(photos, "SOURCES", (photos.PhotoSource("stir-lic-photos", "usr/share/backgrounds", ("*_by_*",)),))
    parser = argparse.ArgumentParser()
    photos.add_arguments(parser)
    assert photos.run(parser.parse_args(["--cache", str(cache), "--max-size", "64", "--permissive"])) == 0
    out = cache / PERMISSIVE_FOLDER
    # lake (CC0) and road (Expat) are training photographs; hill (share-alike) and sea (GPL) are not
    # permissive; tree (CC-BY) is a validation photograph, never trained on.
    assert sorted(p.name for p in out.glob("*.png")) == ["stir-lic-photos__lake_by_C.png", "stir-lic-photos__road_by_E.png"]
    assert (out / "stir-lic-photos__lake_by_C.png").read_bytes() == (cache / "train/stir-lic-photos__lake_by_C.png").read_bytes()
    attribution = (out / "ATTRIBUTION.md").read_text()
    assert "CC0-1.0" in attribution and "Expat" in attribution and "GPL" not in attribution
    assert (out / photos.MARKER).is_file()
    # A second run rebuilds it (ours: it carries the marker); a folder of the user's is refused.
    assert photos.run(parser.parse_args(["--cache", str(cache), "--max-size", "64", "--permissive"])) == 0
    shutil.rmtree(out)
    out.mkdir()
    with pytest.raises(ConfigError, match="not made by stir-ros data"):
        photos.run(parser.parse_args(["--cache", str(cache), "--max-size", "64", "--permissive"]))
    for licence in ("CC0-1.0", "CC-BY-4.0", "CC-BY-3.0", "Expat", "MIT", "BSD-3-Clause", "public-domain"):
        assert is_permissive(licence), licence
    for licence in ("CC-BY-SA-4.0", "CC-BY-NC-4.0", "CC-BY-ND-3.0", "GPL-2+", "LGPL-3", "unknown", ""):
        assert not is_permissive(licence), licence
