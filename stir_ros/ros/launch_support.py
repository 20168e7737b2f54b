"""What the three launch files share: ROS 2 launch actions for one mode of the node graph.

The graph itself (executables, node names, parameters, remappings) comes from
:func:`stir_ros.ros.graph.build_graph`, the function ``stir-ros run`` uses too; this module only
declares the launch arguments and wraps the graph in ``launch_ros`` actions. It imports
``launch`` and ``launch_ros``, which exist on a ROS 2 installation but not in the PyPI set-up, so
nothing else in the package imports it.
"""

from __future__ import annotations

from typing import Any

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.substitutions import ExecutableInPackage

from stir_ros.ros.graph import LAUNCH_ARGUMENTS, MODE_ARGUMENTS, build_graph, default_config

__all__ = ["launch_description"]


def _actions(context: Any, mode: str) -> list[Any]:
    args = {name: LaunchConfiguration(name).perform(context) for name in MODE_ARGUMENTS[mode]}
    params_file = LaunchConfiguration("params_file").perform(context) or None
    graph = build_graph(mode, params_file, args)
    actions: list[Any] = [
        Node(
            package=spec.package, executable=spec.executable, name=spec.name, namespace=spec.namespace,
            parameters=[dict(spec.parameters)], remappings=list(spec.remappings), output="screen",
        )
        for spec in graph.nodes
    ]
    for p in graph.processes:
        # An executable of this package lives in lib/stir_ros, which is not on PATH on a ROS 2
        # installation: resolve it the way `ros2 run` does.
        head = ExecutableInPackage(executable=p.cmd[0], package=p.package) if p.package else p.cmd[0]
        actions.append(ExecuteProcess(cmd=[head, *p.cmd[1:]], name=p.name, output="screen"))
    return actions


def launch_description(mode: str) -> LaunchDescription:
    """Launch description for ``mode`` (pipeline | reconstruct | replay).

    Every argument defaults to empty, which keeps the params file's value.
    """
    declared = [
        DeclareLaunchArgument(
            name, default_value="", description=f"{LAUNCH_ARGUMENTS[name][2]} (empty: from the params file)"
        )
        for name in MODE_ARGUMENTS[mode]
    ]
    declared.append(
        DeclareLaunchArgument(
            "params_file", default_value="", description=f"params YAML (empty: {default_config(mode).name})"
        )
    )
    return LaunchDescription([*declared, OpaqueFunction(function=_actions, kwargs={"mode": mode})])
