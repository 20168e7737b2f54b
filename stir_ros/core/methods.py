# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The reconstruction methods: one entry per method, consulted by everything that branches on one.

The engine (:mod:`stir_ros.engine`), the inference worker and the offline batch path
(:mod:`stir_ros.core.batch_runner`), the reconstructor's settings and ``stir-ros eval`` read what
a method is from its :class:`ReconstructionMethod` here instead of comparing its name, so that a
new method is its implementation plus one entry in :data:`METHOD_TABLE`:

- a classical method: a function ``estimate(windows, alpha=...)`` that takes ``[B, T, H, W]``
  spikes as numpy or torch and returns the images divided by alpha (as
  :func:`stir_ros.core.classical.tfp`), and an entry naming it;
- a network: its model in :mod:`stir_ros.models` (registered with ``register_model``) and an
  entry with ``network`` set; the engine loads its checkpoint and runs it with torch.

Lives in the core (numpy) so that the core's worker and the layers above it can all consult it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from stir_ros.core import classical
from stir_ros.core.errors import ConfigError

__all__ = ["METHODS", "METHOD_TABLE", "STIR_WINDOW_LENGTHS", "ReconstructionMethod", "method_spec", "torch_free_methods"]

#: Window lengths the STIR network is built for (:data:`stir_ros.models.stir.BLOCK_SPLITS`).
STIR_WINDOW_LENGTHS = (41, 61)


@dataclass(frozen=True)
class ReconstructionMethod:
    """What the package needs to know of one reconstruction method.

    Attributes:
        name: The method's value of ``method`` (node parameter, ``--method``).
        network: For a learned method, its model's name in :mod:`stir_ros.models.registry`; it then
            needs torch and a weights file. ``None``: a classical method (``estimate``).
        estimate: Classical methods: ``estimate(windows, alpha=...)`` on ``[B, T, H, W]`` numpy or
            torch spikes, the images divided by alpha (unclipped). The engine has checked that the
            values are 0/1 (:func:`stir_ros.core.classical.check_spike_values`) before it calls it.
        window_lengths: The window lengths the method supports; empty: any.
        default_window_length: Frames per window when ``window_length`` is 0 (a network takes its
            checkpoint's instead).
        counts_packed: ``estimate`` takes a batch of bit-packed windows on the CPU
            (:class:`stir_ros.core.classical.PackedWindows`), so no window is unpacked.
        auto_device: What ``device: auto`` means: ``auto`` (CUDA when available) or ``cpu``.
        feature_reuse: Overlapping windows can share the network's block features
            (:class:`stir_ros.models.streaming.StreamingSTIR`).
    """

    name: str
    network: str | None = None
    estimate: Callable[..., Any] | None = None
    window_lengths: tuple[int, ...] = ()
    default_window_length: int = 41
    counts_packed: bool = False
    auto_device: str = "cpu"
    feature_reuse: bool = False

    @property
    def needs_weights(self) -> bool:
        """A learned method: it needs a weights file, and torch to run it."""
        return self.network is not None

    def check_window_length(self, window_length: int) -> None:
        """Raise :class:`ConfigError` for a window length (0: automatic) the method does not support."""
        if self.window_lengths and window_length not in (0, *self.window_lengths):
            supported = " or ".join(str(n) for n in self.window_lengths)
            raise ConfigError(f"{self.name.upper()} supports window_length {supported} (0 = the checkpoint's), "
                              f"got {window_length}")


#: Every method, in the order the tools list them.
METHOD_TABLE: dict[str, ReconstructionMethod] = {
    m.name: m
    for m in (
        # TFP/TFI are memory-bound sums: on the CPU unless asked, not worth a transfer.
        ReconstructionMethod("stir", network="stir", window_lengths=STIR_WINDOW_LENGTHS, auto_device="auto",
                             feature_reuse=True),
        # The engine has checked the windows' values (one pass per batch): not again per chunk.
        ReconstructionMethod("tfp", estimate=partial(classical.tfp, check_values=False), counts_packed=True),
        ReconstructionMethod("tfi", estimate=partial(classical.tfi, check_values=False)),
    )
}
#: The names of the methods (the choices of ``method`` / ``--method``).
METHODS = tuple(METHOD_TABLE)


def method_spec(name: str) -> ReconstructionMethod:
    """The entry of method ``name``; :class:`ConfigError` for a name that is not in the table."""
    spec = METHOD_TABLE.get(name) if isinstance(name, str) else None
    if spec is None:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {name!r}")
    return spec


def torch_free_methods() -> tuple[str, ...]:
    """The methods that run without torch (numpy on the CPU)."""
    return tuple(name for name, spec in METHOD_TABLE.items() if not spec.needs_weights)
