# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Helpers shared by the benchmark scripts: what the hardware is, what a process costs.

The scripts are run as ``python bench/NAME.py``, which puts this folder on ``sys.path``.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import signal
import subprocess
from pathlib import Path

__all__ = ["authors_stir_class", "cpu_model", "cpu_seconds", "spikezoo_dir", "stop_processes"]


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or what ``platform`` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (from /proc), NaN if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError):
        return float("nan")


def stop_processes(procs: list[subprocess.Popen | None]) -> None:
    """SIGINT every child still running, wait for each, kill those that hang."""
    for p in procs:
        if p is not None and p.poll() is None:
            p.send_signal(signal.SIGINT)
    for p in procs:
        if p is not None:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)


def spikezoo_dir() -> Path | None:
    """Folder of the installed ``spikezoo`` package (the authors' STIR), found without importing it.

    Its ``__init__`` needs dependencies the benchmarks do not; ``archs/`` and ``data/`` are read
    from the folder. Works wherever spikezoo is on ``sys.path`` (a venv, ``pip --target``).
    """
    spec = importlib.util.find_spec("spikezoo")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def authors_stir_class() -> type:
    """The authors' ``STIR`` class from spikezoo's ``archs/stir`` (imported, never copied).

    Raises:
        ImportError: spikezoo is not installed.
    """
    import sys

    root = spikezoo_dir()
    if root is None:
        raise ImportError("spikezoo (the authors' STIR) is not installed: pip install --no-deps spikezoo==0.2.3.7")
    archs = str(root / "archs")
    if archs not in sys.path:
        sys.path.insert(0, archs)
    from stir.models.networks_STIR import STIR  # type: ignore[import-not-found]

    return STIR
