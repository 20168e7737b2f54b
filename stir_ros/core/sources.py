# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Spike sources for the camera driver: a ``.dat`` file, a simulator, or a hardware SDK.

The driver node only needs the :class:`SpikeSource` interface, so plugging in a real camera is a
matter of writing one small class around the vendor's SDK::

    class VendorSource:
        def __init__(self, serial: str):
            self.cam = vendor_sdk.open(serial)          # hypothetical SDK
            self.height, self.width = self.cam.height, self.cam.width
            self.frame_rate_hz = self.cam.frame_rate

        def read(self, max_frames: int) -> SpikeBlock | None:
            raw = self.cam.grab(max_frames)             # blocks until frames are there
            # Vidar SDKs deliver the .dat layout: bottom row first. Reorder to the packet layout
            # (top row first) once, here: for widths divisible by 8 it is a reversal of byte rows.
            payload = np.frombuffer(raw, np.uint8).reshape(-1, self.height, self.width // 8)[:, ::-1]
            return SpikeBlock(payload.reshape(-1), payload.shape[0])

        def close(self) -> None:
            self.cam.close()

A source that blocks in :meth:`SpikeSource.read` until frames are captured is paced by the
hardware; the driver's ``realtime`` pacing is for file and simulated sources.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from stir_ros.core.defaults import ALPHA
from stir_ros.core.dat import DatReader
from stir_ros.core.errors import ConfigError, DatFileError
from stir_ros.core.optional import torch_missing, torch_required
from stir_ros.core.sensor_model import SensorModel
from stir_ros.core.packing import ENCODING_VIDAR_BITPACKED, decode_payload, encode_frames, packed_frame_bytes

__all__ = ["SpikeBlock", "SpikeSource", "DatSource", "SimSource"]


@dataclass(frozen=True)
class SpikeBlock:
    """Consecutive frames from a source, as a packet payload.

    Attributes:
        data: 1-D uint8 payload in the SpikePacket layout of ``encoding`` (top row first).
        num_frames: Frames in ``data``.
        encoding: A SpikePacket encoding (``vidar_bitpacked`` unless the source says otherwise).
    """

    data: np.ndarray
    num_frames: int
    encoding: str = ENCODING_VIDAR_BITPACKED

    def frames(self, height: int, width: int) -> np.ndarray:
        """Decoded uint8 frames ``[N, H, W]``."""
        return decode_payload(self.data, height, width, self.num_frames, self.encoding)


@runtime_checkable
class SpikeSource(Protocol):
    """What the driver needs from a spike camera, file or simulator.

    Attributes:
        height: Frame height in pixels.
        width: Frame width in pixels.
        frame_rate_hz: Sensor frame rate (frames per second).
    """

    height: int
    width: int
    frame_rate_hz: float

    def read(self, max_frames: int) -> SpikeBlock | None:
        """Return the next 1 to ``max_frames`` frames, or ``None`` at the end of the stream."""
        ...

    def close(self) -> None:
        """Release the file or device."""
        ...


def _check_rate(frame_rate_hz: float) -> float:
    if not (isinstance(frame_rate_hz, (int, float)) and math.isfinite(frame_rate_hz) and frame_rate_hz > 0):
        raise ConfigError(f"frame_rate_hz must be a positive number, got {frame_rate_hz!r}")
    return float(frame_rate_hz)


class DatSource:
    """Frames of a Vidar ``.dat`` file, optionally looped forever.

    Reads are memory-mapped and already bit-packed (no unpacking). When looping, a block may
    span the end and the start of the file; the frame index keeps counting up.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        height: int,
        width: int,
        frame_rate_hz: float = 20000.0,
        loop: bool = False,
    ) -> None:
        """Raises DatFileError if the file cannot be read as ``height`` x ``width`` frames."""
        self.reader = DatReader(path, height, width)
        if self.reader.num_frames == 0:
            raise DatFileError(f"spike file '{path}' holds no frames")
        self.height, self.width = self.reader.height, self.reader.width
        self.frame_rate_hz = _check_rate(frame_rate_hz)
        self.loop = bool(loop)
        self.position = 0  # next frame to read within the file
        self.frames_read = 0

    def read(self, max_frames: int) -> SpikeBlock | None:
        if max_frames < 1:
            raise ConfigError(f"max_frames must be positive, got {max_frames}")
        fb = packed_frame_bytes(self.height, self.width)
        out = np.empty(max_frames * fb, np.uint8)
        n = self.read_into(out, max_frames)
        return None if n is None else SpikeBlock(out[: n * fb], n)

    def read_into(self, out: np.ndarray, max_frames: int) -> int | None:
        """Like :meth:`read`, but write the payload into ``out``; return the frames written.

        ``out`` (writable 1-D uint8, at least ``max_frames`` packed frames) is typically the
        driver's reused message buffer: the file's bytes are copied once, straight into it, and
        nothing is allocated per packet. ``None`` at the end of the stream.
        """
        total = self.reader.num_frames
        if max_frames < 1:
            raise ConfigError(f"max_frames must be positive, got {max_frames}")
        if self.position >= total:
            if not self.loop:
                return None
            self.position = 0
        fb = packed_frame_bytes(self.height, self.width)
        done = 0
        while done < max_frames:
            count = min(max_frames - done, total - self.position)
            self.reader.read_packed_into(self.position, count, out[done * fb :])
            self.position += count
            done += count
            if self.position >= total:
                if not self.loop:
                    break
                self.position = 0
        self.frames_read += done
        return done

    def close(self) -> None:
        self.reader.close()


class SimSource:
    """An endless simulated spike stream of a moving synthetic scene.

    Integrate-and-fire spikes (:class:`stir_ros.core.simulator.IntegrateAndFire`) of a
    :class:`stir_ros.core.scenes.MovingScene`; the scene intensity of any frame is available
    through :meth:`ground_truth`, so tests can compare reconstructions against it.
    """

    def __init__(
        self,
        height: int,
        width: int,
        frame_rate_hz: float = 20000.0,
        alpha: float = ALPHA,
        seed: int = 0,
        max_speed: float = 0.02,
        noise_std: float = 0.0,
        max_frames: int = 0,
        sensor: SensorModel | None = None,
    ) -> None:
        """Create the source.

        Args:
            height: Frame height.
            width: Frame width.
            frame_rate_hz: Nominal sensor rate (the scene moves ``max_speed`` pixels per frame).
            alpha: Sensor alpha.
            seed: Seed of the scene and of the sensor's random start.
            max_speed: Peak scene speed in pixels per frame.
            noise_std: Noise of the integrate-and-fire increments.
            max_frames: End the stream after this many frames (0: never).
            sensor: A real sensor's imperfections (:mod:`stir_ros.core.sensor_model`; ``None``:
                the ideal sensor), seeded with ``seed``.
        """
        try:  # torch only when simulating: a robot without the stir extra still replays files
            from stir_ros.core.scenes import MovingScene
            from stir_ros.core.simulator import IntegrateAndFire
        except ImportError as err:
            if not torch_missing(err):
                raise
            raise torch_required("source 'sim' (the simulated scene)", "source 'dat' runs without it") from err

        if height <= 0 or width <= 0:
            raise ConfigError(f"sim size must be positive, got {height}x{width}")
        self.height, self.width = int(height), int(width)
        self.frame_rate_hz = _check_rate(frame_rate_hz)
        self.alpha = float(alpha)
        self.max_frames = int(max_frames)
        self.scene = MovingScene(self.height, self.width, max_speed=max_speed, seed=seed)
        self.sensor = IntegrateAndFire(self.height, self.width, alpha=alpha, noise_std=noise_std, seed=seed,
                                       sensor=sensor, frame_rate_hz=self.frame_rate_hz)  # fmt: skip
        self.frames_read = 0

    def read(self, max_frames: int) -> SpikeBlock | None:
        if max_frames < 1:
            raise ConfigError(f"max_frames must be positive, got {max_frames}")
        n = max_frames
        if self.max_frames:
            n = min(n, self.max_frames - self.frames_read)
            if n <= 0:
                return None
        intensity = self.scene.render(self.frames_read, n)
        spikes = self.sensor.step(intensity).cpu().numpy()
        self.frames_read += n
        return SpikeBlock(encode_frames(spikes, ENCODING_VIDAR_BITPACKED), n)

    def ground_truth(self, frame_index: int) -> np.ndarray:
        """Scene intensity ``[H, W]`` (float32 in [0, 1]) at ``frame_index``."""
        return self.scene.render(int(frame_index), 1)[0].cpu().numpy().astype(np.float32)

    def close(self) -> None:
        pass
