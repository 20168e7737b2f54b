# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Dark events counted from the spikes alone (stir_ros.core.dark_events)."""

from __future__ import annotations

import numpy as np
import pytest

from stir_ros.core.dark_events import DARK_EVENT_SWITCH, dark_event_rate, dark_events
from stir_ros.core.scenes import MovingScene
from stir_ros.core.sensor_model import SensorModel
from stir_ros.core.simulator import simulate_spikes


def _steady(rates: np.ndarray, frames: int = 61, seed: int = 0) -> np.ndarray:
    """Integrate-and-fire spikes ``[T, P]`` of steady light: pixel p fires at ``rates[p]`` per frame."""
    phase = np.random.default_rng(seed).random(len(rates))
    charge = phase[None] + rates[None] * np.arange(1, frames + 1)[:, None]
    return np.diff(np.floor(np.concatenate([phase[None], charge])), axis=0).astype(np.uint8)


def test_steady_trains_of_every_rate_hold_no_dark_event() -> None:
    # 0.02-0.98 spikes per frame, random phases: the quantised intervals of a steady pixel (e.g. 2, 2, 1)
    # must never look like a split interval.
    rates = np.linspace(0.02, 0.98, 4000)
    spikes = _steady(rates)
    assert spikes.sum() > 50_000
    assert not dark_events(spikes).any()


def test_an_inserted_spike_is_found_where_its_neighbours_are_steady() -> None:
    # Intervals of 7.5, 5 and 2 frames (module doc: 3 and 4 are too short to tell from quantisation,
    # 10 or more leave fewer than three spikes on a side of most events in 61 frames).
    rates = np.repeat([0.133, 0.2, 0.5], 500)
    clean = _steady(rates, seed=1)
    rng = np.random.default_rng(2)
    noisy = clean.copy()
    where = rng.integers(25, 37, size=len(rates))  # the middle of the window: three spikes either side
    inserted = noisy[where, np.arange(len(rates))] == 0
    noisy[where, np.arange(len(rates))] = 1
    found = dark_events(noisy)
    hits = found[where, np.arange(len(rates))] & inserted
    print(f"inserted {inserted.sum()}, found {hits.sum()} of them, {found.sum() - hits.sum()} other spikes")
    assert hits.sum() >= 0.9 * inserted.sum()
    # A spike inserted next to a real one leaves it open which is the extra one: both may count.
    assert found.sum() - hits.sum() <= 0.25 * inserted.sum()


def test_an_uneven_train_where_three_intervals_agree_by_chance_holds_no_dark_event() -> None:
    """Texture moving fast across a pixel makes its intervals uneven; three may then agree by chance.

    Spikes at 0, 4, 12, 17, 22, 31, 47: taking out 17 leaves 8, 10, 9 (within 20 %), which counted as
    a dark event. Neither neighbouring interval (4 before, 16 after) agrees: not steady light. On the
    validation clips such trains put clean windows of fast textured motion up to 129 dark events per
    million pixel-frames, above 10 Hz of dark current in others (BENCHMARKS.md, issue 28).
    """
    train = np.zeros((61, 1), np.uint8)
    train[[0, 4, 12, 17, 22, 31, 47], 0] = 1
    assert not dark_events(train).any()
    steady = np.zeros((61, 1), np.uint8)
    steady[[0, 9, 18, 27, 31, 36, 45, 54], 0] = 1  # intervals of 9 around the spike at 31: a dark event
    assert dark_events(steady)[:, 0].nonzero()[0].tolist() == [31]


@pytest.mark.parametrize("dark_hz", [10.0, 40.0])
def test_the_rate_separates_a_clean_sensor_from_dark_current(dark_hz: float) -> None:
    scene = MovingScene(96, 128, seed=3)
    light = scene.render(0, 61).numpy()
    clean = simulate_spikes(light, seed=4)
    dark = simulate_spikes(light, seed=4, sensor=SensorModel(dark_rate_hz=dark_hz, dark_rate_spread=0.4))
    rates = dark_event_rate(np.stack([clean, dark]))
    assert rates[0] < DARK_EVENT_SWITCH < rates[1]


def test_rate_checks_its_input() -> None:
    with pytest.raises(ValueError, match=r"\[B, T, H, W\]"):
        dark_event_rate(np.zeros((61, 8, 8), np.uint8))
    assert dark_event_rate(np.zeros((2, 61, 8, 8), np.uint8)).tolist() == [0.0, 0.0]


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def test_a_tensor_is_counted_on_its_device_as_numpy_counts_it(device: str) -> None:
    # On a GPU the routing counts the windows where they are: the same count as numpy's, so the node
    # decides alike on either device. Windows of steady trains (2-frame splits included), dark current
    # at two rates and an empty one.
    torch = pytest.importorskip("torch")
    light = MovingScene(50, 70, seed=5).render(0, 61).numpy()
    windows = np.stack([
        simulate_spikes(light, seed=6),
        simulate_spikes(light, seed=6, sensor=SensorModel(dark_rate_hz=40.0, dark_rate_spread=0.4)),
        simulate_spikes(0.3 + 0.7 * light, seed=7, sensor=SensorModel(dark_rate_hz=200.0)),
        np.zeros_like(light, dtype=np.uint8),
        _steady(np.linspace(0.02, 0.98, 50 * 70), seed=8).reshape(61, 50, 70),
    ]).astype(np.uint8)  # fmt: skip
    expected = dark_event_rate(windows)
    assert expected[2] > expected[1] > DARK_EVENT_SWITCH > expected[0] and expected[3] == expected[4] == 0
    got = dark_event_rate(torch.from_numpy(windows).to(device))
    assert np.array_equal(got, expected)
    spikes = torch.from_numpy(windows[1]).reshape(61, -1).to(device)
    assert np.array_equal(dark_events(windows[1]), dark_events_of_tensor(spikes).reshape(windows[1].shape))


def dark_events_of_tensor(spikes):
    """:func:`dark_events` of a ``[T, P]`` tensor, through the tensor path of the count (back on the host)."""
    from stir_ros.core.dark_events import _flagged

    pixel, frame = _flagged(spikes.T.contiguous())
    out = np.zeros(tuple(spikes.shape), bool)
    out[frame.cpu().numpy(), pixel.cpu().numpy()] = True
    return out
