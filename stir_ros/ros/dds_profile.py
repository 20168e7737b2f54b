"""The Fast DDS profile: moved to :mod:`stir_ros.core.dds_profile` (it needs no ROS).

Kept so that ``from stir_ros.ros.dds_profile import apply_fastdds_profile`` goes on working
while the nodes switch to the core module; new code imports from the core.
"""

from __future__ import annotations

from stir_ros.core.dds_profile import (
    PROFILE_FILE,
    PROFILE_VARIABLES,
    SWITCH_VARIABLE,
    ProfileChoice,
    apply_fastdds_profile,
    shm_segment_size,
)

__all__ = ["PROFILE_FILE", "SWITCH_VARIABLE", "PROFILE_VARIABLES", "ProfileChoice", "apply_fastdds_profile", "shm_segment_size"]
