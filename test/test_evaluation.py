# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Tests of ``stir-ros eval`` on a tiny simulated folder in the Spike-Zoo layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stir_ros import evaluation
from stir_ros.cli import main
from stir_ros.core.dat import write_dat
from stir_ros.core.scenes import synthetic_image
from stir_ros.core.simulator import simulate_spikes

@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """Two static simulated clips, 81 frames of 48x64, ground truth as 8-bit PNG."""
    root = tmp_path_factory.mktemp("zoo")
    (root / "spike").mkdir()
    (root / "gt").mkdir()
    for i in range(2):
        img = np.rint(synthetic_image(48, 64, seed=i) * 255) / 255
        spikes = simulate_spikes(np.repeat(img[None].astype(np.float32), 81, 0), alpha=0.6, seed=i)
        write_dat(root / "spike" / f"clip{i}.dat", spikes)
        Image.fromarray((img * 255).round().astype(np.uint8)).save(root / "gt" / f"clip{i}.png")
    Image.fromarray(np.zeros((48, 64), np.uint8)).save(root / "gt" / "unpaired.png")  # skipped, with a warning
    return root


def test_pairs_and_gt(data_dir: Path) -> None:
    pairs = evaluation.find_pairs(data_dir)
    assert [p[0] for p in pairs] == ["clip0", "clip1"]
    gt = evaluation.load_gt(pairs[0][2])
    assert gt.shape == (48, 64) and gt.dtype == np.float32 and 0 <= gt.min() and gt.max() <= 1


def test_tfp_high_on_static_scene_and_json(data_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "r.json"
    assert main(["eval", str(data_dir), "--method", "tfp", "tfi", "--json", str(out)]) == 0
    captured = capsys.readouterr()
    table = captured.out
    assert "| tfp |" in table and "| tfi |" in table
    # A ground truth without its .dat is not silently dropped.
    assert "warning: gt/unpaired.png: no spike/unpaired.dat; skipped" in captured.err
    results = json.loads(out.read_text())
    assert results["skipped"] == ["gt/unpaired.png: no spike/unpaired.dat; skipped"]
    tfp = results["methods"]["tfp"]
    assert {"psnr", "ssim", "ssim_gaussian", "clips", "window_length"} <= set(tfp)
    assert tfp["window_length"] == 41 and len(tfp["clips"]) == 2
    assert {"name", "psnr", "ssim"} <= set(tfp["clips"][0])
    assert tfp["psnr"] == pytest.approx(np.mean([c["psnr"] for c in tfp["clips"]]))
    assert tfp["psnr"] > 25.0 and tfp["ssim"] > 0.7  # static scene: TFP is only quantisation-limited


def test_stir_through_engine(data_dir: Path, random_stir41_weights: Path) -> None:
    results = evaluation.evaluate(data_dir, ["stir"], weights=str(random_stir41_weights), device="cpu")
    stir = results["methods"]["stir"]
    assert stir["window_length"] == 41 and stir["weights"] == str(random_stir41_weights)
    assert all(np.isfinite(c["psnr"]) for c in stir["clips"])


def test_errors(tmp_path: Path) -> None:
    from stir_ros.core.errors import ConfigError

    with pytest.raises(ConfigError, match="spike/ and gt/"):
        evaluation.find_pairs(tmp_path)


def test_tfp_on_spikezoo_train_split(spikezoo_train: Path) -> None:
    results = evaluation.evaluate(spikezoo_train, ["tfp"])
    tfp = results["methods"]["tfp"]
    assert len(tfp["clips"]) == 2
    # Our measurement: 23.6 dB / 0.68 at 41 frames (Spike-Zoo's REDS test split: 28.17 / 0.770).
    assert 21.0 < tfp["psnr"] < 27.0 and 0.55 < tfp["ssim"] < 0.85


def test_spikezoo_data_finds_the_installed_clips(spikezoo_train: Path, monkeypatch) -> None:
    assert evaluation.spikezoo_data() == spikezoo_train  # what the scripts score against
    assert evaluation.spikezoo_data("test") == spikezoo_train.parent / "test"
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    assert evaluation.spikezoo_data() is None  # not installed: the scripts say so and ask for --data


def test_seconds_per_frame_leave_the_warm_up_out(data_dir: Path, monkeypatch) -> None:
    """The timed reconstructions come after a warm-up at the clips' size (the real engine, observed)."""
    from stir_ros.engine import ReconstructionEngine

    calls: list[str] = []
    warmup, reconstruct = ReconstructionEngine.warmup, ReconstructionEngine.reconstruct

    def observed_warmup(self, height, width):
        calls.append(f"warmup {height}x{width}")
        calls.append("(inside)")
        warmup(self, height, width)
        calls.append("(end)")

    def observed_reconstruct(self, windows):
        if calls and calls[-1] != "(inside)":
            calls.append(f"timed {windows.shape[-2]}x{windows.shape[-1]}")
        return reconstruct(self, windows)

    monkeypatch.setattr(ReconstructionEngine, "warmup", observed_warmup)
    monkeypatch.setattr(ReconstructionEngine, "reconstruct", observed_reconstruct)
    results = evaluation.evaluate(data_dir, ["tfp"])
    timed = [c for c in calls if c.startswith(("warmup", "timed"))]
    assert timed[0] == "warmup 48x64" and timed.count("timed 48x64") == 2, calls
    assert results["methods"]["tfp"]["seconds_per_frame"] > 0


def test_faults_table_scores_each_condition(data_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "faults.json"
    argv = ["eval", str(data_dir), "--method", "tfp", "--faults", "--fault-seeds", "3", "--json", str(out),
            "--sensor", "dead_fraction=0.2"]  # fmt: skip
    assert main(argv) == 0
    table = capsys.readouterr().out
    results = json.loads(out.read_text())
    names = [c["name"] for c in results["conditions"]]
    assert names[:-1] == [name for name, _ in evaluation.FAULT_CONDITIONS]
    assert names[-1] == "your sensor: dead_fraction=0.2"
    assert all(f"| {name} |" in table for name in names)
    scores = {c["name"]: c["methods"]["tfp"]["psnr"] for c in results["conditions"]}
    clean = evaluation.evaluate(data_dir, ["tfp"])["methods"]["tfp"]["psnr"]
    assert scores["clean"] == pytest.approx(clean)
    # Dark current and dead pixels cost TFP something on these static clips; a fifth of the pixels dead
    # most. Repaired hot pixels may cost nothing (their direct neighbours' mean is about right on a smooth scene).
    assert max(v for k, v in scores.items() if k not in ("clean", "hot 0.3 %")) < clean
    assert scores["hot 0.3 %"] == pytest.approx(clean, abs=0.05)
    assert scores[names[-1]] < scores["dead 1 %"] - 3.0
    assert main(["eval", str(data_dir), "--method", "tfp", "--sensor", "dead_fraction=0.2"]) == 1
    assert "--sensor is scored with --faults" in capsys.readouterr().err


def test_eval_without_openvino_falls_back_to_torch_as_the_node_does(data_dir: Path, random_stir41_weights: Path,
                                                                   monkeypatch, capsys) -> None:
    import stir_ros.models.runtime as runtime
    from stir_ros.core.errors import BackendUnavailableError

    def not_installed(*args, **kwargs):
        raise BackendUnavailableError("OpenVINO is not installed (injected)")

    monkeypatch.setattr(runtime, "OpenVinoSTIR", not_installed)
    args = ["eval", str(data_dir), "--method", "stir", "--weights", str(random_stir41_weights), "--device", "cpu"]
    assert main([*args, "--backend", "openvino", "--json", str(data_dir.parent / "fallback.json")]) == 0
    assert "warning: OpenVINO is not installed (injected); falling back to backend torch" in capsys.readouterr().err
    fallback = json.loads((data_dir.parent / "fallback.json").read_text())["methods"]["stir"]
    assert fallback["backend"] == "torch"
    torch_run = evaluation.evaluate(data_dir, ["stir"], weights=str(random_stir41_weights), device="cpu")
    assert [c["psnr"] for c in fallback["clips"]] == [c["psnr"] for c in torch_run["methods"]["stir"]["clips"]]


@pytest.mark.parametrize("extra, match", [
    (["--sensor", "gain_spread=0.1"], "act before the pixel fires"),
    (["--sensor", "realistic"], "act before the pixel fires"),
    (["--frame-rate-hz", "0"], "frame_rate_hz"),
])  # fmt: skip
def test_faults_refused_before_anything_is_scored(data_dir: Path, capsys, extra: list[str], match: str) -> None:
    """A --sensor field that recorded spikes cannot take, or no frame rate: one line at once, not after the table."""
    assert main(["eval", str(data_dir), "--method", "tfp", "--faults", *extra]) == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("warning: gt/unpaired")]
    assert len(lines) == 1 and lines[0].startswith("stir-ros eval: error: ") and match in lines[0], lines
