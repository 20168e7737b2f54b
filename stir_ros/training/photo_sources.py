# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""What ``stir-ros data`` fetches: the Debian packages and, in each, the photographs, stamps and clips.

A table, chosen by looking at each file (real scenes only: abstract art, logos, renders and a
feature film's excerpt are left out); :mod:`stir_ros.training.photos` fetches and converts them.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CUTOUT_SOURCE", "SOURCES", "VIDEO_SOURCE", "PhotoSource"]


@dataclass(frozen=True)
class PhotoSource:
    """Photographs of one Debian package.

    Attributes:
        package: Debian package name.
        folder: Folder inside the package that holds the files.
        files: Glob patterns (relative to ``folder``) of the photographs to use: real scenes only,
            chosen by looking at each file (abstract art, logos and renders are left out).
    """

    package: str
    folder: str
    files: tuple[str, ...]


SOURCES: tuple[PhotoSource, ...] = (
    PhotoSource("lomiri-wallpapers-16.04", "usr/share/backgrounds", (
        "Bridge_by_Sander_Klootwijk.jpg", "Dragonfly_by_Bolly.jpg", "Picture_0B_by_freespace.jpg",
        "Picture_1A_by_freespace.jpg", "Wine_by_Jakkub_Mede.jpg", "aitzgorri_by_Aitzol_Berasategi.jpg",
        "free_by_Peter_Nerlich.jpg", "friends_by_Aitzol_Berasategi.jpg", "life_by_Aitzol_Berasategi.jpg",
        "picosdeeuropa_by_Aitzol_Berasategi.jpg", "seeding_by_Clements_Engelhardt.jpg",
        "sunset_by_Aitzol_Berasategi.jpg",
    )),
    PhotoSource("mate-backgrounds", "usr/share/backgrounds/mate", (
        "abstract/Elephants_3840x2160.jpg", "nature/Garden.jpg", "nature/Dune.jpg", "nature/Wood.jpg",
        "nature/Aqua.jpg", "nature/TwoWings.jpg", "nature/Storm.jpg", "nature/GreenMeadow.jpg",
        "nature/RainDrops.jpg", "nature/Blinds.jpg", "nature/LadyBird.jpg",
    )),
    PhotoSource("plasma-workspace-wallpapers", "usr/share/wallpapers", (
        "BytheWater/contents/images/2560x1440.jpg", "ColdRipple/contents/images/2560x1440.jpg",
        "ColorfulCups/contents/images/2560x1600.jpg", "EveningGlow/contents/images/2560x1440.jpg",
        "FallenLeaf/contents/images/2560x1440.jpg", "Grey/contents/images/2560x1440.jpg",
        "Kite/contents/images/2560x1440.jpg", "OneStandsOut/contents/images/2560x1440.jpg",
        "Path/contents/images/2560x1440.jpg", "summer_1am/contents/images/2560x1440.jpg",
    )),
    PhotoSource("lxqt-themes", "usr/share/lxqt/wallpapers", (
        "Butterfly-Kenneth-Wimer.jpg", "Valendas.png", "after-the-rain.jpg", "appleflower.png", "beam.png",
        "butterfly.png", "cloud.png", "drop.png", "flowers.png", "fog.jpg", "this-is-not-windows.jpg",
    )),
    PhotoSource("opencv-doc", "usr/share/doc/opencv-doc/examples/data", (
        "aero1.jpg", "aloeL.jpg", "baboon.jpg", "basketball1.png", "building.jpg", "butterfly.jpg",
        "fruits.jpg", "graf1.png", "home.jpg", "leuvenA.jpg", "messi5.jpg", "orange.jpg",
        "rubberwhale1.png", "smarties.png", "squirrel_cls.jpg", "stuff.jpg",
    )),
)  # fmt: skip


#: Tux Paint's stamps: about 800 PNGs with alpha, most of them photographs of objects, animals and
#: plants cut out from their background; :func:`is_photographic` keeps those (about 250).
CUTOUT_SOURCE = PhotoSource("tuxpaint-stamps-default", "usr/share/tuxpaint/stamps", ("**/*.png",))

#: OpenCV's sample videos of real scenes: a hand-held camera filming a tree (68 frames, 320x240)
#: and a fixed camera filming people walking (795 frames, 768x576). The package's third clip,
#: Megamind.avi, is an excerpt of a feature film and is left out.
VIDEO_SOURCE = PhotoSource("opencv-doc", "usr/share/doc/opencv-doc/examples/data", ("tree.avi", "vtest.avi"))
