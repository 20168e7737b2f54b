# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The package's config files (stir_ros.core.config_files): found from any folder, not only the checkout's root."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stir_ros.core.config_files import find_params_file
from stir_ros.core.errors import ConfigError


@pytest.fixture()
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An install space (as colcon lays it out) first on AMENT_PREFIX_PATH, and a working folder elsewhere."""
    prefix = tmp_path / "install"
    (prefix / "share" / "stir_ros" / "config").mkdir(parents=True)
    (prefix / "share" / "stir_ros" / "config" / "pipeline.yaml").write_text("installed\n")
    monkeypatch.setenv("AMENT_PREFIX_PATH", f"{prefix}:{tmp_path / 'no_such_prefix'}")
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    return prefix / "share" / "stir_ros" / "config"


@pytest.mark.parametrize("given", ["config/pipeline.yaml", "pipeline.yaml"])
def test_a_name_not_in_the_current_folder_is_the_installed_config(installed: Path, given: str) -> None:
    """The README's ``stir-ros run config/pipeline.yaml`` worked only from the checkout's root."""
    assert find_params_file(given) == installed / "pipeline.yaml"


def test_a_file_in_the_current_folder_comes_first(installed: Path) -> None:
    Path("config").mkdir()
    Path("config/pipeline.yaml").write_text("mine\n")
    assert find_params_file("config/pipeline.yaml") == Path("config/pipeline.yaml")
    assert find_params_file(Path("config/pipeline.yaml").resolve()) == Path("config/pipeline.yaml").resolve()


def test_a_missing_file_names_where_it_was_looked_for(installed: Path) -> None:
    with pytest.raises(ConfigError) as missing:
        find_params_file("config/cameras.yaml")
    text = str(missing.value)
    assert text.startswith("params file 'config/cameras.yaml' not found in the current folder"), text
    assert str(Path.cwd()) in text and str(installed) in text, text
    assert re.search(r"stir_ros/config\b", text.rsplit(str(installed), 1)[1]), text  # the checkout's config/ too
