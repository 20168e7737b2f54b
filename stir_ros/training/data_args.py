# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The training data's recipe on the ``stir-ros train`` command line.

One table (:data:`DATA_FLAGS`) gives the flags that set :class:`~stir_ros.training.data.DataConfig`;
a flag's default and type are read from the field of its name, so they are declared once, in
``DataConfig``. :func:`data_config` and :func:`validation_config` turn the parsed flags into the
recipes of the training and the held-out windows.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from stir_ros.core.errors import ConfigError
from stir_ros.core.sensor_model import parse_sensor
from stir_ros.training.camera import CameraConfig
from stir_ros.training.data import MOTION_MODELS, SCENE_MODELS, DataConfig

__all__ = ["DATA_FLAGS", "add_data_arguments", "data_config", "validation_config"]

DATA_FLAGS: dict[str, dict[str, Any]] = {
    # dest: argparse options. Without a "default", the flag's default (and, for a number, its type)
    # is the DataConfig field's of that name.
    "max_layers": {},
    "max_displacement": {},
    "max_noise_std": {},
    "motion": {
        "choices": MOTION_MODELS,
        "help": "layer displacement distribution: uniform in a disc of --max-displacement, or "
        "heavy-tail (mostly under 3 px, a quarter up to --max-displacement; REDS-like)",
    },
    "texture_candidates": {
        "metavar": "K",
        "help": "draw K crop positions per layer and keep the most textured (1: plain random crops; "
        "--scene layers only)",
    },
    "scene": {
        "choices": SCENE_MODELS,
        "help": "scene model of the training windows: layers (1 to --max-layers rigid layers) or "
        "camera (camera homography with heavy-tailed motion, local deformation, 0-3 moving "
        "objects, downscaled textured crops; the layer options above do not apply)",
    },
    "camera_shift": {
        "type": float, "nargs": 2, "default": None, "metavar": ("MEDIAN", "TAIL_PROB"),
        "help": "--scene camera: median camera translation over a window (pixels) and the share of "
        "tail draws (4 px to --max-displacement); default 0.4 0.05 (the validation clips' "
        "statistics). Objects move relative to the camera by the same law",
    },
    "cutouts": {
        "metavar": "DIR",
        "help": "--scene camera: object cut-outs (gray + alpha PNGs, stir-ros data --cutouts) "
        "instead of soft ellipses over photograph crops",
    },
    "videos": {
        "metavar": "DIR",
        "help": "folder of real video clips (stir-ros data --videos); --video-fraction of the samples "
        "are rendered between two frames of a clip along its optical flow",
    },
    "video_fraction": {
        "type": float, "default": None, "metavar": "P",
        "help": "share of the samples taken from --videos, in [0, 1] (default 0.25)",
    },
    "target_offset": {
        "metavar": "FRAMES",
        "help": "train the network to show the scene this many frames after the window's centre "
        "frame, in (-1, 1) (default 0). The Spike-Zoo REDS-derived clips' ground truth lies "
        "about 0.5 frame after it (model card)",
    },
    "curvature": {
        "help": "scale of the layer paths' quadratic term, in [0, 4] (default 1; 0: straight paths at "
        "constant speed)",
    },
    "input_blur": {
        "metavar": "SIGMA",
        "help": "blur the frames the spikes are simulated from by a Gaussian of up to SIGMA pixels "
        "(drawn per sample; the target stays sharp), in [0, 3] (default 0)",
    },
    "min_displacement": {
        "metavar": "PIXELS",
        "help": "smallest first-to-last-frame shift of a moving layer (layer scenes, uniform motion): "
        "shifts uniform in the ring from PIXELS to --max-displacement (default 0: the whole disc)",
    },
    "input_lowpass": {
        "type": float, "nargs": 2, "metavar": ("LOW", "HIGH"),
        "help": "filter the frames the spikes are simulated from by exp(-(f / cutoff) ** 3.6), the "
        "cutoff drawn per sample in [LOW, HIGH] cycles per pixel (the target stays sharp); "
        "the Spike-Zoo REDS-derived clips measure 0.46-0.72 and 0.55 0.7 trained best "
        "(model card). Default: off",
    },
    "sensor_max": {
        "nargs": "+", "default": None, "metavar": "PRESET|FIELD=VALUE",
        "help": "the most a real sensor adds to a sample (a preset such as 'realistic' and/or fields "
        "of stir_ros.core.sensor_model.SensorModel, dark rates at 20 kHz); each noisy sample "
        "draws its levels from zero up to these",
    },
    "sensor_fraction": {
        "type": float, "default": None, "metavar": "P",
        "help": "share of the samples from a drawn real sensor (default with --sensor-max: 0.75)",
    },
}  # fmt: skip


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of :data:`DATA_FLAGS`, in its order, with DataConfig's defaults where they give none."""
    recipe = DataConfig()
    for dest, options in DATA_FLAGS.items():
        options = dict(options)
        if "default" not in options:
            options["default"] = getattr(recipe, dest)
            if isinstance(options["default"], (int, float)) and "type" not in options:
                options["type"] = type(options["default"])
        parser.add_argument("--" + dest.replace("_", "-"), **options)


def data_config(args: argparse.Namespace, crop: int) -> DataConfig:
    """The training windows' recipe from the parsed ``stir-ros train`` flags."""
    camera = CameraConfig()
    shift = getattr(args, "camera_shift", None)
    if shift is not None:
        median, tail = shift
        camera = dataclasses.replace(camera, shift_median=median, object_shift_median=median, tail_prob=tail,
                                     max_shift=args.max_displacement)  # fmt: skip
    return DataConfig(
        window_length=args.window_length, crop=crop, max_layers=args.max_layers,
        max_displacement=args.max_displacement, max_noise_std=args.max_noise_std,
        motion=args.motion, texture_candidates=args.texture_candidates,
        scene=getattr(args, "scene", "layers"), cutouts=getattr(args, "cutouts", None), camera=camera,
        target_offset=getattr(args, "target_offset", 0.0), curvature=getattr(args, "curvature", 1.0),
        input_blur=getattr(args, "input_blur", 0.0),
        input_lowpass=tuple(args.input_lowpass) if getattr(args, "input_lowpass", None) else None,
        min_displacement=getattr(args, "min_displacement", 0.0),
        **_video_fields(args), **_sensor_fields(args),
    )  # fmt: skip


def validation_config(args: argparse.Namespace) -> DataConfig:
    """The held-out synthetic windows' recipe.

    The default scene model whatever the training recipe, so that runs with different recipes
    are scored on the same kind of windows; the target's time is part of the task, not of the
    recipe, so it follows ``--target-offset``.
    """
    return DataConfig(window_length=args.window_length, crop=args.val_crop, max_layers=args.max_layers,
                      max_displacement=args.max_displacement, max_noise_std=args.max_noise_std,
                      target_offset=getattr(args, "target_offset", 0.0))  # fmt: skip


def _given_with_fraction(
    args: argparse.Namespace, source: str, fraction_name: str, default: float, needs: str
) -> tuple[Any, float] | None:
    """An optional source option and the share of samples it takes; ``None`` without the source.

    The share has a default only when the source is given; a share without its source is an error
    (``needs``, the one-line message).
    """
    given = getattr(args, source, None)
    fraction = getattr(args, fraction_name, None)
    if not given:
        if fraction is not None:
            raise ConfigError(needs)
        return None
    return given, default if fraction is None else fraction


def _sensor_fields(args: argparse.Namespace) -> dict[str, Any]:
    """DataConfig's sensor fields: only with --sensor-max (otherwise the ideal sensor)."""
    needs = "--sensor-fraction needs --sensor-max (the most a sensor adds)"
    given = _given_with_fraction(args, "sensor_max", "sensor_fraction", 0.75, needs)
    if given is None:
        return {}
    return {"sensor_max": parse_sensor(given[0]), "sensor_fraction": given[1]}


def _video_fields(args: argparse.Namespace) -> dict[str, Any]:
    """DataConfig's video fields: only with --videos (otherwise the defaults, videos off)."""
    needs = "--video-fraction needs --videos DIR (the clips of stir-ros data --videos)"
    given = _given_with_fraction(args, "videos", "video_fraction", 0.25, needs)
    if given is None:
        return {}
    return {"videos": given[0], "video_fraction": given[1], "video_max_size": args.image_max_size}


