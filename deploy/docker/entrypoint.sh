#!/bin/sh
# One image, two roles. `api` and `worker` turn MOTIONCACHE_* variables into the command lines documented in
# docs/server.md; anything else (`python -m motioncache.serve_cli client ...`, `bash`) runs as given.
# Settings that server/settings.py reads (MOTIONCACHE_REDIS_URL, MOTIONCACHE_QUEUE_NAME, ...) pass through the
# environment untouched; the variables below exist only because the worker takes them as flags.
set -eu

role="${1:-api}"
if [ "$#" -gt 0 ]; then shift; fi  # dash exits on a failed `shift`, even with `|| true`
# The HEALTHCHECK is a separate process that cannot see our arguments: leave the role where it can read it.
echo "$role" > "${MOTIONCACHE_ROLE_FILE:-/tmp/motioncache-role}" 2>/dev/null || true

case "$role" in
  api)
    # One process per container (metrics are per process); scale with replicas. No per-message deflate:
    # it only burns CPU on video fragments.
    exec uvicorn server.app:create_app --factory \
      --host "${MOTIONCACHE_API_HOST:-0.0.0.0}" --port "${MOTIONCACHE_API_PORT:-8000}" \
      --ws-per-message-deflate false --timeout-graceful-shutdown "${MOTIONCACHE_API_GRACE_S:-10}" \
      --proxy-headers --forwarded-allow-ips "${MOTIONCACHE_FORWARDED_ALLOW_IPS:-127.0.0.1}" \
      --no-server-header "$@"
    ;;
  worker)
    model="${MOTIONCACHE_MODEL:-/models/skyreels-v2-df-1.3b-540p}"
    # Fail in one line, before Python starts, when the volume is missing.
    if [ ! -d "$model" ]; then
      echo "entrypoint: model directory $model not found: mount the models volume at /models" \
           "and set MOTIONCACHE_MODEL" >&2
      exit 2
    fi
    set -- --model "$model" --device "${MOTIONCACHE_DEVICE:-cuda}" \
      --dtype "${MOTIONCACHE_DTYPE:-bfloat16}" \
      --metrics-port "${MOTIONCACHE_METRICS_PORT:-9100}" --metrics-host "${MOTIONCACHE_METRICS_HOST:-0.0.0.0}" "$@"
    # The pod/container name makes heartbeats and RQ's worker list readable.
    if [ -n "${MOTIONCACHE_WORKER_NAME:-}" ]; then
      set -- --name "${MOTIONCACHE_WORKER_NAME}" "$@"
    fi
    # `python -m motioncache.serve_cli` rather than `motioncache worker`: the standalone module always has the
    # subcommand, whether or not the main `motioncache` parser has wired it in.
    exec python -m motioncache.serve_cli worker "$@"
    ;;
  *)
    exec "$role" "$@"
    ;;
esac
