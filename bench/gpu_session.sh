#!/usr/bin/env bash
# Issue 6's GPU rows in one device call (the device machine has Python 3.12, torch and numpy, but
# no package registry and no ROS). Two steps:
#
#   here, once per session (the wheels are not committed; .whl/ is ignored):
#       bash bench/gpu_session.sh --fetch-wheels
#   on the device machine, from the repository root, carrying .whl:
#       bash bench/gpu_session.sh            # about 6 minutes; results under $OUT (or out/gpu)
#
# It runs, each with its own time limit so that one hang cannot eat the lease:
#   the CUDA tests of the inference path (fp16/bf16 equality, CUDA graphs), bench_stir.py on the
#   GPU (latency, throughput, 1000x1000, fp16/bf16 accuracy against the authors' eager STIR in the
#   same process), bench_bag.py --device cuda (offline reconstruction vs the bare model),
#   bench_dark_routing.py --device cuda (what counting dark events on the CPU costs a GPU window).
# Record what comes back in BENCHMARKS.md ("GPU") with the device name the scripts print.
set -u

WHEELS=(spikezoo==0.2.3.7 rosbags==0.11.9 apsw==3.54.1.0 lz4==4.4.5 ruamel.yaml==0.19.1 backports.zstd==1.8.0)

if [ "${1:-}" = "--fetch-wheels" ]; then
    mkdir -p .whl
    for w in "${WHEELS[@]}"; do
        python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
            --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
            --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any -d .whl "$w" \
            || { echo "could not download $w" >&2; exit 1; }
    done
    ls -l .whl
    exit 0
fi

OUT=${OUT:-out/gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if ls .whl/*.whl >/dev/null 2>&1; then
    SITE=$(mktemp -d)
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl || exit 1
    export PYTHONPATH="$SITE"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
    python3 - <<'EOF'
import importlib.util
for name in ("numpy", "torch", "yaml", "pytest", "hypothesis", "spikezoo", "rosbags", "apsw", "lz4", "ruamel"):
    print(f"{name}: {'ok' if importlib.util.find_spec(name) else 'MISSING'}")
EOF
} 2>&1 | tee "$OUT/environment.txt"

step() {  # step NAME SECONDS COMMAND...
    local name=$1 limit=$2
    shift 2
    echo "=== $name (limit ${limit} s): $*"
    timeout "$limit" "$@" 2>&1 | tee "$OUT/$name.log"
    echo "=== $name exit ${PIPESTATUS[0]}"
}

step pytest_cuda 120 python3 -m pytest -q -p no:cacheprovider test/test_inference.py test/test_dark_events.py -m cuda
step bench_stir 240 python3 bench/bench_stir.py --device cuda --json "$OUT/stir_gpu.json"
step bench_bag 120 python3 bench/bench_bag.py --device cuda
step bench_dark_routing 90 python3 bench/bench_dark_routing.py --device cuda --repeat 20
