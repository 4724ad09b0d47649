"""The RQ job function: `run_generation(job_id, request, limits)`, executed inside a worker process that
installed a `Runtime` (engine loaded once, Redis client, metrics) with `install()`.

Outcomes: succeeded; cancelled (DELETE while running: the engine stops before its next denoising row,
chunks already published stay); failed with a one-line reason (bad request for this model, over a limit,
out of memory, timeout, worker shutdown, any exception). The job never raises: the record is the truth.
"""

from __future__ import annotations

import gc
import logging
import time
from dataclasses import dataclass
from typing import Callable

from motioncache.engine import Cancelled, Engine
from motioncache.request import GenerationRequest
from rq.timeouts import JobTimeoutException
from server import jobstore
from server.settings import Settings

from . import figures as figs
from .metrics import WorkerMetrics
from .publisher import ChunkPublisher

log = logging.getLogger("motioncache.worker")
PROGRESS_EVERY_S = 0.25  # row progress goes to Redis at most this often (chunks are always written at once)


@dataclass
class Runtime:
    engine: Engine
    redis: object
    settings: Settings
    metrics: WorkerMetrics
    name: str
    shutting_down: Callable[[], bool]
    beat: Callable[[], None] = lambda: None  # refresh the heartbeat now (busy/idle shows at once)
    current_job: str | None = None


_runtime: Runtime | None = None


def install(runtime: Runtime) -> None:
    global _runtime
    _runtime = runtime


def _check_limits(resolved, limits: dict) -> None:
    if resolved.num_frames > limits.get("max_frames", float("inf")):
        raise ValueError(f"num_frames: {resolved.num_frames} frames exceed this server's limit of {limits['max_frames']}")
    if resolved.height * resolved.width > limits.get("max_pixels", float("inf")):
        raise ValueError(f"height: {resolved.width}x{resolved.height} exceeds this server's limit of "
                         f"{limits['max_pixels']} pixels per frame")
    if resolved.num_inference_steps > limits.get("max_steps", float("inf")):
        raise ValueError(f"num_inference_steps: {resolved.num_inference_steps} exceed this server's limit of "
                         f"{limits['max_steps']}")


def _out_of_memory(e: BaseException) -> bool:
    return isinstance(e, MemoryError) or "out of memory" in str(e).lower()


def run_generation(job_id: str, request: dict, limits: dict | None = None) -> str:
    rt = _runtime
    assert rt is not None, "run_generation needs a worker Runtime (motioncache worker)"
    r, s = rt.redis, rt.settings
    if not jobstore.start(r, job_id, rt.name):
        log.info("job %s skipped: cancelled or expired before it started", job_id)
        return "skipped"
    record = jobstore.get(r, job_id)
    policy = record.policy
    rt.current_job, gen, state = job_id, None, {"first": None, "frames": 0, "last_progress": 0.0}
    rt.metrics.busy.set(1)
    started = time.time()

    def current_figures() -> dict:
        return figs.so_far(gen, rt.engine.c.transformer, created_at=record.created_at, started_at=started,
                           first_chunk_at=state["first"], frames_done=state["frames"], now=time.time())

    def on_row(progress) -> None:
        rt.metrics.rows.labels(policy).inc()
        now = time.monotonic()
        if now - state["last_progress"] >= PROGRESS_EVERY_S:
            state["last_progress"] = now
            jobstore.update(r, job_id, rows_done=progress.rows_done)

    def end(status: str, error: str | None = None) -> str:
        figures = current_figures() if gen is not None else {}
        if jobstore.finish(r, job_id, status, ttl_s=s.record_ttl_s, error=error, figures=figures,
                           allowed_from=(jobstore.RUNNING,),
                           rows_done=gen.progress.rows_done if gen is not None else 0):
            rt.metrics.jobs.labels(status, policy).inc()
        log.info("job %s %s%s", job_id, status, f": {error}" if error else "")
        return status

    try:
        rt.beat()  # show this worker busy at once, not at its next heartbeat
        req = GenerationRequest.model_validate(request)
        gen = rt.engine.generate(req, should_stop=lambda: rt.shutting_down() or jobstore.cancel_requested(r, job_id))
        resolved = gen.plan.resolved
        _check_limits(resolved, limits or {})
        gen.progress.on_row = on_row
        jobstore.update(r, job_id, rows_total=gen.plan.total_rows, chunks_total=gen.plan.total_chunks,
                        resolved={k: getattr(resolved, k) for k in ("num_frames", "height", "width", "fps",
                                                                    "num_inference_steps", "guidance_scale",
                                                                    "causal_block_size", "ar_step")})
        publisher = ChunkPublisher(r, job_id, width=resolved.width, height=resolved.height, fps=resolved.fps,
                                   chunks_total=gen.plan.total_chunks, ttl_s=s.record_ttl_s)
        for chunk in gen:
            if state["first"] is None:
                state["first"] = time.time()
                rt.metrics.first_chunk.labels(policy).observe(state["first"] - record.created_at)
            state["frames"] = chunk.frame_end
            publisher.publish(chunk, current_figures(), {"rows_done": gen.progress.rows_done})
            rt.metrics.chunks.labels(policy).inc()
            rt.metrics.tokens_computed.labels(policy).inc(chunk.stats.get("token_layer_evals", 0))
            rt.metrics.tokens_reused.labels(policy).inc(chunk.stats.get("token_layer_reused", 0))
        final = current_figures()
        rt.metrics.speedup.labels(policy).observe(final["compute_speedup"] or 0.0)
        rt.metrics.skip_rate.labels(policy).observe(final["token_skip_rate"])
        rt.metrics.latency.labels(policy).observe(time.time() - record.created_at)
        rt.metrics.real_time.labels(policy).observe(final["real_time_factor"])
        return end(jobstore.SUCCEEDED)
    except Cancelled:
        if rt.shutting_down():
            return end(jobstore.FAILED, "the worker was shut down before the job finished")
        return end(jobstore.CANCELLED)
    except JobTimeoutException:
        return end(jobstore.FAILED, f"timed out after {record.timeout_s} s (the limit for a request of this size)")
    except Exception as e:  # noqa: BLE001 - every failure becomes the job's error; the worker takes the next job
        if _out_of_memory(e):
            _free_accelerator_memory()
            return end(jobstore.FAILED, f"out of memory: {str(e).splitlines()[0][:300]}; "
                                        "ask for fewer frames, a smaller size or fewer steps")
        if isinstance(e, ValueError):
            return end(jobstore.FAILED, f"invalid request for this model: {e}")
        log.exception("job %s raised", job_id)
        return end(jobstore.FAILED, f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}")
    finally:
        rt.current_job = None
        rt.metrics.busy.set(0)
        try:
            rt.beat()
        except Exception:  # noqa: BLE001 - the heartbeat thread retries
            pass


def _free_accelerator_memory() -> None:
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
