# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""``stir-ros run``: start the node graph of :func:`stir_ros.ros.graph.build_graph` without launch.

``ros2 launch`` needs ``launch_ros``, which is not installable everywhere; this starts the same
processes (the installed executables, with the same parameters and remappings) as child
processes, forwards SIGINT/SIGTERM to them and exits when they are done::

    stir-ros run [CONFIG.yaml] [--mode pipeline|reconstruct|replay] [NAME:=VALUE ...] [--ros-args ...]

``NAME:=VALUE`` are the launch arguments of the launch files (``method:=tfp``); anything after
``--ros-args`` is passed to every node (``-p``, ``-r``, ``--log-level``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from stir_ros.core.errors import ConfigError
from stir_ros.ros.graph import EXECUTABLE_MODULES, LAUNCH_ARGUMENTS, MODES, Graph, NodeSpec, build_graph

__all__ = ["add_arguments", "run", "node_command", "GraphRunner"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``stir-ros run``."""
    parser.add_argument(
        "items", nargs="*", metavar="[CONFIG.yaml] [NAME:=VALUE]",
        help="params YAML (default: config/pipeline.yaml or reconstructor.yaml) and launch arguments: "
        + ", ".join(LAUNCH_ARGUMENTS),
    )  # fmt: skip
    parser.add_argument("--mode", choices=MODES, default="pipeline", help="which graph (default: pipeline)")
    parser.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0: run until stopped)")
    parser.add_argument("--print", action="store_true", help="print the commands and exit")


def _executable(name: str) -> list[str]:
    """The command that runs executable ``name`` of this package.

    First ``lib/stir_ros/<name>`` of the install spaces on ``AMENT_PREFIX_PATH`` (where ``ros2 run``
    looks; a sourced ROS 2 workspace does not put it on ``PATH``), then ``PATH``, then
    ``python -m`` of its module.
    """
    for prefix in filter(None, os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)):
        candidate = Path(prefix) / "lib" / "stir_ros" / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return [str(candidate)]
    path = shutil.which(name)
    if path:
        return [path]
    if name in EXECUTABLE_MODULES:
        return [sys.executable, "-m", EXECUTABLE_MODULES[name]]
    raise ConfigError(f"executable {name!r} not found in lib/stir_ros of AMENT_PREFIX_PATH or on PATH")


def node_command(spec: NodeSpec, params_file: str, ros_args: Sequence[str] = ()) -> list[str]:
    """The command line of one node: name, namespace, params file, remappings, extra ROS args."""
    cmd = _executable(spec.executable) + ["--ros-args", "-r", f"__node:={spec.name}"]
    if spec.namespace:
        cmd += ["-r", f"__ns:=/{spec.namespace.strip('/')}"]
    cmd += ["--params-file", params_file]
    for src, dst in spec.remappings:
        cmd += ["-r", f"{src}:={dst}"]
    extra = list(ros_args)
    if extra and extra[0] == "--ros-args":
        extra = extra[1:]
    return cmd + extra


class GraphRunner:
    """Starts a :class:`Graph` as child processes and stops them together."""

    def __init__(self, graph: Graph, ros_args: Sequence[str] = (), workdir: str | None = None) -> None:
        self.graph = graph
        self.ros_args = list(ros_args)
        self._tmp = tempfile.TemporaryDirectory(prefix="stir_ros_run_") if workdir is None else None
        self.workdir = Path(workdir or self._tmp.name)  # type: ignore[union-attr]
        self.commands: list[tuple[str, list[str]]] = []
        for spec in graph.nodes:
            params = self.workdir / f"{spec.name}.params.yaml"
            params.write_text(spec.params_yaml())
            self.commands.append((spec.name, node_command(spec, str(params), self.ros_args)))
        for proc in graph.processes:
            self.commands.append((proc.name, _executable(proc.cmd[0]) + list(proc.cmd[1:])))
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []
        self._stop_requested = False

    def start(self) -> None:
        """Start every process (nodes first, then plain processes such as bag playback)."""
        for name, cmd in self.commands:
            # A session of their own: a terminal's Ctrl-C reaches only the runner, which forwards
            # it once, instead of every node getting it twice.
            child = subprocess.Popen(cmd, start_new_session=True, preexec_fn=_die_with_parent)  # noqa: PLW1509
            self.children.append((name, child))

    def request_stop(self, *_: object) -> None:
        """Ask :meth:`wait` to stop the children (signal-handler safe)."""
        self._stop_requested = True

    def wait(self, duration: float = 0.0) -> int:
        """Supervise until stopped, a child fails, all children end or ``duration`` passes.

        Returns:
            0, or the exit status of the first child that failed.
        """
        deadline = time.monotonic() + duration if duration > 0 else None
        status = 0
        while not self._stop_requested:
            if deadline is not None and time.monotonic() >= deadline:
                break
            codes = [(name, p.poll()) for name, p in self.children]
            failed = [(name, c) for name, c in codes if c not in (None, 0)]
            if failed:
                name, status = failed[0]
                print(f"stir-ros run: {name} exited with status {status}; stopping the graph", file=sys.stderr)
                break
            if all(c is not None for _, c in codes):
                break
            time.sleep(0.1)
        self.stop()
        return status

    def stop(self, timeout: float = 5.0) -> None:
        """SIGINT every running child, then SIGTERM and SIGKILL for those that do not exit."""
        for sig, wait_s in ((signal.SIGINT, timeout), (signal.SIGTERM, 2.0), (signal.SIGKILL, 2.0)):
            alive = [p for _, p in self.children if p.poll() is None]
            if not alive:
                break
            for p in alive:
                p.send_signal(sig)
            end = time.monotonic() + wait_s
            for p in alive:
                try:
                    p.wait(timeout=max(0.0, end - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def _die_with_parent() -> None:
    """In the child: get SIGTERM if the runner dies without stopping us (Linux only)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def parse_items(items: Sequence[str]) -> tuple[str | None, dict[str, str]]:
    """Split ``[CONFIG.yaml] [NAME:=VALUE ...]``."""
    config = None
    arguments: dict[str, str] = {}
    for item in items:
        if ":=" in item:
            name, value = item.split(":=", 1)
            arguments[name] = value
        elif config is None:
            config = item
        else:
            raise ConfigError(f"unexpected argument {item!r}: give one CONFIG.yaml and NAME:=VALUE launch arguments")
    return config, arguments


def run(args: argparse.Namespace) -> int:
    """Run ``stir-ros run``."""
    config, arguments = parse_items(args.items)
    graph = build_graph(args.mode, config, arguments)
    runner = GraphRunner(graph, getattr(args, "ros_args", []))
    if args.print:
        for _, cmd in runner.commands:
            print(" ".join(cmd))
        runner.stop()
        return 0
    previous = {sig: signal.signal(sig, lambda s, f: runner.request_stop()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        runner.start()
        print(f"stir-ros run: started {', '.join(n for n, _ in runner.commands)} ({graph.mode})", flush=True)
        return runner.wait(args.duration)
    finally:
        runner.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)

