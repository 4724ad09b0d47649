"""/metrics of the API and of a worker: valid exposition text (promtool when installed) that moves with a job."""

import shutil
import subprocess

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from serving_fixtures import FAST, wait_for_status

pytest_plugins = ["serving_fixtures"]  # one Redis, two workers and one API for every server test module


def scrape(url: str) -> dict:
    text = httpx.get(url).text
    if shutil.which("promtool"):
        check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def total(samples: dict, name: str, **labels) -> float:
    return sum(v for (n, ls), v in samples.items() if n == name and all((k, v2) in ls for k, v2 in labels.items()))


@pytest.mark.parametrize("policy", ["motioncache-fast"])  # token-level: tokens are reused, skip rate > 0
def test_metrics_parse_and_move_when_a_job_runs(api, client, workers, policy):
    worker_urls = [f"http://127.0.0.1:{workers.metrics_ports[n]}/metrics" for n in workers.alive()]
    api_before = scrape(f"{api.url}/metrics")
    before = [scrape(u) for u in worker_urls]
    job = client.submit({**FAST, "num_frames": 33, "num_inference_steps": 8, "ar_step": 2, "causal_block_size": 3,
                         "cache": {"policy": policy}})
    assert wait_for_status(client, job["id"], ("succeeded", "failed"))["status"] == "succeeded"
    api_after = scrape(f"{api.url}/metrics")
    after = [scrape(u) for u in worker_urls]

    assert total(api_after, "motioncache_jobs_submitted_total", policy=policy) == \
        total(api_before, "motioncache_jobs_submitted_total", policy=policy) + 1
    assert total(api_after, "motioncache_workers_alive") == len(worker_urls)
    assert ("motioncache_queue_depth", ()) in api_after and ("motioncache_busy_workers", ()) in api_after

    def moved(name, **labels):
        return sum(total(a, name, **labels) for a in after) - sum(total(b, name, **labels) for b in before)

    assert moved("motioncache_jobs_total", outcome="succeeded", policy=policy) == 1
    assert moved("motioncache_chunks_total", policy=policy) == 3
    assert moved("motioncache_denoising_rows_total", policy=policy) == client.get(job["id"])["progress"]["rows_total"]
    assert moved("motioncache_tokens_computed_total", policy=policy) > 0
    assert moved("motioncache_tokens_reused_total", policy=policy) > 0
    skip = client.get(job["id"])["figures"]["token_skip_rate"]
    assert skip > 0 and moved("motioncache_request_token_skip_rate_sum", policy=policy) == pytest.approx(skip)
    for hist in ("compute_speedup", "token_skip_rate", "time_to_first_chunk_seconds", "latency_seconds",
                 "real_time_factor"):
        assert moved(f"motioncache_request_{hist}_count", policy=policy) == 1, hist
    speedup = moved("motioncache_request_compute_speedup_sum", policy=policy)
    assert speedup == pytest.approx(client.get(job["id"])["figures"]["compute_speedup"]) and speedup > 1.0
