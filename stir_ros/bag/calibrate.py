# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""``stir-ros calibrate-defects INPUT.dat|BAG -o defects.yaml``: a defect map from a recording.

Every frame of the recording is counted (not a sample, as the node does) and the map is
estimated with the node's rules (:func:`stir_ros.core.defects.estimate_defects`). Any scene
gives hot and dead pixels; a recording made with the lens covered (``--dark``) also gives every
pixel's dark-current rate, stored in the file. The node reads the file through ``defect_map_url``.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from stir_ros.core import defaults
from stir_ros.core.defect_file import save_defect_map
from stir_ros.core.paths import check_output_apart
from stir_ros.core.defects import DEAD_MIN_COUNT, DefectMap, estimate_defects, neighbour_ranks, payload_counts
from stir_ros.bag.model import BagProblem
from stir_ros.core.errors import BagError, ConfigError, PacketError
from stir_ros.core.text_output import printable
from stir_ros.core.limits import check_parameter
from stir_ros.core.packing import ENCODING_VIDAR_BITPACKED

__all__ = ["add_arguments", "run", "calibrate_defects", "count_spikes"]

_BLOCK = 1000  # frames of a .dat read at a time
#: A ``--dark`` recording whose median pixel fires faster than this (Hz) saw light: the lens was not covered.
#: Five times the strongest dark current studied (200 Hz, README "Using a real camera"; sensors give tens of Hz).
DARK_MAX_HZ = 1000.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``stir-ros calibrate-defects``."""
    parser.add_argument("input", metavar="INPUT",
                        help="a Vidar .dat file (any name, with --height and --width) or a bag of SpikePackets")
    parser.add_argument("-o", "--output", required=True, help="defect map to write (YAML)")
    parser.add_argument("--height", type=int, default=None, help="frame height (.dat input)")
    parser.add_argument("--width", type=int, default=None, help="frame width (.dat input)")
    parser.add_argument("--frame-rate-hz", type=float, default=defaults.FRAME_RATE_HZ,
                        help=f"frame rate of a .dat input (default {defaults.FRAME_RATE_HZ:g})")
    parser.add_argument("--spikes-topic", default=None, help="SpikePacket topic of a bag (default: the only one)")
    parser.add_argument("--dark", action="store_true",
                        help="the recording was made with the lens covered: store each pixel's dark-current rate")
    parser.add_argument("--defect-hot-rate", "--hot-rate", dest="hot_rate", type=float, default=defaults.DEFECT_HOT_RATE,
                        help=f"spikes per frame above which a pixel is hot (default {defaults.DEFECT_HOT_RATE:g})")


def _is_dat(path: str, height: int | None, width: int | None) -> bool:
    """A ``.dat`` (any case), or a file that is no bag storage when its frame size is given (capture software's names)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".dat":
        return True
    return bool(height or width) and suffix not in (".db3", ".mcap") and not Path(path).is_dir()


def count_spikes(path: str, height: int | None, width: int | None, frame_rate_hz: float,
                 topic: str | None = None,
                 on_problem: Callable[[BagProblem], None] | None = None) -> tuple[np.ndarray, int, float]:
    """``(counts [H, W], frames, frame_rate_hz)`` of every frame of a ``.dat`` file or a bag.

    A bag's damaged parts and bad packets are skipped and passed to ``on_problem``, as
    ``bag reconstruct`` skips them: the counts are those of the intact packets.
    """
    if _is_dat(path, height, width):
        from stir_ros.core.dat import DatReader

        if not height or not width:
            raise ConfigError("a .dat file needs --height and --width")
        with DatReader(path, height, width) as reader:
            total = len(reader)
            counts = np.zeros((height, width), np.uint64)
            for first in range(0, total, _BLOCK):  # from the packed bits, as a bag: 1.4x unpacking (250x400)
                n = min(_BLOCK, total - first)
                counts += payload_counts(reader.read_packed(first, n), height, width, ENCODING_VIDAR_BITPACKED, 0, n)
        return counts, total, frame_rate_hz
    from stir_ros.bag.reader import BagReader, check_spike_topic
    from stir_ros.core.packet import packet_header, packet_payload, validate_packet

    acc: np.ndarray | None = None
    frames, rate = 0, frame_rate_hz
    with BagReader(path, on_problem) as bag:
        name = check_spike_topic(bag, topic)
        for msg in bag.messages([name]):
            try:
                packet = bag.deserialize(msg)
                h = packet_header(packet)
                raw = validate_packet(packet_payload(packet), h)
            except (BagError, PacketError) as err:
                if on_problem is not None:
                    on_problem(BagProblem("bad_message", f"{msg.topic} t={msg.timestamp}", f"{err}; skipped"))
                continue
            if acc is not None and acc.shape != (h.height, h.width):
                raise ConfigError(f"frame size changes in '{path}' ({acc.shape} -> {h.height}x{h.width})")
            c = payload_counts(raw, h.height, h.width, h.encoding, 0, h.num_frames)
            acc = c.astype(np.uint64) if acc is None else acc + c
            frames, rate = frames + h.num_frames, h.frame_rate_hz
    if acc is None:
        raise ConfigError(f"no SpikePackets in '{path}'")
    return acc, frames, rate


def calibrate_defects(path: str, output: str, *, height: int | None = None, width: int | None = None,
                      frame_rate_hz: float = defaults.FRAME_RATE_HZ, topic: str | None = None, dark: bool = False,
                      hot_rate: float = defaults.DEFECT_HOT_RATE,
                      on_problem: Callable[[BagProblem], None] | None = None) -> DefectMap:
    """Estimate the defect map of a recording and write it to ``output`` (YAML).

    Raises:
        ConfigError: Settings out of the node's ranges, an output that cannot be written (checked
            before anything is counted), or a recording too short to tell dead pixels. Nothing is
            written then.
    """
    check_parameter("spike_reconstructor", "defect_hot_rate", hot_rate)
    check_parameter("spike_camera_driver", "frame_rate_hz", frame_rate_hz)
    check_output_apart(output, [path], what="defect map")
    _check_writable(Path(output))
    counts, frames, rate = count_spikes(path, height, width, frame_rate_hz, topic, on_problem)
    m = estimate_defects(counts, frames, hot_rate=hot_rate, frame_rate_hz=rate, dark=dark)
    _check_long_enough(path, counts, m, rate)
    if dark and m.dark_estimate_hz > DARK_MAX_HZ:
        raise ConfigError(f"'{path}' is not a lens-cap recording: its median pixel fires at {m.dark_estimate_hz:.3g} Hz "
                          f"(dark current stays far below {DARK_MAX_HZ:g} Hz): that is light; cover the lens and "
                          "record again, or calibrate from this scene without --dark")
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    save_defect_map(output, m, rate)
    return m


def _check_writable(output: Path) -> None:
    """Refuse, before a long recording is counted, an output that is a folder or under a file."""
    if output.is_dir():
        raise ConfigError(f"defect map '{output}' is a folder: name the file to write, e.g. '{output / 'defects.yaml'}'")
    folder = output.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise ConfigError(f"cannot write defect map '{output}': '{folder}' is a file, not a folder")


def _check_long_enough(path: str, counts: np.ndarray, m: DefectMap, rate: float) -> None:
    """Refuse a map that could not tell dead pixels for most of the frame (a short or dark recording).

    A pixel is judged dead only beside neighbours that fired ``DEAD_MIN_COUNT`` times; a map
    written from fewer would say "0 dead" where it could not tell.
    """
    low2, _ = neighbour_ranks(counts, m.hot)
    judged = np.isfinite(low2) & (low2 >= DEAD_MIN_COUNT)
    if judged.mean() >= 0.5:
        return
    median = float(np.median(np.where(np.isfinite(low2), low2, 0.0)))
    if median > 0:
        need = math.ceil(m.frames * DEAD_MIN_COUNT / median)
        todo = f"record at least {need} frames ({need / rate:.3g} s at {rate:g} Hz)"
    else:
        todo = "record longer, or with light on the sensor (an evenly lit scene)"
    raise ConfigError(f"'{path}': {m.frames} frames are too few to find dead pixels: a pixel is judged against its "
                      f"neighbours once they fired {DEAD_MIN_COUNT} times, and the median pixel's second-darkest "
                      f"neighbour fired {median:g} times; {todo}")


def run(args: argparse.Namespace) -> int:
    """Entry point of ``stir-ros calibrate-defects``; exit status 1 if parts of a bag were skipped."""
    problems: list[BagProblem] = []

    def warn(problem: BagProblem) -> None:
        problems.append(problem)
        print(f"warning: {printable(str(problem))}", file=sys.stderr)

    m = calibrate_defects(args.input, args.output, height=args.height, width=args.width,
                          frame_rate_hz=args.frame_rate_hz, topic=args.spikes_topic, dark=args.dark,
                          hot_rate=args.hot_rate, on_problem=warn)  # fmt: skip
    what = "median dark-current rate" if args.dark else "dark-current rate at most"
    print(f"{args.output}: {m.hot_count} hot, {m.dead_count} dead of {m.shape[0]}x{m.shape[1]} pixels from "
          f"{m.frames} frames; {what} {m.dark_estimate_hz:.3g} Hz", file=sys.stderr)
    return 1 if problems else 0
