"""Background thread of a worker process: refreshes its heartbeat every ttl/3, reaps jobs of dead workers,
and stops the worker when the process that started it (`motioncache serve`) is gone."""

from __future__ import annotations

import logging
import os
import signal
import threading

from server import liveness

log = logging.getLogger("motioncache.worker")


class Heartbeat(threading.Thread):
    def __init__(self, r, name: str, ttl_s: float, info: dict, current_job, *, record_ttl_s: int,
                 parent_pid: int | None = None):
        super().__init__(name="heartbeat", daemon=True)
        self.r, self.worker, self.ttl_s, self.info = r, name, ttl_s, info
        self.current_job, self.record_ttl_s, self.parent_pid = current_job, record_ttl_s, parent_pid
        self.stopped = threading.Event()

    def beat(self) -> None:
        liveness.beat(self.r, self.worker, self.ttl_s, job=self.current_job(), **self.info)

    def run(self) -> None:
        while not self.stopped.wait(self.ttl_s / 3):
            try:
                self.beat()
                for job_id in liveness.reap(self.r, self.record_ttl_s):
                    log.warning("job %s failed: its worker died", job_id)
            except Exception as e:  # noqa: BLE001 - keep beating through Redis blips
                log.warning("heartbeat failed: %s", e)
            if self.parent_pid and os.getppid() != self.parent_pid:
                log.warning("parent process %s is gone: shutting down", self.parent_pid)
                os.kill(os.getpid(), signal.SIGTERM)
                self.parent_pid = None

    def stop(self) -> None:
        self.stopped.set()
