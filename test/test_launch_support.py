# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The launch files' actions (stir_ros.ros.launch_support), against stand-ins for launch and launch_ros.

The PyPI set-up has neither ``launch`` nor ``launch_ros``, so the real ``ros2 launch`` cannot run
here; these stand-ins record what the launch code asks for. With ``lifecycle:=true`` and
``autostart`` (default true) every managed node gets the launch_ros pattern: an ``OnStateTransition``
handler (configuring -> inactive) that emits ``ChangeState(activate)``, then ``ChangeState(configure)``.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

import pytest

from stir_ros.core.errors import ConfigError
from stir_ros.ros.graph import DRIVER_NAME, MODE_ARGUMENTS, RECONSTRUCTOR_NAME

Transition = pytest.importorskip("lifecycle_msgs.msg").Transition


class _Recorded:
    """A launch entity stand-in: keeps its positional and keyword arguments."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs


class _LaunchConfiguration(_Recorded):
    def perform(self, context: dict[str, str]) -> str:
        return context.get(self.args[0], "")


def _stub_modules() -> dict[str, types.ModuleType]:
    names = {
        "launch": ["LaunchDescription"],
        "launch.actions": ["DeclareLaunchArgument", "EmitEvent", "ExecuteProcess", "OpaqueFunction", "RegisterEventHandler"],
        "launch.events": [],
        "launch.substitutions": [],
        "launch_ros": [],
        "launch_ros.actions": ["LifecycleNode", "Node"],
        "launch_ros.event_handlers": ["OnStateTransition"],
        "launch_ros.events": [],
        "launch_ros.events.lifecycle": ["ChangeState"],
        "launch_ros.substitutions": ["ExecutableInPackage"],
    }
    modules = {}
    for name, classes in names.items():
        mod = types.ModuleType(name)
        for cls in classes:
            setattr(mod, cls, type(cls, (_Recorded,), {}))
        modules[name] = mod
    modules["launch.substitutions"].LaunchConfiguration = _LaunchConfiguration
    modules["launch.events"].matches_action = lambda action: (lambda candidate: candidate is action)
    return modules


@pytest.fixture()
def launch_support(monkeypatch):
    for name, module in _stub_modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.delitem(sys.modules, "stir_ros.ros.launch_support", raising=False)
    module = importlib.import_module("stir_ros.ros.launch_support")
    yield module
    sys.modules.pop("stir_ros.ros.launch_support", None)  # built on the stand-ins: never reuse it
    if hasattr(sys.modules["stir_ros.ros"], "launch_support"):
        delattr(sys.modules["stir_ros.ros"], "launch_support")


def _actions(launch_support, mode: str = "pipeline", **given: str) -> list[Any]:
    description = launch_support.launch_description(mode)
    (opaque,) = [e for e in description.args[0] if type(e).__name__ == "OpaqueFunction"]
    context = {name: "" for name in MODE_ARGUMENTS[mode]} | {"params_file": ""} | given
    return opaque.kwargs["function"](context, **opaque.kwargs["kwargs"])


def test_autostart_is_declared_and_true_by_default(launch_support):
    for mode in ("pipeline", "reconstruct", "replay"):
        declared = {e.args[0]: e.kwargs for e in launch_support.launch_description(mode).args[0]
                    if type(e).__name__ == "DeclareLaunchArgument"}  # fmt: skip
        assert declared["autostart"]["default_value"] == "true"
        assert declared["lifecycle"]["default_value"] == ""  # from the graph: plain nodes unless asked


def test_lifecycle_autostart_configures_then_activates_every_node(launch_support):
    actions = _actions(launch_support, lifecycle="true", method="tfp")
    kinds = [type(a).__name__ for a in actions]
    assert kinds == ["LifecycleNode", "RegisterEventHandler", "EmitEvent"] * 2
    for i, name in ((0, DRIVER_NAME), (3, RECONSTRUCTOR_NAME)):
        node, handler, configure = actions[i : i + 3]
        assert node.kwargs["name"] == name and node.kwargs["executable"] == f"{name}_lifecycle"
        assert node.kwargs["namespace"] == ""  # LifecycleNode needs it, even empty
        # configure is asked for at start, for this node only
        event = configure.kwargs["event"]
        assert event.kwargs["transition_id"] == Transition.TRANSITION_CONFIGURE
        assert event.kwargs["lifecycle_node_matcher"](node) and not event.kwargs["lifecycle_node_matcher"](actions[3 - i])
        # activate once configure has succeeded (configuring -> inactive)
        (on_transition,) = handler.args
        assert on_transition.kwargs["target_lifecycle_node"] is node
        assert (on_transition.kwargs["start_state"], on_transition.kwargs["goal_state"]) == ("configuring", "inactive")
        (activate,) = on_transition.kwargs["entities"]
        assert activate.kwargs["event"].kwargs["transition_id"] == Transition.TRANSITION_ACTIVATE
        assert activate.kwargs["event"].kwargs["lifecycle_node_matcher"](node)


def test_autostart_false_leaves_managed_nodes_unconfigured(launch_support):
    actions = _actions(launch_support, "reconstruct", lifecycle="true", autostart="false")
    assert [type(a).__name__ for a in actions] == ["LifecycleNode"]


def test_plain_nodes_get_no_transitions(launch_support):
    for autostart in ("", "true", "false"):
        actions = _actions(launch_support, "replay", bag="some_bag", autostart=autostart)
        assert [type(a).__name__ for a in actions] == ["Node", "ExecuteProcess"]
        assert actions[0].kwargs["executable"] == RECONSTRUCTOR_NAME


def test_a_bad_autostart_value_is_refused(launch_support):
    with pytest.raises(ConfigError, match="autostart"):
        _actions(launch_support, lifecycle="true", autostart="sometimes")
