"""/v1/videos: submit, look up, list, cancel and download generation jobs."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from rq.exceptions import NoSuchJobError
from rq.job import Job as RqJob

from motioncache.request import GenerationRequest

from .. import chunkstream, jobstore, limits
from ..auth import owner
from ..deps import Clients, clients
from ..schemas import Job, JobPage, ValidationProblem

router = APIRouter(prefix="/v1/videos", tags=["videos"])
JOB_FUNCTION = "worker.jobs.run_generation"  # imported by the worker only: the API never loads the engine


class LimitExceeded(Exception):
    """Raised with the problems found at submit; rendered as a 422 like a schema error."""

    def __init__(self, problems: list[limits.Problem]):
        self.problems = problems


def _record(c: Clients, job_id: str, who: str) -> jobstore.JobRecord:
    record = jobstore.get(c.redis, job_id)
    if record is None or record.owner != who:  # another key's job is indistinguishable from a missing one
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no video job {job_id}")
    return record


def _view(c: Clients, record: jobstore.JobRecord) -> Job:
    position = None
    if record.status == jobstore.QUEUED:
        position = c.queue.get_job_position(record.id)
        position = 0 if position is None else position  # dequeued by a worker that is about to start it
    cancel = record.status == jobstore.RUNNING and jobstore.cancel_requested(c.redis, record.id)
    return Job.of(record, queue_position=position, cancel_requested=cancel)


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=Job,
             responses={422: {"model": ValidationProblem, "description": "invalid request or over a server limit"}})
def submit(body: GenerationRequest, request: Request, response: Response, who: str = Depends(owner),
           c: Clients = Depends(clients)) -> Job:
    s = c.settings
    problems, sizes = limits.check(body, s, limits.load_profile(c.redis))
    if problems:
        raise LimitExceeded(problems)
    job_id = uuid.uuid4().hex
    timeout = limits.job_timeout_s(sizes, s)
    summary = body.model_dump(mode="json", exclude={"image", "prefix_video"})
    summary.update(has_image=body.image is not None, has_prefix_video=body.prefix_video is not None)
    record = jobstore.create(c.redis, job_id, owner=who, policy=body.cache.policy, summary=summary, timeout_s=timeout,
                             ttl_s=s.record_ttl_s)
    c.queue.enqueue_call(JOB_FUNCTION, kwargs={"job_id": job_id, "request": body.model_dump(mode="json"),
                                               "limits": {k: getattr(s, k) for k in
                                                          ("max_frames", "max_pixels", "max_steps")}},
                         job_id=job_id, timeout=timeout, result_ttl=600, failure_ttl=s.failure_ttl_s,
                         ttl=s.queued_ttl_s, description=f"generate {job_id}")
    request.app.state.metrics.submitted.labels(body.cache.policy).inc()
    response.headers["Location"] = f"/v1/videos/{job_id}"
    return _view(c, record)


@router.get("", response_model=JobPage)
def list_jobs(offset: int = Query(0, ge=0), limit: int = Query(20, ge=1, le=100), who: str = Depends(owner),
              c: Clients = Depends(clients)) -> JobPage:
    total, records = jobstore.page(c.redis, who, offset, limit)
    next_offset = offset + limit if offset + limit < total else None
    return JobPage(items=[_view(c, r) for r in records], total=total, offset=offset, limit=limit,
                   next_offset=next_offset)


@router.get("/{job_id}", response_model=Job)
def get_job(job_id: str, who: str = Depends(owner), c: Clients = Depends(clients)) -> Job:
    return _view(c, _record(c, job_id, who))


@router.delete("/{job_id}", status_code=status.HTTP_202_ACCEPTED, response_model=Job)
def cancel_job(job_id: str, request: Request, who: str = Depends(owner), c: Clients = Depends(clients)) -> Job:
    """Queued: removed, never runs. Running: stops before its next denoising row, keeps the chunks made, ends
    `cancelled`. Already cancelled: no-op. Succeeded or failed: 409."""
    record = _record(c, job_id, who)
    s = c.settings
    if record.status == jobstore.QUEUED and jobstore.finish(c.redis, job_id, jobstore.CANCELLED, ttl_s=s.record_ttl_s,
                                                             allowed_from=(jobstore.QUEUED,)):
        try:
            RqJob.fetch(job_id, connection=c.redis, serializer=c.queue.serializer).cancel()
        except NoSuchJobError:
            pass  # expired from RQ already; our record is what the worker checks anyway
        request.app.state.metrics.ended.labels(jobstore.CANCELLED, record.policy).inc()
    elif record.status in (jobstore.QUEUED, jobstore.RUNNING):  # (queued lost the race: a worker just started it)
        jobstore.request_cancel(c.redis, job_id, s.record_ttl_s)
    elif record.status != jobstore.CANCELLED:
        raise HTTPException(status.HTTP_409_CONFLICT, f"job {job_id} already {record.status}")
    return _view(c, _record(c, job_id, who))


@router.get("/{job_id}/content", response_class=Response,
            responses={200: {"content": {"video/mp4": {}}, "description": "init segment + every fragment so far"}})
def content(job_id: str, who: str = Depends(owner), c: Clients = Depends(clients)) -> Response:
    """The MP4 (fragmented): complete once succeeded; while running, the playable prefix made so far."""
    record = _record(c, job_id, who)
    init, entries = chunkstream.read_all(c.redis, job_id)
    chunks = [e for e in entries if e.kind == "chunk"]
    if not chunks or init is None:
        if record.chunks_done:
            raise HTTPException(status.HTTP_410_GONE, f"the chunks of job {job_id} expired")
        raise HTTPException(status.HTTP_409_CONFLICT, f"job {job_id} is {record.status} and has no chunk yet")
    if [e.event["index"] for e in chunks] != list(range(len(chunks))):
        raise HTTPException(status.HTTP_410_GONE, f"some chunks of job {job_id} are no longer stored")
    body = init + b"".join(e.data for e in chunks)
    return Response(body, media_type=record.mime or "video/mp4", headers={
        "X-Job-Status": record.status, "X-Chunks": str(len(chunks)),
        "Content-Disposition": f'inline; filename="{job_id}.mp4"'})
