# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The driver's settings, validated: one field per parameter of the table, and the source they open.

:class:`DriverSettings` takes its fields' defaults from
:data:`stir_ros.runtime.parameters.DRIVER_PARAMETERS` (the defaults, names and meanings the node
declares); every number is checked against its bound (:data:`stir_ros.core.limits.PARAMETER_BOUNDS`)
and every choice against its list. A refused value raises
:class:`~stir_ros.core.errors.ConfigError` with the parameter's name, what it accepts and what it
got. ROS-free: the node (:mod:`stir_ros.ros.driver_node`) builds it from its parameters' values.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from stir_ros.core.errors import ConfigError
from stir_ros.core.packing import ENCODINGS
from stir_ros.core.paths import path_of_url
from stir_ros.runtime.parameters import DRIVER_NAME, DRIVER_PARAMETERS
from stir_ros.core.sensor_model import parse_sensor
from stir_ros.runtime.settings_table import check_bounds, defaults_from_table
from stir_ros.core.sources import DatSource, SimSource, SpikeSource

__all__ = ["DriverSettings", "SOURCES", "make_source"]

#: ``source`` values: a Vidar .dat file or the simulated moving scene.
SOURCES = ("dat", "sim")
#: Longest ``sim_sensor`` text (characters): a preset and a few FIELD=VALUE words.
MAX_SIM_SENSOR_CHARS = 1000


@dataclass(frozen=True)
@defaults_from_table(DRIVER_PARAMETERS)
class DriverSettings:
    """The driver's parameters, validated; each field's default is the table's."""

    source: str
    dat_path: str
    height: int
    width: int
    frame_rate_hz: float
    frames_per_packet: int
    realtime: bool
    loop: bool
    max_frames: int
    encoding: str
    frame_id: str
    camera_info_url: str
    wait_for_subscribers: int
    wait_for_subscribers_timeout_s: float
    sim_seed: int
    sim_alpha: float
    sim_max_speed: float
    sim_noise_std: float
    sim_sensor: str

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ConfigError(f"source must be 'dat' or 'sim', got {self.source!r}")
        if self.source == "dat" and not self.dat_path:
            raise ConfigError("source 'dat' needs dat_path")
        if self.height <= 0 or self.width <= 0:
            raise ConfigError(f"height and width must be positive, got {self.height}x{self.width}")
        if not self.frame_rate_hz > 0:
            raise ConfigError(f"frame_rate_hz must be positive, got {self.frame_rate_hz}")
        if self.frames_per_packet < 1:
            raise ConfigError(f"frames_per_packet must be >= 1, got {self.frames_per_packet}")
        if self.max_frames < 0:
            raise ConfigError(f"max_frames must be >= 0, got {self.max_frames}")
        check_bounds(self, DRIVER_NAME)  # every number within what the machine and sensor allow
        if self.encoding not in ENCODINGS:
            raise ConfigError(f"encoding must be one of {ENCODINGS}, got {self.encoding!r}")
        if len(self.sim_sensor) > MAX_SIM_SENSOR_CHARS:
            raise ConfigError(f"sim_sensor must be at most {MAX_SIM_SENSOR_CHARS} characters, got {len(self.sim_sensor)}")
        parse_sensor(self.sim_sensor.split())  # a bad model is refused here, before the node starts

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> DriverSettings:
        """Build from parameter values (unknown keys are ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


def make_source(s: DriverSettings) -> SpikeSource:
    """Open the configured source."""
    if s.source == "dat":
        # ~ and file:// as defect_map_url and camera_info_url (a params file's ~ is expanded by nobody else)
        return DatSource(path_of_url(s.dat_path, "dat_path"), s.height, s.width, s.frame_rate_hz, loop=s.loop)
    return SimSource(
        s.height, s.width, s.frame_rate_hz, alpha=s.sim_alpha, seed=s.sim_seed,
        max_speed=s.sim_max_speed, noise_std=s.sim_noise_std, sensor=parse_sensor(s.sim_sensor.split()),
    )  # fmt: skip
