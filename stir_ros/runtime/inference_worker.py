# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The reconstructor's inference worker: a thread, a bounded queue of windows and its timing.

The thread that receives packets cuts windows (:mod:`stir_ros.core.stream_processor`) and
:meth:`InferenceWorker.submit` queues them; it never waits for inference. The queue holds at most
``queue_size`` windows and drops the oldest when full (counted in :attr:`~InferenceWorker.windows_dropped`).
The worker thread takes batches of windows of one size, reconstructs them with the engine and
hands each image to a ``publish`` callback, timing it (latency from the packet that completed
the window, age of the image's stamp). Nothing that goes wrong in one batch, or in reporting it,
ends the thread.

With ``threads`` above one (the node's ``inference_streams``), as many threads take windows from
the one queue, never more at once than the engine's ``streams``. A publisher thread hands the
images out in the order their windows were taken (a window finished early waits for the one
before it) and, while ``even_spacing()`` holds (``rate_policy: even``), holds each image until a
fixed delay after its window was complete (:data:`HOLD_QUANTILE` of the recent delays until an
image was ready): the windows come on the stretched stride's grid, so the images leave evenly
spaced although each takes its own time to compute.

The worker thread lowers its own scheduling priority by ``niceness`` (Linux, where a thread has
its own nice value): when TFP or STIR saturates a core, the thread that receives the spikes still
gets the CPU, and windows are dropped (counted) instead of packets (issue 14).

ROS-free and torch-free: the engine is anything with the few attributes
:class:`~stir_ros.core.batch_runner.Engine` names
(:class:`stir_ros.engine.ReconstructionEngine`), and what ROS does (publishing, logging, the
clock) comes in as callbacks.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from stir_ros.core.errors import StirRosError
from stir_ros.core.limits import batch_limit
from stir_ros.core.batch_runner import Engine, batch_input, run_batch, take_batch
from stir_ros.core.stream import Window, WindowCutter
from stir_ros.runtime.rate_policy import quantile

__all__ = [
    "HOLD_QUANTILE", "HOLD_SAMPLES", "Engine", "InferenceWorker", "Pending", "SpacingHold", "lower_thread_priority",
    "thread_niceness",
]  # fmt: skip

#: Even spacing: each image is published this quantile of the recent delays (window complete -> image
#: ready) after its window was complete; the few later than that are published when ready.
HOLD_QUANTILE = 0.95
#: Delays kept for that quantile, and how many are needed before any image is held.
HOLD_SAMPLES, HOLD_MIN_SAMPLES = 40, 5
#: The hold rises at once, and falls by at most this fraction of the spacing of the windows per
#: image: each change of the hold moves one image's spacing by as much, so it comes down in steps
#: well within +-10 % (a fall of more than a whole spacing, after a transient, is taken at once).
HOLD_RELEASE = 0.05


class SpacingHold:
    """How long after its window was complete an evenly spaced image is published.

    The :data:`HOLD_QUANTILE` of the last :data:`HOLD_SAMPLES` delays until an image was ready (0
    before :data:`HOLD_MIN_SAMPLES`); it rises with them at once (the image that raised it is late
    anyway) and falls by at most :data:`HOLD_RELEASE` of the windows' spacing per image, or at once
    by more than a whole spacing (a queue that built up and cleared). Pure Python, one thread.
    """

    def __init__(self) -> None:
        self.delays: deque[float] = deque(maxlen=HOLD_SAMPLES)
        self.seconds = 0.0
        self._last: float | None = None  # the previous image's window complete (time.monotonic())

    def ready(self, delay: float) -> None:
        """An image was ready ``delay`` seconds after its window was complete."""
        self.delays.append(delay)

    def next(self, complete: float) -> float:
        """The hold of the next image to publish (seconds), whose window was complete at ``complete``."""
        spacing = complete - self._last if self._last is not None else 0.0
        self._last = complete
        if len(self.delays) < HOLD_MIN_SAMPLES:
            return 0.0
        target = quantile(self.delays, HOLD_QUANTILE)
        if target >= self.seconds or spacing <= 0 or self.seconds - target > spacing:
            self.seconds = target
        else:
            self.seconds = max(target, self.seconds - HOLD_RELEASE * spacing)
        return self.seconds



@dataclass
class Pending:
    """A window waiting for inference."""

    window: Window
    received: float  # time.monotonic() when the packet that completed the window arrived
    frame_id: str


def thread_niceness(tid: int | None = None) -> int | None:
    """The nice value of thread ``tid`` (default: the calling thread), or None where unsupported."""
    if not hasattr(os, "getpriority") or not sys.platform.startswith("linux"):
        return None
    try:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id() if tid is None else tid)
    except OSError:
        return None


def lower_thread_priority(increment: int, debug: Callable[[str], Any] | None = None) -> int | None:
    """Add ``increment`` to the calling thread's nice value (capped at 19); returns the new value.

    On Linux ``setpriority(PRIO_PROCESS, tid)`` applies to that thread only. Elsewhere (where the
    call would renice the whole process) and where it is refused, nothing changes: ``debug`` is
    told why and None returned. ``increment`` 0 changes nothing (None).
    """
    if increment <= 0:
        return None
    if not sys.platform.startswith("linux") or not hasattr(os, "setpriority"):
        if debug is not None:
            debug(f"worker_niceness {increment}: per-thread priority is not supported on {sys.platform}; skipped")
        return None
    tid = threading.get_native_id()
    try:
        current = os.getpriority(os.PRIO_PROCESS, tid)
        target = min(19, current + increment)
        os.setpriority(os.PRIO_PROCESS, tid, target)
    except OSError as err:
        if debug is not None:
            debug(f"worker_niceness {increment}: could not lower the inference thread's priority ({err}); skipped")
        return None
    if debug is not None:
        debug(f"inference thread {tid}: niceness {current} -> {target} (worker_niceness {increment})")
    return target


def _ignore(*_: Any) -> None:
    return None


class InferenceWorker:
    """A thread that reconstructs queued windows with an engine and hands out the images.

    Args:
        engine: The engine (replaced with :meth:`swap_engine`).
        publish: ``publish(pending, image) -> bool``: publish one image; False stops the batch
            (the node is stopping or inactive) and the image is not counted.
        prepare: ``prepare(engine, height, width)`` before each batch (warm-up at that size).
        on_warning: Each warning the engine reports after a batch.
        on_error: ``on_error(kind, message)`` for a failed batch (kind ``inference``).
        alive: False once the process is shutting down: an error then is not reported.
        clock_ns: The clock of the image stamps (ROS time), for the stamp age.
        niceness: What the thread adds to its nice value when it starts (:func:`lower_thread_priority`).
        debug: Debug log (why the niceness could not be set).
        errors: Counter of errors (``inference``, ``worker``), shared with the owner's.
        name: The thread's name.
        threads: Threads that reconstruct at once (each engine's ``streams`` caps how many do).
        even_spacing: Whether images are held to even spacing now (the node: ``rate_policy`` even).
    """

    def __init__(
        self,
        engine: Engine,
        publish: Callable[[Pending, np.ndarray], bool],
        *,
        prepare: Callable[[Any, int, int], Any] = _ignore,
        on_warning: Callable[[str], Any] = _ignore,
        on_error: Callable[[str, str], Any] = _ignore,
        alive: Callable[[], bool] = lambda: True,
        clock_ns: Callable[[], int] = time.time_ns,
        niceness: int = 0,
        debug: Callable[[str], Any] | None = None,
        errors: Counter[str] | None = None,
        name: str = "reconstruction",
        threads: int = 1,
        even_spacing: Callable[[], bool] = lambda: False,
    ) -> None:
        self.engine: Engine | None = engine  # None once released (the node's cleanup)
        self._publish, self._prepare, self._on_warning, self._on_error = publish, prepare, on_warning, on_error
        self._alive, self._clock_ns, self._debug = alive, clock_ns, debug
        self.niceness = niceness
        self.errors: Counter[str] = Counter() if errors is None else errors
        self.name = name
        #: Guards the queue, the engine and the counters below; an RLock underneath (re-entrant).
        self.lock = threading.Condition()
        self.queue: deque[Pending] = deque()
        self.running = False
        self.threads = max(1, int(threads))
        self.even_spacing = even_spacing
        self._busy = 0  # threads holding a batch
        self._taken = 0  # batches taken so far: each batch's turn to publish
        self._turn = 0  # the batch whose images the publisher hands out next
        #: Batches reconstructed (their images; None: failed or skipped), by turn, until published.
        self._finished: dict[int, tuple[Sequence[Pending], np.ndarray | None]] = {}
        self._publishing = False  # the publisher holds a batch
        self._held_limit = 4  # the latest queue_size: no window is taken while as many images wait to be published
        #: Seconds from a window complete (its last packet received) to its image ready -> the hold.
        self.hold = SpacingHold()
        self.windows_dropped = 0
        self.images_published = 0
        #: time.monotonic() of the oldest window queued since the last image (None: none waits).
        self.unserved_since: float | None = None
        self.latency_ms: deque[float] = deque(maxlen=2000)  # packet received -> image published
        #: Hears ``(seconds, windows)`` of each batch (decode and inference; the rate policy's measure).
        self.on_timing: Callable[[float, int], Any] = _ignore
        self.age_ms: deque[float] = deque(maxlen=2000)  # clock_ns() - image stamp, at publishing
        self.window_s: deque[float] = deque(maxlen=200)  # inference time per window, measured batch by batch
        self.thread_niceness: int | None = None  # what the last thread set (None: unchanged)
        self._threads: list[threading.Thread] = []
        self._publisher: threading.Thread | None = None
        self._preparing = threading.Lock()

    # ------------------------------------------------------------------ control (any thread)

    def start(self) -> None:
        """Start the threads (again, those that died: the queue and counters stay)."""
        alive = [t for t in self._threads if t.is_alive()]
        publisher = self._publisher if self._publisher is not None and self._publisher.is_alive() else None
        with self.lock:
            self.running = True
            if not alive and publisher is None:  # no batch is in hand: none holds a turn
                self._busy, self._turn, self._publishing = 0, self._taken, False
                self._finished.clear()
        while len(alive) < self.threads:
            name = self.name if not alive else f"{self.name}-{len(alive)}"
            thread = threading.Thread(target=self._run, name=name, daemon=True)
            thread.start()
            alive.append(thread)
        self._threads = alive
        if publisher is None:
            publisher = threading.Thread(target=self._publish_loop, name=f"{self.name}-publisher", daemon=True)
            publisher.start()
        self._publisher = publisher

    @property
    def alive(self) -> bool:
        """Whether every thread runs (those that reconstruct and the one that publishes)."""
        threads = [*self._threads, *([self._publisher] if self._publisher is not None else [])]
        return bool(self._threads) and all(t.is_alive() for t in threads)

    @property
    def thread(self) -> threading.Thread | None:
        """The first thread."""
        return self._threads[0] if self._threads else None

    @property
    def busy(self) -> bool:
        """A thread holds a batch."""
        return self._busy > 0

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the threads (each finishes the image it publishes, then returns)."""
        with self.lock:
            self.running = False
            self.lock.notify_all()
        deadline = time.monotonic() + timeout
        for thread in [*self._threads, *([self._publisher] if self._publisher is not None else [])]:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def submit(self, windows: Iterable[Window], received: float, frame_id: str, queue_size: int) -> int:
        """Queue windows, dropping the oldest beyond ``queue_size``; returns how many were dropped now."""
        dropped = 0
        with self.lock:
            self._held_limit = max(1, queue_size)
            for window in windows:
                while len(self.queue) >= queue_size:  # queue_size may have shrunk
                    self.queue.popleft()
                    dropped += 1
                self.queue.append(Pending(window, received, frame_id))
            self.windows_dropped += dropped
            if self.unserved_since is None:
                self.unserved_since = received
            self.lock.notify_all()  # threads waiting for a window and for their turn wait on one condition
        return dropped

    def drop_cause(self, window_period_s: float, queue_size: int) -> tuple[str, str]:
        """Why windows are being dropped, from what was measured: ``(kind, message)``.

        ``kind`` is ``"slow"`` when inference takes (median) at least 0.8 of the time between two
        windows of the stream, or nothing has been measured yet; ``"bursts"`` when it keeps up and
        the queue still overflowed: the windows came faster than their period, packets arriving
        in bursts after the stream stalled (a reliable DDS stream stalls, for example, when a
        publisher on the topic sends empty or malformed samples).
        """
        with self.lock:
            times = sorted(t / self.concurrency() for t in self.window_s)
            dropped = self.windows_dropped
        median = times[len(times) // 2] if times else None
        period_ms = window_period_s * 1e3
        if median is None or median >= 0.8 * window_period_s:
            measured = "not measured yet" if median is None else f"{median * 1e3:.1f} ms per window"
            return "slow", (
                f"inference is slower than the stream ({measured}, one window every {period_ms:.1f} ms): "
                f"{dropped} window(s) dropped so far (queue of {queue_size}); raise stride_frames or lower "
                "output_rate_hz"
            )
        return "bursts", (
            f"{dropped} window(s) dropped so far although inference keeps up ({median * 1e3:.1f} ms per window, one "
            f"window every {period_ms:.1f} ms): packets arrive in bursts, more windows at once than the queue of "
            f"{queue_size} holds; the stream stalls and catches up (a reliable stream stalls when, for example, a "
            "publisher on the topic sends empty or malformed samples): check the topic with `stir-ros perf`, or raise "
            "queue_size to ride out the bursts"
        )

    def clear(self) -> None:
        """Drop every queued window (not counted: nobody is owed their images)."""
        with self.lock:
            self.queue.clear()
            self.unserved_since = None

    def swap_engine(self, engine: Engine) -> None:
        """Use ``engine`` from the next batch on; windows queued for another engine are dropped."""
        with self.lock:
            if engine is not self.engine:
                self.queue.clear()
                self.unserved_since = None
                self.engine = engine

    def release_engine(self) -> None:
        """Let the engine (and its model) go: the worker must be stopped."""
        with self.lock:
            self.queue.clear()
            self.engine = None

    def idle(self) -> bool:
        """Nothing queued and no batch in hand."""
        with self.lock:
            return not self.queue and not self._busy and not self._finished and not self._publishing

    def concurrency(self) -> int:
        """Batches reconstructed at once: the threads, capped by the engine's ``streams``."""
        return max(1, min(self.threads, int(getattr(self.engine, "streams", 1) or 1)))

    def held_spike_bytes(self, cutter: WindowCutter | None) -> int:
        """Bytes of spike data held by queued windows and by ``cutter``, each payload once.

        A reconstructed window waiting to be published (held for even spacing, or behind a slower
        window) keeps its stamps and size but no longer its spikes.

        Compare with :func:`stir_ros.core.limits.reconstructor_memory_bound`.
        """
        with self.lock:
            chunks = {id(c): c for p in self.queue for c, _, _ in p.window._parts}
            if cutter is not None:
                chunks.update((id(c), c) for c in cutter._chunks)
        total = 0
        for c in chunks.values():
            data = c._payload if c._payload is not None else c._frames
            total += int(data.nbytes) if data is not None else 0
        return total

    # ------------------------------------------------------------------ the thread

    def _take_batch(self) -> tuple[Engine, list[Pending], int] | None:
        with self.lock:
            while self.running and (not self.queue or self._busy >= self.concurrency() or self._held() >= self._held_limit):
                self.lock.wait(timeout=0.5)
            if not self.running:
                return None
            engine = self.engine
            assert engine is not None, "a released worker was started"
            first = self.queue[0].window
            limit = batch_limit(engine.batch_size, first.length, first.height, first.width)
            if self.concurrency() > 1:
                limit = 1  # one window per stream: a batch would run on one stream's threads, the others idle
            batch = take_batch(self.queue, limit, lambda p: p.window)
            self._busy += 1
            self._taken += 1
            return engine, batch, self._taken - 1

    def _held(self) -> int:
        """Images reconstructed and waiting to be published (the lock held)."""
        return sum(len(batch) for batch, _ in self._finished.values())

    def _run(self) -> None:
        """A reconstructing thread: nothing that goes wrong in one batch, or in reporting it, ends it."""
        self.thread_niceness = lower_thread_priority(self.niceness, self._debug)
        while True:
            try:
                taken = self._take_batch()
                if taken is None:
                    return
                engine, batch, ticket = taken
                images = None
                try:
                    images = self._reconstruct(engine, batch)
                except Exception as err:  # noqa: BLE001 - keep the node alive; reported in diagnostics
                    if not self.running or not self._alive():
                        return  # shutting down: nothing to report
                    self._report_failure(err)
                finally:
                    for p in batch:  # publishing needs the stamps and size, not the spikes: let the payloads go
                        p.window = replace(p.window, _parts=(), repair=None)
                    with self.lock:  # the publisher takes it in its turn, images or none
                        self._finished[ticket] = (batch, images)
                        self._busy = max(0, self._busy - 1)
                        self.lock.notify_all()
            except Exception:  # noqa: BLE001, S112 - even the error handling failed: go on with the next batch
                self.errors["worker"] += 1
                time.sleep(0.01)  # never spin hot on a persistent failure

    def _report_failure(self, err: Exception) -> None:
        """A batch failed (its inference, or publishing its images): counted and reported, the thread goes on."""
        self.errors["inference"] += 1
        text = str(err) if isinstance(err, StirRosError) else repr(err)
        self._on_error("inference", f"reconstruction failed: {text}")

    def _reconstruct(self, engine: Engine, batch: Sequence[Pending]) -> np.ndarray | None:
        """The batch's images (None: cut for another window length, which the engine cannot take)."""
        first = batch[0].window
        if first.length != engine.window_length:  # cut before a window_length change
            with self.lock:
                if not self.queue:
                    self.unserved_since = None
            return None
        with self._preparing:  # the engine warms up one thread at a time
            self._prepare(engine, first.height, first.width)
        started = time.perf_counter()
        images = run_batch(engine, batch_input(engine, [p.window for p in batch]), self._on_warning)
        seconds = time.perf_counter() - started
        ready = time.monotonic()
        self.window_s.append(seconds / len(batch))
        # What the stream may be paced to: with c batches in flight, one finishes every 1/c of a batch's time.
        self.on_timing(seconds / self.concurrency(), len(batch))
        with self.lock:
            for p in batch:
                self.hold.ready(ready - p.received)
        return images

    def hold_s(self, complete: float) -> float:
        """The hold of the next evenly spaced image, whose window was complete at ``complete`` (0: too few measured)."""
        with self.lock:
            return self.hold.next(complete)

    def _publish_loop(self) -> None:
        """The publisher: each batch's images in the order the batches were taken."""
        while True:
            try:
                with self.lock:
                    while self.running and self._turn not in self._finished:
                        self.lock.wait(timeout=0.5)
                    if not self.running:
                        return
                    batch, images = self._finished.pop(self._turn)
                    self._turn += 1
                    self._publishing = True
                try:
                    if images is not None:
                        self._publish_batch(batch, images)
                except Exception as err:  # noqa: BLE001 - keep the node alive; reported in diagnostics
                    if not self.running or not self._alive():
                        return  # shutting down: a publish into a closed context is not an error
                    self._report_failure(err)
                finally:
                    with self.lock:
                        self._publishing = False
                        self.lock.notify_all()
            except Exception:  # noqa: BLE001, S112 - even the error handling failed: go on with the next batch
                self.errors["worker"] += 1
                time.sleep(0.01)

    def _wait_until(self, due: float) -> bool:
        """Wait until ``time.monotonic()`` reaches ``due``; False: stopping."""
        with self.lock:
            while self.running and (left := due - time.monotonic()) > 0:
                self.lock.wait(timeout=left)
            return self.running

    def _publish_batch(self, batch: Sequence[Pending], images: np.ndarray) -> None:
        for pending, img in zip(batch, images):
            if self.even_spacing() and not self._wait_until(pending.received + self.hold_s(pending.received)):
                return
            if not self.running or not self._publish(pending, img):
                return  # stopping or deactivated: publishers are about to go or must be quiet
            self.latency_ms.append((time.monotonic() - pending.received) * 1e3)
            self.age_ms.append((self._clock_ns() - pending.window.centre_stamp_ns) / 1e6)
            self.images_published += 1
        with self.lock:
            self.unserved_since = time.monotonic() if self.queue else None
