# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Defect map files: what ``stir-ros calibrate-defects`` writes and ``defect_map_url`` reads.

YAML, like a camera_info calibration::

    format: stir_ros_defect_map
    version: 1
    height: 250
    width: 400
    frames: 60000              # frames the map was estimated from
    frame_rate_hz: 20000.0     # the frames' rate, which made the counts the rates per second below
    hot: [[row, col], ...]
    dead: [[row, col], ...]
    dark_rate_hz_median: 8.5   # a lens-cap recording's median dark rate (else the scene's upper bound)
    dark_rate_hz: [[...], ...] # only from a lens-cap recording (--dark): each pixel's dark rate, Hz

The file is untrusted input: sizes, coordinates and rates are checked, and a refused file raises
:class:`~stir_ros.core.errors.ConfigError` saying what is wrong. ROS-free.
"""

from __future__ import annotations

import math
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np

from stir_ros.core.defects import DefectMap, DefectTracker
from stir_ros.core.yaml_files import load_yaml
from stir_ros.core.errors import ConfigError
from stir_ros.core.limits import MAX_FRAME_RATE_HZ, MAX_FRAME_SIDE, MIN_FRAME_RATE_HZ
from stir_ros.core.paths import path_of_url

__all__ = ["FORMAT", "VERSION", "MAX_FILE_BYTES", "defect_map_file", "load_defect_map", "save_defect_map",
           "defect_tracker"]

FORMAT = "stir_ros_defect_map"
#: The format version written and read.
VERSION = 1
#: Largest defect map file read (a 4096x4096 dark-rate table in YAML stays below).
MAX_FILE_BYTES = 512 * 1024 * 1024


def save_defect_map(path: str | os.PathLike[str], m: DefectMap, frame_rate_hz: float) -> None:
    """Write ``m`` as YAML (module docstring), replacing ``path`` whole or not at all.

    Raises:
        ConfigError: The file cannot be written (the reason; a previous file at ``path`` is kept).
    """
    import yaml

    h, w = m.shape
    doc: dict[str, Any] = {
        "format": FORMAT, "version": VERSION, "height": h, "width": w, "frames": int(m.frames),
        "frame_rate_hz": float(frame_rate_hz),
        "hot": [[int(r), int(c)] for r, c in zip(*np.nonzero(m.hot))],
        "dead": [[int(r), int(c)] for r, c in zip(*np.nonzero(m.dead))],
        "dark_rate_hz_median": None if math.isnan(m.dark_estimate_hz) else round(float(m.dark_estimate_hz), 4),
    }  # fmt: skip
    if m.dark_rate_hz is not None:
        doc["dark_rate_hz"] = np.round(m.dark_rate_hz.astype(np.float64), 3).tolist()
    # Written beside it and renamed over it: a full disk or a stop mid-way leaves the previous map
    # whole, and a node that reads the file meanwhile sees the old map or the new one, never half.
    target = Path(path)
    part = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        with open(os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "w") as f:
            f.write("# stir_ros defect map (stir-ros calibrate-defects)\n")
            yaml.dump(doc, f, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), default_flow_style=None,
                      sort_keys=False, width=1 << 20)  # fmt: skip
        os.replace(part, target)
    except OSError as err:
        raise ConfigError(f"cannot write defect map '{os.fspath(path)}': {err.strerror or err}") from err
    finally:
        part.unlink(missing_ok=True)


def _pixels(doc: dict[str, Any], key: str, h: int, w: int, path: Path) -> np.ndarray:
    mask = np.zeros((h, w), bool)
    items = doc.get(key) or []
    pairs = items if isinstance(items, list) and all(isinstance(rc, list) and len(rc) == 2 for rc in items) else None
    if pairs is None:
        raise ConfigError(f"defect map '{path}': '{key}' must be a list of [row, col] pairs")
    # Whole numbers only: a row of 1.5 is no pixel (numpy would make it 1), and YAML's true is no number.
    if not all(isinstance(v, int) and not isinstance(v, bool) for rc in pairs for v in rc):
        raise ConfigError(f"defect map '{path}': '{key}' must hold [row, col] pairs of whole numbers")
    if any(not (0 <= r < h and 0 <= c < w) for r, c in pairs):  # before numpy: a huge number overflows int64
        raise ConfigError(f"defect map '{path}': '{key}' holds a pixel outside the {h}x{w} frame")
    rc = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    mask[rc[:, 0], rc[:, 1]] = True
    return mask


def defect_map_file(url: str) -> tuple[Path, int]:
    """The file of a defect map (``file://`` URL or path) and its size, checked without reading it.

    Raises:
        ConfigError: Missing, not a regular file, or larger than :data:`MAX_FILE_BYTES`.
    """
    path = path_of_url(url, "defect_map_url")
    try:
        st = path.stat()
    except OSError as err:
        raise ConfigError(f"cannot read defect map '{path}': {err.strerror or err}") from err
    # Anyone on the graph may name the file: /dev/zero would be read until memory runs out, a FIFO block the node.
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"defect map '{path}' is not a regular file")
    if st.st_size > MAX_FILE_BYTES:
        raise ConfigError(f"defect map '{path}' is larger than {MAX_FILE_BYTES} bytes")
    return path, st.st_size


def load_defect_map(url: str) -> DefectMap:
    """Read a defect map file (``file://`` URL or path).

    Raises:
        ConfigError: Unreadable, too large, not a defect map, or values out of range.
    """
    path, _size = defect_map_file(url)
    doc = load_yaml(path, "defect map")  # depth-bounded, safe: the file may come from anyone
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ConfigError(f"'{path}' is not a stir_ros defect map (expected format: {FORMAT})")
    if doc.get("version", VERSION) != VERSION:
        raise ConfigError(f"defect map '{path}' is of version {doc.get('version')!r}; this stir_ros reads version "
                          f"{VERSION}: calibrate again with this stir_ros")
    h, w, frames = doc.get("height"), doc.get("width"), doc.get("frames", 0)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (h, w, frames)) or not (
            1 <= h <= MAX_FRAME_SIDE and 1 <= w <= MAX_FRAME_SIDE and frames >= 0):  # type: ignore[operator]
        raise ConfigError(f"defect map '{path}': height and width must be integers in 1..{MAX_FRAME_SIDE}, "
                          f"frames >= 0; got {h}, {w}, {frames}")
    dark = doc.get("dark_rate_hz")
    dark_arr = None
    if dark is not None:
        try:
            dark_arr = np.asarray(dark, dtype=np.float32).reshape(h, w)  # type: ignore[arg-type]
        except (TypeError, ValueError) as err:
            raise ConfigError(f"defect map '{path}': dark_rate_hz must be {h} rows of {w} numbers") from err
        if not np.isfinite(dark_arr).all() or (dark_arr < 0).any():
            raise ConfigError(f"defect map '{path}': dark_rate_hz must be finite and >= 0")
    rate = doc.get("frame_rate_hz")  # absent: unknown, and compared with no stream
    if rate is not None and not (isinstance(rate, (int, float)) and not isinstance(rate, bool) and
                                 MIN_FRAME_RATE_HZ <= rate <= MAX_FRAME_RATE_HZ):  # NaN fails too
        raise ConfigError(f"defect map '{path}': frame_rate_hz must be a number in {MIN_FRAME_RATE_HZ:g}.."
                          f"{MAX_FRAME_RATE_HZ:g} Hz, got {rate!r}")
    median = doc.get("dark_rate_hz_median")
    est = float(median) if isinstance(median, (int, float)) and math.isfinite(median) and median >= 0 else math.nan
    hot, dead = _pixels(doc, "hot", h, w, path), _pixels(doc, "dead", h, w, path)  # type: ignore[arg-type]
    return DefectMap(hot, dead & ~hot, int(frames), dark_arr, est, float(rate or 0.0))


def defect_tracker(correction: str, map_url: str, sample_period_frames: int, hot_rate: float) -> DefectTracker:
    """The defect tracker of these settings (the node and ``bag reconstruct``); reads ``map_url``.

    Raises:
        ConfigError: An unreadable or invalid defect map file, or invalid settings.
    """
    file_map = load_defect_map(map_url) if map_url and correction != "none" else None
    return DefectTracker(correction, file_map, sample_period_frames=sample_period_frames, hot_rate=hot_rate)
