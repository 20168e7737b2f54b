# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""What ``stir-ros bag reconstruct`` is asked: :class:`ReconstructOptions`, checked as the node's parameters are.

One frozen dataclass for a whole run: :func:`stir_ros.bag.reconstruct.reconstruct_bag` and the
jobs and shards of many recordings (:mod:`stir_ros.bag.jobs`, :mod:`stir_ros.bag.shards`) take
it, and the command line fills it (:meth:`ReconstructOptions.from_args`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from stir_ros.core.defaults import DEFECT_CORRECTION, DEFECT_HOT_RATE, DEFECT_SAMPLE_PERIOD_FRAMES
from stir_ros.core.errors import ConfigError, check_choice
from stir_ros.core.imaging import IMAGE_ENCODINGS
from stir_ros.core.limits import check_parameter
from stir_ros.reconstructor_settings import DEFAULTS

__all__ = ["ReconstructOptions"]


@dataclass(frozen=True)
class ReconstructOptions:
    """Settings of an offline reconstruction (the node's parameter names, and its defaults but for ``stride_frames``).

    Attributes:
        method, window_length, alpha, device, precision, max_batch, weights, backend, torch_compile,
            cuda_graphs, feature_reuse, dark_weights: The engine's settings (:class:`~stir_ros.engine.EngineConfig`,
            by these names; ``weights`` ``None``: the shipped default).
        stride_frames: Frames between consecutive windows (one image per stride).
        output_rate_hz: If > 0, overrides ``stride_frames``: ``round(frame_rate_hz / output_rate_hz)``.
        spikes_topic: Topic to read; ``None``: ``/spikes`` or the bag's only SpikePacket topic.
        image_topic: Output ``sensor_msgs/Image`` topic.
        camera_info_topic: Output ``sensor_msgs/CameraInfo`` topic; empty for none.
        output_encoding: ``mono8``, ``mono16`` or ``32FC1``.
        frame_id: Image frame; empty: the ``header.frame_id`` of the packet completing each window.
        storage: Output storage; ``None``: the input's.
        keep_topics: Other topics to copy: ``None`` none, ``()`` all, or the names.
        defect_correction, defect_map_url, defect_sample_period_frames, defect_hot_rate: The
            node's hot/dead pixel repair (README, "Using a real camera").
    """

    method: str = DEFAULTS["method"]
    window_length: int = DEFAULTS["window_length"]
    stride_frames: int = 20
    output_rate_hz: float = DEFAULTS["output_rate_hz"]
    alpha: float = DEFAULTS["alpha"]
    device: str = DEFAULTS["device"]
    precision: str = DEFAULTS["precision"]
    max_batch: int = DEFAULTS["max_batch"]
    weights: str | None = None
    spikes_topic: str | None = None
    image_topic: str = "/image"
    camera_info_topic: str = "/camera_info"
    output_encoding: str = DEFAULTS["output_encoding"]
    frame_id: str = DEFAULTS["frame_id"]
    storage: str | None = None
    keep_topics: Sequence[str] | None = None
    backend: str = DEFAULTS["backend"]
    torch_compile: str = DEFAULTS["torch_compile"]
    cuda_graphs: bool = DEFAULTS["cuda_graphs"]
    feature_reuse: bool = DEFAULTS["feature_reuse"]
    dark_weights: str = DEFAULTS["dark_weights"]
    defect_correction: str = DEFECT_CORRECTION
    defect_map_url: str = ""
    defect_sample_period_frames: int = DEFECT_SAMPLE_PERIOD_FRAMES
    defect_hot_rate: float = DEFECT_HOT_RATE

    def __post_init__(self) -> None:
        if isinstance(self.stride_frames, bool) or not isinstance(self.stride_frames, int) or self.stride_frames < 1:
            raise ConfigError(f"stride_frames must be a positive integer, got {self.stride_frames!r}")
        check_choice("output encoding", self.output_encoding, IMAGE_ENCODINGS)
        if not self.image_topic:
            raise ConfigError("image_topic must not be empty")
        if not self.output_rate_hz >= 0:
            raise ConfigError(f"output_rate_hz must be >= 0 (0: use stride_frames), got {self.output_rate_hz}")
        # The same bounds as the live node's parameters (one table): finite, and what a machine holds.
        for name in ("window_length", "stride_frames", "output_rate_hz", "alpha", "max_batch",
                     "defect_sample_period_frames", "defect_hot_rate"):
            check_parameter("spike_reconstructor", name, getattr(self, name))

    @classmethod
    def from_args(cls, args: Any) -> ReconstructOptions:
        """The options of a parsed ``bag reconstruct`` command line: each flag sets the field of its name."""
        return cls(**{f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)})
