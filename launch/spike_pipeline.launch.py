# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Driver + reconstructor: ``ros2 launch stir_ros spike_pipeline.launch.py method:=tfp``.

The node graph (executables, names, parameters, remappings) comes from
``stir_ros.ros.graph.build_graph``, the same function ``stir-ros run`` uses; this file only
turns it into launch_ros actions (stir_ros.ros.launch_support). Parameters: ``config/pipeline.yaml`` (or ``params_file:=``),
overridden by the launch arguments (stir_ros.ros.graph.MODE_ARGUMENTS).
``lifecycle:=true`` starts launch_ros ``LifecycleNode`` actions, configured and activated by launch
unless ``autostart:=false`` (then a lifecycle manager brings them up).
"""

from stir_ros.ros.launch_support import launch_description

MODE = "pipeline"


def generate_launch_description():
    return launch_description(MODE)
