# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""ROS-free core: the spike-data domain and the base utilities every layer shares.

The domain: .dat I/O, packing, packets, streams and windows, simulation, sources, defects, the
reconstruction methods; the base utilities: errors, paths, YAML, text output, defaults.

Nothing under ``stir_ros.core`` imports rclpy, ROS message modules or the model code (the layer
contracts in ``.importlinter`` check it; DESIGN.md §2).
"""
