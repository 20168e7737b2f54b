# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The repository passes its linter (ruff, configured in ruff.toml).

flake8's errors and warnings, pep257 docstrings, bugbear, pyupgrade, and the layer rule that keeps
rclpy and the message modules out of the ROS-free core. Runs in `make test`, CI and `colcon test`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _ruff() -> list[str]:
    exe = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(exe).exists():
        pytest.skip("ruff is not installed (requirements/test.txt pins it; ./scripts/setup.sh installs it)")
    return [exe]


def test_ruff_passes() -> None:
    out = subprocess.run([*_ruff(), "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_layer_rule_catches_rclpy_in_the_core(tmp_path: Path) -> None:
    """A core module that imports rclpy fails the lint (the rule is live, not just configured)."""
    core = tmp_path / "stir_ros" / "core"
    core.mkdir(parents=True)
    (core / "bad.py").write_text('"""A core module."""\n\nimport rclpy\n\nNODE = rclpy\n')
    shutil.copy(ROOT / "ruff.toml", tmp_path / "ruff.toml")
    out = subprocess.run([*_ruff(), "check", "--no-cache", "."], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 1 and "TID251" in out.stdout, out.stdout + out.stderr
