# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Feature reuse across overlapping windows of one stream (``feature_reuse``): :class:`StreamingSTIR`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from stir_ros.core.errors import SpikeFormatError
from stir_ros.models.blocks import pad_tail
from stir_ros.models.inference import InferenceModel

__all__ = ["StreamingSTIR"]


class StreamingSTIR:
    """Reconstructs overlapping windows of one stream, computing each block's features once.

    STIR embeds and encodes the three blocks of a window independently before they interact;
    with a 20-frame stride, consecutive 61-frame windows share two of their three blocks (41-frame
    windows need a 13-frame stride). Block features are keyed by the block's first frame in the
    stream, so a window whose blocks were seen before only embeds and encodes its new block.
    The result is the same as :class:`InferenceModel`'s (the same layers on the same frames;
    differences come only from batch-size-dependent kernel choices, about 1e-7).

    Runs the prepared eager module (no ``torch.compile``, no CUDA graphs). Windows are expected
    in increasing start order: after each call only the blocks that a later window can share
    are kept (at most two), so memory stays bounded; out-of-order or unrelated windows are still
    exact, they just reuse nothing. A cached block is reused only if its frames equal the new
    block's (compared, so a stream that restarts or jumps never gets another stream's features);
    :meth:`reset` frees the cache.

    Args:
        predictor: A prepared model (its precision, layout and device are used).
    """

    def __init__(self, predictor: InferenceModel) -> None:
        self.predictor = predictor
        self.module = predictor.module
        self.window_length = predictor.window_length
        self.blocks: tuple[tuple[int, int], ...] = tuple(self.module.blocks)
        # block start -> (the block's frames, its embedding, its encoder features)
        self._cache: dict[int, tuple[Tensor, Tensor, list[Tensor]]] = {}
        self._cache_size: tuple[int, int] | None = None
        #: Blocks embedded and encoded, and block uses served from the cache, since creation.
        self.blocks_computed = 0
        self.blocks_reused = 0

    def reset(self) -> None:
        """Forget the cached block features (a new stream, or a jump in the frame index)."""
        self._cache.clear()
        self._cache_size = None

    def reconstruct_stream(self, windows: Tensor | np.ndarray, starts: Sequence[int]) -> Tensor:
        """Reconstruct windows given with their first frame's index in the stream.

        Args:
            windows: ``[B, T, H, W]`` spikes as :class:`InferenceModel` takes them.
            starts: B stream indices of each window's first frame (e.g. ``[0, 20, 40]``); a
                block's features are reused for a block that starts at the same index with the
                same frames.

        Returns:
            float32 ``[B, 1, H, W]`` raw images, as :class:`InferenceModel` returns them.
        """
        x = torch.as_tensor(windows)
        p = self.predictor
        if x.dim() != 4 or x.shape[1] != self.window_length or len(starts) != x.shape[0]:
            raise SpikeFormatError(
                f"reconstruct_stream expects spikes [B, {self.window_length}, H, W] and B starts, "
                f"got {tuple(x.shape)} and {len(starts)} starts"
            )
        if x.dtype == torch.bool:
            x = x.view(torch.uint8)
        h, w = x.shape[-2], x.shape[-1]
        if self._cache_size != (h, w):
            self.reset()
            self._cache_size = (h, w)
        x, _, _ = pad_tail(x.to(p.device, non_blocking=True), p._size_multiple)
        layout = torch.channels_last if p.channels_last else torch.contiguous_format
        x = x.to(dtype=p.dtype, memory_format=layout)
        starts = [int(s) for s in starts]
        with torch.inference_mode():
            needed: dict[int, tuple[int, int, int]] = {}  # block start -> (window, first, stop)
            for i, s in enumerate(starts):
                for b0, b1 in self.blocks:
                    key, block = s + b0, x[i, b0:b1]
                    if key in needed:
                        j, c0, c1 = needed[key]
                        if not torch.equal(x[j, c0:c1], block):  # one index, two streams in one batch
                            self.reset()
                            return p(windows)
                        continue
                    cached = self._cache.get(key)
                    if cached is None or not torch.equal(cached[0], block):  # new, or another stream's
                        needed[key] = (i, b0, b1)
            self.blocks_reused += len(self.blocks) * len(starts) - len(needed)
            if needed:
                new = torch.cat([x[i : i + 1, b0:b1] for i, b0, b1 in needed.values()])
                embed = self.module.embedding(new)
                feats = self.module.encoder(embed)
                for k, (key, (i, b0, b1)) in enumerate(needed.items()):
                    self._cache[key] = (x[i, b0:b1].clone(), embed[k : k + 1], [f[k : k + 1] for f in feats])
                self.blocks_computed += len(needed)
            left, centre, right = (
                [self._cache[s + b0][1:] for s in starts] for b0, _ in self.blocks
            )
            raw = self._decode(left, centre, right)
            # Keep what a later window can share: the blocks after the last window's first one.
            last = max(starts) + self.blocks[0][0]
            self._cache = {k: v for k, v in self._cache.items() if k > last}
        return raw[..., :h, :w].float().contiguous()

    def _decode(self, left: list[Any], centre: list[Any], right: list[Any]) -> Tensor:
        from stir_ros.models.stir import StirFeatures

        def stack(items: list[Any], level: int | None) -> Tensor:
            return torch.cat([it[0] if level is None else it[1][level] for it in items])

        levels = len(centre[0][1])
        top_c, top_l, top_r = (stack(side, levels - 1) for side in (centre, left, right))
        features = StirFeatures(
            centre_embed=stack(centre, None),
            side_embed=torch.cat([stack(left, None), stack(right, None)]),
            centre_feats=[stack(centre, k) for k in range(levels - 1)],
            side_feats=[torch.cat([stack(left, k), stack(right, k)]) for k in range(levels - 1)],
            fused=self.module.attention(top_c, top_l, top_r),
        )
        return self.module.forward_head(features)[0]
