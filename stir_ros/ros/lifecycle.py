# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The lifecycle transitions shared by the managed driver and reconstructor.

Each node's work class provides ``_configure``, ``_activate``, ``_deactivate``, ``_cleanup`` and
``settings`` (``None`` until configured); :class:`ManagedTransitions` maps rclpy's lifecycle
callbacks onto them, so the plain and the managed node run the same steps.
"""

from __future__ import annotations

import time
from typing import Any

from rclpy.exceptions import ParameterException
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn

from stir_ros.core.errors import StirRosError

__all__ = ["ManagedTransitions"]


class ManagedTransitions:
    """Lifecycle callbacks for a ``(Work, ManagedTransitions, LifecycleNode)`` class.

    ``finalized_at`` is the ``time.monotonic()`` of shutdown: the process exits shortly after,
    once the transition has been answered.
    """

    finalized_at: float | None = None
    settings: Any

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
