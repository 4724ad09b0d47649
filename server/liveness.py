"""Worker heartbeats and the reaper that fails jobs whose worker died.

A worker refreshes `mc:worker:{name}` (a small JSON, expiring after heartbeat_ttl_s) every ttl/3 from a
background thread, for as long as its process lives, busy or idle. A SIGKILLed or frozen-host worker
stops refreshing; once its key expires, any process calling `reap` (the API every reaper_interval_s,
and every worker's heartbeat thread) moves that worker's running jobs to `failed`.
"""

from __future__ import annotations

import json
import time

import redis

from . import jobstore, keys


def beat(r: redis.Redis, worker: str, ttl_s: float, **info) -> None:
    pipe = r.pipeline()
    pipe.set(keys.heartbeat(worker), json.dumps({"name": worker, "at": time.time(), **info}), px=int(ttl_s * 1000))
    pipe.sadd(keys.WORKERS, worker)
    pipe.execute()


def forget(r: redis.Redis, worker: str) -> None:
    """Clean exit: drop the heartbeat at once instead of waiting for it to expire."""
    pipe = r.pipeline()
    pipe.delete(keys.heartbeat(worker))
    pipe.srem(keys.WORKERS, worker)
    pipe.execute()


def alive_workers(r: redis.Redis) -> list[dict]:
    names = [n.decode() for n in r.smembers(keys.WORKERS)]
    if not names:
        return []
    values = r.mget([keys.heartbeat(n) for n in names])
    dead = [n for n, v in zip(names, values) if v is None]
    if dead:
        r.srem(keys.WORKERS, *dead)
    return [json.loads(v) for v in values if v is not None]


def reap(r: redis.Redis, ttl_s: int) -> list[str]:
    """Fail running jobs whose worker's heartbeat expired. Safe to run anywhere, any number of times."""
    reaped = []
    for job_id in jobstore.running_ids(r):
        record = jobstore.get(r, job_id)
        if record is None or record.status != jobstore.RUNNING:
            r.srem(keys.RUNNING, job_id)
            continue
        if record.worker and r.exists(keys.heartbeat(record.worker)):
            continue
        message = (f"worker {record.worker} stopped responding mid-job (its heartbeat expired); "
                   f"{record.chunks_done} chunk(s) were delivered before it died")
        if jobstore.finish(r, job_id, jobstore.FAILED, ttl_s=ttl_s, error=message, allowed_from=(jobstore.RUNNING,),
                           figures=record.figures):
            reaped.append(job_id)
    return reaped
