# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The one place where ROS messages become numpy arrays and back.

SpikePacket <-> frames or payloads, float images -> ``sensor_msgs/Image`` (and
``CompressedImage``), ``CameraInfo`` from a
camera_calibration YAML file, ``builtin_interfaces/Time`` <-> integer nanoseconds, and
``diagnostic_msgs`` status entries. Payloads are viewed without copying where rclpy allows it
(``uint8[]`` fields are ``array.array('B')`` in rclpy).
"""

from __future__ import annotations

import array
import copy
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.clock import Clock, ClockType
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from stir_ros.core.errors import ConfigError
from stir_ros.core.imaging import from_image_bytes, to_image_array, uncalibrated_camera_info
from stir_ros.core.limits import MAX_FRAME_SIDE, bound_for
from stir_ros.core.paths import path_of_url
from stir_ros.core.packing import ENCODING_VIDAR_BITPACKED, decode_payload, encode_frames
from stir_ros.core.packet import PacketHeader, packet_header, packet_payload  # shared with the bag tools
from stir_ros.core.yaml_files import load_yaml
from stir_ros.msg import SpikePacket

__all__ = [
    "stamp_to_ns",
    "ns_to_stamp",
    "packet_header",
    "packet_payload",
    "packet_to_frames",
    "make_packet",
    "frames_to_packet",
    "image_to_msg",
    "compressed_image_msg",
    "image_msg_to_array",
    "camera_info_from_file",
    "url_to_path",
    "default_camera_info",
    "restamp_camera_info",
    "diagnostic_status",
    "STEADY",
    "parameter_descriptor",
]


# --------------------------------------------------------------------------- time


def stamp_to_ns(stamp: Time) -> int:
    """``builtin_interfaces/Time`` as integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def ns_to_stamp(ns: int) -> Time:
    """Integer nanoseconds (>= 0) as ``builtin_interfaces/Time``."""
    sec, nanosec = divmod(int(ns), 1_000_000_000)
    return Time(sec=sec, nanosec=nanosec)


# --------------------------------------------------------------------------- spike packets
#
# packet_header and packet_payload come from stir_ros.core.stream_processor: the bag tools read
# deserialised messages with them too.


def packet_to_frames(msg: SpikePacket) -> np.ndarray:
    """Decode a packet into uint8 frames ``[num_frames, H, W]`` (0/1, top row first).

    Raises:
        PacketError: If the header is invalid or disagrees with the payload (checked before
            anything is allocated).
    """
    return decode_payload(packet_payload(msg), int(msg.height), int(msg.width), int(msg.num_frames), str(msg.encoding))


def make_packet(payload: Any, header: PacketHeader, frame_id: str = "") -> SpikePacket:
    """Build a SpikePacket around an already encoded payload (one copy into the message)."""
    msg = SpikePacket()
    msg.header.stamp = ns_to_stamp(header.stamp_ns)
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(header.height), int(header.width)
    msg.seq = int(header.seq)
    msg.first_frame_index = int(header.first_frame_index)
    msg.frame_rate_hz = float(header.frame_rate_hz)
    msg.num_frames = int(header.num_frames)
    msg.encoding = header.encoding
    data = array.array("B")
    data.frombytes(np.ascontiguousarray(payload, dtype=np.uint8).data)
    msg.data = data
    return msg


def frames_to_packet(
    frames: np.ndarray,
    *,
    seq: int,
    first_frame_index: int,
    frame_rate_hz: float,
    stamp_ns: int,
    frame_id: str = "",
    encoding: str = ENCODING_VIDAR_BITPACKED,
) -> SpikePacket:
    """Encode frames ``[N, H, W]`` (nonzero = spike) into a SpikePacket."""
    frames = np.asarray(frames)
    payload = encode_frames(frames, encoding)
    n, h, w = frames.shape
    header = PacketHeader(
        seq=seq, first_frame_index=first_frame_index, num_frames=n, height=h, width=w, encoding=encoding,
        stamp_ns=stamp_ns, frame_rate_hz=frame_rate_hz,
    )  # fmt: skip
    return make_packet(payload, header, frame_id)


# --------------------------------------------------------------------------- images


def image_to_msg(img: np.ndarray, encoding: str, stamp_ns: int, frame_id: str) -> Image:
    """A float ``[H, W]`` image in [0, 1] as ``sensor_msgs/Image`` (mono8, mono16 or 32FC1)."""
    pixels = to_image_array(img, encoding)
    msg = Image()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = frame_id
    msg.height, msg.width = pixels.shape
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = pixels.shape[1] * pixels.itemsize
    data = array.array("B")
    data.frombytes(np.ascontiguousarray(pixels).view(np.uint8).reshape(-1).data)
    msg.data = data
    return msg


def compressed_image_msg(
    img: np.ndarray, encoding: str, fmt: str, quality: int, stamp_ns: int, frame_id: str
) -> CompressedImage:
    """``image/compressed`` in the compressed_image_transport format (``"<enc>; <fmt> compressed <enc>"``).

    png keeps mono8/mono16 exactly (32FC1 is sent as mono16); jpeg is 8-bit (mono8).
    """
    import cv2  # opencv: only when compressed output is on

    enc = encoding if fmt == "png" and encoding in ("mono8", "mono16") else ("mono16" if fmt == "png" else "mono8")
    pixels = np.ascontiguousarray(to_image_array(img, enc))
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if fmt == "jpeg" else [cv2.IMWRITE_PNG_COMPRESSION, 1]
    ok, buf = cv2.imencode(".jpg" if fmt == "jpeg" else ".png", pixels, params)
    if not ok:
        raise ConfigError(f"OpenCV could not encode a {pixels.shape} {enc} image as {fmt}")
    msg = CompressedImage()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = frame_id
    msg.format = f"{enc}; {fmt} compressed {enc}"
    msg.data = buf.tobytes()
    return msg


def image_msg_to_array(msg: Image) -> np.ndarray:
    """Inverse of :func:`image_to_msg`: float32 ``[H, W]`` in [0, 1]."""
    if msg.is_bigendian and msg.encoding != "mono8":
        raise ConfigError(f"big-endian {msg.encoding} images are not supported")
    return from_image_bytes(bytes(msg.data), int(msg.height), int(msg.width), int(msg.step), str(msg.encoding))


# --------------------------------------------------------------------------- camera info


def url_to_path(url: str, what: str = "camera_info_url") -> Path:
    """``file:///abs``, ``package://pkg/rel`` or a plain path -> a local path (``what``: the parameter, for messages)."""
    parsed = urlparse(url)
    if parsed.scheme != "package":
        if "://" in url and parsed.scheme != "file":
            raise ConfigError(f"{what} {url!r}: only file:// and package:// URLs are supported")
        return path_of_url(url, what)
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    try:
        share = get_package_share_directory(parsed.netloc)
    except PackageNotFoundError as err:
        raise ConfigError(f"{what} {url!r}: package {parsed.netloc!r} not found") from err
    return Path(share) / parsed.path.lstrip("/")


def _matrix(data: Mapping[str, Any], key: str, size: int | None, path: os.PathLike[str] | str) -> list[float]:
    entry = data.get(key)
    if entry is None:
        return []
    values = entry.get("data") if isinstance(entry, Mapping) else entry
    if not isinstance(values, list) or (size is not None and len(values) != size) or len(values) > 64:
        raise ConfigError(f"{path}: {key} must hold {size or 'a list of (at most 64)'} numbers, got {values!r}")
    try:
        numbers = [float(v) for v in values]
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{path}: {key} must hold numbers, got {values!r}") from err
    if not all(math.isfinite(v) for v in numbers):
        raise ConfigError(f"{path}: {key} must hold finite numbers, got {values!r}")
    return numbers


def camera_info_from_file(url: str, frame_id: str = "") -> CameraInfo:
    """Read a calibration in the camera_calibration YAML format (as camera_info_manager does).

    Keys: ``image_width``, ``image_height``, ``camera_name``, ``camera_matrix``,
    ``distortion_model``, ``distortion_coefficients``, ``rectification_matrix``,
    ``projection_matrix`` (matrices as ``{rows, cols, data}``).

    Raises:
        ConfigError: If the file is missing or malformed.
    """
    path = url_to_path(url)
    data = load_yaml(path, "camera calibration")
    if not isinstance(data, Mapping) or "image_width" not in data or "image_height" not in data:
        raise ConfigError(f"camera calibration '{path}' needs image_width and image_height")
    size = []
    for key in ("image_width", "image_height"):
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_FRAME_SIDE:
            raise ConfigError(f"camera calibration '{path}': {key} must be an integer in 1..{MAX_FRAME_SIDE}, got {value!r}")
        size.append(value)
    info = CameraInfo()
    info.header.frame_id = frame_id
    info.width, info.height = size
    info.distortion_model = str(data.get("distortion_model", "plumb_bob"))
    k = _matrix(data, "camera_matrix", 9, path)
    r = _matrix(data, "rectification_matrix", 9, path)
    p = _matrix(data, "projection_matrix", 12, path)
    info.d = _matrix(data, "distortion_coefficients", None, path)
    if k:
        info.k = k
    info.r = r or [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    if p:
        info.p = p
    elif k:  # monocular camera without a projection matrix: P = [K | 0]
        info.p = [k[0], k[1], k[2], 0.0, k[3], k[4], k[5], 0.0, k[6], k[7], k[8], 0.0]
    return info


def default_camera_info(height: int, width: int, frame_id: str = "", stamp_ns: int = 0) -> CameraInfo:
    """An uncalibrated CameraInfo: only the size, frame and stamp (K and P all zero)."""
    fields = uncalibrated_camera_info(height, width)  # the same fields as bag reconstruct's
    info = CameraInfo(**{k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in fields.items()})
    info.header.stamp = ns_to_stamp(stamp_ns)
    info.header.frame_id = frame_id
    return info


def restamp_camera_info(info: CameraInfo, stamp_ns: int, frame_id: str | None = None) -> CameraInfo:
    """A copy of ``info`` with a new stamp (and frame_id when given)."""
    out = copy.deepcopy(info)
    out.header.stamp = ns_to_stamp(stamp_ns)
    if frame_id is not None:
        out.header.frame_id = frame_id
    return out


# --------------------------------------------------------------------------- diagnostics

#: The clock of the diagnostics timers: steady, so that they go on when a simulated /clock stops.
STEADY = Clock(clock_type=ClockType.STEADY_TIME)

_LEVELS = {"ok": DiagnosticStatus.OK, "warn": DiagnosticStatus.WARN, "error": DiagnosticStatus.ERROR,
           "stale": DiagnosticStatus.STALE}  # fmt: skip


def diagnostic_status(
    name: str, hardware_id: str, level: str, message: str, values: Mapping[str, Any]
) -> DiagnosticStatus:
    """A DiagnosticStatus; ``level`` is ok|warn|error|stale, values are stringified."""
    status = DiagnosticStatus()
    status.level = _LEVELS[level]
    status.name, status.hardware_id, status.message = name, hardware_id, message
    status.values = [KeyValue(key=str(k), value=_fmt(v)) for k, v in values.items()]
    return status


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


# --------------------------------------------------------------------------- parameters


def parameter_descriptor(node: str, spec: Any) -> ParameterDescriptor:
    """The descriptor of a parameter, with its range from :data:`stir_ros.core.limits.PARAMETER_BOUNDS`.

    One table drives both what ``ros2 param describe`` / rqt_reconfigure show and what the
    settings classes accept.
    """
    desc = ParameterDescriptor(description=spec.description, read_only=not spec.dynamic)
    bound = bound_for(node, spec.name)
    if bound is not None:
        desc.additional_constraints = f"range {bound.describe()} ({bound.why})"
        if isinstance(spec.default, int) and not isinstance(spec.default, bool):
            desc.integer_range = [IntegerRange(from_value=int(bound.low) if not bound.zero_ok else 0,
                                               to_value=int(bound.high), step=0)]  # fmt: skip
        elif isinstance(spec.default, float):
            low = 0.0 if bound.zero_ok else float(bound.low)
            desc.floating_point_range = [FloatingPointRange(from_value=low, to_value=float(bound.high), step=0.0)]
    return desc
