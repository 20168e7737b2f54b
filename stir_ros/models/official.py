# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Load the authors' STIR weights (class ``STIR`` in ``networks_STIR.py``) into ``stir_ros``.

The conversion is a table of key-prefix renames (``official_prefix_map``), applied to every
key of the authors' state dict; each renamed key must exist in our model with the same shape,
and every key of our model must be covered. Anything else raises ``CheckpointError`` naming
the keys. No tensor is reshaped or reordered: the two implementations store every parameter
in the same layout.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from torch import Tensor

from stir_ros.core.errors import CheckpointError
from stir_ros.models.stir import STIR
from stir_ros.models.torch_file import read_torch_file, state_dict_problems

__all__ = ["load_official", "convert_official_state_dict", "official_prefix_map", "looks_official", "unwrap_state_dict"]

# Keys under which training scripts commonly nest the weights.
_NESTING_KEYS = ("state_dict", "model_state_dict", "model", "net", "network", "params", "weights")
# Prefixes added by wrappers: DataParallel/DDP ("module."), spikezoo's model wrapper ("net.").
_WRAPPER_PREFIXES = ("module.", "net.", "model.", "_orig_mod.")
# The authors' first HSER conv takes one block of raw frames: its input width gives the window.
_PROBE_KEY = "resnet.conv1.weight"
_WINDOW_BY_BLOCK_LENGTH = {21: 61, 15: 41}


def _residual(src: str, dst: str) -> list[tuple[str, str]]:
    """The authors' ``Cascade_resnet_blocks`` with one block -> our ``ResidualBlock``."""
    return [
        (f"{src}.net.0.conv_block.0.net.0.", f"{dst}.conv1."),
        (f"{src}.net.0.conv_block.1.net.0.", f"{dst}.conv2."),
    ]


def _dim_reduce(src: str, dst: str) -> list[tuple[str, str]]:
    """The authors' ``DimReduceConv`` (two Sequential conv + PReLU) -> our ``fuse``."""
    return [
        (f"{src}.conv1.0.", f"{dst}.0.conv."),
        (f"{src}.conv1.1.", f"{dst}.0.act."),
        (f"{src}.conv2.0.", f"{dst}.1.conv."),
        (f"{src}.conv2.1.", f"{dst}.1.act."),
    ]


def official_prefix_map() -> list[tuple[str, str]]:
    """(authors' key prefix, our key prefix) pairs; together they cover every parameter and buffer."""
    rules: list[tuple[str, str]] = [
        # HSER implicit branch (authors: ``resnet``, a ResidualBlock with 1x1 projection conv3).
        ("resnet.conv1.", "embedding.implicit.conv1."),
        ("resnet.bn1.", "embedding.implicit.bn1."),
        ("resnet.conv2.", "embedding.implicit.conv2."),
        ("resnet.bn2.", "embedding.implicit.bn2."),
        ("resnet.conv3.", "embedding.implicit.proj."),
        # Encoder: conv0 is the 7x7 stem, conv{i} + resblocks{i} are stage i-1.
        ("encoder.conv0.net.0.", "encoder.stem.conv."),
        ("encoder.conv0.net.1.", "encoder.stem.act."),
    ]
    for i in range(1, 5):
        rules += [
            (f"encoder.conv{i}.net.0.", f"encoder.stages.{i - 1}.down.conv."),
            (f"encoder.conv{i}.net.1.", f"encoder.stages.{i - 1}.down.act."),
        ]
        rules += _residual(f"encoder.resblocks{i}", f"encoder.stages.{i - 1}.res")
    # Symmetric interactive attention (authors: ``transformer``, kv1 = left, kv2 = right).
    rules += [
        ("transformer.norm1.body.", "attention.norm_centre."),
        ("transformer.norm_kv1.body.", "attention.norm_left."),
        ("transformer.norm_kv2.body.", "attention.norm_right."),
        ("transformer.norm2.body.", "attention.norm_ffn."),
        ("transformer.attn.temperature1", "attention.attn.temperature_left"),
        ("transformer.attn.temperature2", "attention.attn.temperature_right"),
        ("transformer.attn.q.", "attention.attn.query."),
        ("transformer.attn.q_dwconv.", "attention.attn.query_dw."),
        ("transformer.attn.kv1.", "attention.attn.kv_left."),
        ("transformer.attn.kv1_dwconv.", "attention.attn.kv_left_dw."),
        ("transformer.attn.kv2.", "attention.attn.kv_right."),
        ("transformer.attn.kv2_dwconv.", "attention.attn.kv_right_dw."),
        ("transformer.ffn.project_in.", "attention.ffn.proj_in."),
        ("transformer.ffn.dwconv.", "attention.ffn.dwconv."),
        ("transformer.ffn.project_out.", "attention.ffn.proj_out."),
    ]
    # Decoder top level at 1/16 (authors: ``decorder_5nd``).
    rules += [
        ("decorder_5nd.convrelu.0.", "decoder.top.fuse.conv."),
        ("decorder_5nd.convrelu.1.", "decoder.top.fuse.act."),
        ("decorder_5nd.predict_img_flow.", "decoder.top.head."),
    ]
    rules += _residual("decorder_5nd.resblocks", "decoder.top.res")
    # Refine levels at 1/8, 1/4, 1/2 (authors: ``decorder_4nd``, ``_3rd``, ``_2nd``).
    for j, src in enumerate(("decorder_4nd", "decorder_3rd", "decorder_2nd")):
        dst = f"decoder.levels.{j}"
        rules += [
            (f"{src}.deconv_flow.", f"{dst}.up_flow."),
            (f"{src}.deconv_hidden.", f"{dst}.up_hidden."),
            (f"{src}.predict_img_flow.", f"{dst}.head."),
        ]
        rules += _dim_reduce(f"{src}.convrelu", f"{dst}.fuse")
        rules += _residual(f"{src}.resblocks", f"{dst}.res")
    # Full-resolution multi-motion-field level (authors: ``decorder_1st``).
    rules += [
        ("decorder_1st.predict_flow_group.", "decoder.full.group_flow_head."),
        ("decorder_1st.deconv_flow_group.", "decoder.full.up_group_flow."),
        ("decorder_1st.deconv_flow.", "decoder.full.up_flow."),
        ("decorder_1st.deconv_hidden.", "decoder.full.up_hidden."),
        ("decorder_1st.predict_img.", "decoder.full.head."),
    ]
    rules += _dim_reduce("decorder_1st.convrelu", "decoder.full.fuse")
    rules += _residual("decorder_1st.resblocks", "decoder.full.res")
    return rules


def _rename(key: str, rules: list[tuple[str, str]]) -> str | None:
    # Longest matching prefix wins, so "deconv_flow." never captures "deconv_flow_group.".
    best: tuple[str, str] | None = None
    for src, dst in rules:
        if key.startswith(src) and (src.endswith(".") or key == src):
            if best is None or len(src) > len(best[0]):
                best = (src, dst)
    return None if best is None else best[1] + key[len(best[0]) :]


def unwrap_state_dict(obj: Any) -> dict[str, Tensor]:
    """Find the state dict in a loaded object: nested under a common key, wrapper prefixes removed.

    Raises:
        CheckpointError: No mapping of tensors could be found.
    """
    for _ in range(3):
        if isinstance(obj, Mapping) and not _is_tensor_mapping(obj):
            nested = next((obj[k] for k in _NESTING_KEYS if k in obj and isinstance(obj[k], Mapping)), None)
            if nested is None:
                break
            obj = nested
    if not isinstance(obj, Mapping) or not _is_tensor_mapping(obj):
        found = sorted(obj)[:10] if isinstance(obj, Mapping) else type(obj).__name__
        raise CheckpointError(
            f"no state dict found: expected a mapping of tensors, possibly under one of "
            f"{list(_NESTING_KEYS)}; found {found}"
        )
    state = dict(obj)
    stripped = True
    while stripped:
        stripped = False
        for prefix in _WRAPPER_PREFIXES:
            if state and all(k.startswith(prefix) for k in state):
                state = {k[len(prefix) :]: v for k, v in state.items()}
                stripped = True
    return state


def _is_tensor_mapping(obj: Mapping[Any, Any]) -> bool:
    return len(obj) > 0 and all(isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items())


def looks_official(state: Mapping[str, Any]) -> bool:
    """Whether an (unwrapped) state dict has the authors' STIR key names."""
    return _PROBE_KEY in state and "decorder_1st.predict_img.weight" in state


def convert_official_state_dict(state: Mapping[str, Tensor], window_length: int | None = 61) -> dict[str, Tensor]:
    """Rename an authors' STIR state dict to ours, strictly.

    Args:
        state: The authors' state dict (already unwrapped).
        window_length: 61 or 41; ``None`` infers it from the weights.

    Raises:
        CheckpointError: Window length disagrees, keys are missing or unexpected, or shapes differ.
    """
    if _PROBE_KEY not in state:
        raise CheckpointError(f"not an authors' STIR state dict: key {_PROBE_KEY!r} is missing")
    block_length = state[_PROBE_KEY].shape[1]
    found_window = _WINDOW_BY_BLOCK_LENGTH.get(block_length)
    if found_window is None:
        raise CheckpointError(
            f"{_PROBE_KEY} takes {block_length} frames per block; expected 21 (61-frame window) or 15 (41)"
        )
    if window_length is not None and window_length != found_window:
        raise CheckpointError(
            f"checkpoint is for window_length {found_window} ({block_length}-frame blocks), "
            f"expected window_length {window_length}"
        )
    reference = STIR(window_length=found_window).state_dict()
    rules = official_prefix_map()
    converted: dict[str, Tensor] = {}
    unexpected, mismatched = [], []
    for key, value in state.items():
        ours = _rename(key, rules)
        if ours is None or ours not in reference:
            unexpected.append(key)
        elif tuple(value.shape) != tuple(reference[ours].shape):
            mismatched.append(f"{key} {tuple(value.shape)} -> {ours} expects {tuple(reference[ours].shape)}")
        else:
            converted[ours] = value
    missing = sorted(set(reference) - set(converted) - {_rename(k, rules) for k in state})
    labels = ("missing keys (ours):", "unexpected keys:", "shape mismatch:")
    problems = state_dict_problems(missing, sorted(unexpected), mismatched, labels)
    if problems:
        raise CheckpointError(f"authors' STIR state dict does not match: {problems}")
    return converted


def load_official(
    source: Mapping[str, Any] | str | os.PathLike[str], window_length: int | None = 61
) -> STIR:
    """Build our ``STIR`` in eval mode from the authors' weights.

    Args:
        source: A state dict (possibly nested under "state_dict"/"model"/"net"/... and/or with
            "module."/"net." prefixes) or the path of a file holding one. Files are read with
            ``torch.load(map_location="cpu", weights_only=True)``.
        window_length: 61 or 41; ``None`` infers it from the weights.

    Raises:
        CheckpointError: Unreadable file, unsafe pickle, or weights that do not match.
    """
    if isinstance(source, (str, os.PathLike)):
        obj = read_torch_file(source)
        where = f" in {os.fspath(source)}"
    else:
        obj, where = source, ""
    try:
        state = convert_official_state_dict(unwrap_state_dict(obj), window_length)
    except CheckpointError as err:
        raise CheckpointError(f"{err}{where}") from None
    model = STIR(window_length=state_window(state))
    model.load_state_dict(state, strict=True)
    return model.eval()


def state_window(state: Mapping[str, Tensor]) -> int:
    """Window length of one of our (converted) state dicts, from the HSER conv's input width."""
    block_length = state["embedding.implicit.conv1.weight"].shape[1]
    return _WINDOW_BY_BLOCK_LENGTH[block_length]
