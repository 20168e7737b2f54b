# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The nodes' parameters, as one table: name, default (whose type is the parameter's), meaning.

The nodes declare their parameters from it (with the ranges of :data:`stir_ros.core.limits.PARAMETER_BOUNDS`),
the settings dataclasses are checked against it (``test/test_settings_table.py``), the launch
arguments, params files and ``stir-ros bag`` flags repeat its defaults and are checked too.
Pure Python (no rclpy): :mod:`stir_ros.ros.graph` re-exports it for the node graph, and the
ROS-free settings (:mod:`stir_ros.reconstructor_settings`) validate against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stir_ros.core import defaults

__all__ = ["DRIVER_NAME", "RECONSTRUCTOR_NAME", "ParamSpec", "DRIVER_PARAMETERS", "RECONSTRUCTOR_PARAMETERS"]

DRIVER_NAME = "spike_camera_driver"
RECONSTRUCTOR_NAME = "spike_reconstructor"


@dataclass(frozen=True)
class ParamSpec:
    """A node parameter: name, default (whose type is the parameter's type), meaning.

    ``dynamic`` parameters may be changed while the node runs (validated first).
    """

    name: str
    default: Any
    description: str
    dynamic: bool = False


DRIVER_PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec("source", "sim", "Where spikes come from: 'dat' (a Vidar .dat file) or 'sim' (simulated moving scene)."),
    ParamSpec("dat_path", "", "Path of the .dat file (source 'dat'); ~ expanded, file:// URLs taken."),
    ParamSpec("height", 250, "Frame height in pixels (the .dat file's, or the simulated size)."),
    ParamSpec("width", 400, "Frame width in pixels."),
    ParamSpec("frame_rate_hz", defaults.FRAME_RATE_HZ,
              "Sensor frame rate (frames per second); paces playback and sets the sensor clock."),
    ParamSpec("frames_per_packet", defaults.FRAMES_PER_PACKET, "Frames per SpikePacket (100 frames of 250x400 = 1.25 MB)."),
    ParamSpec("realtime", True, "Pace packets at frame_rate_hz in real time; false publishes as fast as possible."),
    ParamSpec("loop", False, "Restart the .dat file at its end (frame indices keep counting)."),
    ParamSpec("max_frames", 0, "Stop after this many frames (0: at the end of the file, or never for 'sim')."),
    ParamSpec("encoding", defaults.PAYLOAD_ENCODING, "Payload encoding: 'vidar_bitpacked' or 'unpacked_u8'."),
    ParamSpec("frame_id", defaults.FRAME_ID, "header.frame_id of packets and camera_info."),
    ParamSpec("camera_info_url", "",
              "Calibration file (file:// or package:// URL, camera_calibration YAML); empty: uncalibrated."),
    ParamSpec("wait_for_subscribers", 0, "Before publishing, wait until this many subscribers match the spikes topic "
              "(the launch files and stir-ros run set 1: the reconstructor they start)."),
    ParamSpec("wait_for_subscribers_timeout_s", defaults.WAIT_FOR_SUBSCRIBERS_TIMEOUT_S,
              "Give up waiting for subscribers after this many seconds and start."),
    ParamSpec("sim_seed", 0, "Seed of the simulated scene and sensor."),
    ParamSpec("sim_alpha", defaults.ALPHA, "Simulated sensor alpha (firing rate at intensity 1)."),
    ParamSpec("sim_max_speed", 0.02, "Peak speed of the simulated scene, pixels per frame."),
    ParamSpec("sim_noise_std", 0.0, "Noise of the simulated integrate-and-fire increments."),
    ParamSpec("sim_sensor", "ideal", "Simulated sensor's imperfections: a preset ('ideal', 'realistic') and/or "
              "FIELD=VALUE words (dark_rate_hz, dark_rate_spread, gain_spread, threshold_spread, shot_electrons, "
              "threshold_jitter, hot_fraction, dead_fraction), e.g. 'realistic dark_rate_hz=40'."),
)

RECONSTRUCTOR_PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec("method", "stir", "Reconstruction: 'stir' (network), 'tfp' (spike rate) or 'tfi' (inter-spike interval).", True),
    ParamSpec("weights", "", "STIR checkpoint file; empty: the shipped default weights.", True),
    ParamSpec("device", "auto", "'auto', 'cpu', 'cuda' or 'cuda:N' (auto: CUDA for stir when available, CPU for tfp/tfi).", True),
    ParamSpec("precision", "auto", "'auto', 'fp32', 'fp16' or 'bf16' (stir; fp16 on the CPU falls back to fp32). "
              "auto: bf16 with OpenVINO on a CPU with native bf16, else fp32 (README, 'Fast by default').", True),
    ParamSpec("backend", "auto", "STIR inference: 'auto' (OpenVINO on a CPU where installed, else torch), 'torch' "
              "(CPU or CUDA) or 'openvino' (CPU; falls back to torch with a warning when not installed).", True),
    ParamSpec("torch_compile", "none", "torch.compile mode of STIR on the torch backend: 'none', 'default', "
              "'reduce-overhead' or 'max-autotune' (the first images wait for the compile: minutes on a CPU).", True),
    ParamSpec("cuda_graphs", False, "Replay STIR from one captured CUDA graph per input shape (CUDA only).", True),
    ParamSpec("feature_reuse", False, "STIR on torch: windows that overlap (stride_frames shorter than the window) "
              "reuse the block features of the frames they share; the same images, eager network.", True),
    ParamSpec("dark_weights", defaults.DARK_WEIGHTS, "STIR: the network for windows that hold dark-current spikes "
              "(counted from each window's own spikes): 'auto' (the shipped dark-robust weights when weights is the "
              "shipped default), 'none', or a checkpoint path (README, 'A real sensor').", True),
    ParamSpec("window_length", 0, "Frames per window; 0: the checkpoint's for stir (41/61), 41 for tfp/tfi.", True),
    ParamSpec("stride_frames", 200, "Frames between consecutive windows (one image per stride).", True),
    ParamSpec("output_rate_hz", 0.0, "If > 0, overrides stride_frames: stride = round(frame_rate_hz / output_rate_hz).", True),
    ParamSpec("max_batch", 4, "Most windows per forward pass.", True),
    ParamSpec("alpha", defaults.ALPHA, "Sensor alpha; images are divided by it.", True),
    ParamSpec("output_encoding", "mono8", "Image encoding: 'mono8', 'mono16' or '32FC1'.", True),
    ParamSpec("rate_policy", "even", "When STIR cannot keep up with the stride asked for: 'even' (stretch the stride to "
              "a multiple of it that inference sustains, measured: evenly spaced, fresh images, each identical to bag "
              "reconstruct's for its window) or 'drop_oldest' (the full queue drops its oldest window). TFP and TFI always "
              "keep the stride asked for.", True),
    ParamSpec("inference_streams", 0, "STIR windows computed at once, each on its share of the CPU threads (OpenVINO "
              "only; read at start): 0 auto (2 with OpenVINO on 2 or more cores: more images/s where the driver and the "
              "receive path share the cores, each window about twice as long), 1 for the lowest latency per image."),
    ParamSpec("queue_size", 4, "Windows waiting for inference; when full the oldest is dropped (counted).", True),
    ParamSpec("frame_id", "", "frame_id of the images; empty: the spike packets' frame_id.", True),
    ParamSpec("diagnostics_period_s", 1.0, "Period of /diagnostics messages, seconds."),
    ParamSpec("warmup_height", 0, "If > 0 with warmup_width, warm the model up at this size at start."),
    ParamSpec("warmup_width", 0, "See warmup_height."),
    ParamSpec("executor", "events", "rclpy executor: 'events' (rclpy's C++ EventsExecutor: less CPU per packet, "
              "lower latency) or 'single_threaded' (rclpy's default Python executor)."),
    ParamSpec("stall_timeout_s", 30.0, "Diagnostics go to ERROR when windows have waited this long without an image.", True),
    ParamSpec("compressed_format", "", "Also publish image/compressed (sensor_msgs/CompressedImage): 'png' (lossless) "
              "or 'jpeg'; empty: off."),
    ParamSpec("jpeg_quality", 90, "JPEG quality (1-100) of image/compressed when compressed_format is 'jpeg'.", True),
    ParamSpec("lazy", False, "Reconstruct only while image, camera_info or image/compressed has a subscriber; "
              "packets are still received and counted.", True),
    ParamSpec("defect_correction", defaults.DEFECT_CORRECTION, "Hot/dead pixel repair: 'auto' (map estimated "
              "from the stream, united with defect_map_url's if given), 'file' (defect_map_url's map only) or 'none'."),
    ParamSpec("defect_map_url", "", "Defect map file (file:// or package:// URL or path; YAML of stir-ros "
              "calibrate-defects); empty: none. A change is read and checked first, then in force from the next "
              "packet.", True),
    ParamSpec("defect_sample_period_frames", defaults.DEFECT_SAMPLE_PERIOD_FRAMES,
              "auto: 20 frames of every this many (sensor clock) are counted for the defect map; the map is "
              "re-estimated every 1000 counted frames."),
    ParamSpec("defect_hot_rate", defaults.DEFECT_HOT_RATE, "Spikes per frame above which a pixel is hot, unless "
              "three or more such pixels touch (a saturating light; light at intensity 1 fires alpha per frame)."),
    ParamSpec("worker_niceness", 5, "Niceness (0-19) the inference thread adds to its own (Linux; skipped where "
              "not supported): the thread that receives the spikes keeps the CPU first, so a saturated core drops "
              "windows (counted in windows_dropped), not packets. 0: the process's priority."),
)
