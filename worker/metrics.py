"""A worker's Prometheus metrics, served on its own port (`motioncache worker --metrics-port`, 9100+i under
`motioncache serve`). Request histograms are labelled by cache policy."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


class WorkerMetrics:
    def __init__(self):
        self.registry = r = CollectorRegistry()
        p = ["policy"]
        self.speedup = Histogram("motioncache_request_compute_speedup", "Reference FLOPs / computed FLOPs per request",
                                 p, buckets=(1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10, 15, 20), registry=r)
        self.skip_rate = Histogram("motioncache_request_token_skip_rate", "Token-layers reused / all, per request", p,
                                   buckets=tuple(i / 10 for i in range(11)), registry=r)
        self.first_chunk = Histogram("motioncache_request_time_to_first_chunk_seconds",
                                     "Submit -> first chunk published", p,
                                     buckets=(.05, .1, .25, .5, 1, 2, 5, 10, 30, 60, 120, 300, 600), registry=r)
        self.latency = Histogram("motioncache_request_latency_seconds", "Submit -> last chunk published", p,
                                 buckets=(.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1200, 3600), registry=r)
        self.real_time = Histogram("motioncache_request_real_time_factor", "Video seconds made per wall second", p,
                                   buckets=(.01, .02, .05, .1, .2, .5, 1, 2, 5, 10), registry=r)
        self.jobs = Counter("motioncache_jobs", "Jobs ended by this process, by outcome", ["outcome", "policy"],
                            registry=r)
        self.chunks = Counter("motioncache_chunks", "Chunks published", p, registry=r)
        self.rows = Counter("motioncache_denoising_rows", "Denoising rows run", p, registry=r)
        self.tokens_computed = Counter("motioncache_tokens_computed", "Token x layer evaluations computed", p,
                                       registry=r)
        self.tokens_reused = Counter("motioncache_tokens_reused", "Token x layer outputs taken from a cache", p,
                                     registry=r)
        self.busy = Gauge("motioncache_worker_busy", "1 while this worker runs a job", registry=r)

    def serve(self, port: int, addr: str = "127.0.0.1") -> None:
        start_http_server(port, addr=addr, registry=self.registry)
