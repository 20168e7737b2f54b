# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Every setting has one default, in one table; everything that repeats a default agrees with it.

The table: the nodes' parameters (:data:`stir_ros.ros.graph.DRIVER_PARAMETERS` and
:data:`~stir_ros.ros.graph.RECONSTRUCTOR_PARAMETERS`: name, default, meaning), their bounds
(:data:`stir_ros.core.limits.PARAMETER_BOUNDS`) and the constants shared with the tools
(:mod:`stir_ros.core.defaults`). Checked against it: the params files in ``config/``, the launch
arguments' defaults (the launch files' source, read with ``ast`` where ``launch`` is not
installed) and what they start, the parameters the nodes declare with their ranges, the settings
dataclasses and ``EngineConfig``, and the defaults of the ``stir-ros bag`` flags (the argparse
parsers the CLI modules build). A default retyped with another value anywhere fails here.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib.util
from pathlib import Path
from typing import Any

import pytest

from stir_ros.cli import build_parser
from stir_ros.core import defaults
from stir_ros.core.limits import PARAMETER_BOUNDS, check_parameter
from stir_ros.ros.graph import (
    DEFAULT_TOPICS,
    DRIVER_NAME,
    DRIVER_PARAMETERS,
    LAUNCH_ARGUMENTS,
    MODE_ARGUMENTS,
    RECONSTRUCTOR_NAME,
    RECONSTRUCTOR_PARAMETERS,
    build_graph,
    find_config,
    load_params_file,
    parse_value,
)

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_FILES = sorted((ROOT / "launch").glob("*.launch.py"))
SPECS = {DRIVER_NAME: DRIVER_PARAMETERS, RECONSTRUCTOR_NAME: RECONSTRUCTOR_PARAMETERS}
TABLE: dict[str, dict[str, Any]] = {node: {s.name: s.default for s in specs} for node, specs in SPECS.items()}

#: What the graph itself sets on top of the params file, by (mode, node): the driver waits for
#: the reconstructor it starts with; replay runs the reconstructor on the bag's clock.
GRAPH_SETS: dict[tuple[str, str], dict[str, Any]] = {
    ("pipeline", DRIVER_NAME): {
        "wait_for_subscribers": 1, "wait_for_subscribers_timeout_s": defaults.GRAPH_WAIT_FOR_SUBSCRIBERS_TIMEOUT_S,
    },
    ("pipeline", RECONSTRUCTOR_NAME): {  # warmed up at the driver's size before it subscribes
        "warmup_height": TABLE[DRIVER_NAME]["height"], "warmup_width": TABLE[DRIVER_NAME]["width"],
    },
    ("replay", RECONSTRUCTOR_NAME): {"use_sim_time": True},
}  # fmt: skip

#: ``stir-ros bag reconstruct`` defaults that differ from the node's on purpose (README, "Bags"):
#: offline, every window (stride 20) as datasets want; live, 100 images/s (stride 200).
BAG_RECONSTRUCT_OWN = {"stride_frames": 20}


def _same(value: Any, default: Any) -> bool:
    """Equal and of the same type (True is not 1, 20000 is not 20000.0)."""
    return type(value) is type(default) and value == default


def _no_weights(value: Any) -> Any:
    """``None`` and ``""`` both mean "the shipped weights" / "the packets' frame_id"."""
    return "" if value is None else value


# --------------------------------------------------------------------------- the table itself


#: stir_ros.core.defaults constant -> the parameters whose default it is.
SHARED_CONSTANTS = [
    (defaults.FRAME_ID, DRIVER_NAME, "frame_id"),
    (defaults.FRAME_RATE_HZ, DRIVER_NAME, "frame_rate_hz"),
    (defaults.FRAMES_PER_PACKET, DRIVER_NAME, "frames_per_packet"),
    (defaults.PAYLOAD_ENCODING, DRIVER_NAME, "encoding"),
    (defaults.WAIT_FOR_SUBSCRIBERS_TIMEOUT_S, DRIVER_NAME, "wait_for_subscribers_timeout_s"),
    (defaults.ALPHA, DRIVER_NAME, "sim_alpha"),
    (defaults.ALPHA, RECONSTRUCTOR_NAME, "alpha"),
]


@pytest.mark.parametrize(("value", "node", "name"), SHARED_CONSTANTS, ids=[f"{n}.{p}" for _, n, p in SHARED_CONSTANTS])
def test_shared_constants_are_the_table_defaults(value, node, name):
    assert _same(TABLE[node][name], value), f"{node}.{name} default {TABLE[node][name]!r}, stir_ros.core.defaults {value!r}"


def test_default_topic_is_the_shared_constant():
    assert DEFAULT_TOPICS["spikes_topic"] == defaults.SPIKES_TOPIC


def test_bounds_belong_to_parameters_and_hold_their_defaults():
    for (node, name), bound in PARAMETER_BOUNDS.items():
        assert name in TABLE[node], f"bound for {node}.{name}, which is not a parameter"
        default = TABLE[node][name]
        assert isinstance(default, (int, float)) and not isinstance(default, bool), f"{node}.{name} is not a number"
        assert bound.is_int == isinstance(default, int), f"{node}.{name}: bound and default differ in type"
        check_parameter(node, name, default)  # the default is within the bound


# --------------------------------------------------------------------------- params files


@pytest.mark.parametrize("name", ["driver.yaml", "reconstructor.yaml", "pipeline.yaml"])
def test_config_files_hold_the_table_defaults(name):
    files = load_params_file(find_config(name))
    assert files, f"{name} is empty"
    for node, params in files.items():
        assert node in TABLE, f"{name}: {node} is not a node of this package"
        for key, value in params.items():
            assert key in TABLE[node], f"{name}: {node}.{key} is not a parameter"
            assert _same(value, TABLE[node][key]), (
                f"{name}: {node}.{key} is {value!r}, the parameter's default is {TABLE[node][key]!r}"
            )


# --------------------------------------------------------------------------- launch files


def _launch_installed() -> bool:
    """The real ``launch`` and ``launch_ros`` (not the checkout's ``launch/`` folder)."""
    try:
        import launch_ros  # noqa: F401
        from launch import LaunchService  # noqa: F401
    except ImportError:
        return False
    return True


_NOT_A_LITERAL = object()


def _module_file(module: str) -> Path | None:
    path = ROOT.joinpath(*module.split(".")).with_suffix(".py")
    return path if path.is_file() else None


def _declared_by_source(path: Path) -> list[tuple[str | None, Any]]:
    """``(name, default)`` of every ``DeclareLaunchArgument`` in ``path`` and the stir_ros modules it imports.

    ``name`` is None where it is not a constant (declared in a loop: every graph argument of the
    mode); ``default`` is None without a default, ``_NOT_A_LITERAL`` where it is computed.
    """
    out: list[tuple[str | None, Any]] = []
    tree = ast.parse(path.read_text())
    constants = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                constants[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("stir_ros"):
            imported = _module_file(node.module)
            if imported is not None:
                out += _declared_by_source(imported)
        if not isinstance(node, ast.Call):
            continue
        func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
        if func != "DeclareLaunchArgument":
            continue
        kwargs = {k.arg: k.value for k in node.keywords}
        name_expr = node.args[0] if node.args else kwargs.get("name")
        default_expr = node.args[1] if len(node.args) > 1 else kwargs.get("default_value")
        name = None
        if isinstance(name_expr, ast.Constant):
            name = name_expr.value
        elif isinstance(name_expr, ast.Name) and name_expr.id in constants:
            name = constants[name_expr.id]
        if default_expr is None:
            default = None
        else:
            try:
                default = ast.literal_eval(default_expr)
            except ValueError:
                default = _NOT_A_LITERAL
        out.append((name, default))
    return out


def _declared_launch_arguments(path: Path, mode: str) -> dict[str, Any]:
    """Launch argument -> its default text (None: none) as the launch file declares it."""
    if _launch_installed():
        from launch import LaunchContext
        from launch.launch_description_sources import get_launch_description_from_python_launch_file
        from launch.utilities import perform_substitutions

        description = get_launch_description_from_python_launch_file(str(path))
        return {
            a.name: None if a.default_value is None else perform_substitutions(LaunchContext(), a.default_value)
            for a in description.get_launch_arguments()
        }
    declared: dict[str, Any] = {}
    for name, default in _declared_by_source(path):
        for each in [name] if name is not None else MODE_ARGUMENTS[mode]:
            declared[each] = default
    return declared


def _mode_of(path: Path) -> str:
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "MODE":
            return ast.literal_eval(node.value)
    raise AssertionError(f"{path.name} has no MODE")


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_argument_defaults_are_the_table_defaults(path):
    mode = _mode_of(path)
    declared = _declared_launch_arguments(path, mode)
    assert set(MODE_ARGUMENTS[mode]) <= set(declared), f"{path.name} does not declare every argument of {mode}"
    nodes = {n.name for n in build_graph(mode, None, {"bag": "b"} if mode == "replay" else {}).nodes}
    for name, default in declared.items():
        assert default is not None, f"{path.name}: launch argument {name} has no default"
        if name not in LAUNCH_ARGUMENTS or default in ("", _NOT_A_LITERAL):
            continue  # empty: the params file's value (checked above); computed: not a retyped value
        targets, param, _ = LAUNCH_ARGUMENTS[name]
        for node in set(targets) & nodes:
            if param in TABLE[node]:
                value = parse_value(default, TABLE[node][param])
                assert _same(value, TABLE[node][param]), (
                    f"{path.name}: {name} defaults to {default!r}, {node}.{param} to {TABLE[node][param]!r}"
                )


@pytest.mark.parametrize("mode", sorted(MODE_ARGUMENTS))
def test_what_the_launch_defaults_start_holds_the_table_defaults(mode):
    """Every launch argument left at its (empty) default: the nodes get the table's values."""
    given = {name: "" for name in MODE_ARGUMENTS[mode]}
    if mode == "replay":
        given["bag"] = "some_bag"
    for spec in build_graph(mode, None, given).nodes:
        own = GRAPH_SETS.get((mode, spec.name), {})
        for key, value in spec.parameters.items():
            expected = own[key] if key in own else TABLE[spec.name].get(key)
            assert _same(value, expected), f"{mode}: {spec.name}.{key} starts as {value!r}, not {expected!r}"


# --------------------------------------------------------------------------- nodes and dataclasses


def _managed_node_class(node: str) -> type:
    if node == DRIVER_NAME:
        from stir_ros.ros.driver_node import ManagedSpikeCameraDriver

        return ManagedSpikeCameraDriver
    from stir_ros.ros.reconstructor_node import ManagedSpikeReconstructor

    return ManagedSpikeReconstructor


@pytest.mark.parametrize("node_name", [DRIVER_NAME, RECONSTRUCTOR_NAME])
def test_nodes_declare_the_table(node_name):
    """The parameters a node declares (what ``ros2 param get/describe`` shows): default, type, range."""
    rclpy = pytest.importorskip("rclpy")
    from rclpy.context import Context

    from stir_ros.core.limits import bound_for

    context = Context()
    rclpy.init(context=context)
    try:
        node = _managed_node_class(node_name)(context=context)  # managed: declares, starts nothing
        try:
            for spec in SPECS[node_name]:
                value = node.get_parameter(spec.name).value
                assert _same(value, spec.default), f"{node_name} declares {spec.name}={value!r}, the table {spec.default!r}"
                (desc,) = node.describe_parameters([spec.name])
                bound = bound_for(node_name, spec.name)
                ranges = list(desc.integer_range) + list(desc.floating_point_range)
                if bound is None:
                    assert ranges == [], f"{node_name}.{spec.name} has a range but no bound"
                    continue
                (rng,) = ranges
                low = 0 if bound.zero_ok else bound.low
                assert (rng.from_value, rng.to_value) == (low, bound.high), f"{node_name}.{spec.name} range"
        finally:
            node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)


def test_settings_dataclasses_hold_the_table_defaults():
    pytest.importorskip("rclpy")
    from stir_ros.ros.driver_node import DriverSettings
    from stir_ros.ros.reconstructor_node import ReconstructorSettings

    for cls, node in ((DriverSettings, DRIVER_NAME), (ReconstructorSettings, RECONSTRUCTOR_NAME)):
        fields = {f.name: f.default for f in dataclasses.fields(cls)}
        assert set(fields) == set(TABLE[node]), f"{cls.__name__} fields are not the parameters of {node}"
        for name, default in fields.items():
            assert _same(default, TABLE[node][name]), f"{cls.__name__}.{name} = {default!r}, the table {TABLE[node][name]!r}"


def test_engine_config_holds_the_reconstructor_defaults():
    if importlib.util.find_spec("torch") is None:
        pytest.skip("the engine needs PyTorch (the stir extra)")
    from stir_ros.engine import EngineConfig

    fields = {f.name: f.default for f in dataclasses.fields(EngineConfig) if f.name in TABLE[RECONSTRUCTOR_NAME]}
    assert {"method", "window_length", "alpha", "device", "precision", "max_batch", "weights", "backend"} <= set(fields)
    # The library's engine is exact by default (as eval), the node and bag reconstruct choose (auto).
    assert (fields.pop("precision"), fields.pop("backend")) == ("fp32", "torch")
    assert TABLE[RECONSTRUCTOR_NAME]["precision"] == TABLE[RECONSTRUCTOR_NAME]["backend"] == "auto"
    for name, default in fields.items():
        assert _same(_no_weights(default), TABLE[RECONSTRUCTOR_NAME][name]), f"EngineConfig.{name} = {default!r}"


def test_every_engine_setting_has_one_name_the_node_parameters():
    """EngineConfig's fields are reconstructor parameters by name: settings give it theirs without a mapping."""
    if importlib.util.find_spec("torch") is None:
        pytest.skip("the engine needs PyTorch (the stir extra)")
    from stir_ros.bag.reconstruct import ReconstructOptions
    from stir_ros.engine import ENGINE_FIELDS, EngineConfig

    assert set(ENGINE_FIELDS) == {f.name for f in dataclasses.fields(EngineConfig)}
    assert set(ENGINE_FIELDS) <= set(TABLE[RECONSTRUCTOR_NAME])
    assert set(ENGINE_FIELDS) <= {f.name for f in dataclasses.fields(ReconstructOptions)}
    options = ReconstructOptions(method="tfi", torch_compile="default", weights="", window_length=61, max_batch=2)
    config = EngineConfig.from_settings(options)
    assert (config.method, config.torch_compile, config.weights, config.window_length, config.max_batch) == (
        "tfi", "default", None, 61, 2)


# --------------------------------------------------------------------------- stir-ros bag flags


def _bag_defaults(*argv: str) -> argparse.Namespace:
    """The parsed ``stir-ros bag ...`` command line: every flag at its default."""
    return build_parser(only="bag").parse_args(["bag", *argv])


#: ``bag reconstruct`` flag (dest) -> the reconstructor parameter it sets.
RECONSTRUCT_FLAGS = (
    "method", "weights", "window_length", "stride_frames", "output_rate_hz", "alpha", "device", "precision",
    "backend", "max_batch", "output_encoding", "frame_id", "torch_compile", "cuda_graphs", "feature_reuse",
)  # fmt: skip


def test_bag_reconstruct_flags_default_to_the_node_parameters():
    args = _bag_defaults("reconstruct", "in", "out")
    for name in RECONSTRUCT_FLAGS:
        value = _no_weights(getattr(args, name))
        expected = BAG_RECONSTRUCT_OWN.get(name, TABLE[RECONSTRUCTOR_NAME][name])
        assert _same(value, expected), f"bag reconstruct --{name.replace('_', '-')} defaults to {value!r}, not {expected!r}"
    assert args.image_topic == "/" + DEFAULT_TOPICS["image_topic"]
    assert args.camera_info_topic == "/" + DEFAULT_TOPICS["camera_info_topic"]


def test_bag_reconstruct_flags_default_to_the_options_dataclass():
    """The CLI and the Python API (``ReconstructOptions``) of ``bag reconstruct`` give the same run."""
    from stir_ros.bag.reconstruct import ReconstructOptions

    args = vars(_bag_defaults("reconstruct", "in", "out"))
    fields = {f.name: f.default for f in dataclasses.fields(ReconstructOptions)}
    shared = set(fields) & set(args)
    assert set(RECONSTRUCT_FLAGS) <= shared
    for name in shared:
        assert _same(args[name], fields[name]), f"--{name.replace('_', '-')} {args[name]!r}, ReconstructOptions {fields[name]!r}"


def test_every_reconstruct_option_is_the_flag_of_its_name():
    """``bag reconstruct`` builds its options by name (``ReconstructOptions.from_args``): none may lack its flag."""
    from stir_ros.bag.reconstruct import ReconstructOptions

    args = _bag_defaults("reconstruct", "in", "out", "--method", "tfi", "--spikes-topic", "/cam/spikes",
                         "--max-batch", "3", "--torch-compile", "default", "--keep-topics")
    names = {f.name for f in dataclasses.fields(ReconstructOptions)}
    assert names <= set(vars(args)), f"options without a flag: {sorted(names - set(vars(args)))}"
    opts = ReconstructOptions.from_args(args)
    assert (opts.method, opts.spikes_topic, opts.max_batch, opts.torch_compile, opts.keep_topics) == (
        "tfi", "/cam/spikes", 3, "default", [])


def test_other_bag_flags_default_to_the_driver_parameters():
    from_dat = _bag_defaults("from-dat", "a.dat", "out", "--height", "1", "--width", "1", "--frame-rate-hz", "1")
    assert _same(from_dat.frames_per_packet, TABLE[DRIVER_NAME]["frames_per_packet"])
    assert _same(from_dat.frame_id, TABLE[DRIVER_NAME]["frame_id"])
    assert _same(from_dat.encoding, TABLE[DRIVER_NAME]["encoding"])
    assert from_dat.spikes_topic == "/" + DEFAULT_TOPICS["spikes_topic"]
    play = _bag_defaults("play", "in")
    assert _same(play.wait_for_subscribers, TABLE[DRIVER_NAME]["wait_for_subscribers"])
    assert _same(play.wait_for_subscribers_timeout_s, TABLE[DRIVER_NAME]["wait_for_subscribers_timeout_s"])
