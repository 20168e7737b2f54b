# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Play a bag's messages on live topics with rclpy, at their recorded timing.

The bytes in the bag are published as they are (``Publisher.publish`` of serialized CDR), so
nothing is deserialized on the way and every message goes out exactly as it was recorded. A
reader thread keeps a bounded read-ahead queue filled; the main thread sleeps until each
message's time, ``(bag time - first bag time) / rate`` after the start, and publishes it.

With ``clock_hz`` > 0 the bag time is also published on ``/clock`` (``rosgraph_msgs/Clock``,
before the first message and then at that rate), so that nodes started with
``use_sim_time:=true`` run on the bag's clock.

Only this module and :mod:`stir_ros.bag.record` need rclpy; it is imported when :func:`play`
runs.
"""

from __future__ import annotations

import importlib
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from stir_ros.bag.model import BagMessage, BagProblem
from stir_ros.bag.reader import BagReader
from stir_ros.runtime.signals import install_stop_handlers
from stir_ros.bag.types import CLOCK, SPIKE_PACKET
from stir_ros.core.defaults import WAIT_FOR_SUBSCRIBERS_TIMEOUT_S
from stir_ros.core.errors import BagError, ConfigError, ros_arguments_checked
from stir_ros.core.text_output import printable

__all__ = ["PlayResult", "play", "message_class", "progress_log", "ros_init_args", "ros_node"]

_END = object()


@dataclass
class PlayResult:
    """What :func:`play` published."""

    published: dict[str, int] = field(default_factory=dict)
    clock_messages: int = 0
    loops: int = 0
    skipped_topics: dict[str, str] = field(default_factory=dict)
    problems: list[BagProblem] = field(default_factory=list)
    interrupted: bool = False


def message_class(msgtype: str) -> Any:
    """The generated Python class of ``pkg/msg/Name`` (imports ``pkg.msg``).

    Raises:
        BagError: If the package's Python messages are not installed.
    """
    package, _, name = msgtype.partition("/msg/")
    if not name:
        package, _, name = msgtype.partition("/")
    try:
        return getattr(importlib.import_module(f"{package}.msg"), name)
    except (ImportError, AttributeError) as err:
        raise BagError(f"the Python messages of {msgtype} are not installed ({err})") from err


def _qos_from_bag(profiles: Sequence[Any], depth: int | None) -> Any:
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
    from rosbags.interfaces import QosDurability, QosReliability

    reliable, transient, recorded_depth = True, False, 0
    if profiles:
        # As rosbag2 adapts: offer the strictest policy every recorded publisher offered.
        reliable = all(p.reliability == QosReliability.RELIABLE for p in profiles)
        transient = all(p.durability == QosDurability.TRANSIENT_LOCAL for p in profiles)
        recorded_depth = max(p.depth for p in profiles)
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        # Deep: a reliable subscriber that lags for a moment gets retransmissions instead of
        # losses (memory is only used while it lags).
        depth=depth or max(recorded_depth, 1000),
        reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if transient else DurabilityPolicy.VOLATILE,
    )


def play(
    bag_path: str | os.PathLike[str],
    *,
    rate: float = 1.0,
    loop: bool = False,
    start_offset: float = 0.0,
    clock_hz: float = 0.0,
    topics: Collection[str] | None = None,
    wait_for_subscribers: int = 0,
    wait_for_subscribers_timeout_s: float = WAIT_FOR_SUBSCRIBERS_TIMEOUT_S,
    wait_for_topics: Mapping[str, int] | None = None,
    delay: float = 0.0,
    qos_depth: int | None = None,
    read_ahead: int = 256,
    ros_args: Sequence[str] = (),
    stop: threading.Event | None = None,
    log: Callable[[str], None] | None = None,
) -> PlayResult:
    """Publish the messages of a bag at their recorded timing.

    Args:
        bag_path: The bag.
        rate: Playback speed factor (2 = twice as fast).
        loop: Start again at the end, until stopped.
        start_offset: Seconds of the bag to skip at the start.
        clock_hz: Publish ``/clock`` at this rate (0: no clock).
        topics: Topics to play (``None``: all).
        wait_for_subscribers: Before playing, wait until this many subscribers match each SpikePacket
            topic played and ``/clock`` (every topic if the bag has no SpikePacket topic), as the
            driver's parameter of the same name does.
        wait_for_topics: Before playing, also wait until each of these topics (absolute names) has at
            least this many subscribers on the graph: the consumers of what the played messages
            become, e.g. a reconstructor's images, so that a consumer started later gets them all.
        wait_for_subscribers_timeout_s: Give up waiting (for either) after this many seconds and play.
        delay: Seconds to wait (after the above) before the first message.
        qos_depth: Publisher history depth (default: the recorded one, at least 1000).
        read_ahead: Messages read ahead of their time.
        ros_args: ROS arguments (remappings, ``-p`` parameters) for the player node.
        stop: Set it to stop playing (SIGINT and SIGTERM set it too when run in the main thread).
        log: Called with progress lines (default: stderr).

    Raises:
        ConfigError: For invalid options. BagError: For an unreadable bag.
    """
    if not rate > 0:
        raise ConfigError(f"rate must be positive, got {rate}")
    if start_offset < 0:
        raise ConfigError(f"start offset must be >= 0 seconds, got {start_offset}")
    if clock_hz < 0:
        raise ConfigError(f"clock rate must be >= 0 Hz, got {clock_hz}")
    if wait_for_subscribers < 0:
        raise ConfigError(f"wait_for_subscribers is a number of subscribers, >= 0; got {wait_for_subscribers}")
    wait_for_topics = dict(wait_for_topics or {})
    for topic, count in wait_for_topics.items():
        if not topic.startswith("/") or count < 0:
            raise ConfigError(f"wait for subscribers on {topic!r}: expected an absolute topic name and a count >= 0, "
                              f"got {count}")
    from rclpy.duration import Duration
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    say = log or progress_log("play")
    stop = stop or threading.Event()
    result = PlayResult()

    with BagReader(bag_path, on_problem=result.problems.append) as bag:
        for p in bag.problems:
            say(f"warning: {p}")
        wanted = sorted(bag.topics) if topics is None else list(topics)
        missing = [t for t in wanted if t not in bag.topics]
        if missing:
            raise BagError(f"bag '{bag_path}' has no topic {', '.join(missing)}; it has {', '.join(sorted(bag.topics))}")
        classes = {}
        for t in wanted:
            try:
                classes[t] = message_class(bag.topics[t].msgtype)
            except BagError as err:
                result.skipped_topics[t] = str(err)
                say(f"warning: topic {t} not played: {err}")
        if not classes:
            raise BagError(f"none of the topics of bag '{bag_path}' can be played here")
        t_first = bag.start_time + round(start_offset * 1e9)

        restore = install_stop_handlers(stop, result)  # only now: every way out from here restores them
        try:
            with ros_node("stir_ros_bag_player", ros_args) as node:
                pubs = {t: node.create_publisher(cls, t, _qos_from_bag(bag.topics[t].offered_qos_profiles, qos_depth))
                        for t, cls in classes.items()}
                clock_pub = None
                if clock_hz > 0:
                    clock_cls = message_class(CLOCK)
                    clock_pub = node.create_publisher(clock_cls, "/clock",
                                                      QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE))
                result.published = dict.fromkeys(pubs, 0)
                spike_pubs = {t: p for t, p in pubs.items() if bag.topics[t].msgtype == SPIKE_PACKET} or pubs
                needed = {t: (p.get_subscription_count, wait_for_subscribers)
                          for t, p in {**spike_pubs, **({"/clock": clock_pub} if clock_pub else {})}.items()}
                needed.update({t: (partial(node.count_subscribers, t), n) for t, n in wait_for_topics.items()})
                _wait_for_subscribers(needed, wait_for_subscribers_timeout_s, stop, say)
                _sleep_until(time.monotonic() + delay, stop)
                say(f"playing {', '.join(pubs)} from '{bag_path}' at rate {rate}" + (" (loop)" if loop else ""))
                while not stop.is_set():
                    _play_once(bag, pubs, clock_pub, t_first, rate, clock_hz, read_ahead, stop, result)
                    result.loops += 1
                    if not loop:
                        break
                for pub in pubs.values():
                    pub.wait_for_all_acked(Duration(seconds=5))
                say("published " + ", ".join(f"{n} on {t}" for t, n in result.published.items())
                    + (f", {result.clock_messages} on /clock" if clock_pub is not None else ""))
        finally:
            restore()
    return result



def ros_init_args(ros_args: Sequence[str]) -> list[str] | None:
    """``rclpy.init`` arguments from what followed ``--ros-args`` on the command line."""
    if not ros_args:
        return None
    args = list(ros_args)
    return ["stir-ros", *(args if args[0] == "--ros-args" else ["--ros-args", *args])]


@contextmanager
def ros_node(name: str, ros_args: Sequence[str]) -> Iterator[Any]:
    """The rclpy node of a bag tool (``play``, ``record``): destroyed, and rclpy shut down, on the way out.

    rclpy starts with ``ros_args`` and without its signal handlers: SIGINT and SIGTERM set the
    tool's stop event instead (:func:`~stir_ros.runtime.signals.install_stop_handlers`), so that
    it ends cleanly.
    """
    import rclpy
    from rclpy.signals import SignalHandlerOptions

    with ros_arguments_checked():
        rclpy.init(args=ros_init_args(ros_args), signal_handler_options=SignalHandlerOptions.NO)
    node = None
    try:
        node = rclpy.create_node(name)
        yield node
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()


def progress_log(tool: str) -> Callable[[str], None]:
    """A bag tool's default ``log``: each line on stderr as ``[tool] line``, made printable."""
    return lambda line: print(f"[{tool}] {printable(line)}", file=sys.stderr, flush=True)


def _wait_for_subscribers(needed: dict[str, tuple[Callable[[], int], int]], timeout: float,
                          stop: threading.Event, say: Callable[[str], None]) -> None:
    """Wait until every topic has its count of subscribers: ``{topic: (count_now, count_needed)}``."""
    needed = {t: (count_now, n) for t, (count_now, n) in needed.items() if n > 0}
    if not needed:
        return
    say("waiting for subscribers on " + ", ".join(f"{t} ({n})" for t, (_, n) in needed.items()))
    deadline = time.monotonic() + timeout
    while not stop.is_set():
        waiting = [f"{t} ({n})" for t, (count_now, n) in needed.items() if count_now() < n]
        if not waiting:
            # Our publishers matched the readers; give the readers a moment to match us too (as
            # the driver does), or the first messages can go before they listen.
            _sleep_until(time.monotonic() + 0.5, stop)
            return
        if time.monotonic() > deadline:
            say(f"warning: fewer subscribers than waited for on {', '.join(waiting)} after {timeout:g} s; "
                "playing anyway")
            return
        time.sleep(0.05)


def _sleep_until(deadline: float, stop: threading.Event) -> None:
    while not stop.is_set():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        stop.wait(min(left, 0.05))


def _reader(bag: BagReader, topics: list[str], t_first: int, out: queue.Queue[Any], done: threading.Event) -> None:
    def put(item: Any) -> bool:
        while not done.is_set():
            try:
                out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    try:
        for msg in bag.messages(topics):
            if msg.timestamp >= t_first and not put(msg):
                return
    except BaseException as err:  # noqa: BLE001 - handed to the publishing thread
        put(err)
        return
    put(_END)


def _play_once(bag: BagReader, pubs: dict[str, Any], clock_pub: Any, t_first: int, rate: float,
               clock_hz: float, read_ahead: int, stop: threading.Event, result: PlayResult) -> None:
    ahead: queue.Queue[Any] = queue.Queue(maxsize=max(1, read_ahead))
    done = threading.Event()
    thread = threading.Thread(target=_reader, args=(bag, list(pubs), t_first, ahead, done), daemon=True)
    thread.start()
    wall0 = time.monotonic()
    clock_period = 1.0 / clock_hz if clock_hz > 0 else 0.0
    next_clock = wall0

    def bag_now() -> int:
        return t_first + round((time.monotonic() - wall0) * rate * 1e9)

    def publish_clock(stamp: int) -> None:
        msg = clock_pub.msg_type()
        msg.clock.sec, msg.clock.nanosec = divmod(max(0, stamp), 1_000_000_000)
        clock_pub.publish(msg)
        result.clock_messages += 1

    if clock_pub is not None:
        publish_clock(t_first)
        next_clock = wall0 + clock_period
    try:
        while not stop.is_set():
            try:
                item = ahead.get(timeout=0.1)
            except queue.Empty:
                if clock_pub is not None and time.monotonic() >= next_clock:
                    publish_clock(bag_now())
                    next_clock += clock_period
                continue
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            msg: BagMessage = item
            due = wall0 + (msg.timestamp - t_first) / (rate * 1e9)
            # Sleep until the message is due, publishing the clock on its ticks meanwhile.
            while not stop.is_set():
                now = time.monotonic()
                if clock_pub is not None and now >= next_clock and next_clock <= due:
                    publish_clock(bag_now())
                    next_clock = max(next_clock + clock_period, now - clock_period)
                    continue
                wake = min(due, next_clock) if clock_pub is not None else due
                if now >= due:
                    break
                stop.wait(min(wake - now, 0.05))
            if stop.is_set():
                return
            pubs[msg.topic].publish(bytes(msg.data))
            result.published[msg.topic] += 1
    finally:
        done.set()
        thread.join(timeout=5)
