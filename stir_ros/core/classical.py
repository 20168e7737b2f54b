# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Classical reconstructions from a spike window: TFP (playback) and TFI (inter-spike interval).

Both take spikes ``[..., T, H, W]`` (numpy or torch; bool, integer or float holding only 0 and 1,
which they check; any window length) and return the raw float32 intensity estimate ``[..., H, W]``
of the centre frame ``T // 2``, already divided by ``alpha``. They do NOT clip: values can exceed
1 (bright pixels, noise), and the caller clamps to its output range.

numpy input runs in numpy and needs no torch (a robot without the ``stir`` extra,
:mod:`stir_ros.core.optional`); torch is imported only for tensor input.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np

from stir_ros.core.defaults import ALPHA
from stir_ros.core.errors import ConfigError, SpikeFormatError
from stir_ros.core.optional import is_tensor
from stir_ros.core.pixel_repair import PixelRepair

if TYPE_CHECKING:
    import torch

__all__ = ["PackedWindows", "check_spike_values", "spike_counts_packed", "tfi", "tfp", "tfp_packed"]

#: Packed bytes per frame summed at a time by :func:`spike_counts_packed`: the unpacked block
#: (frames x 8 x this) stays in the CPU's L2 cache instead of going through memory.
_CHUNK_BYTES = 4096


def _check(spikes: Any, alpha: float, check_values: bool) -> int:
    if check_values:
        check_spike_values(spikes, "spikes")
    if spikes.ndim < 3:
        raise SpikeFormatError(f"spikes must be [..., T, H, W], got shape {tuple(spikes.shape)}")
    if spikes.shape[-3] == 0:
        raise SpikeFormatError("spikes hold no frames (T = 0)")
    if not alpha > 0:
        raise ConfigError(f"alpha must be positive, got {alpha}")
    return int(spikes.shape[-3])


def check_spike_values(spikes: Any, name: str = "windows") -> None:
    """Refuse spikes ``[..., T, H, W]`` whose values are not 0/1 (checked by the engine, tfp and tfi).

    Not numbers (strings, objects, complex), no pixels, or any value other than 0 and 1 (2, 255,
    0.5, -1, NaN, infinite: bytes still packed, an image, a sign): each a :class:`SpikeFormatError`
    that says what was found, how often and where. The cost is one pass at most: none for bool,
    a maximum for integers (signed ones read as unsigned, so a negative value is a large one),
    one comparison pass for floats (it refuses NaN and infinities too). Bit-packed windows
    (:class:`PackedWindows`) are always spikes.

    Args:
        spikes: numpy array or torch tensor (any device).
        name: What the message calls them (``windows`` for the engine, ``spikes`` for tfp/tfi).
    """
    if not hasattr(spikes, "shape"):
        raise SpikeFormatError(f"{name} must be a numpy array or a torch tensor, got {type(spikes).__name__}")
    if len(spikes.shape) in (3, 4) and 0 in spikes.shape[-2:]:  # other ranks: refused by the callers
        raise SpikeFormatError(f"{name} must have a non-empty H and W, got shape {tuple(spikes.shape)}")
    if isinstance(spikes, np.ndarray):
        kind = spikes.dtype.kind
        if kind not in "biuf":
            raise SpikeFormatError(f"{name} must be 0/1 spikes of bool, integer or float, got dtype {spikes.dtype}")
        if kind == "b" or spikes.size == 0:
            return
        if kind == "f":
            ok = not ((spikes != 0) & (spikes != 1)).any()
        else:  # a view, not a copy: same bytes, same byte order, read as unsigned
            unsigned = np.dtype(f"u{spikes.dtype.itemsize}").newbyteorder(spikes.dtype.byteorder)
            ok = spikes.view(unsigned).max() <= 1
    elif is_tensor(spikes):
        if spikes.is_complex():
            raise SpikeFormatError(f"{name} must be 0/1 spikes of bool, integer or float, got dtype {spikes.dtype}")
        import torch

        if spikes.dtype == torch.bool or spikes.numel() == 0:
            return
        if spikes.dtype == torch.uint8:
            ok = bool(spikes.max() <= 1)
        elif spikes.is_signed() and not spikes.is_floating_point():
            low, high = torch.aminmax(spikes)
            ok = bool(low >= 0) and bool(high <= 1)
        else:  # floats (NaN and infinities too), and uint16/32/64, which torch cannot reduce
            ok = not bool(((spikes != 0) & (spikes != 1)).any())
    else:
        return  # PackedWindows: bits are always spikes
    if not ok:
        _refuse_values(spikes, name)


def _refuse_values(spikes: Any, name: str) -> NoReturn:
    """Raise the :class:`SpikeFormatError` of spikes holding values other than 0 and 1 (the rare path)."""
    if is_tensor(spikes):
        spikes = spikes.detach().cpu()
        spikes = (spikes.double() if spikes.is_floating_point() else spikes).numpy()
    values = np.asarray(spikes)
    bad = (values != 0) & (values != 1)
    found, counts = np.unique(values[bad], return_counts=True)
    shown = ", ".join(f"{_number(found[i])} x{counts[i]:,}" for i in np.argsort(-counts, kind="stable")[:3])
    if found.size > 3:
        shown += f", {found.size - 3} other values"
    if values.dtype.kind == "f" and not np.isfinite(found).all():
        shown += "; NaN or infinite"
    n = int(counts.sum())
    first = [int(i) for i in np.argwhere(bad)[0]]
    raise SpikeFormatError(
        f"{name} hold {n:,} {'value' if n == 1 else 'values'} other than 0 and 1 ({shown}), the first at {first}; "
        "expected 0/1 spikes (one bit per pixel and frame: unpack packed bytes, threshold an image)"
    )


def _number(value: Any) -> str:
    """``255``, ``-1``, ``0.5``, ``nan``: a value as a message shows it (whole floats without ``.0``)."""
    if value.dtype.kind != "f":
        return str(int(value))
    number = float(value)
    return str(int(number)) if math.isfinite(number) and number.is_integer() and abs(number) < 2**53 else str(value)


def tfp(
    spikes: np.ndarray | torch.Tensor, alpha: float = ALPHA, window: int | None = None, *, check_values: bool = True
) -> Any:
    """Texture from playback: the spike rate over a centred window, divided by ``alpha``.

    Args:
        spikes: ``[..., T, H, W]`` binary spikes.
        alpha: Sensor alpha (firing rate at intensity 1).
        window: Frames averaged, centred on ``T // 2`` (frames ``T//2 - window//2`` onwards);
            ``None`` uses all T.
        check_values: Refuse values other than 0 and 1 (:func:`check_spike_values`); ``False``
            only where the caller has checked them (the engine checks each batch once).

    Returns:
        float32 ``[..., H, W]`` (numpy for numpy input, else a tensor on the same device); not
        clipped.

    Raises:
        SpikeFormatError: For a wrong shape or values other than 0 and 1. ConfigError: For a bad
            alpha or window.
    """
    t_len = _check(spikes, alpha, check_values)
    window = t_len if window is None else int(window)
    if not 1 <= window <= t_len:
        raise ConfigError(f"window must be in [1, {t_len}] for {t_len} frames, got {window}")
    if isinstance(spikes, PackedWindows):
        if window == t_len:  # every frame: counted from the packed bits, none unpacked
            h, w = spikes.height, spikes.width
            out = np.empty((len(spikes), h, w), np.float32)
            for i, parts in enumerate(spikes.windows):
                out[i] = tfp_packed(parts, h, w, alpha, spikes.repairs[i])
            return out
        spikes = np.asarray(spikes)
    first = t_len // 2 - window // 2
    block = spikes[..., first : first + window, :, :]
    if is_tensor(spikes):
        return block.float().mean(dim=-3) / alpha
    block = np.asarray(block)
    if block.dtype in (np.bool_, np.uint8) and window <= 257:
        # Exact in uint16 for any uint8 values (255 x 257 < 2**16), and 1.5-3x faster than a
        # sum in int32; the counts are the same integers, so the image is the same bits.
        counts = block.sum(axis=-3, dtype=np.uint16)
        return _rate_image(counts, window, alpha, 255 * window)
    # Sum in a wide integer type first: a float32 mean over uint8 would be slower and no better.
    return (block.sum(axis=-3, dtype=np.int32) / np.float32(window * alpha)).astype(np.float32)


def _rate_image(counts: np.ndarray, frames: int, alpha: float, max_count: int) -> np.ndarray:
    """``counts / (frames * alpha)`` as float32, bit for bit as :func:`tfp` computes it.

    The division is done once per possible count (a table of ``max_count + 1`` values, computed
    with the same int32 / float32 promotion as ``tfp``) and looked up per pixel: one gather
    instead of an int32 copy, a float64 division and a float32 cast over every pixel.
    """
    table = (np.arange(max_count + 1, dtype=np.int32) / np.float32(frames * alpha)).astype(np.float32)
    return np.take(table, counts)


def spike_counts_packed(parts: Sequence[np.ndarray], height: int, width: int) -> np.ndarray:
    """Spikes per pixel over bit-packed frames, without unpacking a frame into memory.

    Args:
        parts: 2-D uint8 arrays ``[n_i, ceil(H * W / 8)]`` of frames in the SpikePacket layout
            (``vidar_bitpacked``; views of packet payloads, not copied), together the window.
        height: Frame height.
        width: Frame width.

    Returns:
        ``[H, W]`` counts: uint8 for up to 255 frames, else uint32.

    The sum runs over blocks of :data:`_CHUNK_BYTES` packed bytes: each block of every frame is
    unpacked into a cache-resident buffer and added to the counts, so the window's bits never
    travel through memory as bytes (an unpacked 41-frame window of 1000x1000 is 41 MB, its
    packed frames 5 MB).
    """
    frame_bytes = (height * width + 7) // 8
    parts = [np.asarray(p).reshape(-1, frame_bytes) for p in parts]
    total = sum(p.shape[0] for p in parts)
    if total == 0:
        raise SpikeFormatError("spikes hold no frames (T = 0)")
    if any(p.dtype != np.uint8 for p in parts):
        raise SpikeFormatError("packed frames must be uint8")
    dtype = np.uint8 if total <= 255 else np.uint32
    counts: np.ndarray = np.zeros(frame_bytes * 8, dtype)
    partial: np.ndarray = np.empty(_CHUNK_BYTES * 8, dtype)
    for j in range(0, frame_bytes, _CHUNK_BYTES):
        stop = min(frame_bytes, j + _CHUNK_BYTES)
        acc = counts[j * 8 : stop * 8]
        for p in parts:
            bits = np.unpackbits(p[:, j:stop], axis=1, bitorder="little")
            np.add.reduce(bits, axis=0, dtype=dtype, out=partial[: acc.size])
            np.add(acc, partial[: acc.size], out=acc)
    return counts[: height * width].reshape(height, width)


class PackedWindows:
    """A batch of windows ``[B, T, H, W]`` whose frames are still bit-packed (views of payloads).

    What :func:`tfp` needs to count spikes without unpacking (:func:`tfp_packed`); it looks
    enough like the stacked uint8 array it stands for (``ndim``, ``shape``, ``dtype``, ``len``,
    slicing along the batch) to go through ``ReconstructionEngine.reconstruct`` unchanged, and
    anything else that needs the bytes gets them decoded through ``np.asarray``.

    Args:
        windows: Per window, its parts: 2-D uint8 ``[n_i, ceil(H * W / 8)]`` (SpikePacket layout),
            together ``length`` frames.
        length: Frames per window (T).
        height: Frame height.
        width: Frame width.
        repairs: Per window, the defective pixels to repair (:class:`PixelRepair` or ``None``).
    """

    ndim = 4
    dtype = np.dtype(np.uint8)

    def __init__(self, windows: Sequence[Sequence[np.ndarray]], length: int, height: int, width: int,
                 repairs: Sequence[PixelRepair | None] | None = None) -> None:
        self.windows = [list(parts) for parts in windows]
        self.repairs = list(repairs) if repairs is not None else [None] * len(self.windows)
        self.length, self.height, self.width = int(length), int(height), int(width)
        if any(sum(len(p) for p in parts) != self.length for parts in self.windows):
            raise SpikeFormatError(f"every packed window must hold {self.length} frames")

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.windows), self.length, self.height, self.width)

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: slice) -> PackedWindows:
        if not isinstance(index, slice):
            raise TypeError("PackedWindows can only be sliced along the batch; np.asarray() decodes it")
        return PackedWindows(self.windows[index], self.length, self.height, self.width, self.repairs[index])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        """The stacked uint8 frames ``[B, T, H, W]`` (decoded here)."""
        from stir_ros.core.packing import unpack_frames

        out = np.empty(self.shape, np.uint8)
        for i, parts in enumerate(self.windows):
            t = 0
            for p in parts:
                out[i, t : t + len(p)] = unpack_frames(p, self.height, self.width, len(p))
                t += len(p)
            if self.repairs[i] is not None:
                self.repairs[i].apply(out[i])
        return out if dtype is None else out.astype(dtype)


def tfp_packed(
    parts: Sequence[np.ndarray], height: int, width: int, alpha: float = ALPHA, repair: PixelRepair | None = None
) -> np.ndarray:
    """:func:`tfp` over all frames of a window given bit-packed; the same float32 bits.

    Args:
        parts: The window's frames, packed, as for :func:`spike_counts_packed`.
        height: Frame height.
        width: Frame width.
        alpha: Sensor alpha.
        repair: Defective pixels to repair (their counts are repaired, which gives the image of
            the repaired frames bit for bit).

    Returns:
        float32 ``[H, W]``, not clipped: ``tfp(unpacked window, alpha)`` exactly, at a fraction of
        the cost of unpacking the window and summing it (BENCHMARKS.md, "Issue 14").
    """
    if not alpha > 0:
        raise ConfigError(f"alpha must be positive, got {alpha}")
    counts = spike_counts_packed(parts, height, width)
    if repair is not None:
        repair.apply_counts(counts)
    frames = sum(np.asarray(p).size for p in parts) // ((height * width + 7) // 8)
    return _rate_image(counts, frames, alpha, frames)


def tfi(spikes: np.ndarray | torch.Tensor, alpha: float = ALPHA, *, check_values: bool = True) -> Any:
    """Texture from inter-spike interval at the centre frame ``c = T // 2``.

    For every pixel the interval is ``R - L`` between the last spike at or before ``c`` (``L``)
    and the first spike after it (``R``); the intensity is ``1 / (alpha * interval)``. A side
    without a spike in the window is put just outside it (``L = -1``, ``R = T``): the shortest
    interval the window allows, so a pixel without any spike gets ``1 / (alpha * (T + 1))``, the
    largest intensity consistent with seeing no spike.

    Args:
        spikes: ``[..., T, H, W]`` binary spikes.
        alpha: Sensor alpha.
        check_values: As for :func:`tfp`.

    Returns:
        float32 ``[..., H, W]`` (numpy for numpy input, else a tensor on the same device); not
        clipped.

    Raises:
        SpikeFormatError: For a wrong shape or values other than 0 and 1. ConfigError: For a bad
            alpha.
    """
    t_len = _check(spikes, alpha, check_values)
    c = t_len // 2
    if is_tensor(spikes):
        import torch

        idx = torch.arange(t_len, device=spikes.device)[:, None, None]
        fired = spikes != 0
        left = torch.where(fired[..., : c + 1, :, :], idx[: c + 1], -1).amax(dim=-3)
        # T = 1 leaves no frame after the centre, and amin refuses an empty dimension.
        right = _amin_or(fired[..., c + 1 :, :, :], idx[c + 1 :], t_len)
        return 1.0 / (alpha * (right - left).float())
    fired = np.asarray(spikes) != 0
    # argmax finds the first True: over the frames from the centre backwards it is the last spike
    # at or before the centre. 2-3x faster than reducing an index array built with np.where.
    before = fired[..., c::-1, :, :]
    left = np.where(before.any(axis=-3), c - before.argmax(axis=-3), -1)
    after = fired[..., c + 1 :, :, :]
    right = np.full(left.shape, t_len)
    if after.shape[-3]:
        right = np.where(after.any(axis=-3), c + 1 + after.argmax(axis=-3), t_len)
    return (1.0 / (np.float32(alpha) * (right - left).astype(np.float32))).astype(np.float32)


def _amin_or(mask: torch.Tensor, idx: torch.Tensor, empty: int) -> torch.Tensor:
    """Smallest index where ``mask`` holds along dim -3, ``empty`` where none (or no frames)."""
    import torch

    if mask.shape[-3] == 0:
        return torch.full(mask.shape[:-3] + mask.shape[-2:], empty, device=mask.device)
    return torch.where(mask, idx, empty).amin(dim=-3)
