# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The lifecycle transitions shared by the managed driver and reconstructor.

Each node's work class provides ``node_name``, ``_declare``, ``_configure``, ``_activate``,
``_deactivate``, ``_cleanup`` and ``settings`` (``None`` until configured);
:class:`ManagedTransitions` maps rclpy's lifecycle callbacks onto them and :class:`PlainTransitions`
runs the first three in the constructor, so the plain and the managed node run the same steps.

rclpy's ``change_state`` service raises inside the executor for a transition that the current
state does not offer (an unknown id, another state's transition, an intermediate one such as
``on_configure_success``), which ends the node: :meth:`ManagedTransitions._guard_change_state`
puts a check in front of it, so any request from anyone is answered, ``success`` false where the
state machine does not allow it, and the node stays in its state.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from lifecycle_msgs.srv import ChangeState
from rclpy.exceptions import ParameterException
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.node import Node

from stir_ros.core.errors import StirRosError

__all__ = ["ManagedTransitions", "PlainTransitions", "under_state_lock"]


def under_state_lock(step: Callable[[Any], None]) -> Callable[[Any], None]:
    """The transition ``step``, run holding the node's ``_state_lock`` (a re-entrant lock)."""

    def transition(self: Any) -> None:
        with self._state_lock:
            step(self)

    transition.__doc__ = step.__doc__
    return transition


class PlainTransitions:
    """The constructor of a plain ``(Work, PlainTransitions, Node)`` class: configured and active at once."""

    node_name: str

    def __init__(self, **kwargs: Any) -> None:
        Node.__init__(self, self.node_name, **kwargs)  # type: ignore[arg-type]
        self._declare()  # type: ignore[attr-defined]
        self._configure()  # type: ignore[attr-defined]
        self._activate()  # type: ignore[attr-defined]


class ManagedTransitions:
    """Lifecycle callbacks for a ``(Work, ManagedTransitions, LifecycleNode)`` class.

    It starts unconfigured. ``finalized_at`` is the ``time.monotonic()`` of shutdown: the process
    exits shortly after, once the transition has been answered.
    """

    finalized_at: float | None = None
    refused_transitions = 0  #: transition requests answered with success false, unrun
    settings: Any
    node_name: str

    def __init__(self, **kwargs: Any) -> None:
        LifecycleNode.__init__(self, self.node_name, **kwargs)  # type: ignore[arg-type]
        self._declare()  # type: ignore[attr-defined]
        self._guard_change_state()

    def _guard_change_state(self) -> None:
        """Answer a transition the current state does not offer with ``success`` false (see the module's text)."""
        service = getattr(self, "_service_change_state", None)
        if service is None:  # made without the communication interface
            return
        handle = service.callback

        def change_state(request: ChangeState.Request, response: ChangeState.Response) -> ChangeState.Response:
            offered = self._state_machine.available_transitions  # type: ignore[attr-defined]
            label = request.transition.label
            allowed = [t for t in offered if (t[1] == label if label else t[0] == request.transition.id)]
            if not allowed:
                state = self._state_machine.current_state[1]  # type: ignore[attr-defined]
                self.refused_transitions += 1
                self.get_logger().warning(  # type: ignore[attr-defined]
                    f"refused transition {label or request.transition.id!r} in state {state!r}: it offers "
                    f"{', '.join(f'{t[0]} ({t[1]})' for t in offered)}"
                )
                response.success = False
                return response
            request.transition.id, request.transition.label = allowed[0][0], ""
            return handle(request, response)

        service.callback = change_state

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._configure()  # type: ignore[attr-defined]
        except Exception as err:  # noqa: BLE001 - a transition always answers; the node stays unconfigured
            text = str(err) if isinstance(err, (StirRosError, ParameterException)) else f"{type(err).__name__}: {err}"
            self.get_logger().error(f"cannot configure: {text}")  # type: ignore[attr-defined]
            self._cleanup()  # type: ignore[attr-defined]
            return TransitionCallbackReturn.FAILURE
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._activate()  # type: ignore[attr-defined]
        return super().on_activate(state)  # type: ignore[misc]

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._deactivate()  # type: ignore[attr-defined]
        return super().on_deactivate(state)  # type: ignore[misc]

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._cleanup()  # type: ignore[attr-defined]
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self.settings is not None:
            self._cleanup()  # type: ignore[attr-defined]
        self.finalized_at = time.monotonic()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self.settings is not None:
            self._cleanup()  # type: ignore[attr-defined]
        return TransitionCallbackReturn.SUCCESS  # back to unconfigured
