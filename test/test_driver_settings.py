# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The driver's settings: defaults taken from the parameter table, every number within its bound.

ROS-free (``stir_ros.ros.driver_settings`` and ``stir_ros.runtime.settings_table`` import no rclpy).
The start values a node refuses with these messages: ``test_reliability_faults.py``.
"""

from __future__ import annotations

import dataclasses
import math

import pytest

from stir_ros.core.errors import ConfigError
from stir_ros.core.limits import bound_for
from stir_ros.runtime.parameters import DRIVER_NAME, DRIVER_PARAMETERS, ParamSpec
from stir_ros.runtime.settings_table import defaults_from_table
from stir_ros.ros.driver_settings import DriverSettings


def test_defaults_are_the_table_s():
    assert {f.name: f.default for f in dataclasses.fields(DriverSettings)} == {s.name: s.default for s in DRIVER_PARAMETERS}
    assert DriverSettings() == DriverSettings.from_mapping({s.name: s.default for s in DRIVER_PARAMETERS})


@pytest.mark.parametrize(
    ("name", "value", "needle"),
    [
        ("height", 5000, "height must be in 1..4096 (pixels), got 5000"),
        ("width", 4097, "width must be in 1..4096 (pixels), got 4097"),
        ("frame_rate_hz", 2e6, "frame_rate_hz must be in 0.001..1e+06 (sensor frame rate), got 2000000.0"),
        ("frame_rate_hz", math.inf, "frame_rate_hz must be a finite number"),
        ("frames_per_packet", 10**6, "frames_per_packet must be in 1..100000 (frames per SpikePacket), got 1000000"),
        ("max_frames", 2**63, "max_frames must be in 0..4.61169e+18 (0: no limit)"),
        ("wait_for_subscribers", -1, "wait_for_subscribers must be in 0..1000 (subscribers), got -1"),
        ("wait_for_subscribers_timeout_s", -1.0, "wait_for_subscribers_timeout_s must be in 0..86400 (seconds), got -1.0"),
        ("wait_for_subscribers_timeout_s", math.nan, "wait_for_subscribers_timeout_s must be a finite number"),
        ("sim_seed", -1, "sim_seed must be in 0..9.22337e+18 (seed), got -1"),
        ("sim_alpha", 0.0, "sim_alpha must be in 0.001..1000 (simulated sensor alpha), got 0.0"),
        ("sim_max_speed", 1e9, "sim_max_speed must be in 0..1000 (pixels per frame), got 1000000000.0"),
        ("sim_noise_std", math.nan, "sim_noise_std must be a finite number"),
        ("frames_per_packet", 2.5, "frames_per_packet must be an integer"),
    ],
)  # fmt: skip
def test_a_number_outside_its_bound_is_refused_by_name(name, value, needle):
    with pytest.raises(ConfigError) as err:
        DriverSettings(**{name: value})
    assert needle in str(err.value)


@pytest.mark.parametrize("spec", [s for s in DRIVER_PARAMETERS if bound_for(DRIVER_NAME, s.name)], ids=lambda s: s.name)
def test_the_ends_of_every_bound_are_accepted(spec):
    bound = bound_for(DRIVER_NAME, spec.name)
    for value in (bound.low, bound.high):
        DriverSettings(**{spec.name: type(spec.default)(value)})


def test_a_settings_class_must_hold_exactly_the_table_s_parameters():
    table = (ParamSpec("a", 1, "one"), ParamSpec("b", "x", "two"))
    with pytest.raises(TypeError, match=r"missing \['b'\], extra \['c'\]"):

        @defaults_from_table(table)
        class Wrong:
            a: int
            c: str

    with pytest.raises(TypeError, match="Retyped.a is annotated float; its default 1 is int"):

        @defaults_from_table(table)
        class Retyped:
            a: float
            b: str

    @dataclasses.dataclass(frozen=True)
    @defaults_from_table(table)
    class Right:
        a: int
        b: str

    assert Right() == Right(a=1, b="x")


@pytest.mark.parametrize("given", ["~/rec/cam.dat", "file://{home}/rec/cam.dat"])
def test_dat_path_takes_home_and_file_urls_as_the_url_parameters_do(tmp_path, monkeypatch, given):
    """``dat_path: ~/rec/cam.dat`` in a params file: no shell expands it, so the driver must (as defect_map_url)."""
    import numpy as np

    from stir_ros.core.dat import write_dat
    from stir_ros.ros.driver_settings import make_source

    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "rec").mkdir()
    write_dat(tmp_path / "rec" / "cam.dat", np.ones((3, 8, 16), np.uint8))
    source = make_source(DriverSettings(source="dat", dat_path=given.format(home=tmp_path), height=8, width=16))
    try:
        block = source.read(3)
        assert block is not None and block.num_frames == 3 and block.data.min() == 255  # every pixel fired
    finally:
        source.close()
