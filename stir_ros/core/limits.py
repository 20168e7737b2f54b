# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Bounds of every number that crosses a boundary: node parameters, packet fields, weights files.

One table (:data:`PARAMETER_BOUNDS`) is the single definition of the parameter ranges: the nodes
build their ROS parameter descriptors (``IntegerRange`` / ``FloatingPointRange``, shown by
``ros2 param describe`` and rqt_reconfigure) from it, and :func:`check_parameter` validates values
against it at start and at run time. Packet fields are bounded by what a spike camera produces
(:data:`MAX_FRAME_RATE_HZ`, :data:`MAX_FRAME_SIDE`), and the product window × frame by
:data:`MAX_WINDOW_BYTES`, so that the reconstructor's memory has the upper bound that
:func:`reconstructor_memory_bound` states (README, "Memory").

ROS-free: no rclpy here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from stir_ros.core.errors import ConfigError

__all__ = [
    "Bound",
    "PARAMETER_BOUNDS",
    "MIN_FRAME_RATE_HZ",
    "MAX_FRAME_RATE_HZ",
    "MAX_FRAME_SIDE",
    "MAX_WINDOW_LENGTH",
    "MAX_WINDOW_BYTES",
    "MAX_PACKET_BYTES",
    "MAX_FRAME_ID_CHARS",
    "MAX_MESSAGE_OVERHEAD_BYTES",
    "MAX_DECOMPRESSED_BYTES",
    "MIN_FREE_DISK_BYTES",
    "bound_for",
    "check_parameter",
    "batch_limit",
    "reconstructor_memory_bound",
]

#: Slowest frame rate a packet may claim. Below it a frame's offset in ns overflows the stamp
#: arithmetic (1e9 / 5e-324 is infinite); no spike camera runs at less than a frame per 1000 s.
MIN_FRAME_RATE_HZ = 1e-3
#: Fastest frame rate a packet or the driver may claim: Vidar cameras run at 20-40 kHz; 1 MHz leaves
#: room for faster sensors and keeps stride and stamp arithmetic far from overflow.
MAX_FRAME_RATE_HZ = 1e6
#: Largest frame height or width (pixels). Vidar sensors are 250x400; 4096 is any sensor's.
MAX_FRAME_SIDE = 4096
#: Longest window (frames). STIR takes 41 or 61; TFP/TFI longer windows only blur more.
MAX_WINDOW_LENGTH = 1024
#: Most bytes one decoded window (``window_length x height x width`` uint8) may take: the
#: worker decodes ``[batch, T, H, W]`` windows, so this bounds a batch (see :func:`batch_limit`).
MAX_WINDOW_BYTES = 256 * 1024 * 1024
#: Largest packet payload accepted (bytes). The driver's default packet is 1.25 MB.
MAX_PACKET_BYTES = 64 * 1024 * 1024
#: Longest ``header.frame_id`` a packet may carry (characters): a frame name, never kilobytes.
MAX_FRAME_ID_CHARS = 1024
#: Most bytes a held packet may keep alive besides its payload (header, strings, anything after
#: the payload): past this the payload is copied out and the message let go.
MAX_MESSAGE_OVERHEAD_BYTES = 4096
#: Most bytes one compressed part of a bag may expand to when it is read: an mcap chunk (its
#: declared uncompressed size is refused above this before anything is decompressed) or one
#: message of a bag recorded with ``compression_mode: message``. A writer closes a chunk once it
#: passes its chunk size (rosbag2's mcap default: 768 KiB), so a chunk is that plus one message,
#: and a packet is at most MAX_PACKET_BYTES; 4x that leaves room for a larger configured chunk
#: size and other topics' bigger messages while a crafted "zip bomb" costs at most this much memory.
MAX_DECOMPRESSED_BYTES = 4 * MAX_PACKET_BYTES
#: Free space that unpacking a bag recorded with ``compression_mode: file`` leaves on the
#: temporary directory's file system: the unpacked size is known only at the end, so the
#: reader stops (and deletes the partial file) before a crafted file would fill the disk that
#: the recorder, the logs and the rest of the system write to.
MIN_FREE_DISK_BYTES = 1024 * 1024 * 1024


@dataclass(frozen=True)
class Bound:
    """Closed range ``[low, high]`` of one numeric parameter, and why.

    ``zero_ok``: 0 is also accepted (it means "automatic" or "off") although ``low`` > 0.
    """

    name: str
    low: float
    high: float
    why: str
    zero_ok: bool = False

    @property
    def is_int(self) -> bool:
        return isinstance(self.low, int) and isinstance(self.high, int)

    def describe(self) -> str:
        span = f"{self.low:g}..{self.high:g}"
        return f"0 or {span}" if self.zero_ok else span


#: (node, parameter) -> Bound. Node ``"*"`` applies to every node that has the parameter.
PARAMETER_BOUNDS: dict[tuple[str, str], Bound] = {
    (node, b.name): b
    for node, b in [
        ("spike_reconstructor", Bound("window_length", 0, MAX_WINDOW_LENGTH, "frames per window (0: automatic)")),
        ("spike_reconstructor", Bound("stride_frames", 1, 10_000_000, "10 s at 1 MHz")),
        ("spike_reconstructor",
         Bound("output_rate_hz", 1e-3, 10_000.0, "images per second (0: use stride_frames)", zero_ok=True)),
        ("spike_reconstructor", Bound("max_batch", 1, 64, "windows per forward pass")),
        ("spike_reconstructor", Bound("alpha", 1e-3, 1e3, "sensor alpha")),
        ("spike_reconstructor", Bound("queue_size", 1, 256, "windows waiting for inference")),
        ("spike_reconstructor", Bound("inference_streams", 0, 16, "windows computed at once (0: auto)")),
        ("spike_reconstructor", Bound("diagnostics_period_s", 0.01, 3600.0, "seconds")),
        ("spike_reconstructor", Bound("warmup_height", 0, MAX_FRAME_SIDE, "pixels (0: at the first packet)")),
        ("spike_reconstructor", Bound("warmup_width", 0, MAX_FRAME_SIDE, "pixels (0: at the first packet)")),
        ("spike_reconstructor", Bound("stall_timeout_s", 0.1, 3600.0, "seconds without an image while windows wait")),
        ("spike_reconstructor", Bound("jpeg_quality", 1, 100, "JPEG quality of image/compressed")),
        ("spike_reconstructor", Bound("worker_niceness", 0, 19, "niceness of the inference thread")),
        ("spike_reconstructor", Bound("defect_sample_period_frames", 20, 10_000_000, "frames (20 are counted per period)")),
        ("spike_reconstructor", Bound("defect_hot_rate", 0.01, 1.0, "spikes per frame")),
        ("spike_camera_driver", Bound("height", 1, MAX_FRAME_SIDE, "pixels")),
        ("spike_camera_driver", Bound("width", 1, MAX_FRAME_SIDE, "pixels")),
        ("spike_camera_driver", Bound("frame_rate_hz", MIN_FRAME_RATE_HZ, MAX_FRAME_RATE_HZ, "sensor frame rate")),
        ("spike_camera_driver", Bound("frames_per_packet", 1, 100_000, "frames per SpikePacket")),
        ("spike_camera_driver", Bound("max_frames", 0, 2**62, "0: no limit")),
        ("spike_camera_driver", Bound("wait_for_subscribers", 0, 1000, "subscribers")),
        ("spike_camera_driver", Bound("wait_for_subscribers_timeout_s", 0.0, 86400.0, "seconds")),
        ("spike_camera_driver", Bound("sim_seed", 0, 2**63 - 1, "seed")),
        ("spike_camera_driver", Bound("sim_alpha", 1e-3, 1e3, "simulated sensor alpha")),
        ("spike_camera_driver", Bound("sim_max_speed", 0.0, 1000.0, "pixels per frame")),
        ("spike_camera_driver", Bound("sim_noise_std", 0.0, 1000.0, "noise of the increments")),
    ]
}


def bound_for(node: str, name: str) -> Bound | None:
    """The bound of ``node``'s parameter ``name``, or None for a parameter without one."""
    return PARAMETER_BOUNDS.get((node, name))


def check_parameter(node: str, name: str, value: Any) -> None:
    """Raise ConfigError unless ``value`` is a finite number within the parameter's bound.

    Parameters without a bound (strings, booleans) pass unchecked.
    """
    bound = bound_for(node, name)
    if bound is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number in {bound.describe()} ({bound.why}), got {value!r}")
    if bound.is_int and not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer in {bound.describe()} ({bound.why}), got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number in {bound.describe()} ({bound.why}), got {value!r}")
    if bound.zero_ok and value == 0:
        return
    if not bound.low <= value <= bound.high:
        raise ConfigError(f"{name} must be in {bound.describe()} ({bound.why}), got {value!r}")


def batch_limit(max_batch: int, window_length: int, height: int, width: int) -> int:
    """Windows per forward pass: ``max_batch``, fewer if a batch would exceed ``MAX_WINDOW_BYTES``."""
    per_window = max(1, window_length * height * width)
    return max(1, min(int(max_batch), MAX_WINDOW_BYTES // per_window))


def reconstructor_memory_bound(
    queue_size: int,
    max_batch: int,
    window_length: int,
    height: int,
    width: int,
    frames_per_packet: int,
    bytes_per_frame: int,
) -> int:
    """Upper bound of the bytes of spike data and images the reconstructor holds (README, "Memory").

    Held: packet payloads that the window buffer or a queued window still refers to, the batch
    being decoded and its float32 images. Each of the ``queue_size`` queued windows, the one being
    cut and the ``batch`` windows being reconstructed refers to at most ``window_length`` frames
    plus one partial packet on each side; the decoded batch is ``batch x T x H x W`` bytes and its
    images ``batch x H x W x 4`` bytes (plus the encoded output). Images reconstructed and waiting
    to be published (held for even spacing, or behind a slower stream) keep no spikes; no window is
    taken while ``queue_size`` of them wait, so at most ``queue_size + batch`` wait, ``H x W x 4``
    bytes each. With ``inference_streams`` above ``batch`` (one window per stream in flight), read
    ``batch`` as the streams in both terms. The network's activations (STIR) and the DDS history
    (keep last 50 packets) come on top.
    """
    batch = batch_limit(max_batch, window_length, height, width)
    frames_per_window = window_length + 2 * max(0, frames_per_packet - 1) + frames_per_packet
    payload = (queue_size + 1 + batch) * frames_per_window * bytes_per_frame
    decoded = batch * window_length * height * width
    images = batch * height * width * (4 + 4)
    waiting = (queue_size + batch) * height * width * 4
    return payload + decoded + images + waiting
