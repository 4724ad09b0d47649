"""The API process's Prometheus metrics. Per-request figures (speedup, skip rate, latencies) are observed by the
workers, which export them on their own ports (see docs/server.md); the API adds what only it sees: submissions,
jobs it ends itself (cancelled while queued, reaped), live viewers, and fleet gauges read from Redis at scrape."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily

from . import liveness


class FleetCollector:
    """Queue depth and worker counts, read from Redis when Prometheus scrapes (never stale)."""

    def __init__(self, clients):
        self.clients = clients

    def collect(self):
        depth = GaugeMetricFamily("motioncache_queue_depth", "Jobs waiting in the queue")
        busy = GaugeMetricFamily("motioncache_busy_workers", "Workers running a job now")
        alive = GaugeMetricFamily("motioncache_workers_alive", "Workers whose heartbeat is current")
        try:
            depth.add_metric([], self.clients.queue.count)
            workers = liveness.alive_workers(self.clients.redis)
            busy.add_metric([], sum(1 for w in workers if w.get("job")))
            alive.add_metric([], len(workers))
        except Exception:  # Redis down: report nothing rather than fail the whole scrape
            return
        yield from (depth, busy, alive)


class ApiMetrics:
    def __init__(self, clients=None):
        self.registry = CollectorRegistry()  # per app: several apps in one process never clash
        self.submitted = Counter("motioncache_jobs_submitted", "Jobs accepted by POST /v1/videos", ["policy"],
                                 registry=self.registry)
        self.ended = Counter("motioncache_jobs", "Jobs ended by this process, by outcome (workers count the rest)",
                             ["outcome", "policy"], registry=self.registry)
        self.rejected = Counter("motioncache_requests_rejected", "Submissions rejected with 422", registry=self.registry)
        self.viewers = Gauge("motioncache_stream_viewers", "Open websocket streams", registry=self.registry)
        if clients is not None:
            self.registry.register(FleetCollector(clients))
