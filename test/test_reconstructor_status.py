# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The reconstructor's /diagnostics level and message (stir_ros.runtime.reconstructor_status.judge).

The sensor part of the message must say what the node did about each defect and, where it did
nothing, what the user can do.
"""

from __future__ import annotations

from typing import Any

import pytest

from stir_ros.runtime.reconstructor_status import COUNTED, ReconstructorStatus


def _judge(**values: Any) -> tuple[str, str]:
    base: dict[str, Any] = {k: 0 for k in COUNTED}
    base.update(idle_no_subscribers=False, input_idle_s=0.0, unserved_s=0.0, method="tfp")
    base.update(values)
    return ReconstructorStatus.judge(base, active=True, images_published=5, diagnostics_period_s=1.0,
                                     stall_timeout_s=30.0, packet_span_s=0.005)  # fmt: skip


def test_repaired_defects_are_called_repaired() -> None:
    assert _judge(hot_pixels=300, hot_fraction=0.003, pixels_repaired=300, pixels_unrepaired=0) == (
        "warn", "sensor: 300 hot pixels (repaired)")


def test_pixels_left_unrepaired_are_not_called_repaired() -> None:
    level, message = _judge(hot_pixels=40, hot_fraction=0.004, dead_pixels=60, dead_fraction=0.006,
                            pixels_repaired=93, pixels_unrepaired=7)  # fmt: skip
    assert level == "warn" and "(repaired)" not in message, message
    assert "7 not repaired" in message, message


@pytest.mark.parametrize(("method", "dark_network"), [("tfp", False), ("tfi", False), ("stir", True), ("stir", False)])
def test_dark_current_is_not_called_repaired_and_the_message_says_what_to_do(method: str, dark_network: bool) -> None:
    level, message = _judge(method=method, dark_network=dark_network, dark_rate_measured=True, dark_rate_hz=45.0)
    assert level == "warn" and "dark-current rate 45 Hz" in message and "repaired" not in message, message
    if dark_network:
        assert "dark-robust network" in message and "windows_dark_weights" in message, message
    else:  # classical methods, or stir with dark_weights none: dark spikes are light; the way out is the network
        assert f"{method} counts it as light" in message and "dark_weights auto" in message, message


def test_a_parameter_change_loading_is_said_and_a_failed_one_warns() -> None:
    assert _judge(parameters_loading="precision, weights") == ("ok", "loading a parameter change (precision, weights)")
    level, message = _judge(parameters_loading="weights", parameter_load_failures=1)
    assert level == "warn" and message == "loading a parameter change (weights); counted: parameter_load_failures"
