# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Shared-memory segments that Fast DDS leaves in ``/dev/shm`` when a process dies uncleanly.

Every Fast DDS participant with the shared-memory transport creates a segment file
``fastrtps_<16 characters>`` (16 MB with stir_ros's profile, ``config/fastdds_spike_stream.xml``)
and a lock file beside it, ``fastrtps_<16 characters>_el``, which it holds with ``flock`` for as
long as it lives. A process that exits cleanly removes both; one that is killed (SIGKILL, an
out-of-memory kill, a crash, a container stop) leaves them, and nothing else removes them: a
node restarted in a loop fills ``/dev/shm`` (64 MB in a default Docker container) until new
participants fail to start.

:func:`remove_stale_segments` removes a segment when nobody holds its lock any more and both
files are older than ``min_age_s`` (a process that is creating its segment right now has not
locked it yet for a moment; the age keeps such a segment safe). The segment names are random per
participant and never reused, so removing a dead one cannot take anything from a living process.
Fast DDS's port files (``fastrtps_port<N>``, 52 KB each, reused by port number) are left alone.

:func:`stir_ros.runtime.dds_profile.apply_fastdds_profile` calls it when a driver, reconstructor or
``stir-ros bag play`` process starts, before it creates its own participant, and its log line
says what was removed. The same rule as eProsima's ``fastdds shm clean`` tool, which also
removes ports.

``/dev/shm`` is writable by everyone, so anything in it may have been planted: a FIFO under a
lock file's name would block ``open`` for ever (and the signal handlers with it), a symbolic
link would lead the lock and the removal elsewhere. Files there are looked at with ``lstat``
and opened with ``O_NONBLOCK | O_NOFOLLOW``, their type checked on the open descriptor; only
regular files that belong to this process's user are touched, anything else is skipped.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import stat
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SHM_DIR", "STALE_AFTER_S", "StaleSegments", "open_shared_file", "remove_stale_segments"]

SHM_DIR = Path("/dev/shm")
#: A segment is removed only when both its files are at least this old (seconds).
STALE_AFTER_S = 30.0
_LOCK_NAME = re.compile(r"fastrtps_[0-9a-z]{16}_el")


@dataclass(frozen=True)
class StaleSegments:
    """What :func:`remove_stale_segments` did."""

    removed: tuple[str, ...] = ()  #: names of the segment files removed
    freed_bytes: int = 0  #: their total size
    in_use: int = 0  #: segments whose lock a living process holds
    directory: Path = SHM_DIR  #: where they were

    @property
    def message(self) -> str:
        """One line for a log, empty when nothing was removed."""
        if not self.removed:
            return ""
        size = f"{self.freed_bytes / 2**20:.1f} MB in {self.directory}"
        return f"removed {len(self.removed)} stale Fast DDS shared-memory segment(s) ({size}) left by processes that died"


def _own_regular(st: os.stat_result) -> bool:
    """A regular file of this process's user: the only kind of file touched in a shared directory."""
    return stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid()


def _age_s(path: Path, now: float) -> float:
    try:
        return now - path.lstat().st_mtime
    except FileNotFoundError:
        return float("inf")  # already gone: does not hold the pair back


def open_shared_file(path: Path) -> int | None:
    """A read-only descriptor of ``path`` in a shared directory, or ``None`` if it is not safe to use.

    Never blocks (a FIFO), never follows a link, and gives back only a regular file of this
    process's user (checked on the open descriptor, so nothing can be swapped in between).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if _own_regular(os.fstat(fd)):
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


def remove_stale_segments(shm_dir: Path = SHM_DIR, min_age_s: float = STALE_AFTER_S) -> StaleSegments:
    """Remove the Fast DDS segments in ``shm_dir`` whose owner is gone (see the module's text).

    Never raises for a file it cannot open, lock or remove (another user's, or one that went away
    meanwhile): that segment is skipped.
    """
    try:
        names = sorted(os.listdir(shm_dir))
    except OSError:
        return StaleSegments(directory=shm_dir)
    now = time.time()
    removed: list[str] = []
    freed = in_use = 0
    for name in names:
        if not _LOCK_NAME.fullmatch(name):
            continue
        lock, segment = shm_dir / name, shm_dir / name[: -len("_el")]
        if min(_age_s(lock, now), _age_s(segment, now)) < min_age_s:
            continue
        fd = open_shared_file(lock)
        if fd is None:  # gone, another user's, or not a regular file (a FIFO or a link planted there)
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    in_use += 1
                continue
            # Nobody holds it, and we do now: remove the segment first, then its lock.
            try:
                st = segment.lstat()
                if not _own_regular(st):
                    continue  # not a segment Fast DDS made for this user: left alone, and so is its lock
                size = st.st_size
                segment.unlink()
            except FileNotFoundError:
                size = 0
            except OSError:
                continue
            try:
                lock.unlink()
            except OSError:
                pass
            removed.append(segment.name)
            freed += size
        finally:
            os.close(fd)
    return StaleSegments(tuple(removed), freed, in_use, shm_dir)
