# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Shared pieces of the bag reader and writer: storage names, problem kinds, QoS, small records.

Used by :mod:`stir_ros.bag.reader` and :mod:`stir_ros.bag.writer`.
"""

from __future__ import annotations

from dataclasses import dataclass

from rosbags.interfaces import (
    MessageDefinition,
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)

__all__ = [
    "STORAGES",
    "DAMAGE_KINDS",
    "BagMessage",
    "BagProblem",
    "TopicInfo",
    "make_qos",
]

STORAGES = ("sqlite3", "mcap")
#: Problem kinds that are damage to the input file; stream events (gaps, duplicates, ...) are not.
DAMAGE_KINDS = frozenset({"missing_file", "no_metadata", "bad_file", "truncated", "bad_chunk", "bad_rows",
                          "bad_message"})

# rosbag2 writes "infinite" durations as the largest rmw time.
_INFINITE = QosTime(9223372036, 854775807)


def make_qos(reliable: bool = True, depth: int = 100, transient_local: bool = False) -> Qos:
    """A QoS profile in the form bags store as ``offered_qos_profiles``."""
    return Qos(
        QosHistory.KEEP_LAST,
        depth,
        QosReliability.RELIABLE if reliable else QosReliability.BEST_EFFORT,
        QosDurability.TRANSIENT_LOCAL if transient_local else QosDurability.VOLATILE,
        _INFINITE,
        _INFINITE,
        QosLiveliness.AUTOMATIC,
        _INFINITE,
        False,
    )


@dataclass(frozen=True)
class TopicInfo:
    """One topic of a bag."""

    name: str
    msgtype: str
    message_count: int
    type_hash: str
    offered_qos_profiles: tuple[Qos, ...]
    msgdef: MessageDefinition
    serialization_format: str = "cdr"


@dataclass(frozen=True)
class BagMessage:
    """One serialized message: topic, type, recording time (ns) and CDR bytes."""

    topic: str
    msgtype: str
    timestamp: int
    data: bytes | memoryview


@dataclass(frozen=True)
class BagProblem:
    """Something in a bag that could not be read; the rest of the bag is still read."""

    kind: str  # missing_file, no_metadata, bad_file, truncated, bad_chunk, bad_rows, bad_message
    where: str
    detail: str

    def __str__(self) -> str:
        return f"{self.where}: {self.detail}"
