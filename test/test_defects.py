# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Hot/dead pixel estimation and repair (stir_ros.core.defects, stir_ros.core.pixel_repair), and the packet path."""

from __future__ import annotations

import numpy as np
import pytest

from stir_ros.core.classical import tfp
from stir_ros.core.defects import SAMPLE_FRAMES, DefectTracker, estimate_defects
from stir_ros.core.packing import encode_frames
from stir_ros.core.pixel_repair import PixelRepair
from stir_ros.core.scenes import MovingScene
from stir_ros.core.simulator import simulate_spikes
from stir_ros.core.packet import PacketHeader
from stir_ros.core.stream import packed_windows, stack_windows
from stir_ros.core.stream_processor import StreamProcessor


def _scene(n: int, h: int = 64, w: int = 80, seed: int = 3) -> np.ndarray:
    intensity = MovingScene(h, w, max_speed=0.5, seed=seed).render(0, n).numpy()
    return np.asarray(simulate_spikes(0.15 + 0.85 * intensity, seed=seed), np.uint8)


def _inject(frames: np.ndarray, hot: float, dead: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    u = np.random.default_rng(seed).random(frames.shape[1:])
    hot_mask, dead_mask = u < hot, (u >= hot) & (u < hot + dead)
    out = frames.copy()
    out[:, hot_mask], out[:, dead_mask] = 1, 0
    return out, hot_mask, dead_mask


@pytest.mark.parametrize("seed", range(5))
def test_repair_fires_at_the_good_neighbours_mean_and_is_idempotent(seed: int) -> None:
    rng = np.random.default_rng(seed)
    bad = rng.random((9, 13)) < 0.2
    bad[0:3, 0:3] = True  # the corner pixel's neighbours are all bad: it takes the nearest good train
    repair = PixelRepair.from_mask(bad)
    frames = (rng.random((30, 9, 13)) < 0.5).astype(np.uint8)
    out = repair.apply(frames.copy())
    flat, orig = out.reshape(30, -1), frames.reshape(30, -1)
    assert set(np.unique(out)) <= {0, 1}
    good = ~bad.reshape(-1)
    assert np.array_equal(flat[:, good], orig[:, good])  # good pixels untouched
    assert np.array_equal(repair.apply(out.copy()), out)  # idempotent: it reads good pixels only
    assert repair.count + repair.unrepaired == int(bad.sum())
    for k, (dst, src) in enumerate(zip(repair.dst, repair.src)):
        y, x = divmod(int(dst), 13)
        ring = [(y + dy) * 13 + x + dx for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1))  # the direct neighbours
                if 0 <= y + dy < 9 and 0 <= x + dx < 13 and not bad[y + dy, x + dx]]  # fmt: skip
        if not ring:
            assert (y, x) == (1, 1) or repair.count_good[k] == 0
            assert np.array_equal(flat[:, dst], orig[:, src]) and good[src]
            continue
        level = np.cumsum(orig[:, ring].sum(axis=1)) + len(ring) // 2  # integrate and fire on the mean
        assert np.array_equal(np.cumsum(flat[:, dst]), level // len(ring)), (y, x)
    # per pixel: repairing the counts equals counting the repaired frames, so TFP's packed path is exact
    assert np.array_equal(repair.apply_counts(frames.sum(axis=0, dtype=np.int64)), out.sum(axis=0, dtype=np.int64))
    with pytest.raises(ValueError, match="apply_counts"):
        repair.apply(frames[0].copy())


def test_repaired_counts_do_not_overflow_the_uint8_of_short_windows() -> None:
    # TFP counts windows of up to 255 frames in uint8; eight neighbours' counts sum past 255.
    bad = np.zeros((9, 13), bool)
    bad[4, 6] = bad[0, 0] = True
    counts = np.full((9, 13), 200, np.uint8)
    repair = PixelRepair.from_mask(bad)
    assert (repair.apply_counts(counts) == 200).all()
    frames = np.ones((200, 9, 13), np.uint8)
    assert np.array_equal(repair.apply(frames.copy()).sum(axis=0), np.full((9, 13), 200))


def test_estimate_finds_injected_hot_and_dead_pixels_and_nothing_on_clean_spikes() -> None:
    clean = _scene(400)
    assert estimate_defects(clean.sum(0), len(clean)).repair.count == 0
    faulty, hot, dead = _inject(clean, 0.003, 0.01, seed=7)
    m = estimate_defects(faulty.sum(0), len(faulty))
    assert np.array_equal(m.hot, hot)
    assert not (m.dead & ~dead).any() and m.dead_count >= 0.9 * dead.sum()


def test_a_saturating_light_is_not_taken_for_hot_pixels() -> None:
    """A lamp in view fires every frame, as a hot pixel does; unlike one, its neighbours fire as fast.

    Taken for 168 hot pixels, it was "repaired" from the darker pixels around it (its edges erased
    from every image) and /diagnostics warned of a sensor defect.
    """
    light = 0.15 + 0.85 * MovingScene(64, 80, max_speed=0.0, seed=3).render(0, 1).numpy()
    light = np.repeat(light, 600, 0)
    light[:, 20:32, 30:44] = 1.6  # past saturation: alpha 0.6 x 1.6 = 0.96 spikes per frame
    light[:, 50, 5:40] = 1.6  # a lit wire, one pixel thick
    frames = np.asarray(simulate_spikes(light, seed=3), np.uint8)
    hot = np.zeros(frames.shape[1:], bool)
    hot[5, 5] = hot[40, 60] = hot[40, 61] = hot[60, 70] = True  # single and a pair side by side
    faulty = frames.copy()
    faulty[:, hot] = 1
    m = estimate_defects(faulty.sum(0), len(faulty))
    assert np.array_equal(m.hot, hot), np.argwhere(m.hot != hot)[:10]


def test_dead_clumps_and_edge_pixels_are_found_and_a_thin_dark_line_is_kept() -> None:
    # One pass against the second-lowest of 8 neighbours missed a dead pixel with two dead
    # neighbours (three side by side, or two at the frame's edge, where mirroring doubled the
    # neighbour): each one missed cost up to 1.4 dB on a clean validation clip.
    frames = _scene(400)
    dead = np.zeros(frames.shape[1:], bool)
    dead[20, 30] = dead[20, 31] = dead[21, 30] = True  # a triangle: each has two dead neighbours
    dead[40:43, 50] = True  # a column of three
    dead[10, 10:12] = dead[11, 10:12] = True  # a 2x2 block
    dead[63, 40] = dead[62, 41] = True  # a pair on the bottom edge
    dead[0, 0] = dead[0, 1] = True  # and in the corner
    faulty = frames.copy()
    faulty[:, dead] = 0
    m = estimate_defects(faulty.sum(0), len(faulty))
    assert np.array_equal(m.dead, dead)
    # a dark line one pixel wide, 12 long, on a bright scene: only the pixels near its ends may go
    line = frames.copy()
    line[:, 30, 20:32] = 0
    flagged = estimate_defects(line.sum(0), len(line)).dead
    assert flagged[30, 22:30].sum() == 0 and flagged.sum() <= 4
    assert not flagged[np.arange(64) != 30].any()


def test_tracker_samples_on_the_sensor_clock_whatever_the_packets() -> None:
    frames, _, _ = _inject(_scene(600), 0.01, 0.02, seed=1)
    maps = []
    for per_packet in (7, 50):
        t = DefectTracker(sample_period_frames=40, update_frames=100)
        for first in range(0, len(frames), per_packet):
            block = frames[first : first + per_packet]
            raw = encode_frames(block, "vidar_bitpacked")
            t.observe(raw, PacketHeader(0, first, len(block), 64, 80, "vidar_bitpacked", 0, 20000.0))
        assert t.frames_sampled == SAMPLE_FRAMES * 15
        maps.append(t.current)
    assert maps[0] is not None and np.array_equal(maps[0].hot, maps[1].hot) and np.array_equal(maps[0].dead, maps[1].dead)
    assert maps[0].hot_count > 0


def test_a_new_file_map_keeps_the_estimate_and_its_counts() -> None:
    """``defect_map_url`` changed at run time (auto): the stream's own estimate is not started afresh."""
    from stir_ros.core.defects import DefectMap

    frames, _, _ = _inject(_scene(600), 0.01, 0.02, seed=1)
    t = DefectTracker(sample_period_frames=40, update_frames=100)
    t.observe(encode_frames(frames, "vidar_bitpacked"), PacketHeader(0, 0, 600, 64, 80, "vidar_bitpacked", 0, 2e4))
    est = t.estimated
    assert est is not None and est.hot_count > 0
    hot = np.zeros((64, 80), bool)
    hot[0, :5] = True  # five pixels the scene did not show as hot
    new = t.with_file_map(DefectMap(hot, np.zeros_like(hot)))
    assert new.current is not None and np.array_equal(new.current.hot, est.hot | hot)
    assert new.frames_sampled == t.frames_sampled and new.estimated is est and new.updates == t.updates
    assert t.with_file_map(DefectMap(hot[:10], np.zeros_like(hot[:10]))).current is est  # another size: unused
    assert t.with_file_map(None).current is est and t.file_map is None


@pytest.mark.parametrize("mode", ["file", "auto"])
def test_a_file_map_of_another_frame_rate_is_used_and_reported(mode: str) -> None:
    """Its pixels are broken at any frame rate; its dark rates are per second, right only at the rate it names.

    Hot and dead pixels repair as they are; the dark rates are not rescaled (a dark current is a
    rate per second, whatever the frame rate), but the file cannot tell whether the camera really
    ran at its rate (a .dat calibrated with the default --frame-rate-hz did not): said, with what to do.
    """
    from stir_ros.core.defects import DefectMap

    hot = np.zeros((64, 80), bool)
    hot[0, :5] = True
    dark = np.full((64, 80), 30.0, np.float32)
    file_map = DefectMap(hot, np.zeros_like(hot), 1000, dark, 30.0, frame_rate_hz=40000.0)
    frames = _scene(40)
    for rate, said in ((20000.0, True), (40000.0, False), (40100.0, False)):  # within 1 %: the same rate
        t = DefectTracker(mode, file_map, sample_period_frames=40, update_frames=20)
        assert t.unfit == ""  # nothing is known of the stream before its first packet
        t.observe(encode_frames(frames, "vidar_bitpacked"), PacketHeader(0, 0, 40, 64, 80, "vidar_bitpacked", 0, rate))
        assert t.current is not None and t.current.hot[0, :5].all()  # in force
        assert t.values()["dark_rate_hz"] == 30.0  # as measured, not rescaled
        if said:
            assert t.unfit == ("defect map file was calibrated at 40000 Hz, the stream runs at 20000 Hz: its hot and "
                               "dead pixels are used, its dark rates (per second) hold only if 40000 Hz was the "
                               "camera's rate then; calibrate on a recording at this rate (stir-ros "
                               "calibrate-defects: a bag's packets carry it, a .dat needs --frame-rate-hz "
                               "20000)")  # fmt: skip
        else:
            assert t.unfit == "", rate
    assert DefectTracker("none", file_map).unfit == ""
    # A map of unknown rate (0: a file without frame_rate_hz) is compared with nothing.
    t = DefectTracker(mode, DefectMap(hot, np.zeros_like(hot)), sample_period_frames=40, update_frames=20)
    t.observe(encode_frames(frames, "vidar_bitpacked"), PacketHeader(0, 0, 40, 64, 80, "vidar_bitpacked", 0, 2e4))
    assert t.unfit == ""


def test_windows_carry_the_map_of_their_cut_and_every_path_repairs_them() -> None:
    frames, _, _ = _inject(_scene(400), 0.01, 0.02, seed=2)
    proc = StreamProcessor(41, 20, defects=DefectTracker(sample_period_frames=40, update_frames=100))
    decoded = StreamProcessor(41, 20, decode=True, defects=DefectTracker(sample_period_frames=40, update_frames=100))
    windows, windows_dec = [], []
    for seq, first in enumerate(range(0, 400, 20)):
        header = PacketHeader(seq, first, 20, 64, 80, "vidar_bitpacked", first * 50_000, 20000.0)
        raw = encode_frames(frames[first : first + 20], "vidar_bitpacked")
        windows += proc.push(header, raw).windows
        windows_dec += decoded.push(header, raw.copy()).windows
    assert windows[0].repair is None and windows[-1].repair is not None
    repairs = {id(w.repair) for w in windows if w.repair is not None}
    assert len(repairs) >= 2  # the map was replaced; earlier windows kept theirs
    for w, wd in zip(windows, windows_dec):
        expected = frames[w.first_frame_index : w.first_frame_index + 41].copy()
        if w.repair is not None:
            w.repair.apply(expected)
        assert np.array_equal(stack_windows([w])[0], expected)
        assert np.array_equal(wd.frames, expected)
        packed = packed_windows([w])
        assert packed is not None and np.array_equal(tfp(packed, 0.6), tfp(expected[None], 0.6))
    assert proc.windows_repaired == sum(w.repair is not None for w in windows)
    assert np.array_equal(frames, _inject(_scene(400), 0.01, 0.02, seed=2)[0])  # payloads untouched


def test_none_repairs_nothing() -> None:
    frames, _, _ = _inject(_scene(200), 0.05, 0.05, seed=4)
    proc = StreamProcessor(41, 20, defects=DefectTracker("none", sample_period_frames=40, update_frames=20))
    out = proc.push(PacketHeader(0, 0, 200, 64, 80, "vidar_bitpacked", 0, 20000.0), encode_frames(frames, "vidar_bitpacked"))
    assert out.windows and all(w.repair is None for w in out.windows)


@pytest.mark.parametrize("changes, match", [
    ({"defect_correction": "off"}, "defect_correction must be one of"),
    ({"defect_correction": "file"}, "needs defect_map_url"),
    ({"defect_sample_period_frames": 5}, "defect_sample_period_frames"),
    ({"defect_hot_rate": float("nan")}, "defect_hot_rate"),
    ({"defect_hot_rate": 1.5}, "defect_hot_rate"),
])  # fmt: skip
def test_untrusted_defect_settings_are_refused(changes: dict[str, object], match: str) -> None:
    from stir_ros.core.errors import ConfigError
    from stir_ros.reconstructor_settings import ReconstructorSettings

    with pytest.raises(ConfigError, match=match):
        ReconstructorSettings(method="tfp", **changes)  # type: ignore[arg-type]
