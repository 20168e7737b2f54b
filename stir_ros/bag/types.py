# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Message types for the bag tools: a rosbags type store that knows SpikePacket.

The bag tools read and write rosbag2 files without a ROS runtime, through the pure-Python
``rosbags`` library. Its built-in Jazzy type store has the standard messages; SpikePacket is
registered from the text of ``SpikePacket.msg``, looked up in this order:

1. ``msg/SpikePacket.msg`` of a source checkout (next to the ``stir_ros`` package directory),
2. ``share/stir_ros/msg/SpikePacket.msg`` under every ``AMENT_PREFIX_PATH`` entry (colcon
   install space, ROS install),
3. ``stir_ros/msg_defs/SpikePacket.msg``, the copy that ``pip install .`` ships.

Bags must carry what ROS 2 Jazzy's rosbag2 writes for every topic: the type name, the type
description hash (RIHS01, REP 2011) and the message definition text. rosbags computes the hash
from the type's fields exactly as rosidl does (``test_bag_types.py`` checks it against the
``.json`` type descriptions that rosidl installed); the definition text is assembled as rosbag2's
``LocalMessageDefinitionSource`` does: the type's own ``.msg`` file, then each dependency once,
depth first in sorted order, behind a ``====...`` / ``MSG: pkg/Type`` delimiter.
"""

from __future__ import annotations

import os
import re
from functools import cache
from importlib import resources
from pathlib import Path

from rosbags.typesys import Stores, get_types_from_msg
from rosbags.typesys import get_typestore as _rosbags_typestore
from rosbags.typesys.base import Nodetype
from rosbags.typesys.store import Typestore

from stir_ros.core.errors import BagError

__all__ = [
    "SPIKE_PACKET",
    "IMAGE",
    "CAMERA_INFO",
    "CLOCK",
    "find_msg_file",
    "spike_packet_msg_text",
    "get_typestore",
    "ensure_type",
    "type_hash",
    "message_definition",
]

SPIKE_PACKET = "stir_ros/msg/SpikePacket"
IMAGE = "sensor_msgs/msg/Image"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
CLOCK = "rosgraph_msgs/msg/Clock"

_DELIMITER = "=" * 80 + "\n"


def _split_type(msgtype: str) -> tuple[str, str]:
    """``"pkg/msg/Name"`` or ``"pkg/Name"`` -> ``("pkg", "Name")``."""
    match = re.fullmatch(r"([A-Za-z0-9_]+)/(?:msg/)?([A-Za-z0-9_]+)", msgtype)
    if not match:
        raise BagError(f"message type name {msgtype!r} is not of the form 'package/msg/Name'")
    return match[1], match[2]


def _candidate_msg_files(package: str, name: str) -> list[Path]:
    candidates: list[Path] = []
    if package == "stir_ros":
        # Source checkout: <root>/stir_ros/bag/types.py -> <root>/msg/Name.msg. The unresolved
        # path first (a colcon symlink install points back at the checkout only when resolved).
        here = Path(__file__)
        candidates += [here.parents[2] / "msg" / f"{name}.msg",
                       here.resolve().parents[2] / "msg" / f"{name}.msg"]
    for prefix in filter(None, os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)):
        candidates.append(Path(prefix) / "share" / package / "msg" / f"{name}.msg")
    if package == "stir_ros":
        try:
            shipped = resources.files("stir_ros") / "msg_defs" / f"{name}.msg"
            candidates.append(Path(str(shipped)))
        except (ModuleNotFoundError, TypeError):  # pragma: no cover - odd importers
            pass
    return candidates


def find_msg_file(msgtype: str) -> Path | None:
    """Path of the ``.msg`` file of ``msgtype`` (``pkg/msg/Name``), or ``None`` if not found."""
    package, name = _split_type(msgtype)
    return next((p for p in _candidate_msg_files(package, name) if p.is_file()), None)


def spike_packet_msg_text() -> str:
    """The text of ``SpikePacket.msg``.

    Raises:
        BagError: If no copy of the file is found in any of the places listed in the module doc.
    """
    path = find_msg_file(SPIKE_PACKET)
    if path is None:
        tried = ", ".join(str(p) for p in _candidate_msg_files("stir_ros", "SpikePacket"))
        raise BagError(f"cannot find SpikePacket.msg to register the message type; tried: {tried}")
    return path.read_text(encoding="utf-8")


@cache
def get_typestore() -> Typestore:
    """Rosbags type store of ROS 2 Jazzy with ``stir_ros/msg/SpikePacket`` registered (cached)."""
    store = _rosbags_typestore(Stores.ROS2_JAZZY)
    store.register(get_types_from_msg(spike_packet_msg_text(), SPIKE_PACKET))
    return store


def ensure_type(msgtype: str) -> bool:
    """Make ``msgtype`` known to the type store, from its installed ``.msg`` file if need be.

    Returns:
        Whether the type is known now (with all the types it uses).
    """
    store = get_typestore()
    if msgtype in store.fielddefs:
        return True
    path = find_msg_file(msgtype)
    if path is None:
        return False
    package, name = _split_type(msgtype)
    try:
        types = get_types_from_msg(path.read_text(encoding="utf-8"), f"{package}/msg/{name}")
    except Exception:  # noqa: BLE001 - a .msg rosbags cannot parse: treat the type as unknown
        return False
    for _field, desc in types[f"{package}/msg/{name}"][1]:
        kind, rest = desc
        if kind in (Nodetype.ARRAY, Nodetype.SEQUENCE):
            kind, rest = rest[0]
        if kind == Nodetype.NAME and not ensure_type(rest):
            return False
    store.register(types)
    return True


def _check_known(msgtype: str, store: Typestore) -> None:
    if not ensure_type(msgtype):
        raise BagError(
            f"message type {msgtype!r} is unknown to the bag tools: not a standard ROS 2 Jazzy "
            f"message, not {SPIKE_PACKET}, and no .msg file for it under AMENT_PREFIX_PATH"
        )


@cache
def type_hash(msgtype: str) -> str:
    """Type description hash ``RIHS01_<sha256>`` of ``msgtype``, as rosidl computes it."""
    store = get_typestore()
    _check_known(msgtype, store)
    return store.hash_rihs01(msgtype)


def _dependencies(msgtype: str, store: Typestore) -> list[str]:
    """Direct message-type dependencies of ``msgtype``, as normalised names, sorted as rosbag2 does."""
    deps: set[str] = set()
    for _name, desc in store.fielddefs[msgtype][1]:
        kind, rest = desc
        if kind in (Nodetype.ARRAY, Nodetype.SEQUENCE):  # rest is ((kind, sub), size)
            kind, rest = rest[0]
        if kind == Nodetype.NAME:
            deps.add(rest)
    # rosbag2 sorts the names as written in the .msg text, "pkg/Name".
    return sorted(deps, key=lambda t: "/".join(_split_type(t)))


@cache
def message_definition(msgtype: str) -> tuple[str, str]:
    """Message definition of ``msgtype`` as rosbag2 stores it: ``(encoding, text)``.

    The text is the type's ``.msg`` file followed by every dependency once (depth first, sorted),
    each behind the rosbag2 delimiter. Where a ``.msg`` file is not installed (a pip install
    without ROS), that type's definition is generated from the type store instead: equivalent
    fields, no comments.
    """
    store = get_typestore()
    _check_known(msgtype, store)
    seen: set[str] = set()

    def own_text(name: str) -> str:
        path = find_msg_file(name)
        if path is not None:
            return path.read_text(encoding="utf-8")
        return store.gendefhash(name, {}, ros_version=2)[0]

    def recurse(name: str) -> str:
        text = own_text(name)
        for dep in _dependencies(name, store):
            if dep not in seen:
                seen.add(dep)
                package, short = _split_type(dep)
                text += f"\n{_DELIMITER}MSG: {package}/{short}\n" + recurse(dep)
        return text

    return "ros2msg", recurse(msgtype)
