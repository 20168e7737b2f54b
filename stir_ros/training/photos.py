# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""``stir-ros data``: build the cache of real photographs that training draws its scenes from.

The photographs come from Debian packages (wallpapers of photographers who chose free licences,
and OpenCV's sample scenes), fetched with ``apt-get download`` and unpacked with ``dpkg-deb -x``
into a cache folder; nothing is installed on the system and nothing is committed to the
repository except their list (:mod:`stir_ros.training.photo_sources`). Each selected file is
converted to an 8-bit grayscale PNG (longer side at most ``--max-size``) and its package, version
and licence are written to ``ATTRIBUTION.md`` and ``sources.json`` beside the images.

The images are split once, by a hash of their name, into ``train/`` and ``val/``: the
validation folder is never trained on, so ``stir-ros train --images CACHE/train --val-images
CACHE/val`` validates on scenes the network has not seen.

Layout of the cache (default ``~/.cache/stir_ros/photos``)::

    debs/       the downloaded .deb files
    pkgs/NAME/  their unpacked contents
    train/      grayscale PNGs for training
    val/        grayscale PNGs held out for validation
    ATTRIBUTION.md, sources.json
    train_permissive/ (``--permissive``) the training PNGs under permissive licences (photo_licences)
    cutouts/    (``--cutouts``) gray + alpha PNGs of photographed objects, with their own
                ATTRIBUTION.md and sources.json: the objects of ``stir-ros train --scene camera
                --cutouts CACHE/cutouts``
    video/CLIP/ (``--videos``) the frames of real video clips as grayscale PNGs, with
                ATTRIBUTION.md and sources.json in ``video/``: the clips of ``stir-ros train
                --videos CACHE/video``

Nothing that this command did not make is deleted or overwritten: a folder it may rebuild
(``pkgs/NAME``, ``video/CLIP``) carries its :data:`MARKER`, and one without it, or an
ATTRIBUTION.md or sources.json it did not write, is an error instead. Such a folder counts as
done only once its ``.complete`` is written, after the unpack or decode succeeded; a run
stopped before that (Ctrl-C, a full disk) leaves it to be made again by the next.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from stir_ros.core.errors import ConfigError
from stir_ros.core.text_output import json_text
from stir_ros.training.deb_versions import newest_deb
from stir_ros.training.photo_licences import PERMISSIVE_FOLDER, write_permissive
from stir_ros.training.photo_sources import CUTOUT_SOURCE, SOURCES, VIDEO_SOURCE, PhotoSource

__all__ = [
    "CUTOUT_SOURCE", "MARKER", "VIDEO_SOURCE", "PhotoSource", "SOURCES", "add_arguments", "build", "build_cutouts",
    "build_videos", "is_photographic", "run",
]  # fmt: skip

VAL_FRACTION = 0.15
#: In every folder this command makes and may remove to build again: a folder without it is not ours.
MARKER = ".made-by-stir-ros-data"
#: Written last into such a folder once it is whole (an unpack, a clip's frames): one without it is
#: made again, so an interrupted run (Ctrl-C, a full disk) is never taken for a finished one.
_COMPLETE = ".complete"
#: A line of every ATTRIBUTION.md this command writes: one without it is not ours to replace.
_ATTRIBUTION_MARK = "Made by `stir-ros data"


def is_photographic(rgba: Any, name: str = "") -> bool:
    """Whether a stamp ``[H, W, 4]`` uint8 looks like a photograph rather than a drawing.

    Drawings have flat fills: many horizontally adjacent opaque pixels of exactly the same
    colour, and few distinct colours. Photographs have sensor noise and thousands of colours.
    Stamps named ``*_outline``, ``*_filled``, ``*_mirror`` (variants) or under ``cartoon/`` are
    drawings or duplicates.
    """
    import numpy as np

    stem = name.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    if stem.endswith(("_outline", "_filled", "_mirror")) or "cartoon" in name.split("/"):
        return False
    arr = np.asarray(rgba).astype(np.int32)
    if arr.ndim != 3 or arr.shape[2] != 4 or min(arr.shape[:2]) < 48:
        return False
    alpha = arr[..., 3]
    pairs = (alpha[:, 1:] == 255) & (alpha[:, :-1] == 255)
    if pairs.sum() < 1000 or not (alpha < 255).any():
        return False
    same = (arr[:, 1:, :3] == arr[:, :-1, :3]).all(-1)[pairs].mean()
    colours = len(np.unique(arr[..., :3][alpha == 255] @ np.array([1, 256, 65536])))
    return bool(same < 0.05 and colours >= 2000)


def default_cache() -> Path:
    """``$XDG_CACHE_HOME/stir_ros/photos`` (``~/.cache/stir_ros/photos``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "stir_ros" / "photos"


def is_validation(name: str) -> bool:
    """Whether an image belongs to the held-out split (a fixed hash of its output name)."""
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < VAL_FRACTION


def _copyright_text(root: Path, package: str) -> str:
    """The unpacked package's ``usr/share/doc/PACKAGE/copyright`` ("" when it has none)."""
    path = root / "usr/share/doc" / package / "copyright"
    return path.read_text(errors="replace") if path.is_file() else ""


def _licence_of(copyright_text: str, relative_path: str) -> str:
    """The ``License:`` of the machine-readable (DEP-5) copyright stanza that covers a file.

    DEP-5 paths are those of the source tree, not of the installed package, so a stanza matches
    when one of its patterns matches the file's name or its path's tail; otherwise the ``*``
    stanza (the package's default) applies.
    """
    default, best = "", ""
    for stanza in copyright_text.split("\n\n"):
        fields: dict[str, str] = {}
        key = ""
        for line in stanza.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key] += " " + line.strip()
            elif ":" in line:
                key, value = line.split(":", 1)
                key = key.strip().lower()
                fields[key] = value.strip()
        if "files" not in fields or "license" not in fields:
            continue
        licence = fields["license"].split(" ")[0]
        for pattern in fields["files"].split():
            if pattern == "*":
                default = default or licence
            elif fnmatch.fnmatch(os.path.basename(relative_path), os.path.basename(pattern)) or relative_path.endswith(
                pattern
            ):
                best = best or licence
    return best or default or "see the package's copyright file"


#: The record fields shown in each ATTRIBUTION.md table, in their order.
_COLUMNS = ("name", "package", "version", "file", "licence")


def _record(source: PhotoSource, version: str, name: str, rel: str, copyright_text: str) -> dict[str, str]:
    """The sources.json record of one stored file: where it came from and under which licence."""
    return {
        "name": name, "package": source.package, "version": version, "file": f"/{source.folder}/{rel}",
        "licence": _licence_of(copyright_text, rel),
    }  # fmt: skip


def _save_downscaled(img: Any, max_size: int, out: Path) -> None:
    """Write a PIL image as a PNG whose longer side is at most ``max_size``."""
    from PIL import Image

    img.thumbnail((max_size, max_size), Image.Resampling.LANCZOS)
    img.save(out)


def _write_attribution(out_dir: Path, records: Any, intro: list[str], columns: list[str], rows: list[list[str]]) -> None:
    """Write ``sources.json`` (the records) and ``ATTRIBUTION.md`` (``intro``, then a table) in ``out_dir``."""
    (out_dir / "sources.json").write_text(json_text(records))
    lines = [*intro, "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    (out_dir / "ATTRIBUTION.md").write_text("\n".join(lines) + "\n")


def _fresh_folder(folder: Path) -> None:
    """An empty ``folder`` with this command's marker; one that exists is emptied only if it has the marker.

    The marker itself is kept: a removal stopped half-way (Ctrl-C) leaves a folder that the next
    run still knows as its own, instead of one it must refuse as the user's.
    """
    marker = folder / MARKER
    if folder.exists():
        if not marker.is_file():
            raise ConfigError(f"'{folder}' exists and was not made by stir-ros data (no {MARKER} in it); "
                              "move it away or choose another --cache")
        for child in folder.iterdir():
            if child.name == MARKER:
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
        return
    folder.mkdir(parents=True)
    marker.write_text("made by stir-ros data: emptied and made again when incomplete\n")


def _check_attribution_ours(out_dir: Path) -> None:
    """Refuse to start where ATTRIBUTION.md or sources.json exist and were not written by this command."""
    attribution = out_dir / "ATTRIBUTION.md"
    ours = attribution.is_file() and _ATTRIBUTION_MARK in attribution.read_text(errors="replace")
    for path in (attribution, out_dir / "sources.json"):
        if path.exists() and not ours:
            raise ConfigError(f"'{path}' exists and was not written by stir-ros data; "
                              "move it away or choose another --cache")


def _run(cmd: Sequence[str], cwd: Path) -> None:
    try:
        subprocess.run(list(cmd), cwd=cwd, check=True, capture_output=True, text=True)
    except FileNotFoundError as err:
        raise ConfigError(f"'{cmd[0]}' not found: stir-ros data needs Debian's apt-get and dpkg-deb") from err
    except subprocess.CalledProcessError as err:
        detail = (err.stderr or err.stdout or "").strip().splitlines()
        raise ConfigError(f"{' '.join(cmd)} failed: {detail[-1] if detail else err}") from err


def _fetch(source: PhotoSource, cache: Path, log: Callable[[str], None]) -> tuple[Path, str]:
    """Download and unpack one package (once); returns its unpacked root and version."""
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    found = sorted(debs.glob(f"{source.package}_*.deb"))
    if not found:
        log(f"downloading {source.package}")
        # Into a folder of its own, moved beside the others once complete: a download that was
        # interrupted leaves its part there, not a .deb that every rerun would fail to unpack.
        partial = debs / ".download"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        _run(["apt-get", "download", "-qq", source.package], partial)
        for got in partial.glob(f"{source.package}_*.deb"):
            os.replace(got, debs / got.name)
        shutil.rmtree(partial, ignore_errors=True)
        found = sorted(debs.glob(f"{source.package}_*.deb"))
        if not found:
            raise ConfigError(f"apt-get download {source.package} left no .deb in {debs}")
    deb, version = newest_deb(found)  # by Debian's order: file names put 1.10 before 1.9
    root = cache / "pkgs" / source.package
    done = root / _COMPLETE
    if not done.is_file() or done.read_text().strip() != deb.name:
        _fresh_folder(root)  # none, an interrupted unpack of ours or another version; never the user's
        try:
            _run(["dpkg-deb", "-x", os.fspath(deb), os.fspath(root)], cache)
        except ConfigError as err:
            raise ConfigError(f"{err}; if '{deb}' is damaged (a download cut short), delete it and run again") from err
        done.write_text(f"{deb.name}\n")
    return root, version


def build(cache: Path, max_size: int = 1024, log: Callable[[str], None] = print) -> dict[str, list[dict[str, str]]]:
    """Fetch every source package, convert the selected photographs and write the attribution.

    Returns:
        ``{"train": [...], "val": [...]}``, one record per image (name, package, version, file,
        licence).
    """
    import numpy as np
    from PIL import Image

    from stir_ros.training.sources import to_gray

    _check_attribution_ours(cache)
    records: dict[str, list[dict[str, str]]] = {"train": [], "val": []}
    for split in records:
        (cache / split).mkdir(parents=True, exist_ok=True)
    for source in SOURCES:
        root, version = _fetch(source, cache, log)
        copyright_text = _copyright_text(root, source.package)
        for pattern in source.files:
            matches = sorted((root / source.folder).glob(pattern))
            if not matches:
                raise ConfigError(f"{source.package} {version} has no {source.folder}/{pattern}")
            for path in matches:
                rel = os.fspath(path.relative_to(root / source.folder))
                name = f"{source.package}__{rel.replace('/', '_').rsplit('.', 1)[0]}.png"
                split = "val" if is_validation(name) else "train"
                out = cache / split / name
                if not out.is_file():
                    with Image.open(path) as im:
                        im.draft("RGB", (max_size, max_size))  # JPEG: decode at a reduced scale
                        gray = to_gray(np.asarray(im.convert("RGB")))
                    _save_downscaled(Image.fromarray(np.round(gray * 255).astype(np.uint8)), max_size, out)
                records[split].append(_record(source, version, name, rel, copyright_text))
        log(f"{source.package} {version}: {len(source.files)} photograph(s)")
    intro = [
        "# Training photographs",
        "",
        "Made by `stir-ros data`. Grayscale, downscaled copies of photographs from Debian packages;",
        "each keeps the licence of its original (the package's `usr/share/doc/PACKAGE/copyright`).",
    ]
    columns = ["split", "image", "package", "version", "original file", "licence"]
    rows = [[split, *(r[k] for k in _COLUMNS)] for split, items in records.items() for r in items]
    _write_attribution(cache, records, intro, columns, rows)
    return records


def build_cutouts(cache: Path, max_size: int = 256, log: Callable[[str], None] = print) -> list[dict[str, str]]:
    """Fetch :data:`CUTOUT_SOURCE`, keep its photographic stamps and write them as gray + alpha PNGs.

    Writes ``cache/cutouts/*.png`` (longer side at most ``max_size``), ``ATTRIBUTION.md`` and
    ``sources.json`` beside them. SVG stamps (drawings) and stamps that have an SVG beside
    them are left out.

    Returns:
        One record per cut-out (name, package, version, file, licence).
    """
    import numpy as np
    from PIL import Image

    from stir_ros.training.sources import to_gray

    source = CUTOUT_SOURCE
    _check_attribution_ours(cache / "cutouts")
    root, version = _fetch(source, cache, log)
    copyright_text = _copyright_text(root, source.package)
    out_dir = cache / "cutouts"
    out_dir.mkdir(parents=True, exist_ok=True)
    base = root / source.folder
    records = []
    for path in sorted(base.glob(source.files[0])):
        rel = os.fspath(path.relative_to(base))
        if path.with_suffix(".svg").exists():
            continue
        name = f"{source.package}__{rel.replace('/', '_').rsplit('.', 1)[0]}.png"
        out = out_dir / name
        if not out.is_file():
            with Image.open(path) as im:
                rgba = np.asarray(im.convert("RGBA"))
            if not is_photographic(rgba, rel):
                continue
            gray = np.round(to_gray(rgba[..., :3]) * 255).astype(np.uint8)
            _save_downscaled(Image.fromarray(np.stack([gray, rgba[..., 3]], -1)), max_size, out)  # LA, uint8
        records.append(_record(source, version, name, rel, copyright_text))
    if not records:
        raise ConfigError(f"{source.package} {version}: no photographic stamps found")
    intro = [
        "# Object cut-outs",
        "",
        "Made by `stir-ros data --cutouts`. Grayscale + alpha, downscaled copies of the photographic stamps",
        f"of Tux Paint ({source.package} {version}); each keeps the licence of its original",
        f"(`/usr/share/doc/{source.package}/copyright`).",
    ]
    columns = ["cut-out", "package", "version", "original file", "licence"]
    _write_attribution(out_dir, records, intro, columns, [[r[k] for k in _COLUMNS] for r in records])
    log(f"{source.package} {version}: {len(records)} photographic cut-out(s)")
    return records


def build_videos(cache: Path, max_size: int = 384, log: Callable[[str], None] = print) -> list[dict[str, str]]:
    """Fetch :data:`VIDEO_SOURCE` and write each clip's frames as grayscale PNGs under ``cache/video/CLIP/``.

    Frames are stored with the longer side at most ``max_size``; ``ATTRIBUTION.md`` and
    ``sources.json`` go to ``cache/video``.

    Returns:
        One record per clip (name, package, version, file, licence, frames).
    """
    import numpy as np
    from PIL import Image

    try:
        import cv2
    except ImportError as err:  # pragma: no cover - opencv comes with the test requirements
        raise ConfigError("stir-ros data --videos needs OpenCV (pip install opencv-python-headless)") from err
    from stir_ros.training.sources import to_gray

    source = VIDEO_SOURCE
    _check_attribution_ours(cache / "video")
    root, version = _fetch(source, cache, log)
    copyright_text = _copyright_text(root, source.package)
    out_dir = cache / "video"
    records = []
    for rel in source.files:
        path = root / source.folder / rel
        if not path.is_file():
            raise ConfigError(f"{source.package} {version} has no {source.folder}/{rel}")
        clip_dir = out_dir / rel.rsplit(".", 1)[0]
        done = clip_dir / _COMPLETE
        if not done.is_file():
            _fresh_folder(clip_dir)  # an interrupted decode of ours; never a clip of the user's
            capture = cv2.VideoCapture(os.fspath(path))
            count = 0
            while True:
                ok, frame = capture.read()
                if not ok:
                    break
                img = Image.fromarray(np.round(to_gray(frame[..., ::-1]) * 255).astype(np.uint8))
                _save_downscaled(img, max_size, clip_dir / f"{count:05d}.png")
                count += 1
            capture.release()
            if count < 2:
                raise ConfigError(f"OpenCV decoded {count} frame(s) of {path}; is its video support installed?")
            done.write_text(f"{count}\n")
        records.append({**_record(source, version, clip_dir.name, rel, copyright_text), "frames": done.read_text().strip()})
        log(f"{source.package} {version}: {rel}, {records[-1]['frames']} frames")
    intro = [
        "# Video clips",
        "",
        "Made by `stir-ros data --videos`. Grayscale, downscaled frames of sample videos of",
        f"{source.package} {version}; each keeps the licence of its original",
        f"(`/usr/share/doc/{source.package}/copyright`).",
    ]
    columns = ["clip", "frames", "package", "version", "original file", "licence"]
    rows = [[r["name"], r["frames"], *(r[k] for k in _COLUMNS[1:])] for r in records]
    _write_attribution(out_dir, records, intro, columns, rows)
    return records


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``stir-ros data``."""
    parser.add_argument("--cache", type=Path, default=None,
                        help="cache folder (default: ~/.cache/stir_ros/photos)")  # fmt: skip
    parser.add_argument("--max-size", type=int, default=1024, help="longer side of the stored grayscale images")
    parser.add_argument("--list", action="store_true", help="print the source list and exit (no download)")
    parser.add_argument("--cutouts", action="store_true",
                        help=f"also fetch {CUTOUT_SOURCE.package} (~160 MB) and write its photographic stamps to "
                             "CACHE/cutouts (objects of --scene camera)")  # fmt: skip
    parser.add_argument("--videos", action="store_true",
                        help=f"also write the frames of {VIDEO_SOURCE.package}'s sample videos to CACHE/video "
                             "(clips of stir-ros train --videos)")  # fmt: skip
    parser.add_argument("--permissive", action="store_true",
                        help=f"also copy the training photographs under CC0, CC-BY, Expat/MIT, BSD or public-domain "
                             f"licences to CACHE/{PERMISSIVE_FOLDER} (train from it with --no-skimage)")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Entry point of ``stir-ros data``."""
    if args.list:
        for source in SOURCES:
            print(f"{source.package}: {len(source.files)} file(s) under /{source.folder}")
        print(f"{CUTOUT_SOURCE.package} (--cutouts): photographic stamps under /{CUTOUT_SOURCE.folder}")
        print(f"{VIDEO_SOURCE.package} (--videos): {', '.join(VIDEO_SOURCE.files)} under /{VIDEO_SOURCE.folder}")
        return 0
    if not 64 <= args.max_size <= 8192:
        raise ConfigError(f"--max-size must be in [64, 8192], got {args.max_size}")
    cache = args.cache or default_cache()
    records = build(cache, max_size=args.max_size, log=lambda m: print(f"[data] {m}", flush=True))
    if getattr(args, "permissive", False):
        kept = write_permissive(cache, records["train"], _fresh_folder, _write_attribution)
        print(f"[data] {len(kept)} of {len(records['train'])} training image(s) under permissive licences in "
              f"{cache / PERMISSIVE_FOLDER}; use: stir-ros train --images {cache / PERMISSIVE_FOLDER} --no-skimage ...")
    if getattr(args, "cutouts", False):
        cut = build_cutouts(cache, log=lambda m: print(f"[data] {m}", flush=True))
        print(f"[data] {len(cut)} cut-out(s) in {cache / 'cutouts'}; use: stir-ros train --scene camera "
              f"--cutouts {cache / 'cutouts'} ...")  # fmt: skip
    if getattr(args, "videos", False):
        clips = build_videos(cache, log=lambda m: print(f"[data] {m}", flush=True))
        print(f"[data] {len(clips)} clip(s) in {cache / 'video'}; use: stir-ros train --videos {cache / 'video'} ...")
    print(
        f"[data] {len(records['train'])} training and {len(records['val'])} validation image(s) in {cache}; "
        f"train with: stir-ros train --images {cache / 'train'} --val-images {cache / 'val'} ..."
    )
    return 0
