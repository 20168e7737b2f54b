# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Every command and sub-command of ``stir-ros`` answers ``--help``, as a newcomer runs it."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from stir_ros.cli import COMMANDS, build_parser


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # noqa: SLF001 - argparse keeps sub-parsers here
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            return dict(action.choices)
    return {}


def _command_lines() -> list[list[str]]:
    lines = [[]]
    for name in COMMANDS:
        lines.append([name])
        top = _subcommands(build_parser(only=name))[name]
        lines += [[name, sub] for sub in _subcommands(top)]
    return lines


def _help(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stir_ros.cli", *args, "--help"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_the_bag_subcommands_are_found() -> None:
    assert {("bag", s) for s in ("info", "reconstruct", "from-dat", "to-dat", "play", "record")} <= {
        tuple(line) for line in _command_lines()
    }


@pytest.mark.parametrize("args", _command_lines(), ids=lambda a: " ".join(a) or "stir-ros")
def test_help_of_every_command(args: list[str]) -> None:
    out = _help(args)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith("usage: stir-ros" + "".join(f" {a}" for a in args))
    assert "Traceback" not in out.stderr


def test_the_top_level_help_names_every_bag_subcommand() -> None:
    line = COMMANDS["bag"][1]
    for sub in _subcommands(_subcommands(build_parser(only="bag"))["bag"]):
        assert sub in line, f"'stir-ros --help' does not mention 'bag {sub}': {line!r}"


def test_simulate_writes_a_dat_file_the_driver_can_read(tmp_path) -> None:
    from stir_ros.core.dat import read_dat

    out = subprocess.run([sys.executable, "-m", "stir_ros.cli", "simulate", str(tmp_path / "s.dat"), "--frames", "300",
                          "--height", "16", "--width", "24"], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    frames = read_dat(tmp_path / "s.dat", 16, 24)
    assert frames.shape == (300, 16, 24)
    assert 0.2 < frames.mean() < 0.8  # spikes at about alpha times the scene intensity
