# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""STIR's second network: windows that hold dark-current spikes go to dark-robust weights.

One set of weights cannot be best on both sensors: training on dark-current spikes teaches the
network to distrust short intervals, which costs a few tenths of a dB on clean spikes, and the
weights that are best on clean spikes lose several dB to 40 Hz of dark current (MODEL_CARD.md).
So the engine keeps two: each window's dark events are counted from its own spikes
(:func:`stir_ros.core.dark_events.dark_event_rate`, a few ms), and a window above
:data:`~stir_ros.core.dark_events.DARK_EVENT_SWITCH` goes to the dark-robust network, the rest to
the main one. The decision is made per window from that window alone, so the node and
``stir-ros bag reconstruct`` send every window to the same network.

``dark_weights`` (:class:`stir_ros.engine.EngineConfig`): ``auto`` uses the shipped
``weights/stir_dark.pt`` when ``weights`` is the shipped default (a user's own weights run alone),
``none`` turns the routing off, a path names any checkpoint of the same window length. The second
network is prepared (OpenVINO compile, bf16 cast) in the engine's warm-up, like the first: a dark
sensor's first window is not slow (a compile there once held ``rate_policy: even`` at a stretched
stride for seconds), at the price of a second compiled network in memory.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stir_ros.core.dark_events import DARK_EVENT_SWITCH, dark_event_rate
from stir_ros.core.errors import CheckpointError
from stir_ros.core.weights import dark_weights_path

__all__ = ["DarkRouting", "dark_routing"]


class DarkRouting:
    """The dark-robust network and which windows it gets.

    Attributes:
        model: The dark-robust network (fp32, as loaded).
        path: Its checkpoint.
        predictor: It, prepared by the engine (built on first use; reset when the device changes).
        windows: Windows sent to it so far.
        last_rate: Dark events per pixel-frame of the latest window scored (NaN before the first).
    """

    def __init__(self, model: torch.nn.Module, path: Path, prepare: Callable[[torch.nn.Module], Any]) -> None:
        self.model = model
        self.path = path
        self.predictor: Any = None
        self._prepare = prepare
        self._lock = threading.Lock()  # the engine's threads (inference_streams) prepare it once
        self.windows = 0
        self.last_rate = float("nan")

    def warmup(self, windows: np.ndarray, device: Any) -> None:
        """Prepare the network and run it once on ``windows`` (the engine's warm-up: compile, allocation)."""
        x = torch.as_tensor(windows).to(device)
        with torch.inference_mode():
            self._ready(x)(x)

    def _ready(self, x: torch.Tensor) -> Any:
        """The prepared network for ``x``'s device (prepared again after the engine moved device)."""
        with self._lock:
            if self.predictor is None or self.predictor.device.type != x.device.type:
                self.predictor = self._prepare(self.model)
            return self.predictor

    def run(self, windows: Any, x: torch.Tensor, main: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """The raw output ``[B, 1, H, W]`` of ``x`` (``windows`` on the device), each window by its network."""
        rates = dark_event_rate(windows if x.device.type == "cpu" else x)  # where they are: no copy back to the host
        self.last_rate = float(rates[-1])
        dark = rates > DARK_EVENT_SWITCH
        if not dark.any():
            return main(x)
        robust = self._ready(x)
        with self._lock:
            self.windows += int(dark.sum())
        if dark.all():
            return robust(x)
        pick = torch.from_numpy(dark).to(x.device)
        clean, noisy = main(x[~pick]), robust(x[pick])
        out = torch.empty((x.shape[0], *clean.shape[1:]), dtype=clean.dtype, device=clean.device)
        out[~pick] = clean
        out[pick] = noisy.to(clean.dtype)
        return out


def dark_routing(engine: Any, warn: Callable[[str], None]) -> DarkRouting | None:
    """The routing a STIR ``engine`` (:class:`~stir_ros.engine.ReconstructionEngine`) was configured with, or None.

    Raises:
        CheckpointError: ``dark_weights`` names a file that is missing, corrupt or for another window length.
    """
    from stir_ros.models.checkpoint import load_checkpoint

    choice = engine.config.dark_weights
    if choice == "none" or (choice == "auto" and engine.config.weights):
        return None
    if engine.feature_reuse:
        warn("dark_weights is not used with feature_reuse: every window runs the main network")
        return None
    if choice == "auto":
        path = dark_weights_path()
        if not path.is_file():
            warn(f"the shipped dark-robust weights '{path}' are not installed: every window runs the main network")
            return None
    else:
        path = Path(choice).expanduser()
        if not path.is_file():
            raise CheckpointError(f"dark_weights file '{path}' does not exist")
    model, _ = load_checkpoint(path, device=engine.device, expected_window_length=engine.window_length)
    return DarkRouting(model.eval(), path, engine.prepare)
