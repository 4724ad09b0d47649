"""The job function in-process (real Redis, no RQ): failures become the job's error and the worker goes on."""

import threading

import pytest
import redis
import torch

from server import chunkstream, jobstore, liveness
from server.settings import Settings
from worker.jobs import Runtime, install, run_generation
from worker.metrics import WorkerMetrics

pytest_plugins = ["serving_fixtures"]
FAST = dict(prompt="a red circle moves left", num_frames=17, num_inference_steps=3, ar_step=1, causal_block_size=1)


class ExplodingEngine:
    def __init__(self, error):
        self.error = error

    def generate(self, *args, **kwargs):
        raise self.error


@pytest.fixture
def runtime(redis_url, engine):
    r = redis.Redis.from_url(redis_url)
    stop = threading.Event()
    rt = Runtime(engine, r, Settings(redis_url=redis_url), WorkerMetrics(), "in-process", shutting_down=stop.is_set)
    rt.beat = lambda: liveness.beat(r, rt.name, 60)  # alive, or the session's reapers would fail its jobs
    rt.beat()
    install(rt)
    rt.stop = stop
    yield rt
    liveness.forget(r, rt.name)


def submit(rt, job_id, **fields):
    jobstore.create(rt.redis, job_id, owner="t", policy="none", summary={}, timeout_s=60, ttl_s=600)
    return run_generation(job_id, {**FAST, **fields}, {"max_frames": 100})


def test_out_of_memory_fails_the_job_with_a_clear_message_and_the_next_job_runs(runtime, engine):
    runtime.engine = ExplodingEngine(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20 GiB"))
    assert submit(runtime, "oom-1") == "failed"
    record = jobstore.get(runtime.redis, "oom-1")
    assert record.error.startswith("out of memory: CUDA out of memory") and "fewer frames" in record.error
    _, entries = chunkstream.read_all(runtime.redis, "oom-1")
    assert [e.kind for e in entries] == ["error"] and entries[0].event["message"] == record.error

    runtime.engine = engine  # the same worker takes the next job
    assert submit(runtime, "after-oom") == "succeeded"
    assert jobstore.get(runtime.redis, "after-oom").chunks_done == 5


def test_over_a_limit_after_resolving_fails_before_any_work(runtime):
    assert submit(runtime, "too-long", num_frames=101, base_num_frames=97, overlap_history=17) == "failed"
    record = jobstore.get(runtime.redis, "too-long")
    assert "num_frames: 101 frames exceed this server's limit of 100" in record.error and record.rows_done == 0


def test_a_worker_shutdown_stops_the_job_within_a_row(runtime):
    runtime.stop.set()
    assert submit(runtime, "shutdown", num_inference_steps=50) == "failed"
    record = jobstore.get(runtime.redis, "shutdown")
    assert record.error == "the worker was shut down before the job finished" and record.rows_done == 0


def test_a_job_cancelled_while_queued_never_runs(runtime):
    jobstore.create(runtime.redis, "gone", owner="t", policy="none", summary={}, timeout_s=60, ttl_s=600)
    assert jobstore.finish(runtime.redis, "gone", jobstore.CANCELLED, ttl_s=600)
    assert run_generation("gone", FAST) == "skipped"
    assert jobstore.get(runtime.redis, "gone").started_at is None
