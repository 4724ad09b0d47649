#!/usr/bin/env python3
"""Parse every PromQL expression of the Grafana dashboard with promtool.

promtool has no "parse this expression" command that works offline, but `promtool check rules` parses every
rule's expression with Prometheus' own parser. So each dashboard query (Grafana variables replaced by values of
the right type) becomes a recording rule in a throwaway rules file, and promtool checks that file.

    python deploy/tools/promql_check.py deploy/grafana/dashboards/*.json

Also importable (tests/test_deploy.py): dashboard_exprs(), rule_exprs(), metric_names().
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

# Grafana's variables, replaced by something of the same PromQL type: durations for the interval variables,
# a regex for multi-value variables (they are only ever used inside =~ matchers here).
GRAFANA_VARS = {
    "$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h",
    "${policy:regex}": ".*", "${policy}": ".*", "$policy": ".*",
}
_LABEL_VALUES = re.compile(r"^label_values\((?:(?P<selector>.+),\s*)?(?P<label>[a-zA-Z_]\w*)\)$")
_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'')
_NAME = re.compile(r"(?<![\w:])(motioncache[a-zA-Z0-9_:]*)")


def _substitute(expr: str, where: str) -> str:
    # Longest first, so "$__rate_interval" is not eaten by a shorter name.
    for var in sorted(GRAFANA_VARS, key=len, reverse=True):
        expr = expr.replace(var, GRAFANA_VARS[var])
    if "$" in expr:
        raise ValueError(f"{where}: unknown Grafana variable in {expr!r}; add it to GRAFANA_VARS")
    return expr


def _panels(panels: list) -> list:
    out = []
    for p in panels:
        out.append(p)
        out.extend(_panels(p.get("panels", [])))  # collapsed rows keep their panels inside
    return out


def dashboard_exprs(path: str | Path) -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and every query variable of a dashboard JSON."""
    dash = json.loads(Path(path).read_text())
    found = []
    for p in _panels(dash.get("panels", [])):
        for t in p.get("targets", []):
            if t.get("expr"):
                where = f"panel {p.get('id')} {p.get('title')!r} target {t.get('refId')}"
                found.append((where, _substitute(t["expr"], where)))
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        q = v.get("query")
        q = q.get("query", "") if isinstance(q, dict) else (q or "")
        where = f"variable {v.get('name')!r}"
        m = _LABEL_VALUES.match(q.strip())
        if m:  # label_values(selector, label) is Grafana's, not PromQL: its selector must parse
            if m.group("selector"):
                found.append((where, _substitute(m.group("selector"), where)))
        elif q.startswith("query_result(") and q.endswith(")"):
            found.append((where, _substitute(q[len("query_result("):-1], where)))
        else:
            raise ValueError(f"{where}: unsupported variable query {q!r}")
    return found


def rule_exprs(path: str | Path) -> list[tuple[str, str]]:
    """(record or alert name, PromQL) for every rule of a Prometheus rules file."""
    doc = yaml.safe_load(Path(path).read_text())
    return [(r.get("record") or r.get("alert"), r["expr"]) for g in doc["groups"] for r in g["rules"]]


def recorded_names(path: str | Path) -> set[str]:
    doc = yaml.safe_load(Path(path).read_text())
    return {r["record"] for g in doc["groups"] for r in g["rules"] if "record" in r}


def metric_names(expr: str) -> set[str]:
    """Names starting with `motioncache` used in an expression (string literals such as job values ignored)."""
    return set(_NAME.findall(_STRING.sub('""', expr)))


def check_with_promtool(exprs: list[tuple[str, str]], promtool: str | None = None) -> subprocess.CompletedProcess:
    promtool = promtool or shutil.which("promtool")
    if promtool is None:
        raise FileNotFoundError("promtool not found: apt-get install -y prometheus (scripts/validate-deploy.sh does)")
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:expr_{i}", "expr": expr, "labels": {"where": where}}
        for i, (where, expr) in enumerate(exprs)]}]}
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        yaml.safe_dump(rules, f, sort_keys=False)
    try:
        return subprocess.run([promtool, "check", "rules", f.name], capture_output=True, text=True)
    finally:
        Path(f.name).unlink()


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    status = 0
    for path in argv:
        exprs = dashboard_exprs(path)
        result = check_with_promtool(exprs)
        print(f"{path}: {len(exprs)} PromQL expressions")
        print((result.stdout + result.stderr).strip())
        status |= result.returncode
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
