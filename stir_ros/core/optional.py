# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""PyTorch is optional: the ``stir`` extra.

A ROS distribution has no PyTorch package, so on a robot whose dependencies came from rosdep
(``package.xml``) torch is not installed. The driver with a ``.dat`` file (or a camera SDK), the
reconstructor and the offline tools with ``tfp``/``tfi`` and the bag tools run without it. What
needs it (method ``stir``, the simulator, training) refuses with :data:`INSTALL_STIR`, the
instruction to install the extra. The PyPI set-up (``scripts/setup.sh``) always installs torch.

Modules on the nodes' import path therefore never import torch at module level; they import it
where a tensor or the network is really used, or ask :func:`import_torch`.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

from stir_ros.core.errors import ConfigError

__all__ = ["INSTALL_STIR", "import_torch", "is_tensor", "torch_missing", "torch_required"]

#: How to get PyTorch (setup.py's ``stir`` extra, or its requirements file in a source checkout).
INSTALL_STIR = (
    "install the stir extra: pip install 'stir_ros[stir]', or in the stir_ros source tree "
    "pip install -r requirements/stir.txt"
)


def torch_missing(err: BaseException) -> bool:
    """Whether ``err`` is the ImportError of a PyTorch that is not installed (not a bug elsewhere)."""
    return isinstance(err, ImportError) and (getattr(err, "name", None) or "").split(".")[0] == "torch"


def import_torch() -> ModuleType | None:
    """The ``torch`` module, or ``None`` where it is not installed."""
    try:
        import torch
    except ImportError as err:
        if torch_missing(err):
            return None
        raise
    return torch


def is_tensor(value: Any) -> bool:
    """``isinstance(value, torch.Tensor)`` without importing torch (no torch loaded: no tensor)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def torch_required(what: str, alternative: str = "") -> ConfigError:
    """The error for ``what`` on a machine without PyTorch: what to install, and what runs without it."""
    tail = f"; {alternative}" if alternative else ""
    return ConfigError(f"{what} needs PyTorch, which is not installed: {INSTALL_STIR}{tail}")
