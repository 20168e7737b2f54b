# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Every YAML file the package reads goes through stir_ros/core/yaml_files.py: depth-bounded, no self-reference.

A bag's ``metadata.yaml``, a params file (``stir-ros run``, the launch files) and a camera
calibration nested a thousand levels deep, or holding an alias to itself, are refused with one
line instead of a ``RecursionError`` (or a structure that holds itself).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stir_ros.cli import main
from stir_ros.core.errors import ConfigError
from stir_ros.core.yaml_files import MAX_YAML_DEPTH, load_yaml, parse_yaml

DEEP = 1000


def _nested(kind: str, levels: int) -> str:
    """A document ``levels`` deep: flow sequences, flow mappings or block mappings."""
    if kind == "flow_seq":
        return "[" * levels + "]" * levels
    if kind == "flow_map":
        return "{a: " * levels + "1" + "}" * levels
    return "".join("  " * k + "a:\n" for k in range(levels)) + "  " * levels + "1\n"


DEEPER = f"nested more than {MAX_YAML_DEPTH} levels deep$"  # found while parsing, before any recursion ends
RECURSIVE = "an alias refers to a node that contains it"
# name -> (document, what the message says)
BAD = {
    **{f"{kind} {DEEP} deep": (_nested(kind, DEEP), DEEPER) for kind in ("flow_seq", "flow_map", "block_map")},
    # past libyaml's own limit (1000 levels), which the C parse reports as a scanner error
    **{f"{kind} {10 * DEEP} deep": (_nested(kind, 10 * DEEP), DEEPER) for kind in ("flow_seq", "block_map")},
    "one past the limit": (_nested("block_map", MAX_YAML_DEPTH), DEEPER),  # the scalar is level MAX + 1
    "alias to itself": ("a: &x [1, *x]\n", RECURSIVE),
    "alias to a mapping holding it": ("&m {k: *m}\n", RECURSIVE),
    "aliases deeper than the limit": ("".join(f"l{k}: &l{k} [*l{k - 1}]\n" if k else "l0: &l0 [1]\n"
                                              for k in range(MAX_YAML_DEPTH + 1)), "deep through aliases"),
}
TEXTS = {name: text for name, (text, _m) in BAD.items()}


@pytest.mark.parametrize(("text", "message"), BAD.values(), ids=BAD.keys())
def test_deep_or_recursive_documents_are_refused(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=r"^doc is refused: ") as err:
        parse_yaml(text, "doc")
    assert err.match(message)


def test_ordinary_documents_load_as_before() -> None:
    assert parse_yaml(_nested("flow_seq", MAX_YAML_DEPTH), "doc") is not None  # at the limit: accepted
    assert parse_yaml("base: &b {x: 1}\nuse: [*b, *b]\nmerged: {<<: *b, y: 2}\n", "doc") == {
        "base": {"x": 1}, "use": [{"x": 1}, {"x": 1}], "merged": {"x": 1, "y": 2}}  # shared aliases are fine
    assert parse_yaml("", "doc") is None
    with pytest.raises(ConfigError, match="^doc is not valid YAML: "):
        parse_yaml("a: [1, 2", "doc")
    with pytest.raises(ConfigError, match="^cannot read params file 'nowhere.yaml': "):
        load_yaml("nowhere.yaml", "params file")
    with pytest.raises(ConfigError, match="could not determine a constructor"):  # still the safe loader
        parse_yaml("!!python/object/apply:os.system ['true']", "doc")


def test_the_parse_is_libyaml_s_where_pyyaml_has_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A --dark defect map (0.7 MB of YAML at 250x400) took 3.4 s through the pure Python composer."""
    import yaml

    if not yaml.__with_libyaml__:
        pytest.skip("this PyYAML was built without libyaml")

    def python_composer(*args: object) -> None:
        raise AssertionError("the pure Python composer was used")

    monkeypatch.setattr(yaml.SafeLoader, "compose_node", python_composer)
    assert parse_yaml("a: [1, 2.5, {b: [x]}]\nc: &c [1]\nd: *c\n", "doc") == {
        "a": [1, 2.5, {"b": ["x"]}], "c": [1], "d": [1]}  # fmt: skip
    with pytest.raises(ConfigError, match=DEEPER):
        parse_yaml(_nested("flow_seq", MAX_YAML_DEPTH + 1), "doc")


def _bag_with_metadata(tmp_path: Path, text: str) -> Path:
    from stir_ros.bag.convert import dat_to_bag
    from stir_ros.core.dat import write_dat

    write_dat(tmp_path / "rec.dat", np.zeros((40, 4, 8), np.uint8))
    bag = tmp_path / "bag"
    dat_to_bag(tmp_path / "rec.dat", bag, 4, 8, 20000.0, frames_per_packet=20, start_ns=10**18)
    (bag / "metadata.yaml").write_text(text)
    return bag


@pytest.mark.parametrize("text", TEXTS.values(), ids=TEXTS.keys())
def test_bag_info_refuses_such_metadata_in_one_line(text: str, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    bag = _bag_with_metadata(tmp_path, text)
    assert main(["bag", "info", str(bag)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("stir-ros bag: error: cannot read the metadata of bag"), err


@pytest.mark.parametrize("text", TEXTS.values(), ids=TEXTS.keys())
def test_params_and_calibration_files_are_refused(text: str, tmp_path: Path) -> None:
    pytest.importorskip("rclpy")
    from stir_ros.ros.conversions import camera_info_from_file
    from stir_ros.ros.graph import load_params_file

    path = tmp_path / "f.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="^params file .* is refused"):
        load_params_file(path)
    with pytest.raises(ConfigError, match="^camera calibration .* is refused"):
        camera_info_from_file(f"file://{path}")
