# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""stir_ros checkpoint files: weights plus what is needed to trust and rebuild them.

A checkpoint is one ``torch.save`` file holding a plain dict::

    {
        "format": "stir_ros.checkpoint",
        "format_version": 1,
        "model_config": {"type": "stir", "window_length": 61, ...},   # registry config
        "state_dict": {name: tensor, ...},                              # CPU tensors
        "metadata": {"window_length", "alpha", "training_data", "steps",
                     "code_version", "created", "notes"},
        "sha256": "<hex>",          # over the state dict, see state_dict_sha256
        "extra": {...},             # optional: optimiser state, step, RNG states, ...
    }

Everything in it loads with ``torch.load(weights_only=True)``: tensors, numbers, strings,
lists, tuples and dicts only, so opening a checkpoint never runs code. Resumable training keeps
its optimiser/scheduler state, step and RNG states (``torch.get_rng_state()``,
``random.getstate()``; convert numpy RNG state to tensors or lists) in ``extra`` in the same
file; ``read_checkpoint`` returns them. Inference deployments can re-save without ``extra``.

``load_checkpoint`` also accepts a file holding the authors' STIR state dict (detected by
its key names) and converts it with ``load_official``. The imports go one way: this module
uses :mod:`stir_ros.models.official`, and both read files through :mod:`stir_ros.models.torch_file`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import torch
from torch import Tensor, nn

import stir_ros
from stir_ros.core.defaults import ALPHA
from stir_ros.core.errors import CheckpointError, ConfigError
from stir_ros.models.official import load_official, looks_official, unwrap_state_dict
from stir_ros.models.registry import build_model
from stir_ros.models.torch_file import (
    MAX_CHECKPOINT_BYTES,
    check_weights_archive,
    read_torch_file,
    state_dict_problems,
)

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "CheckpointMetadata",
    "save_checkpoint",
    "load_checkpoint",
    "read_checkpoint",
    "read_torch_file",
    "check_weights_archive",
    "check_weights_file",
    "MAX_CHECKPOINT_BYTES",
    "state_dict_sha256",
]

FORMAT = "stir_ros.checkpoint"
FORMAT_VERSION = 1
_REQUIRED_KEYS = ("format", "format_version", "model_config", "state_dict", "metadata", "sha256")


@dataclass(frozen=True)
class CheckpointMetadata:
    """Facts about a checkpoint's weights.

    Attributes:
        window_length: Frames per input window the model was trained for.
        alpha: Sensor rate the training data used; reconstructions are divided by it.
        training_data: Free-text description of the training data.
        steps: Optimiser steps trained.
        code_version: ``stir_ros.__version__`` that wrote the file (set on save).
        created: ISO 8601 UTC time of writing (set on save when empty).
        notes: Free-form notes.
    """

    window_length: int
    alpha: float = ALPHA
    training_data: str = ""
    steps: int = 0
    code_version: str = ""
    created: str = ""
    notes: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckpointMetadata:
        """Build from a mapping; unknown keys raise ``ValueError``."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown metadata keys {unknown}; known: {sorted(names)}")
        return cls(**dict(data))


def state_dict_sha256(state_dict: Mapping[str, Tensor]) -> str:
    """SHA-256 over the tensors in sorted key order: name, dtype, shape, then raw bytes.

    Deterministic for equal tensors regardless of device, memory layout or insertion order.
    """
    digest = hashlib.sha256()
    for key in sorted(state_dict):
        t = state_dict[key].detach().to("cpu").contiguous()
        header = f"{key}\0{t.dtype}\0{tuple(t.shape)}\0{t.numel() * t.element_size()}\0"
        digest.update(header.encode())
        if t.numel():
            digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _check_plain(obj: Any, where: str) -> None:
    """Refuse values that ``weights_only`` loading could not read back."""
    if obj is None or isinstance(obj, (bool, int, float, str, bytes, Tensor, torch.dtype, torch.Size)):
        return
    if isinstance(obj, (list, tuple)):
        for i, item in enumerate(obj):
            _check_plain(item, f"{where}[{i}]")
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, (str, int)):
                raise ConfigError(f"{where}: key {k!r} is a {type(k).__name__}; use str or int keys")
            _check_plain(v, f"{where}[{k!r}]")
        return
    raise ConfigError(
        f"{where} is a {type(obj).__name__}, which weights_only loading refuses; "
        "store tensors, numbers, strings, lists or dicts"
    )


def save_checkpoint(
    path: str | os.PathLike[str],
    model: nn.Module,
    metadata: CheckpointMetadata | Mapping[str, Any] | None = None,
    model_config: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """Write ``model`` and its metadata to ``path`` (atomically: temp file, then rename).

    Args:
        path: Destination file.
        model: The model; its state dict is copied to the CPU.
        metadata: ``CheckpointMetadata`` or a mapping of its fields. ``window_length`` defaults
            to the model's; ``code_version`` and (when empty) ``created`` are filled in.
        model_config: Registry config; defaults to ``model.model_config``.
        extra: Training state to keep with the weights (must be weights_only-loadable).

    Returns:
        The state dict's SHA-256.

    Raises:
        ConfigError: No model config, metadata that disagrees with the model, or ``extra``
            holding objects that could not be loaded safely.
    """
    if model_config is None:
        model_config = getattr(model, "model_config", None)
        if model_config is None:
            raise ConfigError("model_config is required for models without a model_config attribute")
    model_config = dict(model_config)
    model_window = getattr(model, "window_length", model_config.get("window_length"))
    if metadata is None:
        if model_window is None:
            raise ConfigError("metadata with window_length is required for this model")
        meta = CheckpointMetadata(window_length=int(model_window))
    elif isinstance(metadata, CheckpointMetadata):
        meta = metadata
    else:
        data = dict(metadata)
        if "window_length" not in data and model_window is not None:
            data["window_length"] = int(model_window)
        try:
            meta = CheckpointMetadata.from_dict(data)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"invalid checkpoint metadata: {err}") from err
    if model_window is not None and meta.window_length != model_window:
        raise ConfigError(f"metadata window_length {meta.window_length} but the model takes {model_window} frames")
    now = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    meta = replace(meta, code_version=stir_ros.__version__, created=meta.created or now)

    state = {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()}
    checksum = state_dict_sha256(state)
    payload: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_config": model_config,
        "state_dict": state,
        "metadata": asdict(meta),
        "sha256": checksum,
    }
    if extra is not None:
        payload["extra"] = dict(extra)
    _check_plain({k: v for k, v in payload.items() if k != "state_dict"}, "checkpoint")

    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return checksum


def check_weights_file(
    path: str | os.PathLike[str], expected_window_length: int | None = None
) -> CheckpointMetadata:
    """Validate a STIR weights file completely, on the CPU, before it is needed.

    The one check the node (at start and when ``weights`` changes at run time, whatever the
    method), ``stir-ros bag reconstruct``, ``stir-ros eval`` and ``stir-ros train --init-weights``
    use: :func:`check_weights_archive`, then a ``weights_only`` load, the format, checksum,
    architecture and (if given) window length.

    Returns:
        The checkpoint's metadata.

    Raises:
        CheckpointError: One line naming the file and what is wrong with it.
    """
    _, meta = load_checkpoint(path, device="cpu", expected_window_length=expected_window_length)
    return meta


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load and validate a stir_ros checkpoint dict (format, version, fields, checksum).

    Returns the whole dict, including ``extra`` when present. Tensors stay on the CPU.

    Raises:
        CheckpointError: Missing, corrupt, unsafe, not our format, or checksum mismatch.
    """
    path = os.fspath(path)
    obj = read_torch_file(path)
    _validate(obj, path)
    return obj


def _validate(obj: Any, path: str) -> None:
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        found = obj.get("format") if isinstance(obj, dict) else type(obj).__name__
        raise CheckpointError(
            f"{path} is not a stir_ros checkpoint: expected format {FORMAT!r}, found {found!r}"
        )
    version = obj.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has format_version {version!r}; this stir_ros ({stir_ros.__version__}) "
            f"reads versions up to {FORMAT_VERSION}"
        )
    missing = [k for k in _REQUIRED_KEYS if k not in obj]
    if missing:
        raise CheckpointError(f"{path} is missing checkpoint fields {missing}")
    state = obj["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: 'state_dict' is not a mapping of tensors")
    actual = state_dict_sha256(state)
    if actual != obj["sha256"]:
        raise CheckpointError(
            f"{path}: checksum mismatch, the weights were modified or damaged "
            f"(stored sha256 {obj['sha256']}, computed {actual})"
        )


def load_checkpoint(
    path: str | os.PathLike[str],
    device: str | torch.device = "cpu",
    expected_window_length: int | None = None,
) -> tuple[nn.Module, CheckpointMetadata]:
    """Rebuild the model from a checkpoint, strictly, in eval mode on ``device``.

    An authors' STIR state dict file is accepted too (converted by ``load_official``, with
    metadata alpha 0.6 and a note saying where it came from).

    Args:
        path: Checkpoint file.
        device: Where to put the model.
        expected_window_length: If given, the checkpoint must be for this window length.

    Raises:
        CheckpointError: Any problem with the file; the message names the file and what was
            expected.
    """
    path = os.fspath(path)
    obj = read_torch_file(path)
    if isinstance(obj, dict) and obj.get("format") != FORMAT:
        model, meta = _try_official(obj, path)
        if model is not None and meta is not None:
            _check_window(meta.window_length, expected_window_length, path)
            return model.to(device), meta
    _validate(obj, path)
    try:
        meta = CheckpointMetadata.from_dict(obj["metadata"])
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: invalid metadata: {err}") from err
    _check_window(meta.window_length, expected_window_length, path)
    config = obj["model_config"]
    try:
        model = build_model(config)
    except ConfigError as err:
        raise CheckpointError(f"{path}: cannot rebuild the architecture: {err}") from err
    _load_strict(model, obj["state_dict"], path, config)
    model_window = getattr(model, "window_length", meta.window_length)
    if model_window != meta.window_length:
        raise CheckpointError(
            f"{path}: metadata window_length {meta.window_length} disagrees with model_config {config!r}"
        )
    return model.to(device).eval(), meta


def _check_window(found: int, expected: int | None, path: str) -> None:
    if expected is not None and found != expected:
        raise CheckpointError(f"{path} is for window_length {found}, expected {expected}")


def _load_strict(model: nn.Module, state: Mapping[str, Tensor], path: str, config: Any) -> None:
    reference = model.state_dict()
    missing = sorted(set(reference) - set(state))
    unexpected = sorted(set(state) - set(reference))
    mismatched = [
        f"{k} {tuple(state[k].shape)} (model expects {tuple(reference[k].shape)})"
        for k in sorted(set(state) & set(reference))
        if state[k].shape != reference[k].shape
    ]
    problems = state_dict_problems(missing, unexpected, mismatched)
    if problems:
        raise CheckpointError(f"{path}: weights do not fit architecture {config!r}: {problems}")
    model.load_state_dict(state, strict=True)


def _try_official(obj: dict[str, Any], path: str) -> tuple[nn.Module | None, CheckpointMetadata | None]:
    try:
        state = unwrap_state_dict(obj)
    except CheckpointError:
        return None, None
    if not looks_official(state):
        return None, None
    try:
        model = load_official(state, window_length=None)
    except CheckpointError as err:
        raise CheckpointError(f"{err} in {path}") from None
    meta = CheckpointMetadata(
        window_length=model.window_length,
        alpha=ALPHA,
        training_data="unknown (authors' STIR checkpoint)",
        code_version=stir_ros.__version__,
        notes=f"converted from the authors' STIR state dict {path}",
    )
    return model, meta
