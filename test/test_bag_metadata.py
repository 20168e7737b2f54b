# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""A bag's metadata.yaml with wrong types (stir_ros/bag/metadata.py): one BagError, never a traceback.

Every field of a real metadata.yaml is replaced in turn by values of the wrong type; the reader
either reads the bag (a field it does not need) or refuses it with a :class:`BagError` that names
the field. ``bag info`` prints that as one line.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from stir_ros.bag.convert import dat_to_bag
from stir_ros.bag.reader import BagReader
from stir_ros.cli import main
from stir_ros.core.dat import write_dat
from stir_ros.core.errors import BagError

WRONG = [None, "x", -1, [], {}, [1], {"a": 1}, True, "", "../..", 10**30]


@pytest.fixture(scope="module", params=["sqlite3", "mcap"])
def bag(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("meta")
    write_dat(root / "rec.dat", (np.random.default_rng(0).random((200, 4, 8)) < 0.3).astype(np.uint8))
    dat_to_bag(root / "rec.dat", root / "bag", 4, 8, 20000.0, frames_per_packet=50, storage=request.param,
               start_ns=10**18)  # fmt: skip
    return root / "bag"


def _fields(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        yield (*prefix, key)
        yield from _fields(value, (*prefix, key))


def test_every_field_of_the_wrong_type_is_a_bag_error(bag: Path) -> None:
    original = (bag / "metadata.yaml").read_text()
    doc = yaml.safe_load(original)
    refused = 0
    try:
        for field in _fields(doc):
            for value in WRONG:
                changed = copy.deepcopy(doc)
                node = changed
                for key in field[:-1]:
                    node = node[key]
                node[field[-1]] = value
                (bag / "metadata.yaml").write_text(yaml.safe_dump(changed))
                try:
                    with BagReader(bag) as reader:
                        sum(1 for _ in reader.messages())
                except BagError:  # anything else fails the test
                    refused += 1
    finally:
        (bag / "metadata.yaml").write_text(original)
    assert refused > 50  # most fields are needed: wrong types are refused, not ignored


@pytest.mark.parametrize(("key", "value", "message"), [
    ("version", "9", "version must be an integer >= 0, got '9'"),
    ("relative_file_paths", ["../.."], "relative_file_paths[0] must name a file of the bag, got '../..'"),
    ("topics_with_message_count", [{"topic_metadata": None}], "topics_with_message_count[0].topic_metadata must be a "
                                                              "mapping, got NoneType"),
    ("custom_data", ["x"], "custom_data must be a mapping, got list"),
])  # fmt: skip
def test_bag_info_names_the_malformed_field_in_one_line(bag: Path, key: str, value: Any, message: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    original = (bag / "metadata.yaml").read_text()
    doc = yaml.safe_load(original)
    doc["rosbag2_bagfile_information"][key] = value
    (bag / "metadata.yaml").write_text(yaml.safe_dump(doc))
    try:
        assert main(["bag", "info", str(bag)]) == 1
    finally:
        (bag / "metadata.yaml").write_text(original)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].endswith(f"malformed metadata.yaml: {message}"), err
