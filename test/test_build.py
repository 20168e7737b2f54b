# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The colcon build (run by scripts/setup.sh) produced a usable ROS 2 install space."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
INSTALL = ROOT / ".ros_ws" / "install" / "stir_ros"

pytestmark = pytest.mark.skipif(
    not INSTALL.is_dir(), reason="no colcon install space: run ./scripts/setup.sh first"
)


def test_executables_are_installed_where_ros2_run_looks() -> None:
    for exe in ("spike_camera_driver", "spike_reconstructor", "stir-ros"):
        path = INSTALL / "lib" / "stir_ros" / exe
        assert path.exists(), path
        assert os.access(path, os.X_OK), f"{path} is not executable"


def test_launch_config_and_message_definitions_are_installed() -> None:
    share = INSTALL / "share" / "stir_ros"
    assert (share / "package.xml").is_file()
    assert (share / "msg" / "SpikePacket.msg").is_file()
    for src in sorted((ROOT / "launch").glob("*.launch.py")) + sorted((ROOT / "config").glob("*.yaml")):
        assert (share / src.parent.name / src.name).exists(), f"{src.name} not installed"
    # ament index entry: what `ros2 pkg prefix stir_ros` and launch's get_package_share_directory use
    assert (INSTALL / "share" / "ament_index" / "resource_index" / "packages" / "stir_ros").exists()


def test_message_and_core_import_from_the_install_space_outside_the_checkout(tmp_path) -> None:
    """From a directory that does not shadow the package, everything comes from the install."""
    code = (
        "import stir_ros, stir_ros.core.errors\n"
        "from stir_ros.msg import SpikePacket\n"
        "m = SpikePacket(height=2, width=3, num_frames=1, encoding=SpikePacket.ENCODING_UNPACKED_U8)\n"
        "m.data = bytes(6)\n"
        "assert SpikePacket.ENCODING_VIDAR_BITPACKED == 'vidar_bitpacked'\n"
        "print(stir_ros.__file__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert str(INSTALL) in out.stdout


def test_message_fields_match_the_definition() -> None:
    from stir_ros.msg import SpikePacket

    fields = SpikePacket.get_fields_and_field_types()
    assert fields == {
        "header": "std_msgs/Header",
        "height": "uint32",
        "width": "uint32",
        "seq": "uint64",
        "first_frame_index": "uint64",
        "frame_rate_hz": "double",
        "num_frames": "uint32",
        "encoding": "string",
        "data": "sequence<uint8>",
    }
