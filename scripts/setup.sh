#!/usr/bin/env bash
# Idempotent set-up on a fresh Debian machine: system packages (redis-server for the server and its tests,
# prometheus for promtool, g++ for train-demo's compiled forward; with --tests also chromium for the playground's
# browser tests), then the virtualenv at .venv with the project and its test tools.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v promtool >/dev/null || need+=(prometheus)
command -v g++ >/dev/null || need+=(g++)  # train-demo compiles its training forward (torch.compile, C++)
if [ "${1:-}" = "--tests" ]; then
    command -v chromium >/dev/null || need+=(chromium)
fi
if ((${#need[@]})); then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
        # Debian starts the packaged services; the project runs its own on loopback ports.
        (service prometheus stop; service redis-server stop) >/dev/null 2>&1 || true
    else
        echo "missing ${need[*]}: run as root or 'sudo apt-get install -y ${need[*]}'" >&2
        exit 1
    fi
fi
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
# torch is pinned to the CPU build (extra "cpu"); on a GPU machine install a CUDA torch first and drop it.
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[cpu,test]'
