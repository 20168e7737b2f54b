#!/usr/bin/env python3
# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Check that dropping a CUDA reconstruction engine gives its GPU memory back (issue 13, cleanup).

    python bench/gpu_release_check.py

The lifecycle reconstructor's ``cleanup`` drops its engine, collects garbage, clears cuBLAS's
workspaces and empties the CUDA cache (``stir_ros/ros/reconstructor_node.py``). This script does the same steps without ROS and
prints the CUDA memory allocated and reserved before loading, while loaded, after a
reconstruction and after the release. Exits 1 when memory is still held after the release.
"""

from __future__ import annotations

import gc
import sys

import numpy as np
import torch

from stir_ros.engine import EngineConfig, ReconstructionEngine


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def main() -> int:
    if not torch.cuda.is_available():
        print("gpu_release_check: no CUDA device; nothing measured")
        return 0
    print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    rows = [("before", torch.cuda.memory_allocated(), torch.cuda.memory_reserved())]
    for cycle in range(2):  # configure -> work -> cleanup twice: nothing accumulates
        engine = ReconstructionEngine(EngineConfig(method="stir", device="cuda", precision="bf16", max_batch=4))
        rows.append((f"cycle {cycle}: loaded", torch.cuda.memory_allocated(), torch.cuda.memory_reserved()))
        rng = np.random.default_rng(cycle)
        windows = (rng.random((4, 61, 250, 400)) < 0.3).astype(np.float32)
        engine.reconstruct(windows)
        torch.cuda.synchronize()
        rows.append((f"cycle {cycle}: after 4 windows", torch.cuda.memory_allocated(), torch.cuda.memory_reserved()))
        del engine
        gc.collect()
        clear_workspaces = getattr(torch._C, "_cuda_clearCublasWorkspaces", None)  # as the node's cleanup
        if clear_workspaces is not None:
            clear_workspaces()
        torch.cuda.empty_cache()
        rows.append((f"cycle {cycle}: released", torch.cuda.memory_allocated(), torch.cuda.memory_reserved()))
    for name, allocated, reserved in rows:
        print(f"{name:28s} allocated {_mib(allocated):>12s}  reserved {_mib(reserved):>12s}")
    leaked = rows[-1][1] - rows[0][1]
    print(f"held after release: {_mib(leaked)} allocated, {_mib(rows[-1][2])} reserved")
    return 0 if leaked == 0 and rows[-1][2] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
