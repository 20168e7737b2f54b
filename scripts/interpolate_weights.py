#!/usr/bin/env python3
# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Interpolate two STIR checkpoints of the same architecture: ``(1 - t) * A + t * B``, weight by weight.

    python scripts/interpolate_weights.py A.pt B.pt T OUT.pt

A fine-tune (B) from A that learned something new (here: robustness to a real sensor's dark
current) often keeps most of it at ``T`` < 1 while giving back most of what it cost on the data
A was good at (weight-space ensembling). The metadata are B's, with the mix noted. Integer
buffers (batch-norm counters) are B's.
"""

from __future__ import annotations

import argparse
import math
import sys


def main() -> int:
    from stir_ros.models import build_model, read_checkpoint, save_checkpoint

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("a", metavar="A.pt")
    parser.add_argument("b", metavar="B.pt")
    parser.add_argument("t", type=float, metavar="T", help="weight of B, in [0, 1]")
    parser.add_argument("out", metavar="OUT.pt")
    args = parser.parse_args()
    if not (math.isfinite(args.t) and 0.0 <= args.t <= 1.0):
        parser.error(f"T must be in [0, 1], got {args.t}")
    a, b = read_checkpoint(args.a), read_checkpoint(args.b)
    if a["model_config"] != b["model_config"] or set(a["state_dict"]) != set(b["state_dict"]):
        sys.exit("interpolate_weights: the two checkpoints are not of the same architecture")
    sa, sb = a["state_dict"], b["state_dict"]
    mixed = {k: sa[k].float() * (1 - args.t) + sb[k].float() * args.t if sb[k].is_floating_point() else sb[k]
             for k in sb}  # fmt: skip
    model = build_model(b["model_config"])
    model.load_state_dict(mixed, strict=True)
    meta = dict(b["metadata"])
    meta.pop("code_version", None)
    meta["notes"] = f"{meta.get('notes', '')}; weights = {1 - args.t:g} x the start + {args.t:g} x this run".lstrip("; ")
    save_checkpoint(args.out, model, meta)
    print(f"wrote {args.out}: {1 - args.t:g} x {args.a} + {args.t:g} x {args.b}")
    return 0


if __name__ == "__main__":
    from stir_ros.core.errors import StirRosError

    try:
        sys.exit(main())
    except StirRosError as err:
        sys.exit(f"interpolate_weights: {err}")
