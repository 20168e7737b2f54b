# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Give a released model's device memory back (the managed reconstructor's cleanup).

ROS-free; torch is used only when a CUDA engine was released (it is loaded then: the engine used
it). Belongs with the engine (a ``release`` of :class:`stir_ros.engine.ReconstructionEngine`);
kept here, beside its one caller, until the engine takes it.
"""

from __future__ import annotations

import gc

__all__ = ["release_device_memory"]


def release_device_memory(cuda: bool) -> None:
    """Collect the dropped model's tensors; after a CUDA engine, empty torch's CUDA cache too."""
    gc.collect()  # the model's tensors, before the CUDA cache is emptied
    if not cuda:
        return
    import torch  # loaded already: the engine used it

    # cuBLAS keeps a workspace per stream (32 MiB measured on an H200) in torch's allocator
    # until it is cleared; without this, 32 MiB stayed allocated after cleanup.
    clear_workspaces = getattr(torch._C, "_cuda_clearCublasWorkspaces", None)
    if clear_workspaces is not None:
        clear_workspaces()
    torch.cuda.empty_cache()
