# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""``stir-ros eval``: PSNR/SSIM of tfp, tfi and stir on paired spike streams and ground truth.

Data layout (Spike-Zoo's): ``DATA_DIR/spike/NAME.dat`` and ``DATA_DIR/gt/NAME.png``, paired by
file name. The ground truth belongs to the centre frame ``N // 2`` of an ``N``-frame stream
(Spike-Zoo crops ``[N//2 - T//2, N//2 + T//2]``); each method sees the ``T``-frame window
centred on it. The frame size is the ground truth's.

Every method runs through :class:`stir_ros.engine.ReconstructionEngine`, the same code the
reconstruction node uses, so the numbers here are the node's.

Metrics follow Spike-Zoo's evaluation (``spikezoo.metrics``): the reconstruction clipped to
[0, 1], PSNR on float images with peak 1, SSIM as ``skimage.metrics.structural_similarity``
with its defaults (7x7 uniform window, sample covariance). ``ssim_gaussian`` is the
Gaussian-window SSIM of :func:`stir_ros.core.metrics.ssim` (Wang et al.'s definition).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stir_ros.core.defaults import ALPHA, BACKENDS, DARK_WEIGHTS, FRAME_RATE_HZ, PRECISIONS
from stir_ros.core.methods import METHODS, method_spec
from stir_ros.core.dat import centre_window
from stir_ros.core.errors import ConfigError
from stir_ros.core.metrics import psnr, ssim
from stir_ros.core.paths import check_output_apart, make_output_folder
from stir_ros.core.text_output import write_json
from stir_ros.core.limits import check_parameter
from stir_ros.core.sensor_model import FAULT_CONDITIONS, SensorModel, add_faults, check_recorded_faults, parse_sensor
from stir_ros.engine import add_dark_weights_argument

__all__ = [
    "add_arguments", "run", "find_pairs", "load_gt", "evaluate", "evaluate_faults", "format_fault_table",
    "spikezoo_ssim", "spikezoo_data",
]  # fmt: skip



def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``stir-ros eval``."""
    parser.add_argument("data_dir", metavar="DATA_DIR", help="folder with spike/*.dat and gt/*.png")
    parser.add_argument("--method", nargs="+", action="extend", choices=METHODS, default=None,
                        help="one or more of tfp, tfi, stir (repeatable; default: stir)")  # fmt: skip
    parser.add_argument("--weights", help="STIR checkpoint (default: the shipped weights)")
    parser.add_argument("--alpha", type=float, default=ALPHA, help="sensor alpha of the data")
    parser.add_argument("--window-length", type=int, default=0,
                        help="frames per window; 0: the checkpoint's for stir, 41 for tfp/tfi")  # fmt: skip
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS,
                        help="stir precision; default fp32 (exact, so that scores stay comparable), unlike the node's "
                             "and bag reconstruct's auto")  # fmt: skip
    parser.add_argument("--backend", default="torch", choices=BACKENDS,
                        help="stir inference: torch (default: exact, comparable scores; the node and bag reconstruct "
                             "default to auto), openvino (CPU) or auto")  # fmt: skip
    parser.add_argument("--no-defect-correction", dest="defect_correction", action="store_false",
                        help="do not repair hot/dead pixels (by default they are estimated from each whole clip "
                             "and repaired, as the node does)")
    add_dark_weights_argument(parser)
    parser.add_argument("--json", metavar="OUT.json", help="write the results here")
    parser.add_argument("--save-images", metavar="DIR", help="write each reconstruction as a PNG")
    parser.add_argument("--faults", action="store_true",
                        help="score each method under each defect class at stated levels (dark-current spikes, "
                             "hot and dead pixels added to the recorded spikes): what a real sensor costs")  # fmt: skip
    parser.add_argument("--sensor", nargs="+", default=None, metavar="FIELD=VALUE",
                        help="with --faults, also score your own sensor's levels (dark_rate_hz, dark_rate_spread, "
                             "hot_fraction, dead_fraction), e.g. --sensor dark_rate_hz=25 hot_fraction=0.002")  # fmt: skip
    parser.add_argument("--fault-seeds", type=int, nargs="+", default=[0, 1], metavar="SEED",
                        help="with --faults, the seeds of the added faults; scores are averaged over them")  # fmt: skip
    parser.add_argument("--frame-rate-hz", type=float, default=FRAME_RATE_HZ,
                        help="the data's frame rate, which turns dark rates in Hz into rates per frame")  # fmt: skip


def spikezoo_data(split: str = "train") -> Path | None:
    """Spike-Zoo's REDS-derived ``base/<split>`` clips in the installed ``spikezoo`` package.

    The package is found without importing it (its ``__init__`` needs extra dependencies); None
    where it is not installed (the test tools install it).
    """
    import importlib.util

    spec = importlib.util.find_spec("spikezoo")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "base" / split


def unpaired(data_dir: str | Path) -> list[str]:
    """One line per file of the layout that :func:`find_pairs` leaves out, and why."""
    root = Path(data_dir)
    spike_dir, gt_dir = root / "spike", root / "gt"
    if not spike_dir.is_dir() or not gt_dir.is_dir():
        return []
    dats = {p.stem for p in spike_dir.glob("*.dat")}
    gts = {p.stem: p for p in gt_dir.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg")}
    lines = [f"gt/{gts[n].name}: no spike/{n}.dat; skipped" for n in sorted(set(gts) - dats)]
    lines += [f"spike/{n}.dat: no gt/{n}.png; skipped" for n in sorted(dats - set(gts))]
    return lines


def find_pairs(data_dir: str | Path) -> list[tuple[str, Path, Path]]:
    """``(name, dat, png)`` for every ``spike/NAME.dat`` with a ``gt/NAME.png``, sorted by name.

    Raises:
        ConfigError: The layout is missing or no pair exists.
    """
    root = Path(data_dir)
    spike_dir, gt_dir = root / "spike", root / "gt"
    if not spike_dir.is_dir() or not gt_dir.is_dir():
        raise ConfigError(f"'{root}' must contain spike/ and gt/ folders (Spike-Zoo layout)")
    gts = {p.stem: p for p in gt_dir.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg")}
    pairs = [(p.stem, p, gts[p.stem]) for p in sorted(spike_dir.glob("*.dat")) if p.stem in gts]
    if not pairs:
        raise ConfigError(f"no spike/NAME.dat with a matching gt/NAME.png in '{root}'")
    return pairs


def load_gt(path: Path) -> np.ndarray:
    """Ground truth as float32 [H, W] in [0, 1] (RGB converted with BT.601 luma, as OpenCV)."""
    from PIL import Image

    with Image.open(path) as im:
        if im.mode in ("L", "I;16", "I"):
            arr = np.asarray(im).astype(np.float32)
            return arr / (65535.0 if arr.max() > 255 else 255.0)
        rgb = np.asarray(im.convert("RGB")).astype(np.float32)
    gray = np.rint(rgb @ np.array([0.299, 0.587, 0.114], np.float32))  # OpenCV rounds to uint8
    return gray / 255.0


def spikezoo_ssim(pred: np.ndarray, gt: np.ndarray) -> float:
    """SSIM as Spike-Zoo computes it: skimage defaults (7x7 uniform window), peak 1."""
    from skimage.metrics import structural_similarity

    return float(structural_similarity(gt.astype(np.float64), pred.astype(np.float64), data_range=1.0))


def evaluate(
    data_dir: str | Path,
    methods: Sequence[str],
    weights: str | None = None,
    alpha: float = ALPHA,
    window_length: int = 0,
    device: str = "auto",
    precision: str = "fp32",
    save_images: str | None = None,
    backend: str = "torch",
    faults: SensorModel | None = None,
    fault_seed: int = 0,
    frame_rate_hz: float = FRAME_RATE_HZ,
    defect_correction: bool = True,
    warn: Callable[[str], Any] = lambda message: None,
    dark_weights: str = DARK_WEIGHTS,
) -> dict[str, Any]:
    """Evaluate ``methods`` on every clip of ``data_dir``.

    ``warn`` hears of each engine fallback (e.g. an OpenVINO that is not installed: torch).

    ``faults`` adds a sensor's dark-current spikes, hot and dead pixels to each clip's window
    (:func:`~stir_ros.core.sensor_model.add_faults`, seeded by ``fault_seed`` and the clip's
    place in the folder; dark rates at ``frame_rate_hz``) before any method sees it.

    Returns:
        ``{"data_dir", "alpha", "skipped", "methods": {name: {"psnr", "ssim", "ssim_gaussian",
        "window_length", "seconds_per_frame", "weights", "clips": [{"name", "psnr", "ssim",
        "ssim_gaussian"}]}}}``. ``skipped`` lists the files without a partner (:func:`unpaired`);
        ``seconds_per_frame`` is the mean time of one reconstruction after a warm-up at each
        frame size (model loading, lazy initialisation and autotuning excluded).
        With ``defect_correction`` each clip's hot and dead pixels are estimated from all its
        frames (:func:`stir_ros.core.defects.estimate_defects`, the node's rules) and repaired in
        the window before a method sees it; ``repaired_pixels`` counts them per clip.
    """
    from stir_ros.engine import EngineConfig
    from stir_ros.reconstructor_settings import build_engine

    pairs = find_pairs(data_dir)
    gts = {name: load_gt(png) for name, _, png in pairs}
    results: dict[str, Any] = {"data_dir": str(data_dir), "alpha": alpha, "skipped": unpaired(data_dir),
                               "methods": {}}
    for method in methods:
        cfg = EngineConfig(
            method=method, window_length=window_length, alpha=alpha, device=device, precision=precision,
            max_batch=1, weights=weights if method_spec(method).needs_weights else None, backend=backend,
            dark_weights=dark_weights,
        )  # fmt: skip
        engine = build_engine(cfg, lambda message, _summary: warn(message))
        clips, seconds = [], 0.0
        for index, (name, dat, _) in enumerate(pairs):
            gt = gts[name]
            window = centre_window(dat, gt.shape[0], gt.shape[1], engine.window_length)
            window, repaired = clip_window(
                dat, gt.shape[0], gt.shape[1], engine.window_length, faults=faults,
                fault_seed=fault_seed * 1000 + index, frame_rate_hz=frame_rate_hz, defect_correction=defect_correction,
            )  # fmt: skip
            engine.warmup(gt.shape[0], gt.shape[1])  # not timed: once per size
            start = time.perf_counter()
            image = engine.reconstruct(window[None])[0]
            seconds += time.perf_counter() - start
            clips.append({
                "name": name,
                "psnr": psnr(image, gt),
                "ssim": spikezoo_ssim(image, gt),
                "ssim_gaussian": ssim(image, gt),
                "repaired_pixels": repaired,
            })  # fmt: skip
            if save_images:
                from PIL import Image

                out = Path(save_images) / method
                make_output_folder(out, "--save-images folder")
                Image.fromarray(np.rint(image * 255).astype(np.uint8)).save(out / f"{name}.png")
        entry: dict[str, Any] = {
            "psnr": float(np.mean([c["psnr"] for c in clips])),
            "ssim": float(np.mean([c["ssim"] for c in clips])),
            "ssim_gaussian": float(np.mean([c["ssim_gaussian"] for c in clips])),
            "window_length": engine.window_length,
            "seconds_per_frame": seconds / len(clips),
            "clips": clips,
        }
        if engine.spec.needs_weights:
            entry["weights"] = str(engine.weights_path)
            entry["steps"] = int(getattr(engine.metadata, "steps", 0))
            entry["backend"], entry["precision"] = engine.backend, engine.precision
            entry["dark_weights"] = str(engine.dark.path) if engine.dark else None
            entry["dark_windows"] = engine.dark.windows if engine.dark else 0
        results["methods"][method] = entry
    return results


def evaluate_faults(
    data_dir: str | Path,
    methods: Sequence[str],
    conditions: Sequence[tuple[str, SensorModel]] = FAULT_CONDITIONS,
    seeds: Sequence[int] = (0, 1),
    log: Any = None,
    **options: Any,
) -> dict[str, Any]:
    """:func:`evaluate` under each fault condition, averaged over ``seeds``.

    Returns:
        ``{"data_dir", "seeds", "conditions": [{"name", "sensor", "methods": {method: {"psnr",
        "ssim"}}}]}``; a clean condition is scored once (it has no randomness).
    """
    if not seeds:
        raise ConfigError("--fault-seeds needs at least one seed")
    out: dict[str, Any] = {"data_dir": str(data_dir), "seeds": list(seeds), "conditions": []}
    for name, model in conditions:
        runs = [evaluate(data_dir, methods, faults=model, fault_seed=seed, **options)
                for seed in (seeds if not model.is_ideal else seeds[:1])]  # fmt: skip
        scores = {
            method: {key: float(np.mean([r["methods"][method][key] for r in runs])) for key in ("psnr", "ssim")}
            for method in methods
        }
        out["conditions"].append({"name": name, "sensor": model.describe(), "methods": scores})
        if log is not None:
            log(f"{name}: " + ", ".join(f"{m} {s['psnr']:.2f} dB" for m, s in scores.items()))
    return out


def format_fault_table(results: dict[str, Any]) -> str:
    """Markdown table: one row per condition, PSNR / SSIM per method and each method's loss against clean."""
    conditions = results["conditions"]
    methods = list(conditions[0]["methods"])
    clean = next((c for c in conditions if c["sensor"] == "ideal"), None)
    head = "| spikes | " + " | ".join(f"{m} dB / SSIM" for m in methods) + " |"
    rows = [head, "|---|" + "---|" * len(methods)]
    for cond in conditions:
        cells = []
        for m in methods:
            score = cond["methods"][m]
            cell = f"{score['psnr']:.2f} / {score['ssim']:.3f}"
            if clean is not None and cond is not clean:
                cell += f" ({score['psnr'] - clean['methods'][m]['psnr']:+.2f})"
            cells.append(cell)
        rows.append(f"| {cond['name']} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def clip_window(
    dat: Path,
    height: int,
    width: int,
    window_length: int,
    *,
    faults: SensorModel | None = None,
    fault_seed: int = 0,
    frame_rate_hz: float = FRAME_RATE_HZ,
    defect_correction: bool = True,
) -> tuple[np.ndarray, int]:
    """The window centred on a clip's frame ``N // 2``, as the methods see it, and the pixels repaired.

    ``faults`` are added to every frame of the clip (seeded by ``fault_seed``); with
    ``defect_correction`` the hot and dead pixels are estimated from all of the (faulted) clip's
    frames, as a node estimates them from a stream, and repaired in the window.
    """
    if (faults is None or faults.is_ideal) and not defect_correction:
        return centre_window(dat, height, width, window_length), 0
    from stir_ros.core.dat import DatReader
    from stir_ros.core.defects import estimate_defects

    with DatReader(dat, height, width) as reader:
        frames = reader.read(0, len(reader))
    total = len(frames)
    first = total // 2 - window_length // 2
    if first < 0 or first + window_length > total:
        raise ConfigError(f"{dat} has {total} frames, fewer than the {window_length}-frame window needs")
    if faults is not None and not faults.is_ideal:
        frames = add_faults(frames, faults, frame_rate_hz, seed=fault_seed)
    window = frames[first : first + window_length]
    if not defect_correction:
        return window, 0
    repair = estimate_defects(frames.sum(axis=0, dtype=np.uint32), total).repair
    return repair.apply(window.copy()), int(repair.count)


def format_table(results: dict[str, Any]) -> str:
    """Markdown table: one row per method, mean PSNR/SSIM and the per-clip PSNR."""
    methods = results["methods"]
    clip_names = [c["name"] for c in next(iter(methods.values()))["clips"]]
    head = "| method | T | PSNR (dB) | SSIM | SSIM (gauss) | " + " | ".join(clip_names) + " |"
    rule = "|---|---|---|---|---|" + "---|" * len(clip_names)
    rows = [head, rule]
    for name, r in methods.items():
        per_clip = " | ".join(f"{c['psnr']:.2f} / {c['ssim']:.3f}" for c in r["clips"])
        rows.append(
            f"| {name} | {r['window_length']} | {r['psnr']:.2f} | {r['ssim']:.4f} | {r['ssim_gaussian']:.4f} | {per_clip} |"
        )
    return "\n".join(rows)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``stir-ros eval``."""
    methods = list(dict.fromkeys(args.method or ["stir"]))
    inputs = (args.data_dir, args.weights)
    check_output_apart(args.json, inputs, what="--json file")
    if args.save_images:
        for method in methods:  # the images go to DIR/<method>/<clip>.png
            check_output_apart(Path(args.save_images) / method, inputs, what="--save-images folder", folder=True)
    if args.weights:  # before any data is read: a bad file is one line, at once
        from stir_ros.models.checkpoint import check_weights_file

        check_weights_file(args.weights, args.window_length or None)
    options = dict(weights=args.weights, alpha=args.alpha, window_length=args.window_length, device=args.device,
                   precision=args.precision, backend=args.backend, frame_rate_hz=args.frame_rate_hz,
                   defect_correction=args.defect_correction, dark_weights=args.dark_weights,
                   warn=lambda message: print(f"warning: {message}", file=sys.stderr))  # fmt: skip
    if getattr(args, "sensor", None) and not args.faults:
        raise ConfigError("--sensor is scored with --faults")
    if args.faults:
        if args.save_images:
            raise ConfigError("--save-images does not go with --faults (one image per condition and seed)")
        # Checked before the first clip: a refusal after hours of scoring the standard rows costs the run.
        check_parameter("spike_camera_driver", "frame_rate_hz", args.frame_rate_hz)
        conditions = list(FAULT_CONDITIONS)
        if args.sensor:
            model = parse_sensor(args.sensor)
            check_recorded_faults(model)
            conditions.append((f"your sensor: {model.describe()}", model))
        for line in unpaired(args.data_dir):
            print(f"warning: {line}", file=sys.stderr)
        results = evaluate_faults(args.data_dir, methods, conditions, args.fault_seeds,
                                  log=lambda m: print(f"[eval] {m}", file=sys.stderr, flush=True), **options)  # fmt: skip
        print(format_fault_table(results))
    else:
        results = evaluate(args.data_dir, methods, save_images=args.save_images, **options)
        for line in results["skipped"]:
            print(f"warning: {line}", file=sys.stderr)
        print(format_table(results))
    if args.json:
        write_json(args.json, results, indent=2)  # strict: an infinite PSNR (a perfect image) is null
    return 0
