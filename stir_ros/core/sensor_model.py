# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""What a real spiking camera adds to the ideal integrate-and-fire pixel (DESIGN.md §4).

:class:`SensorModel` holds the documented, seeded imperfections of a sensor; the simulator
(:func:`stir_ros.core.simulator.simulate_spikes`, :class:`~stir_ros.core.simulator.IntegrateAndFire`)
applies them when given one. All default to zero: the ideal sensor, whose spikes are exactly those
of the noiseless simulator. Per pixel, frame by frame::

    charge = alpha * gain[p] * intensity            (+ photon shot noise of that charge)
    acc   += charge + dark events (Poisson, rate dark_rate[p])
    fire when acc >= threshold * thr[p] * (1 + jitter), then subtract what fired
    hot pixels fire with probability hot_rate[p] every frame; dead pixels never fire

The fixed pattern (``gain``, ``thr``, ``dark_rate``, the hot and dead pixels) is drawn once per
sensor from its own seed; the temporal noise (shot noise, jitter, dark events, hot firings) is
drawn frame by frame, so a stream simulated packet by packet equals one simulated at once.

Magnitudes of the ``realistic`` preset, from published simulators (their code not used):
SCSim (ICME 2024) gives a per-pixel threshold offset of about 0.05 V on a 1.1 V swing (4.5 %),
a photo-gain spread of 5.8 % and a per-pixel dark current whose spread is about 40 % of its mean
(N(0.44, 0.17) in its units); SpikingSIM reports random "inherent" spikes. The absolute dark rate
(20 Hz at any frame rate), the electrons per threshold (5,000: a 1.1 V swing on a node of under
1 fF), the jitter and the defect fractions are this package's assumptions of an ordinary CMOS
sensor, stated here so that they can be changed.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stir_ros.core.errors import ConfigError

if TYPE_CHECKING:
    import torch

__all__ = ["FAULT_CONDITIONS", "RECORDED_FIELDS", "SENSOR_PRESETS", "SensorModel", "PixelMaps", "add_faults",
           "check_recorded_faults", "parse_sensor", "sensor_preset"]

#: Hot pixels fire with a per-pixel probability per frame drawn from this range.
HOT_RATE_RANGE = (0.9, 1.0)


@dataclass(frozen=True)
class SensorModel:
    """Imperfections of a spiking camera (all zero: the ideal sensor).

    Attributes:
        dark_rate_hz: Mean rate of dark-current spikes per pixel, in Hz (spikes with no light:
            each dark event adds one threshold of charge at a random time).
        dark_rate_spread: Spread of the per-pixel dark rate, as the coefficient of variation of
            a log-normal distribution with mean ``dark_rate_hz`` (SCSim: about 0.4).
        gain_spread: Relative standard deviation of the per-pixel photo-gain (fixed pattern).
        threshold_spread: Relative standard deviation of the per-pixel threshold (fixed pattern).
        shot_electrons: Electrons per threshold; photon shot noise is the Poisson noise of that
            many electrons per threshold of charge (0: no shot noise).
        threshold_jitter: Relative standard deviation of the threshold, drawn anew each frame.
        hot_fraction: Fraction of pixels that fire (nearly) every frame whatever the light.
        dead_fraction: Fraction of pixels that never fire.
    """

    dark_rate_hz: float = 0.0
    dark_rate_spread: float = 0.0
    gain_spread: float = 0.0
    threshold_spread: float = 0.0
    shot_electrons: float = 0.0
    threshold_jitter: float = 0.0
    hot_fraction: float = 0.0
    dead_fraction: float = 0.0

    def __post_init__(self) -> None:
        bounds = {
            "dark_rate_hz": 1e6, "dark_rate_spread": 10.0, "gain_spread": 0.5, "threshold_spread": 0.5,
            "shot_electrons": 1e9, "threshold_jitter": 0.5, "hot_fraction": 1.0, "dead_fraction": 1.0,
        }  # fmt: skip
        for name, high in bounds.items():
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and 0.0 <= value <= high):
                raise ConfigError(f"sensor model: {name} must be a number in [0, {high:g}], got {value!r}")
        if self.hot_fraction + self.dead_fraction > 1.0:
            raise ConfigError(
                f"sensor model: hot_fraction + dead_fraction must be <= 1, got "
                f"{self.hot_fraction} + {self.dead_fraction}"
            )
        if 0 < self.shot_electrons < 1:
            raise ConfigError(f"sensor model: shot_electrons must be 0 (off) or >= 1, got {self.shot_electrons}")

    @property
    def is_ideal(self) -> bool:
        """True when the model adds nothing to the ideal pixel."""
        return self == SensorModel()

    def replace(self, **changes: float) -> SensorModel:
        """A copy with some fields changed (checked like a new model)."""
        return dataclasses.replace(self, **changes)

    def describe(self) -> str:
        """One line naming the non-zero fields (``ideal`` when none)."""
        parts = [f"{f.name}={getattr(self, f.name):g}" for f in dataclasses.fields(self) if getattr(self, f.name)]
        return ", ".join(parts) or "ideal"

    def pixel_maps(
        self, shape: tuple[int, ...], frame_rate_hz: float, generator: torch.Generator, device: Any = "cpu"
    ) -> PixelMaps:
        """Draw the fixed pattern of one sensor of ``shape`` (``[H, W]`` or ``[B, H, W]``).

        ``frame_rate_hz`` turns the dark rate into a probability per frame. The draws come from
        ``generator`` in a fixed order, whichever fields are zero, so changing one level leaves
        the others' pattern in place.
        """
        import torch

        from stir_ros.core.rng import rand

        if not (math.isfinite(frame_rate_hz) and frame_rate_hz > 0):
            raise ConfigError(f"sensor model: frame_rate_hz must be a positive number, got {frame_rate_hz!r}")
        z_gain = rand(shape, generator, device, normal=True)
        z_thr = rand(shape, generator, device, normal=True)
        z_dark = rand(shape, generator, device, normal=True)
        u_defect = rand(shape, generator, device)
        u_hot = rand(shape, generator, device)
        gain = (1.0 + self.gain_spread * z_gain).clamp_(min=0.0)
        thr = (1.0 + self.threshold_spread * z_thr).clamp_(min=0.05)
        # Log-normal with mean dark_rate_hz and coefficient of variation dark_rate_spread.
        s2 = math.log1p(self.dark_rate_spread**2)
        dark = self.dark_rate_hz * torch.exp(math.sqrt(s2) * z_dark - s2 / 2)
        dark_p = (dark / frame_rate_hz).clamp_(max=1.0)
        hot = u_defect < self.hot_fraction
        dead = (u_defect >= self.hot_fraction) & (u_defect < self.hot_fraction + self.dead_fraction)
        low, high = HOT_RATE_RANGE
        hot_p = low + (high - low) * u_hot
        return PixelMaps(
            gain=gain, threshold=thr, dark_p=dark_p, hot=hot, dead=dead, hot_p=hot_p,
            shot_electrons=float(self.shot_electrons), threshold_jitter=float(self.threshold_jitter),
            has_dark=self.dark_rate_hz > 0, has_hot=bool(hot.any()), has_dead=bool(dead.any()),
        )  # fmt: skip


@dataclass(frozen=True)
class PixelMaps:
    """One sensor's fixed pattern (from :meth:`SensorModel.pixel_maps`) and its temporal noise levels."""

    gain: torch.Tensor
    threshold: torch.Tensor
    dark_p: torch.Tensor
    hot: torch.Tensor
    dead: torch.Tensor
    hot_p: torch.Tensor
    shot_electrons: float
    threshold_jitter: float
    has_dark: bool
    has_hot: bool
    has_dead: bool


#: Named sensor models: ``ideal`` (the default everywhere) and ``realistic`` (module docstring).
SENSOR_PRESETS: dict[str, SensorModel] = {
    "ideal": SensorModel(),
    "realistic": SensorModel(
        dark_rate_hz=20.0, dark_rate_spread=0.4, gain_spread=0.058, threshold_spread=0.045,
        shot_electrons=5000.0, threshold_jitter=0.01, hot_fraction=0.0005, dead_fraction=0.001,
    ),  # fmt: skip
}


def sensor_preset(name: str) -> SensorModel:
    """The preset called ``name``, or a :class:`ConfigError` naming the presets."""
    try:
        return SENSOR_PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown sensor model {name!r}; expected one of {', '.join(SENSOR_PRESETS)}") from None


def parse_sensor(items: list[str] | tuple[str, ...]) -> SensorModel:
    """A sensor model from command-line words: an optional preset name, then ``FIELD=VALUE`` changes.

    ``["realistic", "dark_rate_hz=40"]`` is the realistic preset with a 40 Hz dark rate;
    ``["hot_fraction=0.003"]`` the ideal sensor with 0.3 % hot pixels.
    """
    model = SensorModel()
    fields = {f.name for f in dataclasses.fields(SensorModel)}
    changes: dict[str, float] = {}
    for i, item in enumerate(items):
        name, sep, value = item.partition("=")
        if not sep:
            if i:
                raise ConfigError(f"sensor model: a preset name comes first, got {item!r} after {items[0]!r}")
            model = sensor_preset(item)
            continue
        if name not in fields:
            raise ConfigError(f"sensor model: unknown field {name!r}; expected one of {', '.join(sorted(fields))}")
        try:
            changes[name] = float(value)
        except ValueError:
            raise ConfigError(f"sensor model: {name} must be a number, got {value!r}") from None
    return model.replace(**changes)


#: The fields :func:`add_faults` can add to spikes already recorded (the others act before firing).
RECORDED_FIELDS = ("dark_rate_hz", "dark_rate_spread", "hot_fraction", "dead_fraction")


def check_recorded_faults(model: SensorModel) -> None:
    """Raise :class:`ConfigError` if ``model`` sets a field that recorded spikes cannot take (:func:`add_faults`)."""
    before = [f.name for f in dataclasses.fields(model) if f.name not in RECORDED_FIELDS and getattr(model, f.name)]
    if before:
        raise ConfigError(
            f"faults on recorded spikes can only be {', '.join(RECORDED_FIELDS)}; {', '.join(before)} act before "
            "the pixel fires (simulate the scene with the sensor model instead)"
        )


def add_faults(spikes: np.ndarray, model: SensorModel, frame_rate_hz: float, seed: int) -> np.ndarray:
    """``spikes [T, H, W]`` (0/1) with a sensor's dark-current spikes, hot and dead pixels added.

    For recorded data (the REDS-derived clips, a user's recordings), where only what happens
    after firing can be added: a dark event sets the pixel's bit in its frame, a hot pixel fires
    with its own probability in ``[0.9, 1]`` every frame, a dead pixel never fires. Seeded by
    ``seed`` (numpy), independent of torch. Returns a new uint8 array.

    Raises:
        ConfigError: ``model`` sets a field that acts before firing (gain or threshold spread,
            shot noise, jitter): those need the light, so the simulator applies them.
    """
    check_recorded_faults(model)
    if spikes.ndim != 3:
        raise ConfigError(f"spikes must be [T, H, W], got shape {spikes.shape}")
    if not (math.isfinite(frame_rate_hz) and frame_rate_hz > 0):
        raise ConfigError(f"frame_rate_hz must be a positive number, got {frame_rate_hz!r}")
    rng = np.random.default_rng(seed)
    frames, height, width = spikes.shape
    out = (np.asarray(spikes) != 0).astype(np.uint8)
    # The fixed pattern first, in a fixed order, so the levels do not move the defects around.
    z_dark = rng.standard_normal((height, width))
    u_defect = rng.random((height, width))
    u_hot = rng.random((height, width))
    if model.dark_rate_hz:
        s2 = math.log1p(model.dark_rate_spread**2)
        rate = model.dark_rate_hz * np.exp(math.sqrt(s2) * z_dark - s2 / 2)
        out |= rng.random((frames, height, width)) < np.minimum(rate / frame_rate_hz, 1.0)
    hot = u_defect < model.hot_fraction
    dead = (u_defect >= model.hot_fraction) & (u_defect < model.hot_fraction + model.dead_fraction)
    out[:, dead] = 0
    if hot.any():
        low, high = HOT_RATE_RANGE
        out[:, hot] = rng.random((frames, int(hot.sum()))) < (low + (high - low) * u_hot[hot])
    return out


#: The conditions of ``stir-ros eval --faults``: a name and the faults added to the recorded spikes.
FAULT_CONDITIONS: tuple[tuple[str, SensorModel], ...] = (
    ("clean", SensorModel()),
    ("dark 10 Hz", SensorModel(dark_rate_hz=10.0, dark_rate_spread=0.4)),
    ("dark 40 Hz", SensorModel(dark_rate_hz=40.0, dark_rate_spread=0.4)),
    ("dark 200 Hz", SensorModel(dark_rate_hz=200.0, dark_rate_spread=0.4)),
    ("hot 0.3 %", SensorModel(hot_fraction=0.003)),
    ("dead 1 %", SensorModel(dead_fraction=0.01)),
    ("dark 40 Hz + hot 0.3 % + dead 1 %",
     SensorModel(dark_rate_hz=40.0, dark_rate_spread=0.4, hot_fraction=0.003, dead_fraction=0.01)),
    ("mix: dark 20 Hz + hot 0.1 % + dead 0.5 %",
     SensorModel(dark_rate_hz=20.0, dark_rate_spread=0.4, hot_fraction=0.001, dead_fraction=0.005)),
)  # fmt: skip
