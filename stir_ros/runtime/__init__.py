# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""ROS-free node runtime: what a running node or tool needs besides the spike data itself.

The parameter table and settings defaults, the inference worker thread and the reconstructor's
diagnostics values, throughput and stream health, the rate policy, the Fast DDS profile and
shared-memory clean-up, stop-signal handling. It imports :mod:`stir_ros.core` only: never rclpy,
message modules or the model code (the layer contracts in ``.importlinter`` check it; DESIGN.md §2).
"""
