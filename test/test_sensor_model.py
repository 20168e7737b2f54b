# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The sensor model: a real camera's dark current, fixed pattern, noise and defects in the simulator."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from stir_ros.core.errors import ConfigError  # noqa: E402
from stir_ros.core.sensor_model import (  # noqa: E402
    FAULT_CONDITIONS,
    SENSOR_PRESETS,
    SensorModel,
    add_faults,
    parse_sensor,
)
from stir_ros.core.simulator import IntegrateAndFire, simulate_spikes  # noqa: E402

RATE = 20000.0


def _half_dark(frames: int, size: int = 64, level: float = 0.5) -> np.ndarray:
    """Left half black, right half at ``level``."""
    x = np.full((frames, size, size), level, np.float32)
    x[:, :, : size // 2] = 0.0
    return x


def test_ideal_model_gives_the_noiseless_simulator_bit_for_bit():
    x = np.random.default_rng(0).random((40, 24, 20), dtype=np.float32)
    plain = simulate_spikes(x, seed=5)
    assert np.array_equal(simulate_spikes(x, seed=5, sensor=SensorModel()), plain)
    assert np.array_equal(IntegrateAndFire(24, 20, seed=5, sensor=SensorModel()).step(x), plain)


def test_dark_current_fires_in_the_dark_at_its_rate():
    x = _half_dark(4000)
    spikes = simulate_spikes(x, seed=1, sensor=SensorModel(dark_rate_hz=40.0, dark_rate_spread=0.4),
                             frame_rate_hz=RATE)  # fmt: skip
    dark_hz = spikes[:, :, :32].mean() * RATE
    assert dark_hz == pytest.approx(40.0, rel=0.1)
    # The per-pixel rates spread (log-normal, coefficient of variation 0.4 plus Poisson counting).
    per_pixel = spikes[:, :, :32].mean(axis=0) * RATE
    assert per_pixel.std() / per_pixel.mean() > 0.4
    # In the light the rate is the light's plus the dark rate.
    assert spikes[:, :, 32:].mean() == pytest.approx(0.3 + 40.0 / RATE, abs=0.003)
    # The frame rate converts Hz into a per-frame probability: the same model at 40 kHz halves it.
    faster = simulate_spikes(x, seed=1, sensor=SensorModel(dark_rate_hz=40.0), frame_rate_hz=2 * RATE)
    assert faster[:, :, :32].mean() * RATE == pytest.approx(20.0, rel=0.15)


def test_hot_and_dead_pixels_at_their_fractions():
    x = _half_dark(400, size=128, level=0.5)
    model = SensorModel(hot_fraction=0.01, dead_fraction=0.03)
    spikes = simulate_spikes(x, seed=2, sensor=model)
    rate = spikes.mean(axis=0)
    hot = rate > 0.85
    assert hot.mean() == pytest.approx(0.01, rel=0.3)
    dead_in_light = rate[:, 64:] == 0
    assert dead_in_light.mean() == pytest.approx(0.03, rel=0.3)
    # A hot pixel fires in the dark too; light alone never gets near that rate.
    assert hot[:, :64].any()
    assert rate[~hot].max() < 0.7


@pytest.mark.parametrize("field", ["gain_spread", "threshold_spread"])
def test_fixed_pattern_spreads_the_pixel_rates(field):
    x = np.full((3000, 48, 48), 0.5, np.float32)
    ideal = simulate_spikes(x, seed=3).mean(axis=0)
    spread = simulate_spikes(x, seed=3, sensor=SensorModel(**{field: 0.08})).mean(axis=0)
    assert ideal.std() / ideal.mean() < 0.01
    # rate ~ gain / threshold: either spread moves each pixel's rate by about as much.
    assert spread.std() / spread.mean() == pytest.approx(0.08, rel=0.15)


def test_temporal_noise_changes_the_spike_times_not_the_rate():
    x = np.full((2000, 32, 32), 0.4, np.float32)
    ideal = simulate_spikes(x, seed=4)
    noisy = simulate_spikes(x, seed=4, sensor=SensorModel(shot_electrons=200.0, threshold_jitter=0.05))
    assert not np.array_equal(ideal, noisy)
    assert noisy.mean() == pytest.approx(ideal.mean(), rel=0.03)
    # Intervals between spikes vary more than the ideal pixel's (which alternate between two values).
    assert np.diff(np.flatnonzero(noisy[:, 5, 5])).std() > np.diff(np.flatnonzero(ideal[:, 5, 5])).std()


@pytest.mark.parametrize("preset", sorted(SENSOR_PRESETS))
def test_streaming_equals_one_shot_and_the_seed_decides(preset):
    model = SENSOR_PRESETS[preset].replace(hot_fraction=0.01, dead_fraction=0.01)
    x = np.random.default_rng(1).random((90, 30, 26), dtype=np.float32)
    sensor = IntegrateAndFire(30, 26, seed=9, sensor=model)
    streamed = np.concatenate([sensor.step(x[:25]), sensor.step(x[25:61]), sensor.step(x[61:])])
    assert np.array_equal(streamed, simulate_spikes(x, seed=9, sensor=model))
    sensor.reset()  # the same sensor again: same fixed pattern, same noise
    assert np.array_equal(sensor.step(x), streamed)
    assert not np.array_equal(simulate_spikes(x, seed=10, sensor=model), streamed)


def test_batched_simulation_draws_one_pattern_per_sample():
    x = np.full((2, 200, 32, 32), 0.5, np.float32)
    spikes = simulate_spikes(x, seed=0, sensor=SensorModel(dead_fraction=0.05))
    dead0, dead1 = spikes[0].sum(0) == 0, spikes[1].sum(0) == 0
    assert dead0.any() and dead1.any() and not np.array_equal(dead0, dead1)


@pytest.mark.parametrize(
    "changes",
    [{"dark_rate_hz": -1.0}, {"gain_spread": float("nan")}, {"threshold_jitter": float("inf")},
     {"hot_fraction": 0.7, "dead_fraction": 0.4}, {"shot_electrons": 0.5}, {"dead_fraction": 1.5}],
)  # fmt: skip
def test_invalid_levels_are_refused(changes):
    with pytest.raises(ConfigError):
        SensorModel(**changes)


def test_parse_sensor_takes_a_preset_and_changes():
    assert parse_sensor(["realistic"]) == SENSOR_PRESETS["realistic"]
    model = parse_sensor(["realistic", "dark_rate_hz=40", "hot_fraction=0.003"])
    assert (model.dark_rate_hz, model.hot_fraction, model.gain_spread) == (40.0, 0.003, 0.058)
    assert parse_sensor(["dead_fraction=0.01"]) == SensorModel(dead_fraction=0.01)
    for bad in (["noisy"], ["dark=3"], ["dark_rate_hz=lots"], ["dark_rate_hz=4", "realistic"], ["gain_spread=-1"]):
        with pytest.raises(ConfigError):
            parse_sensor(bad)


def test_add_faults_to_recorded_spikes():
    rng = np.random.default_rng(0)
    clean = (rng.random((400, 100, 100)) < 0.3).astype(np.uint8)
    model = SensorModel(dark_rate_hz=200.0, hot_fraction=0.005, dead_fraction=0.01)
    faulted = add_faults(clean, model, RATE, seed=3)
    assert np.array_equal(add_faults(clean, model, RATE, seed=3), faulted)
    rate = faulted.mean(axis=0)
    assert (rate == 0).mean() == pytest.approx(0.01, rel=0.3)
    assert (rate > 0.85).mean() == pytest.approx(0.005, rel=0.4)
    normal = (rate > 0) & (rate < 0.85)
    added = faulted[:, normal].mean() - clean[:, normal].mean()
    assert added == pytest.approx(0.7 * 200.0 / RATE, rel=0.2)  # a dark event in a firing frame adds nothing
    assert np.array_equal(add_faults(clean, SensorModel(), RATE, seed=3), clean)
    with pytest.raises(ConfigError, match="act before"):
        add_faults(clean, SensorModel(gain_spread=0.05), RATE, seed=0)


def test_fault_conditions_are_named_once_and_start_clean():
    names = [name for name, _ in FAULT_CONDITIONS]
    assert len(set(names)) == len(names)
    assert FAULT_CONDITIONS[0][1].is_ideal


def test_sim_source_and_simulate_command_take_the_sensor(tmp_path):
    from stir_ros.core.dat import DatReader
    from stir_ros.core.simulate_cli import write_simulated_dat
    from stir_ros.core.sources import SimSource

    model = SensorModel(dead_fraction=0.05, dark_rate_hz=100.0)
    block = SimSource(40, 48, seed=1, sensor=model).read(300)
    ideal = SimSource(40, 48, seed=1).read(300)
    frames, ideal_frames = block.frames(40, 48), ideal.frames(40, 48)
    assert (frames.sum(0) == 0).mean() == pytest.approx(0.05, abs=0.03)
    assert (ideal_frames.sum(0) == 0).mean() < 0.01
    out = tmp_path / "rec.dat"
    write_simulated_dat(str(out), 300, 40, 48, seed=1, sensor=model)
    assert np.array_equal(DatReader(str(out), 40, 48).read(0, 300), frames)


def test_training_samples_draw_sensors_only_when_asked():
    from stir_ros.training.data import DataConfig, SyntheticSpikeData

    images = [np.random.default_rng(0).random((96, 96), dtype=np.float32)]

    def batch(config):
        return SyntheticSpikeData(images, config, torch.Generator().manual_seed(7)).sample(3)

    plain = batch(DataConfig(crop=32, max_noise_std=0.0))
    off = batch(DataConfig(crop=32, max_noise_std=0.0, sensor_max=SensorModel(dark_rate_hz=500.0)))
    assert torch.equal(off[0], plain[0])  # fraction 0: the stream of before
    noisy = batch(DataConfig(crop=32, max_noise_std=0.0, sensor_max=SensorModel(dark_rate_hz=4000.0),
                             sensor_fraction=1.0))  # fmt: skip
    assert noisy[0].sum() > plain[0].sum() * 1.02  # dark current adds spikes
    with pytest.raises(ConfigError):
        DataConfig(sensor_fraction=0.5)


def test_training_windows_have_hot_and_dead_pixels_repaired_as_the_node_repairs_them():
    from stir_ros.core.pixel_repair import PixelRepair
    from stir_ros.training.windows import Simulation

    x = np.tile(np.linspace(0.3, 0.8, 48, dtype=np.float32), (1, 41, 48, 1))  # [1, T, H, W], a ramp
    model = SensorModel(hot_fraction=0.02, dead_fraction=0.05)
    raw = simulate_spikes(x, seed=3, sensor=model)[0]
    rate = raw.mean(axis=0)
    bad = (rate > 0.85) | (rate == 0)  # light of 0.3-0.8 fires at 0.18-0.48 per frame
    assert bad.mean() == pytest.approx(0.07, rel=0.3)
    expected = PixelRepair.from_mask(bad).apply(raw.copy())
    repaired = simulate_spikes(x, seed=3, sensor=model, repair_defects=True)[0]
    assert np.array_equal(repaired, expected)
    assert np.array_equal(repaired[:, ~bad], raw[:, ~bad])  # good pixels untouched
    rate = repaired.mean(axis=0)
    assert rate.min() > 0.1 and rate.max() < 0.6
    # The training windows are these repaired spikes, on a tensor too.
    window = Simulation(sensor=model).spikes(torch.from_numpy(x), torch.Generator().manual_seed(3))
    assert np.array_equal(window[0].numpy(), expected)
