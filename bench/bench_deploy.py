# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""CPU deployment of STIR: ONNX export exactness, OpenVINO / ONNX Runtime against the authors' eager model.

Usage: python bench/bench_deploy.py [--threads 1 2] [--repeat 3] [--skip-accuracy] [--json OUT]

Rows (one process, the reference measured in the same run, timed alternately repeat after
repeat so that a busy machine slows all alike):

- export: max |ONNX - PyTorch fp32| of the raw output, fixed-size 250x400 and dynamic files, on a
  random and a simulated window (OpenVINO f32 and, if installed, ONNX Runtime run the file);
- latency, 1x61x250x400, per thread count: the authors' eager fp32 (spikezoo, imported, never
  copied) against ours torch bf16, OpenVINO f32 and bf16 (and bf16 with the warps' sampling grids
  and the output head in bf16 too: what keeping them in f32 costs), ONNX Runtime f32 (if installed);
- accuracy on the two Spike-Zoo validation clips (``data/base/train``): PSNR against the ground
  truth of each backend/precision and the difference to torch fp32.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import spikezoo_dir  # noqa: E402  (bench/ is on sys.path)
from bench_stir import Authors, Report, build_models, hardware, interleaved, random_spikes  # noqa: E402

from stir_ros.models.export import check_windows, export_onnx, verify_onnx  # noqa: E402
from stir_ros.models.runtime import OpenVinoSTIR  # noqa: E402
from stir_ros.core.text_output import write_json  # noqa: E402


def ort_session(data: bytes, threads: int) -> Any | None:
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    return ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-accuracy", action="store_true")
    ap.add_argument("--skip-export", action="store_true")
    ap.add_argument("--json")
    args = ap.parse_args()
    device = torch.device("cpu")
    torch.set_num_threads(args.threads[0])
    authors, ours, note = build_models(None, 61)
    print(hardware(device))
    print(note)
    import openvino

    print(f"openvino {openvino.__version__}", end="")
    try:
        import onnxruntime

        print(f", onnxruntime {onnxruntime.__version__}")
    except ImportError:
        print(", onnxruntime not installed")
    report = Report(hardware(device), note, gpu=False)
    started = time.perf_counter()

    if not args.skip_export:
        windows = check_windows(61, 250, 400, seed=5)
        fixed = export_onnx(ours, None, height=250, width=400)
        dynamic = export_onnx(ours, None, height=256, width=400, dynamic=True)
        for name, data, wins in (("fixed 250x400", fixed, windows),
                                 ("dynamic, 256x400", dynamic, check_windows(61, 256, 400, seed=6))):  # fmt: skip
            for runtime in ("openvino", "onnxruntime"):
                try:
                    diff = verify_onnx(ours, data, wins, runtime=runtime)
                except Exception as err:  # noqa: BLE001 - a runtime that is absent or refuses the graph
                    report.text(f"export {name}, {runtime}", f"not run: {type(err).__name__}: {str(err)[:120]}")
                    continue
                report.text(f"export {name}, {runtime} f32", f"max |ONNX - PyTorch fp32| = {diff:.2e} "
                            f"(random + simulated window; target <= 1e-4)", max_abs_diff=diff)  # fmt: skip

    x = random_spikes(1, 61, 250, 400, device)
    data = export_onnx(ours, None, height=250, width=400)
    for threads in args.threads:
        torch.set_num_threads(threads)
        from stir_ros.models.inference import prepare_for_inference

        torch_bf16 = prepare_for_inference(ours, device=device, precision="bf16")
        ov32 = OpenVinoSTIR(ours, "fp32", threads=threads)
        ov16 = OpenVinoSTIR(ours, "bf16", threads=threads)
        ov16_grid = OpenVinoSTIR(ours, "bf16", threads=threads, keep_sensitive_f32=False)
        fns = {
            "authors fp32": lambda: Authors(authors, device)(x),
            "ours torch bf16": lambda m=torch_bf16: m(x),
            "ours openvino f32": lambda m=ov32: m(x),
            "ours openvino bf16": lambda m=ov16: m(x),
            "ours openvino bf16, all in bf16": lambda m=ov16_grid: m(x),
        }
        session = ort_session(data, threads)
        if session is not None:
            xf = x.float().numpy()
            fns["onnxruntime f32"] = lambda s=session, xf=xf: s.run(None, {"spikes": xf})
        times = interleaved(fns, device, args.repeat, 1, per_call=True)
        for name in list(fns)[1:]:
            report.speed(f"latency p50, 1x61x250x400, {threads} thread(s), {name}", "authors fp32",
                         times["authors fp32"], name, times[name], 1, latency=True)  # fmt: skip
        del torch_bf16, ov32, ov16, ov16_grid, session

    if not args.skip_accuracy:
        from stir_ros.evaluation import evaluate

        root = spikezoo_dir()
        if root is None:
            report.text("accuracy", "skipped: spikezoo not installed")
        else:
            torch.set_num_threads(args.threads[0])
            clips = root / "data" / "base" / "train"
            ref = evaluate(clips, ["stir"], device="cpu", precision="fp32", backend="torch")["methods"]["stir"]
            for backend, precision in (("openvino", "fp32"), ("openvino", "bf16"), ("torch", "bf16")):
                got = evaluate(clips, ["stir"], device="cpu", precision=precision, backend=backend)["methods"]["stir"]
                report.value(f"PSNR vs ground truth, 2 clips, {backend} {precision}", "torch fp32", ref["psnr"],
                             f"{backend} {precision}", got["psnr"], "dB")  # fmt: skip
    print(f"\ntotal {time.perf_counter() - started:.0f} s; ratio = reference / ours time (x faster), "
          "median over interleaved repeats (best/best in brackets)")  # fmt: skip
    if args.json:
        write_json(args.json, {"hardware": report.hardware, "command": " ".join(sys.argv), "rows": report.rows})


if __name__ == "__main__":
    main()
