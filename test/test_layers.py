# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The layers of DESIGN.md §2 hold: import-linter's contracts (.importlinter) and private names.

`lint-imports` checks that each layer imports only the layers below it (entry points -> ros -> bag |
training | evaluation -> reconstructor_settings -> engine -> models | runtime -> core), that the
ROS-free layers never import ROS 2 or the ROS adapters, that the core and the runtime import no
model code and that no package has an import cycle.
The contracts are shown to be live: a wrong import planted in a copy of the package breaks them.
Runs in `make test`, `make lint`, CI and `colcon test`.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "stir_ros"


def _lint_imports() -> str:
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    if not Path(exe).exists():
        pytest.skip("import-linter is not installed (requirements/test.txt pins it; ./scripts/setup.sh installs it)")
    return exe


def _run(cwd: Path) -> subprocess.CompletedProcess[str]:
    # lint-imports puts its working directory first on sys.path: the package in `cwd` is checked,
    # not the one in the colcon install space.
    return subprocess.run([_lint_imports(), "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_layer_contracts_hold() -> None:
    out = _run(ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout, out.stdout


# (module of the copy, line planted at its end, what the report must name)
WRONG_IMPORTS = [
    pytest.param("core/defaults.py", "from stir_ros.models import stir", "stir_ros.core.defaults -> stir_ros.models.stir",
                 id="core-imports-models"),
    pytest.param("bag/convert.py", "from stir_ros.ros import graph", "stir_ros.bag.convert -> stir_ros.ros.graph",
                 id="bag-imports-ros"),
    pytest.param("training/data.py", "import rclpy", "stir_ros.training.data -> rclpy", id="training-imports-rclpy"),
    pytest.param("models/official.py", "from stir_ros.models import checkpoint", ".official -> .checkpoint",
                 id="cycle-in-models"),
    pytest.param("core/stream.py", "from stir_ros.runtime import rate_policy",
                 "stir_ros.core.stream -> stir_ros.runtime.rate_policy", id="core-imports-runtime"),
    pytest.param("runtime/inference_worker.py", "from stir_ros.models import stir",
                 "stir_ros.runtime.inference_worker -> stir_ros.models.stir", id="runtime-imports-models"),
]  # fmt: skip


@pytest.mark.parametrize(("module", "line", "reported"), WRONG_IMPORTS)
def test_a_wrong_import_breaks_the_contracts(tmp_path: Path, module: str, line: str, reported: str) -> None:
    """The same check on a copy of the package with one wrong import: it fails and names it."""
    shutil.copytree(PACKAGE, tmp_path / "stir_ros", ignore=shutil.ignore_patterns("__pycache__", "weights", "*.pt"))
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    target = tmp_path / "stir_ros" / module
    target.write_text(target.read_text() + f"\n{line}  # planted by test_layers.py\n")
    out = _run(tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "BROKEN" in out.stdout and reported in out.stdout, out.stdout + out.stderr


def _private_imports(path: Path, root: Path = ROOT) -> list[str]:
    """``from stir_ros.x import _name`` in ``path`` (a module of the package) importing another module."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("stir_ros")):
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"{path.relative_to(root)}:{node.lineno}: {'.' * node.level}{node.module or ''} "
                                 f"import {alias.name}")  # fmt: skip
    return found


def test_no_private_name_is_imported_across_modules() -> None:
    """A helper that two modules share is public; a name starting with ``_`` stays in its module."""
    found = [hit for path in sorted(PACKAGE.rglob("*.py")) for hit in _private_imports(path)]
    assert not found, "private names imported from other modules:\n" + "\n".join(found)


def test_the_private_name_check_finds_one(tmp_path: Path) -> None:
    bad = tmp_path / "stir_ros" / "core" / "bad.py"
    bad.parent.mkdir(parents=True)
    bad.write_text("from stir_ros.core.packing import _frame_count\nfrom .stream import _x as y\n")
    assert len(_private_imports(bad, tmp_path)) == 2
