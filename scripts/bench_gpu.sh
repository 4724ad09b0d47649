#!/usr/bin/env bash
# GPU benchmark (issue 3): a random-weight SkyReels-V2 DF transformer with the 1.3B config (30 layers,
# 12 heads x 128 = 1536 wide, FFN 8960, text 4096) in bf16; none vs chunked vs motioncache side by side.
# Usage: scripts/bench_gpu.sh OUT_DIR [HEIGHT WIDTH STEPS]   (needs CUDA; the model is built in /tmp)
# POLICIES=... overrides the policy list; WARMUP=0 skips the unrecorded warm-up pass.
set -euo pipefail
out=${1:?usage: scripts/bench_gpu.sh OUT_DIR [HEIGHT WIDTH STEPS]}
height=${2:-320} width=${3:-512} steps=${4:-50}
py=${PYTHON:-python3}
model=${MODEL_DIR:-/tmp/motioncache-1p3b-random}
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
[ -d "$model" ] || $py -m motioncache.cli make-tiny-model "$model" --layers 30 --heads 12 --head-dim 128 \
    --ffn-dim 8960 --text-dim 4096 --causal-block-size 5
# Random weights: the presets' rescale polynomial is calibrated for trained 1.3B weights, so the run also
# shows motioncache with the identity rescale (skips come from the raw modulation change).
policies=${POLICIES:-none,chunked,motioncache-slow,motioncache-slow:rescale=identity:threshold=0.3,flowcache-slow:rescale=identity:threshold=0.3}
warmup=$([ "${WARMUP:-1}" = 0 ] || echo --warmup)
$py -m motioncache.cli bench --model "$model" --device cuda --dtype bfloat16 $warmup --policies "$policies" \
    --prompt "a red circle moves left over a grey background" --seeds 1 \
    --height "$height" --width "$width" --num-frames 97 --base-num-frames 97 --steps "$steps" --ar-step 5 \
    --causal-block-size 5 --guidance-scale 6 --json "$out/gpu_1p3b_${height}x${width}_${steps}steps.json"
