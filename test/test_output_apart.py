# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""No tool writes over its own input (stir_ros/core/paths.py and every writing command).

For every command that writes, an output that is an input, lies inside one (a bag is a folder),
reaches one through a link, or (for a tool that fills a folder) holds one, is refused with one
line before anything is written, and the input is left byte for byte as it was.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stir_ros.bag.convert import dat_to_bag
from stir_ros.cli import main
from stir_ros.core.dat import write_dat
from stir_ros.core.errors import ConfigError
from stir_ros.core.paths import check_output_apart
from stir_ros.core.scenes import synthetic_image
from stir_ros.core.simulator import simulate_spikes

H, W, FRAMES = 16, 24, 81


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Inputs of every tool: a .dat, bags (sqlite3, mcap, a single .mcap file), eval data, weights, images."""
    root = tmp_path_factory.mktemp("inputs")
    img = np.rint(synthetic_image(H, W, seed=1) * 255) / 255
    spikes = simulate_spikes(np.repeat(img[None].astype(np.float32), FRAMES, 0), alpha=0.6, seed=1)
    write_dat(root / "rec.dat", spikes)
    for storage in ("sqlite3", "mcap"):
        dat_to_bag(root / "rec.dat", root / f"bag_{storage}", H, W, 20000.0, frames_per_packet=20,
                   start_ns=10**18, storage=storage)  # fmt: skip
    shutil.copy(root / "bag_mcap" / "bag_mcap.mcap", root / "single.mcap")
    (root / "zoo" / "spike").mkdir(parents=True)
    (root / "zoo" / "gt").mkdir()
    write_dat(root / "zoo" / "spike" / "clip.dat", spikes)
    Image.fromarray((img * 255).round().astype(np.uint8)).save(root / "zoo" / "gt" / "clip.png")
    from stir_ros.core.weights import default_weights_path

    (root / "weights").mkdir()
    shutil.copy(default_weights_path(), root / "weights" / "w.pt")
    (root / "images").mkdir()
    for k in range(2):
        Image.fromarray(np.rint(synthetic_image(64, 64, seed=k) * 255).astype(np.uint8)).save(root / "images" / f"{k}.png")
    return root


def _tree(path: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``path`` (or of ``path`` itself), links followed."""
    if path.is_file():
        return {".": hashlib.sha256(path.read_bytes()).hexdigest()}
    return {os.fspath(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(path.rglob("*"))}


TRAIN = ["--steps", "1", "--crop", "32", "--batch-size", "1", "--threads", "1", "--device", "cpu", "--val-every", "0",
         "--log-every", "0", "--no-progress", "--no-skimage", "--max-layers", "1"]  # fmt: skip

# (name, input as a path under the inputs folder, argv from that folder)
Case = tuple[str, str, Callable[[Path], list[str]]]
CASES: list[Case] = [
    # bag reconstruct: output bag, PNG folder, video
    ("reconstruct out=in", "bag_sqlite3", lambda r: ["bag", "reconstruct", f"{r}/bag_sqlite3", f"{r}/bag_sqlite3",
                                                       "--method", "tfp", "--no-progress"]),
    ("reconstruct out in bag", "bag_sqlite3", lambda r: ["bag", "reconstruct", f"{r}/bag_sqlite3",
                                                           f"{r}/bag_sqlite3/out", "--method", "tfp", "--no-progress"]),
    ("reconstruct out in mcap bag", "bag_mcap", lambda r: ["bag", "reconstruct", f"{r}/bag_mcap", f"{r}/bag_mcap/o",
                                                             "--method", "tfp", "--no-progress"]),
    ("reconstruct folder in bag", "bag_mcap", lambda r: ["bag", "reconstruct", f"{r}/bag_mcap", f"{r}/bag_mcap/png",
                                                           "--to-folder", "--method", "tfp", "--no-progress"]),
    ("reconstruct video in bag", "bag_mcap", lambda r: ["bag", "reconstruct", f"{r}/bag_mcap", f"{r}/png",
                                                          "--to-folder", "--video", f"{r}/bag_mcap/v.gif",
                                                          "--method", "tfp", "--no-progress"]),
    ("reconstruct out through link", "bag_mcap", lambda r: ["bag", "reconstruct", f"{r}/bag_mcap", f"{r}/link/o",
                                                              "--method", "tfp", "--no-progress"]),
    ("reconstruct out=weights", "weights", lambda r: ["bag", "reconstruct", f"{r}/bag_mcap", f"{r}/weights/w.pt",
                                                        "--weights", f"{r}/weights/w.pt", "--method", "stir",
                                                        "--no-progress"]),
    # bag from-dat / to-dat
    ("from-dat out=in", "rec.dat", lambda r: ["bag", "from-dat", f"{r}/rec.dat", f"{r}/rec.dat", "--height", str(H),
                                              "--width", str(W), "--frame-rate-hz", "20000"]),
    ("to-dat out=in file", "single.mcap", lambda r: ["bag", "to-dat", f"{r}/single.mcap", f"{r}/single.mcap"]),
    ("to-dat out=storage in bag", "bag_sqlite3", lambda r: ["bag", "to-dat", f"{r}/bag_sqlite3",
                                                              f"{r}/bag_sqlite3/bag_sqlite3.db3"]),
    ("to-dat out in bag", "bag_mcap", lambda r: ["bag", "to-dat", f"{r}/bag_mcap", f"{r}/bag_mcap/x.dat"]),
    ("to-dat out is a link to in", "single.mcap", lambda r: ["bag", "to-dat", f"{r}/single.mcap", f"{r}/alias.mcap"]),
    ("to-dat out is a hard link", "single.mcap", lambda r: ["bag", "to-dat", f"{r}/single.mcap", f"{r}/hard.mcap"]),
    # eval
    ("eval json in data", "zoo", lambda r: ["eval", f"{r}/zoo", "--method", "tfp", "--json", f"{r}/zoo/spike/clip.dat"]),
    ("eval json=data", "zoo", lambda r: ["eval", f"{r}/zoo", "--method", "tfp", "--json", f"{r}/zoo"]),
    ("eval json=weights", "weights", lambda r: ["eval", f"{r}/zoo", "--method", "tfp", "--weights",
                                                f"{r}/weights/w.pt", "--json", f"{r}/weights/w.pt"]),
    ("eval images in data", "zoo", lambda r: ["eval", f"{r}/zoo", "--method", "tfp", "--save-images", f"{r}/zoo"]),
    ("eval images hold data", "zoo", lambda r: ["eval", f"{r}/zoo", "--method", "tfp", "--save-images", f"{r}/up"]),
    # export
    ("export out=weights", "weights", lambda r: ["export", f"{r}/weights/w.pt", f"{r}/weights/w.pt", "--height", "16",
                                                 "--width", "16", "--no-check"]),
    ("export out=check-dat", "rec.dat", lambda r: ["export", f"{r}/weights/w.pt", f"{r}/rec.dat", "--height", "16",
                                                   "--width", "24", "--check-dat", f"{r}/rec.dat"]),
    # train
    ("train out=images", "images", lambda r: ["train", "--out", f"{r}/images", "--images", f"{r}/images", *TRAIN]),
    ("train out in images", "images", lambda r: ["train", "--out", f"{r}/images/run", "--images", f"{r}/images",
                                                 *TRAIN]),
    ("train out holds init weights", "weights", lambda r: ["train", "--out", f"{r}/weights", "--images",
                                                           f"{r}/images", "--init-weights", f"{r}/weights/w.pt",
                                                           *TRAIN]),
    # calibrate-defects
    ("calibrate out=dat", "rec.dat", lambda r: ["calibrate-defects", f"{r}/rec.dat", "-o", f"{r}/rec.dat",
                                                "--height", str(H), "--width", str(W)]),
    ("calibrate out in bag", "bag_mcap", lambda r: ["calibrate-defects", f"{r}/bag_mcap", "-o",
                                                     f"{r}/bag_mcap/defects.yaml"]),
    ("calibrate out is a link to in", "single.mcap", lambda r: ["calibrate-defects", f"{r}/single.mcap", "-o",
                                                                 f"{r}/alias.mcap"]),
    # demo (refused before any node starts)
    ("demo out=dat", "rec.dat", lambda r: ["demo", "--dat", f"{r}/rec.dat", "--out", f"{r}/rec.dat",
                                           "--size", f"{H}x{W}", "--method", "tfp"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_output_on_its_input_is_refused_and_the_input_kept(case: Case, master: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    _name, given, argv = case
    root = tmp_path / "in"
    shutil.copytree(master, root)
    (root / "link").symlink_to(root / "bag_mcap", target_is_directory=True)
    (root / "alias.mcap").symlink_to(root / "single.mcap")
    os.link(root / "single.mcap", root / "hard.mcap")
    (root / "up").mkdir()
    (root / "up" / "tfp").symlink_to(root / "zoo", target_is_directory=True)  # DIR/tfp is the data folder
    before = _tree(root / given)
    assert main(argv(root)) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err and "would destroy the input" in err[-1] and err[-1].startswith("stir-ros "), err
    assert "Traceback" not in "\n".join(err)
    assert _tree(root / given) == before


def test_outputs_apart_from_inputs_are_accepted(tmp_path: Path) -> None:
    (tmp_path / "bag").mkdir()
    (tmp_path / "bag2").mkdir()
    check_output_apart(tmp_path / "bag2", [tmp_path / "bag"], folder=True)  # a sibling whose name extends it
    check_output_apart(tmp_path / "bag" / "..", [tmp_path / "bag" / "x"])  # the parent of an input, not a folder tool
    check_output_apart(None, [tmp_path / "bag"])
    check_output_apart(tmp_path / "out", [None, ""])
    with pytest.raises(ConfigError, match="is a folder that holds the input"):
        check_output_apart(tmp_path, [tmp_path / "bag" / "x"], folder=True)
    with pytest.raises(ConfigError, match="lies inside the input"):
        check_output_apart(tmp_path / "bag" / ".." / "bag" / "new", [tmp_path / "bag"])


@pytest.mark.parametrize("argv", [
    lambda r: ["train", "--out", f"{r}/rec.dat", "--images", f"{r}/images", *TRAIN],
    lambda r: ["eval", f"{r}/zoo", "--method", "tfp", "--json", f"{r}/images"],
    lambda r: ["eval", f"{r}/zoo", "--method", "tfp", "--save-images", f"{r}/rec.dat"],
    lambda r: ["demo", "--dat", f"{r}/zoo/spike/clip.dat", "--out", f"{r}/rec.dat", "--size", f"{H}x{W}"],
], ids=["train --out a file", "eval --json a folder", "eval --save-images a file", "demo --out a file"])
def test_an_output_that_cannot_be_made_is_one_line(argv: Callable[[Path], list[str]], master: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv(master)) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("stir-ros ") and "cannot " in err[0], err
