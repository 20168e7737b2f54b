# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""``bag reconstruct`` of many recordings in one command: inputs, output names, the job and its summary.

Inputs are bags, folders of bags and globs (:func:`expand_inputs`). With one input bag the output
is the bag (or PNG folder) named; with several, a folder, a glob or a folder of bags it is a
folder that receives one output per input, named after the input: the bag folder's name, or a
single-file bag's name without ``.db3``/``.mcap`` (:func:`name_outputs`). No output may be or lie
inside an input.

The job (:func:`run_job`) plans each recording's shards (:mod:`stir_ros.bag.shards`), runs them
on a :class:`~stir_ros.bag.ray_runner.Runner`, merges the split recordings and records each
finished shard, so that a second run of the same command resumes. A recording that fails (an
unreadable input, for example) is reported with its reason and the others go on.
"""

from __future__ import annotations

import glob
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stir_ros.bag.model import DAMAGE_KINDS, BagProblem
from stir_ros.bag.ray_runner import Runner
from stir_ros.bag.reader import BagReader
from stir_ros.bag.reconstruct import ReconstructOptions
from stir_ros.bag.shards import (Manifest, RecordingPlan, ShardDone, ShardTask, clear_unfinished, merge_shards,
                                 plan_recording, remove_shard_folder, run_shard, shard_path, work_key)
from stir_ros.bag.window_range import WindowRange
from stir_ros.core.errors import ConfigError, StirRosError
from stir_ros.core.paths import check_output_apart, make_output_folder

__all__ = ["Recording", "JobSummary", "expand_inputs", "name_outputs", "run_job"]

BAG_SUFFIXES = (".db3", ".mcap")
_NAMED_BY_STEM = (*BAG_SUFFIXES, ".dat")
_GLOB_CHARS = "*?["


@dataclass(frozen=True)
class Recording:
    """One input of a job and the output made from it."""

    input: str
    output: str


def is_bag(path: str) -> bool:
    """A bag: a ``.db3``/``.mcap`` file, or a folder with ``metadata.yaml`` or such a file directly inside."""
    p = Path(path)
    if p.is_file():
        return p.suffix in BAG_SUFFIXES
    return p.is_dir() and ((p / "metadata.yaml").is_file() or any(c.suffix in BAG_SUFFIXES for c in p.iterdir()))


def is_dat(path: str) -> bool:
    """A Vidar ``.dat`` file."""
    return Path(path).is_file() and Path(path).suffix == ".dat"


def expand_inputs(args: Sequence[str], is_input: Callable[[str], bool] = is_bag,
                  what: str = "bag folders or .db3/.mcap files") -> tuple[list[str], bool]:  # fmt: skip
    """The inputs that ``args`` name, in order, and whether they are many (an output folder is needed).

    A folder that is not itself an input (a bag) stands for the inputs directly inside it, in
    name order; an argument with ``*``, ``?`` or ``[`` that names no file is a glob.

    Raises:
        ConfigError: A glob or folder without inputs.
    """
    found: list[str] = []
    many = len(args) > 1
    for arg in args:
        if not os.path.lexists(arg) and any(c in arg for c in _GLOB_CHARS):
            matches = sorted(m for m in glob.glob(arg) if is_input(m))
            if not matches:
                raise ConfigError(f"nothing matches '{arg}'; expected {what}")
            found += matches
            many = True
        elif os.path.isdir(arg) and not is_input(arg):
            inside = sorted(str(c) for c in Path(arg).iterdir() if is_input(str(c)))
            if not inside:
                raise ConfigError(f"folder '{arg}' holds none of the inputs expected: {what}")
            found += inside
            many = True
        else:
            found.append(arg)  # a bag, or a missing path that the reader reports
    return list(dict.fromkeys(found)), many


def bag_name(path: str) -> str:
    """The name of a bag: its folder's name, or a single file's (or a .dat's) name without the suffix."""
    p = Path(os.path.abspath(path))
    return p.stem if p.suffix in _NAMED_BY_STEM and not p.is_dir() else p.name


def name_outputs(inputs: Sequence[str], output: str, many: bool) -> list[Recording]:
    """One output per input: ``output`` itself for one input, else ``output/<bag name>``.

    Raises:
        ConfigError: Two inputs of one name, or an output (or its manifest or shards) that is or
            lies inside an input.
    """
    if not many:
        recordings = [Recording(inputs[0], output)]
    else:
        names: dict[str, str] = {}
        for path in inputs:
            name = bag_name(path)
            if name in names:
                raise ConfigError(f"inputs '{names[name]}' and '{path}' would both be written to "
                                  f"'{os.path.join(output, name)}'; give them different names")
            names[name] = path
        recordings = [Recording(path, os.path.join(output, name)) for name, path in names.items()]
        check_output_apart(output, inputs, what="output folder", folder=True)
    for rec in recordings:
        for made, what in ((rec.output, "output"), (f"{rec.output}.shards", "shard folder"),
                           (f"{rec.output}.manifest.json", "manifest")):
            check_output_apart(made, inputs, what=what, folder=True)
    return recordings


@dataclass
class JobSummary:
    """What a job did: images, time, and what failed, by input."""

    recordings: int = 0
    images: int = 0  # made by this run (not those of shards done earlier)
    cpu_seconds: float = 0.0  # of the workers' processes while they ran this run's shards
    shard_seconds: float = 0.0  # wall time of this run's shards, added up (/ seconds: shards at once)
    worker_processes: set[int] = field(default_factory=set)
    seconds: float = 0.0
    skipped: list[str] = field(default_factory=list)  # complete from an earlier run
    failures: dict[str, str] = field(default_factory=dict)  # input -> why
    runner: str = ""
    workers: int = 1

    @property
    def images_per_second(self) -> float:
        """Images made per second of the job's wall time."""
        return self.images / self.seconds if self.seconds > 0 else 0.0


@dataclass
class _Work:
    """One recording in the job."""

    rec: Recording
    manifest: Manifest
    plan: RecordingPlan | None = None
    seen: set[tuple[str, str, str]] = field(default_factory=set)
    damage: int = 0


def run_job(
    recordings: Sequence[Recording],
    opts: ReconstructOptions,
    runner: Runner,
    *,
    shard_windows: int = 0,
    to_folder: bool = False,
    progress: bool = True,
    on_note: Callable[[str], None] = print,
    on_problem: Callable[[str, BagProblem], None] | None = None,
) -> JobSummary:
    """Reconstruct every recording: plan, run the shards on ``runner``, merge, record.

    Args:
        recordings: Inputs and outputs (:func:`name_outputs`).
        opts: The settings of every recording.
        runner: Where the shards run.
        shard_windows: Windows per shard (0: each recording is one shard).
        to_folder: The outputs are PNG folders (only with ``shard_windows`` 0).
        progress: A progress bar over the job's shards on stderr.
        on_note: Called with each line about the job (a resumed recording, a removed leftover).
        on_problem: Called with an input and each problem met in it (each once).

    Returns:
        The summary; ``failures`` names every input that failed or was damaged, and why.
    """
    if to_folder and shard_windows:
        raise ConfigError("shards are merged into output bags: --shard-windows cannot write PNG folders")
    if shard_windows and opts.keep_topics is not None:
        raise ConfigError("shards merge the images only: --keep-topics needs --shard-windows 0")
    t0 = time.perf_counter()
    summary = JobSummary(recordings=len(recordings), runner=runner.name, workers=runner.workers)
    works: list[_Work] = []
    for rec in recordings:
        manifest = Manifest(rec.output, work_key(rec.input, opts, shard_windows))
        if manifest.complete and os.path.lexists(rec.output):
            summary.skipped.append(rec.input)
            on_note(f"{rec.output}: complete from an earlier run; skipped")
            continue
        if manifest.complete:  # recorded as complete, but the output has gone since: made again
            manifest.shards.clear()
        works.append(_Work(rec, manifest))

    def problem(work: _Work, p: BagProblem) -> None:
        key = (p.kind, p.where, p.detail)
        if key not in work.seen:
            work.seen.add(key)
            work.damage += p.kind in DAMAGE_KINDS
            if on_problem is not None:
                on_problem(work.rec.input, p)

    def fail(work: _Work, why: Any) -> None:
        summary.failures.setdefault(work.rec.input, str(why))

    def planned(work: _Work, plan: RecordingPlan | BaseException) -> None:
        if isinstance(plan, BaseException):
            fail(work, getattr(plan, "cause", None) or plan)
            return
        work.plan = plan
        for p in plan.problems:
            problem(work, p)

    if shard_windows > 0:  # a pass over each recording, on the workers too
        runner.map(_planner(opts, shard_windows), works, planned)
    else:
        for work in works:
            work.plan = RecordingPlan([WindowRange()])
    tasks = _tasks(works, opts, to_folder, fail, on_note)
    bar = _bar(len(tasks), progress)
    by_recording = {w.rec.input: w for w in works}

    def finished(task: ShardTask, done: ShardDone | BaseException) -> None:
        work = by_recording[task.input]
        if isinstance(done, BaseException):
            fail(work, getattr(done, "cause", None) or done)
        else:
            for p in done.problems:
                problem(work, p)
            if done.error:
                fail(work, done.error)
            else:
                work.manifest.record(done)
                summary.images += done.images
                summary.cpu_seconds += done.cpu_seconds
                summary.shard_seconds += done.span_s[1] - done.span_s[0]
                summary.worker_processes.add(done.worker)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(images=summary.images, images_per_s=f"{summary.images / (time.perf_counter() - t0):.1f}")

    try:
        runner.map(run_shard, tasks, finished, gpu=opts.device != "cpu")
    finally:
        if bar is not None:
            bar.close()

    def merged(work: _Work, why: str | BaseException) -> None:
        if why:
            fail(work, getattr(why, "cause", None) or why)
        else:
            work.manifest.save(complete=True)

    # On the workers too: the recordings of a job merge at the same time.
    runner.map(_merger(opts), [w for w in works if w.plan and len(w.manifest.shards) >= len(w.plan.spans)], merged)
    for work in works:
        if work.damage and work.rec.input not in summary.failures:
            fail(work, f"damaged input ({work.damage} problem(s)); everything readable was written")
    summary.seconds = time.perf_counter() - t0
    return summary


class _planner:
    """``plan_recording`` of one work item (a picklable callable for the runner)."""

    def __init__(self, opts: ReconstructOptions, shard_windows: int) -> None:
        self.opts, self.shard_windows = opts, shard_windows

    def __call__(self, work: _Work) -> RecordingPlan | BaseException:
        try:
            return plan_recording(work.rec.input, self.opts, self.shard_windows)
        except StirRosError as err:
            return err


def _tasks(works: list[_Work], opts: ReconstructOptions, to_folder: bool, fail: Callable[[_Work, Any], None],
           on_note: Callable[[str], None]) -> list[ShardTask]:  # fmt: skip
    """The shards still to run, after what an interrupted run left unfinished is removed."""
    tasks: list[ShardTask] = []
    for number, work in enumerate(works):
        if work.plan is None:
            continue
        spans = work.plan.spans
        out = work.rec.output
        try:
            clear_unfinished(out, work.manifest, len(spans), on_note)
            if len(spans) > 1:
                make_output_folder(f"{out}.shards", "shard folder")
            if os.path.dirname(out):
                make_output_folder(os.path.dirname(out))
        except (StirRosError, OSError) as err:
            fail(work, err)
            work.plan = None
            continue
        if work.manifest.shards:
            on_note(f"{out}: resuming, {len(work.manifest.shards)} of {len(spans)} shard(s) done earlier")
        elif not work.manifest.resumed:
            work.manifest.save()  # from now on a re-run knows the outputs are this work's
        for index, span in enumerate(spans):
            if index in work.manifest.shards:
                continue
            target = out if len(spans) == 1 else shard_path(out, index)
            tasks.append(ShardTask(number, index, work.rec.input, target, opts, span, to_folder))
    return tasks


class _merger:
    """Merge a split recording whose shards are all done (a picklable callable; ``""``: done, else why not)."""

    def __init__(self, opts: ReconstructOptions) -> None:
        self.opts = opts

    def __call__(self, work: _Work) -> str:
        assert work.plan is not None
        spans = len(work.plan.spans)
        if spans == 1:  # written in place by its only shard
            return ""
        out = work.rec.output
        shards = [shard_path(out, i) for i in range(spans)]
        try:
            with BagReader(shards[0]) as first:
                storage = first.storage_id or "sqlite3"
            events = dict(work.manifest.shards[spans - 1].get("stream_events", {}))
            merge_shards(out, shards, self.opts, storage, events)
        except StirRosError as err:
            return str(err)
        remove_shard_folder(out)
        return ""


def _bar(total: int, progress: bool) -> Any:
    if not progress or total == 0:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="shard", dynamic_ncols=True, file=sys.stderr, desc="reconstruct")


# -- the command line ---------------------------------------------------------------------


def add_job_arguments(p: Any) -> None:
    """``bag reconstruct``'s options for many recordings, shards and workers."""
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="run the shards on N workers of a local Ray instance (one per GPU where there are GPUs); "
                        "without Ray installed, one after the other in this process")
    p.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="run the shards on the Ray cluster at ADDR (auto, or HOST:PORT); its nodes need stir_ros and "
                        "the input and output paths")
    p.add_argument("--shard-windows", type=int, default=0, metavar="N",
                   help="split each recording into shards of N windows (a multiple of --max-batch), merged into the "
                        "bag one run writes; 0 (default): one shard per recording")


def wants_job(args: Any, many: bool) -> bool:
    """Whether ``bag reconstruct`` runs as a job (many inputs, workers or shards)."""
    return many or args.workers is not None or bool(args.ray_address) or args.shard_windows != 0


def run_job_command(args: Any, opts: ReconstructOptions, inputs: list[str], many: bool,
                    warn: Callable[[str], None]) -> int:  # fmt: skip
    """``bag reconstruct`` as a job: prints the summary; returns the exit status (1 if any input failed)."""
    from stir_ros.bag.ray_runner import make_runner

    if args.video:
        raise ConfigError("--video needs one input and one process: leave out --workers, --ray-address and "
                          "--shard-windows")
    if args.shard_windows < 0:
        raise ConfigError(f"--shard-windows must be >= 0 (0: one shard per recording), got {args.shard_windows}")
    shard_windows = -(-args.shard_windows // opts.max_batch) * opts.max_batch  # whole batches, as one run has
    recordings = name_outputs(inputs, args.output, many)
    runner = make_runner(args.workers or 1, args.ray_address, warn)
    try:
        summary = run_job(recordings, opts, runner, shard_windows=shard_windows, to_folder=args.to_folder,
                          progress=not args.no_progress, on_note=warn,
                          on_problem=lambda path, p: warn(f"{path}: {p}"))
    finally:
        runner.close()
    print(f"{summary.images} images from {summary.recordings} recording(s) in {summary.seconds:.2f} s: "
          f"{summary.images_per_second:.1f} images/s, {opts.method}, {summary.workers} worker(s) "
          f"({summary.runner})" + (f"; {len(summary.skipped)} complete earlier" if summary.skipped else ""),
          file=sys.stderr)
    return _report_failures(summary.failures)


def _report_failures(failures: dict[str, str]) -> int:
    """One ``failed: INPUT: why`` line per input; the exit status (1 if any failed)."""
    from stir_ros.core.text_output import printable

    for path, why in failures.items():
        print(f"failed: {printable(path)}: {printable(why)}", file=sys.stderr)
    return 1 if failures else 0


def convert_each(inputs: list[str], output: str, convert: Callable[[str, str], None], progress: bool = True) -> int:
    """``convert(input, OUTPUT/<name>)`` for each input (``bag from-dat`` of many files); returns the exit status.

    An input that fails is reported (one line) and the others go on.
    """
    from tqdm import tqdm

    recordings = name_outputs(inputs, output, many=True)
    make_output_folder(output)
    failures: dict[str, str] = {}
    t0 = time.perf_counter()
    for rec in tqdm(recordings, unit="file", file=sys.stderr, disable=not progress, desc="convert"):
        try:
            convert(rec.input, rec.output)
        except StirRosError as err:
            failures[rec.input] = str(err)
    print(f"{len(recordings) - len(failures)} of {len(recordings)} file(s) converted into '{output}' in "
          f"{time.perf_counter() - t0:.2f} s", file=sys.stderr)
    return _report_failures(failures)
