# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Where ``bag reconstruct`` puts its images: an output bag, a folder of PNGs, a video (any of them).

:class:`ImageOutputs` checks every output when it is made (before the slow engine is built),
creates them in :meth:`~ImageOutputs.create`, and closes them in :meth:`~ImageOutputs.close`
even after a failure, so that what was written is kept and readable. In the output bag each image
is a ``sensor_msgs/Image`` with, unless its topic is empty, a ``sensor_msgs/CameraInfo``: the
camera's own restamped as the node does, or an uncalibrated one of the image size.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from stir_ros.bag.model import make_qos
from stir_ros.bag.reader import BagReader
from stir_ros.bag.types import CAMERA_INFO, IMAGE, get_typestore
from stir_ros.bag.writer import BagWriter, copy_topics, serialize
from stir_ros.core.errors import BagError, ConfigError
from stir_ros.core.imaging import to_image_array, uncalibrated_camera_info
from stir_ros.core.paths import make_output_folder

__all__ = ["ImageOutputs", "VIDEO_SUFFIXES"]

VIDEO_SUFFIXES = (".gif", ".apng", ".mp4", ".mkv", ".avi", ".webm", ".mov")


class ImageOutputs:
    """The outputs of one reconstruction: a bag, a PNG folder and a video, each optional.

    Args:
        out_path: Output bag to create, or ``None``.
        storage: Its storage, ``sqlite3`` or ``mcap``.
        to_folder: Folder for one PNG per image, ``<index>_<stamp ns>.png``, or ``None``.
        video: Video file (``.gif``/``.apng`` with Pillow, ``.mp4`` etc. with imageio + ffmpeg), or ``None``.
        video_fps: Frame rate of the video.
        encoding: Image encoding, ``mono8``, ``mono16`` or ``32FC1``.
        image_topic: Image topic in the output bag.
        camera_info_topic: CameraInfo topic in the output bag; empty for none.

    Raises:
        BagError / ConfigError: An output that exists already or cannot be written.
    """

    def __init__(self, out_path: str | os.PathLike[str] | None, storage: str, to_folder: str | os.PathLike[str] | None,
                 video: str | os.PathLike[str] | None, video_fps: float, encoding: str, image_topic: str,
                 camera_info_topic: str) -> None:  # fmt: skip
        self.writer = BagWriter(out_path, storage) if out_path is not None else None
        self.folder = _check_folder(to_folder) if to_folder is not None else None
        self.video = _VideoWriter(Path(video), video_fps, encoding) if video is not None else None
        self.encoding, self.image_topic, self.camera_info_topic = encoding, image_topic, camera_info_topic
        self.store = get_typestore()
        self._conns: dict[str, Any] = {}
        self._image_conn: Any = None
        self._info_conn: Any = None

    def create(self) -> None:
        """Create the folder and open the bag."""
        if self.folder is not None:
            make_output_folder(self.folder)
        if self.writer is not None:
            self.writer.open()

    def add_topics(self, bag: BagReader, keep: list[str]) -> None:
        """Add the topics copied from ``bag``, then the image and camera_info topics, to the output bag."""
        if self.writer is None:
            return
        self._conns = copy_topics(bag, self.writer, keep)
        qos = [make_qos(reliable=True, depth=10)]
        self._image_conn = self.writer.add_topic(self.image_topic, IMAGE, qos)
        if self.camera_info_topic:
            self._info_conn = self.writer.add_topic(self.camera_info_topic, CAMERA_INFO, qos)

    def write_raw(self, msg: Any) -> None:
        """Copy a message of a kept topic, as read, to the output bag."""
        if self.writer is not None:
            self.writer.write(self._conns[msg.topic], msg.timestamp, msg.data)

    def write_copied(self, msg: Any) -> None:
        """Copy an image or camera_info message of another output bag (a shard of a job), as read."""
        if self.writer is not None:
            conn = self._image_conn if msg.topic == self.image_topic else self._info_conn
            self.writer.write(conn, msg.timestamp, msg.data)

    def write_image(self, index: int, image: np.ndarray, stamp: int, frame_id: str, camera_info: Any) -> None:
        """Write image number ``index`` (float, as reconstructed) to every output."""
        pixels = to_image_array(image, self.encoding)
        if self.writer is not None:
            self.writer.write(self._image_conn, stamp, self._image_cdr(pixels, stamp, frame_id))
            if self._info_conn is not None:
                self.writer.write(self._info_conn, stamp, self._camera_info_cdr(camera_info, pixels.shape, stamp,
                                                                                frame_id))  # fmt: skip
        if self.folder is not None:
            _save_png(self.folder / f"{index:06d}_{stamp}.png", pixels, self.encoding)
        if self.video is not None:
            self.video.append(pixels)

    def close(self, stream_events: dict[str, int]) -> None:
        """Close the bag (with the stream events in its custom data) and the video."""
        try:
            if self.writer is not None:
                if stream_events:
                    self.writer.set_custom_data("stir_ros.stream_events", repr(stream_events))
                self.writer.close()
        finally:
            if self.video is not None:
                self.video.close()

    # -- messages -------------------------------------------------------------------------

    def _header(self, stamp: int, frame_id: str) -> Any:
        t = self.store.types
        sec, nanosec = divmod(stamp, 1_000_000_000)
        return t["std_msgs/msg/Header"](stamp=t["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec),
                                        frame_id=frame_id)

    def _image_cdr(self, pixels: np.ndarray, stamp: int, frame_id: str) -> bytes | memoryview:
        h, w = pixels.shape
        msg = self.store.types[IMAGE](
            header=self._header(stamp, frame_id), height=h, width=w, encoding=self.encoding, is_bigendian=0,
            step=w * pixels.itemsize, data=np.ascontiguousarray(pixels).view(np.uint8).reshape(-1))
        return serialize(msg, IMAGE)

    def _camera_info_cdr(self, info: Any, shape: tuple[int, ...], stamp: int, frame_id: str) -> bytes | memoryview:
        """The camera's CameraInfo (or an uncalibrated one of the image size), restamped as the node does."""
        if info is not None:
            return serialize(dataclasses.replace(info, header=self._header(stamp, frame_id)), CAMERA_INFO)
        t = self.store.types
        msg = t[CAMERA_INFO](
            header=self._header(stamp, frame_id), **uncalibrated_camera_info(*shape),
            roi=t["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))
        return serialize(msg, CAMERA_INFO)


def _check_folder(path: str | os.PathLike[str]) -> Path:
    folder = Path(path)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise BagError(f"output folder '{folder}' exists and is not empty; choose a new one")
    return folder


def _save_png(path: Path, pixels: np.ndarray, encoding: str) -> None:
    from PIL import Image

    if encoding in ("mono8", "mono16"):
        Image.fromarray(pixels).save(path, compress_level=1)  # mode L or I;16
    else:
        raise ConfigError(f"PNG files hold mono8 or mono16 images, not {encoding}; choose --output-encoding mono8|mono16")


class _VideoWriter:
    """Animated GIF/APNG through Pillow, or a real video through imageio + ffmpeg if installed."""

    def __init__(self, path: Path, fps: float, encoding: str) -> None:
        if path.suffix.lower() not in VIDEO_SUFFIXES:
            raise ConfigError(f"video file must end in one of {', '.join(VIDEO_SUFFIXES)}, got '{path.name}'")
        if not fps > 0:
            raise ConfigError(f"video frame rate must be positive, got {fps}")
        if path.exists():
            raise BagError(f"video file '{path}' exists already; choose a new path")
        self.path, self.fps = path, fps
        self.kind = "pillow" if path.suffix.lower() in (".gif", ".apng") else "ffmpeg"
        self._frames: list[Any] = []
        self._ffmpeg: Any = None
        if self.kind == "ffmpeg":
            try:
                import imageio.v2 as imageio
                import imageio_ffmpeg  # noqa: F401 - the plugin imageio needs for these formats
            except ImportError as err:
                have_ffmpeg = shutil.which("ffmpeg")
                raise ConfigError(
                    f"writing '{path.name}' needs the Python packages imageio and imageio-ffmpeg "
                    f"({err}; ffmpeg binary {'found' if have_ffmpeg else 'not found'}); install them "
                    "or write an animated .gif or .apng instead"
                ) from err
            self._ffmpeg = imageio.get_writer(str(path), fps=fps, macro_block_size=1)

    def append(self, pixels: np.ndarray) -> None:
        if pixels.dtype == np.uint8:
            frame = pixels
        elif pixels.dtype == np.float32:
            frame = to_image_array(pixels, "mono8")
        else:  # mono16
            frame = (pixels >> 8).astype(np.uint8)
        if self._ffmpeg is not None:
            self._ffmpeg.append_data(frame)
        else:
            from PIL import Image

            self._frames.append(Image.fromarray(frame))

    def close(self) -> None:
        if self._ffmpeg is not None:
            self._ffmpeg.close()
            self._ffmpeg = None
            return
        if not self._frames:
            return
        first, rest = self._frames[0], self._frames[1:]
        duration_ms = max(1, round(1000 / self.fps))
        fmt = "GIF" if self.path.suffix.lower() == ".gif" else "PNG"
        first.save(self.path, format=fmt, save_all=True, append_images=rest, duration=duration_ms, loop=0)
        self._frames = []
