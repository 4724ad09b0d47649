#!/usr/bin/env bash
# Idempotent set-up on a fresh Debian machine: the virtualenv at .venv with the project and its test tools.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
# torch is pinned to the CPU build (extra "cpu"); on a GPU machine install a CUDA torch first and drop it.
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[cpu,test]'
