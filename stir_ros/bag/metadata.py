# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""A bag's ``metadata.yaml``, read and checked in one place.

The file comes with the bag, from anywhere: it is loaded with the package's bounded YAML loader
(:func:`stir_ros.core.yaml_files.load_yaml`) and every field the reader uses is checked for its
type here, so that a malformed file is one :class:`BagError` naming the field, never a
``KeyError`` or ``TypeError`` from deep in the reader. The layout is rosbag2's (Jazzy writes
version 9): ``rosbag2_bagfile_information`` with ``version``, ``storage_identifier``,
``relative_file_paths``, ``compression_mode``/``compression_format``, ``custom_data`` and
``topics_with_message_count``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rosbags.interfaces import Qos
from rosbags.rosbag2.metadata import parse_qos

from stir_ros.core.errors import BagError, ConfigError
from stir_ros.core.yaml_files import load_yaml

__all__ = ["BagMetadata", "MetadataTopic", "read_metadata"]


@dataclass(frozen=True)
class MetadataTopic:
    """One entry of ``topics_with_message_count``."""

    name: str
    msgtype: str
    message_count: int
    type_hash: str
    qos: Sequence[Qos]
    serialization_format: str


@dataclass(frozen=True)
class BagMetadata:
    """The fields of ``metadata.yaml`` that the bag reader uses, checked."""

    version: int
    storage_id: str
    file_names: list[str]
    compression_mode: str
    compression_format: str
    custom_data: dict[str, str] = field(default_factory=dict)
    topics: list[MetadataTopic] = field(default_factory=list)


class _Malformed(Exception):
    pass


def _mapping(value: Any, what: str) -> Mapping[Any, Any]:
    if not isinstance(value, Mapping):
        raise _Malformed(f"{what} must be a mapping, got {type(value).__name__}")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Malformed(f"{what} must be a list, got {type(value).__name__}")
    return value


def _text(value: Any, what: str, default: str = "") -> str:
    if value is None:
        return default
    if isinstance(value, Mapping | list):
        raise _Malformed(f"{what} must be a string, got {type(value).__name__}")
    return str(value)


def _count(value: Any, what: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _Malformed(f"{what} must be an integer >= 0, got {value!r}")
    return value


def _file_name(value: Any, what: str) -> str:
    name = Path(_text(value, what)).name
    if name in ("", ".", ".."):
        raise _Malformed(f"{what} must name a file of the bag, got {value!r}")
    return name


def _qos(value: Any) -> list[Qos]:
    try:
        return list(parse_qos(value or []))
    except Exception:  # noqa: BLE001 - rosbags' parser fails in many ways on bad input; QoS is optional
        return []


def _topic(item: Any, k: int) -> MetadataTopic:
    where = f"topics_with_message_count[{k}]"
    entry = _mapping(item, where)
    tm = _mapping(entry.get("topic_metadata"), f"{where}.topic_metadata")
    name = _text(tm.get("name"), f"{where}.topic_metadata.name")
    msgtype = _text(tm.get("type"), f"{where}.topic_metadata.type")
    if not name or not msgtype:
        raise _Malformed(f"{where}.topic_metadata needs a name and a type")
    return MetadataTopic(
        name, msgtype, _count(entry.get("message_count"), f"{where}.message_count"),
        _text(tm.get("type_description_hash"), f"{where}.topic_metadata.type_description_hash"),
        _qos(tm.get("offered_qos_profiles")),
        _text(tm.get("serialization_format"), f"{where}.topic_metadata.serialization_format", "cdr"),
    )  # fmt: skip


def read_metadata(path: str | os.PathLike[str]) -> BagMetadata:
    """Read and check a bag's ``metadata.yaml``.

    Raises:
        BagError: The file cannot be read, is not YAML within the loader's bounds, or a field has
            the wrong type (the message names the field).
    """
    try:
        doc = _mapping(load_yaml(path, "metadata"), "the document")
        info = _mapping(doc.get("rosbag2_bagfile_information"), "rosbag2_bagfile_information")
        files = _list(info.get("relative_file_paths"), "relative_file_paths")
        custom = info.get("custom_data")
        return BagMetadata(
            version=_count(info.get("version"), "version"),
            storage_id=_text(info.get("storage_identifier"), "storage_identifier"),
            file_names=[_file_name(p, f"relative_file_paths[{k}]") for k, p in enumerate(files)],
            compression_mode=_text(info.get("compression_mode"), "compression_mode").lower(),
            compression_format=_text(info.get("compression_format"), "compression_format"),
            custom_data={str(k): _text(v, f"custom_data.{k}") for k, v in
                         (_mapping(custom, "custom_data") if custom is not None else {}).items()},
            topics=[_topic(item, k) for k, item in enumerate(_list(info.get("topics_with_message_count"),
                                                                   "topics_with_message_count"))],
        )  # fmt: skip
    except ConfigError as err:
        raise BagError(str(err)) from err
    except _Malformed as err:
        raise BagError(f"malformed metadata.yaml: {err}") from None
