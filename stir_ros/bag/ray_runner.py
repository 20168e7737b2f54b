# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Where the shards of a job run: in this process, or as Ray tasks (the ``cluster`` extra).

Ray does the scheduling, the transport and the retries; this module only says what one task
needs (a GPU where the cluster has GPUs, else a CPU) and hands each result to the job as it comes
back. ``--workers N`` starts an embedded local Ray instance of N CPUs (nothing to start
beforehand; it ends with the job); ``--ray-address ADDR`` joins an existing cluster, whose nodes
must have stir_ros installed and see the input and output paths (a shared file system).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from stir_ros.core.errors import ConfigError

__all__ = ["INSTALL_RAY", "Runner", "LocalRunner", "RayRunner", "ray_missing", "make_runner"]

#: How to get Ray (setup.py's ``cluster`` extra, or its requirements file in a source checkout).
INSTALL_RAY = ("install the cluster extra: pip install 'stir_ros[cluster]', or in the stir_ros source tree "
               "pip install -r requirements/cluster.txt")

T = TypeVar("T")
R = TypeVar("R")
_OBJECT_STORE_BYTES = 128 * 1024**2  # shards send back counts, not images: a small store starts fast


def ray_missing() -> bool:
    """Whether Ray is not installed."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return True
    return False


class Runner:
    """Runs a function over items and hands each result back as it is ready."""

    name = "in-process"
    workers = 1

    def map(self, fn: Callable[[T], R], items: Iterable[T], on_done: Callable[[T, R | BaseException], None],
            *, gpu: bool = False) -> None:  # fmt: skip
        """Call ``fn(item)`` for every item; ``on_done(item, result or exception)`` in this thread."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the workers."""


class LocalRunner(Runner):
    """One item after the other in this process (no Ray, or ``--workers 1``)."""

    def map(self, fn: Callable[[T], R], items: Iterable[T], on_done: Callable[[T, R | BaseException], None],
            *, gpu: bool = False) -> None:  # fmt: skip
        for item in items:
            on_done(item, fn(item))


class RayRunner(Runner):
    """Ray tasks on a local embedded instance (``workers``) or on the cluster at ``address``."""

    name = "ray"

    def __init__(self, workers: int, address: str | None = None) -> None:
        import ray

        self._ray = ray
        if address:
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False,
                     object_store_memory=_OBJECT_STORE_BYTES, runtime_env={"env_vars": _worker_env()})
        resources = ray.cluster_resources()
        self.gpus = int(resources.get("GPU", 0))
        self.workers = self.gpus or int(resources.get("CPU", workers))
        self.address = address

    def map(self, fn: Callable[[T], R], items: Iterable[T], on_done: Callable[[T, R | BaseException], None],
            *, gpu: bool = False) -> None:  # fmt: skip
        ray = self._ray
        # One task per GPU where there are GPUs (Ray sets CUDA_VISIBLE_DEVICES for it), else per CPU.
        options: dict[str, Any] = {"num_gpus": 1, "num_cpus": 0} if gpu and self.gpus else {"num_cpus": 1}
        task = ray.remote(_apply).options(max_retries=1, **options)
        pending = {task.remote(fn, item): item for item in items}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                item = pending.pop(ref)
                try:
                    result: Any = ray.get(ref)
                except ray.exceptions.RayError as err:  # the task raised, or its worker died
                    result = err
                on_done(item, result)

    def close(self) -> None:
        self._ray.shutdown()


def _apply(fn: Callable[[T], R], item: T) -> R:
    """One task: ``fn`` may be any picklable callable (a function or an object with ``__call__``)."""
    return fn(item)


def _worker_env() -> dict[str, str]:
    """The environment of the local workers: this one's import path, one thread of torch and BLAS each."""
    env = {name: "1" for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    path = os.pathsep.join(p for p in (os.getcwd(), os.environ.get("PYTHONPATH", "")) if p)
    env["PYTHONPATH"] = path
    return env


def make_runner(workers: int, address: str | None, on_note: Callable[[str], None]) -> Runner:
    """The runner for ``--workers``/``--ray-address``: Ray where installed, else in-process with a note.

    Raises:
        ConfigError: ``--ray-address`` without Ray installed, or ``workers`` < 1.
    """
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    if address is None and workers == 1:
        return LocalRunner()
    if ray_missing():
        if address:
            raise ConfigError(f"--ray-address needs Ray, which is not installed: {INSTALL_RAY}")
        on_note(f"Ray is not installed: running the {workers} workers' shards one after the other in this process "
                f"({INSTALL_RAY})")
        return LocalRunner()
    return RayRunner(workers, address)
