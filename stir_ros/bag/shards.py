# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Shards of ``bag reconstruct``: a recording split on window boundaries, the same bytes as one run.

Three steps per recording:

1. **Plan** (:func:`plan_recording`). With ``shard_windows`` > 0, one pass over the spike stream
   runs the stream processor as ``reconstruct_bag`` does but without decoding a frame (windows are
   cut lazily and never stacked) and counts the windows. Before the packet that completes window
   ``k · shard_windows`` it keeps the processor's state (stream monitor, defect maps, the held
   ``window_length - stride`` frames of overlap) and the camera_info in force: a
   :class:`~stir_ros.bag.window_range.WindowRange`. With ``shard_windows`` 0 the recording is one
   shard and nothing is read twice.
2. **Shards** (:func:`run_shard`, on any worker). Each shard is ``reconstruct_bag`` of its window
   range into a bag of its own (``OUTPUT.shards/shard-NNNNN``), or, when the recording is one
   shard, straight into ``OUTPUT``.
3. **Merge** (:func:`merge_shards`). The shards' images and camera_infos are copied as read, shard
   after shard, into ``OUTPUT`` with the connections and the stream events of one run.

``OUTPUT.manifest.json`` records the finished shards; a re-run with the same input and settings
resumes from it, and skips a recording whose output it records as complete.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stir_ros.bag.model import DAMAGE_KINDS, BagProblem
from stir_ros.bag.outputs import ImageOutputs
from stir_ros.bag.reader import BagReader, check_spike_topic
from stir_ros.core.methods import method_spec
from stir_ros.bag.reconstruct import ReconstructOptions, reconstruct_bag
from stir_ros.bag.window_range import WindowRange, camera_info_topic, freeze_state
from stir_ros.core.defect_file import defect_tracker
from stir_ros.core.errors import ConfigError, StirRosError
from stir_ros.core.stream_processor import StreamProcessor, packet_header, packet_payload

__all__ = ["RecordingPlan", "ShardTask", "ShardDone", "Manifest", "plan_recording", "run_shard", "merge_shards",
           "shard_path"]  # fmt: skip

MANIFEST_VERSION = 1


def window_length_of(opts: ReconstructOptions) -> int:
    """The window length the engine of ``opts`` will use (the checkpoint's for stir with 0)."""
    if opts.window_length:
        return opts.window_length
    spec = method_spec(opts.method)
    if not spec.needs_weights:
        return spec.default_window_length
    from stir_ros.core.weights import default_weights_path
    from stir_ros.models.checkpoint import check_weights_file

    return int(check_weights_file(opts.weights or default_weights_path()).window_length)


@dataclass
class RecordingPlan:
    """The shards of one recording.

    Attributes:
        spans: The window ranges, in order; one (the whole recording) when not split.
        windows: Windows of the recording (``None`` when it was not read to plan).
        problems: What the planning pass met (damage, stream events), as ``reconstruct_bag`` reports them.
        seconds: Time of the planning pass.
    """

    spans: list[WindowRange]
    windows: int | None = None
    problems: list[BagProblem] = field(default_factory=list)
    seconds: float = 0.0


def plan_recording(in_path: str, opts: ReconstructOptions, shard_windows: int) -> RecordingPlan:
    """Split a recording into window ranges of ``shard_windows`` windows (0: one range, nothing read).

    Raises:
        BagError: Unreadable input or no spike topic. ConfigError / CheckpointError: Invalid settings.
    """
    if shard_windows <= 0:
        return RecordingPlan([WindowRange()])
    t0 = time.perf_counter()
    problems: list[BagProblem] = []
    stream = StreamProcessor(window_length_of(opts), opts.stride_frames, opts.output_rate_hz, max_window_bytes=None,
                             defects=defect_tracker(opts.defect_correction, opts.defect_map_url,
                                                    opts.defect_sample_period_frames, opts.defect_hot_rate))
    starts = [WindowRange()]
    ordinals = [0]  # of each start's packet, counted from the recording's start
    cut, boundary, ordinal, camera_info = 0, shard_windows, -1, None
    stamp, same, latest_start = -1, 0, -1  # spike messages of this stamp so far; the latest start's stamp
    with BagReader(in_path, on_problem=problems.append) as bag:
        spike_topic = check_spike_topic(bag, opts.spikes_topic)
        info_topic = camera_info_topic(bag, spike_topic)
        for msg in bag.messages([t for t in (spike_topic, info_topic) if t]):
            if msg.timestamp < latest_start:  # out of time order (overlapping split files): no seeking there
                starts = [s if (s.first_stamp or 0) <= msg.timestamp else dataclasses.replace(s, first_stamp=None)
                          for s in starts]
            if msg.topic == info_topic:
                try:
                    camera_info = bag.deserialize(msg)
                except StirRosError:
                    pass  # reported by the shard that reads it
                continue
            ordinal += 1  # every spike message counts, as RangeCursor.skip counts them
            same = same + 1 if msg.timestamp == stamp else 1
            stamp = msg.timestamp
            try:
                packet = bag.deserialize(msg)
            except StirRosError as err:
                problems.append(BagProblem("bad_message", f"{msg.topic} t={msg.timestamp}", f"{err}; skipped"))
                continue
            header = packet_header(packet)
            try:  # a packet completes at most one window per stride of its frames, plus one
                most = header.num_frames // stream.stride_for(header.frame_rate_hz) + 1
            except (StirRosError, ValueError, ZeroDivisionError):
                most = header.num_frames + 1
            state = freeze_state(stream, camera_info) if cut + most > boundary else b""
            out = stream.push(header, packet_payload(packet))
            made = len(out.windows)
            while boundary < cut + made:  # window number `boundary` is completed by this packet
                starts.append(WindowRange(boundary, None, same - 1, boundary - cut, state, msg.timestamp))
                ordinals.append(ordinal)
                latest_start = msg.timestamp
                boundary += shard_windows
            cut += made
    # Where a start cannot be sought (damage: rows may be listed out of time order), count from the start.
    damaged = any(p.kind in DAMAGE_KINDS for p in problems)
    starts = [s if s.first_stamp is not None and not damaged else dataclasses.replace(s, first_packet=n,
              first_stamp=None) for s, n in zip(starts, ordinals)]  # fmt: skip
    spans = [dataclasses.replace(s, windows=nxt.first_window - s.first_window) for s, nxt in zip(starts, starts[1:])]
    spans.append(starts[-1])  # the last shard reads to the end: the stream's events are complete
    return RecordingPlan(spans, cut, problems, time.perf_counter() - t0)


def shard_path(output: str, index: int) -> str:
    """Where shard ``index`` of a split recording writes its bag."""
    return os.path.join(f"{output}.shards", f"shard-{index:05d}")


@dataclass(frozen=True)
class ShardTask:
    """One unit of work: a window range of one recording into one bag (what a worker is given)."""

    recording: int  # number of the recording in the job
    index: int  # number of the shard in the recording
    input: str
    output: str
    options: ReconstructOptions
    span: WindowRange
    to_folder: bool = False  # output is a PNG folder (a recording of one shard)


@dataclass
class ShardDone:
    """What a shard did (sent back to the job), or why it failed (``error``)."""

    recording: int
    index: int
    images: int = 0
    frames: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # of the worker's process (all its threads) while it ran the shard
    worker: int = 0  # process id of the worker
    span_s: tuple[float, float] = (0.0, 0.0)  # wall-clock start and end (time.time())
    device: str = ""
    stream_events: dict[str, int] = field(default_factory=dict)
    problems: list[BagProblem] = field(default_factory=list)
    error: str = ""


def run_shard(task: ShardTask) -> ShardDone:
    """Reconstruct one shard; an error of the input or the settings comes back in ``error``."""
    done = ShardDone(task.recording, task.index, worker=os.getpid())
    started = time.time()
    if os.path.lexists(task.output):
        # The job found this output free (or its own, unfinished) before it sent the task: what is there
        # now is an earlier attempt of this task whose worker died (Ray runs it again).
        _remove(task.output)
    cpu0 = time.process_time()
    try:
        result = reconstruct_bag(task.input, None if task.to_folder else task.output, task.options,
                                 to_folder=task.output if task.to_folder else None, on_problem=done.problems.append,
                                 windows=task.span)
    except StirRosError as err:
        done.error = str(err)
        return done
    done.images, done.frames, done.seconds, done.device = result.images, result.frames, result.seconds, result.device
    done.stream_events = dict(result.stream_events)
    done.cpu_seconds = time.process_time() - cpu0
    done.span_s = (started, time.time())
    return done


def merge_shards(output: str, shards: list[str], opts: ReconstructOptions, storage: str,
                 stream_events: dict[str, int]) -> None:
    """Copy the shards' images and camera_infos, in order and as read, into the bag ``output``."""
    outputs = ImageOutputs(output, storage, None, None, 1.0, opts.output_encoding, opts.image_topic,
                           opts.camera_info_topic)
    outputs.create()
    try:
        for number, path in enumerate(shards):
            with BagReader(path) as shard:
                if number == 0:
                    outputs.add_topics(shard, [])
                for msg in shard.messages([opts.image_topic, opts.camera_info_topic]):
                    outputs.write_copied(msg)
    finally:
        outputs.close(stream_events)


class Manifest:
    """``OUTPUT.manifest.json``: the finished shards of one recording, for a re-run to resume.

    Args:
        output: The recording's output bag.
        key: What the output is made of (input files, settings, shard size); a manifest of another
            key is for other work and is started afresh.
    """

    def __init__(self, output: str, key: str) -> None:
        self.path = Path(f"{output}.manifest.json")
        self.key = key
        self.shards: dict[int, dict[str, Any]] = {}
        self.complete = False
        self.resumed = False  # an earlier run of the same work had started
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return
        if isinstance(data, dict) and data.get("version") == MANIFEST_VERSION and data.get("key") == key:
            self.resumed = True
            self.complete = bool(data.get("complete"))
            self.shards = {int(k): v for k, v in dict(data.get("shards", {})).items()}

    @property
    def exists(self) -> bool:
        """A manifest file is there (of this work or of other work)."""
        return self.path.exists()

    def record(self, done: ShardDone) -> None:
        """Record a finished shard (written at once, atomically)."""
        self.shards[done.index] = {"images": done.images, "stream_events": done.stream_events}
        self.save()

    def save(self, complete: bool = False) -> None:
        """Write the manifest (``complete``: the output is finished)."""
        self.complete = complete
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps({"version": MANIFEST_VERSION, "key": self.key, "complete": complete,
                                   "shards": {str(k): v for k, v in sorted(self.shards.items())}}, indent=1))
        os.replace(tmp, self.path)


def work_key(in_path: str, opts: ReconstructOptions, shard_windows: int) -> str:
    """A digest of what an output is made of: the input's files (names, sizes, times), settings, shard size."""
    root = Path(in_path)
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    parts: list[Any] = [os.path.abspath(in_path), shard_windows, repr(dataclasses.asdict(opts))]
    for p in files:
        st = p.stat()
        parts.append((p.name, st.st_size, st.st_mtime_ns))
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:32]


def clear_unfinished(output: str, manifest: Manifest, shards: int, on_note: Callable[[str], None]) -> None:
    """Remove what a crashed run of this work left unfinished: shard bags not recorded, a partial output.

    Only paths that this manifest's work writes are touched.
    """
    if os.path.lexists(output):
        if not manifest.resumed:
            raise ConfigError(f"output bag '{output}' exists already; choose a new path (or remove it)")
        on_note(f"{output}: removing the unfinished output of an interrupted run")
        _remove(output)
    if shards > 1:
        for index in range(shards):
            path = shard_path(output, index)
            if index not in manifest.shards and os.path.lexists(path):
                _remove(path)


def remove_shard_folder(output: str) -> None:
    """Remove ``OUTPUT.shards`` once the output is merged."""
    folder = f"{output}.shards"
    if os.path.isdir(folder):
        shutil.rmtree(folder)


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.remove(path)
