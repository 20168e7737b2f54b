# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Files planted in ``/dev/shm`` (writable by everyone) where the nodes look at start.

A FIFO under a Fast DDS lock file's name blocked ``open`` for ever: the node never started and
SIGINT/SIGTERM no longer stopped it. The node tests run the real executables in a private mount
namespace with a tmpfs of their own on ``/dev/shm`` (root and ``unshare`` needed; skipped
otherwise), so the machine's ``/dev/shm`` is never touched.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stir_ros.runtime.fastdds_shm import STALE_AFTER_S, remove_stale_segments

#: Planted, all old enough to count as stale: a FIFO lock (with a segment beside it), a lock and
#: a segment that are symbolic links to files elsewhere.
FIFO, LINKED = "fastrtps_0123456789abcdef", "fastrtps_1111111111111111"
_OLD = time.time() - 10 * STALE_AFTER_S


def _plant(shm: Path, victim: Path) -> None:
    os.mkfifo(shm / f"{FIFO}_el")
    (shm / FIFO).write_bytes(b"\0" * 64)
    (shm / f"{LINKED}_el").symlink_to(victim)
    (shm / LINKED).symlink_to(victim)
    for name in (f"{FIFO}_el", FIFO, f"{LINKED}_el", LINKED):
        os.utime(shm / name, (_OLD, _OLD), follow_symlinks=False)


def test_stale_segment_cleanup_neither_blocks_on_a_fifo_nor_follows_links(tmp_path):
    shm, victim = tmp_path / "shm", tmp_path / "victim"
    shm.mkdir()
    victim.write_bytes(b"keep")
    _plant(shm, victim)
    # In a child process: before the fix this open never returned.
    code = "import sys; from pathlib import Path; from stir_ros.runtime.fastdds_shm import remove_stale_segments as r; " \
           "print(r(Path(sys.argv[1])).removed)"  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code, str(shm)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and done.stdout.strip() == "()", done
    # Not regular files of this user: all left as they were, and so is what the links point to.
    assert sorted(os.listdir(shm)) == sorted([f"{FIFO}_el", FIFO, f"{LINKED}_el", LINKED])
    assert victim.read_bytes() == b"keep"
    assert remove_stale_segments(shm).removed == ()


_NODES = {
    "driver": ("spike_camera_driver", {"source": "sim", "height": 32, "width": 48, "frame_rate_hz": 400.0,
                                       "frames_per_packet": 20}, "publishing sim"),
    "reconstructor": ("spike_reconstructor", {"method": "tfp"}, "ready: method tfp"),
}  # fmt: skip


@pytest.mark.ros
@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("which", sorted(_NODES))
def test_node_starts_and_stops_with_a_fifo_and_links_planted_in_dev_shm(which, sig, ros_env, tmp_path):
    pytest.importorskip("rclpy")
    from ros_support import OutputProcess, ros_value

    exe, params, started = _NODES[which]
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep")
    plant = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); from pathlib import Path; " \
            f"import {Path(__file__).stem} as t; t._plant(Path('/dev/shm'), Path({str(victim)!r}))"  # fmt: skip
    args = " ".join(f"-p {k}:={ros_value(v)}" for k, v in params.items())
    script = (
        "set -e; mount -t tmpfs -o mode=1777 stir_test_shm /dev/shm; "
        f"{sys.executable} -c \"{plant}\"; ls -l /dev/shm; "
        f"exec {exe} --ros-args -r __ns:=/shm_{os.getpid()} {args}"
    )
    node = OutputProcess(["unshare", "-m", "--propagation", "private", "sh", "-c", script], ros_env)
    try:
        # started: its own line (from the constructor), then the profile's (after it): constructed.
        node.wait_for(started, "Fast DDS profile", timeout=60)
        # A bound for a hang, not a speed assertion: a node blocked in open() never exits at all.
        assert node.finish(timeout=30, sig=sig) == 0, node.output()
    finally:
        node.kill()
    assert victim.read_bytes() == b"keep"
