# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Every benchmark script still starts: ``python bench/X.py --help`` exits 0 and prints its usage.

The benchmarks are never run in CI (they time things), so nothing else notices when a module they
import from is renamed; ``bench_stir.py`` and ``bench_deploy.py`` once failed at import that way.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
SCRIPTS = sorted(BENCH.glob("bench_*.py"))


def test_the_benchmarks_are_found() -> None:
    assert len(SCRIPTS) >= 10, SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_benchmark_script_starts(script: Path) -> None:
    done = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=300,
                          cwd=BENCH)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage" in done.stdout.lower(), done.stdout[-2000:]
