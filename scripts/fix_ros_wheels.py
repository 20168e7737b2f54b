#!/usr/bin/env python3
# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Point the ROS 2 wheels' exported CMake targets at this interpreter's include dirs.

The PyPI ROS 2 wheels were built on a manylinux host; the CMake export files of every message
package's Python typesupport name that host's Python and numpy include directories
(``/opt/python/cp311-cp311/...``). ``rosidl_generate_interfaces`` links against those targets, so
building our messages fails until the paths are rewritten to the ones of the venv's interpreter.
The script is idempotent: it only rewrites paths that do not exist on this machine.
"""

from __future__ import annotations

import pathlib
import re
import sys
import sysconfig

import numpy

# Build-host paths as they appear in the wheels' *Export.cmake files.
_PY_INCLUDE = re.compile(r"/opt/python/cp3\d+-cp3\d+/include/python3\.\d+")
_NUMPY_INCLUDE = re.compile(
    r"/opt/python/cp3\d+-cp3\d+/lib/python3\.\d+/site-packages/numpy/(?:_core|core)/include"
)


def fix_prefix(prefix: pathlib.Path) -> int:
    """Rewrite the include dirs in every exported CMake file under ``prefix/share``.

    Args:
        prefix: the ROS install prefix (the virtual environment).

    Returns:
        The number of files changed.
    """
    py_include = sysconfig.get_paths()["include"]
    np_include = numpy.get_include()
    changed = 0
    for path in sorted(prefix.glob("share/*/cmake/*.cmake")):
        text = path.read_text()
        if "/opt/python/" not in text:
            continue
        new = _NUMPY_INCLUDE.sub(np_include, text)
        new = _PY_INCLUDE.sub(py_include, new)
        if new != text:
            path.write_text(new)
            changed += 1
    return changed


def main() -> int:
    prefix = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else sys.prefix)
    changed = fix_prefix(prefix)
    print(f"fix_ros_wheels: rewrote include dirs in {changed} CMake export file(s) under {prefix}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
