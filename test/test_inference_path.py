# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""``precision: auto`` and ``backend: auto`` resolve as README ("Fast by default") documents.

The probes (OpenVINO installed, native bf16 in /proc/cpuinfo, CUDA) are replaced, so each rule is
checked whatever this machine has; the engine then builds what the rule names.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from stir_ros.core import inference_path as ip
from stir_ros.core.inference_path import MAX_AUTO_LOSS_DB, cpu_has_native_bf16, resolve_inference_path


def _machine(monkeypatch, *, openvino: bool, bf16: bool) -> None:
    monkeypatch.setattr(ip, "openvino_installed", lambda: openvino)
    monkeypatch.setattr(ip, "cpu_has_native_bf16", lambda cpuinfo="/proc/cpuinfo": bf16)


@pytest.mark.parametrize(("openvino", "bf16", "loss", "expected"), [
    (True, True, 0.02, ("openvino", "bf16")),   # native bf16, weights measured within 0.05 dB
    (True, True, 0.051, ("openvino", "fp32")),  # a loss just outside the limit: exact f32
    (True, True, None, ("openvino", "fp32")),   # weights never measured in bf16: exact f32
    (True, False, 0.02, ("openvino", "fp32")),  # no native bf16: the fastest exact path
    (False, True, 0.02, ("torch", "fp32")),     # no OpenVINO: torch, exact
    (False, False, None, ("torch", "fp32")),
])  # fmt: skip
def test_auto_on_a_cpu(monkeypatch, openvino, bf16, loss, expected):
    _machine(monkeypatch, openvino=openvino, bf16=bf16)
    path = resolve_inference_path("cpu", bf16_loss_db=loss)
    assert (path.backend, path.precision) == expected
    assert path.reason.startswith("CPU: ")


def test_auto_on_cuda_is_fp32_eager(monkeypatch):
    _machine(monkeypatch, openvino=True, bf16=True)
    path = resolve_inference_path("cuda", bf16_loss_db=0.0)
    assert (path.backend, path.precision) == ("torch", "fp32")
    assert "GPU" in path.reason


def test_explicit_choices_are_kept_and_auto_fills_the_other(monkeypatch):
    _machine(monkeypatch, openvino=True, bf16=True)
    assert (resolve_inference_path("cpu", "torch", "bf16").backend, resolve_inference_path("cpu", "torch", "bf16").precision) \
        == ("torch", "bf16")  # fmt: skip
    assert resolve_inference_path("cpu", "torch", "auto", bf16_loss_db=0.0).precision == "fp32"  # torch: exact
    assert resolve_inference_path("cpu", "auto", "fp16").backend == "torch"  # OpenVINO has no fp16 CPU path
    assert resolve_inference_path("cpu", "auto", "bf16").backend == "openvino"
    assert resolve_inference_path("cpu", torch_only=True).backend == "torch"  # torch_compile / feature_reuse


def test_loss_bound_is_the_issue_s():
    assert MAX_AUTO_LOSS_DB == 0.05


def test_cpu_flag_probe(tmp_path):
    zen4 = tmp_path / "zen4"
    zen4.write_text("processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16 avx512_vnni\n")
    spr = tmp_path / "spr"
    spr.write_text("flags\t\t: fpu avx512f amx_bf16 amx_tile\n")
    old = tmp_path / "old"
    old.write_text("flags\t\t: fpu sse avx2 avx512f\n")
    assert cpu_has_native_bf16(zen4) and cpu_has_native_bf16(spr)
    assert not cpu_has_native_bf16(old) and not cpu_has_native_bf16(tmp_path / "missing")


def test_engine_builds_what_auto_names(monkeypatch):
    pytest.importorskip("torch")
    from stir_ros.engine import EngineConfig, ReconstructionEngine, default_weights_path

    if not default_weights_path().is_file():
        pytest.skip("shipped weights not installed")
    _machine(monkeypatch, openvino=False, bf16=True)  # as on a CPU without OpenVINO
    engine = ReconstructionEngine(EngineConfig(device="cpu", backend="auto", precision="auto"))
    assert (engine.backend, engine.precision) == ("torch", "fp32")
    assert engine.inference_path is not None and "OpenVINO is not installed" in engine.inference_path.reason
    tfp = ReconstructionEngine(EngineConfig(method="tfp", device="cpu", precision="auto"))
    assert tfp.inference_path is None and tfp.precision == "fp32"


def test_engine_auto_on_a_fake_cuda(monkeypatch):
    torch = pytest.importorskip("torch")
    from stir_ros import engine as engine_module

    _machine(monkeypatch, openvino=True, bf16=True)
    seen = {}

    def fake_resolve(device_type, backend, precision, torch_only=False, bf16_loss_db=None):
        seen["device"] = device_type
        return resolve_inference_path(device_type, backend, precision, torch_only, bf16_loss_db)

    monkeypatch.setattr(engine_module, "resolve_inference_path", fake_resolve)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    device, _ = engine_module.resolve_device("auto")
    assert device.type == "cuda"
    path = fake_resolve(device.type, "auto", "auto")
    assert seen["device"] == "cuda" and (path.backend, path.precision) == ("torch", "fp32")


def test_auto_streams_are_two_for_openvino_on_a_cpu_of_two_cores_and_one_elsewhere():
    from stir_ros.core.inference_path import AUTO_STREAMS, resolve_streams

    streams, why = resolve_streams(0, "openvino", "cpu", cores=2)
    assert streams == AUTO_STREAMS == 2 and "2 windows at once on 2 cores" in why and "inference_streams: 1" in why
    assert resolve_streams(0, "openvino", "cpu", cores=16)[0] == 2
    assert resolve_streams(0, "openvino", "cpu", cores=1) == (1, "one window at a time on 1 core")
    assert resolve_streams(3, "openvino", "cpu", cores=2) == (3, "inference_streams 3 set")
    assert resolve_streams(0, "torch", "cpu", cores=16) == (1, "one window at a time")
    streams, why = resolve_streams(2, "torch", "cuda", cores=16)  # torch computes one window at a time
    assert streams == 1 and "applies to backend openvino" in why
    assert resolve_streams(0, "openvino", "cpu")[0] in (1, 2)  # this machine's cores


def test_the_node_settings_carry_inference_streams_to_the_engine(monkeypatch):
    pytest.importorskip("torch")
    import stir_ros.reconstructor_settings as rs

    seen = []

    def fake_engine(config, checkpoint=None, streams=1):
        seen.append(streams)
        return SimpleNamespace(pop_warnings=lambda: [])

    monkeypatch.setattr(rs, "ReconstructionEngine", fake_engine)
    rs.build_engine(rs.ReconstructorSettings(method="tfp"), lambda *_: None)
    rs.build_engine(rs.ReconstructorSettings(method="tfp", inference_streams=1), lambda *_: None)
    rs.build_engine(rs.EngineConfig(method="tfp"), lambda *_: None)  # the offline commands: one at a time
    assert seen == [0, 1, 1]
