# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The Fast DDS profile the stir_ros processes load unless told otherwise.

Fast DDS gives every participant a 512 KB shared-memory segment by default, smaller than one
SpikePacket (100 frames of 250x400 are 1.25 MB). A publisher then cannot keep a packet in flight
in shared memory, readers depend on reliable repairs, and at 40 kHz packets leave the writer's
history before they are repaired. ``config/fastdds_spike_stream.xml`` keeps the usual transports
(shared memory + UDPv4) with a 16 MB segment; measured in ``bench/bench_transport.py`` and
BENCHMARKS.md ("Transport"). The segment is sized from the sensor modes: the packet size measured
best is about 2.5 MB in every mode (:func:`stir_ros.runtime.throughput.recommended_frames_per_packet`),
so 16 MB holds 6-12 packets in flight; :func:`active_shm_segment_size` tells the driver which
segment it has, and it says at start when its packets do not fit it twice (BENCHMARKS.md,
"Issue 14").

:func:`apply_fastdds_profile` runs in ``main()`` of the processes that publish large messages
(driver, reconstructor, ``stir-ros bag play``) before ``rclpy.init``. It only sets environment
variables, and never overrides a profile the user chose. Pure Python (no rclpy), so it lives in
the core: the ROS-free ``stir-ros bag play`` command line applies it before it starts ROS.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path

from stir_ros.core.config_files import find_config
from stir_ros.core.errors import ConfigError
from stir_ros.runtime.fastdds_shm import remove_stale_segments

__all__ = [
    "PROFILE_FILE", "SWITCH_VARIABLE", "PROFILE_VARIABLES", "FASTDDS_DEFAULT_SEGMENT_BYTES", "ProfileChoice",
    "active_shm_segment_size", "apply_fastdds_profile", "shm_segment_size",
]  # fmt: skip

PROFILE_FILE = "fastdds_spike_stream.xml"
#: ``off`` (or 0/false/no/none) leaves Fast DDS alone; a path uses that file instead of ours.
SWITCH_VARIABLE = "STIR_ROS_FASTDDS_PROFILE"
#: Fast DDS 2.x (Jazzy) reads the first, Fast DDS 3.x the second.
PROFILE_VARIABLES = ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE")
_OFF = {"off", "0", "false", "no", "none"}
#: Fast DDS's own shared-memory segment per participant (without a profile).
FASTDDS_DEFAULT_SEGMENT_BYTES = 512 * 1024


@dataclass(frozen=True)
class ProfileChoice:
    """What :func:`apply_fastdds_profile` did."""

    path: str | None  #: the profile file this call put into the environment, None if it left it alone
    message: str  #: one line for the node's log


def apply_fastdds_profile(environ: MutableMapping[str, str] | None = None) -> ProfileChoice:
    """Point Fast DDS at the spike-stream profile in ``environ`` (default ``os.environ``).

    Left alone: ``STIR_ROS_FASTDDS_PROFILE=off``; an RMW other than Fast DDS; a profile file the
    user already named in ``FASTRTPS_DEFAULT_PROFILES_FILE`` / ``FASTDDS_DEFAULT_PROFILES_FILE``.

    For this process's own environment (``environ`` None) with Fast DDS as the RMW, it also
    removes the shared-memory segments that killed processes left behind
    (:func:`stir_ros.runtime.fastdds_shm.remove_stale_segments`) and says so in the message.

    Raises:
        ConfigError: ``STIR_ROS_FASTDDS_PROFILE`` names a file that does not exist.
    """
    choice = _choose_profile(os.environ if environ is None else environ)
    rmw = os.environ.get("RMW_IMPLEMENTATION", "")
    if environ is None and (not rmw or rmw.startswith("rmw_fastrtps")):
        stale = remove_stale_segments()
        if stale.removed:
            return ProfileChoice(choice.path, f"{choice.message}; {stale.message}")
    return choice


def _choose_profile(env: MutableMapping[str, str]) -> ProfileChoice:
    switch = env.get(SWITCH_VARIABLE, "").strip()
    if switch.lower() in _OFF:
        return ProfileChoice(None, f"{SWITCH_VARIABLE}={switch}: Fast DDS default transports")
    rmw = env.get("RMW_IMPLEMENTATION", "")
    if rmw and not rmw.startswith("rmw_fastrtps"):
        return ProfileChoice(None, f"RMW_IMPLEMENTATION={rmw}: no Fast DDS profile applied")
    for var in PROFILE_VARIABLES:
        if env.get(var):
            return ProfileChoice(None, f"Fast DDS profile from {var}={env[var]} (yours; stir_ros's not applied)")
    if switch:
        path = Path(switch).expanduser()
        if not path.is_file():
            raise ConfigError(f"{SWITCH_VARIABLE}={switch}: no such Fast DDS profile file")
    else:
        try:
            path = find_config(PROFILE_FILE)
        except ConfigError as err:
            return ProfileChoice(None, f"Fast DDS default transports: {err}")
    for var in PROFILE_VARIABLES:
        env[var] = str(path)
    size = shm_segment_size(path)
    detail = f" ({size / 2**20:g} MB shared-memory segment for large packets)" if size else ""
    return ProfileChoice(str(path), f"Fast DDS profile {path}{detail}")


def active_shm_segment_size(environ: Mapping[str, str] | None = None) -> int | None:
    """The shared-memory segment (bytes) this process's Fast DDS participants get, if known.

    The segment of the profile named in the environment (after :func:`apply_fastdds_profile`),
    Fast DDS's default of :data:`FASTDDS_DEFAULT_SEGMENT_BYTES` when no profile is named, and None
    for another RMW or a profile that does not say.
    """
    env = os.environ if environ is None else environ
    rmw = env.get("RMW_IMPLEMENTATION", "")
    if rmw and not rmw.startswith("rmw_fastrtps"):
        return None
    for var in PROFILE_VARIABLES:
        if env.get(var):
            return shm_segment_size(env[var])
    return FASTDDS_DEFAULT_SEGMENT_BYTES


def shm_segment_size(path: str | os.PathLike[str]) -> int | None:
    """The ``segment_size`` (bytes) of the first SHM transport in a Fast DDS profile, if it sets one."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    for desc in root.iter():
        if desc.tag.rsplit("}", 1)[-1] != "transport_descriptor":
            continue
        fields = {child.tag.rsplit("}", 1)[-1]: (child.text or "").strip() for child in desc}
        if fields.get("type") == "SHM" and fields.get("segment_size", "").isdigit():
            return int(fields["segment_size"])
    return None
