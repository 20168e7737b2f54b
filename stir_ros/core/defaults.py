# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Defaults shared by the nodes, the launch arguments and the command-line tools, defined once.

One name means one thing everywhere (DESIGN.md §2): ``frame_id`` is the camera's optical frame,
``encoding`` the SpikePacket payload encoding, ``output_encoding`` the image encoding,
``spikes_topic`` (``--spikes-topic``) the SpikePacket topic, ``wait_for_subscribers`` a number of
subscribers and ``wait_for_subscribers_timeout_s`` how long to wait for them. Pure Python.
"""

from __future__ import annotations

__all__ = [
    "ALPHA",
    "BACKENDS",
    "PRECISIONS",
    "FRAME_ID",
    "FRAME_RATE_HZ",
    "FRAMES_PER_PACKET",
    "PAYLOAD_ENCODING",
    "SPIKES_TOPIC",
    "WAIT_FOR_SUBSCRIBERS_TIMEOUT_S",
    "GRAPH_WAIT_FOR_SUBSCRIBERS_TIMEOUT_S",
    "REPLAY_WAIT_FOR_IMAGE_SUBSCRIBERS",
    "DEFECT_CORRECTION",
    "DEFECT_SAMPLE_PERIOD_FRAMES",
    "DEFECT_HOT_RATE",
    "DARK_WEIGHTS",
]

#: header.frame_id of spike packets and camera_info: the camera's optical frame (REP-103 naming).
FRAME_ID = "spike_camera_optical_frame"
#: SpikePacket topic, relative (nodes) or, for bags, with a leading slash.
SPIKES_TOPIC = "spikes"
#: Sensor frame rate, Hz.
FRAME_RATE_HZ = 20000.0
#: Frames per SpikePacket (100 frames of 250x400 = 1.25 MB bit-packed).
FRAMES_PER_PACKET = 100
#: SpikePacket payload encoding.
PAYLOAD_ENCODING = "vidar_bitpacked"
#: Sensor alpha: spike rate at intensity 1 (DESIGN.md §4).
ALPHA = 0.6
#: Inference precisions of STIR; ``auto``: :func:`stir_ros.core.inference_path.resolve_inference_path`.
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
#: STIR inference backends: eager PyTorch (CPU or CUDA) or OpenVINO (CPU; stir_ros.models.runtime);
#: ``auto``: :func:`stir_ros.core.inference_path.resolve_inference_path`.
BACKENDS = ("auto", "torch", "openvino")
#: How long a player (driver, bag play) waits for subscribers before it publishes anyway.
WAIT_FOR_SUBSCRIBERS_TIMEOUT_S = 10.0
#: The same, in the graphs that start the player together with its reconstructor: long enough for
#: the reconstructor to import torch and load its model on a slow machine.
GRAPH_WAIT_FOR_SUBSCRIBERS_TIMEOUT_S = 60.0
#: Replay plays its bag once the image topic has this many subscribers (a viewer, a recorder,
#: SLAM): a short bag is otherwise over before a consumer started a second later subscribes.
REPLAY_WAIT_FOR_IMAGE_SUBSCRIBERS = 1
DEFECT_CORRECTION = "auto"
DEFECT_SAMPLE_PERIOD_FRAMES = 2000
DEFECT_HOT_RATE = 0.9
#: STIR's network for windows with dark-current spikes: ``auto`` (the shipped dark-robust weights
#: with the shipped weights), ``none``, or a checkpoint path (stir_ros.models.dark_routing).
DARK_WEIGHTS = "auto"
