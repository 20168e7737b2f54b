# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""The Fast DDS profile the nodes load by default (config/fastdds_spike_stream.xml).

The rules of :func:`apply_fastdds_profile` are checked on plain dicts; then a real driver process
shows that Fast DDS loaded the profile (its shared-memory segment in /dev/shm has the profile's
size, not the default 512 KB) and that a subscriber without the profile receives its packets.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from stir_ros.core.errors import ConfigError
from stir_ros.runtime.fastdds_shm import STALE_AFTER_S, StaleSegments, remove_stale_segments
from stir_ros.runtime.dds_profile import (
    PROFILE_FILE,
    PROFILE_VARIABLES,
    SWITCH_VARIABLE,
    FASTDDS_DEFAULT_SEGMENT_BYTES,
    active_shm_segment_size,
    apply_fastdds_profile,
    shm_segment_size,
)
from stir_ros.ros.graph import DRIVER_PARAMETERS, find_config

NS = "{http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles}"


def test_default_points_both_fast_dds_variables_at_the_shipped_profile():
    env = {"RMW_IMPLEMENTATION": "rmw_fastrtps_cpp"}
    choice = apply_fastdds_profile(env)
    assert choice.path is not None and Path(choice.path).name == PROFILE_FILE and Path(choice.path).is_file()
    assert [env[v] for v in PROFILE_VARIABLES] == [choice.path, choice.path]
    assert apply_fastdds_profile({}).path is not None  # no RMW_IMPLEMENTATION: Fast DDS is ROS 2's default


@pytest.mark.parametrize("env", [
    {SWITCH_VARIABLE: "off"},
    {SWITCH_VARIABLE: "0"},
    {"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"},
    {"FASTRTPS_DEFAULT_PROFILES_FILE": "/etc/my_profile.xml"},
    {"FASTDDS_DEFAULT_PROFILES_FILE": "/etc/my_profile.xml"},
])  # fmt: skip
def test_the_users_choice_is_left_alone(env):
    before = dict(env)
    choice = apply_fastdds_profile(env)
    assert choice.path is None and env == before
    assert choice.message


def test_a_profile_path_in_the_switch_is_used_and_a_missing_one_refused(tmp_path):
    mine = tmp_path / "mine.xml"
    mine.write_text("<dds/>")
    env = {SWITCH_VARIABLE: str(mine)}
    choice = apply_fastdds_profile(env)
    assert choice.path == str(mine) and env["FASTRTPS_DEFAULT_PROFILES_FILE"] == str(mine)
    assert choice.message == f"Fast DDS profile {mine}"  # no segment size claimed for a file without one
    assert "16 MB shared-memory segment" in apply_fastdds_profile({}).message
    with pytest.raises(ConfigError, match="no such Fast DDS profile"):
        apply_fastdds_profile({SWITCH_VARIABLE: str(tmp_path / "missing.xml")})


def test_active_segment_follows_the_environment(tmp_path):
    env: dict[str, str] = {}
    assert active_shm_segment_size(env) == FASTDDS_DEFAULT_SEGMENT_BYTES  # no profile: Fast DDS's default
    apply_fastdds_profile(env)
    assert active_shm_segment_size(env) == shm_segment_size(find_config(PROFILE_FILE))
    assert active_shm_segment_size({"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"}) is None
    mine = tmp_path / "mine.xml"
    mine.write_text("<dds/>")
    assert active_shm_segment_size({PROFILE_VARIABLES[0]: str(mine)}) is None  # a profile that does not say


def test_profile_segment_holds_many_default_packets_and_keeps_udp():
    root = ET.parse(find_config(PROFILE_FILE)).getroot()
    descriptors = {d.findtext(f"{NS}transport_id"): d for d in root.iter(f"{NS}transport_descriptor")}
    types = {d.findtext(f"{NS}type") for d in descriptors.values()}
    assert types == {"SHM", "UDPv4"}  # same transports as Fast DDS's default: other hosts still reachable
    (shm,) = [d for d in descriptors.values() if d.findtext(f"{NS}type") == "SHM"]
    d = {p.name: p.default for p in DRIVER_PARAMETERS}
    packet_bytes = d["frames_per_packet"] * d["height"] * d["width"] // 8
    assert int(shm.findtext(f"{NS}segment_size")) >= 8 * packet_bytes
    assert shm_segment_size(find_config(PROFILE_FILE)) == int(shm.findtext(f"{NS}segment_size"))
    (participant,) = root.iter(f"{NS}participant")
    assert participant.get("is_default_profile") == "true"
    used = [t.text for t in participant.iter(f"{NS}transport_id")]
    assert sorted(used) == sorted(descriptors)


def _segments_mapped_by(pid: int) -> dict[str, int]:
    """Fast DDS shared-memory segments (name -> size) that process ``pid`` has mapped.

    Its own and those of the peers it writes to. Other ROS 2 processes on the machine do not count.
    """
    out = {}
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        path = line.split(maxsplit=5)[-1] if len(line.split()) >= 6 else ""
        name = Path(path).name
        if path.startswith("/dev/shm/") and name.startswith("fastrtps_") and not name.endswith("_el"):
            try:
                out[name] = Path(path).stat().st_size
            except OSError:
                pass
    return out


@pytest.mark.ros
@pytest.mark.slow
@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="no /dev/shm: Fast DDS shared memory unavailable")
@pytest.mark.parametrize("switch", ["", "off"])
def test_driver_process_loads_the_profile_and_plain_subscribers_receive(switch, ros_env, tmp_path):
    rclpy = pytest.importorskip("rclpy")
    from rclpy.qos import QoSProfile, QoSReliabilityPolicy

    from stir_ros.msg import SpikePacket

    env = {k: v for k, v in ros_env.items() if k not in PROFILE_VARIABLES}
    env[SWITCH_VARIABLE] = switch
    ns = f"dds_{uuid.uuid4().hex[:8]}"
    rclpy.init()  # this process: Fast DDS defaults (no profile variables set here)
    node = rclpy.create_node(f"dds_probe_{uuid.uuid4().hex[:8]}")
    received: list[int] = []
    node.create_subscription(SpikePacket, f"/{ns}/spikes", lambda m: received.append(m.seq),
                             QoSProfile(depth=50, reliability=QoSReliabilityPolicy.RELIABLE))
    log = tmp_path / "driver.log"
    with open(log, "wb") as out:
        drv = subprocess.Popen(["spike_camera_driver", "--ros-args", "-r", f"__ns:=/{ns}", "-p", "source:=sim",
                                "-p", "wait_for_subscribers:=1"],
                               env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(received) < 20:
            rclpy.spin_once(node, timeout_sec=0.1)
        mapped = _segments_mapped_by(drv.pid)  # while it runs (the simulated stream never ends)
        drv.send_signal(signal.SIGINT)
        assert drv.wait(timeout=30) == 0
    finally:
        if drv.poll() is None:
            drv.kill()
        node.destroy_node()
        rclpy.try_shutdown()
    text = log.read_text()
    assert received[:20] == list(range(20)), text
    segment = shm_segment_size(find_config(PROFILE_FILE))
    assert mapped, f"the driver maps no Fast DDS segment: {text}"
    big = [n for n, size in mapped.items() if size >= segment]
    # The line names the node as it runs: in its namespace (two cameras must not look like one).
    if switch == "off":
        assert f"[{ns}.spike_camera_driver]: {SWITCH_VARIABLE}=off: Fast DDS default transports" in text, text
        assert not big, mapped
    else:
        assert f"[{ns}.spike_camera_driver]: Fast DDS profile {find_config(PROFILE_FILE)}" in text, text
        assert len(big) == 1, mapped  # the driver's own; this process's is Fast DDS's default size


# ---------------------------------------------------------------- stale shared-memory segments


def _pair(shm: Path, name: str, size: int = 1000, age_s: float = 3600.0) -> Path:
    (shm / name).write_bytes(b"\0" * size)
    (shm / f"{name}_el").write_bytes(b"")
    old = time.time() - age_s
    for p in (shm / name, shm / f"{name}_el"):
        os.utime(p, (old, old))
    return shm / name


def test_only_unlocked_old_segments_are_removed(tmp_path):
    dead = _pair(tmp_path, "fastrtps_0123456789abcdef", size=4096)
    alive = _pair(tmp_path, "fastrtps_aaaaaaaaaaaaaaaa")
    young = _pair(tmp_path, "fastrtps_bbbbbbbbbbbbbbbb", age_s=1.0)  # being created right now: not yet locked
    port = _pair(tmp_path, "fastrtps_port7411")  # ports are reused by number: left alone
    other = _pair(tmp_path, "something_else_0123")
    holder = os.open(tmp_path / f"{alive.name}_el", os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)  # a living participant holds its lock
    try:
        result = remove_stale_segments(tmp_path, min_age_s=STALE_AFTER_S)
        assert remove_stale_segments(tmp_path).message == ""  # nothing left to remove: nothing to say
    finally:
        os.close(holder)
    assert result.removed == (dead.name,) and result.freed_bytes == 4096 and result.in_use == 1
    assert not dead.exists() and not Path(f"{dead}_el").exists()
    for kept in (alive, young, port, other):
        assert kept.exists() and Path(f"{kept}_el").exists(), kept
    assert "removed 1 stale Fast DDS shared-memory segment" in result.message
    assert remove_stale_segments(tmp_path / "missing") == StaleSegments(directory=tmp_path / "missing")


@pytest.mark.parametrize(
    ("segment_age_s", "lock_age_s", "removed"),
    [
        (2 * STALE_AFTER_S, 2 * STALE_AFTER_S, True),  # both old: the owner is gone
        (2 * STALE_AFTER_S, 1.0, False),  # young lock: a participant may be taking it right now
        (1.0, 2 * STALE_AFTER_S, False),  # young segment: being created
        (1.0, 1.0, False),
    ],
)
def test_an_unlocked_segment_is_removed_only_when_both_files_are_old(tmp_path, segment_age_s, lock_age_s, removed):
    segment = _pair(tmp_path, "fastrtps_0123456789abcdef", size=4096)
    lock = Path(f"{segment}_el")
    now = time.time()
    os.utime(segment, (now - segment_age_s, now - segment_age_s))
    os.utime(lock, (now - lock_age_s, now - lock_age_s))
    result = remove_stale_segments(tmp_path, min_age_s=STALE_AFTER_S)
    assert result.removed == ((segment.name,) if removed else ())
    assert segment.exists() is not removed and lock.exists() is not removed


_PARTICIPANT = """
import sys, time, rclpy
rclpy.init()
node = rclpy.create_node(sys.argv[1])
print("ready", flush=True)
time.sleep(600)
"""


@pytest.mark.ros
@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="no /dev/shm: Fast DDS shared memory unavailable")
def test_segments_of_a_killed_participant_are_removed_and_a_living_ones_kept(ros_env):
    """A real Fast DDS participant killed with SIGKILL leaves its segment; the next start removes it."""
    pytest.importorskip("rclpy")
    procs = [subprocess.Popen([sys.executable, "-c", _PARTICIPANT, f"shm_{uuid.uuid4().hex[:8]}"], env=ros_env,
                              stdout=subprocess.PIPE, text=True) for _ in range(2)]  # fmt: skip
    try:
        for p in procs:
            assert p.stdout.readline().strip() == "ready"
        own = [{n for n in _segments_mapped_by(p.pid) if "port" not in n and _is_own_segment(p.pid, n)} for p in procs]
        assert all(len(o) == 1 for o in own), own
        killed, living = procs
        killed.kill()
        killed.wait(timeout=10)
        old = time.time() - 2 * STALE_AFTER_S
        for name in own[0] | own[1]:  # both old enough: only the lock tells them apart
            for path in (Path("/dev/shm") / name, Path("/dev/shm") / f"{name}_el"):
                os.utime(path, (old, old))
        (dead_name,), (living_name,) = own
        result = remove_stale_segments()
        assert dead_name in result.removed and living_name not in result.removed
        assert not (Path("/dev/shm") / dead_name).exists() and not (Path("/dev/shm") / f"{dead_name}_el").exists()
        assert (Path("/dev/shm") / living_name).exists() and living.poll() is None
    finally:
        for p in procs:
            p.kill()
            p.wait(timeout=10)


def _is_own_segment(pid: int, name: str) -> bool:
    """Whether process ``pid`` holds the lock of segment ``name`` (its own, not a peer's it maps)."""
    lock = f"/dev/shm/{name}_el"
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if os.readlink(fd) == lock:
                return True
        except OSError:
            pass
    return False
