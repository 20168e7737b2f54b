# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""`pip install .`: the ROS-free core and the command-line tools, for machines without ROS 2.

The ROS 2 package (messages, nodes, launch files) is built by `colcon build` from CMakeLists.txt;
this file serves the other users: offline reconstruction, bag conversion, training, evaluation.
The message definitions are shipped as package data (``stir_ros/msg_defs``) so that the bag tools
can register SpikePacket with rosbags without a ROS installation.

Extras: ``stir`` is PyTorch (the STIR network, the simulator, training: requirements/stir.txt),
which no ROS distribution packages, so package.xml leaves it out and a robot adds it with
``pip install '.[stir]'``; ``deploy`` (OpenVINO, ONNX) and ``test`` include it. ``cluster`` is Ray
(requirements/cluster.txt), which runs the shards of ``stir-ros bag reconstruct --workers N``.
"""

from __future__ import annotations

import pathlib
import re
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

ROOT = pathlib.Path(__file__).resolve().parent


def _version() -> str:
    """The one version number, ``__version__`` in stir_ros/__init__.py (package.xml repeats it)."""
    text = (ROOT / "stir_ros" / "__init__.py").read_text(encoding="utf-8")
    return re.search(r'^__version__ = "([^"]+)"', text, re.M).group(1)


def _requirements(name: str) -> list[str]:
    lines = (ROOT / "requirements" / name).read_text().splitlines()
    return [ln.split("#")[0].strip() for ln in lines if ln.split("#")[0].strip()]


class BuildPyWithMessages(build_py):
    """Copy msg/*.msg into the package so that installed bag tools find the definitions."""

    def run(self) -> None:
        super().run()
        target = pathlib.Path(self.build_lib) / "stir_ros" / "msg_defs"
        target.mkdir(parents=True, exist_ok=True)
        for msg in sorted((ROOT / "msg").glob("*.msg")):
            shutil.copy2(msg, target / msg.name)


setup(
    name="stir_ros",
    version=_version(),
    description="Spiking-camera tools and STIR reconstruction (ROS-free core of the stir_ros package)",
    long_description=(ROOT / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["stir_ros", "stir_ros.*"]),
    package_data={"stir_ros": ["weights/*.pt", "weights/*.md", "models/*.md"]},
    include_package_data=False,
    install_requires=_requirements("base.txt"),
    extras_require={
        "stir": _requirements("stir.txt"),
        "deploy": _requirements("deploy.txt") + _requirements("stir.txt"),
        "cluster": _requirements("cluster.txt"),
        "test": _requirements("test.txt") + _requirements("stir.txt"),
    },
    entry_points={
        "console_scripts": [
            "stir-ros = stir_ros.cli:main",
            "spike_camera_driver = stir_ros.ros.driver_node:main",
            "spike_reconstructor = stir_ros.ros.reconstructor_node:main",
            "spike_camera_driver_lifecycle = stir_ros.ros.driver_node:main_lifecycle",
            "spike_reconstructor_lifecycle = stir_ros.ros.reconstructor_node:main_lifecycle",
        ]
    },
    cmdclass={"build_py": BuildPyWithMessages},
)
