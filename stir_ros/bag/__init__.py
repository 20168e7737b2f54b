# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""rosbag2 tools without a ROS runtime: conversion, offline reconstruction, play and record.

- :mod:`stir_ros.bag.types`: the rosbags type store with SpikePacket, type hashes, definitions.
- :mod:`stir_ros.bag.reader`: :class:`~stir_ros.bag.reader.BagReader` (sqlite3 and mcap, damaged
  bags read as far as they are good); :mod:`stir_ros.bag.writer`: :class:`~stir_ros.bag.writer.BagWriter`
  (bags as ROS 2 Jazzy's rosbag2 writes them); :mod:`stir_ros.bag.model`: what both share.
- :mod:`stir_ros.bag.recovery`: the reader's parsers for damaged files (sqlite3 salvage, mcap
  chunk-by-chunk reading and linear scan); :mod:`stir_ros.bag.mcap_records`: MCAP record types
  and framing.
- :mod:`stir_ros.bag.convert`: ``.dat`` <-> bag of SpikePackets.
- :mod:`stir_ros.bag.reconstruct`: offline reconstruction of a bag into images.
- :mod:`stir_ros.bag.play`, :mod:`stir_ros.bag.record`: rclpy playback and recording (the only
  modules here that use rclpy, imported when they run).
- :mod:`stir_ros.bag.cli`: ``stir-ros bag ...``.

Submodules are imported on use, so importing this package stays cheap.
"""

from __future__ import annotations

__all__: list[str] = []
