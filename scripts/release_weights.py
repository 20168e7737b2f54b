#!/usr/bin/env python3
# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Re-save a STIR checkpoint as a weights-only fp16 file (how the shipped weights are stored).

    python scripts/release_weights.py IN.pt OUT.pt [--note TEXT] [--steps N] [--training-data TEXT]

Drops optimiser and training state, stores the weights in fp16 (rebuilt in fp32 on load; the
evaluation changes by less than 0.01 dB) and appends ``--note`` to the metadata's notes.
``--steps`` and ``--training-data`` replace those metadata fields: a run started with
``--init-weights`` counts its own steps only, and the released file should say all of them.
"""

from __future__ import annotations

import argparse
import sys

from stir_ros.models import build_model, read_checkpoint, save_checkpoint


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("source")
    parser.add_argument("dest")
    parser.add_argument("--note", default="", help="text appended to the metadata's notes")
    parser.add_argument("--steps", type=int, default=None, help="total optimiser steps of all stages")
    parser.add_argument("--training-data", default=None, help="description of every stage's training data")
    args = parser.parse_args()
    ckpt = read_checkpoint(args.source)
    model = build_model(ckpt["model_config"])
    model.load_state_dict(ckpt["state_dict"], strict=True)
    meta = dict(ckpt["metadata"])
    meta.pop("code_version", None)
    meta["created"] = ""
    if args.steps is not None:
        if args.steps < 0:
            parser.error(f"--steps must be >= 0, got {args.steps}")
        meta["steps"] = args.steps
    if args.training_data:
        meta["training_data"] = args.training_data
    if args.note:
        meta["notes"] = f"{meta.get('notes', '')}; {args.note}".lstrip("; ")
    digest = save_checkpoint(args.dest, model.half(), meta, model_config=ckpt["model_config"])
    print(f"{args.dest}: fp16 weights, sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
