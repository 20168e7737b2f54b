# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Reading a weights file safely: checks before ``torch.load``, and ``weights_only`` loading.

Used by the stir_ros checkpoint format (:mod:`stir_ros.models.checkpoint`) and by the loader of
the authors' STIR state dicts (:mod:`stir_ros.models.official`), so that neither imports the
other to read a file. Every failure is a one-line ``CheckpointError`` naming the file.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from typing import Any

import torch

from stir_ros.core.errors import CheckpointError

__all__ = [
    "MAX_CHECKPOINT_BYTES",
    "MAX_CHECKPOINT_MEMBERS",
    "MAX_COMPRESSION_RATIO",
    "check_weights_archive",
    "read_torch_file",
    "state_dict_problems",
]

#: Largest weights file accepted, on disk and inflated (the shipped STIR checkpoint is 10 MB).
MAX_CHECKPOINT_BYTES = 512 * 1024 * 1024
#: Most entries in a checkpoint archive (one per tensor storage plus a few; STIR has 149).
MAX_CHECKPOINT_MEMBERS = 100_000
#: A compressed member may inflate at most this many times (torch.save stores members uncompressed).
MAX_COMPRESSION_RATIO = 20
#: Start of a torch file of the legacy (pre-1.6, non-zip) format: pickle protocol 2, then torch's
#: magic number 0x1950a86a20f9469cfc6c as a pickled long.
_LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"


def _describe_bytes(head: bytes) -> str:
    """What a file that is not a torch file looks like it is, from its first bytes."""
    text = head.lstrip().lower()
    if not head:
        return "an empty file"
    if text.startswith((b"<!doctype html", b"<html", b"<?xml", b"<")):
        return "an HTML/XML page (a download that saved an error page?)"
    if text.startswith(b"version https://git-lfs"):
        return "a Git LFS pointer, not the weights (run git lfs pull)"
    if head.startswith(b"\x80"):
        return "a bare pickle, not a torch file"
    if head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ")):
        return "a compressed archive (gzip/bz2/xz), not a torch file"
    try:
        head.decode("utf-8")
        return "a text file"
    except UnicodeDecodeError:
        return f"unknown binary data (starts with {head[:8].hex()})"


def check_weights_archive(path: str | os.PathLike[str]) -> None:
    """Check a weights file before ``torch.load`` reads it: exists, size, format, archive sizes.

    Reads only the file's first bytes and, for the zip format, the central directory: nothing is
    inflated or unpickled, so a file of any content is refused in milliseconds.

    Raises:
        CheckpointError: One line naming the file and what it is: missing, not a regular file,
            too large, not a torch file (with what it looks like), truncated or corrupt, or an
            archive that would inflate beyond the limits.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CheckpointError(f"checkpoint file not found: {path} does not exist")
    if not os.path.isfile(path):
        raise CheckpointError(f"{path} is not a regular file (a directory or device?); expected a torch checkpoint")
    size = os.path.getsize(path)
    if size > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(f"{path} is too large: {size} bytes, the limit is {MAX_CHECKPOINT_BYTES} bytes")
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError as err:
        raise CheckpointError(f"cannot read {path}: {err}") from err
    if head.startswith(_LEGACY_MAGIC):
        return  # legacy torch format: bounded by the file size, read by torch.load(weights_only)
    if not head.startswith(b"PK\x03\x04"):
        if head.startswith(b"PK"):
            raise CheckpointError(f"{path} is an empty or damaged zip archive, not a torch checkpoint")
        raise CheckpointError(f"{path} is not a torch file: it is {_describe_bytes(head)}")
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
        raise CheckpointError(f"{path} is truncated or corrupt (its zip directory cannot be read: {err})") from err
    if len(members) > MAX_CHECKPOINT_MEMBERS:
        raise CheckpointError(f"{path} has {len(members)} archive members, the limit is {MAX_CHECKPOINT_MEMBERS}")
    if not any(m.filename.endswith("data.pkl") for m in members):
        raise CheckpointError(f"{path} is a zip archive but not a torch file (no data.pkl in it)")
    total = sum(m.file_size for m in members)
    if total > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(
            f"{path} is too large: it would inflate to {total} bytes, the limit is {MAX_CHECKPOINT_BYTES} bytes"
        )
    for m in members:
        if m.compress_type != zipfile.ZIP_STORED and m.file_size > MAX_COMPRESSION_RATIO * max(m.compress_size, 1):
            raise CheckpointError(
                f"{path} is too large: member {m.filename} inflates {m.compress_size} bytes to {m.file_size} "
                f"(more than {MAX_COMPRESSION_RATIO}x; torch.save stores members uncompressed)"
            )


def read_torch_file(path: str | os.PathLike[str]) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)`` with errors as ``CheckpointError``.

    The file is checked first (:func:`check_weights_archive`); whatever torch raises on a file
    that passes becomes a ``CheckpointError`` too.
    """
    path = os.fspath(path)
    check_weights_archive(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        text = str(err)
        after = text.split("WeightsUnpickler error:", 1)[-1].strip().splitlines()
        detail = after[0].strip() if after else _first_line(err)
        # Only a pickle that names a Python global (a class or function to call) would run code;
        # an unknown opcode or damaged data is a corrupt file, not a dangerous one.
        if "global" in detail.lower():
            raise CheckpointError(
                f"refusing to load {path}: it holds Python objects that would run code when "
                f"unpickled, and only tensors and plain containers are accepted (weights_only=True). "
                f"If you trust the file, re-save its state dict alone. Detail: {detail}"
            ) from err
        raise CheckpointError(f"{path} is corrupt or not a torch file (its pickle cannot be read: {detail})") from err
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError, AttributeError) as err:
        raise CheckpointError(f"{path} is truncated, corrupt or not a torch file: {_first_line(err)}") from err
    except MemoryError as err:
        raise CheckpointError(f"{path} is too large to load into memory") from err
    except Exception as err:  # noqa: BLE001 - e.g. IndexError from a damaged pickle: never a traceback
        raise CheckpointError(
            f"{path} is truncated, corrupt or not a torch file: {type(err).__name__}: {_first_line(err)}"
        ) from err


def state_dict_problems(
    missing: list[str],
    unexpected: list[str],
    mismatched: list[str],
    labels: tuple[str, str, str] = ("missing keys", "unexpected keys", "shape mismatch"),
) -> str:
    """Say how a state dict fails to fit a model, in one line; empty when it fits.

    Args:
        missing: keys the model has and the state dict lacks.
        unexpected: keys the state dict has and the model lacks.
        mismatched: one description per key whose tensor has the wrong shape.
        labels: the words put before each of the three lists.
    """
    found = zip(labels, (missing, unexpected, mismatched))
    return "; ".join(f"{label} {keys}" for label, keys in found if keys)


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__
