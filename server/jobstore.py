"""Job records: one Redis hash per job (status, owner, progress, figures), plus indexes.

Status moves queued -> running -> succeeded | failed | cancelled (or queued -> cancelled). Every move
is a WATCH/MULTI transaction that checks the current status, so a cancel racing a worker's start, or
the reaper racing a worker's finish, has exactly one winner. Entering a terminal status also appends
the stream's terminal entry in the same transaction: every job's stream ends exactly once.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import redis

from . import chunkstream, keys

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "queued", "running", "succeeded", "failed", "cancelled"
TERMINAL = (SUCCEEDED, FAILED, CANCELLED)
_JSON_FIELDS = ("summary", "resolved", "figures")
_INT_FIELDS = ("rows_done", "rows_total", "chunks_done", "chunks_total", "timeout_s")
_FLOAT_FIELDS = ("created_at", "started_at", "finished_at")


@dataclass
class JobRecord:
    id: str
    status: str
    owner: str
    created_at: float
    policy: str = "none"
    started_at: float | None = None
    finished_at: float | None = None
    worker: str | None = None
    rows_done: int = 0
    rows_total: int | None = None
    chunks_done: int = 0
    chunks_total: int | None = None
    timeout_s: int | None = None
    summary: dict = field(default_factory=dict)
    resolved: dict | None = None
    figures: dict = field(default_factory=dict)
    error: str | None = None
    mime: str | None = None

    @classmethod
    def from_hash(cls, job_id: str, h: dict[bytes, bytes]) -> "JobRecord":
        values = {k.decode(): v.decode() for k, v in h.items()}
        for k in _JSON_FIELDS:
            if k in values:
                values[k] = json.loads(values[k])
        for k in _INT_FIELDS:
            if k in values:
                values[k] = int(values[k])
        for k in _FLOAT_FIELDS:
            if k in values:
                values[k] = float(values[k])
        known = set(cls.__dataclass_fields__)
        return cls(id=job_id, **{k: v for k, v in values.items() if k in known and k != "id"})


def _encode(fields: dict) -> dict:
    return {k: json.dumps(v) if k in _JSON_FIELDS else str(v) for k, v in fields.items() if v is not None}


def create(r: redis.Redis, job_id: str, *, owner: str, policy: str, summary: dict, timeout_s: int,
           ttl_s: int) -> JobRecord:
    now = time.time()
    record = JobRecord(job_id, QUEUED, owner, now, policy=policy, summary=summary, timeout_s=timeout_s)
    pipe = r.pipeline()
    pipe.hset(keys.job(job_id), mapping=_encode({k: getattr(record, k) for k in
                                                 ("status", "owner", "created_at", "policy", "summary", "timeout_s")}))
    pipe.expire(keys.job(job_id), ttl_s)
    pipe.zadd(keys.owner_index(owner), {job_id: now})
    pipe.expire(keys.owner_index(owner), ttl_s)
    pipe.execute()
    return record


def get(r: redis.Redis, job_id: str) -> JobRecord | None:
    h = r.hgetall(keys.job(job_id))
    return JobRecord.from_hash(job_id, h) if h else None


def page(r: redis.Redis, owner: str, offset: int, limit: int) -> tuple[int, list[JobRecord]]:
    """Newest first. Records that expired are dropped from the index as they are met."""
    index = keys.owner_index(owner)
    ids = [i.decode() for i in r.zrevrange(index, offset, offset + limit - 1)]
    pipe = r.pipeline(transaction=False)
    for i in ids:
        pipe.hgetall(keys.job(i))
    records, gone = [], []
    for i, h in zip(ids, pipe.execute()):
        (records.append(JobRecord.from_hash(i, h)) if h else gone.append(i))
    if gone:
        r.zrem(index, *gone)
    return r.zcard(index), records


def update(r, job_id: str, **fields) -> None:
    """Progress and figures of a running job (no status change). Accepts a pipeline."""
    r.hset(keys.job(job_id), mapping=_encode(fields))


def _transition(r: redis.Redis, job_id: str, allowed_from: tuple[str, ...], to: str, fields: dict,
                also=None) -> bool:
    key = keys.job(job_id)

    def attempt(pipe) -> bool:
        status = pipe.hget(key, "status")
        if status is None or status.decode() not in allowed_from:
            return False
        pipe.multi()
        pipe.hset(key, mapping=_encode({"status": to, **fields}))
        if to == RUNNING:
            pipe.sadd(keys.RUNNING, job_id)
        else:
            pipe.srem(keys.RUNNING, job_id)
        if also:
            also(pipe)
        return True

    return r.transaction(attempt, key, value_from_callable=True)


def start(r: redis.Redis, job_id: str, worker: str) -> bool:
    """queued -> running for this worker; False if the job was cancelled (or is unknown) meanwhile."""
    return _transition(r, job_id, (QUEUED,), RUNNING, {"started_at": time.time(), "worker": worker})


def finish(r: redis.Redis, job_id: str, status: str, *, ttl_s: int, error: str | None = None,
           figures: dict | None = None, allowed_from: tuple[str, ...] = (QUEUED, RUNNING), **fields) -> bool:
    """Enter a terminal status and close the job's stream with an `end` (or `error`) entry."""
    assert status in TERMINAL
    fields = {"finished_at": time.time(), "error": error, "figures": figures, **fields}

    def close_stream(pipe):
        if status == FAILED:
            chunkstream.add_terminal(pipe, job_id, chunkstream.ERROR, {"type": "error", "status": status,
                                                                       "message": error}, ttl_s=ttl_s)
        else:
            chunkstream.add_terminal(pipe, job_id, chunkstream.END, {"type": "end", "status": status,
                                                                     "figures": figures or {}}, ttl_s=ttl_s)
        pipe.delete(keys.cancel(job_id))

    return _transition(r, job_id, allowed_from, status, fields, also=close_stream)


def request_cancel(r: redis.Redis, job_id: str, ttl_s: int) -> None:
    r.set(keys.cancel(job_id), b"1", ex=ttl_s)


def cancel_requested(r: redis.Redis, job_id: str) -> bool:
    return bool(r.exists(keys.cancel(job_id)))


def running_ids(r: redis.Redis) -> list[str]:
    return [i.decode() for i in r.smembers(keys.RUNNING)]
