"""`motioncache worker`: one process, the engine loaded once, RQ jobs run in-process one after another.

RQ's default Worker forks per job (a fresh model copy each time, unsafe with CUDA); `SimpleWorker` runs jobs
in the worker process itself. Shutdown (SIGINT/SIGTERM) and RQ's stop-job command both raise a flag that the
running job's `should_stop` sees before its next denoising row, so the worker exits within a row.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import uuid
from dataclasses import dataclass

import redis
from rq import Queue, SimpleWorker
from rq.serializers import JSONSerializer

from motioncache.policies import published_rules
from server import keys, liveness
from server.settings import Settings

from . import jobs
from .heartbeat import Heartbeat
from .metrics import WorkerMetrics

log = logging.getLogger("motioncache.worker")


class GenerationWorker(SimpleWorker):
    stop_now = False

    def request_stop(self, signum, frame):
        self.stop_now = True  # the running job stops at its next row instead of running to the end
        super().request_stop(signum, frame)

    def kill_horse(self, sig=None):
        self.stop_now = True  # SimpleWorker has no horse: "kill" means stop the job in this process


def model_profile(engine) -> dict:
    """What the API needs to resolve and check requests exactly as this engine will, without the model."""
    c, t = engine.c, engine.c.transformer.config
    return {"defaults": c.defaults, "scheduler_shift": c.scheduler_config["flow_shift"],
            "model_block_size": t.num_frame_per_block, "temporal_scale": c.vae_scale_temporal,
            "spatial_scale": c.vae_scale_spatial, "patch": list(t.patch_size), "model": str(c.path),
            # every policy and preset with its knobs' types, ranges and the defaults they resolve to here
            "policies": published_rules(c.defaults.get("cache_presets"))}


@dataclass
class WorkerOptions:
    model: str | None
    redis_url: str
    queue: str
    device: str = "cpu"
    dtype: str = "float32"
    name: str | None = None
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    burst: bool = False  # exit when the queue is empty (tests, batch runs)
    parent_pid: int | None = None
    threads: int | None = None  # torch threads; None = torch's default


def run_worker(opts: WorkerOptions, settings: Settings | None = None) -> None:
    import torch

    from motioncache.cli import load_engine

    settings = settings or Settings(redis_url=opts.redis_url, queue_name=opts.queue)
    name = opts.name or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    r = redis.Redis.from_url(opts.redis_url)
    r.ping()  # fail before the (slow) model load if Redis is not there
    if opts.threads:
        torch.set_num_threads(opts.threads)  # before the model loads
    engine = load_engine(opts.model, opts.device, opts.dtype)
    r.set(keys.MODEL_PROFILE, json.dumps(model_profile(engine)))
    metrics = WorkerMetrics()
    if opts.metrics_port:
        metrics.serve(opts.metrics_port, opts.metrics_host)
    worker = GenerationWorker([Queue(opts.queue, connection=r, serializer=JSONSerializer)], connection=r,
                              serializer=JSONSerializer, name=name)
    runtime = jobs.Runtime(engine, r, settings, metrics, name, shutting_down=lambda: worker.stop_now)
    jobs.install(runtime)
    info = {"pid": os.getpid(), "host": socket.gethostname(), "metrics_port": opts.metrics_port,
            "device": opts.device, "threads": torch.get_num_threads()}
    heartbeat = Heartbeat(r, name, settings.heartbeat_ttl_s, info, lambda: runtime.current_job,
                          record_ttl_s=settings.record_ttl_s, parent_pid=opts.parent_pid)
    runtime.beat = heartbeat.beat
    heartbeat.beat()
    heartbeat.start()
    log.info("worker %s ready: model %s on %s (%d threads), queue %s, metrics %s", name, engine.c.path, opts.device,
             info["threads"], opts.queue,
             f"http://{opts.metrics_host}:{opts.metrics_port}/metrics" if opts.metrics_port else "off")
    try:
        worker.work(burst=opts.burst, with_scheduler=False, logging_level="WARNING")
    finally:
        heartbeat.stop()
        liveness.forget(r, name)
