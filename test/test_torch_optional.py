# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""A robot without PyTorch (no ``stir`` extra): the package imports, the nodes run tfp, stir is refused.

Child processes get a ``sitecustomize`` on ``PYTHONPATH`` whose import hook answers ``import torch``
exactly as an environment without torch does (``ModuleNotFoundError: No module named 'torch'``), so
the driver and reconstructor executables, started as a user starts them, run as on a machine whose
dependencies came from ``package.xml`` alone. Their results are compared with this process's (which
has torch): the classical methods give the same images either way.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
INSTALL_HINT = "pip install 'stir_ros[stir]'"

BLOCKER = textwrap.dedent(
    '''
    """Test helper: PyTorch is not installed (test/test_torch_optional.py)."""
    import sys


    class _NoTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None


    sys.meta_path.insert(0, _NoTorch())
    '''
)


@pytest.fixture()
def no_torch_env(tmp_path: Path) -> dict[str, str]:
    """The environment of this session, with ``import torch`` failing in every child process."""
    site = tmp_path / "no_torch_site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCKER)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), env.get("PYTHONPATH", "")) if p)
    return env


def _python(code: str, env: dict[str, str], cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def test_the_blocker_makes_torch_unimportable(no_torch_env, tmp_path) -> None:
    out = _python("import torch", no_torch_env, tmp_path)
    assert out.returncode == 1 and "ModuleNotFoundError: No module named 'torch'" in out.stderr, out.stderr


def test_core_and_cli_without_torch_give_the_same_classical_images(no_torch_env, tmp_path) -> None:
    """stir_ros, the engine, the sources and the CLI import; tfp/tfi are identical; stir and sim are refused."""
    rng = np.random.default_rng(3)
    windows = (rng.random((3, 41, 20, 28)) < rng.random((1, 1, 20, 28))).astype(np.uint8)
    np.save(tmp_path / "windows.npy", windows)
    code = textwrap.dedent(
        """
        import sys
        import numpy as np
        import stir_ros, stir_ros.cli, stir_ros.core.stream, stir_ros.core.dat, stir_ros.core.packing
        from stir_ros.core import classical, simulator, sources
        from stir_ros.core.errors import ConfigError
        from stir_ros.engine import EngineConfig, ReconstructionEngine

        w = np.load("windows.npy")
        out = {}
        for method in ("tfp", "tfi"):
            engine = ReconstructionEngine(EngineConfig(method=method, device="auto"))
            assert engine.device.type == "cpu" and engine.backend == "numpy", (engine.device, engine.backend)
            out[method] = engine.reconstruct(w)
        out["raw_tfp"], out["raw_tfi"] = classical.tfp(w, alpha=0.6), classical.tfi(w, alpha=0.6)
        np.savez("out.npz", **out)
        for make in (lambda: ReconstructionEngine(EngineConfig(method="stir")), lambda: sources.SimSource(8, 8),
                     lambda: simulator.simulate_spikes(np.zeros((2, 4, 4), np.float32))):
            try:
                make()
            except ConfigError as err:
                print("REFUSED:", err)
            else:
                raise SystemExit("not refused")
        assert stir_ros.cli.main(["--help"]) == 0
        loaded = sorted(m for m in sys.modules if m.split(".")[0] == "torch")
        assert not loaded, loaded
        """
    )
    run = _python(code, no_torch_env, tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    refusals = [line for line in run.stdout.splitlines() if line.startswith("REFUSED:")]
    assert len(refusals) == 3 and all(INSTALL_HINT in line and "requirements/stir.txt" in line for line in refusals)
    assert "method 'stir'" in refusals[0] and "tfp and tfi run without it" in refusals[0]
    assert "source 'sim'" in refusals[1] and "source 'dat' runs without it" in refusals[1]

    # The same numbers as with torch installed (this process).
    from stir_ros.core import classical
    from stir_ros.engine import EngineConfig, ReconstructionEngine

    got = np.load(tmp_path / "out.npz")
    for method in ("tfp", "tfi"):
        np.testing.assert_array_equal(got[method], ReconstructionEngine(EngineConfig(method=method)).reconstruct(windows))
    np.testing.assert_array_equal(got["raw_tfp"], classical.tfp(windows, alpha=0.6))
    np.testing.assert_array_equal(got["raw_tfi"], classical.tfi(windows, alpha=0.6))


def test_node_modules_import_without_torch(no_torch_env, tmp_path) -> None:
    pytest.importorskip("rclpy")
    code = (
        "import sys\n"
        "import stir_ros.ros.driver_node, stir_ros.ros.reconstructor_node\n"
        "import stir_ros.ros.driver_lifecycle, stir_ros.ros.reconstructor_lifecycle, stir_ros.ros.graph_runner\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'torch')\n"
        "assert not loaded, loaded\n"
    )
    run = _python(code, no_torch_env, tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr


def test_package_xml_leaves_torch_to_the_stir_extra() -> None:
    root = ET.parse(ROOT / "package.xml").getroot()
    assert not [e.text for e in root if e.tag.endswith("depend") and "torch" in (e.text or "")]
    stir = [ln.split("#")[0].strip() for ln in (ROOT / "requirements" / "stir.txt").read_text().splitlines()]
    stir = [ln for ln in stir if ln]
    assert stir and all(ln.startswith("torch") for ln in stir)
    # The exact torch of the PyPI set-up (scripts/setup.sh) is inside the extra's range.
    specifiers = pytest.importorskip("packaging.specifiers")
    allowed = specifiers.SpecifierSet(stir[0][len("torch"):])
    for flavour in ("torch-cpu.txt", "torch-cuda.txt"):
        pin = re.search(r"^torch==(\S+)", (ROOT / "requirements" / flavour).read_text(), re.M)
        assert pin and pin.group(1) in allowed, f"{flavour}: torch {pin and pin.group(1)} outside {allowed}"


# --------------------------------------------------------------------------- nodes as processes


@pytest.mark.ros
@pytest.mark.slow
def test_dat_driver_and_tfp_reconstructor_run_without_torch_and_stir_is_refused(no_torch_env, ros_node, tmp_path):
    pytest.importorskip("rclpy")
    from cv_bridge import CvBridge
    from ros_support import Collector, Nodes, offline_images, set_parameters, spin_until

    from stir_ros.core.dat import write_dat
    from stir_ros.engine import EngineConfig
    from stir_ros.ros.conversions import stamp_to_ns

    h, w, n_frames, stride, rate = 32, 48, 300, 50, 20000.0
    rng = np.random.default_rng(1)
    frames = (rng.random((n_frames, h, w)) < np.linspace(0.05, 0.6, w)[None, None, :]).astype(np.uint8)
    write_dat(tmp_path / "clip.dat", frames)
    ns = f"notorch_{uuid.uuid4().hex[:8]}"
    nodes = Nodes(tmp_path, no_torch_env)
    try:
        col = Collector(ros_node, ns)
        recon = nodes.start("spike_reconstructor", ns, {"method": "tfp", "stride_frames": stride, "queue_size": 64})
        col.wait_for_reconstructor(nodes)
        nodes.start("spike_camera_driver", ns, {
            "source": "dat", "dat_path": str(tmp_path / "clip.dat"), "height": h, "width": w,
            "frame_rate_hz": rate, "frames_per_packet": 50, "wait_for_subscribers": 2,
        })  # fmt: skip
        expected = (n_frames - 41) // stride + 1
        assert spin_until(ros_node, lambda: len(col.images) >= expected, 40), nodes.logs()
        # Exactly what this process (with torch) computes from the same file.
        _, offline = offline_images(frames, stamp_to_ns(col.packets[0].header.stamp), EngineConfig(method="tfp"), stride,
                                    "mono8")  # fmt: skip
        assert len(col.images) == expected
        for msg, ref in zip(col.images, offline):
            np.testing.assert_array_equal(CvBridge().imgmsg_to_cv2(msg), ref)
        assert col.wait_for_diag(lambda d: d["images_published"] == str(expected)), nodes.logs()
        assert col.diag["method"] == "tfp" and col.diag["device"] == "cpu"

        # Switching to stir is refused with the instruction; the node keeps running.
        (result,) = set_parameters(ros_node, ns, method="stir")
        assert not result.successful and INSTALL_HINT in result.reason, result.reason
        time.sleep(0.5)
        assert recon.poll() is None, nodes.logs()
        assert col.wait_for_diag(lambda d: d["method"] == "tfp"), nodes.logs()

        # Started with method stir (the default), or a simulated source: a clean exit with the instruction.
        stir = nodes.start("spike_reconstructor", f"{ns}_stir", {"method": "stir"})
        sim = nodes.start("spike_camera_driver", f"{ns}_sim", {"source": "sim", "height": 8, "width": 8})
        for proc in (stir, sim):
            assert proc.wait(timeout=60) == 1, nodes.logs()
    finally:
        nodes.stop()
    logs = {log.name: log.read_text() for _, _, log in nodes.procs}
    stir_log = next(text for name, text in logs.items() if name.startswith("spike_reconstructor_") and "stir" in text
                    and "cannot start" in text)  # fmt: skip
    assert INSTALL_HINT in stir_log and "Traceback" not in stir_log, stir_log
    sim_log = next(text for name, text in logs.items() if name.startswith("spike_camera_driver_") and "source 'sim'" in text)
    assert "cannot start" in sim_log and INSTALL_HINT in sim_log and "Traceback" not in sim_log, sim_log
    assert all("Traceback" not in text for text in logs.values()), logs


def test_cli_commands_that_need_torch_say_what_to_install(no_torch_env, tmp_path) -> None:
    for command in ("train", "export"):
        out = _python(f"import sys; from stir_ros.cli import main; sys.exit(main(['{command}', '--help']))",
                      no_torch_env, tmp_path)  # fmt: skip
        assert out.returncode == 1, (command, out.stdout, out.stderr)
        assert "Traceback" not in out.stderr
        assert f"stir-ros {command} needs PyTorch" in out.stderr and "stir_ros[stir]" in out.stderr, out.stderr
