"""Queue and workers: cancellation, sharing the queue, failures, and a worker killed mid-job."""

import os
import signal
import time

from motioncache.video_io import decode_video
from serving_fixtures import FAST, HEARTBEAT_TTL_S, SLOW, wait_for_status, wait_until

pytest_plugins = ["serving_fixtures"]  # one Redis, two workers and one API for every server test module


def test_cancel_queued_never_runs_and_cancel_running_keeps_its_chunks(client, workers):
    long_jobs = [client.submit({**SLOW, "seed": i})["id"] for i in range(len(workers.alive()))]
    for job_id in long_jobs:
        wait_for_status(client, job_id, "running")
    queued = client.submit(FAST)
    assert queued["status"] == "queued" and queued["queue_position"] == 0
    cancelled = client.cancel(queued["id"])
    assert cancelled["status"] == "cancelled"

    first = long_jobs[0]
    wait_until(lambda: client.get(first)["progress"]["chunks_done"] >= 1, 60, "a first chunk")
    for job_id in long_jobs:
        view = client.cancel(job_id)
        assert view["status"] in ("running", "cancelled")
    for job_id in long_jobs:
        job = wait_for_status(client, job_id, ("cancelled", "succeeded", "failed"), timeout=30)
        assert job["status"] == "cancelled", job
        assert job["progress"]["rows_done"] < job["progress"]["rows_total"]
    kept = client.get(first)["progress"]["chunks_done"]
    assert kept >= 1 and len(decode_video(client.content(first))) >= 1
    time.sleep(1.0)  # the workers are free now: a cancelled queued job must still never run
    after = client.get(queued["id"])
    assert after["status"] == "cancelled" and after["started_at"] is None and after["progress"]["rows_done"] == 0
    assert client.cancel(queued["id"])["status"] == "cancelled"  # idempotent


def test_two_workers_share_the_queue(client, workers):
    ids = [client.submit({**FAST, "seed": 10 + i})["id"] for i in range(4)]
    jobs = [wait_for_status(client, i, ("succeeded", "failed")) for i in ids]
    assert all(j["status"] == "succeeded" for j in jobs), jobs
    ran_on = {workers.r.hget(f"mc:job:{i}", "worker").decode() for i in ids}
    assert len(ran_on) == 2, ran_on


def test_a_failing_job_fails_with_a_clear_message_and_the_worker_goes_on(client):
    bad = client.submit({**FAST, "image": "this is not base64!"})
    job = wait_for_status(client, bad["id"], ("failed", "succeeded"))
    assert job["status"] == "failed" and job["error"].startswith("invalid request for this model: image:"), job
    assert client.get(client.submit(FAST)["id"])["id"]
    ok = wait_for_status(client, client.submit({**FAST, "seed": 1})["id"], ("failed", "succeeded"))
    assert ok["status"] == "succeeded"


def test_a_worker_killed_mid_job_leaves_its_job_failed_and_the_next_runs_elsewhere(client, workers):
    job = client.submit({**SLOW, "seed": 20})
    running = wait_for_status(client, job["id"], "running")
    victim = workers.r.hget(f"mc:job:{job['id']}", "worker").decode()
    os.kill(workers.procs[victim].pid, signal.SIGKILL)
    replacement = workers.spawn()  # loads while we wait for the reaper
    t0 = time.monotonic()
    failed = wait_for_status(client, job["id"], ("failed", "succeeded", "cancelled"), timeout=HEARTBEAT_TTL_S + 10)
    assert failed["status"] == "failed" and "heartbeat expired" in failed["error"], failed
    assert time.monotonic() - t0 < HEARTBEAT_TTL_S + 5 and running["status"] == "running"
    nxt = wait_for_status(client, client.submit(FAST)["id"], ("succeeded", "failed"))
    assert nxt["status"] == "succeeded" and workers.r.hget(f"mc:job:{nxt['id']}", "worker").decode() != victim
    workers.wait_ready([replacement])
