#!/usr/bin/env python3
# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""How far are a data set's real spikes from this package's simulation of the same scenes?

    python scripts/data_gap.py [--data DATA_DIR] [--weights W.pt]

For every clip (``spike/*.dat`` + ``gt/*.png``), the clip's own motion is measured: DIS optical
flow from 21-frame spike-rate averages at ten times around the centre to the ground truth. The
ground truth is then moved along that flow (linear in time between the measured times, the
identity at the ground truth's time, ``--gt-offset`` frames after the centre frame) and turned
into spikes by :func:`stir_ros.core.simulator.simulate_spikes`. The network reconstructs both
windows, real and simulated; the difference is what the simulator does not model.

The script then compares the detail the two streams carry. Both are motion-compensated (every
frame warped back to the ground truth's time along the same flow) and averaged over the window;
the cross-spectrum with the ground truth, divided by the ground truth's power, gives a transfer
function per frequency band. Their ratio (real / simulated) is the extra loss of detail of the
real data, fitted by ``exp(-(f / f0) ** p)`` (``stir-ros train --input-lowpass`` uses this
shape). Last, the ground truth low-passed by that fit is simulated and reconstructed too: if the
fit explains the gap, its score falls to the real one.

``--by-time`` compares the detail frame by frame instead: each spike frame alone, warped back to
the ground truth's time, against simulated frames (three seeds), binned by the frame's distance
from the ground truth. A low-pass of the data is the same at every distance; an error of the
measured flow costs more the further a frame is from the ground truth, where the flow is zero.

``--motion-scales`` also simulates the ground truth moved along the clip's flow scaled by each
factor (0: standing still; 2: twice as fast): how much of what the network loses is the motion.

Without ``--data`` the Spike-Zoo ``base/train`` clips are used (installed with the test tools).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

    Flows = dict[int, torch.Tensor]

FLOW_TIMES = (-50, -40, -30, -20, -10, 10, 20, 30, 40, 50)  # frames from the centre frame
AVERAGE = 21  # frames per spike-rate average (the flow's input)
BANDS = 12  # radial frequency bands from 0 to 0.5 cycles per pixel
BORDER = 24  # pixels left out at each side of the spectra (warp borders)
HIGH_BAND = 0.3  # cycles per pixel: --by-time averages the transfer above this
TIME_BINS = (0, 3, 10, 30, 51)  # --by-time: edges of the distance bins, frames from the ground truth


def spikezoo_train_split() -> Path:
    from stir_ros.evaluation import spikezoo_data

    data = spikezoo_data("train")
    if data is None:
        sys.exit("data_gap: spikezoo is not installed; pass --data DATA_DIR")
    return data


def measured_flows(gt: np.ndarray, stream: np.ndarray, centre: int, alpha: float) -> Flows:
    """Flow ``g_t`` with ``I_t(p) ~ gt(p + g_t(p))`` at ``centre + FLOW_TIMES``."""
    import torch

    from stir_ros.training.video import optical_flow

    half = AVERAGE // 2
    flows: Flows = {}
    for dt in FLOW_TIMES:
        t = centre + dt
        rate = stream[t - half : t + half + 1].mean(0) / alpha
        flows[t] = optical_flow(torch.from_numpy(np.clip(rate, 0, 1).astype(np.float32)), torch.from_numpy(gt))
    return flows


def flow_at(flows: Flows, gt_time: float, t: float) -> torch.Tensor:
    """Flow at time ``t``: linear between the measured times and zero at ``gt_time``.

    Beyond the first and the last measured time it is extrapolated linearly.
    """
    import torch

    times = sorted(flows)
    known = [(float(k), flows[k]) for k in times] + [(gt_time, torch.zeros_like(flows[times[0]]))]
    known.sort(key=lambda kv: kv[0])
    i = min(max(int(np.searchsorted([k for k, _ in known], t)), 1), len(known) - 1)
    (t0, f0), (t1, f1) = known[i - 1], known[i]
    a = (t - t0) / (t1 - t0)
    return f0 * (1 - a) + f1 * a


def render(gt: np.ndarray, flows: Flows, gt_time: float, times: np.ndarray) -> np.ndarray:
    import torch

    from stir_ros.training.video import warp

    field = torch.stack([flow_at(flows, gt_time, float(t)) for t in times])
    return warp(torch.from_numpy(gt), field, 0, 0).numpy()


def simulated(image: np.ndarray, flows: Flows, gt_time: float, times: np.ndarray, seed: int) -> np.ndarray:
    """Spikes of ``image`` moved along ``flows`` (this package's simulator, the sensor's alpha)."""
    from stir_ros.core.simulator import ALPHA, simulate_spikes

    return simulate_spikes(render(image, flows, gt_time, times), alpha=ALPHA, seed=seed)


def compensated_average(frames: np.ndarray, flows: Flows, gt_time: float, times: np.ndarray,
                        alpha: float) -> np.ndarray:  # fmt: skip
    """Every spike frame warped back to the ground truth's time along the flow, averaged, / alpha."""
    import torch

    from stir_ros.training.video import warp

    total = np.zeros(frames.shape[1:], np.float64)
    for frame, t in zip(frames, times, strict=True):
        back = -flow_at(flows, gt_time, float(t))
        total += warp(torch.from_numpy(frame.astype(np.float32)), back[None], 0, 0)[0].numpy()
    return total / len(times) / alpha


def transfer(estimate: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Radial cross-spectral transfer function of ``estimate`` against ``gt``: (band centres, gains)."""
    inner = (slice(BORDER, -BORDER), slice(BORDER, -BORDER))
    a, g = estimate[inner] - estimate[inner].mean(), gt[inner] - gt[inner].mean()
    window = np.outer(np.hanning(a.shape[0]), np.hanning(a.shape[1]))
    fa, fg = np.fft.fft2(a * window), np.fft.fft2(g * window)
    radius = np.hypot(np.fft.fftfreq(a.shape[0])[:, None], np.fft.fftfreq(a.shape[1])[None])
    edges = np.linspace(0, 0.5, BANDS + 1)
    gains = []
    for lo, hi in zip(edges, edges[1:]):
        band = (radius >= lo) & (radius < hi)
        gains.append(float(np.real((fa[band] * np.conj(fg[band])).sum()) / (np.abs(fg[band]) ** 2).sum()))
    return 0.5 * (edges[1:] + edges[:-1]), np.array(gains)


def detail_by_time(stream: np.ndarray, gt: np.ndarray, flows: Flows, gt_time: float, seeds: int = 3,
                   ) -> list[tuple[int, int, float, float]]:  # fmt: skip
    """High-band detail of single real and simulated frames by distance from ``gt_time``.

    Returns ``(from, to, real, simulated)`` per bin of :data:`TIME_BINS`: the mean transfer above
    :data:`HIGH_BAND` cycles per pixel of each frame alone, warped back to the ground truth's time.
    """
    import torch

    from stir_ros.core.simulator import ALPHA
    from stir_ros.training.video import warp

    last = min(max(FLOW_TIMES), TIME_BINS[-1] - 1)
    times = np.arange(int(gt_time) - last, int(gt_time) + last + 1)
    sims = [simulated(gt, flows, gt_time, times, seed) for seed in range(seeds)]

    def high(frame: np.ndarray, t: float) -> float:
        back = -flow_at(flows, gt_time, t)
        freqs, gains = transfer(warp(torch.from_numpy(frame.astype(np.float32)), back[None], 0, 0)[0].numpy(), gt)
        return float(gains[freqs > HIGH_BAND].mean())

    real = np.array([high(stream[t] / ALPHA, float(t)) for t in times])
    sim = np.array([np.mean([high(s[i] / ALPHA, float(t)) for s in sims]) for i, t in enumerate(times)])
    distance = np.abs(times - gt_time)
    rows = []
    for lo, hi in zip(TIME_BINS, TIME_BINS[1:]):
        inside = (distance >= lo) & (distance < hi)
        rows.append((lo, hi, float(real[inside].mean()), float(sim[inside].mean())))
    return rows


def fit_lowpass(freqs: np.ndarray, ratio: np.ndarray) -> tuple[float, float]:
    """``(f0, p)`` of ``exp(-(f / f0) ** p)`` through the bands above 0.2 cycles per pixel."""
    use = (freqs > 0.2) & (ratio > 0) & (ratio < 0.995)
    if use.sum() < 2:
        return float("nan"), float("nan")
    slope, intercept = np.polyfit(np.log(freqs[use]), np.log(-np.log(ratio[use])), 1)
    return float(np.exp(-intercept / slope)), float(slope)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--data", type=Path, default=None, help="spike/*.dat + gt/*.png folder")
    parser.add_argument("--weights", default=None, help="STIR checkpoint (default: the shipped weights)")
    parser.add_argument("--gt-offset", type=float, default=0.5,
                        help="ground truth's time after the centre frame, frames (scripts/timing_offset.py)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulator's initial phases")
    parser.add_argument("--motion-scales", type=float, nargs="*", default=[0.0, 0.5, 1.5],
                        help="also simulate the clip's motion scaled by these factors (default 0 0.5 1.5)")
    parser.add_argument("--by-time", action="store_true",
                        help="also compare single frames' detail by their distance from the ground truth")
    args = parser.parse_args()
    import torch

    from stir_ros.core.dat import DatReader
    from stir_ros.core.metrics import psnr
    from stir_ros.core.simulator import ALPHA
    from stir_ros.engine import EngineConfig, ReconstructionEngine
    from stir_ros.evaluation import find_pairs, load_gt
    from stir_ros.training.scenes import LOWPASS_ORDER, spectral_lowpass

    torch.set_num_threads(1)
    data = args.data or spikezoo_train_split()
    engine = ReconstructionEngine(EngineConfig(method="stir", weights=args.weights, device="cpu", max_batch=1))
    half = engine.window_length // 2
    rows = []
    for name, dat, png in find_pairs(data):
        gt = load_gt(png).astype(np.float32)
        with DatReader(dat, gt.shape[0], gt.shape[1]) as reader:
            stream = reader.read(0, len(reader))
        centre = stream.shape[0] // 2
        if centre - max(FLOW_TIMES) - AVERAGE // 2 < 0:
            needed = 2 * (max(FLOW_TIMES) + AVERAGE // 2) + 1
            sys.exit(f"data_gap: {name} has {stream.shape[0]} frames; it needs at least {needed}")
        gt_time = centre + args.gt_offset
        flows = measured_flows(gt, stream, centre, ALPHA)
        times = np.arange(centre - half, centre + half + 1)
        real = stream[times[0] : times[-1] + 1]

        def score(window: np.ndarray, gt: np.ndarray = gt) -> float:
            return psnr(engine.reconstruct(window[None].astype(np.uint8))[0], gt)

        sim = simulated(gt, flows, gt_time, times, args.seed)

        freqs, real_gain = transfer(compensated_average(real, flows, gt_time, times, ALPHA), gt)
        _, sim_gain = transfer(compensated_average(sim, flows, gt_time, times, ALPHA), gt)
        ratio = real_gain / sim_gain
        f0, order = fit_lowpass(freqs, ratio)
        row = {"real": score(real), "sim": score(sim), "f0": f0, "p": order}
        if np.isfinite(f0):
            soft = spectral_lowpass(torch.from_numpy(gt), f0, LOWPASS_ORDER).numpy()
            row["sim_lowpass"] = score(simulated(soft, flows, gt_time, times, args.seed))
        for k in args.motion_scales:
            row[f"x{k:g}"] = score(simulated(gt, {t: f * k for t, f in flows.items()}, gt_time, times, args.seed))
        if args.by_time:
            bins = detail_by_time(stream, gt, flows, gt_time)
            print(f"  single frames' detail above {HIGH_BAND} cycles/px, real/simulated, by frames from the "
                  "ground truth: " + ", ".join(f"{lo}-{hi}: {r / m:.2f}" for lo, hi, r, m in bins))  # fmt: skip
        rows.append(row)
        soft_score = row.get("sim_lowpass", float("nan"))
        print(f"{name}: real {row['real']:.2f} dB, simulated {row['sim']:.2f} dB, "
              f"simulated from the low-passed ground truth {soft_score:.2f} dB", flush=True)  # fmt: skip
        print("  detail ratio real/simulated by band (cycles/px): "
              + " ".join(f"{f:.2f}:{r:.2f}" for f, r in zip(freqs, ratio)))  # fmt: skip
        print(f"  fit exp(-(f / {f0:.3f}) ** {order:.2f}); the low-passed run uses order {LOWPASS_ORDER}")
        if args.motion_scales:
            print("  simulated with the motion scaled by: "
                  + ", ".join(f"x{k:g} {row[f'x{k:g}']:.2f} dB" for k in args.motion_scales) + " (x1: above)")  # fmt: skip
    mean = {k: float(np.nanmean([r.get(k, np.nan) for r in rows])) for k in ("real", "sim", "sim_lowpass", "f0", "p")}
    print(f"mean: real {mean['real']:.2f} dB, simulated {mean['sim']:.2f} dB, low-passed {mean['sim_lowpass']:.2f} dB; "
          f"cutoff f0 {mean['f0']:.3f}, order {mean['p']:.2f} ({data})")  # fmt: skip
    return 0


if __name__ == "__main__":
    from stir_ros.core.errors import StirRosError

    try:
        sys.exit(main())
    except StirRosError as err:  # bad data folder or weights file: one line, no traceback
        sys.exit(f"data_gap: {err}")
