# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""Training STIR on synthetic spikes (``stir-ros train``)."""
