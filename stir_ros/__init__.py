# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""stir_ros: ROS 2 driver and STIR reconstruction for spiking cameras.

The package is split in a ROS-free core (``stir_ros.core``, ``stir_ros.runtime``,
``stir_ros.models``, ``stir_ros.bag``, ``stir_ros.training``) that imports neither rclpy nor message modules, and thin
ROS 2 adapters in ``stir_ros.ros``. After ``colcon build`` the generated message module
``stir_ros.msg`` sits next to these sources.
"""

from pkgutil import extend_path

# Running from a source checkout puts this directory first on sys.path, ahead of the colcon
# install space that holds the generated ``stir_ros.msg``; extending the package path with every
# ``stir_ros`` directory on sys.path lets both halves of the package import either way.
__path__ = extend_path(__path__, __name__)

#: The one version number: setup.py reads it, package.xml repeats it (test/test_repository.py checks).
__version__ = "0.1.0"

__all__ = ["__version__"]
