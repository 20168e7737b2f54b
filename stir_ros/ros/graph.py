# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The node graph of stir_ros, as data: executables, node names, parameters and remappings.

:func:`build_graph` is the single description of what runs. The launch files in ``launch/`` turn
its result into ``launch_ros`` actions, and ``stir-ros run`` (:mod:`stir_ros.ros.graph_runner`)
starts the same processes with rclpy alone, so both start exactly the same graph.

This module is pure Python (no rclpy, no launch): it also holds the parameter tables of both
nodes (names, defaults, descriptions), which the nodes declare from and the docs describe.

Parameters come from a ROS 2 params YAML file (``node_name: {ros__parameters: {...}}``; the
``/**`` wildcard applies to every node) and are overridden by launch arguments
(``name:=value``). Topics are ROS names that the launch arguments remap, as usual in ROS.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from stir_ros.core import defaults
from stir_ros.core.config_files import PACKAGE, find_config, find_params_file
from stir_ros.core.errors import ConfigError, check_choice
from stir_ros.runtime.parameters import (
    DRIVER_NAME,
    DRIVER_PARAMETERS,
    RECONSTRUCTOR_NAME,
    RECONSTRUCTOR_PARAMETERS,
    ParamSpec,
)
from stir_ros.core.yaml_files import load_yaml

__all__ = [
    "PACKAGE",
    "DRIVER_NAME",
    "RECONSTRUCTOR_NAME",
    "DRIVER_PARAMETERS",
    "RECONSTRUCTOR_PARAMETERS",
    "LAUNCH_ARGUMENTS",
    "MODE_ARGUMENTS",
    "MODES",
    "ParamSpec",
    "NodeSpec",
    "ProcessSpec",
    "Graph",
    "build_graph",
    "default_config",
    "find_config",
    "load_params_file",
    "parse_value",
]

MODES = ("pipeline", "reconstruct", "replay")

#: Executable -> module with ``main()``, for running without the installed wrappers.
EXECUTABLE_MODULES = {
    "spike_camera_driver": "stir_ros.ros.driver_node",
    "spike_reconstructor": "stir_ros.ros.reconstructor_node",
    "spike_camera_driver_lifecycle": "stir_ros.ros.driver_lifecycle",
    "spike_reconstructor_lifecycle": "stir_ros.ros.reconstructor_lifecycle",
    "stir-ros": "stir_ros.cli",
}


_NODE_PARAMETERS = {DRIVER_NAME: DRIVER_PARAMETERS, RECONSTRUCTOR_NAME: RECONSTRUCTOR_PARAMETERS}

#: Default ROS names the nodes use; launch arguments remap them.
DEFAULT_TOPICS = {
    "spikes_topic": defaults.SPIKES_TOPIC,
    "image_topic": "image",
    "camera_info_topic": "camera_info",
}

#: Launch argument -> (node names it applies to, parameter name or None for a remapping, help).
LAUNCH_ARGUMENTS: dict[str, tuple[tuple[str, ...], str | None, str]] = {
    "method": ((RECONSTRUCTOR_NAME,), "method", "stir | tfp | tfi"),
    "weights": ((RECONSTRUCTOR_NAME,), "weights", "STIR checkpoint (empty: shipped default)"),
    "dark_weights": ((RECONSTRUCTOR_NAME,), "dark_weights",
                     "STIR network for windows with dark-current spikes: auto | none | PATH"),
    "device": ((RECONSTRUCTOR_NAME,), "device", "auto | cpu | cuda | cuda:N"),
    "precision": ((RECONSTRUCTOR_NAME,), "precision", "auto | fp32 | fp16 | bf16"),
    "backend": ((RECONSTRUCTOR_NAME,), "backend", "auto | torch | openvino"),
    "rate_policy": ((RECONSTRUCTOR_NAME,), "rate_policy",
                    "when STIR cannot keep up: stretch the stride evenly or drop the oldest windows: even | drop_oldest"),
    "inference_streams": ((RECONSTRUCTOR_NAME,), "inference_streams",
                          "STIR windows computed at once (OpenVINO; 0: auto, 1: lowest latency)"),
    "window_length": ((RECONSTRUCTOR_NAME,), "window_length", "frames per window (0: automatic)"),
    "stride_frames": ((RECONSTRUCTOR_NAME,), "stride_frames", "frames between images"),
    "output_rate_hz": ((RECONSTRUCTOR_NAME,), "output_rate_hz", "images per second (overrides stride_frames)"),
    "max_batch": ((RECONSTRUCTOR_NAME,), "max_batch", "most windows per forward pass"),
    "alpha": ((RECONSTRUCTOR_NAME,), "alpha", "sensor alpha"),
    "output_encoding": ((RECONSTRUCTOR_NAME,), "output_encoding", "mono8 | mono16 | 32FC1"),
    "lazy": ((RECONSTRUCTOR_NAME,), "lazy", "reconstruct only while the images have subscribers"),
    "defect_correction": ((RECONSTRUCTOR_NAME,), "defect_correction", "hot/dead pixel repair: auto | file | none"),
    "defect_map_url": ((RECONSTRUCTOR_NAME,), "defect_map_url",
                       "defect map of stir-ros calibrate-defects (file:// or package:// URL or path)"),
    "warmup_height": ((RECONSTRUCTOR_NAME,), "warmup_height",
                      "warm the model up at this frame size before subscribing (0: at the first packet; "
                      "pipeline: the driver's size; replay: the bag's)"),
    "warmup_width": ((RECONSTRUCTOR_NAME,), "warmup_width", "see warmup_height"),
    "source": ((DRIVER_NAME,), "source", "sim | dat"),
    "sim_sensor": ((DRIVER_NAME,), "sim_sensor",
                   "source sim: the sensor's imperfections, a preset (ideal, realistic) and/or FIELD=VALUE words"),
    "dat_path": ((DRIVER_NAME,), "dat_path", ".dat file for source dat"),
    "height": ((DRIVER_NAME,), "height", "frame height"),
    "width": ((DRIVER_NAME,), "width", "frame width"),
    "frame_rate_hz": ((DRIVER_NAME,), "frame_rate_hz", "sensor frame rate"),
    "frames_per_packet": ((DRIVER_NAME,), "frames_per_packet", "frames per SpikePacket"),
    "realtime": ((DRIVER_NAME,), "realtime", "pace in real time"),
    "loop": ((DRIVER_NAME,), "loop", "loop the .dat file"),
    "frame_id": ((DRIVER_NAME, RECONSTRUCTOR_NAME), "frame_id",
                 "the camera's optical frame: header.frame_id of packets, camera_info and images (one per camera)"),
    "use_sim_time": ((DRIVER_NAME, RECONSTRUCTOR_NAME), "use_sim_time", "use /clock (true for replay)"),
    "spikes_topic": ((DRIVER_NAME, RECONSTRUCTOR_NAME), None, "SpikePacket topic (camera info: <spikes_topic>/camera_info)"),
    "image_topic": ((RECONSTRUCTOR_NAME,), None, "output image topic"),
    "camera_info_topic": ((RECONSTRUCTOR_NAME,), None, "output camera_info topic"),
    "namespace": ((DRIVER_NAME, RECONSTRUCTOR_NAME), None, "namespace of every node"),
    "lifecycle": ((DRIVER_NAME, RECONSTRUCTOR_NAME), None,
                  "true: managed (lifecycle) nodes, started unconfigured (<executable>_lifecycle)"),
    "bag": ((), None, "bag to play (replay)"),
    "wait_for_image_subscribers": ((), None,
                                   "replay: the bag plays once the image topic has N subscribers besides "
                                   "the reconstructor on its spikes (default 1; 0: do not wait; up to 60 s)"),
    "delay": ((), None, "replay: seconds between those subscribers being there and the first message"),
}


_MODEL_ARGUMENTS = (
    "method", "weights", "dark_weights", "device", "precision", "backend", "rate_policy", "inference_streams",
    "window_length", "stride_frames", "warmup_height", "warmup_width",
    "output_rate_hz", "max_batch", "alpha", "output_encoding", "lazy", "defect_correction", "defect_map_url", "frame_id",
    "use_sim_time", "spikes_topic", "image_topic", "camera_info_topic", "namespace", "lifecycle",
)
_DRIVER_ARGUMENTS = (
    "source", "sim_sensor", "dat_path", "height", "width", "frame_rate_hz", "frames_per_packet", "realtime", "loop",
)

#: Mode -> the launch arguments its launch file declares.
MODE_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "pipeline": _MODEL_ARGUMENTS + _DRIVER_ARGUMENTS,
    "reconstruct": _MODEL_ARGUMENTS,
    "replay": _MODEL_ARGUMENTS + ("bag", "wait_for_image_subscribers", "delay"),
}

@dataclass(frozen=True)
class NodeSpec:
    """One node process: what ``launch_ros.actions.Node`` needs."""

    executable: str
    name: str
    namespace: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)
    remappings: tuple[tuple[str, str], ...] = ()
    package: str = PACKAGE

    def params_yaml(self) -> str:
        """The parameters as a ROS 2 params file for this node.

        The key ``/**/<name>`` matches the node in any namespace, so that a namespace given on
        the command line (``-r __ns:=/robot1``) does not detach the node from its parameters.
        """
        return yaml.safe_dump({f"/**/{self.name}": {"ros__parameters": dict(self.parameters)}}, sort_keys=True)


@dataclass(frozen=True)
class ProcessSpec:
    """A plain process (``launch.actions.ExecuteProcess``), e.g. bag playback.

    With ``package`` set, ``cmd[0]`` is an executable that package installs in ``lib/<package>``
    (where ``ros2 run`` looks; not on ``PATH`` on a ROS 2 installation): launch resolves it with
    ``ExecutableInPackage``, ``stir-ros run`` through ``AMENT_PREFIX_PATH``.
    """

    name: str
    cmd: tuple[str, ...]
    package: str | None = None


@dataclass(frozen=True)
class Graph:
    """Everything one launch starts."""

    mode: str
    nodes: tuple[NodeSpec, ...]
    processes: tuple[ProcessSpec, ...] = ()

    def node(self, name: str) -> NodeSpec:
        """The node called ``name`` (KeyError if absent)."""
        for spec in self.nodes:
            if spec.name == name:
                return spec
        raise KeyError(name)


# --------------------------------------------------------------------------- config files


def default_config(mode: str) -> Path:
    """The params file a mode uses by default."""
    return find_config("pipeline.yaml" if mode == "pipeline" else "reconstructor.yaml")


def load_params_file(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """Read a ROS 2 params YAML file into ``{node_name: {param: value}}``.

    Node keys may be plain (``name``), fully qualified (``/ns/name``, kept as ``ns/name``),
    ``/**/name`` (kept as ``name``) or the wildcard ``/**`` (kept as is).

    Raises:
        ConfigError: If the file is missing or not in the params format.
    """
    data = load_yaml(path, "params file")
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"params file '{path}' must map node names to {{ros__parameters: ...}}")
    out: dict[str, dict[str, Any]] = {}
    for node, body in data.items():
        if not isinstance(body, Mapping) or not isinstance(body.get("ros__parameters", {}), Mapping):
            raise ConfigError(f"params file '{path}': entry {node!r} must hold a 'ros__parameters' mapping")
        key = str(node)
        if key.startswith("/**/"):
            key = key[4:]  # "/**/name": that node in any namespace
        elif key != "/**":
            key = key.lstrip("/")
        out[key] = dict(body.get("ros__parameters") or {})
    return out


def parse_value(text: Any, like: Any) -> Any:
    """Convert a launch-argument string to the type of ``like`` (bool, int, float or str)."""
    if not isinstance(text, str):
        value = text
    elif isinstance(like, bool):
        low = text.strip().lower()
        if low not in ("true", "false", "1", "0", "yes", "no"):
            raise ConfigError(f"expected true or false, got {text!r}")
        return low in ("true", "1", "yes")
    elif isinstance(like, int):
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"expected an integer, got {text!r}") from None
    elif isinstance(like, float):
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"expected a number, got {text!r}") from None
    else:
        return text
    if isinstance(like, bool) and not isinstance(value, bool):
        raise ConfigError(f"expected true or false, got {value!r}")
    if isinstance(like, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _spec_of(node: str, name: str) -> ParamSpec | None:
    for spec in _NODE_PARAMETERS[node]:
        if spec.name == name:
            return spec
    return None


def _node_params(params: Mapping[str, Mapping[str, Any]], node: str, namespace: str) -> dict[str, Any]:
    merged: dict[str, Any] = dict(params.get("/**", {}))
    full = f"{namespace.strip('/')}/{node}" if namespace.strip("/") else node
    merged.update(params.get(node, {}))
    if full != node:
        merged.update(params.get(full, {}))
    return merged


# --------------------------------------------------------------------------- the graph


def build_graph(
    mode: str = "pipeline",
    config: str | os.PathLike[str] | Mapping[str, Mapping[str, Any]] | None = None,
    arguments: Mapping[str, Any] | None = None,
) -> Graph:
    """Describe the processes of a launch.

    Args:
        mode: ``pipeline`` (driver + reconstructor), ``reconstruct`` (reconstructor only, for a
            real camera driver or a bag played elsewhere) or ``replay`` (``stir-ros bag play BAG
            --clock`` + reconstructor with ``use_sim_time``).
        config: A params YAML path (one not in the current folder is looked for in the package's
            config folders: :func:`~stir_ros.core.config_files.find_params_file`), its parsed
            content, or ``None`` for the mode's default file (``config/pipeline.yaml`` or
            ``config/reconstructor.yaml``).
        arguments: Launch arguments (:data:`LAUNCH_ARGUMENTS`), as strings (from a launch file or
            the command line) or typed values. Empty strings mean "not given".

    Returns:
        The :class:`Graph`.

    Raises:
        ConfigError: Unknown mode or argument, a value of the wrong type, or replay without a bag.
    """
    check_choice("mode", mode, MODES)
    if config is None:
        config = default_config(mode)
    params = load_params_file(find_params_file(config)) if isinstance(config, (str, os.PathLike)) else dict(config)
    args = {k: v for k, v in (arguments or {}).items() if not (isinstance(v, str) and v == "")}
    unknown = sorted(set(args) - set(LAUNCH_ARGUMENTS))
    if unknown:
        raise ConfigError(f"unknown launch argument(s) {unknown}; known: {', '.join(LAUNCH_ARGUMENTS)}")

    namespace = str(args.get("namespace", "")).strip("/")
    names = [DRIVER_NAME, RECONSTRUCTOR_NAME] if mode == "pipeline" else [RECONSTRUCTOR_NAME]
    node_params = {n: _node_params(params, n, namespace) for n in names}
    if mode == "replay":
        node_params[RECONSTRUCTOR_NAME].setdefault("use_sim_time", True)
    if mode == "pipeline":
        # The driver and its reconstructor start together: without waiting, a short file is
        # published before the reconstructor (importing torch, loading its model) subscribes.
        node_params[DRIVER_NAME].setdefault("wait_for_subscribers", 1)
        node_params[DRIVER_NAME].setdefault("wait_for_subscribers_timeout_s", defaults.GRAPH_WAIT_FOR_SUBSCRIBERS_TIMEOUT_S)

    for arg, value in args.items():
        targets, param, _ = LAUNCH_ARGUMENTS[arg]
        if param is None:
            continue
        for node in targets:
            if node not in node_params:
                continue
            spec = _spec_of(node, param)
            like = spec.default if spec else False  # use_sim_time is ROS's own bool parameter
            try:
                node_params[node][param] = parse_value(value, like)
            except ConfigError as err:
                raise ConfigError(f"launch argument {arg}: {err}") from None

    if mode == "pipeline":
        # Warm the model up at the driver's size before subscribing: the driver waits for that
        # subscription, so no packet reaches a cold model (a STIR warm-up takes seconds on a CPU,
        # and the windows cut meanwhile would be dropped: the start of a short file lost).
        drv, driver_defaults = node_params[DRIVER_NAME], {spec.name: spec.default for spec in DRIVER_PARAMETERS}
        _warm_up_at(node_params[RECONSTRUCTOR_NAME],
                    (drv.get("height", driver_defaults["height"]), drv.get("width", driver_defaults["width"])))  # fmt: skip

    spikes = str(args.get("spikes_topic", DEFAULT_TOPICS["spikes_topic"]))
    remaps: dict[str, list[tuple[str, str]]] = {n: [] for n in names}
    if spikes != DEFAULT_TOPICS["spikes_topic"]:
        for node in names:
            remaps[node] += [("spikes", spikes), ("spikes/camera_info", f"{spikes.rstrip('/')}/camera_info")]
    for arg in ("image_topic", "camera_info_topic"):
        value = str(args.get(arg, DEFAULT_TOPICS[arg]))
        if value != DEFAULT_TOPICS[arg]:
            remaps[RECONSTRUCTOR_NAME].append((DEFAULT_TOPICS[arg], value))

    try:
        managed = parse_value(args.get("lifecycle", False), False)
    except ConfigError as err:
        raise ConfigError(f"launch argument lifecycle: {err}") from None
    nodes = tuple(
        NodeSpec(
            executable=f"{n}_lifecycle" if managed else n, name=n, namespace=namespace, parameters=node_params[n],
            remappings=tuple(remaps[n]),
        )  # fmt: skip
        for n in names
    )
    processes: tuple[ProcessSpec, ...] = ()
    if mode == "replay":
        bag = str(args.get("bag", ""))
        if not bag:
            raise ConfigError("replay needs the launch argument bag:=PATH")
        # The player waits for the reconstructor it starts with, as the driver does in a pipeline,
        # and, if asked, for the consumers of the images: a short bag is over before a consumer
        # started a second later (a viewer, a recorder, SLAM) subscribes.
        cmd = ["stir-ros", "bag", "play", bag, "--clock", "--wait-for-subscribers", "1",
               "--wait-for-subscribers-timeout-s", f"{defaults.GRAPH_WAIT_FOR_SUBSCRIBERS_TIMEOUT_S:g}"]
        waiting = _whole_number(args, "wait_for_image_subscribers", defaults.REPLAY_WAIT_FOR_IMAGE_SUBSCRIBERS)
        if waiting:
            image = _absolute_name(str(args.get("image_topic", DEFAULT_TOPICS["image_topic"])), namespace)
            cmd += ["--wait-for-subscribers-on", f"{image}:{waiting}"]
        if not _warmup_given(node_params[RECONSTRUCTOR_NAME]):
            # As in the pipeline: warm up before subscribing, at the size of the bag's first packet
            # on the topic the reconstructor reads, so the player (which waits for that
            # subscription) never feeds a cold model. Not known (unreadable bag, another topic): at
            # the first packet, as before.
            from stir_ros.bag.reader import spike_frame_size

            _warm_up_at(node_params[RECONSTRUCTOR_NAME], spike_frame_size(bag, _absolute_name(spikes, namespace)))
        delay = _seconds(args, "delay")
        if delay:
            cmd += ["--delay", f"{delay:g}"]
        processes = (ProcessSpec("bag_play", tuple(cmd), package=PACKAGE),)
    return Graph(mode=mode, nodes=nodes, processes=processes)


def _warmup_given(params: Mapping[str, Any]) -> bool:
    return bool(params.get("warmup_height") or params.get("warmup_width"))


def _warm_up_at(params: dict[str, Any], size: tuple[int, int] | None) -> None:
    """Set the reconstructor's warm-up size to ``size`` unless one was given (or ``size`` is not known)."""
    if size is not None and not _warmup_given(params):
        params["warmup_height"], params["warmup_width"] = size


def _whole_number(args: Mapping[str, Any], name: str, default: int = 0) -> int:
    try:
        value = parse_value(args.get(name, default), 0)
    except ConfigError as err:
        raise ConfigError(f"launch argument {name}: {err}") from None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"launch argument {name}: expected a whole number >= 0, got {value!r}")
    return value


def _seconds(args: Mapping[str, Any], name: str) -> float:
    try:
        value = parse_value(args.get(name, 0.0), 0.0)
    except ConfigError as err:
        raise ConfigError(f"launch argument {name}: {err}") from None
    if not isinstance(value, float) or not 0 <= value < 1e6:
        raise ConfigError(f"launch argument {name}: expected seconds, 0 or more (and finite), got {value!r}")
    return value


def _absolute_name(topic: str, namespace: str) -> str:
    """The topic as the reconstructor in ``namespace`` resolves it."""
    if topic.startswith("/"):
        return topic
    if topic.startswith("~"):
        topic = f"{RECONSTRUCTOR_NAME}/{topic[1:].lstrip('/')}"
    return f"/{namespace}/{topic}" if namespace else f"/{topic}"
