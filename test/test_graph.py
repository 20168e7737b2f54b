# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The node graph (stir_ros.ros.graph), the launch files built on it, and the runner's commands."""

from __future__ import annotations

import ast
import py_compile
from pathlib import Path

import numpy as np
import pytest
import yaml

from stir_ros.core.dat import write_dat
from stir_ros.core.defaults import FRAME_ID, GRAPH_WAIT_FOR_SUBSCRIBERS_TIMEOUT_S
from stir_ros.core.errors import ConfigError
from stir_ros.ros.graph import (
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
from stir_ros.ros.graph_runner import node_command, parse_items

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_FILES = sorted((ROOT / "launch").glob("*.launch.py"))


def test_pipeline_from_default_config():
    graph = build_graph("pipeline")
    assert [n.name for n in graph.nodes] == [DRIVER_NAME, RECONSTRUCTOR_NAME]
    assert [n.executable for n in graph.nodes] == ["spike_camera_driver", "spike_reconstructor"]
    assert all(n.package == "stir_ros" and n.namespace == "" and n.remappings == () for n in graph.nodes)
    yaml_params = load_params_file(find_config("pipeline.yaml"))
    # The reconstructor warms up at the driver's size before it subscribes (no packet meets a cold model).
    assert dict(graph.node(RECONSTRUCTOR_NAME).parameters) == {
        **yaml_params[RECONSTRUCTOR_NAME], "warmup_height": yaml_params[DRIVER_NAME]["height"],
        "warmup_width": yaml_params[DRIVER_NAME]["width"],
    }
    # The driver waits for the reconstructor started with it (a short file would otherwise be gone
    # before the reconstructor subscribes).
    assert dict(graph.node(DRIVER_NAME).parameters) == {
        **yaml_params[DRIVER_NAME], "wait_for_subscribers": 1,
        "wait_for_subscribers_timeout_s": GRAPH_WAIT_FOR_SUBSCRIBERS_TIMEOUT_S,
    }
    assert graph.processes == ()


def test_the_pipeline_warms_up_at_the_drivers_size_unless_told_another():
    def warm(args, mode="pipeline"):
        p = build_graph(mode, None, args).node(RECONSTRUCTOR_NAME).parameters
        return p.get("warmup_height"), p.get("warmup_width")

    assert warm({"height": "64", "width": "96"}) == (64, 96)
    assert warm({"height": "64", "width": "96", "warmup_height": "32", "warmup_width": "48"}) == (32, 48)
    assert warm({"bag": "no_such_bag"}, "replay") == (None, None)  # not known: at the first packet
    assert warm({"bag": "b", "warmup_height": "250", "warmup_width": "400"}, "replay") == (250, 400)
    assert warm({}, "reconstruct") == (None, None)


def test_replay_warms_up_at_the_size_of_the_bags_first_packet_on_the_reconstructors_topic(tmp_path):
    from stir_ros.bag.convert import dat_to_bag
    from stir_ros.bag.reader import spike_frame_size

    write_dat(tmp_path / "a.dat", np.zeros((300, 16, 24), np.uint8))
    dat_to_bag(tmp_path / "a.dat", tmp_path / "bag", 16, 24, 20000.0, topic="/left/spikes")
    assert spike_frame_size(tmp_path / "bag") == (16, 24) == spike_frame_size(tmp_path / "bag", "/left/spikes")

    def warm(**args):
        p = build_graph("replay", None, {"bag": str(tmp_path / "bag"), **args}).node(RECONSTRUCTOR_NAME).parameters
        return p.get("warmup_height"), p.get("warmup_width")

    assert warm(namespace="left") == (16, 24)
    assert warm(spikes_topic="/left/spikes") == (16, 24)
    assert warm() == (None, None)  # the reconstructor reads /spikes, which the bag does not have
    assert warm(namespace="left", warmup_height="8", warmup_width="8") == (8, 8)  # given: kept
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "metadata.yaml").write_text("not: [a bag")
    assert spike_frame_size(tmp_path / "junk") is None and spike_frame_size(tmp_path / "a.dat") is None


def test_a_params_file_can_turn_the_wait_off(tmp_path):
    params = tmp_path / "p.yaml"
    params.write_text("spike_camera_driver:\n  ros__parameters: {wait_for_subscribers: 0}\n")
    assert build_graph("pipeline", params).node(DRIVER_NAME).parameters["wait_for_subscribers"] == 0


def test_frame_id_is_a_launch_argument_for_every_node_of_the_camera():
    for mode, extra in (("pipeline", {}), ("reconstruct", {}), ("replay", {"bag": "b"})):
        assert "frame_id" in MODE_ARGUMENTS[mode]
        graph = build_graph(mode, None, {"frame_id": "cam_left_optical_frame", "namespace": "left", **extra})
        assert {n.name: n.parameters["frame_id"] for n in graph.nodes} == {
            n.name: "cam_left_optical_frame" for n in graph.nodes
        }
    assert dict((s.name, s.default) for s in DRIVER_PARAMETERS)["frame_id"] == FRAME_ID


def test_the_defect_map_is_a_launch_argument():
    """README "Using a real camera": start the node with ``defect_map_url:=file:///path/defects.yaml``.

    The launch files and ``stir-ros run`` refused it as an unknown launch argument.
    """
    for mode, extra in (("pipeline", {}), ("reconstruct", {}), ("replay", {"bag": "b"})):
        graph = build_graph(mode, None, {"defect_map_url": "file:///path/defects.yaml", "defect_correction": "file",
                                         **extra})  # fmt: skip
        rec = graph.node(RECONSTRUCTOR_NAME).parameters
        assert (rec["defect_map_url"], rec["defect_correction"]) == ("file:///path/defects.yaml", "file")


def test_a_launch_arguments_list_of_choices_names_the_parameters_default():
    """``ros2 launch ... --show-args`` listed ``fp32 | fp16 | bf16`` for ``precision`` after its default became ``auto``."""
    defaults = {s.name: s.default for s in (*DRIVER_PARAMETERS, *RECONSTRUCTOR_PARAMETERS)}
    checked = 0
    for name, (_, parameter, help_text) in LAUNCH_ARGUMENTS.items():
        choices = help_text.rsplit(": ", 1)[-1].split(" | ")
        if parameter is None or len(choices) < 2:
            continue
        checked += 1
        assert str(defaults[parameter]).lower() in [c.strip() for c in choices], (name, help_text)
    assert checked >= 9


def test_rate_policy_and_the_simulated_sensor_are_launch_arguments():
    graph = build_graph("pipeline", None, {"rate_policy": "drop_oldest", "sim_sensor": "realistic dark_rate_hz=40"})
    assert graph.node(RECONSTRUCTOR_NAME).parameters["rate_policy"] == "drop_oldest"
    assert graph.node(DRIVER_NAME).parameters["sim_sensor"] == "realistic dark_rate_hz=40"
    assert "rate_policy" in MODE_ARGUMENTS["reconstruct"] and "rate_policy" in MODE_ARGUMENTS["replay"]


def test_launch_arguments_override_with_types():
    graph = build_graph(
        "pipeline", None,
        {"method": "tfp", "window_length": "41", "stride_frames": 20, "realtime": "false", "frame_rate_hz": "40000",
         "use_sim_time": "true", "weights": ""},
    )  # fmt: skip
    rec, drv = graph.node(RECONSTRUCTOR_NAME).parameters, graph.node(DRIVER_NAME).parameters
    assert (rec["method"], rec["window_length"], rec["stride_frames"]) == ("tfp", 41, 20)
    assert drv["realtime"] is False and drv["frame_rate_hz"] == 40000.0 and isinstance(drv["frame_rate_hz"], float)
    assert rec["use_sim_time"] is True and drv["use_sim_time"] is True
    assert rec["weights"] == ""  # an empty launch argument keeps the file's value


def test_topics_are_remappings_and_namespace_applies():
    graph = build_graph(
        "pipeline", None,
        {"spikes_topic": "/cam/spikes", "image_topic": "/cam/image_recon", "camera_info_topic": "/cam/info",
         "namespace": "robot1"},
    )  # fmt: skip
    drv, rec = graph.node(DRIVER_NAME), graph.node(RECONSTRUCTOR_NAME)
    assert drv.namespace == rec.namespace == "robot1"
    assert drv.remappings == (("spikes", "/cam/spikes"), ("spikes/camera_info", "/cam/spikes/camera_info"))
    assert rec.remappings == drv.remappings + (("image", "/cam/image_recon"), ("camera_info", "/cam/info"))


def test_reconstruct_and_replay_modes():
    rec_only = build_graph("reconstruct", None, {"method": "tfi"})
    assert [n.name for n in rec_only.nodes] == [RECONSTRUCTOR_NAME]
    assert rec_only.nodes[0].parameters["method"] == "tfi"
    replay = build_graph("replay", None, {"bag": "/data/run1", "method": "tfp"})
    assert [n.name for n in replay.nodes] == [RECONSTRUCTOR_NAME]
    assert replay.nodes[0].parameters["use_sim_time"] is True
    play = replay.processes[0]
    assert play.cmd == ("stir-ros", "bag", "play", "/data/run1", "--clock", "--wait-for-subscribers", "1",
                        "--wait-for-subscribers-timeout-s", f"{GRAPH_WAIT_FOR_SUBSCRIBERS_TIMEOUT_S:g}",
                        "--wait-for-subscribers-on", "/image:1")  # one consumer of the images by default
    assert play.package == "stir_ros"  # an executable of lib/stir_ros, resolved like `ros2 run` does
    with pytest.raises(ConfigError, match="bag"):
        build_graph("replay")


def test_replay_waits_for_image_subscribers_and_delays_on_request():
    cmd = build_graph("replay", None, {"bag": "b", "namespace": "robot1", "wait_for_image_subscribers": "2",
                                       "delay": "1.5"}).processes[0].cmd  # fmt: skip
    assert cmd[-4:] == ("--wait-for-subscribers-on", "/robot1/image:2", "--delay", "1.5")
    remapped = build_graph("replay", None, {"bag": "b", "image_topic": "/cam/recon", "wait_for_image_subscribers": 1})
    assert remapped.processes[0].cmd[-2:] == ("--wait-for-subscribers-on", "/cam/recon:1")
    off = build_graph("replay", None, {"bag": "b", "wait_for_image_subscribers": "0"})
    assert "--wait-for-subscribers-on" not in off.processes[0].cmd
    for bad in ({"wait_for_image_subscribers": "-1"}, {"wait_for_image_subscribers": "x"}, {"delay": "nan"},
                {"delay": "-2"}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            build_graph("replay", None, {"bag": "b", **bad})


def test_params_file_wildcard_and_qualified_names(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({
        "/**": {"ros__parameters": {"use_sim_time": True}},
        "/robot1/spike_reconstructor": {"ros__parameters": {"method": "tfi"}},
        "spike_reconstructor": {"ros__parameters": {"method": "tfp", "max_batch": 2}},
    }))  # fmt: skip
    graph = build_graph("reconstruct", path, {"namespace": "robot1"})
    assert dict(graph.nodes[0].parameters) == {"use_sim_time": True, "method": "tfi", "max_batch": 2}


@pytest.mark.parametrize(
    ("mode", "args", "needle"),
    [
        ("nope", {}, "mode"),
        ("pipeline", {"colour": "red"}, "unknown launch argument"),
        ("pipeline", {"window_length": "forty"}, "integer"),
        ("pipeline", {"realtime": "maybe"}, "true or false"),
        ("pipeline", {"alpha": "x"}, "number"),
    ],
)
def test_graph_errors(mode, args, needle):
    with pytest.raises(ConfigError, match=needle):
        build_graph(mode, None, args)


def test_bad_params_files(tmp_path):
    (tmp_path / "a.yaml").write_text("spike_reconstructor: [1, 2]\n")
    with pytest.raises(ConfigError, match="ros__parameters"):
        load_params_file(tmp_path / "a.yaml")
    with pytest.raises(ConfigError, match="cannot read"):
        load_params_file(tmp_path / "missing.yaml")


def test_parse_value():
    assert parse_value("7", 0) == 7 and parse_value("7", 0.0) == 7.0 and parse_value(3, 0.5) == 3.0
    assert parse_value("True", False) is True and parse_value("x", "") == "x"


def test_params_yaml_round_trip(tmp_path):
    spec = build_graph("pipeline", None, {"namespace": "ns", "method": "tfp"}).node(RECONSTRUCTOR_NAME)
    path = tmp_path / "p.yaml"
    path.write_text(spec.params_yaml())
    assert load_params_file(path) == {"spike_reconstructor": dict(spec.parameters)}
    assert path.read_text().startswith("/**/spike_reconstructor:")


# --------------------------------------------------------------------------- launch files


def _launch_constants(path: Path) -> dict[str, object]:
    out = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) and node.targets[0].id == "MODE":
            out["MODE"] = ast.literal_eval(node.value)
    out["ARGUMENTS"] = MODE_ARGUMENTS[out["MODE"]]
    return out


def test_launch_files_exist_and_compile():
    assert [p.name for p in LAUNCH_FILES] == ["reconstruct.launch.py", "replay.launch.py", "spike_pipeline.launch.py"]
    for path in LAUNCH_FILES:
        py_compile.compile(str(path), doraise=True)
        source = path.read_text()
        assert "def generate_launch_description" in source and "launch_description(MODE)" in source
    # The shared launch code cannot run without launch_ros; it must at least compile.
    py_compile.compile(str(ROOT / "stir_ros" / "ros" / "launch_support.py"), doraise=True)


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_files_get_what_they_need_from_the_graph(path):
    consts = _launch_constants(path)
    mode, arguments = consts["MODE"], consts["ARGUMENTS"]
    assert set(arguments) <= set(LAUNCH_ARGUMENTS)
    for required in ("method", "weights", "device", "precision", "window_length", "stride_frames", "spikes_topic",
                     "image_topic", "use_sim_time"):  # fmt: skip
        assert required in arguments
    # As launch passes them: every declared argument as a string, empty when not given.
    given = {name: "" for name in arguments}
    if mode == "replay":
        given["bag"] = "bags/some_bag"
    given.update(method="tfp", window_length="41")
    graph = build_graph(mode, None, given)
    for spec in graph.nodes:  # the fields of launch_ros.actions.Node(...)
        assert isinstance(spec.package, str) and isinstance(spec.executable, str) and isinstance(spec.name, str)
        assert isinstance(spec.namespace, str)
        assert all(isinstance(k, str) for k in spec.parameters)
        assert all(isinstance(a, str) and isinstance(b, str) for a, b in spec.remappings)
    assert graph.node(RECONSTRUCTOR_NAME).parameters["window_length"] == 41
    assert [p.cmd[:3] for p in graph.processes] == ([("stir-ros", "bag", "play")] if mode == "replay" else [])


# --------------------------------------------------------------------------- runner commands


def test_node_command_line():
    spec = build_graph("pipeline", None, {"namespace": "r1", "spikes_topic": "/s"}).node(RECONSTRUCTOR_NAME)
    cmd = node_command(spec, "run/p.yaml", ["--ros-args", "--log-level", "debug"])
    i = cmd.index("--ros-args")
    assert Path(cmd[0]).name == "spike_reconstructor" or cmd[1:3] == ["-m", "stir_ros.ros.reconstructor_node"]
    assert cmd[i:] == ["--ros-args", "-r", "__node:=spike_reconstructor", "-r", "__ns:=/r1", "--params-file",
                       "run/p.yaml", "-r", "spikes:=/s", "-r", "spikes/camera_info:=/s/camera_info",
                       "--log-level", "debug"]  # fmt: skip


def test_parse_items():
    assert parse_items(["c.yaml", "method:=tfp", "bag:=a:=b"]) == ("c.yaml", {"method": "tfp", "bag": "a:=b"})
    with pytest.raises(ConfigError):
        parse_items(["a.yaml", "b.yaml"])
