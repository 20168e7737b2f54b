# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""What the three launch files share: ROS 2 launch actions for one mode of the node graph.

The graph itself (executables, node names, parameters, remappings) comes from
:func:`stir_ros.ros.graph.build_graph`, the function ``stir-ros run`` uses too; this module only
declares the launch arguments and wraps the graph in ``launch_ros`` actions. It imports
``launch`` and ``launch_ros``, which exist on a ROS 2 installation but not in the PyPI set-up, so
nothing else in the package imports it.

With ``lifecycle:=true`` the nodes are ``launch_ros`` ``LifecycleNode`` actions, and with
``autostart:=true`` (the default) launch itself brings each one up: a ``ChangeState`` event asks
for *configure* as soon as the process runs, and an ``OnStateTransition`` handler asks for
*activate* when the node reaches *inactive* (configuring -> inactive). A node whose configure
fails (bad parameters, missing weights, stir without PyTorch) stays unconfigured and is not
activated; the reason is in its log. ``autostart:=false`` leaves the nodes unconfigured for a
lifecycle manager.
"""

from __future__ import annotations

from typing import Any

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, ExecuteProcess, OpaqueFunction, RegisterEventHandler
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from launch_ros.substitutions import ExecutableInPackage
from lifecycle_msgs.msg import Transition

from stir_ros.core.errors import ConfigError
from stir_ros.ros.graph import LAUNCH_ARGUMENTS, MODE_ARGUMENTS, NodeSpec, build_graph, default_config, parse_value

__all__ = ["launch_description"]

#: Launch-file-only argument (not a graph argument): bring managed nodes up at start.
AUTOSTART = "autostart"


def _managed(spec: NodeSpec) -> bool:
    """Whether the graph chose the lifecycle executable for this node (``lifecycle:=true``)."""
    return spec.executable.endswith("_lifecycle")


def _node_actions(spec: NodeSpec, autostart: bool) -> list[Any]:
    """The node's action; for a managed node with ``autostart``, also configure -> activate."""
    kwargs = {
        "package": spec.package, "executable": spec.executable, "name": spec.name, "namespace": spec.namespace,
        "parameters": [dict(spec.parameters)], "remappings": list(spec.remappings), "output": "screen",
    }  # fmt: skip
    if not _managed(spec):
        return [Node(**kwargs)]
    node = LifecycleNode(**kwargs)
    if not autostart:
        return [node]
    activate = EmitEvent(
        event=ChangeState(lifecycle_node_matcher=matches_action(node), transition_id=Transition.TRANSITION_ACTIVATE)
    )
    return [
        node,
        # Registered before configure is asked for, so that the inactive state is never missed.
        RegisterEventHandler(
            OnStateTransition(target_lifecycle_node=node, start_state="configuring", goal_state="inactive",
                              entities=[activate])  # fmt: skip
        ),
        # LifecycleNode waits for the node's change_state service, then calls it.
        EmitEvent(
            event=ChangeState(lifecycle_node_matcher=matches_action(node), transition_id=Transition.TRANSITION_CONFIGURE)
        ),
    ]


def _actions(context: Any, mode: str) -> list[Any]:
    args = {name: LaunchConfiguration(name).perform(context) for name in MODE_ARGUMENTS[mode]}
    params_file = LaunchConfiguration("params_file").perform(context) or None
    graph = build_graph(mode, params_file, args)
    try:
        autostart = parse_value(LaunchConfiguration(AUTOSTART).perform(context) or "true", True)
    except ConfigError as err:
        raise ConfigError(f"launch argument {AUTOSTART}: {err}") from None
    actions: list[Any] = [action for spec in graph.nodes for action in _node_actions(spec, autostart)]
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
    declared.append(
        DeclareLaunchArgument(
            AUTOSTART, default_value="true",
            description="with lifecycle:=true, configure and activate the managed nodes at start "
            "(false: leave them unconfigured for a lifecycle manager)",
        )  # fmt: skip
    )
    return LaunchDescription([*declared, OpaqueFunction(function=_actions, kwargs={"mode": mode})])
