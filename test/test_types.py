# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The package passes its type check (mypy, configured in mypy.ini).

The modules with known errors are listed in mypy.ini, error code by error code; everything else
is checked, function bodies without annotations included. Runs in `make test`, `make lint`, CI
and `colcon test`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _mypy() -> list[str]:
    exe = shutil.which("mypy") or str(Path(sys.executable).with_name("mypy"))
    if not Path(exe).exists():
        pytest.skip("mypy is not installed (requirements/test.txt pins it; ./scripts/setup.sh installs it)")
    return [exe]


def test_mypy_passes() -> None:
    # The cache (.mypy_cache, which ignores itself in git) makes a second run take seconds.
    out = subprocess.run(_mypy(), cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_type_check_is_live(tmp_path: Path) -> None:
    """mypy.ini is read: a wrong assignment in an unannotated function is reported, also in scripts/."""
    core = tmp_path / "stir_ros" / "core"
    core.mkdir(parents=True)
    (tmp_path / "stir_ros" / "__init__.py").write_text("")
    (core / "__init__.py").write_text("")
    (core / "bad.py").write_text('def f():\n    size: int = "large"\n    return size\n')
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "tool.py").write_text('def g():\n    count: int = "many"\n    return count\n')
    shutil.copy(ROOT / "mypy.ini", tmp_path / "mypy.ini")
    out = subprocess.run(_mypy(), cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "stir_ros/core/bad.py:2: error" in out.stdout and "[assignment]" in out.stdout, out.stdout
    assert "scripts/tool.py:2: error" in out.stdout, out.stdout
