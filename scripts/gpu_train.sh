#!/usr/bin/env bash
# Fine-tune STIR on a CUDA machine in one sitting, then score every snapshot on the evaluation clips.
#
#   here (a machine with the package installed and the `stir-ros data` photo cache):
#       bash scripts/gpu_train.sh --prepare DATA_DIR INIT_WEIGHTS [PHOTO_CACHE]
#   on the CUDA machine (torch there; no ROS, no package index), from the repository root:
#       bash scripts/gpu_train.sh DATA_DIR OUT_DIR
#
# DATA_DIR holds images/ (training images: scikit-image's photographs exported as PNG, and the
# photo cache's train split; with PERMISSIVE=1 at --prepare, only the cache's train_permissive/ of
# `stir-ros data --permissive` and no scikit-image photographs: weights free of the share-alike and
# GPL question, see stir_ros/weights/MODEL_CARD.md), val/ (held-out photos for the synthetic validation), eval/ (the
# Spike-Zoo base/train clips: evaluation only, never trained on) and init.pt (fp16 start weights).
#
# A 40-step probe measures steps/s, so that --steps (and with it the learning-rate drops at 25, 50
# and 75 %) fits TRAIN_S seconds. Batches are made by CPU worker processes (--data-workers).
# OUT_DIR receives train.log, eval.json (PSNR/SSIM of every EMA snapshot and of init.pt) and the
# last and the best snapshot as fp16 weights-only files.
# Settings (environment): TRAIN_S (380), CROP (128), BATCH (12), LR (1e-4), WORKERS (cores - 2),
# SEED (3), EMA (0.999), DEVICE (cuda), GPUS (1; K > 1: torchrun runs one process per GPU, BATCH is
# then the global batch split across them, a multiple of K, and WORKERS defaults to (cores - 2) / K
# per process; README "Training on several GPUs and machines"), IMAGE_MAX_SIZE (256: the photographs' longer side, i.e. their
# detail density; on the CPU at 64x64 crops 256 beat 384 by about 0.1 dB at equal steps, see
# stir_ros/weights/MODEL_CARD.md; an image smaller than the crop plus its motion margin, 176 px at
# 128x128, is enlarged for that crop), TARGET_OFFSET (0.5: the target half a frame after the window's
# centre frame, where the Spike-Zoo clips' ground truth lies; scripts/timing_offset.py measures it),
# MAX_DISPLACEMENT (12 px per window), MIN_DISPLACEMENT (6: moving layers shift at least 6 px),
# MAX_LAYERS (1: global pans only, as the Spike-Zoo clips), INPUT_LOWPASS ("0.55 1.3": spikes from
# frames low-passed with a cutoff drawn from 0.55, as the clips' spikes are, to 1.3, nearly sharp;
# the target stays sharp; "" for none. Trained on 0.55-0.7 only, the network over-sharpens sharp
# input: 2.2 dB lower on a clip's scene simulated standing still), INPUT_BLUR (0: a Gaussian blur of
# up to this many px instead; the shipped weights' stage 5 used 0.8 and no low-pass). On one CPU
# thread these settings beat stage 5's by 0.15-0.2 dB on the clips (MODEL_CARD.md).
# TRAIN_ARGS (more `stir-ros train` flags, e.g.
# "--scene camera --camera-shift 4 0.3 --cutouts DATA_DIR/cutouts").
# Wall time: about TRAIN_S + 120 s (the workers start twice, about 25 s each; scoring about 5 s per
# snapshot on a GPU). Give the call that runs it at least TRAIN_S + 150 s: the first H200 session
# killed it at TRAIN_S + 130 s, before the snapshots were scored and copied to OUT_DIR.
set -u

if [ "${1:-}" = "--prepare" ]; then
    DATA=${2:?DATA_DIR}; INIT=${3:?INIT_WEIGHTS}; PHOTOS=${4:-$HOME/.cache/stir_ros/photos}
    TRAIN_PHOTOS="$PHOTOS/train"
    if [ "${PERMISSIVE:-0}" = 1 ]; then
        TRAIN_PHOTOS="$PHOTOS/train_permissive"
        [ -d "$TRAIN_PHOTOS" ] || { echo "no $TRAIN_PHOTOS: run stir-ros data --permissive first"; exit 1; }
    fi
    mkdir -p "$DATA/images/skimage" "$DATA/images/photos" "$DATA/val" "$DATA/eval"
    [ "${PERMISSIVE:-0}" = 1 ] || python - "$DATA/images/skimage" <<'PY' || exit 1
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from stir_ros.training.scenes import SKIMAGE_IMAGES, load_images

for name, image in zip(SKIMAGE_IMAGES, load_images("skimage")):
    Image.fromarray(np.round(image * 255).astype(np.uint8)).save(Path(sys.argv[1]) / f"skimage_{name}.png")
PY
    cp "$TRAIN_PHOTOS"/*.png "$DATA/images/photos/" && cp "$PHOTOS"/val/* "$DATA/val/" || exit 1
    if [ -d "$PHOTOS/cutouts" ]; then  # for TRAIN_ARGS="--scene camera --cutouts $DATA/cutouts"
        mkdir -p "$DATA/cutouts" && cp "$PHOTOS"/cutouts/*.png "$DATA/cutouts/" || exit 1
    fi
    EVAL=$(python -c 'from stir_ros.evaluation import spikezoo_data; print(spikezoo_data() or "")') && [ -n "$EVAL" ] || { echo "spikezoo is not installed (its base/train clips are the evaluation set)"; exit 1; }
    cp -r "$EVAL"/. "$DATA/eval/" || exit 1
    python scripts/release_weights.py "$INIT" "$DATA/init.pt" || exit 1
    du -sh "$DATA"
    exit 0
fi

DATA=${1:?DATA_DIR}; OUT=${2:?OUT_DIR}
TRAIN_S=${TRAIN_S:-380}; CROP=${CROP:-128}; BATCH=${BATCH:-12}; LR=${LR:-1e-4}; SEED=${SEED:-3}
EMA=${EMA:-0.999}; DEVICE=${DEVICE:-cuda}; IMAGE_MAX_SIZE=${IMAGE_MAX_SIZE:-256}; TARGET_OFFSET=${TARGET_OFFSET:-0.5}
MAX_DISPLACEMENT=${MAX_DISPLACEMENT:-12}; MIN_DISPLACEMENT=${MIN_DISPLACEMENT:-6}; MAX_LAYERS=${MAX_LAYERS:-1}
INPUT_LOWPASS=${INPUT_LOWPASS-0.55 1.3}; INPUT_BLUR=${INPUT_BLUR:-0}; GPUS=${GPUS:-1}
CPU_WORKERS=$(( $(nproc) > 3 ? $(nproc) - 2 : 1 )); WORKERS=${WORKERS:-$(( CPU_WORKERS / GPUS > 1 ? CPU_WORKERS / GPUS : 1 ))}
if [ "$GPUS" -gt 1 ]; then  # one process per GPU; rank 0 prints and writes
    TRAIN=(python -m torch.distributed.run --standalone --nproc-per-node "$GPUS" -m stir_ros.cli train)
else
    TRAIN=(python -m stir_ros.cli train)
fi
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
RUN=$(mktemp -d)
IMAGE_DIRS=("$DATA/images/skimage" "$DATA/images/photos")  # in this order, as before PERMISSIVE existed
compgen -G "$DATA/images/skimage/*.png" > /dev/null || IMAGE_DIRS=("$DATA/images/photos")  # PERMISSIVE=1
COMMON=(--init-weights "$DATA/init.pt" --batch-size "$BATCH" --crop "$CROP" --lr "$LR" --warmup 100 --amp
        --ema "$EMA" --max-displacement "$MAX_DISPLACEMENT" --min-displacement "$MIN_DISPLACEMENT" --max-layers "$MAX_LAYERS"
        --input-blur "$INPUT_BLUR" ${INPUT_LOWPASS:+--input-lowpass $INPUT_LOWPASS} --images "${IMAGE_DIRS[@]}" --no-skimage
        --image-max-size "$IMAGE_MAX_SIZE" --texture-candidates 4 --target-offset "$TARGET_OFFSET" --data-workers "$WORKERS" --seed "$SEED" --device "$DEVICE"
        --no-progress ${TRAIN_ARGS:-})
nvidia-smi -L 2>/dev/null; echo "$GPUS GPU process(es), workers $WORKERS each, crop $CROP, batch $BATCH, lr $LR, images <= ${IMAGE_MAX_SIZE} px, target +${TARGET_OFFSET} frame, shifts ${MIN_DISPLACEMENT}-${MAX_DISPLACEMENT} px, layers <= ${MAX_LAYERS}, low-pass ${INPUT_LOWPASS:-none}, blur <= ${INPUT_BLUR} px, train ${TRAIN_S}s"

# Probe: seconds per step between steps 10 and 40 (after cuDNN's autotuning and the workers' start).
"${TRAIN[@]}" --out "$RUN/probe" "${COMMON[@]}" --steps 100000 --stop-at 40 --log-every 10 \
    --val-every 0 --checkpoint-every 100000 > "$OUT/probe.log" 2>&1 || { tail -20 "$OUT/probe.log"; exit 1; }
STEPS=$(python - "$OUT/probe.log" "$TRAIN_S" <<'PY'
import re, sys
walls = {int(m[1]): float(m[2]) for m in re.finditer(r"step (\d+) loss .* wall ([\d.]+)s", open(sys.argv[1]).read())}
rate = 30 / max(walls[40] - walls[10], 1e-3)
print(max(60, int(rate * float(sys.argv[2]) * 0.95)))
PY
) || exit 1
EVERY=$(( STEPS / 6 ))
echo "probe: $(grep -c loss "$OUT/probe.log") log lines; training $STEPS steps, snapshot every $EVERY"

"${TRAIN[@]}" --out "$RUN/main" "${COMMON[@]}" --steps "$STEPS" --log-every 50 \
    --val-every "$EVERY" --val-images "$DATA/val" --snapshot-every "$EVERY" --checkpoint-every "$EVERY" \
    --time-limit $(( TRAIN_S + 30 )) 2>&1 | tee "$OUT/train.log" | grep -E "val_psnr|done|error|Error" 

# Score init.pt and every EMA snapshot on the evaluation clips; keep the last and the best.
python - "$DATA" "$RUN/main" "$OUT" "$DEVICE" <<'PY'
import json, subprocess, sys
from pathlib import Path

from stir_ros.core.text_output import write_json
from stir_ros.evaluation import evaluate

data, run, out, device = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
scores = {}
for weights in [data / "init.pt", *sorted(run.glob("step_*.pt"))]:
    r = evaluate(data / "eval", ["stir"], weights=str(weights), device=device)["methods"]["stir"]
    scores[weights.name] = {"psnr": r["psnr"], "ssim": r["ssim"]}
    print(f"{weights.name}: {r['psnr']:.3f} dB / {r['ssim']:.4f}", flush=True)
write_json(out / "eval.json", scores)
snaps = [n for n in scores if n.startswith("step_")]
if snaps:
    best = max(snaps, key=lambda n: scores[n]["psnr"])
    for label, name in (("last", snaps[-1]), ("best", best)):
        subprocess.run([sys.executable, "scripts/release_weights.py", str(run / name), str(out / f"{label}_{name}"),
                        "--note", f"GPU fine-tune, {label} EMA snapshot"], check=True)
PY
