# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""``python -m stir_ros.ros.driver_lifecycle``: the managed driver (``spike_camera_driver_lifecycle``)."""

import sys

from stir_ros.ros.driver_node import main_lifecycle as main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
