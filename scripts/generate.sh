#!/usr/bin/env bash
# Set up, then generate a video with the shipped demo model (out.mp4, streamed chunk by chunk).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
model=models/demo
if [ ! -f "$model/model_index.json" ]; then
    echo "demo model not found at $model: using a tiny random-weight model instead (noise-like output)" >&2
    model=.cache/tiny-model
    [ -f "$model/model_index.json" ] || .venv/bin/motioncache make-tiny-model "$model" --causal-block-size 3
fi
exec .venv/bin/motioncache generate --model "$model" --prompt "${PROMPT:-a red circle moves left over a grey background}" \
    --output "${OUTPUT:-out.mp4}" --stats "${STATS:-out.json}" "$@"
