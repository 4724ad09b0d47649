"""The HTTP surface: validation, limits, auth, ids, health, paging (real Redis, workers and uvicorn)."""

import json
import subprocess
import sys

import httpx
import pytest

from server.client import ApiError
from serving_fixtures import FAST, KEYS, ROOT, start_api, stop, wait_for_status

pytest_plugins = ["serving_fixtures"]  # one Redis, two workers and one API for every server test module


def test_importing_the_api_does_not_load_torch():
    code = "import sys, server.app, server.client; server.app.create_app(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def post(api, body, key=KEYS[0]):
    return httpx.post(f"{api.url}/v1/videos", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=10)


@pytest.mark.parametrize("body, field, words", [
    ({**FAST, "num_frames": 18}, "num_frames", "4k+1"),
    ({**FAST, "height": 40}, "height", "multiple of 16"),
    ({**FAST, "colour": "red"}, "colour", "Extra inputs are not permitted"),
    ({"num_frames": 17}, "prompt", "Field required"),
    ({**FAST, "num_inference_steps": 500}, "num_inference_steps", "limit of 100"),  # a server limit
    ({**FAST, "num_frames": 41, "base_num_frames": 17}, "num_frames", "overlap_history"),  # needs the model profile
    ({**FAST, "cache": {"policy": "magic"}}, "cache.policy", "unknown cache policy"),
    ({**FAST, "cache": {"policy": "motioncache-slow", "knobs": {"motion_floor": 2}}}, "cache.knobs",
     "motion_floor must lie in [0, 1], got 2"),  # the worker's published rules: no failed job
    ({**FAST, "cache": {"policy": "flowcache", "knobs": {"warmup": "four"}}}, "cache.knobs", "expected int"),
])
def test_bad_requests_get_422_naming_the_field_and_rule(api, body, field, words):
    r = post(api, body)
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["message"].startswith(f"{field}: ") and words in body["message"], body
    assert any(".".join(map(str, d["loc"][1:])) == field for d in body["detail"])


def test_unknown_job_is_404(client, api):
    for method, path in (("GET", ""), ("GET", "/content"), ("DELETE", "")):
        r = httpx.request(method, f"{api.url}/v1/videos/nope{path}", headers=client.headers)
        assert r.status_code == 404, (method, path, r.text)


def test_api_keys_missing_or_wrong_is_401_and_other_keys_job_is_404(api):
    job = post(api, FAST).json()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {KEYS[0]}"}):
        r = httpx.get(f"{api.url}/v1/videos/{job['id']}", headers=headers)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert httpx.post(f"{api.url}/v1/videos", json=FAST, headers=headers).status_code == 401
    bob = {"Authorization": f"Bearer {KEYS[1]}"}
    for method, path in (("GET", ""), ("GET", "/content"), ("DELETE", "")):
        assert httpx.request(method, f"{api.url}/v1/videos/{job['id']}{path}", headers=bob).status_code == 404
    assert job["id"] not in [j["id"] for j in httpx.get(f"{api.url}/v1/videos", headers=bob).json()["items"]]


def test_model_info_tells_defaults_policies_and_limits(api, client, tiny_dir):
    info = client.model()
    assert info["model"] == tiny_dir.name
    assert info["defaults"] == json.loads((tiny_dir / "motioncache.json").read_text())
    assert "threshold" in info["policies"]["motioncache-slow"] and info["policies"]["none"] == {}
    assert info["policies"]["motioncache-fast"]["extrapolation"] == {"type": "float", "default": 0.5, "low": 0}
    assert info["limits"]["max_steps"] == 100  # MOTIONCACHE_MAX_STEPS of the test servers
    assert httpx.get(f"{api.url}/v1/model").status_code == 401


def test_list_is_paged_newest_first(client):
    ids = [client.submit({**FAST, "seed": i})["id"] for i in range(3)]
    first = client.list(offset=0, limit=2)
    second = client.list(offset=2, limit=2)
    assert [j["id"] for j in first["items"]] == ids[::-1][:2]
    assert first["next_offset"] == 2 and second["items"][0]["id"] == ids[0]
    for job_id in ids:  # leave nothing running for the next tests
        try:
            client.cancel(job_id)
        except ApiError as e:
            assert e.status == 409  # it had already succeeded
        wait_for_status(client, job_id, ("succeeded", "cancelled"))


def test_health_ready_docs_and_exact_metrics_path(api):
    assert httpx.get(f"{api.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{api.url}/readyz")
    assert ready.status_code == 200 and ready.json()["workers"] >= 1
    assert httpx.get(f"{api.url}/docs").status_code == 200
    assert "/v1/videos/{job_id}/content" in httpx.get(f"{api.url}/openapi.json").json()["paths"]
    r = httpx.get(f"{api.url}/metrics", follow_redirects=False)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")


def test_without_api_keys_no_header_is_needed(redis_url, workers, tmp_path):
    open_api = start_api(redis_url, tmp_path / "api.log")
    try:
        r = httpx.post(f"{open_api.url}/v1/videos", json=FAST)
        assert r.status_code == 202 and r.headers["location"] == f"/v1/videos/{r.json()['id']}"
        job = r.json()
        assert job["status"] == "queued" and job["links"]["stream"].endswith("/stream")
        c = open_api.client(None)
        assert wait_for_status(c, job["id"], "succeeded")["progress"]["chunks_done"] == 5
    finally:
        stop(open_api.proc)


def test_readyz_and_model_without_workers_are_503(tmp_path):
    from serving_fixtures import free_port

    # A Redis with no worker: a fresh redis-server on another port.
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
                            stdout=subprocess.DEVNULL)
    try:
        api = start_api(f"redis://127.0.0.1:{port}/0", tmp_path / "api.log")
        try:
            r = httpx.get(f"{api.url}/readyz")
            assert r.status_code == 503 and r.json()["workers"] == 0
            r = httpx.get(f"{api.url}/v1/model")  # no API keys on this one: no header needed
            assert r.status_code == 503 and "no worker" in r.json()["detail"]
        finally:
            stop(api.proc)
    finally:
        stop(proc)
