"""Bag replay + reconstructor on the bag's clock:
``ros2 launch stir_ros replay.launch.py bag:=recording method:=stir``.

Plays the bag with ``stir-ros bag play BAG --clock`` (publishes /clock) and runs the
reconstructor with ``use_sim_time`` true, so image stamps and the node clock follow the bag.

The node graph (executables, names, parameters, remappings) comes from
``stir_ros.ros.graph.build_graph``, the same function ``stir-ros run`` uses; this file only
turns it into launch_ros actions. Parameters: ``config/reconstructor.yaml`` (or ``params_file:=``),
overridden by the launch arguments below.
"""

from __future__ import annotations

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from stir_ros.ros.graph import LAUNCH_ARGUMENTS, build_graph

MODE = "replay"
ARGUMENTS = (
    "method", "weights", "device", "precision", "window_length", "stride_frames", "output_rate_hz",
    "max_batch", "alpha", "output_encoding", "use_sim_time", "spikes_topic", "image_topic",
    "camera_info_topic", "namespace", "bag",
)


def _actions(context, *_, **__):
    args = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS}
    params_file = LaunchConfiguration("params_file").perform(context) or None
    graph = build_graph(MODE, params_file, args)
    actions = [
        Node(
            package=spec.package, executable=spec.executable, name=spec.name, namespace=spec.namespace,
            parameters=[dict(spec.parameters)], remappings=list(spec.remappings), output="screen",
        )
        for spec in graph.nodes
    ]
    actions += [ExecuteProcess(cmd=list(p.cmd), name=p.name, output="screen") for p in graph.processes]
    return actions


def generate_launch_description() -> LaunchDescription:
    declared = [
        DeclareLaunchArgument(name, default_value="", description=f"{LAUNCH_ARGUMENTS[name][2]} (empty: from the params file)")
        for name in ARGUMENTS
    ]
    declared.append(DeclareLaunchArgument("params_file", default_value="", description="params YAML (empty: config/reconstructor.yaml)"))
    return LaunchDescription([*declared, OpaqueFunction(function=_actions)])
