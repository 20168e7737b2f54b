# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""STIR reconstruction network, model registry and checkpoints (ROS-free).

See ``README.md`` in this folder for the architecture and the mapping from the authors' code.
"""

from __future__ import annotations

from stir_ros.models.checkpoint import CheckpointMetadata, load_checkpoint, read_checkpoint, save_checkpoint
from stir_ros.models.inference import InferenceModel, prepare_for_inference
from stir_ros.models.streaming import StreamingSTIR
from stir_ros.models.official import load_official
from stir_ros.models.registry import build_model, count_parameters, list_models, register_model
from stir_ros.models.stir import STIR

__all__ = [
    "STIR",
    "build_model",
    "register_model",
    "list_models",
    "count_parameters",
    "load_official",
    "save_checkpoint",
    "load_checkpoint",
    "read_checkpoint",
    "CheckpointMetadata",
    "prepare_for_inference",
    "InferenceModel",
    "StreamingSTIR",
]
