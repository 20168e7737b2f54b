# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""``stir-ros bag ...``: info, reconstruct, from-dat, to-dat, play, record.

Examples::

    stir-ros bag from-dat rec.dat run1 --height 250 --width 400 --frame-rate-hz 20000
    stir-ros bag info run1
    stir-ros bag reconstruct run1 run1_images --method tfp --stride-frames 20
    stir-ros bag reconstruct run1 frames/ --to-folder --video run1.gif
    stir-ros bag to-dat run1 copy.dat
    stir-ros bag play run1 --rate 0.5 --clock --loop
    stir-ros bag record run2 /spikes /image --duration 10 --ros-args -p use_sim_time:=true

Warnings about damaged input go to stderr; a command whose input was damaged still writes
everything it could read and then exits with status 1.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from stir_ros.bag.jobs import add_job_arguments
from stir_ros.core import defaults
from stir_ros.core.errors import ConfigError
from stir_ros.core.imaging import IMAGE_ENCODINGS
from stir_ros.core.packing import ENCODINGS as PAYLOAD_ENCODINGS
from stir_ros.core.text_output import printable
from stir_ros.engine import BACKENDS, COMPILE_MODES, METHODS, PRECISIONS, add_dark_weights_argument

__all__ = ["add_arguments", "run"]

SPIKES_TOPIC = "/" + defaults.SPIKES_TOPIC


def _spikes_topic_arg(p: argparse.ArgumentParser, default: str | None, help_text: str) -> None:
    """``--spikes-topic`` (the launch argument spikes_topic); ``--spike-topic`` is kept, hidden."""
    p.add_argument("--spikes-topic", dest="spikes_topic", default=default, help=help_text)
    p.add_argument("--spike-topic", dest="spikes_topic", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def _storage_arg(p: argparse.ArgumentParser, default: str | None) -> None:
    p.add_argument("--storage", choices=("sqlite3", "mcap"), default=default,
                   help="storage of the output bag" + (f" (default {default})" if default else " (default: the input's)"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``bag`` sub-commands to ``parser``."""
    sub = parser.add_subparsers(dest="bag_command", metavar="BAG_COMMAND", required=True)

    p = sub.add_parser("info", help="topics, types, counts and time range of a bag")
    p.add_argument("bag", help="bag directory, .db3 or .mcap file")
    p.set_defaults(_bag_run=_run_info)

    p = sub.add_parser("reconstruct", help="reconstruct images from the spike stream of a bag",
                       description="Offline reconstruction: the same images as the live spike_reconstructor.")
    p.add_argument("input", nargs="+", help="input bag with SpikePackets; or several, folders of bags or globs, "
                   "then OUTPUT is a folder with one output per input, named after the input bag")
    p.add_argument("output", help="output bag (or folder with --to-folder)")
    p.add_argument("--method", choices=METHODS, default="stir")
    p.add_argument("--weights", default=None, help="STIR checkpoint (default: the shipped one)")
    p.add_argument("--window-length", type=int, default=0,
                   help="frames per window; 0 = the checkpoint's (stir) or 41 (tfp/tfi)")
    p.add_argument("--stride-frames", type=int, default=20, help="frames between images (default 20)")
    p.add_argument("--output-rate-hz", type=float, default=0.0,
                   help="if > 0, overrides --stride-frames: stride = round(frame rate / this)")
    p.add_argument("--alpha", type=float, default=defaults.ALPHA, help=f"sensor alpha (default {defaults.ALPHA:g})")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="stir precision; auto (default): bf16 with OpenVINO on a CPU with native bf16, else fp32 "
                        "(README, 'Fast by default')")
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="stir inference: auto (default: OpenVINO on a CPU where installed, else torch), torch "
                        "(CPU/CUDA) or openvino (CPU, faster; see BENCHMARKS.md)")
    p.add_argument("--torch-compile", choices=COMPILE_MODES, default="none",
                   help="torch.compile mode of stir on the torch backend (the node's torch_compile; default none)")
    p.add_argument("--cuda-graphs", action="store_true", help="replay stir from captured CUDA graphs (CUDA only)")
    p.add_argument("--feature-reuse", action="store_true",
                   help="overlapping windows (stride < window) reuse the stir features of shared frames "
                        "(the node's feature_reuse; the same images)")
    p.add_argument("--max-batch", type=int, default=4, help="windows per forward pass (default 4)")
    add_dark_weights_argument(p)
    add_defect_arguments(p)
    _spikes_topic_arg(p, None, f"SpikePacket topic (default: {SPIKES_TOPIC} or the only SpikePacket topic)")
    p.add_argument("--image-topic", default="/image")
    p.add_argument("--camera-info-topic", default="/camera_info", help="empty for none")
    p.add_argument("--output-encoding", choices=tuple(IMAGE_ENCODINGS), default="mono8",
                   help="image encoding (the node's output_encoding; default mono8)")
    p.add_argument("--frame-id", default="", help="image frame (default: the packets')")
    _storage_arg(p, None)
    p.add_argument("--keep-topics", nargs="*", default=None, metavar="TOPIC",
                   help="copy other topics of the input: the named ones, or all if none is named")
    p.add_argument("--to-folder", action="store_true", help="write PNGs <index>_<stamp ns>.png into OUTPUT")
    p.add_argument("--video", default=None, help="also write a video: .gif/.apng (Pillow) or .mp4 etc. (ffmpeg)")
    p.add_argument("--video-fps", type=float, default=30.0)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_job_arguments(p)
    p.set_defaults(_bag_run=_run_reconstruct)

    p = sub.add_parser("from-dat", help="convert a Vidar .dat file into a bag of SpikePackets")
    p.add_argument("dat", nargs="+", help=".dat file; or several, folders of them or globs, then OUTPUT is a folder "
                   "with one bag per file, named after the file")
    p.add_argument("output")
    p.add_argument("--height", type=int, required=True)
    p.add_argument("--width", type=int, required=True)
    p.add_argument("--frame-rate-hz", type=float, required=True)
    p.add_argument("--frames-per-packet", type=int, default=defaults.FRAMES_PER_PACKET)
    _spikes_topic_arg(p, SPIKES_TOPIC, f"SpikePacket topic (default {SPIKES_TOPIC})")
    p.add_argument("--topic", dest="spikes_topic", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    p.add_argument("--frame-id", default=defaults.FRAME_ID,
                   help=f"header.frame_id of the packets (default {defaults.FRAME_ID}, as the driver)")
    p.add_argument("--start-time", default=None,
                   help="header/bag time of frame 0 in seconds since the epoch (default: file time - duration)")
    p.add_argument("--encoding", choices=PAYLOAD_ENCODINGS, default=defaults.PAYLOAD_ENCODING,
                   help=f"payload encoding of the packets (the driver's encoding; default {defaults.PAYLOAD_ENCODING})")
    _storage_arg(p, "sqlite3")
    p.set_defaults(_bag_run=_run_from_dat)

    p = sub.add_parser("to-dat", help="write the SpikePackets of a bag as a Vidar .dat file")
    p.add_argument("input")
    p.add_argument("dat")
    _spikes_topic_arg(p, None, f"SpikePacket topic (default: {SPIKES_TOPIC} or the only SpikePacket topic)")
    p.add_argument("--no-fill-gaps", action="store_true", help="do not write empty frames for lost packets")
    p.set_defaults(_bag_run=_run_to_dat)

    p = sub.add_parser("play", help="publish a bag's messages at their recorded timing (rclpy)")
    p.add_argument("input")
    p.add_argument("--rate", type=float, default=1.0)
    p.add_argument("--loop", action="store_true")
    p.add_argument("--start-offset", type=float, default=0.0, help="seconds of the bag to skip")
    p.add_argument("--clock", nargs="?", type=float, const=40.0, default=0.0, metavar="HZ",
                   help="publish /clock (default 40 Hz) for use_sim_time")
    p.add_argument("--topics", nargs="+", default=None, help="only these topics")
    p.add_argument("--wait-for-subscribers", type=int, default=0, metavar="N",
                   help="before playing, wait until N subscribers match each SpikePacket topic and /clock "
                        "(every topic if there is no SpikePacket topic), as the driver's wait_for_subscribers")
    p.add_argument("--wait-for-subscribers-timeout-s", type=float, default=defaults.WAIT_FOR_SUBSCRIBERS_TIMEOUT_S,
                   metavar="SECONDS", help="give up waiting after SECONDS and play "
                   f"(default {defaults.WAIT_FOR_SUBSCRIBERS_TIMEOUT_S:g})")
    p.add_argument("--wait-for-subscribers-on", action="append", default=[], type=_topic_count, metavar="TOPIC[:N]",
                   help="before playing, also wait until TOPIC (an absolute name; repeatable) has N subscribers "
                        "(default 1), e.g. a reconstructor's image topic, so that its consumers get every image")
    p.add_argument("--delay", type=float, default=0.0, metavar="SECONDS", help="wait before playing")
    p.add_argument("--qos-depth", type=int, default=None,
                   help="publisher history depth (default: the recorded one, at least 1000)")
    p.set_defaults(_bag_run=_run_play)

    p = sub.add_parser("record", help="record live topics into a bag (rclpy)")
    p.add_argument("output")
    p.add_argument("topics", nargs="*")
    p.add_argument("-a", "--all", action="store_true", help="record every topic")
    _storage_arg(p, "sqlite3")
    p.add_argument("--duration", type=float, default=None, help="stop after SECONDS")
    p.add_argument("--max-messages", type=int, default=None, help="stop after N messages")
    p.add_argument("--qos-depth", type=int, default=1000, help="subscription history depth (default 1000)")
    p.set_defaults(_bag_run=_run_record)


def add_defect_arguments(p: argparse.ArgumentParser) -> None:
    """The node's defect-repair parameters as flags (``bag reconstruct``)."""
    from stir_ros.core.defects import DEFECT_CORRECTIONS

    p.add_argument("--defect-correction", choices=DEFECT_CORRECTIONS, default=defaults.DEFECT_CORRECTION,
                   help="hot/dead pixel repair: auto (estimated from the stream, plus --defect-map-url's), file, none "
                        f"(the node's defect_correction; default {defaults.DEFECT_CORRECTION})")
    p.add_argument("--defect-map-url", default="", help="defect map file of stir-ros calibrate-defects")
    p.add_argument("--defect-sample-period-frames", type=int, default=defaults.DEFECT_SAMPLE_PERIOD_FRAMES,
                   help=f"20 frames of every this many are counted (default {defaults.DEFECT_SAMPLE_PERIOD_FRAMES})")
    p.add_argument("--defect-hot-rate", type=float, default=defaults.DEFECT_HOT_RATE,
                   help=f"spikes per frame above which a pixel is hot (default {defaults.DEFECT_HOT_RATE:g})")


def run(args: argparse.Namespace) -> int:
    """Run the chosen ``bag`` sub-command; returns the exit status."""
    return int(args._bag_run(args))


def _warn(line: Any) -> None:
    print(f"warning: {printable(line)}", file=sys.stderr, flush=True)


def _report_damage(problems: list[Any]) -> int:
    from stir_ros.bag.model import DAMAGE_KINDS

    damage = [p for p in problems if p.kind in DAMAGE_KINDS]
    if damage:
        print(f"the input is damaged ({len(damage)} problem(s), listed above); everything readable was "
              "written", file=sys.stderr)
        return 1
    return 0


def _run_info(args: argparse.Namespace) -> int:
    from stir_ros.bag.reader import BagReader

    with BagReader(args.bag, on_problem=_warn) as bag:
        span = (bag.end_time - bag.start_time) / 1e9 if bag.message_count else 0.0
        print(f"bag:       {printable(bag.path)}")
        print(f"storage:   {printable(bag.storage_id or 'single file')}")
        print(f"messages:  {bag.message_count}")
        print(f"duration:  {span:.6f} s")
        print(f"start:     {bag.start_time} ns")
        print(f"end:       {bag.end_time} ns")
        print("topics:")
        for name, t in sorted(bag.topics.items()):
            print(f"  {printable(name)}  {printable(t.msgtype)}  count {t.message_count}  "
                  f"{printable(t.type_hash or '(no type hash)')}")
        return 1 if bag.problems else 0


def _run_reconstruct(args: argparse.Namespace) -> int:
    from stir_ros.bag.jobs import expand_inputs, run_job_command, wants_job
    from stir_ros.bag.reconstruct import ReconstructOptions, reconstruct_bag

    if args.to_folder and args.output_encoding == "32FC1":
        raise ConfigError("PNG files hold mono8 or mono16 images; choose --output-encoding mono8 or mono16")
    if args.weights:  # before the bag is opened: a bad file is one line, at once
        from stir_ros.models.checkpoint import check_weights_file

        check_weights_file(args.weights, args.window_length or None)
    opts = ReconstructOptions.from_args(args)
    inputs, many = expand_inputs(args.input)
    if wants_job(args, many):
        return run_job_command(args, opts, inputs, many, _warn)
    result = reconstruct_bag(
        inputs[0], None if args.to_folder else args.output, opts,
        to_folder=args.output if args.to_folder else None, video=args.video, video_fps=args.video_fps,
        on_problem=_warn, progress=not args.no_progress,
    )  # fmt: skip
    print(f"{result.images} images from {result.frames} frames "
          f"({result.packets} packets of {printable(result.spike_topic)}) "
          f"in {result.seconds:.2f} s: {result.images_per_second:.1f} images/s "
          f"({result.frames_per_second:.0f} input frames/s), {opts.method} on {result.device}"
          + (f" ({result.inference_path})" if result.inference_path else "")
          + f", window {result.window_length}, stride {opts.stride_frames}"
          + (f"; {result.kept_messages} messages of other topics kept" if result.kept_messages else ""),
          file=sys.stderr)
    return _report_damage(result.problems)


def _run_from_dat(args: argparse.Namespace) -> int:
    from stir_ros.bag.convert import dat_to_bag, parse_time_ns
    from stir_ros.bag.jobs import convert_each, expand_inputs, is_dat

    start = parse_time_ns(args.start_time) if args.start_time is not None else None

    def convert(dat: str, output: str) -> None:
        result = dat_to_bag(
            dat, output, args.height, args.width, args.frame_rate_hz,
            frames_per_packet=args.frames_per_packet, topic=args.spikes_topic, frame_id=args.frame_id, start_ns=start,
            storage=args.storage, encoding=args.encoding,
        )  # fmt: skip
        print(f"wrote {result.num_frames} frames in {result.num_packets} packets on {args.spikes_topic} to '{output}' "
              f"({args.storage}), starting at {result.start_ns} ns", file=sys.stderr)

    inputs, many = expand_inputs(args.dat, is_dat, ".dat files")
    if many:
        return convert_each(inputs, args.output, convert)
    convert(inputs[0], args.output)
    return 0


def _run_to_dat(args: argparse.Namespace) -> int:
    from stir_ros.bag.convert import bag_to_dat

    result = bag_to_dat(args.input, args.dat, topic=args.spikes_topic, fill_gaps=not args.no_fill_gaps,
                        on_problem=_warn)
    print(f"wrote {result.num_frames} frames of {result.height}x{result.width} at {result.frame_rate_hz:g} Hz "
          f"to '{args.dat}'" + (f" ({result.filled_frames} empty frames filled in for lost packets)"
                                 if result.filled_frames else ""), file=sys.stderr)
    return _report_damage(result.problems)


def _topic_count(text: str) -> tuple[str, int]:
    """``TOPIC[:N]`` of ``--wait-for-subscribers-on`` (ROS names have no ':')."""
    topic, colon, count = text.rpartition(":")
    if not colon:
        topic, count = text, "1"
    if not topic.startswith("/") or not count.isdigit():
        raise argparse.ArgumentTypeError(f"expected an absolute topic name and a count, TOPIC[:N], got {text!r}")
    return topic, int(count)


def _run_play(args: argparse.Namespace) -> int:
    from stir_ros.bag.play import play
    from stir_ros.runtime.dds_profile import apply_fastdds_profile

    print(apply_fastdds_profile().message, file=sys.stderr)  # before rclpy.init: large spike packets
    result = play(
        args.input, rate=args.rate, loop=args.loop, start_offset=args.start_offset, clock_hz=args.clock,
        topics=args.topics, wait_for_subscribers=args.wait_for_subscribers,
        wait_for_subscribers_timeout_s=args.wait_for_subscribers_timeout_s,
        wait_for_topics=dict(args.wait_for_subscribers_on), delay=args.delay,
        qos_depth=args.qos_depth, ros_args=args.ros_args,
    )  # fmt: skip
    return 130 if result.interrupted and not args.loop else _report_damage(result.problems)


def _run_record(args: argparse.Namespace) -> int:
    from stir_ros.bag.record import record

    record(
        args.output, args.topics, all_topics=args.all, storage=args.storage, duration=args.duration,
        max_messages=args.max_messages, qos_depth=args.qos_depth, ros_args=args.ros_args,
    )  # fmt: skip
    return 0
