# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""What the tools print and write (stir_ros/core/text_output.py): escaped text, strict JSON.

Strings from bags and messages reach the terminal escaped (no escape sequence runs, no newline
forges a line), and every JSON file the package writes is valid JSON: non-finite numbers are
``null``. The live tools (perf, echo) are tested over DDS in test/test_stream_tools.py.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stir_ros.cli import main
from stir_ros.core.packet import PacketHeader
from stir_ros.runtime.stream_health import StreamHealth
from stir_ros.core.text_output import json_text, printable, write_json

HOSTILE = "cam\x1b[2J\x1b]0;title\x07\r\nseq 999 forged\u202egnp.exe\x9b31m\\n"


def _strict(text: str) -> object:
    """json.loads that refuses NaN/Infinity as every other JSON reader does."""
    def refuse(name: str) -> None:
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def test_printable_escapes_every_control_and_is_unambiguous() -> None:
    out = printable(HOSTILE)
    assert out.isprintable() and "\n" not in out and "\x1b" not in out and "\u202e" not in out
    assert out == ("cam\\x1b[2J\\x1b]0;title\\x07\\r\\nseq 999 forged\\u202egnp.exe\\x9b31m\\\\n")
    assert printable("/spikes ok é 相机") == "/spikes ok é 相机"  # ordinary text unchanged
    assert printable(Path("/a b")) == "/a b"


def test_json_is_strict_with_non_finite_numbers_as_null() -> None:
    value = {"a": math.inf, "b": [-math.inf, math.nan, 1.5, (2.0, np.float64("inf"))], "c": "x"}
    assert _strict(json_text(value)) == {"a": None, "b": [None, None, 1.5, [2.0, None]], "c": "x"}
    with pytest.raises(TypeError):
        json_text({"a": object()})


def test_stream_health_rejects_impossible_frame_rates_with_their_reason() -> None:
    health = StreamHealth()
    t0 = 10**18
    for seq, rate in enumerate((2000.0, 1e-300, math.inf, math.nan, 0.0, 2000.0)):
        header = PacketHeader(seq, 20 * seq, 20, 8, 8, "vidar_bitpacked", t0 + seq * 10_000_000, rate)
        health.add(header, t0 + seq * 10_000_000 + 12_000_000, 16)
    report = health.report(t0 + 10**9)
    assert report.rejected == 4 and report.totals["packets"] == 2
    assert health.rejections == {"frame_rate_hz outside [0.001, 1e+06] Hz": 4}
    assert all(math.isfinite(v) for v in (report.delay_ms_mean, report.delay_ms_max, report.drift_ms, report.drift_ppm))
    line = report.line()
    assert "inf" not in line and "nan" not in line and "rejected 4 (total 4)" in line
    assert _strict(json_text(vars(report)))["rejected"] == 4


def test_eval_json_is_valid_for_a_perfect_reconstruction(tmp_path: Path) -> None:
    """A black clip: every method reconstructs it exactly, PSNR is infinite, the file must still be JSON."""
    from stir_ros.core.dat import write_dat

    (tmp_path / "zoo" / "spike").mkdir(parents=True)
    (tmp_path / "zoo" / "gt").mkdir()
    write_dat(tmp_path / "zoo" / "spike" / "dark.dat", np.zeros((81, 16, 16), np.uint8))
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / "zoo" / "gt" / "dark.png")
    out = tmp_path / "r.json"
    assert main(["eval", str(tmp_path / "zoo"), "--method", "tfp", "--json", str(out)]) == 0
    result = _strict(out.read_text())
    assert result["methods"]["tfp"]["psnr"] is None and result["methods"]["tfp"]["clips"][0]["psnr"] is None


def test_write_json_creates_the_folder(tmp_path: Path) -> None:
    write_json(tmp_path / "a" / "b.json", {"x": math.nan})
    assert _strict((tmp_path / "a" / "b.json").read_text()) == {"x": None}


def test_bag_info_and_warnings_escape_names_from_the_bag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from stir_ros.bag.types import get_typestore
    from stir_ros.bag.writer import BagWriter

    string = get_typestore().types["std_msgs/msg/String"]
    with BagWriter(tmp_path / "bag", "mcap") as bag:
        conn = bag.add_topic("/note" + HOSTILE, "std_msgs/msg/String")
        bag.write_message(conn, 10**18, string(data="x"))
    assert main(["bag", "info", str(tmp_path / "bag")]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out and "\r" not in out
    assert not any(line.startswith("seq 999") for line in out.splitlines())
    assert "/notecam\\x1b[2J" in out
    # An error that quotes a name from the input is one escaped line as well.
    assert main(["bag", "to-dat", str(tmp_path / "bag"), str(tmp_path / "x.dat"), "--spikes-topic",
                 "/note" + HOSTILE]) == 1  # fmt: skip
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "\x1b" not in err, err
