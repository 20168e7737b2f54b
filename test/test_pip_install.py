# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""`pip install .` installs the ROS-free core and the command line without any ROS runtime."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_pip_install_gives_core_cli_and_message_text_without_ros(tmp_path) -> None:
    # Build from a copy so that setuptools' build/ and egg-info stay out of the checkout.
    src = tmp_path / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "weights_training*")
    for name in ("setup.py", "README.md", "package.xml"):
        shutil.copy2(ROOT / name, src / name)
    for name in ("stir_ros", "msg", "requirements"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    target = tmp_path / "site"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
         "--no-compile", "--quiet", "--target", str(target), str(src)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert build.returncode == 0, build.stderr
    assert (target / "stir_ros" / "msg_defs" / "SpikePacket.msg").read_text() == (
        ROOT / "msg" / "SpikePacket.msg"
    ).read_text()
    assert (target / "bin" / "stir-ros").exists()

    # Only the installed copy and the venv's third-party packages: no install space, no checkout.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "AMENT_PREFIX_PATH")}
    env["PYTHONPATH"] = str(target)
    code = (
        "import sys, stir_ros, stir_ros.core.errors, stir_ros.cli\n"
        f"assert stir_ros.__file__.startswith({str(target)!r}), stir_ros.__file__\n"
        "assert stir_ros.cli.main(['--help']) == 0\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('rclpy', 'std_msgs', 'sensor_msgs')]\n"
        "assert not bad, bad\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr + run.stdout
