# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Offline reconstruction of a bag of SpikePackets into images.

The stream goes through the same pieces as the live ``spike_reconstructor`` node, in the same
order, so that the same input gives the same images byte for byte: the node's
:class:`~stir_ros.core.stream_processor.StreamProcessor` (validate, accept / reset / drop each
packet, cut windows on the sensor-clock grid stamped with their centre frame),
:class:`~stir_ros.engine.ReconstructionEngine` and :func:`~stir_ros.core.imaging.to_image_array`.
Unlike the node nothing is ever dropped for lack of time: the queues between the stages block instead.

Three threads, joined by bounded queues::

    reader  : bag -> deserialize -> StreamProcessor -> stacked batches ─┐  other topics ─┐
    main    : engine.reconstruct(batch) -> images ──────────────────────┴─> writer <──────┘
    writer  : images -> bag | PNGs | video (stir_ros.bag.outputs)

Images are stamped (header and bag time) with their window's centre-frame time. Their
``camera_info`` is, as in the node, the camera's own (``<spike topic>/camera_info`` in the bag, as
the driver publishes it) restamped, or an uncalibrated one of the image size.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from stir_ros.core.defect_file import defect_tracker
from stir_ros.core.defects import DefectTracker
from stir_ros.bag.model import DAMAGE_KINDS, BagProblem
from stir_ros.bag.outputs import VIDEO_SUFFIXES, ImageOutputs
from stir_ros.bag.reader import BagReader, check_spike_topic
from stir_ros.bag.reconstruct_options import ReconstructOptions
from stir_ros.bag.stages import Stopped as _Stop, get as _get, put as _put
from stir_ros.bag.window_range import WindowRange, camera_info_topic
from stir_ros.core.errors import BagError, ConfigError, StirRosError
from stir_ros.core.imaging import image_frame_id
from stir_ros.core.paths import check_output_apart
from stir_ros.core.batch_runner import batch_input, counts_packed, run_batch, same_size, take_batch
from stir_ros.core.stream import Window
from stir_ros.engine import EngineConfig
from stir_ros.reconstructor_settings import build_engine
from stir_ros.core.stream_processor import DROPPED, REJECTED, StreamProcessor, packet_header, packet_payload

__all__ = ["ReconstructOptions", "ReconstructResult", "reconstruct_bag", "VIDEO_SUFFIXES"]

_END = object()


@dataclass
class ReconstructResult:
    """What an offline reconstruction did."""

    packets: int = 0
    frames: int = 0
    images: int = 0
    kept_messages: int = 0
    seconds: float = 0.0
    spike_topic: str = ""
    window_length: int = 0
    device: str = ""
    #: STIR's backend and precision, and why ``auto`` chose them (empty for tfp/tfi).
    inference_path: str = ""
    stamps_ns: list[int] = field(default_factory=list)
    problems: list[BagProblem] = field(default_factory=list)
    stream_events: dict[str, int] = field(default_factory=dict)

    @property
    def frames_per_second(self) -> float:
        """Input spike frames processed per second of wall time."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def images_per_second(self) -> float:
        """Images reconstructed per second of wall time (model loading included)."""
        return self.images / self.seconds if self.seconds > 0 else 0.0

    @property
    def damage(self) -> list[BagProblem]:
        """Problems that are damage to the input file (not stream events)."""
        return [p for p in self.problems if p.kind in DAMAGE_KINDS]


def reconstruct_bag(
    in_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str] | None,
    options: ReconstructOptions | None = None,
    *,
    to_folder: str | os.PathLike[str] | None = None,
    video: str | os.PathLike[str] | None = None,
    video_fps: float = 30.0,
    on_problem: Callable[[BagProblem], None] | None = None,
    progress: bool = False,
    engine: Any = None,
    windows: WindowRange | None = None,
) -> ReconstructResult:
    """Reconstruct every window of a bag's spike stream.

    Args:
        in_path: Input bag (sqlite3 or mcap; directory or single file).
        out_path: Output bag to create, or ``None`` (then ``to_folder`` and/or ``video``).
        options: Method, window and output settings.
        to_folder: Folder to write one PNG per image into, named ``<index>_<stamp ns>.png``.
        video: Video file to write (``.gif``/``.apng`` with Pillow; ``.mp4`` etc. need
            imageio with ffmpeg).
        video_fps: Frame rate of the video.
        on_problem: Called with each problem met in the input (also collected in the result).
        progress: Show a progress bar on stderr.
        engine: A ready :class:`~stir_ros.engine.ReconstructionEngine` to use instead of
            building one from ``options`` (benchmarks, tests).
        windows: Make only this range of the recording's windows (a shard, ``stir_ros.bag.shards``).

    Returns:
        Counts, stamps of the images, problems and the time taken.

    Raises:
        BagError: Unreadable input, no spike topic, or outputs that cannot be created.
        ConfigError / CheckpointError: Invalid settings or weights.
    """
    opts = options or ReconstructOptions()
    if out_path is None and to_folder is None and video is None:
        raise ConfigError("nothing to write: give an output bag, a folder or a video")
    inputs = (in_path, opts.weights)
    check_output_apart(out_path, inputs, what="output bag", folder=True)
    check_output_apart(to_folder, inputs, what="output folder", folder=True)
    check_output_apart(video, inputs, what="video file")
    result = ReconstructResult()

    def problem(p: BagProblem) -> None:
        result.problems.append(p)
        if on_problem is not None:
            on_problem(p)

    # The defect map file is read before anything is written: a bad one leaves no output behind.
    defects = defect_tracker(opts.defect_correction, opts.defect_map_url, opts.defect_sample_period_frames,
                             opts.defect_hot_rate)
    t_start = time.perf_counter()
    with BagReader(in_path, on_problem=problem) as bag:
        spike_topic = check_spike_topic(bag, opts.spikes_topic)
        result.spike_topic = spike_topic
        keep = _topics_to_keep(bag, opts, spike_topic, problem)
        # Check every output before the (slow) engine is built; create them after.
        storage = opts.storage or (bag.storage_id if bag.storage_id in ("sqlite3", "mcap") else "sqlite3")
        outputs = ImageOutputs(out_path, storage, to_folder, video, video_fps, opts.output_encoding, opts.image_topic,
                               opts.camera_info_topic)
        if engine is None:  # the node's engine, with its fallbacks (torch is imported on use only)
            engine = build_engine(EngineConfig.from_settings(opts),
                                  lambda message, _summary: problem(BagProblem("engine", "engine", message)))
        for warning in engine.pop_warnings():  # an engine handed in
            problem(BagProblem("engine", "engine", warning))
        result.window_length = int(engine.window_length)
        result.device = engine.device_name
        path = getattr(engine, "inference_path", None)
        result.inference_path = f"{engine.backend} {engine.precision}: {path.reason}" if path else ""
        outputs.create()
        try:
            _Pipeline(bag, spike_topic, keep, opts, engine, outputs, result, problem, progress, windows, defects).run()
        finally:
            outputs.close(result.stream_events)  # even on failure or Ctrl-C: what was written is kept
    result.seconds = time.perf_counter() - t_start
    return result


def _topics_to_keep(bag: BagReader, opts: ReconstructOptions, spike_topic: str,
                    problem: Callable[[BagProblem], None]) -> list[str]:
    if opts.keep_topics is None:
        return []
    outputs = {opts.image_topic, opts.camera_info_topic} - {""}
    if len(opts.keep_topics) == 0:
        names = [t for t in bag.topics if t != spike_topic]
    else:
        missing = [t for t in opts.keep_topics if t not in bag.topics]
        if missing:
            raise BagError(f"--keep-topics names topics that bag '{bag.path}' does not have: {', '.join(missing)}; "
                           f"it has {', '.join(sorted(bag.topics))}")
        names = list(dict.fromkeys(opts.keep_topics))
    clash = [t for t in names if t in outputs]
    for t in clash:
        if opts.keep_topics:
            raise BagError(f"topic {t} is both kept from the input and written with the new images; "
                           "choose another --image-topic/--camera-info-topic")
        problem(BagProblem("not_kept", t, "has the name of an output topic; not copied"))
    return [t for t in names if t not in outputs]


class _Pipeline:
    """The three stages of :func:`reconstruct_bag` and the queues between them."""

    def __init__(self, bag: BagReader, spike_topic: str, keep: list[str], opts: ReconstructOptions, engine: Any,
                 outputs: ImageOutputs, result: ReconstructResult, problem: Callable[[BagProblem], None],
                 progress: bool, windows: WindowRange | None, defects: DefectTracker) -> None:  # fmt: skip
        self.bag, self.spike_topic, self.keep, self.opts, self.engine = bag, spike_topic, keep, opts, engine
        self.outputs, self.result, self.problem = outputs, result, problem
        # The node's packet path. Frames are decoded once on arrival (windows overlap when the
        # stride is shorter than a window), unless the engine counts the packed bits (TFP on the
        # CPU, as live); no window-size limit (nothing is held for lack of time).
        self.stream = StreamProcessor(engine.window_length, opts.stride_frames, opts.output_rate_hz,
                                      decode=not counts_packed(engine),
                                      max_window_bytes=None, defects=defects)
        self.unfit = ""  # the defect map file's misfit last reported
        self.range = windows.cursor() if windows is not None else None  # a shard: its state, where to start
        self.stream, camera_info = self.range.restore(self.stream) if self.range else (self.stream, None)
        result.stream_events = self.stream.events  # counted by the processor, written to the output bag
        self.windows: queue.Queue[Any] = queue.Queue(maxsize=2)  # stacked batches
        self.to_write: queue.Queue[Any] = queue.Queue(maxsize=4 * opts.max_batch + 64)
        # halt: stop reading and inference (an error, Ctrl-C); the writer still writes what was
        # already computed. stop_all: the writer must stop too (it failed, or a second Ctrl-C).
        self.halt = threading.Event()
        self.stop_all = threading.Event()
        self.errors: list[BaseException] = []
        self.info_topic = camera_info_topic(bag, spike_topic)
        self.camera_info: Any = camera_info
        self.bar = None
        if progress:
            from tqdm import tqdm

            info = bag.topics[spike_topic]
            self.bar = tqdm(total=None, unit="frame", unit_scale=True, dynamic_ncols=True, file=sys.stderr,
                            desc=f"{opts.method} {info.message_count} packets", smoothing=0.1)

    # -- stage 1: reader ------------------------------------------------------------------

    def _read(self) -> None:
        # Packet by packet what the node's spikes callback does (StreamProcessor), except that
        # nothing is dropped for lack of time.
        pending: deque[tuple[Window, str, Any]] = deque()
        topics = [self.spike_topic, *self.keep]
        if self.info_topic and self.info_topic not in topics:
            topics.append(self.info_topic)
        for msg in self.bag.messages(topics, self.range.start_ns if self.range else None):
            if self.range is not None and self.range.skip(msg.topic == self.spike_topic):
                continue
            if msg.topic == self.info_topic:
                try:
                    self.camera_info = self.bag.deserialize(msg)
                except BagError as err:
                    self.problem(BagProblem("bad_message", f"{msg.topic} t={msg.timestamp}", f"{err}; skipped"))
                if msg.topic not in self.keep:
                    continue
            if msg.topic != self.spike_topic:
                _put(self.to_write, ("raw", msg), self.halt)
                continue
            where = f"{msg.topic} t={msg.timestamp}"
            try:
                packet = self.bag.deserialize(msg)
            except StirRosError as err:
                self.problem(BagProblem("bad_message", where, f"{err}; skipped"))
                continue
            out = self.stream.push(packet_header(packet), packet_payload(packet))
            if out.status == REJECTED:
                self.problem(BagProblem("bad_message", where, f"{out.error}; skipped"))
                continue
            if out.notable_event is not None:
                self.problem(BagProblem(out.notable_event, where, out.message))
            if out.status == DROPPED:
                continue
            if self.stream.defects.unfit != self.unfit:  # said once per change, as the node's /diagnostics say it
                self.unfit = self.stream.defects.unfit
                if self.unfit:
                    self.problem(BagProblem("defect_map_unfit", "defect_map_url", self.unfit))
            self.result.packets, self.result.frames = self.stream.packets, self.stream.frames
            if self.bar is not None and self.bar.total is None:
                self.bar.total = self.bag.topics[self.spike_topic].message_count * out.header.num_frames or None
            frame_id = image_frame_id(self.opts.frame_id, str(packet.header.frame_id))
            for window in out.windows if self.range is None else self.range.take(out.windows):
                pending.append((window, frame_id, self.camera_info))
                # Full batches of one size: a size change sends what came before it.
                while pending and (len(pending) >= self.opts.max_batch or not same_size(pending[0][0], window)):
                    self._send_batch(pending)
            if self.range is not None and self.range.finished:
                break
        while pending:
            self._send_batch(pending)

    def _send_batch(self, pending: deque[tuple[Window, str, Any]]) -> None:
        """Take the next batch, prepare the engine's input here, off the inference thread, and queue it.

        Only that input and each window's stamp travel on: the windows themselves (and the frames
        they cache) are released here.
        """
        batch = take_batch(pending, self.opts.max_batch, lambda item: item[0])
        spikes = batch_input(self.engine, [item[0] for item in batch])
        labels = [(int(w.centre_stamp_ns), frame_id, info) for w, frame_id, info in batch]
        del batch
        # The progress bar advances when a batch is reconstructed, to the input frames read when it
        # was cut: reading runs ahead of inference, which is where the time goes.
        _put(self.windows, (labels, spikes, self.result.frames), self.halt)

    # -- stage 2: inference (caller's thread) ---------------------------------------------

    def _infer(self) -> None:
        # Batches arrive stacked and always full except at the end or a size change, so that a
        # run's batches, and with them the arithmetic, do not depend on thread timing.
        while True:
            item = _get(self.windows, self.halt)
            if item is _END:
                return
            labels, spikes, frames_done = item
            del item
            images = run_batch(self.engine, spikes, lambda warning: self.problem(BagProblem("engine", "engine", warning)))
            del spikes
            for (stamp, frame_id, info), image in zip(labels, images, strict=True):
                _put(self.to_write, ("image", stamp, frame_id, info, image), self.stop_all)
            if self.bar is not None and frames_done > self.bar.n:
                self.bar.update(frames_done - self.bar.n)

    # -- stage 3: writer ------------------------------------------------------------------

    def _write(self) -> None:
        self.outputs.add_topics(self.bag, self.keep)
        while True:
            item = _get(self.to_write, self.stop_all)
            if item is _END:
                return
            if item[0] == "raw":
                self.outputs.write_raw(item[1])
                self.result.kept_messages += 1
                continue
            _, stamp, frame_id, camera_info, image = item
            index = self.result.images
            self.outputs.write_image(index, image, stamp, frame_id, camera_info)
            self.result.images += 1
            self.result.stamps_ns.append(stamp)
            if self.bar is not None and index % 16 == 0:
                self.bar.set_postfix(images=index + 1, refresh=False)

    # -- running --------------------------------------------------------------------------

    def _read_stage(self) -> None:
        try:
            self._read()
            _put(self.windows, _END, self.halt)
        except _Stop:
            pass
        except BaseException as err:  # noqa: BLE001 - handed to the caller's thread
            self.errors.append(err)
            self.halt.set()

    def _write_stage(self) -> None:
        try:
            self._write()
        except _Stop:
            pass
        except BaseException as err:  # noqa: BLE001 - handed to the caller's thread
            self.errors.append(err)
            self.halt.set()
            self.stop_all.set()

    def run(self) -> None:
        reader = threading.Thread(target=self._read_stage, name="bag-reader", daemon=True)
        writer = threading.Thread(target=self._write_stage, name="bag-writer", daemon=True)
        reader.start()
        writer.start()
        interrupted: BaseException | None = None
        try:
            try:
                self._infer()
            except _Stop:
                pass  # the reader or the writer failed: reported below
            except BaseException as err:  # noqa: BLE001 - Ctrl-C or an engine error
                interrupted = err
                self.halt.set()
            # Let the writer finish what was computed, then stop it.
            try:
                _put(self.to_write, _END, self.stop_all)
            except _Stop:
                pass
            while writer.is_alive():
                writer.join(timeout=0.2)  # a timed join keeps Ctrl-C responsive
        except BaseException:
            self.halt.set()
            self.stop_all.set()  # a second Ctrl-C: stop now
            raise
        finally:
            writer.join()  # never close the outputs under a running writer
            reader.join(timeout=30)
            if self.bar is not None:
                if interrupted is None and not self.errors:
                    # Every frame was read and every window reconstructed (the frames after the
                    # last window are read but make no image): the bar ends at 100 %.
                    self.bar.total = self.result.frames
                    self.bar.update(self.result.frames - self.bar.n)
                self.bar.close()
        if interrupted is not None:
            raise interrupted
        if self.errors:
            raise self.errors[0]
