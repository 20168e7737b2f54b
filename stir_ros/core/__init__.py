# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""ROS-free core: spike I/O, packing, stream checks, simulation, classical reconstruction.

Nothing under ``stir_ros.core`` imports rclpy, ROS message modules or the model code (the layer
contracts in ``.importlinter`` check it; DESIGN.md §2).
"""
