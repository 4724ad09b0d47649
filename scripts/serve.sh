#!/usr/bin/env bash
# The main job: set up, then run the server (API on 127.0.0.1:8000, one worker, a private Redis) with the
# shipped demo model. Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
args=()
if [ ! -f models/demo/model_index.json ]; then
    echo "demo model not found at models/demo: serving a tiny random-weight model instead (noise-like output)" >&2
    [ -f .cache/tiny-model/model_index.json ] || .venv/bin/motioncache make-tiny-model .cache/tiny-model --causal-block-size 3
    args=(--model .cache/tiny-model)
fi
exec .venv/bin/motioncache serve "${args[@]}" "$@"
