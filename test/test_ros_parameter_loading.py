# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Slow run-time parameter changes are made beside the stream, through real node processes.

A driver plays a looped .dat in real time (100 frames a packet, 200 packets/s) to a reconstructor
that subscribes RELIABLE, keep last 50: a quarter of a second of packets. A change of the engine
(weights, precision: a network read and built) or of ``defect_map_url`` to a ``--dark`` map takes
longer than that to make. The node answers at once and goes on with what is in force while it is
made: packets are received and images published meanwhile (the node's own counts, logged when
the change is in force), fewer packets are lost than the subscription keeps (none, but for the odd
stall of a loaded machine), and afterwards the new part is used. A part that fails to load leaves
the old one and its parameter value in force; a change that comes while another loads is applied
after it, not lost. Counts, never times.
"""

from __future__ import annotations

import gc
import re
import shutil
import uuid
import weakref
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
torch = pytest.importorskip("torch")

from ros_support import Collector, call_service, get_parameters, set_parameters, spin_until, stop_process  # noqa: E402

from stir_ros.core.dat import write_dat  # noqa: E402
from stir_ros.core.defect_file import save_defect_map  # noqa: E402
from stir_ros.core.defects import DefectMap  # noqa: E402
from stir_ros.engine import default_weights_path  # noqa: E402
from stir_ros.ros.reconstructor_node import SPIKES_QOS  # noqa: E402
from stir_ros.ros.reconstructor_parameters import QUICK_MAP_BYTES  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow]

RATE = 20000.0
STIR = {"method": "stir", "device": "cpu", "precision": "fp32", "output_rate_hz": 20.0,
        "diagnostics_period_s": 0.2, "stall_timeout_s": 600.0}  # fmt: skip
MEANWHILE = re.compile(r"parameters in force after loading .*: (.+); meanwhile (\d+) packets received and (\d+) images")


def _start(nodes, ros_node, tmp_path: Path, params: dict, h: int, w: int) -> tuple[str, Collector]:
    """A reconstructor with ``params``, then a driver playing a looped .dat of ``h``x``w`` in real time to it."""
    ns = f"load_{uuid.uuid4().hex[:8]}"
    write_dat(tmp_path / "stream.dat", (np.random.default_rng(0).random((1000, h, w)) < 0.3).astype(np.uint8))
    col = Collector(ros_node, ns, spikes=False)
    nodes.start("spike_reconstructor", ns, {**params, "warmup_height": h, "warmup_width": w})
    col.wait_for_reconstructor(nodes, timeout=120)
    nodes.start("spike_camera_driver", ns, {
        "source": "dat", "dat_path": str(tmp_path / "stream.dat"), "height": h, "width": w, "frame_rate_hz": RATE,
        "frames_per_packet": 100, "realtime": True, "loop": True, "wait_for_subscribers": 1,
    })  # fmt: skip
    assert col.wait_for_diag(lambda d: int(d["input_packets"]) >= 200 and int(d["images_published"]) >= 3, 120), (
        col.diag, nodes.logs())  # fmt: skip
    return ns, col


def _meanwhile(nodes) -> list[tuple[str, int, int]]:
    """Each load the reconstructor took in: (parameters, packets received and images published meanwhile)."""
    return [(m[1], int(m[2]), int(m[3])) for m in MEANWHILE.finditer(nodes.logs())]


def _lost_fewer_than_a_history(col: Collector, nodes) -> None:
    """After 200 more packets: fewer lost in all than the subscription keeps.

    A callback that held the executor through a load loses every packet beyond them; none should be
    lost, but for the odd stall of a loaded machine.
    """
    seen = int(col.diag["input_packets"])
    assert col.wait_for_diag(lambda d: int(d["input_packets"]) >= seen + 200, timeout=60), col.diag
    lost = int(col.diag["input_lost_packets"])
    assert lost < SPIKES_QOS.depth, (lost, [ln for ln in nodes.logs().splitlines() if "lost" in ln or "loading" in ln])


def test_an_engine_change_is_made_while_the_stream_goes_on(nodes, ros_node, tmp_path):
    weights = tmp_path / "copy_of_the_default.pt"
    shutil.copy(default_weights_path(), weights)
    ns, col = _start(nodes, ros_node, tmp_path, STIR, 32, 48)
    results = set_parameters(ros_node, ns, weights=str(weights), precision="bf16")
    assert all(r.successful for r in results), [r.reason for r in results]
    assert col.wait_for_diag(lambda d: d["precision"] == "bf16" and not d.get("parameters_loading"), 120), col.diag
    images = len(col.images)
    assert spin_until(ros_node, lambda: len(col.images) >= images + 3, 60), nodes.logs()  # from the new engine
    _lost_fewer_than_a_history(col, nodes)
    loads = _meanwhile(nodes)  # set_parameters sets one parameter after the other: the 2nd waits for the 1st
    assert {n for names, _p, _i in loads for n in names.split(", ")} == {"precision", "weights"}, nodes.logs()
    assert all(packets > 0 for _n, packets, _i in loads) and sum(i for _n, _p, i in loads) > 0, loads
    assert get_parameters(ros_node, ns, "weights", "precision") == [str(weights), "bf16"]


def test_a_failed_load_keeps_what_is_in_force_and_a_change_behind_it_is_not_lost(nodes, ros_node, tmp_path):
    other = tmp_path / "other.pt"  # a torch file, no checkpoint: only reading it tells
    torch.save({"weight": torch.zeros(3, 3)}, other)
    ns, col = _start(nodes, ros_node, tmp_path, STIR, 32, 48)
    for change in ({"precision": "bf16"}, {"output_encoding": "mono16"}, {"weights": str(other)}):
        [result] = set_parameters(ros_node, ns, **change)  # the 2nd and 3rd come while the 1st loads
        assert result.successful, (change, result.reason)
    assert col.wait_for_diag(lambda d: d["parameter_load_failures"] == "1" and not d.get("parameters_loading"), 120), (
        col.diag, nodes.logs())  # fmt: skip
    assert "is not a stir_ros checkpoint" in col.diag["last_parameter_error"], col.diag
    assert col.diag["precision"] == "bf16" and col.diag["method"] == "stir", col.diag
    assert get_parameters(ros_node, ns, "weights", "precision", "output_encoding") == ["", "bf16", "mono16"]
    images = len(col.images)
    assert spin_until(ros_node, lambda: len(col.images) >= images + 3, 60), nodes.logs()
    assert {m.encoding for m in col.images[images:]} == {"mono16"}
    _lost_fewer_than_a_history(col, nodes)
    assert [names for names, _p, _i in _meanwhile(nodes)] == ["precision"], nodes.logs()


def _defect_map(path: Path, h: int, w: int, hot: list[tuple[int, int]], dark: bool) -> str:
    mask = np.zeros((h, w), bool)
    mask[tuple(np.array(hot).T)] = True
    table = (np.random.default_rng(1).random((h, w)) * 20).astype(np.float32) if dark else None
    save_defect_map(path, DefectMap(mask, np.zeros_like(mask), 60000, table, 10.0), RATE)
    return str(path)


def test_a_dark_defect_map_is_read_while_the_stream_goes_on(nodes, ros_node, tmp_path):
    h, w = 128, 256
    first = _defect_map(tmp_path / "first.yaml", h, w, [(3, 4), (10, 20), (12, 2)], dark=False)
    dark = _defect_map(tmp_path / "dark.yaml", h, w, [(1, 1), (5, 5), (7, 9), (100, 200), (127, 255)], dark=True)
    assert Path(dark).stat().st_size > QUICK_MAP_BYTES  # read on the loader thread
    broken = tmp_path / "broken.yaml"  # large, and refused only once read: its table has the wrong size
    broken.write_text(Path(dark).read_text().replace(f"height: {h}", f"height: {h - 1}"))
    params = {"method": "tfp", "output_rate_hz": 20.0, "diagnostics_period_s": 0.2, "defect_correction": "file",
              "defect_map_url": first}  # fmt: skip
    ns, col = _start(nodes, ros_node, tmp_path, params, h, w)
    assert col.diag["hot_pixels"] == "3"
    [result] = set_parameters(ros_node, ns, defect_map_url=dark)
    assert result.successful, result.reason
    assert col.wait_for_diag(lambda d: d["hot_pixels"] == "5" and d["dark_rate_measured"] == "True", 60), col.diag
    assert not col.diag.get("parameters_loading")
    _lost_fewer_than_a_history(col, nodes)
    [result] = set_parameters(ros_node, ns, defect_map_url=str(broken))
    assert result.successful, result.reason
    assert col.wait_for_diag(lambda d: d["parameter_load_failures"] == "1" and not d.get("parameters_loading"), 60), col.diag
    assert "dark_rate_hz must be" in col.diag["last_parameter_error"] and col.diag["hot_pixels"] == "5", col.diag
    assert get_parameters(ros_node, ns, "defect_map_url") == [dark]
    _lost_fewer_than_a_history(col, nodes)
    [(names, packets, _images)] = _meanwhile(nodes)
    assert names == "defect_map_url" and packets > 0, nodes.logs()


def test_a_cleanup_while_a_change_loads_leaves_no_engine_behind(ros_node):
    """Configure and cleanup stay synchronous: a cleanup waits for the load under way and lets its engine go."""
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.parameter import Parameter

    from stir_ros.ros.reconstructor_node import ManagedSpikeReconstructor

    node = ManagedSpikeReconstructor(namespace=f"/load_{uuid.uuid4().hex[:8]}",
                                     parameter_overrides=[Parameter(k, value=v) for k, v in STIR.items()])  # fmt: skip
    made: list[weakref.ref] = []
    build = node._make_engine

    def tracked(settings):
        engine = build(settings)
        made.append(weakref.ref(engine))
        return engine

    node._make_engine = tracked
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        [result] = node.set_parameters([Parameter("precision", value="bf16")])
        assert result.successful and node.parameters_loading == "precision"  # made on the loader thread
        assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
        gc.collect()
        assert len(made) == 2 and [ref() for ref in made] == [None, None]  # configure's and the change's
        assert node.parameters_loading == ""
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS  # the parameters hold the change
        assert node.engine.precision == "bf16" and node.parameters_loading == ""
    finally:
        node.destroy_node()


@pytest.mark.parametrize("executable", ["spike_reconstructor", "spike_reconstructor_lifecycle"])
def test_a_node_stopped_while_a_change_loads_exits_cleanly(executable, nodes, ros_node):
    """The load is waited for: a process that exits under a native build on another thread is aborted."""
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState

    ns = f"load_{uuid.uuid4().hex[:8]}"
    proc = nodes.start(executable, ns, {**STIR, "warmup_height": 64, "warmup_width": 96})
    if executable.endswith("lifecycle"):
        client = ros_node.create_client(ChangeState, f"/{ns}/spike_reconstructor/change_state")
        request = ChangeState.Request(transition=Transition(id=Transition.TRANSITION_CONFIGURE))
        assert call_service(ros_node, client, request, timeout=120, resend_every=None).success, nodes.logs()
    else:
        Collector(ros_node, ns, spikes=False).wait_for_reconstructor(nodes, timeout=120)
    [result] = set_parameters(ros_node, ns, precision="bf16")
    assert result.successful, result.reason
    assert stop_process(proc, timeout=90) == 0, nodes.logs()
    assert "Fatal Python error" not in nodes.logs() and "Traceback" not in nodes.logs(), nodes.logs()


def test_a_failed_load_sets_back_the_changes_of_its_part_that_came_while_it_loaded(nodes, ros_node, tmp_path):
    """One set_parameters call of weights and method arrives as two changes: stir with the old weights was never asked for."""
    other = tmp_path / "other.pt"
    torch.save({"weight": torch.zeros(3, 3)}, other)
    ns = f"load_{uuid.uuid4().hex[:8]}"
    col = Collector(ros_node, ns, spikes=False)
    nodes.start("spike_reconstructor", ns, {"method": "tfp", "diagnostics_period_s": 0.2})
    col.wait_for_reconstructor(nodes)
    assert all(r.successful for r in set_parameters(ros_node, ns, weights=str(other), method="stir"))
    assert col.wait_for_diag(lambda d: d["parameter_load_failures"] == "1" and not d["parameters_loading"], 60), col.diag
    assert get_parameters(ros_node, ns, "weights", "method") == ["", "tfp"] and col.diag["method"] == "tfp", nodes.logs()
