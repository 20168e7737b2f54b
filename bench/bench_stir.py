# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""STIR speed and reduced-precision accuracy: ours (prepared) against the authors' eager model.

Usage: python bench/bench_stir.py [--device auto|cpu|cuda] [--quick] [--big] [--json OUT]
       [--threads N] [--batch N] [--repeat N] [--compile MODE] [--weights PATH]
       [--cudnn-benchmark] [--skip-accuracy] [--profile N]

Prints the hardware, then one line per row: the reference (the authors' eager STIR from the
installed ``spikezoo``, measured in this run with the same weights and inputs), ours
(``stir_ros.models.inference.prepare_for_inference``), and the ratio (how many times faster;
for accuracy rows the dB difference). Reference and ours are timed alternately, repeat after
repeat, so that a busy machine slows both alike; medians and bests are printed.

Rows: batch-1 latency at 250x400 (61 frames); batched throughput fp32/fp16/bf16 (batch 8 on a GPU,
2 on the CPU unless ``--batch``); batch 32 fp16 (GPU); 1000x1000 batch 1 (GPU, or CPU with
``--big``); PSNR of fp16/bf16 against fp32 and against the ground truth of the Spike-Zoo clips.
fp16 needs a GPU and is skipped on the CPU. The same script runs unchanged on a GPU machine.

On the CPU both models run with one torch thread unless ``--threads`` says otherwise: on the
shared 2-core development machine one thread was faster than two for both (OpenMP barriers
stall when the other core is taken); on an idle machine pass ``--threads 2``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import authors_stir_class, cpu_model, spikezoo_dir  # noqa: E402  (bench/ is on sys.path)

# Run from a checkout without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stir_ros.core.dat import read_dat
from stir_ros.core.metrics import psnr
from stir_ros.core.text_output import write_json
from stir_ros.models import STIR, load_checkpoint, load_official
from stir_ros.models.blocks import pad_tail
from stir_ros.models.inference import InferenceModel, prepare_for_inference
from stir_ros.models.streaming import StreamingSTIR
from stir_ros.models.official import official_prefix_map

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}
ALPHA = 0.6  # the Spike-Zoo REDS-derived clips


# ------------------------------------------------------------------------------ set-up


def hardware(device: torch.device) -> str:
    cpu = cpu_model()
    flags = ""
    with contextlib.suppress(OSError):
        text = Path("/proc/cpuinfo").read_text()
        flags = ", ".join(f for f in ("avx512f", "avx512_bf16", "amx_bf16") if f" {f}" in text)
    cpu_line = (
        f"CPU: {cpu}, {os.cpu_count()} logical cores ({flags or 'no AVX-512'}), torch threads "
        f"{torch.get_num_threads()}, load average {os.getloadavg()[0]:.2f}"
    )
    lines = [cpu_line]
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        lines.insert(0, f"GPU: {props.name}, {props.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda}")
    lines.append(f"python {platform.python_version()}, torch {torch.__version__}")
    return "\n".join(lines)


def authors_class() -> type[torch.nn.Module]:
    """The authors' STIR from the installed spikezoo (imported, never copied)."""
    return authors_stir_class()


def to_authors_state(ours: STIR, authors: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Our weights under the authors' names (the inverse of ``load_official``'s key table)."""
    rules = official_prefix_map()
    state = ours.state_dict()
    out = {}
    for key in authors.state_dict():
        src, dst = max(((s, d) for s, d in rules if key.startswith(s)), key=lambda r: len(r[0]))
        out[key] = state[dst + key[len(src) :]]
    return out


def build_models(weights: str | None, window_length: int) -> tuple[torch.nn.Module, STIR, str]:
    """(authors' model, ours, where the weights came from); both compute the same function."""
    authors_cls = authors_class()
    default = Path(__file__).resolve().parents[1] / "stir_ros" / "weights" / "stir_default.pt"
    path = Path(weights) if weights else default
    if path.is_file():
        ours, meta = load_checkpoint(path)
        authors = authors_cls(spike_dim=ours.window_length)
        authors.load_state_dict(to_authors_state(ours, authors))
        note = f"weights: {path} (window {ours.window_length})"
    else:
        if weights:
            raise SystemExit(f"weights file {path} does not exist")
        torch.manual_seed(0)
        authors = authors_cls(spike_dim=window_length)
        ours = load_official(authors.state_dict())
        note = f"weights: RANDOM (authors' initialisation; {path} not present), window {window_length}"
    return authors.eval(), ours.eval(), note


def random_spikes(b: int, t: int, h: int, w: int, device: torch.device, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    rate = torch.rand(b, 1, h, w, generator=gen) * 0.6
    return (torch.rand(b, t, h, w, generator=gen) < rate).to(torch.uint8).to(device)


class Authors:
    """The authors' eager model as a user runs it: padded float input, optional autocast."""

    def __init__(self, model: torch.nn.Module, device: torch.device, precision: str = "fp32") -> None:
        self.model, self.device, self.precision = model, device, precision

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        padded, _, _ = pad_tail(x.float(), 16)
        cast = (
            torch.autocast(self.device.type, dtype=DTYPES[self.precision])
            if self.precision != "fp32"
            else contextlib.nullcontext()
        )
        with torch.inference_mode(), cast:
            return self.model(padded)[..., :h, :w].float()


# ------------------------------------------------------------------------------ timing


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved(
    fns: dict[str, Callable[[], Any]], device: torch.device, repeats: int, calls: int, per_call: bool
) -> dict[str, list[float]]:
    """Seconds per call of each function, measured alternately.

    ``per_call``: time every call on its own (latency); else ``calls`` back to back, averaged
    (throughput: the device stays busy).
    """
    for fn in fns.values():  # warm-up: lazy initialisation, allocator, cuDNN autotuning
        fn()
    sync(device)
    CPU_TIMES.clear()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            if per_call:
                for _ in range(calls):
                    sync(device)
                    t0, c0 = time.perf_counter(), time.process_time()
                    fn()
                    sync(device)
                    times[name].append(time.perf_counter() - t0)
                    CPU_TIMES.setdefault(name, []).append(time.process_time() - c0)
            else:
                sync(device)
                t0, c0 = time.perf_counter(), time.process_time()
                for _ in range(calls):
                    fn()
                sync(device)
                times[name].append((time.perf_counter() - t0) / calls)
                CPU_TIMES.setdefault(name, []).append((time.process_time() - c0) / calls)
    return times


#: Process CPU seconds per call, by function name, of the latest ``interleaved`` call: on a
#: shared CPU this is less noisy than the wall clock (it does not count time spent descheduled).
CPU_TIMES: dict[str, list[float]] = {}


class Report:
    def __init__(self, hardware: str, note: str, gpu: bool) -> None:
        self.rows: list[dict[str, Any]] = []
        self.hardware, self.note, self.gpu = hardware, note, gpu
        print(f"{'row':48s} {'reference':>26s} {'ours':>26s} {'ratio':>8s}")

    def speed(self, row: str, ref_name: str, ref: list[float], ours_name: str, ours: list[float], batch: int,
              latency: bool) -> None:  # fmt: skip
        def fmt(ts: list[float]) -> str:
            med, best = statistics.median(ts), min(ts)
            if latency:
                return f"{med * 1e3:9.1f} ms (best {best * 1e3:.1f})"
            return f"{batch / med:9.2f} fps (best {batch / best:.2f})"

        ratio = statistics.median(ref) / statistics.median(ours)
        ratio_best = min(ref) / min(ours)
        cpu_ref, cpu_ours = CPU_TIMES.get(ref_name, []), CPU_TIMES.get(ours_name, [])
        cpu_ratio = statistics.median(cpu_ref) / statistics.median(cpu_ours) if cpu_ref and cpu_ours else None
        extra = f"; CPU-time {cpu_ratio:.2f}x" if cpu_ratio is not None and not self.gpu else ""
        print(f"{row:48s} {fmt(ref):>26s} {fmt(ours):>26s} {ratio:7.2f}x  "
              f"[{ref_name} | {ours_name}; best/best {ratio_best:.2f}x{extra}]")  # fmt: skip
        self.rows.append({
            "row": row, "metric": "latency_ms" if latency else "frames_per_s", "batch": batch,
            "reference": ref_name, "ours": ours_name,
            "reference_median": _value(ref, batch, latency), "reference_best": _value([min(ref)], batch, latency),
            "ours_median": _value(ours, batch, latency), "ours_best": _value([min(ours)], batch, latency),
            "ratio_median": ratio, "ratio_best": ratio_best,
            "reference_times_s": ref, "ours_times_s": ours,
            "reference_cpu_s": cpu_ref, "ours_cpu_s": cpu_ours, "cpu_time_ratio_median": cpu_ratio,
        })  # fmt: skip

    def value(self, row: str, ref_name: str, ref: float, ours_name: str, ours: float, unit: str, **extra: Any) -> None:
        diff = ours - ref
        print(f"{row:48s} {ref:22.2f} {unit:>3s} {ours:22.2f} {unit:>3s} {diff:+7.3f}   [{ref_name} | {ours_name}]")
        self.rows.append({"row": row, "metric": unit, "reference": ref_name, "ours": ours_name,
                          "reference_value": ref, "ours_value": ours, "difference": diff, **extra})  # fmt: skip

    def text(self, row: str, message: str, **extra: Any) -> None:
        print(f"{row:48s} {message}")
        self.rows.append({"row": row, "note": message, **extra})


def _value(ts: list[float], batch: int, latency: bool) -> float:
    med = statistics.median(ts)
    return med * 1e3 if latency else batch / med


# ------------------------------------------------------------------------------ rows


def speed_rows(args: argparse.Namespace, authors: torch.nn.Module, ours: STIR, device: torch.device,
               report: Report) -> None:  # fmt: skip
    gpu = device.type == "cuda"
    t = ours.window_length
    precisions = ["fp32", "fp16", "bf16"] if gpu else ["fp32", "bf16"]
    calls = (10 if args.quick else 25) if gpu else 1
    repeats = args.repeat or ((3 if args.quick else 5) if gpu else (2 if args.quick else 3))
    graphs = gpu

    def prepared(precision: str, **kw: Any) -> InferenceModel:
        return prepare_for_inference(ours, device=device, precision=precision, cuda_graphs=graphs, **kw)

    # Batch-1 latency, 250x400: the authors' fp32 against ours at each precision.
    x = random_spikes(1, t, 250, 400, device)
    fns: dict[str, Callable[[], Any]] = {"authors fp32": lambda: Authors(authors, device)(x)}
    models = {p: prepared(p) for p in precisions}
    for p, m in models.items():
        fns[f"ours {p}"] = lambda m=m: m(x)
    times = interleaved(fns, device, repeats, calls, per_call=True)
    for p in precisions:
        report.speed(f"latency p50, 1x{t}x250x400, {p}", "authors fp32", times["authors fp32"], f"ours {p}",
                     times[f"ours {p}"], 1, latency=True)  # fmt: skip
    del models, fns
    _free(device)

    if args.compile:
        # Compiled against the authors and against our eager model, in one interleaved group.
        fns = {"authors fp32": lambda: Authors(authors, device)(x)}
        compiled_precisions = ["fp16", "fp32"] if gpu else ["bf16", "fp32"]
        keep = []
        for p in compiled_precisions:
            eager, compiled = prepared(p), prepared(p, compile=args.compile)
            t0 = time.perf_counter()
            compiled.warmup(1, 250, 400)
            report.text(f"compile time, {p}, torch.compile {args.compile}",
                        f"{time.perf_counter() - t0:.0f} s (less with a warm inductor cache)")  # fmt: skip
            fns[f"ours {p}"] = lambda m=eager: m(x)
            fns[f"ours {p} compiled"] = lambda m=compiled: m(x)
            keep += [eager, compiled]
        times = interleaved(fns, device, repeats, calls, per_call=True)
        for p in compiled_precisions:
            report.speed(f"latency p50, 1x{t}x250x400, {p}, compiled", "authors fp32", times["authors fp32"],
                         f"ours {p} compiled", times[f"ours {p} compiled"], 1, latency=True)  # fmt: skip
            report.speed(f"  compiled vs our eager, {p}", f"ours {p}", times[f"ours {p}"],
                         f"ours {p} compiled", times[f"ours {p} compiled"], 1, latency=True)  # fmt: skip
        del keep, fns
        _free(device)

    # Batched throughput: each precision against the authors' eager at the same precision (autocast).
    batch = args.batch or (8 if gpu else 2)
    xb = random_spikes(batch, t, 250, 400, device, seed=1)
    for p in precisions:
        m = prepared(p)
        fns = {f"authors {p}": lambda p=p: Authors(authors, device, p)(xb), f"ours {p}": lambda m=m: m(xb)}
        times = interleaved(fns, device, repeats, max(1, calls // 2), per_call=False)
        report.speed(f"throughput, {batch}x{t}x250x400, {p}", f"authors {p}", times[f"authors {p}"], f"ours {p}",
                     times[f"ours {p}"], batch, latency=False)  # fmt: skip
        del m, fns
        _free(device)

    # A stream of consecutive windows (stride = the block offset: 20 frames for 61), one per call
    # as the node sees them: per-window calls against block-feature reuse (StreamingSTIR).
    p = "fp16" if gpu else "bf16"
    stride, n_windows = ours.blocks[1][0], 6
    frames = random_spikes(1, stride * (n_windows - 1) + t, 250, 400, device, seed=4)[0]
    windows = [frames[None, i * stride : i * stride + t] for i in range(n_windows)]
    m = prepare_for_inference(ours, device=device, precision=p)
    stream = StreamingSTIR(m)

    def per_window() -> None:
        for w in windows:
            m(w)

    def streamed(stream: StreamingSTIR = stream) -> None:
        stream.reset()
        for i, w in enumerate(windows):
            stream.reconstruct_stream(w, [i * stride])

    fns = {f"ours {p} per window": per_window, f"ours {p} streaming": streamed}
    times = interleaved(fns, device, repeats, max(1, calls // 5), per_call=False)
    report.speed(f"stream, {n_windows} windows stride {stride}, {p}", f"ours {p} per window",
                 [v / n_windows for v in times[f"ours {p} per window"]], f"ours {p} streaming",
                 [v / n_windows for v in times[f"ours {p} streaming"]], 1, latency=True)  # fmt: skip
    del m, stream, fns
    _free(device)

    if gpu:
        x32 = random_spikes(32, t, 250, 400, device, seed=2)
        m = prepared("fp16")
        fns = {"authors fp16": lambda: Authors(authors, device, "fp16")(x32), "ours fp16": lambda: m(x32)}
        times = interleaved(fns, device, repeats, max(1, calls // 5), per_call=False)
        report.speed(f"throughput, 32x{t}x250x400, fp16", "authors fp16", times["authors fp16"], "ours fp16",
                     times["ours fp16"], 32, latency=False)  # fmt: skip
        del m, fns, x32
        _free(device)
    else:
        report.text(f"throughput, 32x{t}x250x400, fp16", "skipped: needs a GPU")

    if gpu or args.big:
        xl = random_spikes(1, t, 1000, 1000, device, seed=3)
        big_precisions = precisions if gpu else ["fp32", "bf16"]
        models = {p: prepared(p) for p in big_precisions}
        fns = {"authors fp32": lambda: Authors(authors, device)(xl)}
        for p, m in models.items():
            fns[f"ours {p}"] = lambda m=m: m(xl)
        times = interleaved(fns, device, repeats if gpu else 1, calls, per_call=True)
        for p in big_precisions:
            report.speed(f"latency p50, 1x{t}x1000x1000, {p}", "authors fp32", times["authors fp32"], f"ours {p}",
                         times[f"ours {p}"], 1, latency=True)  # fmt: skip
        del models, fns
        _free(device)
    else:
        report.text(f"latency p50, 1x{t}x1000x1000", "skipped on the CPU (add --big)")


def accuracy_rows(args: argparse.Namespace, ours: STIR, device: torch.device, report: Report) -> None:
    """PSNR of reduced precision against fp32 and against the ground truth, Spike-Zoo clips."""
    from stir_ros.evaluation import find_pairs, load_gt

    root = (spikezoo_dir() or Path("spikezoo-not-installed")) / "data" / "base" / "train"
    pairs = find_pairs(root)
    t = ours.window_length
    windows, gts = [], []
    for _, dat, png in pairs:
        gt = load_gt(png)
        frames = read_dat(dat, *gt.shape)
        first = len(frames) // 2 - t // 2
        windows.append(frames[first : first + t])
        gts.append(gt)
    x = torch.from_numpy(np.stack(windows))
    precisions = ["fp16", "bf16"] if device.type == "cuda" else ["bf16"]
    images = {}
    for p in ["fp32", *precisions]:
        m = prepare_for_inference(ours, device=device, precision=p)
        raw = torch.cat([m(x[i : i + 1]) for i in range(len(x))])
        images[p] = (raw[:, 0] / ALPHA).clamp(0, 1).cpu().numpy()
    n = len(gts)
    gt_fp32 = float(np.mean([psnr(images["fp32"][i], gts[i]) for i in range(n)]))
    for p in precisions:
        vs_fp32 = float(np.mean([psnr(images[p][i], images["fp32"][i]) for i in range(n)]))
        report.text(f"PSNR {p} output vs fp32 output, {n} clips", f"{vs_fp32:.2f} dB", value_db=vs_fp32)
        gt_p = float(np.mean([psnr(images[p][i], gts[i]) for i in range(n)]))
        report.value(f"PSNR vs ground truth, {n} clips, {p} vs fp32", "ours fp32", gt_fp32, f"ours {p}", gt_p, "dB",
                     target_abs_difference_db=0.05)  # fmt: skip
    if device.type != "cuda":
        report.text(f"PSNR fp16 vs fp32, {n} clips", "skipped: fp16 needs a GPU")


def profile_rows(args: argparse.Namespace, authors: torch.nn.Module, ours: STIR, device: torch.device) -> None:
    """Top operators by self time for one batch-1 250x400 call of each model (torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile

    x = random_spikes(1, ours.window_length, 250, 400, device, seed=5)
    precisions = ["fp32", "fp16"] if device.type == "cuda" else ["fp32", "bf16"]
    models: dict[str, Callable[[torch.Tensor], Any]] = {"authors fp32": Authors(authors, device)}
    for p in precisions:
        models[f"ours {p}"] = prepare_for_inference(ours, device=device, precision=p)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    for name, fn in models.items():
        fn(x)
        sync(device)
        with profile(activities=activities) as prof:
            fn(x)
            sync(device)
        print(f"\nprofile: {name}, 1x{ours.window_length}x250x400, top {args.profile} by {sort}")
        print(prof.key_averages().table(sort_by=sort, row_limit=args.profile))


def _free(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:N")
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--big", action="store_true", help="also 1000x1000 on the CPU (slow)")
    parser.add_argument("--json", metavar="OUT", help="write the rows and hardware here")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (default: 1 on the CPU, else torch's default)")  # fmt: skip
    parser.add_argument("--batch", type=int, default=0, help="batch of the throughput rows (default 8 GPU, 2 CPU)")
    parser.add_argument("--repeat", type=int, default=0, help="interleaved repeats (default 5 GPU, 3 CPU)")
    parser.add_argument("--compile", choices=("default", "reduce-overhead", "max-autotune"),
                        help="also time torch.compile'd models (minutes of compilation on a small CPU)")  # fmt: skip
    parser.add_argument("--weights", help="STIR checkpoint (default: stir_ros/weights/stir_default.pt, else random)")
    parser.add_argument("--window-length", type=int, default=61, choices=(41, 61), help="with random weights")
    parser.add_argument("--skip-accuracy", action="store_true", help="speed rows only")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="only print each model's top N operators (torch.profiler), no timing")  # fmt: skip
    parser.add_argument("--cudnn-benchmark", action="store_true", help="torch.backends.cudnn.benchmark for both models")
    args = parser.parse_args()

    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          "cpu" if args.device == "auto" else args.device)  # fmt: skip
    if args.threads or device.type == "cpu":
        torch.set_num_threads(args.threads or 1)
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    started = time.perf_counter()
    authors, ours, note = build_models(args.weights, args.window_length)
    authors.to(device)
    ours.to(device)
    hw = hardware(device)
    print(hw)
    print(note)
    if device.type == "cuda":
        print(f"cuDNN TF32 for fp32 convolutions: {torch.backends.cudnn.allow_tf32} (PyTorch default; same for both)")
    check = random_spikes(1, ours.window_length, 64, 80, device, seed=9)
    diff = float((Authors(authors, device)(check) - prepare_for_inference(ours, device=device)(check)).abs().max())
    print(f"same function: max |authors - ours| fp32 = {diff:.2e}\n")
    if args.profile:
        profile_rows(args, authors, ours, device)
        return
    report = Report(hw, note, device.type == "cuda")
    speed_rows(args, authors, ours, device, report)
    if not args.skip_accuracy:
        accuracy_rows(args, ours, device, report)
    print(f"\ntotal {time.perf_counter() - started:.0f} s; ratio = reference / ours time (x faster), "
          "median over interleaved repeats (best/best in brackets)")  # fmt: skip
    if args.json:
        out = {"hardware": hw, "weights": note, "max_abs_diff_fp32": diff, "command": " ".join(sys.argv),
               "rows": report.rows}  # fmt: skip
        write_json(args.json, out)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
