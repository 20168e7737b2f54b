# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""ONNX export of STIR and the engine's OpenVINO backend, with the real shipped weights.

Export round trip (shapes, metadata, equivalence to PyTorch fp32 on random and simulated
windows), the ``stir-ros export`` command, the engine's ``backend: openvino`` against
``backend: torch`` and the clear error when OpenVINO is not installed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from stir_ros.engine import EngineConfig, ReconstructionEngine, default_weights_path
from stir_ros.core.errors import BackendUnavailableError, ConfigError
from stir_ros.models import load_checkpoint
from stir_ros.models.export import (
    ONNX_FORMAT,
    check_windows,
    export_onnx,
    read_onnx_metadata,
    run_onnx,
    verify_onnx,
)

pytest.importorskip("openvino")
pytest.importorskip("onnx")

WEIGHTS = default_weights_path()
pytestmark = pytest.mark.skipif(not WEIGHTS.is_file(), reason="shipped weights not installed")


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    net, _ = load_checkpoint(WEIGHTS)
    return net.eval()


@pytest.fixture(scope="module")
def fixed_onnx(model, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("onnx") / "stir_36x52.onnx"
    export_onnx(model, out, height=36, width=52, source="test")
    return out


def test_fixed_size_export_round_trip(model, fixed_onnx) -> None:
    import onnx

    proto = onnx.load(str(fixed_onnx))
    onnx.checker.check_model(proto)
    assert any(node.op_type == "GridSample" for node in proto.graph.node), "the warp must be in the graph"
    assert max(op.version for op in proto.opset_import if op.domain in ("", "ai.onnx")) >= 16
    meta = read_onnx_metadata(fixed_onnx)
    assert meta["stir_ros.format"] == ONNX_FORMAT
    assert meta["window_length"] == str(model.window_length) == "61"
    assert float(meta["alpha"]) == pytest.approx(0.6)
    assert "raw / alpha" in meta["alpha_convention"]
    assert (meta["height"], meta["width"], meta["dynamic"]) == ("36", "52", "0")
    assert "[B, T, H, W]" in meta["input_layout"]
    # 36x52 is not a multiple of 16: the padding and the crop are inside the graph.
    windows = check_windows(61, 36, 52)
    out = run_onnx(fixed_onnx, windows[1])
    assert out.shape == (1, 1, 36, 52)
    assert verify_onnx(model, fixed_onnx, windows) <= 1e-4
    assert meta["batch"] == "1"  # every dimension of a fixed-size file is static (test below)


def test_dynamic_export_takes_any_multiple_of_16(model, tmp_path) -> None:
    out = tmp_path / "dyn.onnx"
    data = export_onnx(model, out, height=40, width=40, dynamic=True)
    assert out.read_bytes() == data
    meta = read_onnx_metadata(out)
    assert (meta["dynamic"], meta["size_multiple"], meta["height"]) == ("1", "16", "dynamic")
    for h, w in ((32, 48), (48, 32)):
        assert verify_onnx(model, out, check_windows(61, h, w, seed=h)) <= 1e-4


def test_export_refuses_opset_without_gridsample(model) -> None:
    with pytest.raises(ConfigError, match="opset must be >= 16"):
        export_onnx(model, None, height=16, width=16, opset=15)


def test_a_file_that_is_not_ours_is_refused(tmp_path) -> None:
    import onnx
    from onnx import helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])])  # fmt: skip
    path = tmp_path / "other.onnx"
    onnx.save(helper.make_model(graph), str(path))
    with pytest.raises(ConfigError, match="not a stir_ros STIR export"):
        read_onnx_metadata(path)


def test_export_command_writes_and_checks(tmp_path, capsys) -> None:
    from stir_ros.cli import main

    out = tmp_path / "cli.onnx"
    assert main(["export", "default", str(out), "--height", "20", "--width", "30", "--window-length", "61"]) == 0
    text = capsys.readouterr().out
    assert "max abs difference" in text and ": ok" in text
    assert read_onnx_metadata(out)["height"] == "20"
    # A recorded window as well (here a .dat written from simulated spikes), dynamic file.
    from stir_ros.core.dat import write_dat

    dat = tmp_path / "rec.dat"
    write_dat(dat, check_windows(61, 20, 30, seed=4)[1][0].astype(np.uint8))
    assert main(["export", "default", str(tmp_path / "d.onnx"), "--dynamic", "--height", "20", "--width", "30",
                 "--check-dat", str(dat)]) == 0  # fmt: skip
    assert "1 recorded windows, 32x32" in capsys.readouterr().out
    # A checkpoint of the other window length is refused with the reason.
    assert main(["export", "default", str(tmp_path / "x.onnx"), "--window-length", "41"]) == 1
    assert "window_length 61, expected 41" in capsys.readouterr().err


def test_openvino_engine_matches_torch_engine() -> None:
    windows = np.concatenate(check_windows(61, 40, 56, seed=3)).astype(np.uint8)  # 40x56: padded inside
    torch_engine = ReconstructionEngine(EngineConfig(method="stir", device="cpu", backend="torch"))
    ov_engine = ReconstructionEngine(EngineConfig(method="stir", device="cpu", backend="openvino"))
    assert ov_engine.backend == "openvino"
    ref = torch_engine.reconstruct(windows)
    got = ov_engine.reconstruct(windows)
    assert got.shape == ref.shape == (2, 40, 56)
    assert float(np.abs(got - ref).max()) <= 1e-4
    bf16 = ReconstructionEngine(EngineConfig(method="stir", device="cpu", backend="openvino", precision="bf16"))
    assert float(np.abs(bf16.reconstruct(windows) - ref).mean()) <= 0.01


def _cpu_has_bf16() -> bool:
    """Whether the CPU computes in bf16 (AVX512-BF16 or AMX); OpenVINO runs f32 on others."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def test_openvino_compiles_at_the_requested_precision(model) -> None:
    """``precision: bf16`` reaches the compiled model: its hint reads bf16 and its output differs from f32."""
    import openvino as ov

    from stir_ros.models.runtime import OpenVinoSTIR

    window = check_windows(61, 20, 36, seed=7)[1].astype(np.uint8)
    outputs, hints = {}, {}
    for precision in ("fp32", "bf16"):
        predictor = OpenVinoSTIR(model, precision, threads=1)
        outputs[precision] = predictor(window)
        (requests,) = predictor._compiled.values()  # the one frame size compiled
        hints[precision] = requests.compiled.get_property("INFERENCE_PRECISION_HINT")
    assert hints["fp32"] == ov.Type.f32
    if not _cpu_has_bf16():
        pytest.skip("this CPU has no bf16 instructions: OpenVINO runs bf16 as f32")
    assert hints["bf16"] == ov.Type.bf16
    assert not torch.equal(outputs["bf16"], outputs["fp32"])  # computed in bf16, not f32
    assert float((outputs["bf16"] - outputs["fp32"]).abs().mean()) <= 0.01


def test_openvino_bf16_keeps_the_warp_grid_and_the_output_in_f32(model) -> None:
    """Under the bf16 hint the ops from each flow to its ``GridSample``'s sampling grid stay in f32, and the output.

    A grid coordinate (identity position in [-1, 1] plus the flow) is good to 1/128 in bf16, a pixel
    or more on wide frames, as in torch bf16, where the model keeps them in f32 itself. An image
    value in bf16 is good to 1/256, noise that costs hundredths of a dB on clips at 40 dB.
    """
    from stir_ros.models.runtime import OpenVinoSTIR, _warp_grid_ops

    predictor = OpenVinoSTIR(model, "bf16", threads=1)
    grids = [op for op in predictor._model.get_ops() if op.get_type_name() == "GridSample"]
    assert len(grids) == 4  # one warp per decoder level
    marked = _warp_grid_ops(predictor._model)
    names = {op.get_friendly_name() for op in marked}
    assert all(grid.input_value(1).get_node().get_friendly_name() in names for grid in grids)
    assert all("DisablePrecisionConversion_0" in op.get_rt_info() for op in marked)  # read back from IR
    assert not any(op.get_type_name() in ("Convolution", "ConvolutionBackpropData") for op in marked)
    plain = OpenVinoSTIR(model, "fp32", threads=1)
    assert not any("DisablePrecisionConversion_0" in op.get_rt_info() for op in plain._model.get_ops())
    window = check_windows(61, 20, 36, seed=7)[1].astype(np.uint8)
    predictor(window)
    if not _cpu_has_bf16():
        pytest.skip("this CPU has no bf16 instructions: OpenVINO runs bf16 as f32")
    (requests,) = predictor._compiled.values()
    compiled = requests.compiled.get_runtime_model().get_ops()
    grid_inputs = [op.input_value(1).get_node().get_rt_info() for op in compiled
                   if op.get_rt_info()["layerType"].astype(str) == "GridSample"]  # fmt: skip
    assert len(grid_inputs) == 4
    # The op that adds the flow to the identity grid (its last marked op) computes in f32.
    assert all(info["runtimePrecision"].astype(str) == "f32" for info in grid_inputs)
    assert all(set(info["originalLayersNames"].astype(str).split(",")) <= names for info in grid_inputs)
    # The image: the last convolution (and its bias) computes in f32, the others in bf16.
    convolutions = {op.get_rt_info()["originalLayersNames"].astype(str): op.get_rt_info()["runtimePrecision"].astype(str)
                    for op in compiled if op.get_rt_info()["layerType"].astype(str) == "Convolution"}  # fmt: skip
    head = [precision for names, precision in convolutions.items() if "/decoder/full/head/" in names]
    assert head == ["f32"], convolutions
    assert sum(precision == "bf16" for precision in convolutions.values()) >= 40, convolutions


def test_backend_is_validated() -> None:
    with pytest.raises(ConfigError, match="backend must be one of auto, torch, openvino"):
        EngineConfig(method="stir", backend="tensorrt")


def test_missing_openvino_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino -> ImportError
    with pytest.raises(BackendUnavailableError, match="backend 'openvino' needs the Python package openvino"):
        ReconstructionEngine(EngineConfig(method="stir", device="cpu", backend="openvino"))
    # The classical methods do not use a backend.
    assert ReconstructionEngine(EngineConfig(method="tfp", backend="openvino")).backend == "torch"


def test_openvino_predictor_takes_bytes_bools_and_floats_alike(model) -> None:
    from stir_ros.models.runtime import OpenVinoSTIR

    predictor = OpenVinoSTIR(model, "fp32", threads=1)
    window = check_windows(61, 20, 36, seed=7)[1]
    as_u8 = predictor(window.astype(np.uint8))
    as_float = predictor(window)
    as_bool = predictor(torch.as_tensor(window.astype(bool)))
    assert as_u8.shape == (1, 1, 20, 36) and as_u8.dtype == torch.float32
    assert float((as_u8 - as_float).abs().max()) <= 1e-5 and torch.equal(as_u8, as_bool)
    with torch.inference_mode():
        ref = model(torch.as_tensor(window))
    assert float((as_u8 - ref).abs().max()) <= 1e-4


def test_openvino_streams_compute_windows_at_once_each_as_one_stream_does(model) -> None:
    """Two streams: two threads call the predictor at once, each window's image as a single stream's."""
    import threading

    from stir_ros.models.runtime import OpenVinoSTIR

    windows = [check_windows(61, 20, 36, seed=s)[1].astype(np.uint8) for s in (3, 4, 5, 6)]
    single = OpenVinoSTIR(model, "fp32", threads=2)
    expected = [single(w) for w in windows]
    both = OpenVinoSTIR(model, "fp32", threads=2, streams=2)
    assert both.config["NUM_STREAMS"] == 2 and both.config["PERFORMANCE_HINT"] == "THROUGHPUT"
    got: dict[int, torch.Tensor] = {}
    start = threading.Barrier(2)

    def run(indices: list[int]) -> None:
        start.wait()
        for i in indices:
            got[i] = both(windows[i])

    threads = [threading.Thread(target=run, args=([0, 2],)), threading.Thread(target=run, args=([1, 3],))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, image in enumerate(expected):
        assert float((got[i] - image).abs().max()) <= 1e-5, i
    (requests,) = both._compiled.values()
    assert requests.compiled.get_property("NUM_STREAMS") == 2 and requests._made <= 2
    with pytest.raises(ConfigError, match="streams must be a positive integer"):
        OpenVinoSTIR(model, "fp32", streams=0)


def _load_as_a_user_does(path: Path) -> Any:
    """What a user's first lines do: compile the file as written (no reshape, default device) and return it."""
    import openvino

    return openvino.Core().compile_model(str(path))


@pytest.mark.parametrize("batch", [None, 2])
def test_fixed_size_file_loads_in_plain_openvino_without_reshaping(model, tmp_path, batch) -> None:
    from stir_ros.cli import main

    out = tmp_path / "plain.onnx"
    extra = ["--batch", str(batch)] if batch else []
    assert main(["export", "default", str(out), "--height", "36", "--width", "52", "--no-check", *extra]) == 0
    n = batch or 1
    compiled = _load_as_a_user_does(out)  # a dynamic batch made OpenVINO's CPU plugin refuse the file here
    assert compiled.inputs[0].get_partial_shape().is_static
    assert list(compiled.inputs[0].get_shape()) == [n, 61, 36, 52]
    windows = np.concatenate([check_windows(61, 36, 52, seed=k)[1] for k in range(n)])
    got = np.asarray(compiled(windows)[0])
    with torch.inference_mode():
        ref = model.float()(torch.as_tensor(windows)).numpy()
    assert got.shape == ref.shape == (n, 1, 36, 52)
    # The default device may run bf16 (OpenVINO's default on CPUs with AMX/AVX512-BF16): close, not exact.
    assert float(np.abs(got - ref).mean()) <= 0.01
    import openvino  # ... and in fp32, still without a reshape, it is PyTorch's function

    exact = openvino.Core().compile_model(str(out), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    assert float(np.abs(np.asarray(exact(windows)[0]) - ref).max()) <= 1e-4
    assert read_onnx_metadata(out)["batch"] == str(n)


def test_fixed_size_file_runs_in_benchmark_app(fixed_onnx) -> None:
    import shutil
    import subprocess

    tool = shutil.which("benchmark_app")
    if tool is None:
        pytest.skip("OpenVINO's benchmark_app is not installed")
    run = subprocess.run([tool, "-m", str(fixed_onnx), "-d", "CPU", "-niter", "2", "-nireq", "1", "-hint", "none",
                          "-nstreams", "1"], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "Throughput" in run.stdout


def test_dynamic_file_still_takes_any_batch_after_a_reshape(model, tmp_path) -> None:
    import openvino

    from stir_ros.cli import main

    out = tmp_path / "dyn.onnx"
    assert main(["export", "default", str(out), "--dynamic", "--height", "32", "--width", "48", "--no-check"]) == 0
    core = openvino.Core()
    net = core.read_model(str(out))
    assert net.inputs[0].get_partial_shape().is_dynamic
    net.reshape({0: [2, 61, 32, 48]})
    got = np.asarray(core.compile_model(net, "CPU")(np.concatenate(check_windows(61, 32, 48)))[0])
    assert got.shape == (2, 1, 32, 48)
    assert main(["export", "default", str(out), "--dynamic", "--batch", "2"]) == 1  # --batch is for fixed files
