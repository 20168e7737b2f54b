# Copyright 2026 The stir_ros authors
# SPDX-License-Identifier: Apache-2.0
"""What a user gets with a clone of the repository.

No paths of one machine, the documents the files cite, one version number, the licence the metadata declares.
"""

from __future__ import annotations

import ast
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
THIS = Path(__file__).resolve().relative_to(ROOT).as_posix()

# Paths that exist on one machine only. An absolute path is one not preceded by a word character,
# a dot or a variable (so ``https://host/work/x``, ``$TMPDIR/tmp/`` or ``./tmp/`` do not count).
_ABS = r"(?<![\w.$~-])"
MACHINE_PATHS = {
    "file:// URL of a real file": re.compile(r"file:///(?!\.\.\.|path/|abs\b)\S"),
    "/tmp path": re.compile(_ABS + r"/tmp/"),
    "/work path": re.compile(_ABS + r"/work/"),
    "/root path": re.compile(_ABS + r"/root/"),
    "home directory": re.compile(_ABS + r"/(?:home|Users)/[A-Za-z_][\w.-]*"),
    "virtual-environment site-packages": re.compile(r"\.venv/lib/python3\.\d+"),
}


def machine_paths(text: str) -> list[tuple[int, str, str]]:
    """``(line number, kind, line)`` for every path of one machine in ``text``."""
    hits = []
    for number, line in enumerate(text.splitlines(), 1):
        for kind, pattern in MACHINE_PATHS.items():
            if pattern.search(line):
                hits.append((number, kind, line.strip()))
    return hits


def tracked_text_files() -> list[Path]:
    listing = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True)
    if listing.returncode != 0 or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout (e.g. a copy in a colcon workspace): no list of tracked files")
    names = listing.stdout
    files = []
    for name in filter(None, names.decode().split("\0")):
        path = ROOT / name
        if name == THIS or not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue  # binary (weights, bags)
        files.append(path)
    return files


def test_the_detector_finds_planted_paths() -> None:
    planted = [
        "cv-bridge @ file:///tmp/wheels/cv_bridge-1.13.0-py3-none-any.whl",
        "cd /work/main && ./scripts/setup.sh",
        "export PYTHONPATH=/tmp/site",
        "cp x /root/.cache/y",
        "see /home/alice/data",
        'SPIKEZOO = ROOT / ".venv/lib/python3.11/site-packages/spikezoo"',
    ]
    for line in planted:
        assert machine_paths(line), line
    for fine in ("camera_info_url: file:///path/calib.yaml", "``file:///abs``", "https://example.org/work/x",
                 'SITE=$(mktemp -d)', "$TMPDIR/tmp/x", "lib/python3.11/site-packages"):  # fmt: skip
        assert not machine_paths(fine), fine


def test_no_tracked_file_names_a_path_of_one_machine() -> None:
    files = tracked_text_files()
    assert len(files) > 50  # the listing worked
    found = []
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        found += [f"{path.relative_to(ROOT)}:{n}: {kind}: {line}" for n, kind, line in machine_paths(text)]
    assert not found, "paths of one machine in tracked files:\n" + "\n".join(found)


# --------------------------------------------------------------------------- DESIGN.md


def design_sections() -> dict[str, str]:
    """``{"4": "Spike data", ...}`` from the ``## 4. Spike data`` headings of DESIGN.md."""
    text = (ROOT / "DESIGN.md").read_text(encoding="utf-8")
    return {m.group(1): m.group(2).strip() for m in re.finditer(r"^## (\d+)\. (.+)$", text, re.M)}


def test_every_design_citation_names_a_section_that_exists() -> None:
    sections = design_sections()
    assert len(sections) >= 6
    cited = 0
    bad = []
    for path in tracked_text_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for m in re.finditer(r"DESIGN\.md(?:\s*§\s*(\d+))?", text):
            cited += 1
            if m.group(1) is not None and m.group(1) not in sections:
                bad.append(f"{path.relative_to(ROOT)}: {m.group(0)}")
    assert cited >= 5  # the files that cite it were found
    assert not bad, f"citations of missing DESIGN.md sections (have {sections}): {bad}"


# --------------------------------------------------------------------------- version, licence


def _init_version() -> str:
    tree = ast.parse((ROOT / "stir_ros" / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__version__" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError("stir_ros/__init__.py has no __version__")


def test_one_version_number() -> None:
    version = _init_version()
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    assert ET.parse(ROOT / "package.xml").getroot().findtext("version") == version
    # setup.py reads it from stir_ros/__init__.py instead of holding a second copy.
    setup_py = (ROOT / "setup.py").read_text()
    assert version not in setup_py
    out = subprocess.run(["python", "setup.py", "--version"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == version


def test_changelog_is_in_the_ros_format_and_names_the_version() -> None:
    """CHANGELOG.rst is in the format catkin_generate_changelog and bloom read.

    Its newest release is the package version (unreleased entries sit under "Forthcoming").
    """
    changelog = pytest.importorskip("catkin_pkg.changelog")
    parsed = changelog.get_changelog_from_path(str(ROOT / "CHANGELOG.rst"), "stir_ros")
    assert parsed is not None, "CHANGELOG.rst is missing or not in the ROS changelog format"
    versions = [version for version, _, _ in parsed.foreach_version()]
    assert versions and versions[0] == _init_version()


def test_licence_file_matches_the_declared_licence() -> None:
    declared = ET.parse(ROOT / "package.xml").getroot().findtext("license")
    assert declared == "Apache-2.0"
    assert 'license="Apache-2.0"' in (ROOT / "setup.py").read_text()
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


def test_cli_reports_the_version() -> None:
    out = subprocess.run(["python", "-m", "stir_ros.cli", "--version"], cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.strip() == f"stir_ros {_init_version()}"


# --------------------------------------------------------------------------- package.xml


#: Top-level Python module -> the rosdep key (or ROS package) that provides it.
ROSDEP_KEYS = {
    "rclpy": "rclpy", "std_msgs": "std_msgs", "sensor_msgs": "sensor_msgs", "diagnostic_msgs": "diagnostic_msgs",
    "builtin_interfaces": "builtin_interfaces", "rcl_interfaces": "rcl_interfaces",
    "rosgraph_msgs": "rosgraph_msgs", "ament_index_python": "ament_index_python", "launch": "launch",
    "launch_ros": "launch_ros", "lifecycle_msgs": "lifecycle_msgs", "numpy": "python3-numpy", "yaml": "python3-yaml",
    "tqdm": "python3-tqdm", "PIL": "python3-pil", "skimage": "python3-skimage", "imageio": "python3-imageio",
    "rosbags": "python3-rosbags-pip", "ruamel": "python3-ruamel.yaml",
    # Brought by rosbags (pip), whose reader stir_ros/bag/reader.py mirrors.
    "apsw": "python3-rosbags-pip", "lz4": "python3-rosbags-pip", "backports": "python3-rosbags-pip",
    "zstandard": "python3-rosbags-pip",
}
#: Imported only where present, with a fallback or a clear message (not needed to run).
OPTIONAL = {"imageio_ffmpeg", "openvino", "onnx", "onnxruntime", "compression", "spikezoo", "cv2"}
#: Pip-only packages no ROS distribution has: a setup.py extra (requirements/<extra>.txt), never in
#: package.xml. The nodes run without them (test/test_torch_optional.py) and say how to install them.
EXTRAS = {"torch": "stir", "ray": "cluster"}


def _imported_modules() -> set[str]:
    import sys

    names: set[str] = set()
    for path in [*(ROOT / "stir_ros").rglob("*.py"), *(ROOT / "launch").glob("*.py"), *(ROOT / "scripts" / "bin").iterdir()]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n != "stir_ros"}


def test_package_xml_declares_every_package_the_code_imports() -> None:
    root = ET.parse(ROOT / "package.xml").getroot()
    declared = {e.text for e in root if e.tag in ("depend", "exec_depend")}
    missing = sorted(f"{m} -> {ROSDEP_KEYS.get(m, '?')}" for m in _imported_modules() - OPTIONAL - set(EXTRAS)
                     if ROSDEP_KEYS.get(m) not in declared)  # fmt: skip
    assert not missing, f"imports without a <depend>/<exec_depend> in package.xml: {missing}"


def test_pip_only_packages_are_an_extra_not_in_package_xml() -> None:
    """PyTorch is imported, named by no rosdep key in package.xml, and installed by its setup.py extra."""
    root = ET.parse(ROOT / "package.xml").getroot()
    declared = " ".join(e.text or "" for e in root if e.tag.endswith("depend"))
    imported = _imported_modules()
    for module, extra in EXTRAS.items():
        assert module in imported
        assert module not in declared, f"package.xml lists {module}, which rosdep cannot install from a ROS distribution"
        lines = (ROOT / "requirements" / f"{extra}.txt").read_text().splitlines()
        assert any(re.match(rf"{module}\b", ln.strip()) for ln in lines), f"requirements/{extra}.txt lacks {module}"
    setup_py = (ROOT / "setup.py").read_text()
    for extra in set(EXTRAS.values()):
        assert f'"{extra}": _requirements("{extra}.txt")' in setup_py


def test_every_python_file_names_its_copyright_and_licence() -> None:
    """ament_copyright's rule: each source file opens with its copyright and licence (SPDX)."""
    files = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    assert files
    missing = []
    for name in files:
        head = (ROOT / name).read_text().split("\n")[:4]
        if not any(line.startswith("# Copyright ") for line in head) or "# SPDX-License-Identifier: Apache-2.0" not in head:
            missing.append(name)
    assert not missing, f"files without the two header lines (Copyright, SPDX Apache-2.0): {missing}"
